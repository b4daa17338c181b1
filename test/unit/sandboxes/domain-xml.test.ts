import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { deriveDomain, pinNicAddress, type DeriveOptions } from '../../../src/core/sandboxes/domain-xml.ts';
import { parseDomainXml } from '../../../src/core/hosts/virsh.ts';

// A production-like definition with everything that must not follow a clone.
const SOURCE = `<domain type='kvm' id='7'>
  <name>prod-db</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <genid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</genid>
  <metadata><app:owner xmlns:app="https://example.com/app">dba-team</app:owner></metadata>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>8388608</currentMemory>
  <memoryBacking><hugepages/></memoryBacking>
  <vcpu placement='static' cpuset='0-3'>4</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='0'/></cputune>
  <sysinfo type='smbios'><system><entry name='serial'>PROD-SERIAL-42</entry></system></sysinfo>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/prod-db_VARS.fd</nvram>
    <smbios mode='sysinfo'/>
  </os>
  <features><acpi/><kvm><hidden state='on'/></kvm></features>
  <cpu mode='host-passthrough' check='none'><topology sockets='1' cores='4' threads='1'/></cpu>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' io='native'/>
      <source dev='/dev/vg0/prod-db'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/prod-data.qcow2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/base.qcow2'/></backingStore>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/isos/secret-keys.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:12:34:56'/>
      <source bridge='br-prod'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:12:34:57'/>
      <source network='backup-net'/>
      <model type='e1000'/>
    </interface>
    <serial type='tcp'><source mode='bind' host='0.0.0.0' service='4555'/><target port='0'/></serial>
    <console type='tcp'><source mode='bind' host='0.0.0.0' service='4555'/><target type='serial' port='0'/></console>
    <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
    <graphics type='vnc' port='-1' autoport='yes' listen='0.0.0.0' passwd='hunter2'/>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/></source></hostdev>
    <filesystem type='mount'><source dir='/srv/share'/><target dir='share'/></filesystem>
    <vsock model='virtio'><cid auto='no' address='42'/></vsock>
    <video><model type='qxl'/></video>
  </devices>
  <seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>
</domain>`;

const opts = (o: Partial<DeriveOptions> = {}): DeriveOptions => ({
  name: 'fluid-fix-db-12345678',
  uuid: '99999999-8888-7777-6666-555555555555',
  genid: '12121212-3434-5656-7878-909090909090',
  virtType: 'qemu',
  disks: { vda: '/var/lib/fluid/i/sandboxes/s/vda.qcow2', vdb: '/var/lib/fluid/i/sandboxes/s/vdb.qcow2' },
  nvramPath: '/var/lib/fluid/i/sandboxes/s/nvram.fd',
  nic: { network: 'fluid-sandboxes', mac: '52:54:00:ef:00:07' },
  serialLog: '/var/lib/fluid/i/sandboxes/s/serial.log',
  label: { kind: 'sandbox', id: 's', installation: 'i', source: 'prod-db', base: 'b' },
  ...o,
});

test('identity, host bindings and secrets of the source do not follow the clone', () => {
  const { xml, notes } = deriveDomain(SOURCE, opts());
  for (const leak of [
    '11111111-2222-3333-4444-555555555555',
    'aaaaaaaa-bbbb',
    'hunter2',
    'PROD-SERIAL-42',
    'br-prod',
    'backup-net',
    '/dev/vg0/prod-db',
    '/var/lib/libvirt/images/prod-data.qcow2',
    '/base.qcow2',
    'secret-keys.iso',
    'dba-team',
    '0.0.0.0',
    'hugepages',
    'vcpupin',
    'hostdev',
    '/srv/share',
    "address='42'",
    'svirt_t',
    'spicevmc',
    'prod-db_VARS',
    "id='7'",
  ]) {
    assert.ok(!xml.includes(leak), `the derived domain still contains ${leak}`);
  }
  assert.ok(notes.some((n) => n.includes('hostdev')));
  assert.ok(notes.some((n) => n.includes('kept 1 of 2')));
});

test('the new identity, Fluid label, overlays, isolated NIC and guest agent are in place', () => {
  const { xml } = deriveDomain(SOURCE, opts());
  const d = parseDomainXml(xml);
  assert.equal(d.name, 'fluid-fix-db-12345678');
  assert.equal(d.uuid, '99999999-8888-7777-6666-555555555555');
  assert.deepEqual(d.fluid, { kind: 'sandbox', id: 's', installation: 'i' });
  assert.deepEqual(
    d.disks.filter((x) => x.device === 'disk').map((x) => [x.target, x.type, x.format, x.source]),
    [
      ['vda', 'file', 'qcow2', '/var/lib/fluid/i/sandboxes/s/vda.qcow2'],
      ['vdb', 'file', 'qcow2', '/var/lib/fluid/i/sandboxes/s/vdb.qcow2'],
    ],
  );
  const cdrom = d.disks.find((x) => x.device === 'cdrom')!;
  assert.equal(cdrom.source, null, 'removable media is emptied');
  assert.deepEqual(d.interfaces, [
    { type: 'network', source: 'fluid-sandboxes', mac: '52:54:00:ef:00:07', model: 'virtio' },
  ]);
  assert.equal(d.hasGuestAgent, true, 'a guest agent channel is added');
  assert.match(
    xml,
    /<address type="pci" domain="0x0000" bus="0x01"/,
    'the NIC keeps its PCI address (same name in the guest)',
  );
  assert.match(xml, /<address type="pci" domain="0x0000" bus="0x04"/, 'the disk keeps its PCI address');
  assert.match(xml, /<serial type="pty">/);
  assert.match(xml, /<log file="\/var\/lib\/fluid\/i\/sandboxes\/s\/serial.log"/);
  assert.match(xml, /<nvram>\/var\/lib\/fluid\/i\/sandboxes\/s\/nvram.fd<\/nvram>/);
  assert.match(xml, /<cid auto="yes"\/>/);
});

test('under TCG the CPU is emulated and the translation cache capped; under KVM the CPU stays', () => {
  const tcg = deriveDomain(SOURCE, opts()).xml;
  assert.match(tcg, /<domain type="qemu"/);
  assert.match(tcg, /<cpu mode="maximum"/);
  assert.match(tcg, /<tb-cache unit="MiB">128<\/tb-cache>/);
  assert.doesNotMatch(tcg, /<kvm>/);
  const kvm = deriveDomain(SOURCE, opts({ virtType: 'kvm' })).xml;
  assert.match(kvm, /<domain type="kvm"/);
  assert.match(kvm, /<cpu mode="host-passthrough"/);
  assert.doesNotMatch(kvm, /tb-cache/);
});

test('size overrides, no NIC for templates, spare root ports, and the hot-plug NIC keeps the address', () => {
  const t = deriveDomain(
    SOURCE,
    opts({
      vcpus: 2,
      memoryMiB: 1024,
      nic: null,
      spareRootPorts: 3,
      label: { kind: 'template', id: 'b', installation: 'i', source: 'prod-db', base: 'b' },
    }),
  );
  const d = parseDomainXml(t.xml);
  assert.equal(d.vcpus, 2);
  assert.equal(d.memoryMiB, 1024);
  assert.deepEqual(d.interfaces, []);
  assert.equal(d.fluid?.kind, 'template');
  assert.equal((t.xml.match(/model="pcie-root-port"/g) ?? []).length, 3);
  const nic = t.nicXml('52:54:00:ef:01:02', 'fluid-sandboxes');
  assert.match(nic, /<mac address="52:54:00:ef:01:02"\/>/);
  assert.match(nic, /bus="0x01"/);
});

test('a source disk without an overlay, or an overlay for a missing disk, is an error', () => {
  assert.throws(
    () => deriveDomain(SOURCE, opts({ disks: { vda: '/x' } })),
    /no overlay for the source's disk vdb/,
  );
  assert.throws(
    () => deriveDomain(SOURCE, opts({ disks: { vda: '/x', vdb: '/y', vdc: '/z' } })),
    /has no disk vdc/,
  );
  assert.throws(() => deriveDomain(SOURCE, opts({ nvramPath: null })), /nvram/);
});

test('the lab source (captured from libvirt) derives a bootable-looking definition', () => {
  const listing = readFileSync(new URL('../hosts/fixtures/domain-listing.txt', import.meta.url), 'utf8');
  const xml = /<domain[\s\S]*?<\/domain>/.exec(listing)![0];
  const d = deriveDomain(xml, opts({ disks: { vda: '/o/vda.qcow2' }, nvramPath: null }));
  const p = parseDomainXml(d.xml);
  assert.equal(p.disks[0]!.source, '/o/vda.qcow2');
  assert.match(d.xml, /<kernel>/, 'direct kernel boot is kept');
});

test('the NIC is pinned to its address with clean-traffic, on cold boot and on a template’s hot-plugged NIC', () => {
  const cold = deriveDomain(
    SOURCE,
    opts({ nic: { network: 'fluid-sandboxes', mac: '52:54:00:ef:00:07', pinIp: '10.239.1.8' } }),
  ).xml;
  assert.match(
    cold,
    /<filterref filter="clean-traffic">\s*<parameter name="IP" value="10.239.1.8"\/>\s*<\/filterref>/,
  );
  assert.doesNotMatch(deriveDomain(SOURCE, opts()).xml, /filterref/);

  const t = deriveDomain(SOURCE, opts({ nic: null, spareRootPorts: 1 }));
  const pinned = pinNicAddress(t.nicXml('52:54:00:ef:01:02', 'fluid-sandboxes'), '10.239.1.9');
  assert.match(pinned, /^<interface type="network">/);
  assert.match(pinned, /<mac address="52:54:00:ef:01:02"\/>/);
  assert.equal((pinned.match(/<filterref /g) ?? []).length, 1);
  assert.match(pinned, /<parameter name="IP" value="10.239.1.9"\/>/);
  // Pinning again replaces the filter instead of adding a second one.
  assert.equal((pinNicAddress(pinned, '10.239.1.10').match(/<filterref /g) ?? []).length, 1);
  assert.throws(() => pinNicAddress('<disk/>', '10.239.1.9'), /not an <interface>/);
});
