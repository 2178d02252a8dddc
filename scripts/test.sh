#!/usr/bin/env bash
# make test: installs what is missing, builds once, then runs every test: unit tests,
# and the integration suite (HTTP API + real nginx-rtmp + GStreamer). The suites whose
# subject is the database's work run on SQLite and on a private PostgreSQL started
# here; the others (media, broadcasting, the web page, the desktop app) on SQLite only. Under CI=true a
# missing part fails the run.
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
# The app's window is built before the workspace (the app embeds it); tauri-driver for
# its WebDriver tests.
bash scripts/app-deps.sh driver

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

# The suites whose subject is what the database stores and answers; every other file
# of tests/tests is a suite run on one database.
db_suites=(api contract engagement events ingest replays)
db_args=() one_db_args=()
for file in tests/tests/*.rs; do
  suite=$(basename "$file" .rs)
  if [[ " ${db_suites[*]} " == *" $suite "* ]]; then
    db_args+=(--test "$suite")
  else
    one_db_args+=(--test "$suite")
  fi
done

failed=0
step "unit tests and command-line tests"
run_tests "$log_dir/unit.log" --workspace --exclude feza-tests || failed=1

step "the app window's unit tests (Vitest)"
set +e
(cd ui && NO_COLOR=1 npx vitest run --reporter=verbose) 2>&1 | tee "$log_dir/ui.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
set -e

step "integration suites on one database (SQLite): ${one_db_args[*]}"
FEZA_TEST_DB=sqlite run_tests "$log_dir/one-db.log" -p feza-tests "${one_db_args[@]}" || failed=1

step "database suites on SQLite: ${db_args[*]}"
FEZA_TEST_DB=sqlite run_tests "$log_dir/sqlite.log" -p feza-tests "${db_args[@]}" || failed=1

step "database suites on PostgreSQL"
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg_dir=$(mktemp -d /tmp/feza-pg.XXXXXX)
if pg_url=$(scripts/pg.sh start "$pg_dir" "$pg_port"); then
  FEZA_TEST_DB=postgres FEZA_TEST_PG_URL=$pg_url run_tests "$log_dir/postgres.log" -p feza-tests "${db_args[@]}" || failed=1
elif [ "${CI:-}" = "true" ]; then
  echo "FAIL: PostgreSQL could not be started (see above); the suite must run on it under CI" >&2
  failed=1
else
  echo "SKIPPED: PostgreSQL could not be started; install the Debian package postgresql" >&2
fi

read -r up uf < <(count "$log_dir/unit.log")
# Vitest's closing line: "Tests  8 passed (8)" or "Tests  1 failed | 7 passed (8)".
read -r wp wf < <(awk '/^ *Tests +/ { for (i = 1; i <= NF; i++) { if ($(i) == "passed") p = $(i-1); if ($(i) == "failed") f = $(i-1) } }
  END { printf "%d %d\n", p, f }' "$log_dir/ui.log")
[ "$wp" -gt 0 ] || { echo "the app window's unit tests did not run" >&2; failed=1; }
read -r op of < <(count "$log_dir/one-db.log")
read -r sp sf < <(count "$log_dir/sqlite.log")
read -r pp pf < <(count "$log_dir/postgres.log" 2>/dev/null || echo "0 0")
printf '\n==> summary\n'
printf 'unit tests:                       %d passed, %d failed\n' "$up" "$uf"
printf 'app window (Vitest):              %d passed, %d failed\n' "$wp" "$wf"
printf 'media, broadcasting, page, app:   %d passed, %d failed\n' "$op" "$of"
printf 'database suites, SQLite:          %d passed, %d failed\n' "$sp" "$sf"
printf 'database suites, PostgreSQL:      %d passed, %d failed\n' "$pp" "$pf"
if [ "$sp" -ne "$pp" ]; then
  echo "the database suites did not pass the same number of tests on both databases" >&2
  failed=1
fi
printf '%d passed, %d failed\n' $((up + wp + op + sp + pp)) $((uf + wf + of + sf + pf))
exit "$failed"
