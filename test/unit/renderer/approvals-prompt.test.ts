/**
 * Which approvals the modal is opened for: a request made while the window is open, even when the
 * first snapshot, still loading as it was made, already listed it; never one that was waiting before
 * the window opened (the header counts those), never a dismissed one again, never a decided one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Approval } from '../../../src/shared/contract/approvals.ts';
import type { Backend } from '../../../src/renderer/src/backend.ts';
import { attachApprovals, dismissPrompt, useApprovals } from '../../../src/renderer/src/stores/approvals.ts';

function approval(id: string, status: Approval['status'] = 'pending'): Approval {
  return {
    id,
    kind: 'egress',
    title: `egress ${id}`,
    detail: '',
    risk: 'high',
    status,
    subject: { destination: 'example.com:443' },
    requestedBy: { door: 'mcp', id: 'client' },
    createdAt: '2026-01-01T00:00:00.000Z',
  } as Approval;
}

/** A backend whose first approvals.list answers when the test says, and whose events the test sends. */
function fakeBackend() {
  const listeners = new Map<string, (p: unknown) => void>();
  let answer!: (list: Approval[]) => void;
  const backend = {
    isClosed: false,
    on(name: string, fn: (p: unknown) => void) {
      listeners.set(name, fn);
      return () => listeners.delete(name);
    },
    call(method: string) {
      assert.equal(method, 'approvals.list');
      return new Promise<Approval[]>((resolve) => (answer = resolve));
    },
  } as unknown as Backend;
  return {
    backend,
    snapshot: (list: Approval[]) => answer(list),
    event: (a: Approval) => listeners.get('approvals.changed')!(a),
  };
}

function attach(t: { after(fn: () => void): void }) {
  useApprovals.setState({ loaded: false, byId: {}, prompt: [], prompted: {} });
  const b = fakeBackend();
  const detach = attachApprovals(b.backend);
  t.after(detach);
  return b;
}

test('a request made while the snapshot loads, and listed by it, still opens the modal', async (t) => {
  const b = attach(t);
  b.snapshot([approval('old'), approval('new')]);
  await Promise.resolve();
  assert.deepEqual(useApprovals.getState().prompt, [], 'a snapshot alone queues nothing');
  b.event(approval('new'));
  assert.deepEqual(useApprovals.getState().prompt, ['new']);
  assert.equal(useApprovals.getState().loaded, true);
});

test('a request whose event comes before the snapshot is queued once', async (t) => {
  const b = attach(t);
  b.event(approval('a'));
  b.snapshot([approval('a')]);
  await Promise.resolve();
  assert.deepEqual(useApprovals.getState().prompt, ['a']);
});

test('a dismissed request is not queued again, a decided one never goes back to pending', async (t) => {
  const b = attach(t);
  b.snapshot([]);
  await Promise.resolve();
  b.event(approval('a'));
  dismissPrompt('a');
  b.event(approval('a'));
  assert.deepEqual(useApprovals.getState().prompt, []);
  b.event(approval('b', 'approved'));
  b.event(approval('b'));
  assert.equal(useApprovals.getState().byId.b!.status, 'approved');
  assert.deepEqual(useApprovals.getState().prompt, []);
});
