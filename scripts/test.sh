#!/usr/bin/env bash
# `npm test`: static checks, build, then every suite (unit, conformance, lab integration, Chromium e2e)
# in one node:test run that ends with "N passed, N failed". Tests that need the lab fail if it is missing.
#   env: FLUID_TEST_ONLY="test/unit" (limit the suites), FLUID_SKIP_LAB_UP=1 (do not bring the lab up)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ELECTRON_SKIP_BINARY_DOWNLOAD=1

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
export PATH="$ROOT/node_modules/.bin:$PATH"
node -e 'if (+process.versions.node.split(".")[0] < 24) { console.error("pinned Node 24 missing: run npm ci"); process.exit(1) }'

step() { printf '\n== %s\n' "$1"; }
step "lint";        eslint . --max-warnings=0
step "format";      prettier --check . >/dev/null || { prettier --check . | tail -20; exit 1; }
step "typecheck";   npm run -s typecheck
step "build";       electron-vite build >/dev/null

if [ "${FLUID_SKIP_LAB_UP:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  step "lab"
  bash scripts/lab/lab.sh up
fi
command -v chromium >/dev/null || echo "warning: /usr/bin/chromium is missing (apt-get install chromium): e2e tests will fail"

step "tests"
mkdir -p test-artifacts
SUITES=${FLUID_TEST_ONLY:-"test/unit test/conformance test/integration e2e"}
PATTERNS=()
for s in $SUITES; do PATTERNS+=("$s/**/*.test.ts"); done
exec node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./scripts/summary-reporter.mjs --test-reporter-destination=stdout \
  --test-timeout="${FLUID_TEST_TIMEOUT_MS:-900000}" \
  "${PATTERNS[@]}"
