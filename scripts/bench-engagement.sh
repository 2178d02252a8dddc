#!/usr/bin/env bash
# The engagement benchmark (make bench): on one SQLite server,
#  1. 10,000 viewers hold one show's event stream open while its counts and chat
#     change every second: server RSS (per viewer) and CPU, delivery latency p99
#     (targets: < 100 KB per viewer, p99 < 1 s);
#  2. 5,000 reactions a second from 5,000 viewers over 8 source addresses (rate limits
#     raised by configuration): accepted rate and p99, then the counts checked against
#     the rows (target: >= 5,000/s, counts equal rows).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
CLIENTS=${BENCH_SSE_CLIENTS:-10000}
RATE=${BENCH_REACTIONS_PER_S:-5000}
VIEWERS=${BENCH_REACTION_VIEWERS:-5000}
SECONDS_=${BENCH_ENGAGEMENT_S:-20}

bash scripts/install-deps.sh
cargo build --release --locked -p live-server -p feza-tests --bin live-server --bin load-viewers
bin=$CARGO_TARGET_DIR/release
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. scripts/bench-lib.sh engagement
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

port=$(free_port)
api=http://127.0.0.1:$port
secret=bench-hook-secret-0123456789
FEZA_LISTEN=127.0.0.1:$port DATABASE_URL=sqlite://$work/feza.db FEZA_DATA_DIR=$work/data \
  FEZA_HOOK_SECRET=$secret RUST_LOG=warn FEZA_RATE_REACTIONS_PER_MIN=100000 \
  FEZA_RATE_COMMENTS_PER_MIN=100000 FEZA_RATE_JOINS_PER_MIN=100000 FEZA_RATE_IP_PER_MIN=10000000 \
  FEZA_RATE_VIEWERS_PER_MIN=10000000 FEZA_RATE_HEARTBEATS_PER_MIN=100000 \
  "$bin/live-server" serve & server=$!
pids+=($server)
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$api/api/health" 2>/dev/null && break; sleep 0.1; done
token=$("$bin/live-server" admin create-seller --name "Bench" --database-url "sqlite://$work/feza.db" | tail -n 1)
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
id=$(curl -fsS "${auth[@]}" -X POST "$api/api/streams" -d '{"title": "bench engagement"}' | json 'd["id"]')
key=$(curl -fsS "${auth[@]}" -X POST "$api/api/streams/$id/start" | json 'd["ingest"]["stream_key"]')
curl -sS -o /dev/null -X POST "$api/hooks/ingest/publish?secret=$secret" \
  -d "call=publish&app=live&name=$key&addr=127.0.0.1&clientid=1"
[ "$(curl -fsS "$api/api/streams/$id" | json 'd["status"]')" = live ] || { echo "the show is not live"; exit 1; }

echo "==> $CLIENTS viewers on one show's event stream, counts and chat changing every second"
rss0=$(rss_kb "$server")
"$bin/load-viewers" --base "$api" --stream "$id" sse --clients "$CLIENTS" --seconds "$SECONDS_" > "$work/sse.log" 2>&1 &
gen=$!
pids+=($gen)
# Measured while all are connected and events flow.
until grep -q 'marker 2' "$work/sse.log" 2>/dev/null || ! kill -0 "$gen" 2>/dev/null; do sleep 0.2; done
t0=$(cpu_ticks "$server") s0=$(date +%s.%N)
peak=0
while kill -0 "$gen" 2>/dev/null; do
  r=$(rss_kb "$server"); [ "$r" -gt "$peak" ] && peak=$r
  grep -q "marker $((SECONDS_ - 1))" "$work/sse.log" && break
  sleep 0.5
done
t1=$(cpu_ticks "$server") s1=$(date +%s.%N)
gen_status=0
wait "$gen" || gen_status=$?
grep -v marker "$work/sse.log"
[ "$gen_status" = 0 ] || { echo "FAIL: the event-stream load failed (above); no figure" >&2; exit 1; }
python3 - "$rss0" "$peak" "$CLIENTS" "$t0" "$t1" "$s0" "$s1" "$(getconf CLK_TCK)" <<'PY'
import sys
rss0, peak, clients, t0, t1 = (int(x) for x in sys.argv[1:6])
s0, s1, hz = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
print(f"server RSS {rss0 // 1024} MB idle, {peak // 1024} MB with {clients} viewers: "
      f"{(peak - rss0) / clients:.1f} KB per viewer (target < 100 KB)")
print(f"server CPU {((t1 - t0) / hz) / (s1 - s0) * 100:.0f} % of a core while delivering")
PY

echo "==> $RATE reactions a second from $VIEWERS viewers over 8 source addresses, ${SECONDS_} s"
"$bin/load-viewers" --base "$api" --stream "$id" react --viewers "$VIEWERS" --rate "$RATE" --seconds "$SECONDS_" --sources 8
sleep 1
counts=$(curl -fsS "$api/api/streams/$id" | json "str(d['counts']['likes']) + ' ' + str(d['counts']['dislikes'])")
python3 - "$work/feza.db" "$id" "$counts" <<'PY'
import sqlite3, sys
db, sid, counts = sys.argv[1], sys.argv[2], sys.argv[3].split()
c = sqlite3.connect(db)
rows = {k: c.execute("select count(*) from reactions where stream_id = ? and reaction = ?", (sid, k)).fetchone()[0] for k in ("like", "dislike")}
likes, dislikes = int(counts[0]), int(counts[1])
ok = (likes, dislikes) == (rows["like"], rows["dislike"])
print(f"counts likes={likes} dislikes={dislikes}; rows likes={rows['like']} dislikes={rows['dislike']}: {'equal' if ok else 'DIFFERENT'}")
sys.exit(0 if ok else 1)
PY
