#!/usr/bin/env bash
# The replay benchmark (make bench), on loopback:
#  1. a test-source show (720p30, default 10 minutes) with progressive upload, ended
#     with save: time from the end to a playable replay (target <= 30 s), and the live
#     stream's dropped frames (target: none caused by the upload);
#  2. throughput of a 1 GB recording through live-cast's uploader to the server, side
#     by side with `curl -T` of the same file to nginx (dav_methods PUT); the server's
#     peak RSS while it receives (target: >= 0.9x curl, RSS flat).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
SHOW_S=${BENCH_REPLAY_SHOW_S:-600}
BIG_S=${BENCH_UPLOAD_SECONDS:-100} # of 80 Mb/s snow: about 1 GB

bash scripts/install-deps.sh
cargo build --release --locked -p live-server -p live-studio --bin live-server --bin live-cast
bin=$CARGO_TARGET_DIR/release

. scripts/bench-lib.sh replay

start_stack
export FEZA_SERVER=$api FEZA_TOKEN=$token

echo "==> a ${SHOW_S} s show with progressive upload, ended with save"
"$bin/live-cast" go-live --title "bench replay" --profile 720p30 --duration "${SHOW_S}s" \
  --outcome save --record-dir "$work/rec" > "$work/show.log" 2>&1 &
cast=$!
id=""
for _ in $(seq 1 200); do
  id=$(curl -fsS "$api/api/streams?section=live" | json '[s["id"] for s in d["streams"]][0] if d["streams"] else ""')
  [ -n "$id" ] && break
  sleep 0.1
done
[ -n "$id" ] || { echo "the show never went live"; cat "$work/show.log"; exit 1; }
ended=""
while kill -0 "$cast" 2>/dev/null; do
  state=$(curl -fsS "$api/api/streams/$id" | json 'd["status"] + " " + ((d.get("replay") or {}).get("state") or "-")')
  case "$state" in
    archived*) [ -z "$ended" ] && ended=$(now) ;;
  esac
  case "$state" in
    "archived ready") ready=$(now); break ;;
  esac
  sleep 0.2
done
wait "$cast" || { echo "FAIL: live-cast failed:"; tail -n 20 "$work/show.log"; exit 1; }
# live-cast is done once its upload is: the replay may still be in the making.
for _ in $(seq 1 600); do
  [ -n "${ready:-}" ] && break
  state=$(curl -fsS "$api/api/streams/$id" | json 'd["status"] + " " + ((d.get("replay") or {}).get("state") or "-")')
  [ "$state" = "archived ready" ] && ready=$(now) && break
  sleep 0.2
done
state=$(curl -fsS "$api/api/streams/$id" | json '(d.get("replay") or {}).get("state")')
if [ -z "${ready:-}" ] || [ -z "${ended:-}" ]; then
  echo "FAIL: the replay never became ready (state: $state, saved: ${ended:+yes}); no figure" >&2
  exit 1
fi
last=$(grep -E '^[0-9]{2}:[0-9]{2}:[0-9]{2} \|' "$work/show.log" | tail -n 1)
capture_drops=$(echo "$last" | sed -E 's/.* fps, ([0-9]+) dropped.*/\1/')
out_drops=$(echo "$last" | sed -E 's/.*out0 .* dropped ([0-9]+) reconnects.*/\1/')
printf 'end with save -> replay %s: %.1f s (target <= 30 s)\n' "$state" "$(python3 -c "print($ready - ${ended:-$ready})")"
echo "live stream dropped frames: capture $capture_drops, marketplace output $out_drops (target: 0)"

echo "==> 1 GB upload: live-cast's uploader vs curl -T to nginx (dav PUT)"
big=$work/big.mkv
gst-launch-1.0 -q videotestsrc pattern=snow num-buffers=$((BIG_S * 30)) \
  ! video/x-raw,width=1280,height=720,framerate=30/1 \
  ! x264enc speed-preset=ultrafast bitrate=80000 key-int-max=60 ! h264parse \
  ! matroskamux ! filesink location="$big"
size=$(stat -c %s "$big")
# nginx receiving PUTs to disk: the plain-HTTP yardstick.
dav_port=$(free_port)
mkdir -p "$work/dav/root" "$work/dav/tmp"
# As root, nginx's workers would otherwise run as nobody and could not write there.
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
cat > "$work/dav/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes 1;
pid $work/dav/nginx.pid;
error_log $work/dav/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/dav/tmp;
  server {
    listen 127.0.0.1:$dav_port;
    client_max_body_size 0;
    location / { root $work/dav/root; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
setsid nginx -p "$work/dav" -c "$work/dav/nginx.conf" & pids+=($!)
sleep 0.5

# A saved show to upload to.
big_id=$(curl -fsS "${auth[@]}" -X POST "$api/api/streams" -d '{"title": "bench upload"}' | json 'd["id"]')
key=$(curl -fsS "${auth[@]}" -X POST "$api/api/streams/$big_id/start" | json 'd["ingest"]["stream_key"]')
curl -fsS -o /dev/null -X POST "$api/hooks/ingest/publish?secret=$secret" \
  -d "call=publish&app=live&name=$key&addr=127.0.0.1&clientid=1" || true
curl -fsS -o /dev/null "${auth[@]}" -X POST "$api/api/streams/$big_id/end" -d '{"outcome": "save"}'

rss_max=0
rss_before=$(ps -o rss= -p "$server" | tr -d ' ')
t0=$(now)
"$bin/live-cast" upload --stream "$big_id" --record-dir "$work/queue" --upload-wait 0s "$big" > "$work/upload.log" 2>&1 &
up=$!
while kill -0 "$up" 2>/dev/null; do
  r=$(ps -o rss= -p "$server" | tr -d ' ')
  [ "${r:-0}" -gt "$rss_max" ] && rss_max=$r
  if grep -q '(100 %)' "$work/upload.log"; then break; fi
  sleep 0.05
done
t1=$(now)
wait "$up" || { echo "FAIL: live-cast's upload failed; no figure:"; tail -n 20 "$work/upload.log"; exit 1; }
grep -q '(100 %)' "$work/upload.log" || { echo "FAIL: the upload never reached 100 %"; tail -n 20 "$work/upload.log"; exit 1; }
t2=$(now)
curl -sS --fail -o /dev/null -T "$big" "http://127.0.0.1:$dav_port/big.mkv"
t3=$(now)
[ "$(sha256sum < "$work/dav/root/big.mkv")" = "$(sha256sum < "$big")" ] \
  || { echo "FAIL: nginx did not store the file whole (SHA-256 differs); no figure"; exit 1; }
# What the server received whole becomes a replay of the recording's length.
for _ in $(seq 1 600); do
  big_state=$(curl -fsS "$api/api/streams/$big_id" | json '(d.get("replay") or {}).get("state") or "-"')
  case "$big_state" in ready|failed) break ;; esac
  sleep 0.5
done
[ "$big_state" = ready ] || { echo "FAIL: the uploaded recording's replay is $big_state, not ready; no figure"; exit 1; }
big_duration=$(curl -fsS "$api/api/streams/$big_id" | json 'd["replay"]["duration_s"]')
python3 -c "import sys; sys.exit(abs($big_duration - $BIG_S) > 1)" \
  || { echo "FAIL: the replay lasts $big_duration s, not the recording's $BIG_S s: the upload was not whole"; exit 1; }
python3 - "$size" "$t0" "$t1" "$t2" "$t3" "$rss_before" "$rss_max" <<'EOF'
import sys
size, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:6])
before, peak = int(sys.argv[6]) // 1024, int(sys.argv[7]) // 1024
ours, curl = size / (t1 - t0) / 1e6, size / (t3 - t2) / 1e6
print(f"file {size / 1e9:.2f} GB")
print(f"live-cast uploader -> live-server  {ours:7.1f} MB/s")
print(f"curl -T -> nginx (dav PUT)         {curl:7.1f} MB/s")
print(f"ratio {ours / curl:.2f}x (target >= 0.9x); server RSS {before} MB before, {peak} MB peak while receiving")
EOF
