/** Sandboxes: snapshot with sandboxes.list, then sandboxes.changed → refetch that sandbox (or drop it). */
import { create } from 'zustand';
import type { Sandbox, SandboxState } from '../../../shared/contract/sandboxes.ts';
import type { Backend } from '../backend.ts';
import { toastError } from './toasts.ts';

interface SandboxesStore {
  loaded: boolean;
  byId: Record<string, Sandbox>;
}

export const useSandboxes = create<SandboxesStore>(() => ({ loaded: false, byId: {} }));

/** Responses may overtake each other; the newest row (by updatedAt) wins. */
export function upsertSandbox(sb: Sandbox): void {
  const prev = useSandboxes.getState().byId[sb.id];
  if (prev && prev.updatedAt > sb.updatedAt) return;
  useSandboxes.setState((s) => ({ byId: { ...s.byId, [sb.id]: sb } }));
}

function dropSandbox(id: string): void {
  useSandboxes.setState((s) => {
    const byId = { ...s.byId };
    delete byId[id];
    return { byId };
  });
}

/** How often to look again for changes made by another process on the same data (the CLI). */
const RESYNC_MS = 15_000;

export function attachSandboxes(backend: Backend): () => void {
  let alive = true;
  /** Sandboxes refetched on an event while the snapshot was in flight. */
  const fresh = new Set<string>();
  const refetch = (id: string) =>
    backend.call('sandboxes.get', { sandbox: id }).then(
      (sb) => {
        if (!alive) return;
        fresh.add(sb.id);
        upsertSandbox(sb);
      },
      (err: unknown) => {
        if (!alive) return;
        if ((err as { code?: string }).code === 'NOT_FOUND') dropSandbox(id);
        else toastError(err, 'Refreshing a sandbox');
      },
    );
  const off = backend.on('sandboxes.changed', (e) => void refetch(e.sandboxId));

  async function snapshot(first: boolean): Promise<void> {
    fresh.clear();
    try {
      const list = await backend.call('sandboxes.list', {});
      if (!alive) return;
      const cur = useSandboxes.getState().byId;
      const byId: Record<string, Sandbox> = {};
      for (const sb of list)
        byId[sb.id] = cur[sb.id] && cur[sb.id]!.updatedAt > sb.updatedAt ? cur[sb.id]! : sb;
      // Keep rows that events brought in meanwhile (the list leaves destroyed ones out).
      for (const id of fresh) if (!byId[id] && cur[id]) byId[id] = cur[id];
      // Known here but no longer listed: destroyed, perhaps by another process. Ask once more.
      const gone = Object.values(cur).filter((sb) => !byId[sb.id] && sb.state !== 'destroyed');
      if (!first) for (const sb of gone) byId[sb.id] = sb;
      useSandboxes.setState({ loaded: true, byId });
      for (const sb of gone) if (!first) void refetch(sb.id);
    } catch (err) {
      if (alive && first) toastError(err, 'Loading sandboxes');
    }
  }
  void snapshot(true);
  // Events only come from this backend process; a change made through the CLI shows up here.
  const timer = setInterval(() => {
    if (!document.hidden && !backend.isClosed) void snapshot(false);
  }, RESYNC_MS);
  return () => {
    alive = false;
    clearInterval(timer);
    off();
  };
}

/** Newest first, as the backend lists them; destroyed ones only when asked for. */
export function sortSandboxes(byId: Record<string, Sandbox>, keep?: string | null): Sandbox[] {
  return Object.values(byId)
    .filter((s) => s.state !== 'destroyed' || s.id === keep)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

export const LIVE_STATES: SandboxState[] = ['creating', 'starting', 'running', 'stopping'];
export const BUSY_STATES: SandboxState[] = ['creating', 'starting', 'stopping', 'destroying'];

export const STATE_TONE: Record<SandboxState, 'ok' | 'warn' | 'fail' | 'neutral' | 'info'> = {
  creating: 'info',
  starting: 'info',
  running: 'ok',
  stopping: 'warn',
  stopped: 'neutral',
  destroying: 'warn',
  destroyed: 'neutral',
  pooled: 'neutral',
  failed: 'fail',
};
