# Shared by the benchmark scripts (sourced): a work directory removed at exit, child
# processes stopped at exit (each started in a process group of its own is stopped
# whole), and small helpers.
#   usage: . scripts/bench-lib.sh NAME   → $work, pids=(), free_port, json, now

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
