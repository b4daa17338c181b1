#!/usr/bin/env bash
# `npm test`: set up what the selected suites need, static checks, build, then node:test over every
# selected test file (the lab's files one at a time, the others beside them). The LAST line of output
# is "N passed, N failed, N skipped" (CI reads it).
# The run fails (non-zero exit) when a test fails, when a test is skipped or todo (a skipped test proves
# nothing), when no test runs, and when FLUID_TEST_ONLY names something that holds no test file.
#
# Setup: root on Debian 12 installs what is missing: the Debian packages the selected suites need
# (scripts/debian-packages.txt, through scripts/deps.sh), the pinned Node (npm ci), and the lab
# (scripts/lab/lab.sh up) for test/integration and e2e. Not root or not Debian: it names what is
# missing and how to get it, and stops before running any test.
#
# env: FLUID_TEST_ONLY="test/unit e2e/app.test.ts"  only these: directories (their *.test.ts files) and
#                            test files, space-separated, relative to the checkout or absolute
#      FLUID_SKIP_SETUP=1    no packages, npm ci or lab: use the machine as it is
#      FLUID_SKIP_LAB_UP=1   do not bring the lab up (tests that need it fail when it is down)
#      FLUID_SKIP_CHECKS=1   skip lint, format check and type checks
#      FLUID_SKIP_BUILD=1    skip the build (tests of the built app and CLI use what out/ holds)
#      FLUID_TEST_TIMEOUT_MS per-test timeout (default 900000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ELECTRON_SKIP_BINARY_DOWNLOAD=1

step() { printf '\n== %s\n' "$1"; }
die() { printf 'npm test: %s\n' "$1" >&2; exit 1; }
on() { [ "${!1:-0}" = 1 ]; }

# ---- the selection: resolved before any setup, so a typo fails at once
ALL_SUITES="test/unit test/conformance test/integration e2e"
SELECTION=${FLUID_TEST_ONLY:-$ALL_SUITES}
declare -A SEEN=() NEED=()
FILES=()
is_test_file() { [[ $1 =~ \.test\.(ts|mts|js|mjs)$ ]]; }
for entry in $SELECTION; do
  path=$entry
  [[ $path == /* ]] || path=$ROOT/$path
  path=${path%/}
  found=()
  if [ -d "$path" ]; then
    mapfile -t found < <(find "$path" -name node_modules -prune -o -type f -regextype posix-extended \
      -regex '.*\.test\.(ts|mts|js|mjs)' -print | LC_ALL=C sort)
    [ ${#found[@]} -gt 0 ] || die "FLUID_TEST_ONLY: the directory '$entry' holds no test file (*.test.ts)."
  elif [ -f "$path" ]; then
    is_test_file "$path" || die "FLUID_TEST_ONLY: '$entry' is not a test file (test files end in .test.ts)."
    found=("$path")
  else
    die "FLUID_TEST_ONLY: '$entry' matches no test file: there is no such file or directory (from $ROOT). Give directories or test files, space-separated, e.g. FLUID_TEST_ONLY=\"test/unit e2e/app.test.ts\"."
  fi
  for f in "${found[@]}"; do
    rel=${f#"$ROOT"/}
    [ -z "${SEEN[$rel]:-}" ] || continue
    SEEN[$rel]=1
    FILES+=("$rel")
    # which Debian packages (scripts/debian-packages.txt groups) and whether the lab: by suite
    case $rel in
      test/integration/*) NEED[integration]=1 NEED[lab]=1;;
      e2e/*) NEED[e2e]=1 NEED[lab]=1;;
      *) NEED[unit]=1;;
    esac
  done
done
[ ${#FILES[@]} -gt 0 ] || die "FLUID_TEST_ONLY='$SELECTION' selects no test file."
GROUPS_NEEDED=("${!NEED[@]}")

# ---- setup: Debian packages, the pinned Node, the lab
if on FLUID_SKIP_SETUP; then
  step "setup skipped (FLUID_SKIP_SETUP=1): using the machine as it is"
else
  step "setup: what the selected suites need (${GROUPS_NEEDED[*]})"
  # shellcheck source=scripts/deps.sh
  . scripts/deps.sh
  ok=1
  if [ -n "${NEED[lab]:-}" ] && [ "$(id -u)" != 0 ]; then
    printf 'Not root: test/integration and e2e need root (they run sshd, create a throwaway user and use this machine'"'"'s libvirt as the lab).\n  Run npm test as root, or only the suites that do not: FLUID_TEST_ONLY="test/unit test/conformance" npm test\n' >&2
    ok=0
  fi
  deps_ensure_packages "${GROUPS_NEEDED[@]}" || ok=0
  [ $ok = 1 ] || die "this machine lacks what the selected tests need (see above); no test was run."
  deps_node || die "the pinned Node toolchain is not installed (see above); no test was run."
  if [ -n "${NEED[lab]:-}" ]; then
    if on FLUID_SKIP_LAB_UP; then
      echo "   not bringing the lab up (FLUID_SKIP_LAB_UP=1): tests that need it fail if it is down"
    else
      step "lab"
      SKIP_APT=1 bash scripts/lab/lab.sh up
    fi
  fi
fi
export PATH="$ROOT/node_modules/.bin:$PATH"
node -e 'if (+process.versions.node.split(".")[0] < 24) { console.error("npm test: the pinned Node 24 is missing: run npm ci"); process.exit(1) }'

# ---- static checks and the build: a failure is the run's one failure, and the summary line still ends it
before_tests_failed() {
  printf '\nFailed:\n  %s (see above); no test was run\n\n0 passed, 1 failed, 0 skipped\n' "$1"
  exit 1
}
if on FLUID_SKIP_CHECKS; then
  step "lint, format and type checks skipped (FLUID_SKIP_CHECKS=1)"
else
  step "lint";      eslint . --max-warnings=0 || before_tests_failed "lint"
  step "format";    prettier --check . >/dev/null || { prettier --check . 2>&1 | tail -20 || true; before_tests_failed "format"; }
  step "typecheck"; npm run -s typecheck || before_tests_failed "typecheck"
fi
if on FLUID_SKIP_BUILD; then
  step "build skipped (FLUID_SKIP_BUILD=1)"
else
  step "build";     npm run -s build >/dev/null || before_tests_failed "build"
fi

# ---- the tests: two lanes side by side, then one summary line, the last line of output
# Files that use the lab (they boot VMs, change fluid-lab-prod, serve the sandboxes' egress) run one
# at a time in the lab lane; everything else (unit, conformance, and the e2e and integration files
# that never touch the lab) runs in a second lane beside it, so the machine's waits on the guests are
# not also the whole suite's. A file is a lab file when it reads the lab's description.
LAB_FILES=() FREE_FILES=()
for f in "${FILES[@]}"; do
  case $f in
    test/unit/*|test/conformance/*) FREE_FILES+=("$f");;
    *) if grep -qE 'readLab|prepareLabData|support/lab\.ts|lab\.json' "$f"; then LAB_FILES+=("$f"); else FREE_FILES+=("$f"); fi;;
  esac
done
step "tests: ${#FILES[@]} files (${#LAB_FILES[@]} on the lab, ${#FREE_FILES[@]} beside them)"
mkdir -p test-artifacts
LANES=$(mktemp -d "${TMPDIR:-/tmp}/fluid-test-lanes.XXXXXX")
trap 'rm -rf "$LANES"' EXIT
run_lane() {
  node --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./scripts/summary-reporter.mjs --test-reporter-destination=stdout \
    --test-timeout="${FLUID_TEST_TIMEOUT_MS:-900000}" \
    "$@"
}
FREE_LOG=$LANES/free.log
free_pid=
if [ ${#FREE_FILES[@]} -gt 0 ]; then
  if [ ${#LAB_FILES[@]} -gt 0 ]; then
    run_lane "${FREE_FILES[@]}" >"$FREE_LOG" 2>&1 &
    free_pid=$!
  else
    run_lane "${FREE_FILES[@]}" 2>&1 | tee "$FREE_LOG"
  fi
fi
lab_rc=0 free_rc=0
LAB_LOG=$LANES/lab.log
if [ ${#LAB_FILES[@]} -gt 0 ]; then
  set +e
  run_lane "${LAB_FILES[@]}" 2>&1 | tee "$LAB_LOG"
  lab_rc=${PIPESTATUS[0]}
  set -e
fi
if [ -n "$free_pid" ]; then
  set +e
  wait "$free_pid"
  free_rc=$?
  set -e
  printf '\n== the tests beside the lab (%s files)\n' "${#FREE_FILES[@]}"
  cat "$FREE_LOG"
fi
# what failed or was skipped in either lane, with why, just above the summary (the end of a long
# output is what a reader, or CI, sees first); then one line for the run: the sum of the lanes'
# summary lines; a lane without one failed as a whole
for log in "$LAB_LOG" "$FREE_LOG"; do
  [ -f "$log" ] || continue
  block=$(awk '/^(Failed:|Skipped \(|No test ran\.)/ && !inblock { inblock = 1; buf = "" }
    inblock && /^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { last = buf; inblock = 0; next }
    inblock { buf = buf $0 "\n" }
    END { printf "%s", last }' "$log")
  [ -z "$block" ] || printf '\n== the %s lane\n%s\n' "$(basename "$log" .log)" "$block"
done
passed=0 failed=0 skipped=0 rc=0
for log in "$LAB_LOG" "$FREE_LOG"; do
  [ -f "$log" ] || continue
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1 || true)
  if [ -z "$line" ]; then
    printf 'npm test: the %s lane printed no summary line: it did not finish (see above)\n' "$(basename "$log" .log)"
    failed=$((failed + 1))
    continue
  fi
  read -r p _ f _ k _ <<<"${line//,/}"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
done
[ "$lab_rc" = 0 ] && [ "$free_rc" = 0 ] && [ "$failed" = 0 ] && [ "$skipped" = 0 ] || rc=1
printf '\n%s passed, %s failed, %s skipped\n' "$passed" "$failed" "$skipped"
exit $rc
