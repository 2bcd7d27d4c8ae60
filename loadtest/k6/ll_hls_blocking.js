// LL-HLS blocking reloads for k6 (same scenario as loadtest/wrk/ll_hls_blocking.lua): each VU
// follows the live edge with _HLS_msn/_HLS_part and downloads every new part.
//   k6 run -e BASE=http://127.0.0.1:8080 -e PLAYLIST=/v/LIVE/1/720p/index.m3u8 loadtest/k6/ll_hls_blocking.js
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';

export const options = {
  vus: Number(__ENV.VUS || 200),
  duration: __ENV.DURATION || '30s',
};

const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const PLAYLIST = __ENV.PLAYLIST || '/v/live/1/720p/index.m3u8';
const partLatency = new Trend('part_fetch_ms', true);

function lastPart(text) {
  // The last EXT-X-PART line names the newest part: part{msn}.{i}.m4s
  const parts = [...text.matchAll(/#EXT-X-PART:.*URI="part(\d+)\.(\d+)\.m4s"/g)];
  if (parts.length === 0) return null;
  const m = parts[parts.length - 1];
  return { msn: Number(m[1]), part: Number(m[2]) };
}

export default function () {
  let res = http.get(`${BASE}${PLAYLIST}`);
  check(res, { 'playlist 200': (r) => r.status === 200 });
  let cur = lastPart(res.body);
  if (!cur) return;
  const dir = PLAYLIST.substring(0, PLAYLIST.lastIndexOf('/') + 1);
  for (let i = 0; i < 20; i++) {
    const next = { msn: cur.msn, part: cur.part + 1 };
    res = http.get(`${BASE}${PLAYLIST}?_HLS_msn=${next.msn}&_HLS_part=${next.part}`, { timeout: '10s' });
    if (!check(res, { 'blocking reload 200': (r) => r.status === 200 })) return;
    const newest = lastPart(res.body);
    if (!newest) return;
    const part = http.get(`${BASE}${dir}part${newest.msn}.${newest.part}.m4s`);
    check(part, { 'part 200': (r) => r.status === 200 });
    partLatency.add(part.timings.duration);
    cur = newest;
  }
}
