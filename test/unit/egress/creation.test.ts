/**
 * An agent cannot widen its own reach at creation: destinations passed by an agent's door become
 * high-risk approval requests instead of allowlist entries; a person's destinations (and the
 * settings') are allowed at once; bad input changes nothing. Runs against a real core (SQLite,
 * approvals, audit); the source VM does not exist, so creation itself fails fast afterwards, and the
 * requests it raised are withdrawn.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testCore } from '../../support/core.ts';
import type { Actor } from '../../../src/shared/rpc.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const core = testCore();
after(() => core.dispose());

const ALLOW = ['169.254.169.254:80', '127.0.0.1:22', '192.0.2.2:22', 'Deb.Debian.org'];

function create(actor: Actor, allow = ALLOW) {
  const task = core.sandboxes.create(
    { host: 'local', source: 'no-such-vm-for-egress-test', allow, start: 'auto', refreshBase: false },
    actor,
  );
  return { task, row: core.sandboxes.store.row(task.target!) };
}

const egressApprovals = (sandboxId: string, status: 'pending' | 'cancelled' = 'pending') =>
  core.approvals.list({ status, sandboxId, limit: 100 }).filter((a) => a.kind === 'egress');

describe('destinations passed at creation', () => {
  for (const actor of [
    { door: 'agent', id: 'ses_1' },
    { door: 'mcp', id: 'claude-code' },
    { door: 'http', id: 'token:ci' },
    { door: 'cli', id: 'alice', interactive: false },
  ] as Actor[]) {
    test(`from ${actor.door}${actor.door === 'cli' ? ' without a terminal' : ''}: approval requests, nothing allowed`, async () => {
      const { task, row } = create(actor);
      assert.deepEqual(JSON.parse(row.egress_allow), core.settings.get().sandboxes.egressAllow);
      const pending = egressApprovals(row.id);
      assert.deepEqual(pending.map((a) => (a.subject as { destination: string }).destination).sort(), [
        '127.0.0.1:22',
        '169.254.169.254:80',
        '192.0.2.2:22',
        'deb.debian.org',
      ]);
      for (const a of pending) {
        assert.equal(a.risk, 'high');
        assert.deepEqual(a.requestedBy, { door: actor.door, id: actor.id });
        const dest = (a.subject as { destination: string }).destination;
        if (dest === 'deb.debian.org') assert.doesNotMatch(a.detail, /WARNING/);
        else assert.match(a.detail, /WARNING: .*(metadata|loopback|IP address)/);
      }
      // the agent cannot approve its own requests through the core
      await assert.rejects(
        Promise.resolve().then(() => core.approvals.decide(pending[0]!.id, 'approve', undefined, actor)),
        (e: unknown) => e instanceof FluidError && e.code === 'DENIED',
      );
      // creation fails (no such VM): its open requests are withdrawn
      await core.tasks.wait(task.id).catch(() => {});
      assert.equal(core.sandboxes.store.row(row.id).state, 'failed');
      assert.equal(egressApprovals(row.id).length, 0);
      assert.equal(egressApprovals(row.id, 'cancelled').length, 4);
    });
  }

  for (const actor of [
    { door: 'test', id: 'person' },
    { door: 'app', id: 'alice' },
    { door: 'cli', id: 'alice', interactive: true },
  ] as Actor[]) {
    test(`from a person (${actor.door}): allowed at once, no requests`, async () => {
      const { task, row } = create(actor, ['deb.debian.org', '10.0.0.5:5432']);
      assert.deepEqual(JSON.parse(row.egress_allow), [
        ...core.settings.get().sandboxes.egressAllow,
        'deb.debian.org',
        '10.0.0.5:5432',
      ]);
      assert.equal(egressApprovals(row.id).length, 0);
      await core.tasks.wait(task.id).catch(() => {});
      const dto = core.sandboxes.get(row.id);
      assert.deepEqual(
        dto.egressWarnings?.map((w) => w.destination),
        ['10.0.0.5:5432'],
        'the exact IP entry carries its warning in the contract',
      );
      assert.match(dto.egressWarnings![0]!.warning, /private network address/);
    });
  }

  test('a destination that is not one refuses the whole creation and changes nothing', () => {
    const before = core.sandboxes.store.list({ includeDestroyed: true }).length;
    const pendingBefore = core.approvals.list({ status: 'pending', limit: 500 }).length;
    assert.throws(
      () => create({ door: 'agent', id: 'ses_2' }, ['deb.debian.org', 'http://evil/']),
      (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION' && /http:\/\/evil\//.test(e.message),
    );
    assert.equal(core.sandboxes.store.list({ includeDestroyed: true }).length, before);
    assert.equal(core.approvals.list({ status: 'pending', limit: 500 }).length, pendingBefore);
  });

  test('a person adding a destination later: canonical entries, bad ones refused, revoked in any spelling', async () => {
    const { task, row } = create({ door: 'test', id: 'person' }, []);
    await core.tasks.wait(task.id).catch(() => {});
    const person: Actor = { door: 'test', id: 'person' };
    const s1 = await core.sandboxes.setEgress(row.id, 'Deb.Debian.org.', true, person);
    assert.deepEqual(s1.egressAllow, ['deb.debian.org']);
    await assert.rejects(
      core.sandboxes.setEgress(row.id, '127.1:22', true, person),
      (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION',
    );
    const s2 = await core.sandboxes.setEgress(row.id, '[::ffff:127.0.0.1]:22', true, person);
    assert.deepEqual(s2.egressAllow, ['deb.debian.org', '127.0.0.1:22']);
    assert.match(s2.egressWarnings![0]!.warning, /^127\.0\.0\.1:22 is a loopback address/);
    const s3 = await core.sandboxes.setEgress(row.id, 'DEB.debian.org', false, person);
    assert.deepEqual(s3.egressAllow, ['127.0.0.1:22']);
  });
});
