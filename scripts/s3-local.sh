#!/usr/bin/env bash
# A local S3-compatible server for tests and demos: moto's server, from PyPI, in a
# virtualenv of its own (idempotent: installed once, quick when present).
#   s3-local.sh install      installs it if missing
#   s3-local.sh run PORT     runs it on 127.0.0.1:PORT (foreground)
set -euo pipefail
VENV=${FEZA_MOTO_VENV:-/var/tmp/feza-moto}
case "${1:-}" in
  install)
    if [ -x "$VENV/bin/moto_server" ]; then exit 0; fi
    echo "s3-local: installing moto[server] into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
    ;;
  run)
    exec "$VENV/bin/moto_server" -H 127.0.0.1 -p "${2:?port}"
    ;;
  *)
    echo "usage: $0 install | run PORT" >&2
    exit 2
    ;;
esac
