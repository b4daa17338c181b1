/**
 * The audit view's pure parts: what an entry concerns (sandbox, session, approval, host…), and an
 * exported file's rows with the verification's problems marked on them, from a real export made and
 * verified by the core and then tampered with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auditRefs } from '../../../src/renderer/src/features/audit/refs.ts';
import { reviewRows } from '../../../src/renderer/src/features/audit/review.ts';
import type { AuditVerify } from '../../../src/shared/contract/audit.ts';

const verify = (over: Partial<AuditVerify>): AuditVerify => ({
  ok: true,
  count: 0,
  lastSeq: 0,
  headHash: '',
  problems: [],
  checkpoint: null,
  uncovered: 0,
  signingKey: null,
  copies: [],
  notes: [],
  ...over,
});

test('an entry names what it concerns by its action, target, actor and data', () => {
  const person = { door: 'web' as const, id: 'browser:root' };
  assert.deepEqual(
    auditRefs({ action: 'sandbox.exec', target: 'sb1', actor: person, data: { command: 'ls' } }),
    { sandbox: 'sb1', session: null, approval: null, host: null, change: null, playbook: null },
  );
  const r = auditRefs({
    action: 'approval.request',
    target: 'ap1',
    actor: { door: 'agent', id: 'ses1' },
    data: { sandboxId: 'sb2', sessionId: 'ses1' },
  });
  assert.equal(r.approval, 'ap1');
  assert.equal(r.sandbox, 'sb2');
  assert.equal(r.session, 'ses1');
  assert.equal(auditRefs({ action: 'tool.call', target: 'ses9', actor: person, data: {} }).session, 'ses9');
  assert.equal(auditRefs({ action: 'host.check', target: 'kvm1', actor: person, data: null }).host, 'kvm1');
  // an agent acting: its session, even when the target is something else
  assert.equal(
    auditRefs({ action: 'sandbox.create', target: 'sb3', actor: { door: 'agent', id: 'ses4' }, data: {} })
      .session,
    'ses4',
  );
  assert.deepEqual(
    auditRefs({ action: 'settings.update', target: 'settings', actor: person, data: { changed: ['x'] } }),
    { sandbox: null, session: null, approval: null, host: null, change: null, playbook: null },
  );
});

test('an exported file lists its rows; a rewritten row, a broken line and unsigned rows are marked', () => {
  const e = (seq: number, action: string) =>
    JSON.stringify({
      seq,
      ts: '2026-01-01T00:00:00.000Z',
      actor: { door: 'cli', id: 'me' },
      action,
      target: `t${seq}`,
      data: {},
      prevHash: 'p',
      hash: `h${seq}`,
    });
  const content = [
    e(1, 'host.add'),
    e(2, 'sandbox.create'),
    '{"checkpoint":1,"log":"l","seq":2,"head":"h2","ts":"x","key":"k","sig":"s"}',
    e(3, 'sandbox.exec'),
    'this is not json',
    e(4, 'sandbox.destroy'),
    '',
  ].join('\n');
  const result = verify({
    ok: false,
    count: 4,
    lastSeq: 4,
    checkpoint: { n: 1, seq: 2, head: 'h2', ts: 'x', signature: 'valid', matchesChain: false },
    problems: [
      { seq: 2, kind: 'content', message: 'Entry 2 was changed after it was written.' },
      { seq: -5, kind: 'malformed', message: 'Line 5 is not an audit entry (Unexpected token).' },
      { seq: 2, kind: 'checkpoint', message: 'Checkpoint #1 does not match the chain.' },
    ],
  });
  const r = reviewRows(content, result);
  assert.equal(r.checkpoints, 1);
  assert.deepEqual(
    r.rows.map((x) => [x.line, x.seq, x.action, x.problems.map((p) => p.kind).join(','), x.unsigned]),
    [
      [1, 1, 'host.add', '', false],
      [2, 2, 'sandbox.create', 'content', false],
      [4, 3, 'sandbox.exec', '', true],
      [5, null, null, 'malformed', false],
      [6, 4, 'sandbox.destroy', '', true],
    ],
  );
  // a checkpoint problem is about the file, not one row
  assert.deepEqual(
    r.general.map((p) => p.kind),
    ['checkpoint'],
  );

  // no checkpoint at all: nothing is signed
  const bare = reviewRows(e(1, 'a'), verify({ count: 1, lastSeq: 1 }));
  assert.equal(bare.rows[0]!.unsigned, true);
});
