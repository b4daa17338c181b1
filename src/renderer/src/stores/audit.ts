/** Audit: the newest page with audit.list, older pages on demand, audit.appended prepends live. */
import { create } from 'zustand';
import type { AuditEntry } from '../../../shared/contract/audit.ts';
import type { Backend } from '../backend.ts';
import { rpc } from './connection.ts';
import { toastError } from './toasts.ts';

const PAGE = 100;

interface AuditStore {
  loaded: boolean;
  loading: boolean;
  entries: AuditEntry[];
  total: number;
  /** Exact action filter (audit.list's `action`), '' for all. */
  action: string;
  /** Every action seen, for the filter's suggestions. */
  actions: string[];
}

export const useAudit = create<AuditStore>(() => ({
  loaded: false,
  loading: false,
  entries: [],
  total: 0,
  action: '',
  actions: [],
}));

const KNOWN_ACTIONS = [
  'host.add',
  'host.check',
  'host.update',
  'host.trust',
  'host.remove',
  'settings.update',
  'sandbox.create',
  'sandbox.destroy',
  'approval.request',
  'approval.decide',
];

function mergeActions(list: string[], entries: AuditEntry[]): string[] {
  const set = new Set([...list, ...entries.map((e) => e.action)]);
  return [...set].sort();
}

let generation = 0;

async function loadFirstPage(backend: Backend): Promise<void> {
  const g = ++generation;
  const action = useAudit.getState().action;
  useAudit.setState({ loading: true });
  try {
    const r = await backend.call('audit.list', { limit: PAGE, ...(action ? { action } : {}) });
    if (g !== generation) return;
    // Keep entries that arrived live while the snapshot was in flight.
    const newest = r.entries[0]?.seq ?? 0;
    const live = useAudit
      .getState()
      .entries.filter((e) => e.seq > newest && (!action || e.action === action));
    useAudit.setState((s) => ({
      loaded: true,
      loading: false,
      entries: [...live, ...r.entries],
      total: r.total + live.length,
      actions: mergeActions(s.actions, r.entries),
    }));
  } catch (err) {
    if (g === generation) useAudit.setState({ loading: false });
    toastError(err, 'Loading the audit log');
  }
}

export function attachAudit(backend: Backend): () => void {
  let alive = true;
  useAudit.setState((s) => ({ actions: mergeActions(s.actions.length ? s.actions : KNOWN_ACTIONS, []) }));
  const off = backend.on('audit.appended', (e) => {
    if (!alive) return;
    useAudit.setState((s) => {
      const actions = mergeActions(s.actions, [e]);
      if ((s.action && e.action !== s.action) || s.entries.some((x) => x.seq === e.seq)) return { actions };
      return { entries: [e, ...s.entries], total: s.total + 1, actions };
    });
  });
  void loadFirstPage(backend);
  return () => {
    alive = false;
    off();
  };
}

export function setAuditFilter(action: string): void {
  useAudit.setState({ action, entries: [], total: 0, loaded: false });
  try {
    void loadFirstPage(rpc());
  } catch (err) {
    toastError(err, 'Loading the audit log');
  }
}

export async function loadOlderAudit(): Promise<void> {
  const s = useAudit.getState();
  const oldest = s.entries.at(-1);
  if (!oldest || s.loading || s.entries.length >= s.total) return;
  const g = generation;
  useAudit.setState({ loading: true });
  try {
    const r = await rpc().call('audit.list', {
      limit: PAGE,
      beforeSeq: oldest.seq,
      ...(s.action ? { action: s.action } : {}),
    });
    if (g !== generation) return;
    useAudit.setState((cur) => ({
      loading: false,
      entries: [...cur.entries, ...r.entries.filter((e) => e.seq < oldest.seq)],
      actions: mergeActions(cur.actions, r.entries),
    }));
  } catch (err) {
    useAudit.setState({ loading: false });
    toastError(err, 'Loading older audit entries');
  }
}
