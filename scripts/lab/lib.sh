# shellcheck shell=bash
# Shared helpers for the Fluid lab scripts. Source me; do not run me.
# shellcheck disable=SC2034  # the variables here are used by the scripts that source this file

LAB_DIR=${FLUID_LAB_DIR:-/var/tmp/fluid-lab}
LAB_SSH_PORT=${FLUID_LAB_SSH_PORT:-2222}
LAB_URI=qemu:///system
# the system Python, not whatever python3 is first on PATH (a pyenv shim costs ~130 ms a call here)
PY=/usr/bin/python3
export LIBVIRT_DEFAULT_URI=$LAB_URI

# The two source VMs: name, hostname, fixed MAC, DHCP reservation (host part), state after `up`.
LAB_VMS=(fluid-lab-web fluid-lab-prod)
declare -A VM_HOSTNAME=([fluid-lab-web]=web-base [fluid-lab-prod]=prod-web)
declare -A VM_MAC=([fluid-lab-web]=52:54:00:f1:ab:01 [fluid-lab-prod]=52:54:00:f1:ab:02)
declare -A VM_IPHOST=([fluid-lab-web]=11 [fluid-lab-prod]=12)
# The demo service (demo/install.sh): the web base has it working, production has its fault.
declare -A VM_DEMO=([fluid-lab-web]=working [fluid-lab-prod]=fault)
declare -A VM_TITLE=(
  [fluid-lab-web]="web-base: a plain web-server base"
  [fluid-lab-prod]="prod-web: the production web server")
declare -A VM_DESC=(
  [fluid-lab-web]="A plain Debian 12 web-server base image (hostname web-base): nginx in front of the shop app, working. Normally shut off; used as a source to clone from."
  [fluid-lab-prod]="The production Debian 12 web server (hostname prod-web): nginx in front of the shop app. Normally running; clone it, do not modify it.")

log() { printf '%s\n' "$*"; }
warn() { printf 'lab: warning: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# microseconds since the epoch, without forking
now_us() { local t=${EPOCHREALTIME//[!0-9]/}; printf '%s' "$((10#$t))"; }
# seconds elapsed since a now_us value, one decimal
elapsed() { local d=$(( $(now_us) - $1 )); printf '%d.%d' $((d / 1000000)) $(((d % 1000000) / 100000)); }

# phase timing: `phase NAME` closes the previous phase (prints "== NAME: 1.2s") and starts the next
_PHASE_T=''
phase_start() { _PHASE_T=$(now_us); }
phase() { printf '== %s: %ss\n' "$1" "$(elapsed "$_PHASE_T")"; _PHASE_T=$(now_us); }

virsh_q() { virsh -q -c "$LAB_URI" "$@"; }

dom_exists() { virsh_q dominfo "$1" >/dev/null 2>&1; }
dom_state() { virsh_q domstate "$1" 2>/dev/null || echo 'undefined'; }
dom_running() { [ "$(dom_state "$1")" = running ]; }

# does the guest agent of DOMAIN answer? (guest-ping, short timeout)
agent_ping() { virsh_q qemu-agent-command --timeout 3 "$1" '{"execute":"guest-ping"}' >/dev/null 2>&1; }

# pid from a pidfile, if that process is alive and its command name matches
pid_alive() { # PIDFILE COMM
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] && printf '%s' "$pid"
}

# which virtualization works here: kvm only on real KVM (PVM's /dev/kvm cannot run stock kernels)
detect_virt_type() {
  if [ -n "${FLUID_LAB_VIRT_TYPE:-}" ]; then
    case $FLUID_LAB_VIRT_TYPE in kvm|qemu) printf '%s' "$FLUID_LAB_VIRT_TYPE"; return;;
      *) die "FLUID_LAB_VIRT_TYPE must be 'kvm' or 'qemu', not '$FLUID_LAB_VIRT_TYPE'";; esac
  fi
  if [ -e /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ]; then printf kvm; else printf qemu; fi
}
