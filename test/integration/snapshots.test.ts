/**
 * Snapshots on the lab (libvirt 9.0, which cannot revert libvirt's external snapshots): both kinds,
 * taken of a running and of a stopped sandbox, restored into a running and into a stopped one.
 * Each restore must bring back what was there when the snapshot was taken and lose what was
 * written after it; the shared base copy is never written, and libvirt keeps no snapshot records.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { labHost, requireLab, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { testCore } from '../support/core.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';

let lab: Lab;
const core = testCore({ secrets: undefined }); // file secrets: the CLI below shares the CA
const client = connectInProcess(core, { door: 'test', id: 'snapshots-it' });
const cli = (args: string[]) => fluid(args, { dataDir: core.paths.dataDir, timeoutMs: 600_000 });
let sb: Sandbox;
let baseSums: Array<{ path: string; sha256: string }> = [];

const sh = (cmd: string) => execFileSync('sh', ['-c', cmd]).toString();
const virsh = (args: string) => sh(`virsh -q -c ${lab.libvirtUri} ${args}`).trim();
const domstate = () => virsh(`domstate ${sb.domainName}`);

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

async function exec(command: string): Promise<string> {
  const r = await client.call('sandboxes.exec', { sandbox: sb.id, command });
  assert.equal(r.exitCode, 0, `${command}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The content of /root/state and whether /root/later exists, as the guest sees them. */
const seen = () => exec('cat /root/state; [ -e /root/later ] && echo later || echo no-later');

/** Read a file from a shut-off sandbox's disk, through its current chain, without writing it. */
function readOffline(path: string): string {
  const active = virsh(`domblklist --details ${sb.domainName}`)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === 'disk')![3]!;
  const raw = join(core.paths.dataDir, 'peek.raw');
  sh(`qemu-img convert -U -O raw ${active} ${raw}`);
  try {
    return sh(`debugfs -R 'cat ${path}' ${raw} 2>/dev/null`).trim();
  } finally {
    sh(`rm -f ${raw}`);
  }
}

const snapFiles = () => {
  const d = `/var/lib/fluid/${core.installation}/sandboxes/${sb.id}/snapshots`;
  return existsSync(d) ? readdirSync(d).filter((f) => !f.startsWith('.')) : [];
};

before(async () => {
  lab = await requireLab();
  await client.call('hosts.add', labHost(lab));
  assert.equal((await finish(await client.call('hosts.check', { host: 'lab' }))).status, 'succeeded');
  const task = await client.call('sandboxes.create', {
    host: 'lab',
    source: 'fluid-lab-web',
    name: 'it-snap',
    start: 'cold',
  });
  const t = await finish(task);
  assert.equal(t.status, 'succeeded', JSON.stringify(t.error));
  sb = t.result as Sandbox;
  const base = (await client.call('bases.list', { host: 'lab' })).find((b) => b.id === sb.baseId)!;
  baseSums = base.disks.map((d) => ({ path: d.path, sha256: d.sha256! }));
});

after(async () => {
  if (sb) await client.call('sandboxes.destroy', { sandbox: sb.id }).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.dispose();
});

describe('snapshots of a running sandbox', () => {
  test('disk+memory: the restore brings back the running guest as it was; later writes are gone', async () => {
    await exec('echo memory-before > /root/state; rm -f /root/later');
    const snap = await client.call('snapshots.create', { sandbox: sb.id, name: 'mem', memory: true });
    assert.equal(snap.kind, 'disk+memory');
    const bootId = await exec('cat /proc/sys/kernel/random/boot_id');
    await exec('echo memory-after > /root/state; touch /root/later');
    assert.equal(await seen(), 'memory-after\nlater');

    const back = await client.call('snapshots.restore', { sandbox: sb.id, snapshot: 'mem' });
    assert.equal(back.state, 'running');
    assert.equal(domstate(), 'running');
    assert.equal(await seen(), 'memory-before\nno-later');
    assert.equal(
      await exec('cat /proc/sys/kernel/random/boot_id'),
      bootId,
      'the same boot: memory came back',
    );
    // The clock was set from the host after the restore (a frozen clock breaks certificates).
    assert.ok(Math.abs(Number(await exec('date +%s')) - Date.now() / 1000) < 120);
  });

  test('disk only (CLI --no-memory): quiesced, and the restore boots the disk as it was', async () => {
    // No sync: the snapshot itself must freeze the guest's file systems (through the guest agent).
    await exec('echo disk-before > /root/state; rm -f /root/later');
    const made = await cli(['snapshot', 'create', sb.id, 'disk', '--no-memory', '--json']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(made.json<{ kind: string }>().kind, 'disk');
    const audit = await client.call('audit.list', { limit: 20, target: sb.id, action: 'snapshot.create' });
    const entry = audit.entries.find((e) => (e.data as { name: string }).name === 'disk')!;
    assert.equal((entry.data as { quiesced: boolean }).quiesced, true, 'file systems were frozen for it');
    const bootId = await exec('cat /proc/sys/kernel/random/boot_id');
    await exec('echo disk-after > /root/state; touch /root/later; sync');

    const r = await cli(['snapshot', 'restore', sb.id, 'disk', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json<Sandbox>().state, 'running');
    assert.equal(await seen(), 'disk-before\nno-later');
    assert.notEqual(await exec('cat /proc/sys/kernel/random/boot_id'), bootId, 'it booted from the disk');
    // Its identity is the sandbox's own: the pinned host key and address still hold.
    const again = await client.call('sandboxes.get', { sandbox: sb.id });
    assert.equal(again.ip, sb.ip);
    assert.equal(again.hostKeyFingerprint, sb.hostKeyFingerprint);
  });
});

describe('snapshots of a stopped sandbox', () => {
  test('both kinds restore into a stopped and into a running sandbox', async () => {
    await exec('echo stopped-before > /root/state; rm -f /root/later');
    assert.equal((await client.call('sandboxes.stop', { sandbox: sb.id, force: false })).state, 'stopped');
    // A stopped sandbox has no memory to keep: asked with or without it, the snapshot is of the disk.
    const a = await client.call('snapshots.create', { sandbox: sb.id, name: 'off-a', memory: true });
    const b = await client.call('snapshots.create', { sandbox: sb.id, name: 'off-b', memory: false });
    assert.deepEqual([a.kind, b.kind], ['disk', 'disk']);

    const t = await finish(await client.call('sandboxes.start', { sandbox: sb.id }));
    assert.equal(t.status, 'succeeded', JSON.stringify(t.error));
    await exec('echo stopped-after > /root/state; touch /root/later');
    await client.call('sandboxes.stop', { sandbox: sb.id, force: false });
    assert.equal(readOffline('/root/state'), 'stopped-after');

    // Into a stopped sandbox: it stays stopped, its disk is back.
    const back = await client.call('snapshots.restore', { sandbox: sb.id, snapshot: 'off-a' });
    assert.equal(back.state, 'stopped');
    assert.equal(domstate(), 'shut off');
    assert.equal(readOffline('/root/state'), 'stopped-before');
    assert.equal(readOffline('/root/later'), '', 'written after the snapshot: gone');

    // A memory snapshot restored into a stopped sandbox: running again, as it was then.
    const mem = await client.call('snapshots.restore', { sandbox: sb.id, snapshot: 'mem' });
    assert.equal(mem.state, 'running');
    assert.equal(await seen(), 'memory-before\nno-later');

    // A snapshot of the stopped sandbox restored into the running one: it boots that disk.
    await exec('echo running-again > /root/state');
    const off = await client.call('snapshots.restore', { sandbox: sb.id, snapshot: 'off-b' });
    assert.equal(off.state, 'running');
    assert.equal(await seen(), 'stopped-before\nno-later');
  });
});

describe('what snapshots leave behind', () => {
  test('the shared base is unchanged, libvirt holds no snapshot, and deleting snapshots frees their files', async () => {
    for (const b of baseSums)
      assert.equal(sh(`sha256sum ${b.path}`).split(' ')[0], b.sha256, `${b.path} was never written`);
    assert.equal(virsh(`snapshot-list ${sb.domainName} --name`), '', 'no libvirt snapshot metadata');
    const mem = (await client.call('snapshots.list', { sandbox: sb.id })).find((s) => s.name === 'mem')!;
    assert.ok(snapFiles().includes(`${mem.id}.mem`), snapFiles().join(' '));

    for (const s of await client.call('snapshots.list', { sandbox: sb.id }))
      await client.call('snapshots.delete', { sandbox: sb.id, snapshot: s.name });
    assert.deepEqual(await client.call('snapshots.list', { sandbox: sb.id }), []);
    // What is left is exactly the chain the running disk reads: no memory image, no orphan layer.
    const active = virsh(`domblklist --details ${sb.domainName}`)
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((f) => f[1] === 'disk')![3]!;
    const chain = sh(`qemu-img info -U --backing-chain ${active} | sed -n 's/^image: //p'`)
      .trim()
      .split('\n');
    const left = snapFiles();
    assert.ok(!left.some((f) => f.endsWith('.mem')), left.join(' '));
    for (const f of left.filter((x) => x.endsWith('.qcow2')))
      assert.ok(
        chain.some((c) => c.endsWith(`/snapshots/${f}`)),
        `${f} is in the running chain`,
      );
    // And the sandbox still works on that chain.
    assert.equal(await seen(), 'stopped-before\nno-later');
  });
});
