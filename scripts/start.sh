#!/usr/bin/env bash
# `npm start`: bring the app up. With an Electron binary (a desktop): the window. Otherwise web mode:
# the local libvirt host set up as the embedded default (on a root Linux machine of the lab's kind),
# the UI and API served on loopback, and the URL printed.
#   env: FLUID_PORT (web mode port, default random), FLUID_NO_LAB=1 (do not set up local libvirt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing dependencies"
  ELECTRON_SKIP_BINARY_DOWNLOAD=${ELECTRON_SKIP_BINARY_DOWNLOAD:-1} npm ci --no-audit --no-fund
fi
export PATH="$ROOT/node_modules/.bin:$PATH"
echo "== building"
electron-vite build >/dev/null

if [ -f node_modules/electron/path.txt ] && [ -e "node_modules/electron/dist/$(cat node_modules/electron/path.txt)" ] && { [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" != Linux ]; }; then
  exec electron .
fi

if [ "$(uname)" = Linux ] && [ "$(id -u)" = 0 ] && [ "${FLUID_NO_LAB:-0}" != 1 ]; then
  echo "== setting up the local libvirt host (first run takes a few minutes)"
  bash scripts/lab/lab.sh up
fi
exec node bin/fluid.js serve --port "${FLUID_PORT:-0}"
