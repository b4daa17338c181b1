/**
 * API tokens: a person creates and revokes them, an operator token is a grant that needs presence,
 * secrets are kept as sha256, and use is audited the first time and then periodically — not on every
 * request (a fake clock moves time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { testCore } from '../../support/core.ts';
import { AUDIT_USE_EVERY_MS } from '../../../src/core/tokens/service.ts';
import { ownSandboxOnly } from '../../../src/core/tokens/scopes.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const person = { door: 'test' as const, id: 'person' };

test('only a person creates and revokes tokens; an operator token needs presence', async () => {
  const core = testCore({ egress: null });
  try {
    const script = connectInProcess(core, { door: 'cli', id: 'me', interactive: false });
    const terminal = connectInProcess(core, { door: 'cli', id: 'me', interactive: true });
    const mcp = connectInProcess(core, { door: 'mcp', id: 'claude' });
    for (const c of [script, mcp])
      await assert.rejects(
        c.call('tokens.create', { name: 'x', scope: 'agent' }),
        /Only a person creates API tokens/,
      );
    // a script with --yes cannot mint one either, even while unattended decisions are allowed
    core.settings.update({ approvals: { allowUnattendedCli: true } }, person);
    await assert.rejects(
      script.call('tokens.create', { name: 'x', scope: 'operator', presence: { kind: 'unattended' } }),
      /Only a person creates API tokens/,
    );
    const agent = await terminal.call('tokens.create', { name: 'ci-agent', scope: 'agent' });
    assert.match(agent.secret, /^fluid_a_[A-Za-z0-9_-]{43}$/);
    await assert.rejects(terminal.call('tokens.create', { name: 'ops', scope: 'operator' }), (e: unknown) => {
      const p = (e as FluidError).data as { presence?: { methods: string[] } };
      return e instanceof FluidError && e.code === 'DENIED' && p.presence!.methods.includes('terminal');
    });
    const ops = await terminal.call('tokens.create', {
      name: 'ops',
      scope: 'operator',
      presence: { kind: 'terminal' },
    });
    assert.equal(ops.token.scope, 'operator');
    await assert.rejects(terminal.call('tokens.create', { name: 'ops', scope: 'agent' }), /exists/);
    const row = core.db.prepare('SELECT token_sha256 FROM api_tokens WHERE name = ?').get('ops') as {
      token_sha256: string;
    };
    assert.equal(row.token_sha256, createHash('sha256').update(ops.secret).digest('hex'));
    await assert.rejects(script.call('tokens.revoke', { name: 'ops' }), /Only a person revokes/);
    assert.ok(core.tokens.authenticate(ops.secret));
    await terminal.call('tokens.revoke', { name: 'ops' });
    assert.equal(core.tokens.authenticate(ops.secret), null);
    const actions = core.audit.list({ limit: 50 }).entries.map((e) => e.action);
    assert.deepEqual(actions.filter((a) => a.startsWith('token.')).sort(), [
      'token.create',
      'token.create',
      'token.revoke',
      'token.use',
    ]);
    const listed = await script.call('tokens.list', { includeRevoked: true });
    assert.deepEqual(
      listed.map((t) => [t.name, !!t.revokedAt]),
      [
        ['ops', true],
        ['ci-agent', false],
      ],
    );
  } finally {
    await core.dispose();
  }
});

test('use is audited on the first request and then once per period, not per request', async () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const core = testCore({ egress: null, clock: { now: () => new Date(now) } });
  try {
    const { secret } = core.tokens.create('bot', 'agent', person, null);
    const uses = () => core.audit.list({ limit: 100, action: 'token.use' }).entries;
    for (let i = 0; i < 20; i++) assert.ok(core.tokens.authenticate(secret, '127.0.0.1'));
    assert.equal(uses().length, 1);
    assert.deepEqual(uses()[0]!.data, { first: true, from: '127.0.0.1', name: 'bot', scope: 'agent' });
    assert.deepEqual(uses()[0]!.actor, { door: 'http', id: 'token:bot' });
    now += AUDIT_USE_EVERY_MS - 1000;
    core.tokens.authenticate(secret);
    assert.equal(uses().length, 1, 'not yet');
    now += 2000;
    for (let i = 0; i < 5; i++) core.tokens.authenticate(secret);
    assert.equal(uses().length, 2);
    assert.equal((uses()[0]!.data as { first: boolean }).first, false);
    assert.equal(core.tokens.list()[0]!.lastUsedAt, new Date(now).toISOString());
    assert.equal(core.tokens.authenticate('fluid_a_wrong'), null);
  } finally {
    await core.dispose();
  }
});

test('an agent token works only in the sandboxes it created', () => {
  const sandboxes: Record<string, { id: string; name: string; createdBy: { door: string; id: string } }> = {
    mine: { id: 's1', name: 'mine', createdBy: { door: 'http', id: 'token:a' } },
    theirs: { id: 's2', name: 'theirs', createdBy: { door: 'http', id: 'token:b' } },
    persons: { id: 's3', name: 'persons', createdBy: { door: 'app', id: 'token:a' } },
  };
  const lookup = (ref: string) => sandboxes[ref]!;
  const a = { door: 'http' as const, id: 'token:a', scope: 'agent' as const };
  assert.doesNotThrow(() => ownSandboxOnly(a, 'sandboxes.exec', { sandbox: 'mine' }, lookup));
  for (const ref of ['theirs', 'persons'])
    for (const m of [
      'sandboxes.exec',
      'sandboxes.readFile',
      'diff.get',
      'snapshots.restore',
      'changes.submit',
    ])
      assert.throws(
        () => ownSandboxOnly(a, m, { sandbox: ref }, lookup),
        /works only in its own sandboxes/,
        `${m} ${ref}`,
      );
  assert.throws(
    () => ownSandboxOnly(a, 'approvals.ask', { sandboxId: 'theirs' }, lookup),
    /its own sandboxes/,
  );
  // looking one up is fine; an operator token, a person and the CLI are not limited
  assert.doesNotThrow(() => ownSandboxOnly(a, 'sandboxes.get', { sandbox: 'theirs' }, lookup));
  for (const actor of [
    { door: 'http' as const, id: 'token:o', scope: 'operator' as const },
    { door: 'app' as const, id: 'me' },
    { door: 'cli' as const, id: 'me' },
  ])
    assert.doesNotThrow(() => ownSandboxOnly(actor, 'sandboxes.exec', { sandbox: 'theirs' }, lookup));
});
