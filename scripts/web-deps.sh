#!/usr/bin/env bash
# The /live page's npm packages (hls.js, bundled into the server; playwright-core for
# its browser test), installed from the lock file when missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/../web"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] \
  && [ -f node_modules/hls.js/dist/hls.min.js ] && [ -d node_modules/playwright-core ]; then
  exit 0
fi
echo "web-deps: installing the page's npm packages"
npm ci --no-audit --no-fund --loglevel=error
