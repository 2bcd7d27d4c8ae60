// Validate an HLS master playlist and every media playlist it references with hls-parser in
// strict mode (throws on any spec violation). Usage: node validate_hls.mjs <master-url>
// Prints one JSON line with what was checked; exits 1 with the first error otherwise.
import HLS from 'hls-parser';

HLS.setOptions({ strictMode: true });

async function fetchText(url) {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status}`);
  const type = res.headers.get('content-type') || '';
  if (!type.startsWith('application/vnd.apple.mpegurl')) {
    throw new Error(`GET ${url}: unexpected Content-Type ${type}`);
  }
  return res.text();
}

async function main() {
  const masterUrl = process.argv[2];
  if (!masterUrl) throw new Error('usage: validate_hls.mjs <master-url>');
  const master = HLS.parse(await fetchText(masterUrl));
  if (!master.isMasterPlaylist) throw new Error(`${masterUrl} is not a master playlist`);
  if (master.variants.length === 0) throw new Error('master playlist has no variants');
  const report = { master: masterUrl, variants: [] };
  for (const v of master.variants) {
    const url = new URL(v.uri, masterUrl).toString();
    const media = HLS.parse(await fetchText(url));
    if (media.isMasterPlaylist) throw new Error(`${url} is a master playlist, expected media`);
    if (media.segments.length === 0) throw new Error(`${url} has no segments`);
    report.variants.push({
      uri: v.uri,
      bandwidth: v.bandwidth,
      resolution: v.resolution,
      codecs: v.codecs,
      segments: media.segments.length,
      endlist: media.endlist,
    });
  }
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.error(`hls validation failed: ${e.message}`);
  process.exit(1);
});
