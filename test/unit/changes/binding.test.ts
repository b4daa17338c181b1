/**
 * What an approval of a production apply means, without a target machine: it names exactly the
 * sealed bundle; only a person's door gives it, with presence; it is refused while the verification
 * is stale and voided by an edit; an apply refuses an unapproved, used or expired approval before
 * touching anything, and a failure before the run leaves the approval unused; sealed bundles and
 * used approvals cannot be rewritten through SQL the way Fluid's code could; the target lock waits
 * for a live owner and is reclaimed from a dead one.
 *
 * The change is sealed here the way submission seals it (a passed verification row, a target row,
 * the bundle's canonical JSON); the lab test (test/integration/changes-lab.test.ts) makes real ones.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCore } from '../../support/core.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import { openSealed, seal, secretDigest, digestKey, verifyBundle } from '../../../src/core/changes/bundle.ts';
import { detectAnsible } from '../../../src/core/playbooks/ansible.ts';
import { credentialEntry, parsePrivateKey } from '../../../src/core/targets/service.ts';
import { LIVE_INSTANCES } from '../../../src/core/targets/store.ts';
import { inventorySlice } from '../../../src/core/targets/ansible.ts';
import { secretEntry } from '../../../src/core/playbooks/secrets.ts';
import { canonicalJson, sha256Hex } from '../../../src/core/util/canonical.ts';
import { BUNDLE_FORMAT, type ChangeBundle } from '../../../src/shared/contract/changes.ts';
import { VERIFY_STEPS, STEP_TITLE } from '../../../src/shared/contract/playbooks.ts';
import type { Task } from '../../../src/shared/contract/tasks.ts';
import type { Actor } from '../../../src/shared/rpc.ts';
import type { FluidError } from '../../../src/shared/errors.ts';

class FakeClock {
  t = Date.parse('2026-03-01T10:00:00Z');
  now = () => new Date(this.t);
}

const keyDir = mkdtempSync(join(tmpdir(), 'fluid-binding-'));
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', join(keyDir, 'id')]);
const PEM = readFileSync(join(keyDir, 'id'), 'utf8');
after(() => rmSync(keyDir, { recursive: true, force: true }));

const YAML = `- name: Apply site
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Message of the day
      ansible.builtin.copy:
        content: "hello {{ motd_secret }}\\n"
        dest: /etc/motd
        mode: '0644'
      no_log: true
`;

const person: Actor = { door: 'web', id: 'alice' };
const agents: Actor[] = [
  { door: 'agent', id: 'session-1' },
  { door: 'mcp', id: 'claude-code' },
  { door: 'http', id: 'token' },
  { door: 'cli', id: 'me' }, // a CLI process without a terminal: a script, or an agent's shell
];

function setup() {
  const clock = new FakeClock();
  const core = testCore({ clock, egress: null });
  const admin: Actor = { door: 'test', id: 'setup' };
  const p = core.playbooks.create({ name: 'site', yaml: YAML }, admin);
  const rev = core.playbooks.store.head(p.id)!;
  core.secrets.set(secretEntry(p.id, 'motd_secret'), 'the-sandbox-value');
  const now = clock.now().toISOString();
  const verificationId = randomUUID();
  core.playbooks.store.insertVerification({
    id: verificationId,
    playbook_id: p.id,
    revision: rev.number,
    sha256: rev.sha256,
    status: 'passed',
    task_id: null,
    requested_by_door: 'agent',
    requested_by_id: 'session-1',
    started_at: now,
    finished_at: now,
    body: JSON.stringify({
      replay: null,
      tools: { ansibleCore: null, ansibleLint: null },
      steps: VERIFY_STEPS.map((id) => ({
        id,
        title: STEP_TITLE[id],
        status: 'passed',
        startedAt: now,
        durationMs: 1,
        summary: '',
        log: '',
        warnings: [],
      })),
      timings: {},
    }),
  });
  const targetId = randomUUID();
  const key = parsePrivateKey(PEM);
  core.targets.store.insert({
    id: targetId,
    name: 'prod-web',
    // nothing listens here: an apply that passes every check fails to connect, touching nothing
    address: '127.0.0.1',
    port: 1,
    user: 'deploy',
    become: 'sudo',
    credential: JSON.stringify({
      type: 'key',
      secret: credentialEntry(targetId),
      publicKey: key.publicKey,
      fingerprint: key.fingerprint,
    }),
    jump_host_id: null,
    host_key_type: 'ssh-ed25519',
    host_key_fp: 'SHA256:pinnedpinnedpinned',
    source_host_id: null,
    source_vm: null,
    created_at: now,
    actor: admin,
  });
  core.secrets.set(credentialEntry(targetId), PEM);
  return { core, clock, playbookId: p.id, rev, verificationId, targetId, key };
}

async function sealedChange(s: ReturnType<typeof setup>) {
  const { core, rev } = s;
  const tools = await detectAnsible();
  const bundle: ChangeBundle = {
    format: BUNDLE_FORMAT,
    target: {
      id: s.targetId,
      name: 'prod-web',
      address: '127.0.0.1',
      port: 1,
      user: 'deploy',
      become: 'sudo',
      hostKeyFingerprint: 'SHA256:pinnedpinnedpinned',
      credentialFingerprint: s.key.fingerprint,
      jump: null,
    },
    playbook: {
      id: s.playbookId,
      name: 'site',
      revision: rev.number,
      sha256: rev.sha256,
      yamlSha256: rev.yaml_sha256,
      yaml: rev.yaml,
      files: [],
    },
    vars: {
      secrets: [
        {
          name: 'motd_secret',
          ref: secretEntry(s.playbookId, 'motd_secret'),
          digest: secretDigest(digestKey(core.secrets), 'motd_secret', 'the-sandbox-value'),
        },
      ],
    },
    inventory: inventorySlice({ name: 'prod-web', user: 'deploy', become: 'sudo' }),
    tools: { ansibleCore: tools.coreVersion ?? 'none', python: tools.python, collections: {} },
    diff: null,
    verification: {
      id: s.verificationId,
      sha256: rev.sha256,
      status: 'passed',
      finishedAt: s.clock.now().toISOString(),
      steps: [],
    },
    baseline: {
      sha256: '0'.repeat(64),
      scope: { packages: [], files: ['/etc/motd'], units: [], users: [], groups: [], sysctl: [] },
      state: { packages: {}, files: { '/etc/motd': null }, units: {}, users: {}, groups: {}, sysctl: {} },
      unscoped: [],
    },
    preview: { sha256: '1'.repeat(64), changed: 1, tasks: [] },
  };
  const sealed = seal(bundle);
  const id = randomUUID();
  core.changes.store.insert({
    id,
    title: 'motd',
    targetId: s.targetId,
    targetName: 'prod-web',
    playbookId: s.playbookId,
    revision: rev.number,
    revisionSha256: rev.sha256,
    sandboxId: null,
    actor: { door: 'agent', id: 'session-1' },
    sessionId: 'session-1',
    now: s.clock.now().toISOString(),
  });
  core.changes.store.seal(id, {
    sha256: sealed.sha256,
    bundle: sealed.json,
    preview: {
      takenAt: s.clock.now().toISOString(),
      durationMs: 1,
      sha256: '1'.repeat(64),
      changed: 1,
      tasks: [],
      log: '',
      warnings: [],
    },
    baselineAt: s.clock.now().toISOString(),
    warnings: [],
  });
  const approval = core.approvals.request({
    kind: 'apply',
    title: 'apply "motd" to prod-web',
    detail: 'one task',
    risk: 'high',
    subject: JSON.parse(sealed.json) as unknown,
    requestedBy: { door: 'agent', id: 'session-1' },
  });
  core.changes.store.setApproval(id, approval.id);
  return { id, approval, sealed };
}

async function approveAsPerson(core: ReturnType<typeof setup>['core'], approvalId: string) {
  const web = connectInProcess(core, person);
  return web.call('approvals.decide', { id: approvalId, decision: 'approve', presence: { kind: 'confirm' } });
}

async function applyAndWait(
  core: ReturnType<typeof setup>['core'],
  change: string,
): Promise<{ task: Task; applyId: string }> {
  const web = connectInProcess(core, person);
  const { apply, task } = await web.call('changes.apply', { change });
  let last = task;
  for await (const t of web.stream('tasks.watch', { id: task.id })) last = t;
  return { task: last, applyId: apply.id };
}

const refusedWith = (t: Task, reason: string) => {
  assert.equal(t.status, 'failed', JSON.stringify(t));
  assert.equal(t.error?.code, 'CONFLICT', JSON.stringify(t.error));
  assert.equal((t.error?.data as { reason: string }).reason, reason, t.error?.message);
};

test('the approval names the sealed bundle: its subject hash is the bundle’s sha256', async () => {
  const s = setup();
  try {
    const { id, approval, sealed } = await sealedChange(s);
    assert.equal(approval.kind, 'apply');
    assert.equal(approval.subjectHash, sealed.sha256);
    assert.equal(sha256Hex(sealed.json), sealed.sha256);
    const c = s.core.changes.get(id);
    assert.equal(c.sha256, sealed.sha256);
    assert.equal(c.status, 'awaiting-approval');
    const b = s.core.changes.bundle(id);
    assert.equal(b.json, canonicalJson(b.bundle), 'stored in canonical form');
    // the same change by its approval id (the approval modal links there)
    assert.equal(s.core.changes.get(approval.id).id, id);
  } finally {
    await s.core.dispose();
  }
});

test("agents' doors never approve or apply; a person approves only with presence", async () => {
  const s = setup();
  try {
    const { id, approval } = await sealedChange(s);
    for (const actor of agents) {
      const c = connectInProcess(s.core, actor);
      await assert.rejects(c.call('approvals.decide', { id: approval.id, decision: 'approve' }), {
        code: 'DENIED',
      });
      await assert.rejects(
        c.call('approvals.decide', { id: approval.id, decision: 'approve', presence: { kind: 'confirm' } }),
        { code: 'DENIED' },
      );
      await assert.rejects(c.call('changes.apply', { change: id }), { code: 'DENIED' }, actor.door);
    }
    const web = connectInProcess(s.core, person);
    await assert.rejects(
      web.call('approvals.decide', { id: approval.id, decision: 'approve' }),
      (e: FluidError) => {
        assert.equal(e.code, 'DENIED');
        assert.deepEqual((e.data as { presence: { methods: string[] } }).presence.methods, ['confirm']);
        return true;
      },
    );
    assert.equal(s.core.approvals.get(approval.id).status, 'pending');
    const a = await approveAsPerson(s.core, approval.id);
    assert.equal(a.status, 'approved');
    assert.equal(a.decidedVia, 'confirm');
    assert.equal(s.core.changes.get(id).status, 'approved');
    const entry = s.core.audit.list({ limit: 5, action: 'approval.decide' }).entries[0]!;
    assert.equal((entry.data as { subjectHash: string }).subjectHash, s.core.changes.get(id).sha256);
  } finally {
    await s.core.dispose();
  }
});

test('an edit before approval: the request cannot be approved and is withdrawn', async () => {
  const s = setup();
  try {
    const { id, approval } = await sealedChange(s);
    s.core.playbooks.save(s.playbookId, YAML.replace('hello', 'hi'), 1, 'edited', {
      door: 'web',
      id: 'alice',
    });
    await assert.rejects(approveAsPerson(s.core, approval.id), (e: FluidError) => {
      assert.equal(e.code, 'CONFLICT');
      assert.match(e.message, /edited after this change was submitted|already cancelled/);
      return true;
    });
    const c = s.core.changes.get(id);
    assert.equal(c.status, 'void');
    assert.equal(s.core.approvals.get(approval.id).status, 'cancelled');
  } finally {
    await s.core.dispose();
  }
});

test('an edit after approval voids it: the apply is refused before anything runs', async () => {
  const s = setup();
  try {
    const { id, approval } = await sealedChange(s);
    await approveAsPerson(s.core, approval.id);
    s.core.playbooks.save(s.playbookId, YAML.replace('hello', 'hi'), 1, 'edited', {
      door: 'web',
      id: 'alice',
    });
    assert.equal(s.core.changes.get(id).status, 'void');
    const { task, applyId } = await applyAndWait(s.core, id);
    refusedWith(task, 'VERIFICATION');
    assert.match(task.error!.message, /edited after approval/);
    assert.equal(s.core.changes.applyGet(applyId).status, 'refused');
    assert.equal(s.core.changes.store.approvalUse(approval.id), null, 'a refused apply uses no approval');
  } finally {
    await s.core.dispose();
  }
});

test('unapproved, used and expired approvals are refused; a failure before the run leaves the approval unused', async () => {
  const s = setup();
  try {
    const { id, approval } = await sealedChange(s);
    refusedWith((await applyAndWait(s.core, id)).task, 'UNAPPROVED');
    await approveAsPerson(s.core, approval.id);
    // Every check passes; connecting to the target fails: nothing ran, the approval stays unused.
    const first = await applyAndWait(s.core, id);
    assert.equal(first.task.status, 'failed');
    assert.equal(first.task.error?.code, 'HOST_UNREACHABLE', first.task.error?.message);
    assert.equal(s.core.changes.store.approvalUse(approval.id), null);
    assert.equal(s.core.targets.store.lock(s.targetId), null, 'the lock was released');
    // A use recorded by another apply: refused as used.
    assert.ok(s.core.changes.store.useApproval(approval.id, first.applyId, s.clock.now().toISOString()));
    assert.ok(
      !s.core.changes.store.useApproval(approval.id, 'another', s.clock.now().toISOString()),
      'once only',
    );
    const used = await applyAndWait(s.core, id);
    refusedWith(used.task, 'USED');
    const audit = s.core.audit.list({ limit: 20, action: 'change.apply.refuse' }).entries;
    assert.ok(audit.some((e) => (e.data as { reason: string }).reason === 'USED'));
  } finally {
    await s.core.dispose();
  }
});

test('an approval expires approvals.applyTtlMinutes after the decision; lowering it tightens, raising it needs presence', async () => {
  const s = setup();
  try {
    const { id, approval } = await sealedChange(s);
    await approveAsPerson(s.core, approval.id);
    const web = connectInProcess(s.core, person);
    await web.call('settings.update', { approvals: { applyTtlMinutes: 5 } });
    s.clock.t += 6 * 60_000;
    assert.equal(s.core.changes.get(id).status, 'void');
    refusedWith((await applyAndWait(s.core, id)).task, 'EXPIRED');
    await assert.rejects(
      web.call('settings.update', { approvals: { applyTtlMinutes: 600 } }),
      (e: FluidError) => {
        assert.equal(e.code, 'DENIED');
        assert.match(e.message, /approvals\.applyTtlMinutes/);
        return true;
      },
    );
    await assert.rejects(
      connectInProcess(s.core, { door: 'mcp', id: 'c' }).call('settings.update', {
        approvals: { applyTtlMinutes: 600 },
      }),
      { code: 'DENIED' },
    );
  } finally {
    await s.core.dispose();
  }
});

test('a re-pinned target key refuses the approval and the apply', async () => {
  const s = setup();
  try {
    const { id, approval } = await sealedChange(s);
    s.core.targets.store.setHostKey(s.targetId, 'ssh-ed25519', 'SHA256:someoneelse');
    await assert.rejects(approveAsPerson(s.core, approval.id), (e: FluidError) => {
      assert.equal((e.data as { reason: string }).reason, 'TARGET');
      return true;
    });
    s.core.targets.store.setHostKey(s.targetId, 'ssh-ed25519', 'SHA256:pinnedpinnedpinned');
    await approveAsPerson(s.core, approval.id);
    s.core.targets.store.setHostKey(s.targetId, 'ssh-ed25519', 'SHA256:someoneelse');
    refusedWith((await applyAndWait(s.core, id)).task, 'TARGET');
  } finally {
    await s.core.dispose();
  }
});

test('sealed bundles and used approvals cannot be rewritten; a bundle whose bytes or secrets moved is refused', async () => {
  const s = setup();
  try {
    const { id, sealed } = await sealedChange(s);
    const db = s.core.db;
    assert.throws(() => db.prepare('UPDATE changes SET bundle = ? WHERE id = ?').run('{}', id), /immutable/);
    assert.throws(
      () => db.prepare('UPDATE changes SET sha256 = ? WHERE id = ?').run('0'.repeat(64), id),
      /immutable/,
    );
    assert.throws(() => db.prepare('DELETE FROM changes WHERE id = ?').run(id), /immutable/);
    s.core.changes.store.useApproval('a1', 'p1', 'now');
    assert.throws(() => db.prepare("UPDATE apply_approvals SET apply_id = 'x'").run(), /stays used/);
    assert.throws(() => db.prepare('DELETE FROM apply_approvals').run(), /stays used/);
    // a stored bundle edited behind Fluid's back no longer hashes to its identity
    const edited = sealed.json.replace('/etc/motd', '/etc/shadow');
    assert.throws(
      () => openSealed(edited, sealed.sha256),
      (e: FluidError) => (e.data as { reason: string }).reason === 'INTEGRITY',
    );
    const b = openSealed(sealed.json, sealed.sha256);
    assert.doesNotThrow(() => verifyBundle(b, s.core.playbooks.store, s.core.secrets));
    assert.throws(
      () =>
        verifyBundle(
          { ...b, playbook: { ...b.playbook, yaml: b.playbook.yaml + '#\n' } },
          s.core.playbooks.store,
          s.core.secrets,
        ),
      /does not hash/,
    );
    s.core.secrets.set(secretEntry(s.playbookId, 'motd_secret'), 'another value');
    assert.throws(
      () => verifyBundle(b, s.core.playbooks.store, s.core.secrets),
      /value of motd_secret changed/,
    );
    // the bundle carries no secret value, only a keyed digest
    assert.ok(!sealed.json.includes('the-sandbox-value'));
  } finally {
    await s.core.dispose();
  }
});

test('the target lock: a live owner makes the next apply wait; a dead owner’s lock is reclaimed', async () => {
  const s = setup();
  try {
    const st = s.core.targets.store;
    const me = { pid: process.pid, instance: s.core.tasks.instance };
    assert.deepEqual(st.tryLock(s.targetId, 'apply-1', me, 'now'), { holder: null, reclaimed: null });
    // another apply of this (live) process waits
    assert.equal(st.tryLock(s.targetId, 'apply-2', me, 'now').holder?.apply_id, 'apply-1');
    // another process that is alive holds it: wait
    st.unlock(s.targetId, 'apply-1');
    st.tryLock(s.targetId, 'apply-3', { pid: 424242, instance: 'other' }, 'now', () => true);
    assert.equal(st.tryLock(s.targetId, 'apply-4', me, 'now', () => true).holder?.apply_id, 'apply-3');
    // that process died: the lock is reclaimed, and says from whom
    const r = st.tryLock(s.targetId, 'apply-4', me, 'now', () => false);
    assert.equal(r.holder, null);
    assert.equal(r.reclaimed?.apply_id, 'apply-3');
    assert.equal(st.lock(s.targetId)?.apply_id, 'apply-4');
    // a core of this process that was closed holds nothing any more
    st.unlock(s.targetId, 'apply-4');
    st.tryLock(s.targetId, 'apply-5', { pid: process.pid, instance: 'closed-core' }, 'now');
    assert.ok(!LIVE_INSTANCES.has('closed-core'));
    assert.equal(st.tryLock(s.targetId, 'apply-6', me, 'now').reclaimed?.apply_id, 'apply-5');
  } finally {
    await s.core.dispose();
  }
});
