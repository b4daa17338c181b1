/**
 * Approvals: snapshot with approvals.list, then approvals.changed (a full Approval) upserts. A request
 * that arrives pending while the app is open is queued for the approval modal (`prompt`), even when
 * the snapshot, still loading as it was made, already listed it.
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
  /** Every approval ever queued for the modal: dismissed ones are not queued again. */
  prompted: Record<string, true>;
}

export const useApprovals = create<ApprovalsStore>(() => ({
  loaded: false,
  byId: {},
  prompt: [],
  prompted: {},
}));

/**
 * Record an approval. `prompt`: queue it for the modal if it is a pending request this window did not
 * know. `live`: it comes from approvals.changed, which says pending only when a request is made, so
 * it is queued even if a snapshot loading meanwhile already listed it.
 */
export function upsertApproval(a: Approval, opts: { prompt?: boolean; live?: boolean } = {}): void {
  useApprovals.setState((s) => {
    const prev = s.byId[a.id];
    // A decision never goes back to pending.
    if (prev && prev.status !== 'pending' && a.status === 'pending') return s;
    const queue = opts.prompt && a.status === 'pending' && (!prev || opts.live) && !s.prompted[a.id];
    return {
      byId: { ...s.byId, [a.id]: a },
      ...(queue && { prompt: [...s.prompt, a.id], prompted: { ...s.prompted, [a.id]: true } }),
    };
  });
}

const RESYNC_MS = 5_000;

export function attachApprovals(backend: Backend): () => void {
  let alive = true;
  const off = backend.on(
    'approvals.changed',
    (a) => alive && upsertApproval(a, { prompt: true, live: true }),
  );
  // Another process's events (the CLI's) reach this window through the database's event feed, which
  // is best effort; a sandbox that waited for a decision changes state too: look at its requests again.
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
  // And look for requests and decisions now and then, in case an event from another process on the
  // same data (the CLI) never came.
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
  useApprovals.setState((s) => ({
    prompt: [...new Set([...ids, ...s.prompt])],
    prompted: { ...s.prompted, ...Object.fromEntries(ids.map((id) => [id, true] as const)) },
  }));
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
