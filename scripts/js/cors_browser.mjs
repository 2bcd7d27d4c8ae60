// What a player on another origin reads from the edge, in headless Debian Chromium
// (playwright-core), started by `edge/tests/web.rs` with a JSON argument:
//   {"page": "http://localhost:PORT/healthz", "object": "http://127.0.0.1:PORT/v/…/seg.m4s"}
// The page and the object differ in host, so every fetch of the object from the page is a CORS
// request (with `Origin`), as hls.js's are. Steps (ADR 0012: the edge sends the CORS pair only
// to requests with `Origin`, and `Vary: Origin` on every answer):
//   1. a no-cors fetch of the object (no `Origin`: its answer has no pair) fills the browser's
//      HTTP cache (the object is immutable for a year);
//   2. a CORS fetch of the same URL must not be served that cached answer (it would fail the
//      CORS check): it succeeds, and the fields players read (`Age`, `ETag`, `X-Cache`,
//      `Content-Length`, `Last-Modified`) are readable;
//   3. a CORS range request (what hls.js sends for byte ranges): 206 with a readable
//      `Content-Range`.
// Prints one JSON line of findings; exits 1 when a step fails.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = JSON.parse(process.argv[2] || '{}');
const out = { ok: false };

async function main() {
  const profile = mkdtempSync(join(tmpdir(), 'ringcast-cors-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(cfg.page);
    Object.assign(out, await page.evaluate(async (url) => {
      const r = {};
      const opaque = await fetch(url, { mode: 'no-cors' });
      r.no_cors_type = opaque.type;
      try {
        const res = await fetch(url);
        r.cors_status = res.status;
        r.cors_len = (await res.arrayBuffer()).byteLength;
        for (const h of ['age', 'etag', 'x-cache', 'content-length', 'last-modified']) {
          r[h] = res.headers.get(h);
        }
      } catch (e) {
        r.cors_error = String(e);
      }
      try {
        const res = await fetch(url, { headers: { Range: 'bytes=1-3' } });
        r.range_status = res.status;
        r.content_range = res.headers.get('content-range');
        r.range_body = new TextDecoder().decode(await res.arrayBuffer());
      } catch (e) {
        r.range_error = String(e);
      }
      return r;
    }, cfg.object));
    out.ok = out.no_cors_type === 'opaque' && out.cors_status === 200 && out.age !== null
      && out.etag !== null && out['x-cache'] !== null && out['content-length'] !== null
      && out['last-modified'] !== null && out.range_status === 206
      && out.content_range !== null && out.content_range.startsWith('bytes 1-3/');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main()
  .catch((e) => { out.error = String(e); })
  .finally(() => {
    console.log(JSON.stringify(out));
    process.exit(out.ok ? 0 : 1);
  });
