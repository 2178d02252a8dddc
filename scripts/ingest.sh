#!/usr/bin/env bash
# Renders deploy/nginx-rtmp.conf.template into DIR and runs a private nginx-rtmp there.
#   scripts/ingest.sh render DIR RTMP_LISTEN HTTP_LISTEN HOOK_BASE HOOK_SECRET HEARTBEAT_LISTEN
#     HEARTBEAT_LISTEN: a loopback host:port where nginx relays its publishers'
#     heartbeats to the server (so a server that is down never cuts a live show)
#   scripts/ingest.sh run DIR            (foreground, for a supervisor)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

render() {
  local dir=$1 rtmp=$2 http=$3 hooks=$4 secret=$5 heartbeat=$6 user_line=""
  mkdir -p "$dir/hls" "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then user_line="user root;"; fi
  sed -e "s|@DIR@|$dir|g" -e "s|@RTMP_LISTEN@|$rtmp|g" -e "s|@HTTP_LISTEN@|$http|g" \
      -e "s|@HOOK_BASE@|$hooks|g" -e "s|@HEARTBEAT_LISTEN@|$heartbeat|g" -e "s|@HOOK_SECRET@|$secret|g" -e "s|@USER_LINE@|$user_line|g" \
      "$here/deploy/nginx-rtmp.conf.template" > "$dir/nginx.conf"
  chmod 600 "$dir/nginx.conf"   # it holds the hook secret
}

case "${1:-}" in
  render) [ $# -eq 7 ] || { echo "usage: $0 render DIR RTMP HTTP HOOK_BASE SECRET HEARTBEAT_LISTEN" >&2; exit 2; }
          shift; render "$@" ;;
  run)
    dir=$(cd "$2" && pwd)
    exec nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" ;;
  *) echo "usage: $0 render DIR RTMP HTTP HOOK_BASE SECRET HEARTBEAT_LISTEN | run DIR" >&2; exit 2 ;;
esac
