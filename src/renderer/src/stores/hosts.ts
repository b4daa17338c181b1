/** Hosts: snapshot with hosts.list, then hosts.changed → refetch that host (or drop it). */
import { create } from 'zustand';
import { LOCAL_HOST_ID, type Host } from '../../../shared/contract/hosts.ts';
import type { Backend } from '../backend.ts';
import { toastError } from './toasts.ts';

interface HostsStore {
  loaded: boolean;
  byId: Record<string, Host>;
  /** Order from the backend: the local host first, then by creation. */
  order: string[];
}

export const useHosts = create<HostsStore>(() => ({ loaded: false, byId: {}, order: [] }));

function setAll(hosts: Host[]): void {
  useHosts.setState({
    loaded: true,
    byId: Object.fromEntries(hosts.map((h) => [h.id, h])),
    order: hosts.map((h) => h.id),
  });
}

export function upsertHost(h: Host): void {
  useHosts.setState((s) => ({
    byId: { ...s.byId, [h.id]: h },
    order: s.order.includes(h.id) ? s.order : [...s.order, h.id],
  }));
}

function dropHost(id: string): void {
  useHosts.setState((s) => {
    const byId = { ...s.byId };
    delete byId[id];
    return { byId, order: s.order.filter((x) => x !== id) };
  });
}

export function attachHosts(backend: Backend): () => void {
  let alive = true;
  const off = backend.on('hosts.changed', (e) => {
    if (e.change === 'removed') return dropHost(e.hostId);
    backend.call('hosts.get', { host: e.hostId }).then(
      (h) => alive && upsertHost(h),
      (err: unknown) => {
        if (!alive) return;
        if ((err as { code?: string }).code === 'NOT_FOUND') dropHost(e.hostId);
        else toastError(err, 'Refreshing a host');
      },
    );
  });
  backend.call('hosts.list', {}).then(
    (hosts) => alive && setAll(hosts),
    (err: unknown) => alive && toastError(err, 'Loading hosts'),
  );
  return () => {
    alive = false;
    off();
  };
}

export type Readiness = 'unchecked' | 'ready' | 'warnings' | 'failed';

export function readiness(h: Host): Readiness {
  const c = h.lastCheck;
  if (!c) return 'unchecked';
  if (!c.ok) return 'failed';
  return c.checks.some((x) => x.status === 'warn') ? 'warnings' : 'ready';
}

export const READINESS_LABEL: Record<Readiness, string> = {
  unchecked: 'Not checked',
  ready: 'Ready',
  warnings: 'Ready, with warnings',
  failed: 'Not ready',
};

export function hostTarget(h: Host): string {
  return h.kind === 'local' ? 'this machine' : `${h.user}@${h.address}:${h.port}`;
}

/** First run: only the built-in local host exists and it was never checked. */
export function isFirstRun(s: HostsStore): boolean {
  return s.order.length === 1 && s.order[0] === LOCAL_HOST_ID && !s.byId[LOCAL_HOST_ID]?.lastCheck;
}
