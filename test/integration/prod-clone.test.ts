/**
 * A sandbox cloned from the lab's RUNNING production VM (fluid-lab-prod): the base copy comes from
 * libvirt's backup API while the VM keeps running. What can be proven unchanged about a VM that
 * keeps running (its disk changes by itself, so no checksum of it can be compared):
 *  - it kept running the whole time, was never paused (sampled throughout, and libvirt's state
 *    reason stays "booted": a pause and resume would make it "unpaused"), and is the same process
 *    (same domain id);
 *  - its definition, live and persistent, is byte-for-byte what it was;
 *  - Fluid left nothing in or on it: no libvirt snapshot or checkpoint, no qcow2 snapshot or dirty
 *    bitmap in its image, no overlay (its disk is the same file, with the same backing chain);
 *  - its identity as the guest sees it (hostname, machine-id, SSH host keys) is what it was;
 * and the copy is of it: the base Fluid copied holds prod's hostname and machine-id.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { labHost, requireLab, type Lab } from '../support/lab.ts';
import { testCore } from '../support/core.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { LocalConnection } from '../../src/core/hosts/connection.ts';
import { guestExec } from '../../src/core/sandboxes/guest-agent.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';

const PROD = 'fluid-lab-prod';
let lab: Lab;
const core = testCore();
const client = connectInProcess(core, { door: 'test', id: 'prod-clone-it' });
let sb: Sandbox | null = null;

const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { maxBuffer: 64 * 1024 * 1024 }).toString();
const virsh = (args: string) => sh(`virsh -q -c ${lab.libvirtUri} ${args}`).trim();
const local = new LocalConnection('prod-clone-test');

/** Read files in prod through its guest agent (read only, as the lab allows). */
async function prodIdentity(): Promise<string> {
  const r = await guestExec(local, lab.libvirtUri, PROD, '/bin/sh', [
    '-c',
    'cat /etc/hostname /etc/machine-id; sha256sum /etc/ssh/ssh_host_*_key.pub',
  ]);
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout;
}

/** Everything about prod that Fluid must leave as it was. */
async function prodFacts() {
  const disk = lab.sources.find((s) => s.name === PROD)!.disk;
  const info = JSON.parse(sh(`qemu-img info -U --backing-chain --output=json ${disk}`)) as Array<{
    filename: string;
    snapshots?: unknown[];
    'format-specific'?: { data?: { bitmaps?: unknown[] } };
  }>;
  return {
    state: virsh(`domstate --reason ${PROD}`),
    id: virsh(`domid ${PROD}`),
    liveXml: virsh(`dumpxml ${PROD}`),
    inactiveXml: virsh(`dumpxml --inactive ${PROD}`),
    snapshots: virsh(`snapshot-list ${PROD} --name`),
    checkpoints: virsh(`checkpoint-list ${PROD} --name`),
    disks: virsh(`domblklist --details ${PROD}`),
    chain: info.map((i) => i.filename),
    imageSnapshots: info.flatMap((i) => i.snapshots ?? []),
    bitmaps: info.flatMap((i) => i['format-specific']?.data?.bitmaps ?? []),
    identity: await prodIdentity(),
  };
}

before(async () => {
  lab = await requireLab();
  await client.call('hosts.add', labHost(lab));
});

after(async () => {
  if (sb) await client.call('sandboxes.destroy', { sandbox: sb.id }).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.dispose();
});

test('a sandbox of the running production VM: prod keeps running, unpaused, with nothing of Fluid left on it', async () => {
  assert.match(virsh(`domstate ${PROD}`), /^running$/, 'the lab keeps fluid-lab-prod running');
  const before = await prodFacts();
  assert.equal(before.state, 'running (booted)', 'prod was booted and never paused before the test');

  // Sample prod's state while the sandbox is made (the backup runs in there).
  const states = new Set<string>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      states.add(virsh(`domstate ${PROD}`));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let task: Task;
  try {
    task = await client.call('sandboxes.create', { host: 'lab', source: PROD, name: 'it-prod' });
    for await (const t of client.stream('tasks.watch', { id: task.id })) task = t;
  } finally {
    sampling = false;
    await sampler;
  }
  assert.equal(task.status, 'succeeded', JSON.stringify(task.error));
  sb = task.result as Sandbox;
  assert.deepEqual([...states], ['running'], 'prod was running at every sample, never paused');

  const base = (await client.call('bases.list', { host: 'lab' })).find((b) => b.id === sb!.baseId)!;
  assert.equal(base.method, 'backup', 'a running source is copied through the backup API');
  assert.equal(base.sourceName, PROD);

  const after = await prodFacts();
  assert.equal(after.state, 'running (booted)', 'still running, and never paused and resumed');
  assert.equal(after.id, before.id, 'the same QEMU process: not restarted');
  assert.equal(after.liveXml, before.liveXml, 'the live definition is unchanged');
  assert.equal(after.inactiveXml, before.inactiveXml, 'the persistent definition is unchanged');
  assert.equal(after.snapshots, '', 'no libvirt snapshot');
  assert.equal(after.checkpoints, '', 'no checkpoint left by the backup');
  assert.equal(after.disks, before.disks, 'the same disk files: no overlay was put on prod');
  assert.deepEqual(after.chain, before.chain, 'the same backing chain');
  assert.deepEqual(after.imageSnapshots, [], 'no qcow2 snapshot in its image');
  assert.deepEqual(after.bitmaps, before.bitmaps, 'no dirty bitmap left in its image');
  assert.equal(after.identity, before.identity, 'its hostname, machine-id and host keys are its own still');

  // The copy is prod's: its base holds prod's hostname and machine-id; the sandbox has its own.
  const raw = join(core.paths.dataDir, 'base.raw');
  sh(`qemu-img convert -U -O raw ${base.disks[0]!.path} ${raw}`);
  let copied: string;
  try {
    copied = sh(
      `debugfs -R 'cat /etc/hostname' ${raw} 2>/dev/null; debugfs -R 'cat /etc/machine-id' ${raw} 2>/dev/null`,
    );
  } finally {
    sh(`rm -f ${raw}`);
  }
  assert.ok(before.identity.startsWith(copied), `the base is prod's disk: ${copied}`);
  const mine = await client.call('sandboxes.exec', {
    sandbox: sb.id,
    command: 'cat /etc/hostname /etc/machine-id',
  });
  assert.equal(mine.exitCode, 0, mine.stderr);
  assert.equal(mine.stdout.split('\n')[0], 'it-prod');
  assert.notEqual(mine.stdout.split('\n')[1], copied.split('\n')[1], 'the clone has its own machine-id');
});
