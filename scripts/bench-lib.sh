# Shared by the benchmark scripts (sourced): a work directory removed at exit, child
# processes stopped at exit (each started in a process group of its own is stopped
# whole), and small helpers.
#   usage: . scripts/bench-lib.sh NAME   → $work, pids=(), free_port, json, now, start_stack

work=$(mktemp -d "/var/tmp/feza-bench-$1.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import sys, json; d = json.load(sys.stdin); print($1)"; }
now() { date +%s.%N; }

# nginx-rtmp and live-server (release, SQLite in $work) on free ports, and a seller.
# Needs $bin. Sets $api, $secret, $server (its pid), $token, $auth (curl headers).
start_stack() {
  local api_port rtmp_port hls_port
  api_port=$(free_port) rtmp_port=$(free_port) hls_port=$(free_port)
  api=http://127.0.0.1:$api_port
  secret=bench-hook-secret-0123456789
  bash scripts/ingest.sh render "$work/ingest" "127.0.0.1:$rtmp_port" "127.0.0.1:$hls_port" "$api/hooks/ingest" "$secret" \
    "127.0.0.1:$(free_port)"
  setsid bash scripts/ingest.sh run "$work/ingest" & pids+=($!)
  FEZA_LISTEN=127.0.0.1:$api_port DATABASE_URL=sqlite://$work/feza.db FEZA_DATA_DIR=$work/data \
    FEZA_HOOK_SECRET=$secret FEZA_INGEST_URL=rtmp://127.0.0.1:$rtmp_port/live RUST_LOG=warn \
    setsid "$bin/live-server" serve & server=$! pids+=($!)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$api/api/health" 2>/dev/null && break; sleep 0.1; done
  token=$("$bin/live-server" admin create-seller --name "Bench" --database-url "sqlite://$work/feza.db" | tail -n 1)
  auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
}
