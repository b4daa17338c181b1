# shellcheck shell=bash
# What Fluid's scripts need on this machine, shared by `npm test`, `npm start` and the lab: the Debian
# packages of scripts/debian-packages.txt and the pinned Node toolchain (npm ci). Source me.
#
#   deps_packages GROUP...        print "PACKAGE PROBE WHY" for the packages any of the groups need
#   deps_ensure_packages GROUP... root on Debian: install the missing ones (saying what and why);
#                                 elsewhere: name the missing ones and how to get them, return 1
#   deps_node                     npm ci when node_modules is missing or older than package-lock.json,
#                                 then check the pinned Node
#
# env: FLUID_DEPS_LIST (default scripts/debian-packages.txt), FLUID_DEPS_LOG (apt log file),
#      FLUID_DEPS_PROBE_ONLY=1 (tell installed packages by their probes, as on a machine without dpkg)

DEPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps_list() { printf '%s' "${FLUID_DEPS_LIST:-$DEPS_ROOT/scripts/debian-packages.txt}"; }

deps_packages() { # GROUP...
  local list
  list=$(deps_list)
  [ -r "$list" ] || { printf 'deps: the package list %s is missing\n' "$list" >&2; return 1; }
  awk -v want=" $* " '
    { sub(/#.*/, "") }
    NF >= 3 {
      n = split($3, g, ",")
      for (i = 1; i <= n; i++) if (index(want, " " g[i] " ")) {
        why = ""; for (j = 4; j <= NF; j++) why = why (j > 4 ? " " : "") $j
        print $1, $2, why; break
      }
    }' "$list"
}

deps_is_debian() {
  [ "${FLUID_DEPS_PROBE_ONLY:-0}" != 1 ] && [ -r /etc/debian_version ] \
    && command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1
}

_deps_probe() { # PROBE: is it there?
  case $1 in
    -) return 1;;
    /*) [ -e "$1" ];;
    *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1;;
  esac
}

deps_ensure_packages() { # GROUP...
  local lines pkg probe why installed missing=() whys=() i
  lines=$(deps_packages "$@") || return 1
  [ -n "$lines" ] || return 0
  if deps_is_debian; then
    local all=()
    while read -r pkg probe why; do all+=("$pkg"); done <<<"$lines"
    # one dpkg-query for all (unknown packages make it exit 1: that is fine)
    installed=" $(dpkg-query -W -f='${db:Status-Abbrev}${Package} ' "${all[@]}" 2>/dev/null || true)"
    while read -r pkg probe why; do
      [[ $installed == *" ii $pkg "* ]] || { missing+=("$pkg"); whys+=("$why"); }
    done <<<"$lines"
  else
    while read -r pkg probe why; do
      _deps_probe "$probe" || { missing+=("$pkg"); whys+=("$why${probe:+ (provides $probe)}"); }
    done <<<"$lines"
  fi
  if [ ${#missing[@]} = 0 ]; then
    printf '   all %s Debian packages for %s are installed\n' "$(wc -l <<<"$lines")" "$*"
    return 0
  fi
  if deps_is_debian && [ "$(id -u)" = 0 ]; then
    printf '   installing %s Debian packages for %s:\n' "${#missing[@]}" "$*"
    for i in "${!missing[@]}"; do printf '     %-32s %s\n' "${missing[$i]}" "${whys[$i]}"; done
    local log=${FLUID_DEPS_LOG:-$(mktemp -t fluid-apt.XXXXXX.log)}
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      printf 'deps: apt-get update failed (full log: %s): check /etc/apt/sources.list.d and the mirror\n' "$log" >&2
      return 1
    fi
    if ! apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >>"$log" 2>&1; then
      tail -n 30 "$log" >&2
      printf 'deps: apt-get install failed (full log: %s)\n' "$log" >&2
      return 1
    fi
    printf '   installed (log: %s)\n' "$log"
    return 0
  fi
  printf 'Missing Debian packages (needed by %s):\n' "$*" >&2
  for i in "${!missing[@]}"; do printf '  %-32s %s\n' "${missing[$i]}" "${whys[$i]}" >&2; done
  if deps_is_debian; then
    printf 'Install them as root:\n  apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
    printf '(or run this command as root: it installs them itself)\n' >&2
  else
    printf 'This is not a Debian machine: install the equivalent packages with its package manager\n' >&2
    printf '(the names above are Debian'"'"'s; the list is %s).\n' "$(deps_list)" >&2
  fi
  return 1
}

deps_node() (
  cd "$DEPS_ROOT" || exit 1
  if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null 2>&1 || {
      printf 'deps: npm is missing. Install it (Debian: apt-get install -y npm); the pinned Node 24 then comes from the npm registry.\n' >&2
      return 1
    }
    echo "   installing the pinned Node toolchain and dependencies (npm ci)"
    ELECTRON_SKIP_BINARY_DOWNLOAD=${ELECTRON_SKIP_BINARY_DOWNLOAD:-1} npm ci --no-audit --no-fund || {
      printf 'deps: npm ci failed (see above)\n' >&2
      return 1
    }
  fi
  node_modules/.bin/node -e 'if (+process.versions.node.split(".")[0] < 24) process.exit(1)' || {
    printf 'deps: node_modules/.bin/node is not the pinned Node 24: run npm ci\n' >&2
    return 1
  }
)
