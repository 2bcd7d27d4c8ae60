# Shared bash helpers for scripts/*. Source it; do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

# Versions pinned here so every machine runs the same peers.
S3S_FS_VERSION="0.14.1"
GARAGE_VERSION="2.5.0"
TUSPY_VERSION="1.1.0"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run as root, or through sudo when available.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

APT_UPDATED=""
# apt_install PKG...: install the Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_garage: install the Garage S3 server (scripts/cluster, the 3-node test) when missing.
ensure_garage() {
  command -v garage >/dev/null && return 0
  log "installing garage $GARAGE_VERSION (cargo install, ~12 min once)"
  cargo install garage --version "$GARAGE_VERSION" --locked --quiet
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: poll until URL answers 200.
wait_http() {
  local url=$1 secs=${2:-30} i=0
  while [ $i -lt $((secs * 10)) ]; do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1; i=$((i + 1))
  done
  return 1
}

# start DIR NAME CMD...: run CMD in the background with its log in DIR/logs/NAME.log, in a
# session of its own (so a terminal's Ctrl-C reaches only the calling script, which then stops
# the services in order), its pid appended to PIDS and to DIR/pids.
start() {
  local dir=$1 name=$2; shift 2
  mkdir -p "$dir/logs"
  setsid "$@" >"$dir/logs/$name.log" 2>&1 &
  PIDS+=($!)
  echo $! >> "$dir/pids"
}

# running PID: the process exists and is not a zombie (an exited child stays one until `wait`).
running() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# stop_services: stop what `start` started, newest first, each before the next (publisher and
# edge before the transcoder, the transcoder before the ingest it pulls from, Redis last), so
# no service loses its dependencies while it shuts down. A service still running after 30 s
# is killed.
stop_services() {
  local i pid n
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    kill "$pid" 2>/dev/null || continue
    for ((n = 0; n < 300; n++)); do running "$pid" || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# stop_leftovers DIR: kill what a previous run under DIR that was killed hard left running.
stop_leftovers() {
  [ -f "$1/pids" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$1/pids"
  rm -f "$1/pids"
}

# stack_start DIR [no-transcoder]: Redis, ingest, transcoder and edge from $BIN on free loopback
# ports, logs in DIR/logs, state under DIR. The edge is the front door to the ingest (node tag
# `a`, config DIR/edge.toml): $EDGE_PORT serves /files/, /v1/ and /live/ as well as playback. Object store: the filesystem backend in DIR/store,
# or S3 when RINGCAST_S3_ENDPOINT is set (with RINGCAST_S3_ACCESS_KEY, RINGCAST_S3_SECRET_KEY,
# optional RINGCAST_S3_BUCKET). Sets REDIS_PORT, INGEST_PORT, EDGE_PORT; pids go to PIDS. The
# ingest requires API keys (its default): an admin key of owner `demo` is made with the ingest's
# own CLI and exported as RINGCAST_API_KEY, which ringcast-loadtest's upload commands read.
# With RINGCAST_CLAMD set (a clamd's unix socket or host:port) the ingest scans every upload.
stack_start() {
  local dir=$1 with_transcoder=${2:-yes}
  mkdir -p "$dir/store"
  REDIS_PORT=$(free_port); INGEST_PORT=$(free_port); EDGE_PORT=$(free_port)
  start "$dir" redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir"
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null || die "redis-server did not start (see $dir/logs/redis.log)"
  local svc
  for svc in INGEST TRANSCODER EDGE; do
    export "RINGCAST_${svc}_REDIS__URL=redis://127.0.0.1:$REDIS_PORT/0"
    if [ -n "${RINGCAST_S3_ENDPOINT:-}" ]; then
      export "RINGCAST_${svc}_STORE__BACKEND=s3" "RINGCAST_${svc}_STORE__ENDPOINT=$RINGCAST_S3_ENDPOINT" \
        "RINGCAST_${svc}_STORE__ACCESS_KEY=${RINGCAST_S3_ACCESS_KEY:?}" \
        "RINGCAST_${svc}_STORE__SECRET_KEY=${RINGCAST_S3_SECRET_KEY:?}" \
        "RINGCAST_${svc}_STORE__BUCKET=${RINGCAST_S3_BUCKET:-ringcast}"
    else
      export "RINGCAST_${svc}_STORE__ROOT=$dir/store"
    fi
  done
  export RINGCAST_INGEST_DATA_DIR="$dir/ingest" RINGCAST_TRANSCODER_WORK_DIR="$dir/transcoder"
  # One random playback-signing secret for the ingest (POST /v1/videos/{id}/playback) and the
  # edge (private videos need a URL it can verify).
  local secret; secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  export RINGCAST_INGEST_PLAYBACK__SIGNING_SECRET="$secret" RINGCAST_EDGE_SIGNED_URLS__SECRET="$secret"
  export RINGCAST_INGEST_NODE_TAG=a
  # Optional virus scan: RINGCAST_CLAMD=/run/clamav/clamd.ctl (or host:port) of a running clamd.
  if [ -n "${RINGCAST_CLAMD:-}" ]; then export RINGCAST_INGEST_SCAN__CLAMD="$RINGCAST_CLAMD"; fi
  printf '[front_door]\nnodes = [{ tag = "a", url = "http://127.0.0.1:%s" }]\n' "$INGEST_PORT" > "$dir/edge.toml"
  start "$dir" ingest "$BIN/ringcast-ingest" --listen "127.0.0.1:$INGEST_PORT"
  [ "$with_transcoder" = no-transcoder ] || transcoder_start "$dir"
  start "$dir" edge "$BIN/ringcast-edge" --config "$dir/edge.toml" --listen "127.0.0.1:$EDGE_PORT"
  wait_http "http://127.0.0.1:$INGEST_PORT/healthz" 30 || die "ingest did not start (see $dir/logs/ingest.log)"
  RINGCAST_API_KEY=$("$BIN/ringcast-ingest" keys create --owner demo --role admin \
    --label "scripts: local stack" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') \
    || die "could not create an API key (see $dir/logs/ingest.log)"
  export RINGCAST_API_KEY
  wait_http "http://127.0.0.1:$EDGE_PORT/healthz" 30 || die "edge did not start (see $dir/logs/edge.log)"
}

# transcoder_start DIR [ARG...]: the transcoder of a stack_start'ed stack (same environment,
# extra command-line arguments such as `--config FILE`), ready when its metrics endpoint
# answers (it listens only after Redis and the store were reached).
transcoder_start() {
  TRANSCODER_METRICS_PORT=$(free_port)
  RINGCAST_TRANSCODER_METRICS_LISTEN="127.0.0.1:$TRANSCODER_METRICS_PORT" \
    start "$1" transcoder "$BIN/ringcast-transcoder" "${@:2}"
  wait_http "http://127.0.0.1:$TRANSCODER_METRICS_PORT/healthz" 30 \
    || die "transcoder did not start (see $1/logs/transcoder.log)"
}

# nginx_conf WORKERS PORT NAME: the fair nginx configuration of the static-hit benchmarks (sendfile,
# open_file_cache, keep-alive, reuseport; root $WORK/store), written to $WORK/NAME.conf.
nginx_conf() {
  cat > "$WORK/$3.conf" <<NGINX
worker_processes $1;
daemon off;
pid $WORK/$3.pid;
error_log $WORK/$3-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  types { video/iso.segment m4s; }
  server { listen 127.0.0.1:$2 reuseport; root $WORK/store; }
}
NGINX
}

# make_clip OUT SECONDS [SIZE]: an H.264/AAC test clip (testsrc2 + a sine tone).
make_clip() {
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=${3:-1920x1080}:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$2" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 128k "$1"
}

# lag_stats VIDEO T0_MS T1_MS (a stack_start'ed stack): parts announced in [T0, T1] over all renditions of VIDEO, and
# their producer lag p50/p90/max in ms, as "parts p50 p90 max".
lag_stats() {
  local keys
  keys=$(redis-cli -p "$REDIS_PORT" --scan --pattern "rc:events:$1:*")
  for k in $keys; do redis-cli -p "$REDIS_PORT" --raw XRANGE "$k" - +; echo "--"; done \
    | python3 -c '
import json, re, sys
t0, t1 = int(sys.argv[1]), int(sys.argv[2])
lags, parts = [], 0
def flush(events):
    global parts
    dates = {e["msn"]: e["program_date_time_ms"] for _, e in events if e["type"] == "segment_end"}
    end = {}
    for at, e in events:
        if e["type"] != "part":
            continue
        end[e["msn"]] = end.get(e["msn"], 0.0) + e["duration"]
        if t0 <= at <= t1:
            parts += 1
            if e["msn"] in dates:
                lags.append(at - (dates[e["msn"]] + end[e["msn"]] * 1000))
lines, events = sys.stdin.read().split("\n"), []
i = 0
while i < len(lines):
    if lines[i] == "--":
        flush(events); events = []
    elif re.fullmatch(r"\d+-\d+", lines[i]) and i + 2 < len(lines) and lines[i + 1] == "e":
        events.append((int(lines[i].split("-")[0]), json.loads(lines[i + 2]))); i += 2
    i += 1
lags.sort()
q = lambda p: "%.0f" % lags[min(len(lags) - 1, int(p * (len(lags) - 1) + 0.5))] if lags else "-"
print(parts, q(0.5), q(0.9), q(1.0))' "$2" "$3"
}
