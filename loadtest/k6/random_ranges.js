// Random single byte ranges over one object for k6 (same as loadtest/wrk/random_ranges.lua).
//   k6 run -e BASE=http://127.0.0.1:8080 -e OBJECT=/v/VIDEO/1/720p/seg3.m4s -e SIZE=1048576 loadtest/k6/random_ranges.js
import http from 'k6/http';
import { check } from 'k6';

export const options = { vus: Number(__ENV.VUS || 64), duration: __ENV.DURATION || '30s' };

const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const OBJECT = __ENV.OBJECT || '/v/demo/1/720p/seg0.m4s';
const SIZE = Number(__ENV.SIZE || 1000000);
const MAX = Number(__ENV.MAX_RANGE || 65536);

export default function () {
  const len = 1 + Math.floor(Math.random() * Math.min(MAX, SIZE));
  const first = Math.floor(Math.random() * (SIZE - len + 1));
  const res = http.get(`${BASE}${OBJECT}`, { headers: { Range: `bytes=${first}-${first + len - 1}` } });
  check(res, {
    '206': (r) => r.status === 206,
    'length matches': (r) => r.body.length === len,
  });
}
