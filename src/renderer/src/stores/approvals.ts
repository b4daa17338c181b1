/**
 * Approvals: snapshot with approvals.list, then approvals.changed (a full Approval) upserts. A request
 * that arrives pending while the app is open is queued for the approval modal (`prompt`).
 */
import { create } from 'zustand';
import type { Approval } from '../../../shared/contract/approvals.ts';
import type { Backend } from '../backend.ts';
import { toastError } from './toasts.ts';

interface ApprovalsStore {
  loaded: boolean;
  byId: Record<string, Approval>;
  /** Approvals to show in the modal, oldest first; the modal shows the first. */
  prompt: string[];
}

export const useApprovals = create<ApprovalsStore>(() => ({ loaded: false, byId: {}, prompt: [] }));

export function upsertApproval(a: Approval, opts: { prompt?: boolean } = {}): void {
  useApprovals.setState((s) => {
    const prev = s.byId[a.id];
    // A decision never goes back to pending.
    if (prev && prev.status !== 'pending' && a.status === 'pending') return s;
    const isNew = !prev && a.status === 'pending';
    return {
      byId: { ...s.byId, [a.id]: a },
      prompt: opts.prompt && isNew && !s.prompt.includes(a.id) ? [...s.prompt, a.id] : s.prompt,
    };
  });
}

const RESYNC_MS = 5_000;

export function attachApprovals(backend: Backend): () => void {
  let alive = true;
  const off = backend.on('approvals.changed', (a) => alive && upsertApproval(a, { prompt: true }));
  // A decision taken in another process (the CLI) is not an event here; the sandbox that waited for
  // it changes state, though: look at its pending requests again.
  const offSandboxes = backend.on('sandboxes.changed', (e) => {
    for (const a of Object.values(useApprovals.getState().byId))
      if (a.status === 'pending' && a.sandboxId === e.sandboxId) void refreshApproval(backend, a.id);
  });
  backend.call('approvals.list', { limit: 200 }).then(
    (list) => {
      if (!alive) return;
      useApprovals.setState((s) => {
        const byId = { ...s.byId };
        for (const a of list) {
          const prev = byId[a.id];
          if (!prev || prev.status === 'pending') byId[a.id] = a;
        }
        return { loaded: true, byId };
      });
    },
    (err: unknown) => alive && toastError(err, 'Loading approvals'),
  );
  // Requests made, and decisions taken, by another process on the same data (the CLI) send no event
  // here: look for them now and then.
  const timer = setInterval(() => {
    if (document.hidden || backend.isClosed) return;
    backend.call('approvals.list', { status: 'pending', limit: 100 }).then(
      (pending) => {
        if (!alive) return;
        for (const a of pending) upsertApproval(a, { prompt: true });
        const ids = new Set(pending.map((a) => a.id));
        for (const a of Object.values(useApprovals.getState().byId))
          if (a.status === 'pending' && !ids.has(a.id)) void refreshApproval(backend, a.id);
      },
      () => {},
    );
  }, RESYNC_MS);
  return () => {
    alive = false;
    clearInterval(timer);
    off();
    offSandboxes();
  };
}

/** Fetch one approval again (it may have been decided where no event reaches this window). */
export async function refreshApproval(backend: Backend, id: string): Promise<void> {
  try {
    upsertApproval(await backend.call('approvals.get', { id }));
  } catch {
    // Gone or unreachable: the next snapshot settles it.
  }
}

/** Show these approvals in the modal (the header indicator: every pending one). */
export function promptApprovals(ids: string[]): void {
  useApprovals.setState((s) => ({ prompt: [...new Set([...ids, ...s.prompt])] }));
}

/** Take one off the modal's queue (it stays pending, and counted, until someone decides). */
export function dismissPrompt(id: string): void {
  useApprovals.setState((s) => ({ prompt: s.prompt.filter((x) => x !== id) }));
}

export function pendingApprovals(byId: Record<string, Approval>): Approval[] {
  return Object.values(byId)
    .filter((a) => a.status === 'pending')
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export function sortApprovals(byId: Record<string, Approval>): Approval[] {
  return Object.values(byId).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

export const RISK_TONE = { low: 'ok', medium: 'warn', high: 'fail' } as const;

export const APPROVAL_STATUS_TONE = {
  pending: 'info',
  approved: 'ok',
  denied: 'fail',
  expired: 'neutral',
  cancelled: 'neutral',
} as const;

export function actorLabel(a: { door: string; id: string } | null | undefined): string {
  return a ? `${a.door}:${a.id}` : '—';
}
