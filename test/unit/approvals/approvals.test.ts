import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { testCore } from '../../support/core.ts';
import { ToolRegistry } from '../../../src/core/agent/tools/registry.ts';
import { decideRule } from '../../../src/core/agent/tools/rules.ts';
import type { FluidError } from '../../../src/shared/errors.ts';

const human = { door: 'web' as const, id: 'alice' };
const agent = { door: 'agent' as const, id: 'session-1' };

test('an approval is a row: requested, decided once by a person, audited with who decided', async () => {
  const core = testCore();
  const a = core.approvals.request({
    kind: 'tool',
    title: 'destroy_sandbox x',
    detail: 'd',
    risk: 'high',
    subject: { tool: 'destroy_sandbox', args: { sandbox_id: 'x' } },
    requestedBy: agent,
    sessionId: 'session-1',
  });
  assert.equal(a.status, 'pending');
  assert.match(a.subjectHash, /^[0-9a-f]{64}$/);
  assert.throws(() => core.approvals.decide(a.id, 'approve', undefined, agent), { code: 'DENIED' });
  const waiting = core.approvals.wait(a.id);
  // High risk: the person confirms in the window (no key enrolled).
  assert.throws(
    () => core.approvals.decide(a.id, 'approve', 'looks fine', human),
    (e: FluidError) => {
      assert.equal(e.code, 'DENIED');
      assert.deepEqual((e.data as { presence: { methods: string[] } }).presence.methods, ['confirm']);
      return true;
    },
  );
  const confirmed = await core.presence.verify(human, core.approvals.purpose(a.id, 'approve'), {
    kind: 'confirm',
  });
  const d = core.approvals.decide(a.id, 'approve', 'looks fine', human, confirmed);
  assert.equal(d.status, 'approved');
  assert.equal(d.decidedVia, 'confirm');
  assert.equal((await waiting).decidedBy!.id, 'alice');
  assert.throws(() => core.approvals.decide(a.id, 'deny', undefined, human), { code: 'CONFLICT' });
  const log = core.audit
    .list({ limit: 10, target: a.id })
    .entries.map((e) => `${e.action}:${e.actor.door}:${e.actor.id}`);
  assert.deepEqual(log.sort(), ['approval.decide:web:alice', 'approval.request:agent:session-1']);
  await core.dispose();
});

test('undecided requests expire and count as not approved', async () => {
  let now = new Date('2026-01-01T00:00:00Z');
  const core = testCore({ clock: { now: () => now } });
  const a = core.approvals.request({
    kind: 'egress',
    title: 't',
    detail: 'd',
    risk: 'low',
    subject: {},
    requestedBy: human,
    expiresInMs: 60_000,
  });
  now = new Date('2026-01-01T00:02:00Z');
  assert.equal(core.approvals.get(a.id).status, 'expired');
  assert.throws(() => core.approvals.decide(a.id, 'approve', undefined, human), { code: 'CONFLICT' });
  await core.dispose();
});

test('rules: first match wins, argument patterns and modes; high risk asks by default', () => {
  const rules = [
    { tool: 'run_command', args: { command: '^rm ' }, decision: 'deny' as const },
    { tool: 'run_*', mode: 'edit' as const, decision: 'ask' as const },
  ];
  assert.equal(
    decideRule(rules, { tool: 'run_command', args: { command: 'rm -rf /x' }, mode: 'edit', risk: 'medium' })
      .decision,
    'deny',
  );
  assert.equal(
    decideRule(rules, { tool: 'run_command', args: { command: 'ls' }, mode: 'edit', risk: 'medium' })
      .decision,
    'ask',
  );
  assert.equal(
    decideRule(rules, { tool: 'read_file', args: {}, mode: 'edit', risk: 'low' }).decision,
    'allow',
  );
  assert.equal(
    decideRule([], { tool: 'destroy_sandbox', args: {}, mode: 'edit', risk: 'high' }).decision,
    'ask',
  );
  assert.equal(
    decideRule([{ tool: 'x', args: { a: '(' }, decision: 'deny' }], {
      tool: 'x',
      args: { a: '(' },
      mode: 'edit',
      risk: 'low',
    }).decision,
    'allow',
    'an invalid pattern never matches',
  );
});

test('the registry gate: read-only mode, validation, policy deny, ask → approval from another door, audit', async () => {
  const core = testCore();
  const reg = new ToolRegistry({ approvals: core.approvals, audit: core.audit, settings: core.settings });
  let ran = 0;
  reg.register({
    name: 'peek',
    description: 'reads',
    input: z.object({ path: z.string() }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `peek ${i.path}`,
    run: async (i) => ({ content: `saw ${i.path}` }),
  });
  reg.register({
    name: 'nuke',
    description: 'destroys',
    input: z.object({ target: z.string() }),
    readOnly: false,
    risk: 'high',
    summarize: (i) => `nuke ${i.target}`,
    run: async () => (ran++, { content: 'gone' }),
  });
  const ctx = (mode: 'edit' | 'read-only', signal = new AbortController().signal) => ({
    actor: agent,
    sessionId: 'session-1',
    mode,
    signal,
  });
  assert.deepEqual(
    reg.info('read-only').map((t) => t.name),
    ['peek'],
  );
  assert.equal((await reg.invoke('nuke', { target: 'x' }, ctx('read-only'))).decision, 'unavailable');
  const bad = await reg.invoke('peek', { path: 3 }, ctx('edit'));
  assert.equal(bad.isError, true);
  assert.match(bad.content, /path/);
  core.settings.update(
    { agent: { rules: [{ tool: 'peek', args: { path: '^/etc/shadow$' }, decision: 'deny' }] } },
    { door: 'test', id: 'setup' },
  );
  assert.equal((await reg.invoke('peek', { path: '/etc/shadow' }, ctx('edit'))).decision, 'deny');
  assert.equal((await reg.invoke('peek', { path: '/etc/hosts' }, ctx('edit'))).content, 'saw /etc/hosts');

  const { promise: asked, resolve: onApproval } = Promise.withResolvers<string>();
  const call = reg.invoke('nuke', { target: 'x' }, { ...ctx('edit'), onApproval });
  const approvalId = await asked;
  assert.equal(ran, 0, 'nothing runs before the decision');
  core.approvals.decide(approvalId, 'deny', 'not today', human);
  const denied = await call;
  assert.equal(denied.isError, true);
  assert.match(denied.content, /denied by web:alice: not today/);
  assert.equal(ran, 0);

  const ac = new AbortController();
  const secondAsked = Promise.withResolvers<string>();
  const cancelled = reg.invoke(
    'nuke',
    { target: 'y' },
    { ...ctx('edit', ac.signal), onApproval: secondAsked.resolve },
  );
  const second = await secondAsked.promise;
  ac.abort();
  await assert.rejects(cancelled, { code: 'CANCELLED' });
  assert.equal(core.approvals.get(second).status, 'cancelled');
  const calls = core.audit
    .list({ limit: 50, action: 'tool.call' })
    .entries.map((e) => (e.data as { decision: string }).decision);
  assert.ok(calls.includes('deny') && calls.includes('denied') && calls.includes('allow'));
  await core.dispose();
});
