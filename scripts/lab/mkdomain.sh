#!/bin/bash
# Print the libvirt domain XML of a lab source VM (direct kernel boot, q35, minimal devices).
#
#   mkdomain.sh NAME DISK MAC VIRT_TYPE(qemu|kvm)
#
# env: KERNEL, INITRD (required), SERIAL_LOG (required), TITLE, DESCRIPTION,
#      MEM_MIB (512), VCPUS (2), NET (default), SPARE_PORTS (8), TB_CACHE_MIB (128)
# Deterministic output: `lab.sh up` compares it with the last defined version to decide
# whether to redefine the domain.
set -euo pipefail
NAME=${1:?usage: mkdomain.sh NAME DISK MAC VIRT_TYPE}
DISK=${2:?disk missing}
MAC=${3:?mac missing}
VT=${4:?virt type missing}
: "${KERNEL:?}" "${INITRD:?}" "${SERIAL_LOG:?}"
MEM=${MEM_MIB:-512}
VCPUS=${VCPUS:-2}
NET=${NET:-default}
TITLE=${TITLE:-$NAME}
DESCRIPTION=${DESCRIPTION:-}
xml_escape() { local s=$1; s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\'/&apos;}; printf '%s' "$s"; }

case $VT in
  kvm) CPU="<cpu mode='host-passthrough'/>"; FEATURES="<acpi/>";;
  # TCG's translation cache defaults to 1 GiB per VM (RSS grows to RAM + 1 GiB): cap it
  qemu) CPU="<cpu mode='maximum'/>"; FEATURES="<acpi/><tcg><tb-cache unit='MiB'>${TB_CACHE_MIB:-128}</tb-cache></tcg>";;
  *) echo "mkdomain: virt type must be kvm or qemu, not '$VT'" >&2; exit 2;;
esac

# The disk, NIC, virtio-serial and rng take the first declared root ports: declare 4 more than
# the number of spare ports wanted (PCIe hot-plug on q35 needs a free root port per device).
PORTS=""
for _ in $(seq 1 $(( ${SPARE_PORTS:-8} + 4 ))); do
  PORTS+="    <controller type='pci' model='pcie-root-port'/>
"
done

cat <<XML
<domain type='$VT'>
  <name>$NAME</name>
  <title>$(xml_escape "$TITLE")</title>
  <description>$(xml_escape "$DESCRIPTION")</description>
  <genid/>
  <memory unit='MiB'>$MEM</memory>
  <vcpu>$VCPUS</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$(xml_escape "$KERNEL")</kernel>
    <initrd>$(xml_escape "$INITRD")</initrd>
    <cmdline>root=/dev/vda rw console=ttyS0 quiet systemd.show_status=false</cmdline>
  </os>
  <features>$FEATURES</features>
  $CPU
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='$(xml_escape "$DISK")'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='$NET'/>
      <mac address='$MAC'/>
      <model type='virtio'/>
    </interface>
    <controller type='pci' index='0' model='pcie-root'/>
$PORTS    <controller type='usb' model='none'/>
    <serial type='pty'>
      <log file='$(xml_escape "$SERIAL_LOG")' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <video><model type='none'/></video>
    <memballoon model='none'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
XML
