import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { evaluate, type PreflightInput } from '../../../src/core/hosts/preflight.ts';
import {
  parseSections,
  parseDomainListing,
  parseDomainXml,
  toMiB,
  compareVersions,
  type Section,
} from '../../../src/core/hosts/virsh.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const input: PreflightInput = {
  libvirtUri: 'qemu:///system',
  storageDir: '/var/lib/fluid',
  user: 'root',
  minFreeDiskGiB: 10,
  minFreeMemoryMiB: 1024,
};
const real = () => parseSections(fixture('preflight-tcg-host.txt'));
const byId = (checks: Array<{ id: string; status: string }>) =>
  Object.fromEntries(checks.map((c) => [c.id, c.status]));

test('sections of a real probe parse with their exit codes', () => {
  const s = real();
  assert.deepEqual(Object.keys(s).sort(), [
    'disk',
    'kvm',
    'meminfo',
    'networks',
    'nodeinfo',
    'pools',
    'qemuimg',
    'version',
    'virsh',
    'whoami',
  ]);
  assert.equal(s.version!.code, 0);
  assert.match(s.version!.out, /Running against daemon/);
});

test('a real TCG host (PVM /dev/kvm): passes, with a TCG warning and its reason', () => {
  const { checks, facts } = evaluate(input, real());
  const st = byId(checks);
  assert.equal(st.virsh, 'pass');
  assert.equal(st['virt-type'], 'warn');
  assert.equal(st['qemu-img'], 'pass');
  assert.equal(st.networks, 'pass');
  assert.equal(facts.virtType, 'qemu');
  assert.match(facts.virtTypeReason, /PVM/);
  assert.ok(facts.cpus! >= 1);
  assert.ok(facts.memoryMiB! > facts.freeMemoryMiB! * 0.5);
  assert.ok(facts.networks.some((n) => n.name === 'default' && n.active && n.bridge));
  assert.ok(!checks.some((c) => c.status === 'fail'));
});

function variant(edit: (s: Record<string, Section>) => void) {
  const s = real();
  edit(s);
  return evaluate(input, s);
}

test('real KVM is detected only when /dev/kvm is usable, not PVM, and libvirt offers kvm', () => {
  const kvmOut = 'dev=yes\npvm=no\nrw=yes\ncpuflags=2\ndomcaps=yes';
  const r = variant((s) => (s.kvm = { out: kvmOut, code: 0 }));
  assert.equal(r.facts.virtType, 'kvm');
  assert.equal(byId(r.checks)['virt-type'], 'pass');
  const noDev = variant((s) => (s.kvm = { out: 'dev=no\npvm=no\nrw=no\ncpuflags=0\ndomcaps=no', code: 0 }));
  assert.equal(noDev.facts.virtType, 'qemu');
  assert.match(noDev.facts.virtTypeReason, /does not exist/);
  const noCaps = variant(
    (s) => (s.kvm = { out: 'dev=yes\npvm=no\nrw=yes\ncpuflags=2\ndomcaps=no', code: 0 }),
  );
  assert.equal(noCaps.facts.virtType, 'qemu');
});

test('missing virsh or an unreachable daemon fail with advice', () => {
  const noVirsh = variant((s) => {
    s.virsh = { out: '', code: 1 };
    s.version = { out: 'sh: virsh: not found', code: 127 };
  });
  const c = noVirsh.checks.find((x) => x.id === 'virsh')!;
  assert.equal(c.status, 'fail');
  assert.match(c.advice!, /libvirt-clients/);
  const down = variant(
    (s) =>
      (s.version = {
        out: 'error: failed to connect to the hypervisor\nerror: Failed to connect socket',
        code: 1,
      }),
  );
  const d = down.checks.find((x) => x.id === 'virsh')!;
  assert.equal(d.status, 'fail');
  assert.match(d.detail, /failed to connect/);
  assert.match(d.advice!, /libvirtd/);
});

test('old libvirt fails, older-than-recommended warns', () => {
  const old = variant(
    (s) =>
      (s.version!.out = s.version!.out.replace(
        /Running against daemon: [\d.]+/,
        'Running against daemon: 5.0.0',
      )),
  );
  assert.equal(byId(old.checks)['libvirt-version'], 'fail');
  const meh = variant(
    (s) =>
      (s.version!.out = s.version!.out.replace(
        /Running against daemon: [\d.]+/,
        'Running against daemon: 6.10.0',
      )),
  );
  assert.equal(byId(meh.checks)['libvirt-version'], 'warn');
});

test('disk thresholds: low space warns, very low fails, unwritable fails', () => {
  const df = (free: number) =>
    `dir=/var/lib\nwritable=yes\nFilesystem 1-blocks Used Available Capacity Mounted on\n/dev/vda 100000000000 1 ${free} 1% /`;
  assert.equal(byId(variant((s) => (s.disk = { out: df(5 * 1024 ** 3), code: 0 })).checks).disk, 'warn');
  assert.equal(byId(variant((s) => (s.disk = { out: df(1 * 1024 ** 3), code: 0 })).checks).disk, 'fail');
  assert.equal(
    byId(
      variant((s) => (s.disk = { out: df(50 * 1024 ** 3).replace('writable=yes', 'writable=no'), code: 0 }))
        .checks,
    ).disk,
    'fail',
  );
});

test('no active network warns with the command to start one', () => {
  const r = variant((s) => (s.networks = { out: 'default   inactive   no   yes\n', code: 0 }));
  const c = r.checks.find((x) => x.id === 'networks')!;
  assert.equal(c.status, 'warn');
  assert.match(c.advice!, /net-start/);
});

test('a real domain listing parses: names, states, sizes, disks, NICs, guest agent, Fluid labels', () => {
  const doms = parseDomainListing(fixture('domain-listing.txt'));
  const prod = doms.find((d) => d.name === 'fluid-lab-prod')!;
  assert.ok(prod, 'fluid-lab-prod listed');
  assert.equal(prod.vcpus, 2);
  assert.equal(prod.memoryMiB, 512);
  assert.equal(prod.hasGuestAgent, true);
  assert.equal(prod.disks[0]!.format, 'qcow2');
  assert.match(prod.disks[0]!.source!, /fluid-lab-prod\.qcow2$/);
  assert.match(prod.interfaces[0]!.mac!, /^52:54:00/);
  assert.equal(prod.fluid, null);
  assert.ok(['running', 'shut off'].includes(prod.state));
});

test('Fluid-owned domains are recognised by their metadata namespace', () => {
  const x = `<domain type='qemu'><name>sbx-1</name><uuid>u</uuid><memory unit='MiB'>1024</memory><vcpu>1</vcpu>
    <metadata><fluid:sandbox xmlns:fluid="https://fluid.dev/xmlns/libvirt/1" id="abc"/></metadata><devices/></domain>`;
  const d = parseDomainXml(x);
  assert.deepEqual(d.fluid, { kind: 'sandbox', id: 'abc', installation: null });
  assert.equal(d.memoryMiB, 1024);
});

test('memory units and version comparison', () => {
  assert.equal(toMiB('524288', 'KiB'), 512);
  assert.equal(toMiB('2', 'GiB'), 2048);
  assert.equal(toMiB('1073741824', 'bytes'), 1024);
  assert.ok(compareVersions('9.0.0', '7.2.0') > 0);
  assert.ok(compareVersions('7.10.0', '7.2.0') > 0);
  assert.equal(compareVersions('7.2', '7.2.0'), 0);
});
