#!/usr/bin/env bash
# make bench: benchmarks that print figures (never part of make test): the catalog
# (below), the broadcaster (scripts/bench-broadcast.sh), replays
# (scripts/bench-replay.sh) and engagement (scripts/bench-engagement.sh).
#   catalog: 100,000 shows of mixed statuses; the three list sections walked from many
#   cursors by wrk (a separate process), paced at about 500 requests/s and then flat
#   out; requests/s and p50/p99 latency on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
STREAMS=${BENCH_STREAMS:-100000}
DURATION=${BENCH_DURATION:-20s}

bash scripts/install-deps.sh
cargo build --release --locked -p live-server -p feza-tests --bin live-server --bin bench-catalog
bin=$CARGO_TARGET_DIR/release

work=$(mktemp -d /tmp/feza-bench.XXXXXX)
server_pid="" pg_dir=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$pg_dir" ] && scripts/pg.sh stop "$pg_dir"
  rm -rf "$work" "${pg_dir:-/nonexistent}"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wrk's output → "REQ_PER_S P50 P99" (latencies in ms).
parse_wrk() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec:/ { rps = $2 }
    END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' "$1"
}

results=()
bench_db() { # NAME DATABASE_URL
  local name=$1 url=$2 port
  echo "==> catalog on $name: seeding $STREAMS shows"
  "$bin/bench-catalog" --database-url "$url" --streams "$STREAMS" --lua "$work/paths.lua"
  cat "$work/paths.lua" - > "$work/counted.lua" <<'LUA'
-- Every answer that is not 200 is counted by its status, and said at the end.
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() failed = {} end
response = function(status)
  if status ~= 200 then failed[status] = (failed[status] or 0) + 1 end
end
done = function(summary)
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("failed")) do io.write(string.format("FAILED: %d answered %d\n", n, status)) end
  end
end
LUA
  { cat "$work/counted.lua"; echo 'delay = function() return 20 end'; } > "$work/paced.lua"
  port=$(free_port)
  # The seeded live shows' ingest was heard at seeding: they stay live through the run
  # (no ingest sends heartbeats here).
  FEZA_LISTEN=127.0.0.1:$port DATABASE_URL=$url FEZA_DATA_DIR=$work/data RUST_LOG=warn \
    FEZA_INGEST_STALE_S=3600 FEZA_RECONNECT_GRACE_S=3600 \
    "$bin/live-server" serve &
  server_pid=$!
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/api/health" 2>/dev/null && break; sleep 0.1; done
  wrk -t1 -c4 -d3s -s "$work/paths.lua" "http://127.0.0.1:$port" >/dev/null   # warm-up
  # 11 connections, each waiting 20 ms between requests: about 500 requests/s.
  wrk -t1 -c11 -d"$DURATION" --latency -s "$work/paced.lua" "http://127.0.0.1:$port" > "$work/paced.txt"
  wrk -t1 -c32 -d"$DURATION" --latency -s "$work/counted.lua" "http://127.0.0.1:$port" > "$work/max.txt"
  local rss anon
  # Peak resident set (includes SQLite's memory-mapped database file), and the
  # server's own (anonymous) memory now.
  rss=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$server_pid/status")
  anon=$(awk '/RssAnon/ { print int($2 / 1024) }' "/proc/$server_pid/status")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  # A figure over failed work is no figure: any answer but 200, any socket error.
  local run bad=0
  for run in paced max; do
    if grep -E '^FAILED:|Non-2xx|Socket errors' "$work/$run.txt"; then
      echo "FAIL: the catalog bench on $name ($run) had failed requests (above); no figures" >&2
      bad=1
    fi
  done
  [ "$bad" = 0 ] || exit 1
  read -r prps pp50 pp99 < <(parse_wrk "$work/paced.txt")
  read -r mrps mp50 mp99 < <(parse_wrk "$work/max.txt")
  results+=("$(printf '%-10s | paced %5s req/s  p50 %6s ms  p99 %6s ms | flat out %5s req/s  p50 %6s ms  p99 %6s ms | peak RSS %s MB (own %s MB)' \
    "$name" "$prps" "$pp50" "$pp99" "$mrps" "$mp50" "$mp99" "$rss" "$anon")")
  echo "${results[-1]}"
}

DBS=${BENCH_DBS:-sqlite postgres}
if [[ " $DBS " == *" sqlite "* ]]; then
  bench_db sqlite "sqlite://$work/bench.db"
fi
if [[ " $DBS " == *" postgres "* ]]; then
  pg_dir=$(mktemp -d /tmp/feza-bench-pg.XXXXXX)
  pg_url=$(scripts/pg.sh start "$pg_dir" "$(free_port)")
  bench_db postgres "$pg_url"
fi

if [ "${BENCH_BROADCAST:-1}" = 1 ]; then
  bash scripts/bench-broadcast.sh
fi
if [ "${BENCH_REPLAY:-1}" = 1 ]; then
  bash scripts/bench-replay.sh
fi
if [ "${BENCH_ENGAGEMENT:-1}" = 1 ]; then
  bash scripts/bench-engagement.sh
fi

echo
echo "==> catalog list latency, $STREAMS shows, 3 sections x varied cursors, limit 20 (target: p99 < 10 ms at 500 req/s)"
printf '%s\n' "${results[@]}"
