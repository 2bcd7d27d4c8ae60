// The player: hls.js (vendored, window.Hls) where Media Source Extensions exist, the
// browser's own HLS otherwise (Safari, iOS); a quality menu (Auto + each rendition), seek
// previews from the video's thumbnail track (WebVTT cues naming sprite-sheet regions), and a
// stats panel (rendition, bandwidth estimate, buffer ahead, dropped frames, and for live the
// distance behind the wall clock from EXT-X-PROGRAM-DATE-TIME).
import { el, bitrate, duration } from './util.js';

const $ = (id) => document.getElementById(id);

// hls.js's default manifest policy, except that a live master's 404 is retried once a second
// for up to 30 s (hls.js retries no 4xx by default).
const LIVE_MANIFEST_POLICY = {
  default: {
    maxTimeToFirstByteMs: Infinity,
    maxLoadTimeMs: 20_000,
    timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: {
      maxNumRetry: 30,
      retryDelayMs: 1000,
      maxRetryDelayMs: 1000,
      backoff: 'linear',
      shouldRetry: (cfg, count, _timeout, response, retry) => retry || (count < cfg.maxNumRetry && response?.code === 404),
    },
  },
};

export class Player {
  constructor() {
    this.video = $('video');
    this.quality = $('quality');
    this.error = $('player-error');
    this.seek = $('seek');
    this.preview = $('seek-preview');
    this.hls = null;
    this.cues = [];
    /** Fatal hls.js errors of the current source (the browser tests read it too). */
    this.fatal = [];
    this.quality.addEventListener('change', () => {
      if (this.hls) this.hls.currentLevel = Number(this.quality.value);
    });
    this.video.addEventListener('timeupdate', () => this.syncSeek());
    this.video.addEventListener('durationchange', () => this.syncSeek());
    this.seek.addEventListener('input', () => {
      this.video.currentTime = Number(this.seek.value);
      this.showPreview(Number(this.seek.value));
    });
    this.seek.addEventListener('mousemove', (e) => {
      const r = this.seek.getBoundingClientRect();
      const max = Number(this.seek.max) || 0;
      this.showPreview(((e.clientX - r.left) / r.width) * max, e.clientX - r.left);
    });
    for (const ev of ['mouseleave', 'blur', 'change']) {
      this.seek.addEventListener(ev, () => { this.preview.hidden = true; });
    }
    this.timer = setInterval(() => this.stats(), 500);
  }

  /**
   * Play `src` (an edge URL of a master playlist); `thumbnails` is the track's URL, if any.
   * `live`: the stream may have just started, so a missing master (404 until the transcoder
   * writes it, up to 5 s after the push starts) is asked for again for a while instead of
   * ending playback at once, as hls.js does for any 4xx.
   */
  load(src, { thumbnails = null, autoplay = false, live = false } = {}) {
    this.stop();
    this.fatal = [];
    this.error.textContent = '';
    this.quality.replaceChildren(el('option', { value: '-1', text: 'Auto' }));
    this.quality.value = '-1';
    this.loadThumbnails(thumbnails);
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      const hls = new Hls({
        lowLatencyMode: true,
        // The worker as a file of this origin (the CSP allows no blob: worker).
        workerPath: '/web/vendor/hls.worker.js',
        enableWorker: true,
        maxLiveSyncPlaybackRate: 1.5,
        ...(live ? { manifestLoadPolicy: LIVE_MANIFEST_POLICY } : {}),
      });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        this.error.textContent = '';
        const options = [el('option', { value: '-1', text: 'Auto' })];
        hls.levels.forEach((l, i) => {
          const label = l.height ? `${l.height}p` : l.name || `level ${i}`;
          options.push(el('option', { value: String(i), text: `${label} · ${bitrate(l.bitrate)}` }));
        });
        this.quality.replaceChildren(...options);
        this.quality.value = String(hls.manualLevel ?? -1);
        if (autoplay) this.video.play().catch(() => {});
      });
      hls.on(Hls.Events.ERROR, (_e, d) => {
        if (!d.fatal) {
          if (d.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR) this.error.textContent = 'Waiting for the stream to start…';
          return;
        }
        this.fatal.push(`${d.type}/${d.details}`);
        if (d.type === Hls.ErrorTypes.NETWORK_ERROR) {
          this.error.textContent = `Network error (${d.details}); retrying…`;
          hls.startLoad();
        } else if (d.type === Hls.ErrorTypes.MEDIA_ERROR) {
          this.error.textContent = `Media error (${d.details}); recovering…`;
          hls.recoverMediaError();
        } else {
          this.error.textContent = `Cannot play: ${d.details}`;
          this.stop();
        }
      });
      hls.loadSource(src);
      hls.attachMedia(this.video);
    } else if (this.video.canPlayType('application/vnd.apple.mpegurl')) {
      this.quality.disabled = true;
      this.video.src = src;
      if (autoplay) this.video.play().catch(() => {});
    } else {
      this.error.textContent = 'This browser cannot play HLS.';
    }
  }

  stop() {
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    this.video.removeAttribute('src');
    this.video.load();
    this.quality.disabled = false;
  }

  /** The version a rendition URL names (`/v/{id}/{version}/{rendition}/…`). */
  static versionOf(url) {
    const m = /\/v\/[^/]+\/(\d+)\//.exec(url || '');
    return m ? Number(m[1]) : null;
  }

  syncSeek() {
    const d = this.video.duration;
    if (Number.isFinite(d)) this.seek.max = String(d);
    if (document.activeElement !== this.seek) this.seek.value = String(this.video.currentTime || 0);
  }

  stats() {
    const hls = this.hls;
    const v = this.video;
    let rendition = '–', version = '–', bandwidth = '–', latency = '–';
    if (hls && hls.levels && hls.currentLevel >= 0) {
      const l = hls.levels[hls.currentLevel];
      if (l) {
        rendition = `${l.height ? l.height + 'p' : l.name || hls.currentLevel} · ${bitrate(l.bitrate)}${hls.autoLevelEnabled ? ' (auto)' : ''}`;
        const n = Player.versionOf(l.uri);
        if (n) version = String(n);
      }
    }
    if (hls) bandwidth = bitrate(hls.bandwidthEstimate);
    let ahead = 0;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= v.currentTime && v.currentTime <= v.buffered.end(i)) {
        ahead = v.buffered.end(i) - v.currentTime;
      }
    }
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    if (hls && hls.playingDate && !Number.isNaN(hls.playingDate.getTime()) && isLive(hls)) {
      latency = `${((Date.now() - hls.playingDate.getTime()) / 1000).toFixed(2)} s`;
    }
    $('stat-rendition').textContent = rendition;
    $('stat-version').textContent = version;
    $('stat-bandwidth').textContent = bandwidth;
    $('stat-buffer').textContent = `${ahead.toFixed(1)} s`;
    $('stat-dropped').textContent = q ? `${q.droppedVideoFrames} of ${q.totalVideoFrames}` : '–';
    $('stat-latency').textContent = latency;
    v.dataset.version = version;
    v.dataset.latencyMs = latency === '–' ? '' : String(Date.now() - hls.playingDate.getTime());
  }

  async loadThumbnails(url) {
    this.cues = [];
    if (!url) return;
    try {
      const resp = await fetch(url);
      if (!resp.ok) return;
      this.cues = parseThumbnails(await resp.text(), new URL(url, location.href));
    } catch { /* previews are optional */ }
  }

  showPreview(t, x) {
    const cue = this.cues.find((c) => t >= c.start && t < c.end);
    if (!cue) { this.preview.hidden = true; return; }
    const p = this.preview;
    p.hidden = false;
    p.style.width = `${cue.w}px`;
    p.style.height = `${cue.h}px`;
    p.style.backgroundImage = `url("${cue.src}")`;
    p.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    const r = this.seek.getBoundingClientRect();
    const at = x ?? (t / (Number(this.seek.max) || 1)) * r.width;
    p.style.left = `${Math.min(Math.max(at, cue.w / 2), r.width - cue.w / 2)}px`;
    p.firstElementChild.textContent = duration(t);
  }
}

function isLive(hls) {
  const l = hls.levels && hls.levels[hls.currentLevel];
  return !!(l && l.details && l.details.live);
}

/** WebVTT thumbnail cues (`start --> end` then `sheet.jpg#xywh=x,y,w,h`). */
export function parseThumbnails(text, base) {
  const ts = (s) => {
    const p = s.trim().split(':').map(Number);
    return p.reduce((acc, n) => acc * 60 + n, 0);
  };
  const cues = [];
  const blocks = text.replace(/\r/g, '').split('\n\n');
  for (const b of blocks) {
    const lines = b.split('\n').filter(Boolean);
    const i = lines.findIndex((l) => l.includes('-->'));
    if (i < 0 || !lines[i + 1]) continue;
    const [a, z] = lines[i].split('-->');
    const [file, frag] = lines[i + 1].split('#xywh=');
    if (!frag) continue;
    const [x, y, w, h] = frag.split(',').map(Number);
    cues.push({ start: ts(a), end: ts(z), src: new URL(file, base).toString(), x, y, w, h });
  }
  return cues;
}
