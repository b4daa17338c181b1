#!/bin/bash
# Make one source VM's own disk: the shared rootfs plus this VM's identity, as a full qcow2.
#
#   mkvmdisk.sh ROOTFS HOSTNAME OUT.qcow2 [SIZE=3G] [DEMO=working|fault]
#
# Identity baked in: /etc/hostname, /etc/hosts, a fresh /etc/machine-id and fresh SSH host keys.
# DEMO: the lab's demo service (nginx in front of a small app, demo/install.sh), working or with
# production's fault.
# The rootfs is hard-link copied into a staging tree (fast; files that get an identity are
# removed and re-created there, never written through a shared link), then `mkfs.ext4 -d`
# (no loop mount) and `qemu-img convert` to a standalone qcow2 (no backing file).
set -euo pipefail
ROOTFS=${1:?usage: mkvmdisk.sh ROOTFS HOSTNAME OUT.qcow2 [SIZE]}
HOST=${2:?hostname missing}
OUT=${3:?output path missing}
SIZE=${4:-3G}
DEMO=${5:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$ROOTFS/usr/bin/python3" ] || { echo "mkvmdisk: $ROOTFS is not a built rootfs" >&2; exit 1; }
STAGE=$OUT.stage
RAW=$OUT.raw
trap 'rm -rf "$STAGE" "$RAW" "$OUT.tmp"' EXIT
rm -rf "$STAGE" "$RAW" "$OUT.tmp"

cp -al "$ROOTFS" "$STAGE"
E=$STAGE/etc
rm -f "$E/hostname" "$E/hosts" "$E/machine-id" "$E"/ssh/ssh_host_*
printf '%s\n' "$HOST" > "$E/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' \
  "$HOST" > "$E/hosts"
tr -d '-' < /proc/sys/kernel/random/uuid > "$E/machine-id"
chmod 0444 "$E/machine-id"
for t in rsa ecdsa ed25519; do
  ssh-keygen -q -t "$t" -N '' -C "root@$HOST" -f "$E/ssh/ssh_host_${t}_key"
done

[ -z "$DEMO" ] || "$HERE/demo/install.sh" "$STAGE" "$DEMO"

mkfs.ext4 -q -L root -d "$STAGE" "$RAW" "$SIZE"
qemu-img convert -O qcow2 "$RAW" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
