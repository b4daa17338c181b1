/**
 * What Fluid leaves on a host (src/core/hosts/cleanup.ts), on the local machine with a storage dir in
 * a temp directory: doctor lists this installation's files no host record owns and other
 * installations' directories (naming their audit checkpoint copies) without touching anything; the
 * removal plan of a host takes this installation's directory and address claims and nothing else; a
 * record that may share the directory with another limits the plan to its own files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { cleanHost, hostFileChecks, removalPlan } from '../../../src/core/hosts/cleanup.ts';
import { tempDir, testCore } from '../../support/core.ts';

function put(path: string, bytes: number) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(bytes, 1));
}

test("doctor lists unowned files and other installations; removal takes only this installation's", async (t) => {
  const core = testCore();
  const storage = tempDir('fluid-storage-');
  t.after(async () => {
    await core.dispose();
    storage.cleanup();
  });
  const sd = storage.dir;
  await core.hosts.update({ host: 'local', storageDir: sd }, { door: 'test', id: 't' });
  const inst = core.installation;
  const other = randomUUID();
  const owned = randomUUID();
  const orphanBase = randomUUID();
  const deadSandbox = randomUUID();
  core.db
    .prepare(
      `INSERT INTO bases (id, host_id, source_name, source_uuid, method, state, dir, source_xml, created_at)
       VALUES (?, 'local', 'web', 'u', 'copy', 'ready', ?, '<domain/>', ?)`,
    )
    .run(owned, `${sd}/${inst}/bases/${owned}`, new Date().toISOString());
  put(`${sd}/${inst}/bases/${owned}/vda.qcow2`, 3000);
  put(`${sd}/${inst}/templates/${owned}-1x512/save.img`, 2000);
  put(`${sd}/${inst}/bases/${orphanBase}/vda.qcow2`, 5000);
  put(`${sd}/${inst}/templates/${orphanBase}-1x512/save.img`, 700);
  put(`${sd}/${inst}/sandboxes/${deadSandbox}/vda.qcow2`, 900);
  put(`${sd}/${inst}/audit-checkpoints.jsonl`, 100);
  put(`${sd}/${other}/bases/${randomUUID()}/vda.qcow2`, 4000);
  put(`${sd}/${other}/audit-checkpoints.jsonl`, 100);
  put(`${sd}/slots/3/owner`, 0);
  writeFileSync(`${sd}/slots/3/owner`, `${inst}:${deadSandbox}`);
  put(`${sd}/slots/4/owner`, 0);
  writeFileSync(`${sd}/slots/4/owner`, `${other}:${randomUUID()}`);

  const checks = await hostFileChecks(core);
  const local = checks.find((c) => c.id === 'host-files:local');
  assert.ok(local, JSON.stringify(checks));
  assert.equal(local.status, 'warn');
  assert.match(local.detail, new RegExp(`bases/${orphanBase} \\(base`));
  assert.match(local.detail, new RegExp(`templates/${orphanBase}-1x512 \\(template`));
  assert.match(local.detail, new RegExp(`sandboxes/${deadSandbox} \\(sandboxe?`));
  assert.doesNotMatch(local.detail, new RegExp(`bases/${owned}`), 'an owned base is not listed');
  assert.match(local.detail, new RegExp(`${other}: .*audit checkpoint copy`));
  assert.match(local.advice!, /rm -rf/);
  // Read-only: everything is still there.
  assert.ok(existsSync(`${sd}/${inst}/bases/${orphanBase}`));

  const plan = await removalPlan(core, 'local');
  assert.equal(plan.reachable, true);
  assert.deepEqual(plan.sharedWith, []);
  assert.deepEqual(plan.files.map((f) => f.path).sort(), [`${sd}/${inst}`, `${sd}/slots/3`].sort());
  assert.ok(plan.totalBytes >= 3000 + 2000 + 5000 + 700 + 900 + 100, String(plan.totalBytes));

  const done = await cleanHost(core, plan, await core.hosts.connection('local'));
  assert.deepEqual(done.removed.sort(), plan.files.map((f) => f.path).sort());
  assert.ok(!existsSync(`${sd}/${inst}`));
  assert.ok(!existsSync(`${sd}/slots/3`));
  // Another installation's files and claims are untouched.
  assert.ok(existsSync(`${sd}/${other}/audit-checkpoints.jsonl`));
  assert.ok(existsSync(`${sd}/slots/4/owner`));
  assert.deepEqual(readdirSync(sd).sort(), [other, 'slots'].sort());
});

test('a record that may share the storage dir with another removes only its own files', async (t) => {
  const core = testCore();
  const storage = tempDir('fluid-storage-');
  t.after(async () => {
    await core.dispose();
    storage.cleanup();
  });
  const sd = storage.dir;
  const inst = core.installation;
  await core.hosts.update({ host: 'local', storageDir: sd }, { door: 'test', id: 't' });
  // Another record with the same storage dir whose machine cannot be told (never checked, unreachable).
  core.db
    .prepare(
      `INSERT INTO hosts (id, name, kind, address, port, user, auth, libvirt_uri, storage_dir, created_at)
       VALUES ('h2', 'maybe-same', 'ssh', '192.0.2.1', 22, 'root', '{"type":"agent"}', 'qemu:///system', ?, ?)`,
    )
    .run(sd, new Date().toISOString());
  const mine = randomUUID();
  const theirs = randomUUID();
  for (const [id, hostId] of [
    [mine, 'local'],
    [theirs, 'h2'],
  ] as const)
    core.db
      .prepare(
        `INSERT INTO bases (id, host_id, source_name, source_uuid, method, state, dir, source_xml, created_at)
         VALUES (?, ?, 'web', 'u', 'copy', 'ready', ?, '<domain/>', ?)`,
      )
      .run(id, hostId, `${sd}/${inst}/bases/${id}`, new Date().toISOString());
  put(`${sd}/${inst}/bases/${mine}/vda.qcow2`, 1000);
  put(`${sd}/${inst}/templates/${mine}-1x512/save.img`, 1000);
  put(`${sd}/${inst}/bases/${theirs}/vda.qcow2`, 1000);
  put(`${sd}/${inst}/audit-checkpoints.jsonl`, 10);

  const plan = await removalPlan(core, 'local');
  assert.deepEqual(plan.sharedWith, ['maybe-same']);
  assert.deepEqual(
    plan.files.map((f) => [f.path, f.what]).sort(),
    [
      [`${sd}/${inst}/bases/${mine}`, 'base copy'],
      [`${sd}/${inst}/templates/${mine}-1x512`, 'warm template'],
    ].sort(),
  );
  await cleanHost(core, plan, await core.hosts.connection('local'));
  assert.ok(!existsSync(`${sd}/${inst}/bases/${mine}`));
  assert.ok(existsSync(`${sd}/${inst}/bases/${theirs}/vda.qcow2`));
  assert.ok(existsSync(`${sd}/${inst}/audit-checkpoints.jsonl`));
});
