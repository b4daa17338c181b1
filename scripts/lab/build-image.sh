#!/bin/bash
# Build the Debian 12 (bookworm) guest root filesystem for the Fluid lab's source VMs.
#
#   build-image.sh OUTDIR
#
# Produces OUTDIR/rootfs (the configured tree, no per-VM identity: no hostname, machine-id or
# SSH host keys; see mkvmdisk.sh), OUTDIR/vmlinuz and OUTDIR/initrd.img (the VMs boot with
# libvirt direct kernel boot, root=/dev/vda, ext4 without a partition table).
#
# env: MIRROR (Debian mirror URL, required), SECURITY_MIRROR (debian-security URL or empty),
#      GUEST_DNS (nameserver written to the guest's /etc/resolv.conf, e.g. the libvirt gateway)
#
# The lab caches the result keyed by a hash of this file's content plus those env values:
# any change here rebuilds the image (and the source VMs' disks) on the next `lab.sh up`.
# The guest must look like a plain Debian server: nothing Fluid-specific goes in here.
set -euo pipefail
OUT=${1:?usage: build-image.sh OUTDIR}
: "${MIRROR:?MIRROR (Debian mirror URL) must be set}"
SECURITY_MIRROR=${SECURITY_MIRROR:-}
GUEST_DNS=${GUEST_DNS:-192.168.122.1}
SUITE=bookworm
NEW=$OUT/rootfs.new
mkdir -p "$OUT"
rm -rf "$NEW"
t0=${EPOCHREALTIME//[!0-9]/}
step() { local t=${EPOCHREALTIME//[!0-9]/}; local d=$((10#$t - 10#$t0)); t0=$t
  printf '   %s: %d.%ds\n' "$1" $((d / 1000000)) $(((d % 1000000) / 100000)); }

# the GENERIC kernel: it has CONFIG_VMGENID, so a VM cloned from a memory image reseeds its RNG
PKGS=systemd-sysv,udev,dbus,openssh-server,python3,sudo,iproute2,qemu-guest-agent,curl
PKGS=$PKGS,ca-certificates,less,linux-image-amd64,initramfs-tools,zstd
# a web server, as on any web host (its site and the app behind it are per VM: mkvmdisk.sh + demo/)
PKGS=$PKGS,nginx

SOURCES=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main")
[ -n "$SECURITY_MIRROR" ] && SOURCES+=("deb $SECURITY_MIRROR $SUITE-security main")

# initramfs: MODULES=list from the start, so the kernel's postinst builds a tiny initramfs
# (the module list itself is a conffile of initramfs-tools: written after it is installed)
# shellcheck disable=SC2016  # \$1 is expanded by mmdebstrap (the root dir), not here
SETUP_HOOK='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=list\nCOMPRESS=zstd\n" > "$1/etc/initramfs-tools/conf.d/small.conf"'

if command -v mmdebstrap >/dev/null 2>&1; then
  HOOKS=()
  # without the merged-usr hook mmdebstrap pulls in usrmerge (and perl)
  [ -d /usr/share/mmdebstrap/hooks/merged-usr ] && HOOKS=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  mmdebstrap --quiet --mode=root --variant=minbase --include="$PKGS" \
    --dpkgopt=force-unsafe-io --aptopt='APT::Install-Recommends "false"' \
    "${HOOKS[@]}" --setup-hook="$SETUP_HOOK" \
    "$SUITE" "$NEW" "${SOURCES[@]}"
elif command -v debootstrap >/dev/null 2>&1; then
  mkdir -p "$NEW/etc/initramfs-tools/conf.d"
  printf 'MODULES=list\nCOMPRESS=zstd\n' > "$NEW/etc/initramfs-tools/conf.d/small.conf"
  debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$NEW" "$MIRROR"
else
  echo "build-image: neither mmdebstrap nor debootstrap is installed (apt-get install mmdebstrap)" >&2
  exit 1
fi
step "bootstrap"

# ---- configuration (a plain Debian server; nothing Fluid-specific) ----
R=$NEW
rm -f "$R/etc/apt/apt.conf.d/99mmdebstrap" "$R/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$R/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$SUITE" "$SUITE"
  if [ -n "$SECURITY_MIRROR" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$SECURITY_MIRROR" "$SUITE"
  fi
} > "$R/etc/apt/sources.list.d/debian.sources"

printf '/dev/vda / ext4 rw,relatime,errors=remount-ro 0 1\n' > "$R/etc/fstab"
rm -f "$R/etc/resolv.conf"
printf 'nameserver %s\n' "$GUEST_DNS" > "$R/etc/resolv.conf"

# network: systemd-networkd, DHCPv4 on any ethernet NIC
mkdir -p "$R/etc/systemd/network"
cat > "$R/etc/systemd/network/80-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
# by MAC, not by DUID: VMs cloned from one image share /etc/machine-id (and so the DUID)
ClientIdentifier=mac
UseDomains=no
# the hostname is the machine's own, not the DHCP server's idea of it
UseHostname=no
NET

# under TCG '-cpu max' exposes SVM/VMX: udev would load kvm modules for nothing
printf 'blacklist kvm\nblacklist kvm_amd\nblacklist kvm_intel\nblacklist powernow_k8\n' \
  > "$R/etc/modprobe.d/blacklist-kvm.conf"

# volatile journal: fewer disk writes (and less noise when diffing a clone's disk)
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/volatile.conf"

# sshd: keys only, no root login, no reverse DNS
cat > "$R/etc/ssh/sshd_config.d/50-server.conf" <<'SSHD'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
SSHD

# initramfs modules needed to mount the root fs (virtio_net/virtio_console/virtio_rng load
# from the root fs later via udev; all of these are =m in the generic kernel)
printf 'virtio_pci\nvirtio_blk\nvirtio_mmio\next4\n' > "$R/etc/initramfs-tools/modules"

cat > "$R/tmp/setup.sh" <<'SETUP'
set -e
passwd -l root >/dev/null
systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
# qemu-guest-agent has no [Install]: udev starts it when the org.qemu.guest_agent.0 port appears
systemctl enable qemu-guest-agent.service >/dev/null 2>&1 || true
# units that only cost boot time on a VM
systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer getty@tty1.service \
  systemd-timesyncd.service >/dev/null 2>&1 || true
# no update-motd run-parts on every SSH login
sed -i 's/^session *optional *pam_motd/#&/' /etc/pam.d/sshd
update-initramfs -u -k all >/dev/null 2>&1
apt-get clean
rm -rf /var/lib/apt/lists/*
SETUP
chroot "$R" /bin/bash /tmp/setup.sh
rm -f "$R/tmp/setup.sh"

# no identity in the shared tree: mkvmdisk.sh gives each VM its own
rm -f "$R"/etc/ssh/ssh_host_* "$R/var/lib/systemd/random-seed" "$R/etc/hostname" "$R/etc/hosts"
rm -f "$R/etc/machine-id"; : > "$R/etc/machine-id"
if [ -f "$R/var/lib/dbus/machine-id" ] && [ ! -L "$R/var/lib/dbus/machine-id" ]; then
  ln -sf /etc/machine-id "$R/var/lib/dbus/machine-id"
fi
find "$R/var/log" -type f \( -name '*.log' -o -name 'lastlog' -o -name 'wtmp' -o -name 'btmp' \) -exec truncate -s 0 {} +
step "configure"

KVER=$(find "$R/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
[ -n "$KVER" ] || { echo "build-image: no kernel found in $R/boot" >&2; exit 1; }
install -m 0644 "$R/boot/vmlinuz-$KVER" "$OUT/vmlinuz.new"
install -m 0644 "$R/boot/initrd.img-$KVER" "$OUT/initrd.img.new"
rm -rf "$OUT/rootfs"
mv "$NEW" "$OUT/rootfs"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
mv "$OUT/initrd.img.new" "$OUT/initrd.img"
echo "$KVER" > "$OUT/kernel-version"
echo "   kernel $KVER, initrd $(du -h "$OUT/initrd.img" | cut -f1), rootfs $(du -sh "$OUT/rootfs" | cut -f1)"
