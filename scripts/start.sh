#!/usr/bin/env bash
# `npm start`: bring the app up. With an Electron binary (a desktop): the window. Otherwise web mode:
# the local libvirt host set up as the embedded default (on a root Linux machine of the lab's kind),
# the UI and API served on loopback, and the URL printed.
# Setup is shared with `npm test` (scripts/deps.sh): the pinned Node (npm ci) and, for the local host,
# the lab's Debian packages from scripts/debian-packages.txt (installed by lab.sh as root on Debian).
#   env: FLUID_PORT (web mode port, default random), FLUID_NO_LAB=1 (do not set up local libvirt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/deps.sh
. scripts/deps.sh
echo "== setup: the pinned Node toolchain"
deps_node || { echo "npm start: the pinned Node toolchain is not installed (see above)" >&2; exit 1; }
export PATH="$ROOT/node_modules/.bin:$PATH"
echo "== building"
npm run -s build >/dev/null

if [ -f node_modules/electron/path.txt ] && [ -e "node_modules/electron/dist/$(cat node_modules/electron/path.txt)" ] && { [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" != Linux ]; }; then
  exec electron .
fi

if [ "$(uname)" = Linux ] && [ "$(id -u)" = 0 ] && [ "${FLUID_NO_LAB:-0}" != 1 ]; then
  echo "== setting up the local libvirt host (first run takes a few minutes)"
  bash scripts/lab/lab.sh up
fi
exec node bin/fluid.js serve --port "${FLUID_PORT:-0}"
