#!/bin/bash
# Fluid lab: turn this Debian 12 machine into a real libvirt/KVM host that Fluid reaches over
# SSH on a loopback port, exactly as it would reach a remote host.
#
#   lab.sh up                 install + start everything (idempotent; a warm re-run takes seconds)
#   lab.sh status             JSON state of the lab; exit 1 if it is not usable
#   lab.sh wait-prod [SECS]   wait until fluid-lab-prod's guest agent answers (default 300 s)
#   lab.sh down               stop the lab sshd, destroy running lab VMs (images/definitions kept)
#
# env: FLUID_LAB_DIR (/var/tmp/fluid-lab)   everything the lab makes lives here
#      FLUID_LAB_SSH_PORT (2222)           port of the lab sshd on 127.0.0.1
#      FLUID_LAB_VIRT_TYPE (auto)          kvm | qemu; auto = kvm if /dev/kvm works with stock kernels
#      FLUID_LAB_MIRROR (auto)             Debian mirror for the guest image (default: host's apt source)
#      SKIP_APT=1                          do not check/install Debian packages (scripts/debian-packages.txt)
# After `up`, $FLUID_LAB_DIR/lab.json describes the lab (SSH endpoint, key, sources, ...).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lab/lib.sh
. "$HERE/lib.sh"
# shellcheck source=scripts/deps.sh
. "$HERE/../deps.sh"

IMG_DIR=$LAB_DIR/img
VMS_DIR=$LAB_DIR/vms
SSHD_DIR=$LAB_DIR/sshd
SSH_DIR=$LAB_DIR/ssh
KEY=$SSH_DIR/id_ed25519
DISK_SIZE=3G
PROD=fluid-lab-prod

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

need_root() { [ "$(id -u)" = 0 ] || die "lab.sh $1 must run as root (libvirt system daemons, apt, sshd)"; }

need_cmds() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [ ${#missing[@]} = 0 ] || die "missing commands: ${missing[*]} (run 'lab.sh up' without SKIP_APT=1 to install them)"
}

# ---------------------------------------------------------------- packages
# the lab's packages are the "lab" lines of scripts/debian-packages.txt (shared with npm test/start)
do_apt() {
  FLUID_DEPS_LOG=$LAB_DIR/apt.log deps_ensure_packages lab || die "the lab's Debian packages are not all installed (see above)"
}

# ---------------------------------------------------------------- libvirt daemons (no systemd)
start_daemon() { # NAME
  if pgrep -x "$1" >/dev/null; then return; fi
  log "   starting $1"
  # 9>&-: the daemon must not inherit (and hold forever) the lock of `lab.sh up`
  # and a plain PATH (libvirtd hands its PATH down to every QEMU it starts)
  env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$1" -d 9>&- || die "could not start $1 (try running '$1 -v' in the foreground to see why)"
}

start_daemons() {
  need_cmds virtlogd virtlockd libvirtd virsh qemu-img mkfs.ext4 ssh-keygen flock
  [ -x "$PY" ] || die "$PY is missing (run lab.sh up without SKIP_APT=1)"
  mkdir -p /run/sshd /var/log/libvirt/qemu
  # Without udev nobody gives /dev/kvm its usual root:kvm 0660. libvirt then finds KVM when it
  # probes QEMU but "not usable" by the qemu user afterwards, so it treats its capability cache
  # as outdated and re-probes QEMU (~4 s) on every lookup: a `virsh define` took 2 minutes.
  if [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G:%a /dev/kvm)" != kvm:660 ]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm && log "   /dev/kvm: root:kvm 0660 (as udev would set it)"
  fi
  start_daemon virtlogd
  start_daemon virtlockd
  start_daemon libvirtd
  local i
  for i in $(seq 1 300); do
    virsh_q list >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "libvirtd started but 'virsh -c $LAB_URI list' does not answer after 30 s (see /var/log/libvirt/)"
}

# ---------------------------------------------------------------- NAT network 'default'
default_net_xml() {
  if [ -f /usr/share/libvirt/networks/default.xml ]; then cat /usr/share/libvirt/networks/default.xml; return; fi
  cat <<'XML'
<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='off' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
</network>
XML
}

# net_is Active|Autostart: is that field of network 'default' "yes"? (no `| grep -q`: with
# pipefail, grep quitting early makes virsh die of SIGPIPE and the pipeline "fail")
net_is() { local out; out=$(virsh_q net-info default 2>/dev/null) || return 1; [[ $out =~ (^|$'\n')$1:\ *yes ]]; }

setup_network() {
  local rc=0 pairs=() vm active=no
  if ! virsh_q net-info default >/dev/null 2>&1; then
    default_net_xml > "$LAB_DIR/default-net.xml"
    virsh_q net-define "$LAB_DIR/default-net.xml" >/dev/null || die "could not define libvirt network 'default'"
    log "   defined network default"
  fi
  for vm in "${LAB_VMS[@]}"; do pairs+=("${VM_MAC[$vm]}=${VM_IPHOST[$vm]}"); done
  virsh_q net-dumpxml --inactive default | "$PY" "$HERE/labctl.py" net-xml "$LAB_DIR/default-net.xml" "${pairs[@]}" || rc=$?
  net_is Active && active=yes
  if [ $rc = 0 ]; then
    virsh_q net-define "$LAB_DIR/default-net.xml" >/dev/null || die "could not redefine network 'default'"
    log "   network default: stp off, DHCP reservations for the lab VMs"
    if [ $active = yes ]; then
      # a running network keeps its old bridge settings: restart it (VMs on it lose their link)
      for vm in $(virsh_q list --name); do warn "domain $vm is running: its NIC loses its link while network 'default' restarts"; done
      virsh_q net-destroy default >/dev/null
      active=no
    fi
  elif [ $rc != 3 ]; then
    die "could not patch the XML of network 'default'"
  fi
  if [ $active = no ]; then
    # a freshly started libvirtd autostarts the network in the background: that race is fine
    if virsh_q net-start default >/dev/null 2>"$LAB_DIR/net-start.err"; then
      log "   started network default"
    elif ! net_is Active; then
      cat "$LAB_DIR/net-start.err" >&2
      die "could not start network 'default' (iptables/nftables and dnsmasq-base installed? see /var/log/libvirt/libvirtd.log)"
    fi
    rm -f "$LAB_DIR/net-start.err"
  fi
  net_is Autostart || virsh_q net-autostart default >/dev/null
  read -r GATEWAY NET_BASE < <(virsh_q net-dumpxml default | "$PY" "$HERE/labctl.py" net-info) || true
  GATEWAY=${GATEWAY:-}; NET_BASE=${NET_BASE:-}
}

# ---------------------------------------------------------------- guest image (cached)
mirror_urls() { # prints MIRROR and SECURITY_MIRROR (or '-') from the host's apt sources
  "$PY" - <<'PY'
import glob, os, re
main = sec = None
files = sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
for f in files:
    for stanza in open(f).read().split("\n\n"):
        kv = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if "deb" not in kv.get("Types", "").split():
            continue
        uri = kv.get("URIs", "").split()[0] if kv.get("URIs") else None
        suites = kv.get("Suites", "").split()
        if not uri:
            continue
        if any(s.endswith("-security") for s in suites):
            sec = sec or uri
        else:
            main = main or uri
for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    if os.path.exists(f):
        for line in open(f):
            m = re.match(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                if m.group(2).endswith("-security"):
                    sec = sec or m.group(1)
                else:
                    main = main or m.group(1)
print(main or "http://deb.debian.org/debian", sec or "-")
PY
}

url_reachable() { # URL: HTTP HEAD within 5 s
  "$PY" -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method="HEAD"), timeout=5)' "$1" >/dev/null 2>&1
}

setup_image() {
  local mirror sec key
  read -r mirror sec < <(mirror_urls)
  mirror=${FLUID_LAB_MIRROR:-$mirror}
  [ "$sec" = - ] && sec=''
  mirror=${mirror%/}; sec=${sec%/}
  key=$( { cat "$HERE/build-image.sh"; printf 'mirror=%s\nsecurity=%s\ndns=%s\n' "$mirror" "$sec" "$GATEWAY"; } \
    | sha256sum | cut -c1-16)
  IMG_KEY=$key
  if [ "$(cat "$IMG_DIR/key" 2>/dev/null)" = "$key" ] && [ -x "$IMG_DIR/rootfs/usr/bin/python3" ] \
     && [ -s "$IMG_DIR/vmlinuz" ] && [ -s "$IMG_DIR/initrd.img" ]; then
    log "   cached image $key ($(cat "$IMG_DIR/kernel-version" 2>/dev/null))"
    IMAGE_REBUILT=0
    return
  fi
  if [ -n "$sec" ] && ! url_reachable "$sec/dists/bookworm-security/InRelease"; then
    warn "security mirror $sec is not reachable: the guest image gets no bookworm-security source"
    sec=''
  fi
  log "   building guest image $key (mirror $mirror${sec:+, security $sec}); log: $IMG_DIR/build.log"
  mkdir -p "$IMG_DIR"
  rm -f "$IMG_DIR/key"
  MIRROR=$mirror SECURITY_MIRROR=$sec GUEST_DNS=${GATEWAY:-192.168.122.1} \
    "$HERE/build-image.sh" "$IMG_DIR" 2>&1 | tee "$IMG_DIR/build.log" | grep '^   ' \
    || { tail -n 40 "$IMG_DIR/build.log" >&2; die "guest image build failed (full log: $IMG_DIR/build.log)"; }
  [ -x "$IMG_DIR/rootfs/usr/bin/python3" ] || { tail -n 40 "$IMG_DIR/build.log" >&2; die "guest image build failed (full log: $IMG_DIR/build.log)"; }
  echo "$key" > "$IMG_DIR/key"
  IMAGE_REBUILT=1
}

# ---------------------------------------------------------------- source VM disks
disk_of() { printf '%s/%s.qcow2' "$VMS_DIR" "$1"; }
serial_of() { printf '%s/%s-serial.log' "$VMS_DIR" "$1"; }

setup_disks() {
  local vm stamp pids=() names=()
  mkdir -p "$VMS_DIR"
  DISKS_REBUILT=()
  for vm in "${LAB_VMS[@]}"; do
    stamp=$( { printf '%s\n' "$IMG_KEY" "${VM_HOSTNAME[$vm]}" "$DISK_SIZE" "${VM_DEMO[$vm]}"; cat "$HERE/mkvmdisk.sh" "$HERE"/demo/*; } \
      | sha256sum | cut -c1-16)
    if [ -s "$(disk_of "$vm")" ] && [ "$(cat "$VMS_DIR/$vm.stamp" 2>/dev/null)" = "$stamp" ]; then
      continue
    fi
    if dom_running "$vm"; then
      log "   destroying running $vm: its disk is rebuilt"
      virsh_q destroy "$vm" >/dev/null
    fi
    rm -f "$VMS_DIR/$vm.stamp"
    log "   building disk of $vm (hostname ${VM_HOSTNAME[$vm]})"
    "$HERE/mkvmdisk.sh" "$IMG_DIR/rootfs" "${VM_HOSTNAME[$vm]}" "$(disk_of "$vm")" "$DISK_SIZE" "${VM_DEMO[$vm]}" \
      >"$VMS_DIR/$vm.build.log" 2>&1 &
    pids+=($!); names+=("$vm:$stamp")
  done
  local i ok=1
  for i in "${!pids[@]}"; do
    vm=${names[$i]%%:*}
    if wait "${pids[$i]}"; then
      echo "${names[$i]#*:}" > "$VMS_DIR/$vm.stamp"
      DISKS_REBUILT+=("$vm")
    else
      cat "$VMS_DIR/$vm.build.log" >&2; ok=0
      warn "building the disk of $vm failed (log: $VMS_DIR/$vm.build.log)"
    fi
  done
  [ $ok = 1 ] || die "could not build the source VM disks"
  [ ${#DISKS_REBUILT[@]} = 0 ] && log "   disks up to date"
  return 0
}

# ---------------------------------------------------------------- domains
setup_domains() {
  local vm new old changed uuid
  for vm in "${LAB_VMS[@]}"; do
    new=$VMS_DIR/$vm.xml.new; old=$VMS_DIR/$vm.xml
    KERNEL=$IMG_DIR/vmlinuz INITRD=$IMG_DIR/initrd.img SERIAL_LOG=$(serial_of "$vm") \
      TITLE=${VM_TITLE[$vm]} DESCRIPTION=${VM_DESC[$vm]} \
      "$HERE/mkdomain.sh" "$vm" "$(disk_of "$vm")" "${VM_MAC[$vm]}" "$VIRT_TYPE" > "$new"
    changed=0
    # defined, with our XML (as last defined by us) and still on its own disk
    if [ "$(virsh_q domblklist "$vm" 2>/dev/null | awk '$1 == "vda" {print $2}')" != "$(disk_of "$vm")" ]; then
      changed=1
    fi
    cmp -s "$new" "$old" || changed=1
    [[ " ${DISKS_REBUILT[*]} " == *" $vm "* ]] && changed=1
    [ "$IMAGE_REBUILT" = 1 ] && changed=1
    if [ $changed = 1 ]; then
      if dom_running "$vm"; then log "   destroying running $vm to redefine it"; virsh_q destroy "$vm" >/dev/null; fi
      # redefining an existing domain needs its UUID (else: "already exists with uuid")
      uuid=$(virsh_q domuuid "$vm" 2>/dev/null || true)
      if [ -n "$uuid" ]; then
        sed "s|^  <name>.*</name>\$|&\n  <uuid>$uuid</uuid>|" "$new" > "$new.uuid"
      else
        cp "$new" "$new.uuid"
      fi
      virsh_q define "$new.uuid" >/dev/null || die "virsh define of $vm failed (XML: $new.uuid)"
      rm -f "$new.uuid"
      mv "$new" "$old"
      log "   defined $vm"
    else
      rm -f "$new"
    fi
  done
  if ! dom_running "$PROD"; then
    virsh_q start "$PROD" >/dev/null || die "could not start $PROD (serial log: $(serial_of "$PROD"); libvirt log: /var/log/libvirt/qemu/$PROD.log)"
    log "   started $PROD (booting in the background; 'lab.sh wait-prod' waits for it)"
  fi
  if dom_running fluid-lab-web; then warn "fluid-lab-web is running; it is normally left shut off ('virsh destroy fluid-lab-web')"; fi
  return 0
}

# ---------------------------------------------------------------- lab sshd (the "remote host")
sshd_pidfile() { printf '%s/sshd.pid' "$SSHD_DIR"; }

write_sshd_config() {
  cat <<CONF
# Fluid lab sshd: this machine as the "remote libvirt host" (written by scripts/lab/lab.sh)
Port $LAB_SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/ssh_host_ed25519_key
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# the authorized_keys file lives under /var/tmp (mode 1777), which StrictModes rejects
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
# Debian's bash sources ~/.bashrc for 'ssh host cmd' when SHLVL is unset (root's runs a slow
# pyenv init, ~120 ms per command here); SHLVL=1 makes bash skip it for non-interactive commands
SetEnv SHLVL=1
MaxStartups 100:30:200
MaxSessions 100
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
}

setup_sshd() {
  local pid restart=0
  mkdir -p "$SSHD_DIR" "$SSH_DIR" /run/sshd
  chmod 0700 "$SSH_DIR" "$SSHD_DIR"
  [ -s "$SSHD_DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C fluid-lab-host -f "$SSHD_DIR/ssh_host_ed25519_key"
  [ -s "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C fluid-lab-client -f "$KEY"
  local authline
  authline=$(cat "$KEY.pub")
  if ! grep -qxF "$authline" "$SSHD_DIR/authorized_keys" 2>/dev/null; then
    printf '%s\n' "$authline" >> "$SSHD_DIR/authorized_keys"
  fi
  chmod 0600 "$SSHD_DIR/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$LAB_SSH_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_ed25519_key.pub")" > "$SSH_DIR/known_hosts"
  write_sshd_config > "$SSHD_DIR/sshd_config.new"
  if ! cmp -s "$SSHD_DIR/sshd_config.new" "$SSHD_DIR/sshd_config"; then
    /usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config.new" || die "the lab sshd config is invalid ($SSHD_DIR/sshd_config.new)"
    mv "$SSHD_DIR/sshd_config.new" "$SSHD_DIR/sshd_config"
    restart=1
  else
    rm -f "$SSHD_DIR/sshd_config.new"
  fi
  if pid=$(pid_alive "$(sshd_pidfile)" sshd); then
    [ $restart = 0 ] && { log "   lab sshd running (pid $pid)"; return; }
    log "   restarting lab sshd (config changed)"
    stop_sshd
  fi
  /usr/sbin/sshd -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/sshd.log" 9>&- \
    || die "could not start the lab sshd on 127.0.0.1:$LAB_SSH_PORT (port in use? see $SSHD_DIR/sshd.log)"
  local i
  for i in $(seq 1 50); do pid_alive "$(sshd_pidfile)" sshd >/dev/null && break; sleep 0.1; done
  pid=$(pid_alive "$(sshd_pidfile)" sshd) || die "the lab sshd exited right after start (see $SSHD_DIR/sshd.log)"
  log "   started lab sshd on 127.0.0.1:$LAB_SSH_PORT (pid $pid)"
}

stop_sshd() {
  local pid i
  pid=$(pid_alive "$(sshd_pidfile)" sshd) || return 0
  kill "$pid"
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$(sshd_pidfile)"
}

# ---------------------------------------------------------------- fluid-lab-prod as an apply target
# Fluid applies approved changes to production over SSH with a credential of its own. The lab makes
# fluid-lab-prod such a target: a user fluid-ops (no password, sudo without one) that accepts only the
# lab's dedicated target key, reached through the lab host as a jump. Added through the guest agent
# (the VM is not rebuilt or redefined); redone only when prod's disk, the key or this step changes.
PROD_TARGET_USER=fluid-ops
PROD_TARGET_KEY=$SSH_DIR/prod_target_ed25519

prod_target_script() {
  cat <<'SCRIPT'
set -e
u=$1 pub=$2
id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash -c 'Fluid lab apply target' "$u"
usermod -p '*' "$u"
install -d -m 0700 -o "$u" -g "$u" "/home/$u/.ssh"
printf '%s\n' "$pub" > "/home/$u/.ssh/authorized_keys.new"
chown "$u:$u" "/home/$u/.ssh/authorized_keys.new"
chmod 0600 "/home/$u/.ssh/authorized_keys.new"
mv "/home/$u/.ssh/authorized_keys.new" "/home/$u/.ssh/authorized_keys"
printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$u" > /etc/sudoers.d/fluid-ops.new
chmod 0440 /etc/sudoers.d/fluid-ops.new
visudo -cqf /etc/sudoers.d/fluid-ops.new
mv /etc/sudoers.d/fluid-ops.new /etc/sudoers.d/fluid-ops
cat /etc/ssh/ssh_host_ed25519_key.pub
SCRIPT
}

setup_prod_target() {
  local stamp hostkey i
  [ -s "$PROD_TARGET_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C fluid-lab-prod-target -f "$PROD_TARGET_KEY"
  stamp=$( { cat "$VMS_DIR/$PROD.stamp" 2>/dev/null; cut -d' ' -f1,2 "$PROD_TARGET_KEY.pub"; prod_target_script; } \
    | sha256sum | cut -c1-16)
  if [ "$(cat "$VMS_DIR/$PROD.target-stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$VMS_DIR/$PROD.hostkey.pub" ]; then
    log "   $PROD target user $PROD_TARGET_USER ready"
    return
  fi
  for i in $(seq 1 300); do agent_ping "$PROD" && break; sleep 1; done
  agent_ping "$PROD" || die "$PROD's guest agent did not answer within 300 s: cannot set up its apply target (serial log: $(serial_of "$PROD"))"
  hostkey=$("$PY" "$HERE/labctl.py" ga-exec "$PROD" /bin/sh -c "$(prod_target_script)" sh \
    "$PROD_TARGET_USER" "$(cut -d' ' -f1,2 "$PROD_TARGET_KEY.pub")") \
    || die "could not set up the apply target user on $PROD through its guest agent"
  printf '%s\n' "$hostkey" | cut -d' ' -f1,2 > "$VMS_DIR/$PROD.hostkey.pub"
  echo "$stamp" > "$VMS_DIR/$PROD.target-stamp"
  log "   $PROD: apply target user $PROD_TARGET_USER with key $(ssh-keygen -l -E sha256 -f "$PROD_TARGET_KEY.pub" | cut -d' ' -f2)"
}

# ---------------------------------------------------------------- lab.json / status env
export_lj() {
  local vm k
  export LJ_LAB_DIR=$LAB_DIR LJ_IMG_DIR=$IMG_DIR LJ_SSH_PORT=$LAB_SSH_PORT LJ_KEY=$KEY
  export LJ_VIRT_TYPE=${VIRT_TYPE:-$(detect_virt_type)} LJ_VMS="${LAB_VMS[*]}"
  for vm in "${LAB_VMS[@]}"; do
    k=${vm//-/_}
    export "LJ_${k}_HOSTNAME=${VM_HOSTNAME[$vm]}" "LJ_${k}_DISK=$(disk_of "$vm")" "LJ_${k}_MAC=${VM_MAC[$vm]}" \
      "LJ_${k}_IPHOST=${VM_IPHOST[$vm]}" "LJ_${k}_SERIAL=$(serial_of "$vm")" "LJ_${k}_DEMO=${VM_DEMO[$vm]}"
  done
}

write_lab_json() {
  local vm
  export_lj
  export LJ_HOSTKEY_FP LJ_HOSTKEY_PUB LJ_IMG_KEY=$IMG_KEY LJ_KERNEL=$IMG_DIR/vmlinuz LJ_INITRD=$IMG_DIR/initrd.img
  export LJ_KVER LJ_GATEWAY=$GATEWAY LJ_NET_BASE=$NET_BASE
  LJ_HOSTKEY_FP=$(ssh-keygen -l -E sha256 -f "$SSHD_DIR/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
  LJ_HOSTKEY_PUB=$(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_ed25519_key.pub")
  LJ_KVER=$(cat "$IMG_DIR/kernel-version" 2>/dev/null || true)
  for vm in "${LAB_VMS[@]}"; do export "LJ_${vm//-/_}_STATE=$(dom_state "$vm")"; done
  export LJ_TARGET_USER=$PROD_TARGET_USER LJ_TARGET_KEY=$PROD_TARGET_KEY LJ_TARGET_FP=''
  [ -s "$VMS_DIR/$PROD.hostkey.pub" ] && LJ_TARGET_FP=$(ssh-keygen -l -E sha256 -f "$VMS_DIR/$PROD.hostkey.pub" | cut -d' ' -f2)
  "$PY" "$HERE/labctl.py" lab-json "$LAB_DIR/lab.json"
}

# ---------------------------------------------------------------- subcommands
cmd_up() {
  need_root up
  mkdir -p "$LAB_DIR"
  chmod 0755 "$LAB_DIR"
  exec 9>"$LAB_DIR/.lock"
  command -v flock >/dev/null && { flock -n 9 || die "another 'lab.sh up' is running (lock $LAB_DIR/.lock)"; }
  local t_all
  t_all=$(now_us); phase_start
  log "fluid lab: up ($LAB_DIR)"
  if [ "${SKIP_APT:-0}" != 1 ]; then do_apt; phase "apt"; fi
  start_daemons; phase "libvirt daemons"
  setup_network; phase "network"
  VIRT_TYPE=$(detect_virt_type)
  # the first domain start after a fresh libvirtd probes QEMU (seconds): do it now
  virsh_q domcapabilities --virttype "$VIRT_TYPE" --arch x86_64 --machine q35 >/dev/null \
    || die "libvirt cannot use virt type '$VIRT_TYPE' (set FLUID_LAB_VIRT_TYPE=qemu to force TCG)"
  log "   virt type: $VIRT_TYPE$([ -n "${FLUID_LAB_VIRT_TYPE:-}" ] && echo ' (from FLUID_LAB_VIRT_TYPE)')"
  phase "virt type + qemu probe"
  setup_image; phase "guest image"
  setup_disks; phase "source disks"
  setup_domains; phase "domains"
  setup_sshd; phase "lab sshd"
  setup_prod_target; phase "prod apply target"
  write_lab_json; phase "lab.json"
  log "== total: $(elapsed "$t_all")s"
  log "lab is up: ssh -i $KEY -p $LAB_SSH_PORT root@127.0.0.1 virsh -c $LAB_URI list --all   (details: $LAB_DIR/lab.json)"
}

cmd_status() {
  need_root status
  [ -x "$PY" ] || die "$PY is missing (run 'lab.sh up')"
  export_lj
  "$PY" "$HERE/labctl.py" status
}

cmd_wait_prod() {
  need_root wait-prod
  local timeout=${1:-300} t0
  [[ $timeout =~ ^[0-9]+$ ]] || die "wait-prod: timeout must be a number of seconds, not '$timeout'"
  t0=$(now_us)
  dom_running "$PROD" || die "$PROD is not running ($(dom_state "$PROD")): run 'lab.sh up'"
  until agent_ping "$PROD"; do
    dom_running "$PROD" || die "$PROD stopped while booting (serial log: $(serial_of "$PROD"))"
    if [ $(( ($(now_us) - t0) / 1000000 )) -ge "$timeout" ]; then
      tail -c 2000 "$(serial_of "$PROD")" >&2 2>/dev/null || true
      die "$PROD's guest agent did not answer within ${timeout}s (serial log: $(serial_of "$PROD"))"
    fi
    sleep 1
  done
  log "$PROD: guest agent answers (waited $(elapsed "$t0")s)"
}

cmd_down() {
  need_root down
  local vm
  if pid_alive "$(sshd_pidfile)" sshd >/dev/null; then stop_sshd; log "stopped lab sshd"; fi
  if command -v virsh >/dev/null && virsh_q list >/dev/null 2>&1; then
    for vm in "${LAB_VMS[@]}"; do
      if dom_running "$vm"; then virsh_q destroy "$vm" >/dev/null && log "destroyed $vm"; fi
    done
  fi
  log "lab is down (images, VM definitions and daemons kept; 'lab.sh up' brings it back)"
}

case "${1:-}" in
  up) cmd_up;;
  status) cmd_status;;
  wait-prod) shift; cmd_wait_prod "$@";;
  down) cmd_down;;
  -h|--help|help) usage;;
  *) usage >&2; exit 2;;
esac
