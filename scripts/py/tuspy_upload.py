"""tuspy driven by ingest/tests/tus_interop.rs: one upload per run, options as JSON in argv[1]:
endpoint, file, url (resume a known upload), chunk_size, checksum (send Upload-Checksum, sha1),
authorization, chunks (upload only this many chunks, then stop: a pause).
Prints one JSON object per line: {"event": "url"|"progress"|"paused"|"success"|"error", ...}."""

import json
import sys

from tusclient import client

o = json.loads(sys.argv[1])


def out(event, **extra):
    print(json.dumps({"event": event, **extra}), flush=True)


headers = {"Authorization": o["authorization"]} if o.get("authorization") else {}
c = client.TusClient(o["endpoint"], headers=headers)
try:
    uploader = c.uploader(
        o["file"],
        url=o.get("url"),
        chunk_size=o.get("chunk_size", 64 * 1024),
        upload_checksum=bool(o.get("checksum")),
        metadata={"filename": "clip.mp4"},
        retries=o.get("retries", 0),
        retry_delay=1,
    )
    out("url", url=uploader.url)
    if o.get("chunks"):
        for _ in range(o["chunks"]):
            uploader.upload_chunk()
            out("progress", offset=uploader.offset)
        out("paused", url=uploader.url, offset=uploader.offset)
    else:
        uploader.upload()
        out("success", url=uploader.url, offset=uploader.offset)
except Exception as e:  # every failure is reported to the test, which asserts on it
    out("error", message=f"{type(e).__name__}: {e}")
    sys.exit(1)
