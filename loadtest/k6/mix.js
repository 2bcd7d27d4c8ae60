// Playlist + segment mix for k6 (same scenario as loadtest/wrk/mix.lua).
//   k6 run -e BASE=http://127.0.0.1:8080 -e DIR=/v/VIDEO/1/720p -e SEGMENTS=12 loadtest/k6/mix.js
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: __ENV.DURATION || '30s',
  thresholds: { http_req_failed: ['rate<0.001'] },
};

const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const DIR = __ENV.DIR || '/v/demo/1/720p';
const SEGMENTS = Number(__ENV.SEGMENTS || 10);
const RATIO = Number(__ENV.SEGMENTS_PER_PLAYLIST || 10);

export default function () {
  const pl = http.get(`${BASE}${DIR}/index.m3u8`);
  check(pl, { 'playlist 200': (r) => r.status === 200 });
  for (let i = 0; i < RATIO; i++) {
    const seg = http.get(`${BASE}${DIR}/seg${Math.floor(Math.random() * SEGMENTS)}.m4s`);
    check(seg, { 'segment 200': (r) => r.status === 200 });
  }
}
