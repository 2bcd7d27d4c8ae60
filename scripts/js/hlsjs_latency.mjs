// Play an HLS stream with hls.js (lowLatencyMode) in headless Debian Chromium (playwright-core)
// and measure how far behind the wall clock the playing position is: every 250 ms,
// Date.now() - hls.playingDate (PROGRAM-DATE-TIME of the playing position).
//
// Usage: node hlsjs_latency.mjs <master-url> [seconds=15] [warmup=0]
// With a warm-up, playback runs `warmup` seconds before the `seconds` of samples begin (start-up
// and hls.js's first seek are left out); stalls are counted over the whole run.
// Env: CHROMIUM (default /usr/bin/chromium); HLSJS_CONFIG, a JSON object merged into the hls.js
// config (e.g. '{"maxLiveSyncPlaybackRate":1.5}' to let hls.js catch up to its target latency);
// HLSJS_TRACE=FILE writes a start-up trace there (JSON): hls.js's own debug log, its events
// (playlists with their edge/age/hold-back, fragment and part loads, level switches), the video
// element's events and every 250 ms sample of its state, each with Date.now() — to see where the
// player's start position comes from. Uses the unminified hls.js build then.
// Prints one JSON line {p50_ms, p90_ms, min_ms, max_ms, samples, stalls, picture_offset_s,
// errors, ...} and exits
// 0; exits 1 when the page could not be set up (no browser, page error before playback).
// A stream that never plays gives samples = 0 (the caller decides whether that is a failure).
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * p))];
}

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error('usage: hlsjs_latency.mjs <master-url> [seconds]');
  const seconds = Number(process.argv[3] || 15);
  if (!(seconds > 0)) throw new Error(`bad seconds: ${process.argv[3]}`);
  const warmup = Number(process.argv[4] || 0);
  if (!(warmup >= 0)) throw new Error(`bad warmup: ${process.argv[4]}`);
  const extra = JSON.parse(process.env.HLSJS_CONFIG || '{}');
  const traceFile = process.env.HLSJS_TRACE || '';
  const hlsPath = require.resolve(traceFile ? 'hls.js/dist/hls.js' : 'hls.js/dist/hls.min.js');
  const profile = mkdtempSync(join(tmpdir(), 'ringcast-chromium-'));
  // A fresh profile directory per run (launchPersistentContext owns --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // Request start/end by wall clock (only with a trace).
    const requests = [];
    if (traceFile) {
      const open = new Map();
      page.on('request', (r) => open.set(r, Date.now()));
      page.on('requestfinished', (r) => {
        if (requests.length < 5000) requests.push({ url: r.url(), start: open.get(r), end: Date.now() });
        open.delete(r);
      });
    }
    // about:blank origin; the edge answers with Access-Control-Allow-Origin: *.
    await page.setContent('<!doctype html><video id="v" muted playsinline></video>');
    await page.addScriptTag({ path: hlsPath });
    const result = await page.evaluate(
      async ({ url, seconds, warmup, extra, trace }) => {
        const video = document.getElementById('v');
        if (!window.Hls || !window.Hls.isSupported()) return { error: 'hls.js not supported' };
        const tr = [];
        const note = (kind, data) => {
          if (trace && tr.length < 20000) tr.push({ t: Date.now(), kind, ...data });
        };
        const logger = {};
        for (const k of ['trace', 'debug', 'log', 'info', 'warn', 'error']) {
          logger[k] = (...a) => note('log', { level: k, msg: a.map(String).join(' ') });
        }
        const hls = new window.Hls({
          lowLatencyMode: true,
          enableWorker: true,
          ...(trace ? { debug: logger } : {}),
          ...extra,
        });
        if (trace) {
          const E = window.Hls.Events;
          hls.on(E.LEVEL_LOADED, (_e, d) => {
            const x = d.details;
            note('level_loaded', {
              level: d.level,
              url: x.url,
              edge: x.edge,
              age: x.age,
              fragmentEnd: x.fragmentEnd,
              startSN: x.startSN,
              endSN: x.endSN,
              lastPartSn: x.lastPartSn,
              lastPartIndex: x.lastPartIndex,
              partHoldBack: x.partHoldBack,
              startTimeOffset: x.startTimeOffset,
              loading: d.stats && d.stats.loading,
            });
          });
          for (const ev of [E.FRAG_LOADING, E.FRAG_LOADED, E.FRAG_BUFFERED]) {
            hls.on(ev, (_e, d) => {
              const f = d.frag;
              note(ev, {
                level: f.level,
                sn: f.sn,
                part: d.part ? d.part.index : null,
                start: d.part ? d.part.start : f.start,
                duration: d.part ? d.part.duration : f.duration,
                pdt: f.programDateTime,
                bitrateTest: !!f.bitrateTest,
              });
            });
          }
          for (const ev of [E.LEVEL_SWITCHING, E.LEVEL_SWITCHED, E.MANIFEST_PARSED, E.MEDIA_ATTACHED]) {
            hls.on(ev, (_e, d) => note(ev, { level: d && d.level }));
          }
          for (const ev of ['loadedmetadata', 'canplay', 'playing', 'seeking', 'seeked', 'waiting']) {
            video.addEventListener(ev, () => note('video_' + ev, { currentTime: video.currentTime }));
          }
        }
        // The timestamp origin hls.js chose (its first part): initPTS / timescale = the
        // chosen track's decode time minus the playlist time. hls.js aligns the track that
        // starts first in that part on the playlist; in this stack's streams playlist time is
        // the video's decode time, so a non-zero origin (hls.js aligned on audio carried at
        // another time than its video) shifts the picture by it from what playingDate says.
        let initPts = null;
        hls.on(window.Hls.Events.INIT_PTS_FOUND, (_e, d) => {
          if (initPts === null && d.id === 'main') {
            initPts = { seconds: d.initPTS / d.timescale, track_id: d.trackId };
            note('init_pts', initPts);
          }
        });
        const errors = [];
        let stalls = 0;
        hls.on(window.Hls.Events.ERROR, (_e, d) => {
          if (d.details === 'bufferStalledError') stalls++;
          if (d.fatal || errors.length < 20) errors.push(`${d.fatal ? 'fatal ' : ''}${d.type}/${d.details}`);
        });
        hls.loadSource(url);
        hls.attachMedia(video);
        video.addEventListener('waiting', () => {
          if (video.currentTime > 0) stalls++;
        });
        hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
          video.play().catch((e) => errors.push(`play: ${e}`));
        });
        const t0 = Date.now();
        let firstFrameMs = null;
        const samples = [];
        await new Promise((resolve) => {
          const timer = setInterval(() => {
            const pd = hls.playingDate;
            if (trace && (Date.now() - t0 < 15000 || samples.length % 8 === 0)) {
              const b = video.buffered;
              const ranges = [];
              for (let i = 0; i < b.length; i++) ranges.push([b.start(i), b.end(i)]);
              const d = hls.latestLevelDetails;
              note('sample', {
                currentTime: video.currentTime,
                paused: video.paused,
                buffered: ranges,
                latency: hls.latency,
                targetLatency: hls.targetLatency,
                liveSyncPosition: hls.liveSyncPosition,
                edge: d ? d.edge : null,
                age: d ? d.age : null,
                playingDate: pd ? pd.getTime() : null,
              });
            }
            if (!video.paused && video.currentTime > 0 && pd && !isNaN(pd.getTime())) {
              if (firstFrameMs === null) firstFrameMs = Date.now() - t0;
              if (Date.now() - t0 >= warmup * 1000) samples.push(Date.now() - pd.getTime());
            }
            if (Date.now() - t0 >= (warmup + seconds) * 1000) {
              clearInterval(timer);
              resolve();
            }
          }, 250);
        });
        const out = {
          samples,
          stalls,
          errors,
          first_frame_ms: firstFrameMs,
          hls_latency_s: hls.latency,
          target_latency_s: hls.targetLatency,
          level: hls.currentLevel,
          init_pts: initPts,
          trace: tr,
        };
        hls.destroy();
        return out;
      },
      { url, seconds, warmup, extra, trace: !!traceFile },
    );
    if (traceFile) writeFileSync(traceFile, JSON.stringify({ requests, trace: result.trace || [] }));
    if (result.error) throw new Error(result.error);
    const sorted = [...result.samples].sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        url,
        seconds,
        warmup,
        hlsjs_config: extra,
        samples: sorted.length,
        p50_ms: percentile(sorted, 0.5),
        p90_ms: percentile(sorted, 0.9),
        min_ms: sorted.length ? sorted[0] : null,
        max_ms: sorted.length ? sorted[sorted.length - 1] : null,
        stalls: result.stalls,
        first_frame_ms: result.first_frame_ms,
        hls_latency_s: result.hls_latency_s,
        target_latency_s: result.target_latency_s,
        level: result.level,
        // Seconds the shown picture is older than playingDate says (0 when hls.js aligned on
        // the video): add to the latencies for the picture's glass-to-player latency.
        picture_offset_s: result.init_pts ? -result.init_pts.seconds : null,
        init_pts_track: result.init_pts ? result.init_pts.track_id : null,
        errors: result.errors,
        page_errors: pageErrors,
      }),
    );
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`hlsjs_latency failed: ${e.stack || e}`);
  process.exit(1);
});
