#!/usr/bin/env bash
# make test: installs what is missing, builds once, then runs every test: unit tests,
# and the integration suite (HTTP API + real nginx-rtmp + GStreamer) on SQLite and on
# a private PostgreSQL started here. Under CI=true a missing part fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TERM_COLOR=never
log_dir=$(mktemp -d /tmp/feza-test.XXXXXX)
pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then scripts/pg.sh stop "$pg_dir" || true; rm -rf "$pg_dir"; fi
  rm -rf "$log_dir"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh
bash scripts/s3-local.sh install
bash scripts/api-tools.sh install

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-run

# Runs cargo test with the given arguments, tee'd into LOG; returns its status.
run_tests() {
  local log=$1; shift
  set +e
  cargo test --locked "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

# "P F" summed over the "test result:" lines of a log.
count() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
       END { printf "%d %d\n", p, f }' "$1"
}

failed=0
step "unit tests and command-line tests"
run_tests "$log_dir/unit.log" --workspace --exclude feza-tests || failed=1

step "integration suite on SQLite"
FEZA_TEST_DB=sqlite run_tests "$log_dir/sqlite.log" -p feza-tests --tests || failed=1

step "integration suite on PostgreSQL"
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg_dir=$(mktemp -d /tmp/feza-pg.XXXXXX)
if pg_url=$(scripts/pg.sh start "$pg_dir" "$pg_port"); then
  FEZA_TEST_DB=postgres FEZA_TEST_PG_URL=$pg_url run_tests "$log_dir/postgres.log" -p feza-tests --tests || failed=1
elif [ "${CI:-}" = "true" ]; then
  echo "FAIL: PostgreSQL could not be started (see above); the suite must run on it under CI" >&2
  failed=1
else
  echo "SKIPPED: PostgreSQL could not be started; install the Debian package postgresql" >&2
fi

read -r up uf < <(count "$log_dir/unit.log")
read -r sp sf < <(count "$log_dir/sqlite.log")
read -r pp pf < <(count "$log_dir/postgres.log" 2>/dev/null || echo "0 0")
printf '\n==> summary\n'
printf 'unit tests:                   %d passed, %d failed\n' "$up" "$uf"
printf 'integration suite, SQLite:    %d passed, %d failed\n' "$sp" "$sf"
printf 'integration suite, PostgreSQL: %d passed, %d failed\n' "$pp" "$pf"
if [ "$sp" -ne "$pp" ]; then
  echo "the suite did not pass the same number of tests on both databases" >&2
  failed=1
fi
printf '%d passed, %d failed\n' $((up + sp + pp)) $((uf + sf + pf))
exit "$failed"
