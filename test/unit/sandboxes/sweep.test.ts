/**
 * Expiry when only the CLI is used: every command checks (one query) whether a sandbox is past its
 * time to live and, only then, leaves a detached `fluid sandbox sweep` behind; the sweep claims each
 * row in the database so two sweepers never act on one. Here the sandboxes are rows on the local
 * host with no VM behind them (their teardown finds nothing to remove); the lab test
 * (test/integration/expiry.test.ts) does the same with real VMs.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fluid } from '../../support/cli.ts';
import { eventually } from '../../support/eventually.ts';
import { tempDir, testCore } from '../../support/core.ts';
import { createCore } from '../../../src/core/createCore.ts';
import { claimSweepSpawn, dueForSweep } from '../../../src/core/sandboxes/expiry.ts';
import type { SandboxRow } from '../../../src/core/sandboxes/store.ts';
import type { Core } from '../../../src/core/createCore.ts';

function row(core: Core, fields: Partial<SandboxRow>): SandboxRow {
  const id = randomUUID();
  const now = new Date().toISOString();
  const r: SandboxRow = {
    id,
    name: `sweep-${id.slice(0, 6)}`,
    host_id: core.hosts.list()[0]!.id,
    source_name: 'nothing',
    base_id: null,
    state: 'running',
    domain_name: `fluid-sweep-test-${id.slice(0, 8)}`,
    domain_uuid: randomUUID(),
    dir: `/nonexistent/fluid-sweep-test/${id}`,
    vcpus: 1,
    memory_mib: 256,
    slot: null,
    ip: null,
    mac: null,
    ttl_minutes: 1,
    expires_at: new Date(Date.now() - 60_000).toISOString(),
    created_at: now,
    updated_at: now,
    created_by_door: 'test',
    created_by_id: 'sweep',
    start_path: null,
    start_path_reason: null,
    timings: '{}',
    host_key_fp: null,
    egress_allow: '[]',
    error: null,
    task_id: null,
    owner_pid: null,
    owner_instance: null,
    ...fields,
  };
  core.sandboxes.store.insert(r);
  return r;
}

test('due: only live or failed rows past their expiry; the spawn lease admits one sweeper a minute', async () => {
  const core = testCore();
  try {
    const now = () => new Date().toISOString();
    assert.equal(dueForSweep(core.db, now()), false);
    const later = row(core, { expires_at: new Date(Date.now() + 3600_000).toISOString() });
    row(core, { state: 'destroyed' });
    assert.equal(dueForSweep(core.db, now()), false, 'not yet due, or already gone');
    const due = row(core, {});
    assert.equal(dueForSweep(core.db, now()), true);

    const t = 1_000_000_000_000;
    assert.equal(claimSweepSpawn(core.db, t), true);
    assert.equal(claimSweepSpawn(core.db, t + 1000), false, 'one sweeper per lease');
    assert.equal(claimSweepSpawn(core.db, t + 61_000), true);

    // The row claim is atomic: the second claimant of one row gets nothing.
    assert.equal(core.sandboxes.store.claim(due.id, ['running', 'stopped'], { state: 'destroying' }), true);
    assert.equal(core.sandboxes.store.claim(due.id, ['running', 'stopped'], { state: 'destroying' }), false);
    assert.equal(core.sandboxes.store.claim(later.id, ['stopped'], { state: 'destroying' }), false);
  } finally {
    await core.dispose();
  }
});

test('a plain CLI command answers at once and leaves a sweep behind that destroys what expired', async () => {
  const { dir, cleanup } = tempDir('fluid-sweep-cli-');
  after(cleanup);
  const seed = createCore({ dataDir: dir });
  const expired = row(seed, {});
  const failed = row(seed, { state: 'failed' });
  const keep = row(seed, { expires_at: new Date(Date.now() + 3600_000).toISOString() });
  await seed.close();

  const r = await fluid(['host', 'list', '--json'], { dataDir: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Array.isArray(r.json()), 'the command did its own work');

  const look = createCore({ dataDir: dir });
  try {
    const state = (id: string) => look.sandboxes.store.maybe(id)?.state;
    await eventually(
      'the background sweep to destroy the expired sandbox and close the failed row',
      () => state(expired.id) === 'destroyed' && state(failed.id) === 'destroyed',
    );
    assert.equal(state(expired.id), 'destroyed', 'the expired sandbox was destroyed in the background');
    assert.equal(state(failed.id), 'destroyed', 'the expired failed row was closed');
    // A sandbox with time left is not destroyed (the sweep's reconcile of the host does mark this
    // row failed: no VM stands behind it here).
    assert.notEqual(state(keep.id), 'destroyed');
    assert.equal(
      look.audit.list({ limit: 20, target: keep.id, action: 'sandbox.destroy' }).entries.length,
      0,
    );
    const audit = look.audit.list({ limit: 20, target: expired.id, action: 'sandbox.destroy' }).entries;
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0]!.actor, { door: 'system', id: 'expiry' });
    assert.match((audit[0]!.data as { reason: string }).reason, /^expired at /);
  } finally {
    await look.close();
  }
});
