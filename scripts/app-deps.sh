#!/usr/bin/env bash
# The desktop app's window (ui/: npm packages from its lock file, built by Vite into
# ui/dist, which the app embeds at compile time: run before building the workspace).
# With `driver`: tauri-driver too, for the app's WebDriver tests (cargo install into
# FEZA_TOOLS, /var/tmp/feza-tools by default). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../ui"
stamp=node_modules/.package-lock.json
if ! [ -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || ! [ -d node_modules/vite ]; then
  echo "app-deps: installing the window's npm packages"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
npm run --silent build >/dev/null
if [ "${1:-}" = driver ]; then
  tools=${FEZA_TOOLS:-/var/tmp/feza-tools}
  if ! [ -x "$tools/bin/tauri-driver" ]; then
    echo "app-deps: installing tauri-driver into $tools"
    cargo install tauri-driver --version '^2' --locked --root "$tools" --quiet
  fi
fi
