#!/usr/bin/env bash
# The API contract's checkers, from PyPI, in a virtualenv of their own (idempotent:
# installed once, quick when present):
#   openapi-spec-validator  validates the served OpenAPI 3.1 document;
#   schemathesis            property-based fuzzer driven by that document.
#   api-tools.sh install    installs them if missing
#   api-tools.sh bin        prints the directory holding their commands
set -euo pipefail
VENV=${FEZA_API_TOOLS_VENV:-/var/tmp/feza-apitools}
case "${1:-}" in
  install)
    if [ -x "$VENV/bin/schemathesis" ] && [ -x "$VENV/bin/openapi-spec-validator" ]; then exit 0; fi
    echo "api-tools: installing schemathesis and openapi-spec-validator into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      'schemathesis>=4.3,<5' 'openapi-spec-validator>=0.7,<0.10'
    ;;
  bin)
    echo "$VENV/bin"
    ;;
  *)
    echo "usage: $0 install | bin" >&2
    exit 2
    ;;
esac
