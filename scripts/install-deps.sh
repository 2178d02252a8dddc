#!/usr/bin/env bash
# Installs the Debian packages Feza Live needs, only those missing. Idempotent and quick
# when everything is present (one dpkg-query). Run as root, or with sudo available.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config libssl-dev
  # media engine
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x ffmpeg fonts-dejavu-core
  # ingest and its secure/alternative front doors
  nginx libnginx-mod-rtmp stunnel4 srt-tools openssl glib-networking
  # a sound server with a microphone that tests can unplug
  pulseaudio pulseaudio-utils
  # cameras as desktops share them (PipeWire), and a camera that tests can unplug
  pipewire wireplumber gstreamer1.0-pipewire pipewire-bin
  # database
  postgresql
  # desktop app
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev
  xvfb webkit2gtk-driver dbus-x11 dunst imagemagick gnome-keyring libsecret-tools
  # web page tests and benchmarks
  chromium wrk curl procps time
  # a local S3-compatible server for the storage tests (moto, from PyPI)
  python3-venv
  # a recording disk that stalls, for the recording tests (a FUSE file system)
  python3-fusepy
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm for the page's packages (any Node.js >= 18 already present will do).
if ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  bash "$(dirname "$0")/web-deps.sh"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services on install; Feza Live runs its own private instances.
for svc in nginx postgresql; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
echo "install-deps: done"
bash "$(dirname "$0")/web-deps.sh"
