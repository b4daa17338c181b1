/**
 * Snapshot internals without a VM: the block list and definition edits, the row detail, and the
 * garbage collection of layer files against real qcow2 chains (qemu-img) with a stand-in `virsh`
 * that reports the domain's current disk. The lab test (test/integration/snapshots.test.ts) runs
 * the same code against real libvirt.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import {
  collectGarbage,
  parseBlockList,
  parseDetail,
  setDiskSources,
  snapshotDisks,
} from '../../../src/core/sandboxes/snapshots.ts';

test('the block list keeps sources with spaces and tells disks from other devices', () => {
  const devs = parseBlockList(
    ' file   disk    vda   /var/lib/fluid/i/sandboxes/s/vda.qcow2\n file   disk   vdb   /data/my disks/b.qcow2\n file   cdrom  sda   -\n block  disk   vdc   /dev/sdb\n',
  );
  assert.deepEqual(
    devs.map((d) => [d.type, d.device, d.target, d.source]),
    [
      ['file', 'disk', 'vda', '/var/lib/fluid/i/sandboxes/s/vda.qcow2'],
      ['file', 'disk', 'vdb', '/data/my disks/b.qcow2'],
      ['file', 'cdrom', 'sda', '-'],
      ['block', 'disk', 'vdc', '/dev/sdb'],
    ],
  );
  assert.deepEqual(
    snapshotDisks(devs).map((d) => d.target),
    ['vda', 'vdb'],
  );
});

test('a definition moves onto new layers: the recorded backing chain goes, everything else stays', () => {
  const xml = `<domain type='qemu'>
  <name>fluid-x</name>
  <metadata><fluid:sandbox xmlns:fluid="https://fluid.dev/xmlns/libvirt/1" id="s1" installation="i1"/></metadata>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/d/vda.qcow2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/base/vda.qcow2'/><backingStore/></backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sda' bus='sata'/></disk>
  </devices>
</domain>`;
  const out = setDiskSources(xml, { vda: '/d/snapshots/vda.1.qcow2' });
  assert.match(out, /<source file="\/d\/snapshots\/vda\.1\.qcow2"\/>/);
  assert.doesNotMatch(out, /backingStore/);
  assert.doesNotMatch(out, /\/d\/vda\.qcow2|\/base\/vda/);
  assert.match(out, /<source file="\/iso\/x\.iso"\/>/, 'the cdrom keeps its source');
  assert.match(out, /<fluid:sandbox[^>]*id="s1"/, 'the label survives');
  assert.throws(() => setDiskSources(xml, { vdz: '/x' }), /no disk vdz/);
});

test('a row without recorded layers is not a snapshot Fluid can restore', () => {
  assert.equal(parseDetail('{}'), null);
  assert.equal(parseDetail('not json'), null);
  assert.equal(parseDetail('{"layers":{}}'), null);
  assert.deepEqual(parseDetail('{"layers":{"vda":"/a"},"memory":"/m"}'), {
    layers: { vda: '/a' },
    memory: '/m',
  });
});

// ---- garbage collection against real qcow2 chains ------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'fluid-snap-gc-'));
after(() => rmSync(work, { recursive: true, force: true }));
const bin = join(work, 'bin');
mkdirSync(bin);
// `virsh dumpxml` answers with the domain's current disk, read from a file the test controls.
writeFileSync(
  join(bin, 'virsh'),
  `#!/bin/sh\n[ -f ${work}/fail ] && { echo "virsh: no such domain" >&2; exit 1; }\nprintf "<domain><devices><disk type='file' device='disk'>\\n<source file='%s'/>\\n</disk></devices></domain>\\n" "$(cat ${work}/active)"\n`,
);
chmodSync(join(bin, 'virsh'), 0o755);
process.env.PATH = `${bin}:${process.env.PATH}`;

const img = (path: string, backing?: string) =>
  execFileSync('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    ...(backing ? ['-F', 'qcow2', '-b', backing] : []),
    path,
    ...(backing ? [] : ['16M']),
  ]);

test('unused layers and memory images are removed; every file a chain or a snapshot needs stays', async () => {
  const dir = join(work, 'sandbox');
  const snap = join(dir, 'snapshots');
  mkdirSync(snap, { recursive: true });
  const base = join(work, 'base.qcow2');
  img(base);
  img(join(dir, 'vda.qcow2'), base);
  // S1 froze vda.qcow2 → a; S2 froze a → b (the current disk); c is a restore's abandoned layer.
  img(join(snap, 'vda.a.qcow2'), join(dir, 'vda.qcow2'));
  img(join(snap, 'vda.b.qcow2'), join(snap, 'vda.a.qcow2'));
  img(join(snap, 'vda.c.qcow2'), join(dir, 'vda.qcow2'));
  writeFileSync(join(snap, 's2.mem'), 'ram');
  writeFileSync(join(snap, 'old.mem'), 'ram');
  writeFileSync(join(work, 'active'), join(snap, 'vda.b.qcow2'));
  const conn = new LocalConnection('local');
  const s2 = { layers: { vda: join(snap, 'vda.a.qcow2') }, memory: join(snap, 's2.mem') };

  // A failing read removes nothing.
  writeFileSync(join(work, 'fail'), '');
  await assert.rejects(collectGarbage(conn, 'qemu:///system', 'fluid-x', dir, [s2]));
  assert.equal(readdirSync(snap).filter((f) => !f.startsWith('.')).length, 5);
  rmSync(join(work, 'fail'));

  const removed = await collectGarbage(conn, 'qemu:///system', 'fluid-x', dir, [s2]);
  assert.deepEqual(removed.sort(), [join(snap, 'old.mem'), join(snap, 'vda.c.qcow2')]);
  assert.deepEqual(
    readdirSync(snap)
      .filter((f) => !f.startsWith('.'))
      .sort(),
    ['s2.mem', 'vda.a.qcow2', 'vda.b.qcow2'],
  );

  // With no snapshot left, the memory image goes; a is still the current disk's backing file.
  assert.deepEqual(await collectGarbage(conn, 'qemu:///system', 'fluid-x', dir, []), [join(snap, 's2.mem')]);
  assert.ok(existsSync(join(snap, 'vda.a.qcow2')));
  // Files outside snapshots/ (the creation layer, anything other features keep) are never touched.
  assert.ok(existsSync(join(dir, 'vda.qcow2')) && existsSync(base));
});
