// Validate playlist files with hls-parser in strict mode (throws on any spec violation).
// Usage: node validate_hls_files.mjs [--media] PATH...   (a PATH that is a directory stands for
// every file in it, sorted). --media also rejects a file that parses as a multivariant
// playlist. Prints one JSON line {checked, failed}; each failure goes to stderr; exits 1 when
// any file failed (or none was given).
import HLS from 'hls-parser';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

HLS.setOptions({ strictMode: true });

let mediaOnly = false;
const files = [];
for (const arg of process.argv.slice(2)) {
  if (arg === '--media') { mediaOnly = true; continue; }
  if (statSync(arg).isDirectory()) {
    for (const f of readdirSync(arg).sort()) files.push(join(arg, f));
  } else {
    files.push(arg);
  }
}
let failed = 0;
for (const file of files) {
  try {
    const pl = HLS.parse(readFileSync(file, 'utf8'));
    if (mediaOnly && pl.isMasterPlaylist) throw new Error('parsed as a multivariant playlist');
  } catch (e) {
    failed += 1;
    console.error(`${file}: ${e.message}`);
  }
}
console.log(JSON.stringify({ checked: files.length, failed }));
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
