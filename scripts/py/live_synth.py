#!/usr/bin/env python3
"""A synthetic LL-HLS packager for benchmarks (scripts/bench-live-cpu): writes part and segment
objects of a fixed size into an edge's --origin-dir and XADDs the real live events
(`ringcast_proto::live::LiveEvent` JSON, field `e`) to rc:events:{video}:1:{rendition}, in real
time, with no encoder: the CPU a benchmark measures is the edge's and the viewers', not ffmpeg's.

The stream starts with a full playlist window already in the past (`--backfill` segments), so
the edge renders a steady-state playlist from the first request, then announces one part every
`--part-ms` on an absolute schedule (no drift). Objects are written as temp file + rename, so the
edge never reads a partial one, before their event is added.

Usage: live_synth.py --redis-port P --dir ORIGIN_DIR [--video V] [--rendition R]
       [--part-ms 333] [--parts-per-segment 6] [--part-bytes 39000] [--backfill 30] [--secs S]
Talks RESP over a plain socket (no Python packages needed). Ends after --secs (default: never)
or on SIGTERM.
"""

import argparse
import json
import os
import signal
import socket
import sys
import time


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def call(self, *args):
        self.sock.sendall(resp(*args))
        line = self._line()
        if line.startswith(b"-"):
            raise RuntimeError(line[1:].decode())
        if line.startswith(b"$"):
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            val, self.buf = self.buf[:n], self.buf[n + 2:]
            return val
        return line[1:]


def put(root, key, body):
    path = os.path.join(root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(body)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--video", default="synth")
    ap.add_argument("--rendition", default="360p")
    ap.add_argument("--part-ms", type=int, default=333)
    ap.add_argument("--parts-per-segment", type=int, default=6)
    ap.add_argument("--part-bytes", type=int, default=39000)
    ap.add_argument("--backfill", type=int, default=30)
    ap.add_argument("--secs", type=float, default=0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    r = Redis(a.redis_port)
    stream = f"rc:events:{a.video}:1:{a.rendition}"
    r.call("DEL", stream)
    prefix = f"v/{a.video}/1/{a.rendition}/"
    part_s = a.part_ms / 1000.0
    seg_s = part_s * a.parts_per_segment
    put(a.dir, f"v/{a.video}/1/master.m3u8",
        (f"#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
         f"#EXT-X-STREAM-INF:BANDWIDTH={int(a.part_bytes * 8 / part_s * 1.1)},"
         f"CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360\n{a.rendition}/index.m3u8\n").encode())
    put(a.dir, prefix + "init.mp4", b"\0" * 800)
    filler = os.urandom(a.part_bytes)

    def xadd(event):
        event = {"v": 1, **event}
        r.call("XADD", stream, "MAXLEN", "~", 4000, "*", "e", json.dumps(event))

    now_ms = int(time.time() * 1000)
    started_ms = now_ms - int(a.backfill * seg_s * 1000)
    xadd({"type": "start", "target_duration": max(1, round(seg_s)), "part_target": part_s,
          "init": "init.mp4", "started_ms": started_ms})

    def part(msn, i):
        put(a.dir, prefix + f"part{msn}.{i}.m4s", b"%d.%d." % (msn, i) + filler[16:])
        xadd({"type": "part", "msn": msn, "part": i, "duration": part_s, "independent": i == 0})

    def segment_end(msn):
        body = b"".join(b"%d.%d." % (msn, i) + filler[16:] for i in range(a.parts_per_segment))
        put(a.dir, prefix + f"seg{msn}.m4s", body)
        xadd({"type": "segment_end", "msn": msn, "duration": seg_s,
              "program_date_time_ms": started_ms + int(msn * seg_s * 1000)})

    for msn in range(a.backfill):
        for i in range(a.parts_per_segment):
            part(msn, i)
        segment_end(msn)
    # Real time from here: part k of the live stream is due at t0 + (k + 1) × part duration.
    t0 = time.monotonic()
    k = 0
    msn = a.backfill
    while not a.secs or time.monotonic() - t0 < a.secs:
        due = t0 + (k + 1) * part_s
        left = due - time.monotonic()
        if left > 0:
            time.sleep(left)
        i = k % a.parts_per_segment
        part(msn, i)
        if i == a.parts_per_segment - 1:
            segment_end(msn)
            msn += 1
        k += 1


if __name__ == "__main__":
    main()
