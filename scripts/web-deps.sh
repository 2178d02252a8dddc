#!/usr/bin/env bash
# The web pages' npm packages (hls.js and swagger-ui-dist, bundled into the server;
# playwright-core for the browser tests), installed from the lock file when missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/../web"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] \
  && [ -f node_modules/hls.js/dist/hls.min.js ] && [ -f node_modules/swagger-ui-dist/swagger-ui-bundle.js ] && [ -d node_modules/playwright-core ]; then
  exit 0
fi
echo "web-deps: installing the page's npm packages"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
