#!/usr/bin/env bash
# make run: installs what is missing, builds, and starts the local stack: nginx-rtmp
# ingest, live-server on SQLite, a demo seller and a demo show from the headless
# broadcaster (live-cast). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

data=${FEZA_DATA_DIR:-$root/data}
listen=${FEZA_LISTEN:-127.0.0.1:8080}
rtmp_listen=${FEZA_RTMP_LISTEN:-127.0.0.1:1935}
hls_listen=${FEZA_HLS_LISTEN:-127.0.0.1:8088}
heartbeat_listen=${FEZA_INGEST_HEARTBEAT_LISTEN:-127.0.0.1:8089}
mkdir -p "$data"
data=$(cd "$data" && pwd)

bash scripts/install-deps.sh
echo "==> building"
cargo build --locked -p live-server -p live-studio --bin live-server --bin live-cast
server_bin=$CARGO_TARGET_DIR/debug/live-server
broadcaster_bin=$CARGO_TARGET_DIR/debug/live-cast
# The desktop app, where there is a display to show it on.
app_bin=""
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  bash scripts/app-deps.sh
  cargo build --locked -p feza-live --bin feza-live
  app_bin=$CARGO_TARGET_DIR/debug/feza-live
fi

# The hook secret both sides share: the server reads this same file when unset.
if [ -z "${FEZA_HOOK_SECRET:-}" ]; then
  if [ ! -s "$data/hook_secret" ]; then
    (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$data/hook_secret")
  fi
  FEZA_HOOK_SECRET=$(cat "$data/hook_secret")
fi
export FEZA_HOOK_SECRET FEZA_DATA_DIR=$data FEZA_LISTEN=$listen
export DATABASE_URL=${DATABASE_URL:-sqlite://$data/feza.db}
export FEZA_INGEST_URL=${FEZA_INGEST_URL:-rtmp://$rtmp_listen/live}
export FEZA_PLAYBACK_BASE=${FEZA_PLAYBACK_BASE:-http://$hls_listen/hls}

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "==> stopping"
  # Last started first: the broadcaster ends its show while the server is still up.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM -- "-${pids[i]}" 2>/dev/null || kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped"
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

# Each child in a process group of its own, so nginx's workers stop with it.
spawn() { setsid "$@" & pids+=($!); }

wait_for() { # URL WHAT
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "$2 did not start; see the logs in $data" >&2; exit 1
}

echo "==> ingest (nginx-rtmp) on rtmp://$rtmp_listen, HLS on http://$hls_listen"
bash scripts/ingest.sh render "$data/ingest" "$rtmp_listen" "$hls_listen" "http://$listen/hooks/ingest" "$FEZA_HOOK_SECRET" \
  "$heartbeat_listen"
spawn bash scripts/ingest.sh run "$data/ingest"
wait_for "http://$hls_listen/health" "nginx-rtmp"

echo "==> live-server on http://$listen ($(echo "$DATABASE_URL" | sed -E 's#://[^@/]*@#://***@#'))"
spawn "$server_bin" serve
wait_for "http://$listen/api/health" "live-server"

if [ ! -s "$data/demo_seller_token" ]; then
  "$server_bin" admin create-seller --name "Demo Seller" | tail -n 1 > "$data/demo_seller_token"
fi
token=$(cat "$data/demo_seller_token")

# A demo show: created and started through the API, then fed a live test pattern.
json() { python3 -c "import sys, json; d = json.load(sys.stdin); print($1)"; }
# The demo show: the headless broadcaster goes live with its test source (a moving
# pattern, a clock and a tone); it ends and saves the show when the stack stops.
spawn "$broadcaster_bin" go-live --server "http://$listen" --token "$token" \
  --title "Feza Live demo: test pattern" --profile 360p30 --record-dir "$data/recordings" \
  > "$data/live-cast.log" 2>&1
show=""
for _ in $(seq 1 150); do
  show=$(curl -fsS "http://$listen/api/streams?section=live" | json 'd["streams"][0]["id"] if d["streams"] else ""')
  [ -n "$show" ] && break
  sleep 0.2
done

if [ -n "$app_bin" ]; then
  echo "==> Feza Live Studio (the desktop app), signed in as the demo seller"
  spawn env FEZA_SERVER="http://$listen" FEZA_TOKEN="$token" "$app_bin" > "$data/feza-live.log" 2>&1
  app_line="Desktop app       Feza Live Studio, signed in as the demo seller (log: $data/feza-live.log)"
else
  app_line="Desktop app       not started: no display here (DISPLAY is unset); the headless live-cast runs the demo show"
fi

cat <<INFO

Feza Live is running.
  $app_line
  Public page       http://$listen/live   (Live Now, Upcoming, Recent; the demo show plays there)
  Live now (API)    http://$listen/api/streams?section=live
  Upcoming          http://$listen/api/streams?section=upcoming
  API reference     http://$listen/api/docs   (the contract: http://$listen/api/openapi.json)
  Demo show         http://$listen/api/streams/$show   (broadcaster log: $data/live-cast.log)
  Demo playback     $FEZA_PLAYBACK_BASE/$show.m3u8   (ffplay or any HLS player)
  Ingest            $FEZA_INGEST_URL   (the stream key comes from POST /api/streams/{id}/start)
  Database          $DATABASE_URL
  Demo seller token $token

Press Ctrl-C to stop.
INFO
wait
