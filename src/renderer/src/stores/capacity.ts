/**
 * Capacity over time for the overview's charts, sampled by this window: hosts.capacity for every host
 * once a minute while the window is visible (and at once when the overview asks), the last two hours
 * kept in memory and in sessionStorage, so a reload keeps the chart. Nothing is stored on the backend:
 * the history is this window's view, and a host that cannot be reached is asked again later.
 */
import { create } from 'zustand';
import type { Capacity } from '../../../shared/contract/hosts.ts';
import type { Backend } from '../backend.ts';
import { useHosts } from './hosts.ts';

export interface CapacitySample {
  /** Backend-independent: this window's clock, for the chart's x axis only. */
  at: number;
  memUsedPct: number | null;
  diskUsedPct: number | null;
  freeMemoryMiB: number | null;
  diskFreeBytes: number | null;
  runningVms: number;
  committedVcpus: number;
  cpus: number | null;
}

interface CapacityStore {
  byHost: Record<string, CapacitySample[]>;
  /** The last failure per host (its message), cleared by the next good sample. */
  errors: Record<string, string>;
}

const KEY = 'fluid.capacity';
export const SAMPLE_MS = 60_000;
export const KEEP_MS = 2 * 60 * 60_000;
/** After a failure, leave the host alone this long. */
const BACKOFF_MS = 5 * 60_000;

function restore(): Record<string, CapacitySample[]> {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY) ?? '{}') as Record<string, CapacitySample[]>;
    const cut = Date.now() - KEEP_MS;
    return Object.fromEntries(
      Object.entries(v).map(([k, list]) => [k, Array.isArray(list) ? list.filter((x) => x.at > cut) : []]),
    );
  } catch {
    return {};
  }
}

export const useCapacity = create<CapacityStore>(() => ({ byHost: restore(), errors: {} }));

const pct = (part: number | null, whole: number | null) =>
  part !== null && whole ? Math.max(0, Math.min(100, (part / whole) * 100)) : null;

export function toSample(c: Capacity, at: number): CapacitySample {
  return {
    at,
    memUsedPct:
      c.memoryMiB !== null && c.freeMemoryMiB !== null
        ? pct(c.memoryMiB - c.freeMemoryMiB, c.memoryMiB)
        : null,
    diskUsedPct:
      c.diskTotalBytes !== null && c.diskFreeBytes !== null
        ? pct(c.diskTotalBytes - c.diskFreeBytes, c.diskTotalBytes)
        : null,
    freeMemoryMiB: c.freeMemoryMiB,
    diskFreeBytes: c.diskFreeBytes,
    runningVms: c.runningVms,
    committedVcpus: c.committedVcpus,
    cpus: c.cpus,
  };
}

function record(hostId: string, s: CapacitySample): void {
  useCapacity.setState((st) => {
    const cut = s.at - KEEP_MS;
    const list = [...(st.byHost[hostId] ?? []).filter((x) => x.at > cut), s];
    const byHost = { ...st.byHost, [hostId]: list };
    const errors = { ...st.errors };
    delete errors[hostId];
    try {
      sessionStorage.setItem(KEY, JSON.stringify(byHost));
    } catch {
      // full or off: the chart lasts for this page
    }
    return { byHost, errors };
  });
}

let current: Backend | null = null;
const inFlight = new Set<string>();
const failedAt = new Map<string, number>();

async function sampleHost(backend: Backend, hostId: string): Promise<void> {
  if (inFlight.has(hostId) || Date.now() - (failedAt.get(hostId) ?? 0) < BACKOFF_MS) return;
  inFlight.add(hostId);
  try {
    const c = await backend.call('hosts.capacity', { host: hostId });
    failedAt.delete(hostId);
    record(hostId, toSample(c, Date.now()));
  } catch (err) {
    if (backend.isClosed) return;
    failedAt.set(hostId, Date.now());
    useCapacity.setState((st) => ({
      errors: { ...st.errors, [hostId]: err instanceof Error ? err.message : String(err) },
    }));
  } finally {
    inFlight.delete(hostId);
  }
}

/** Sample every host whose newest sample is older than `freshMs` (the overview opening: now). */
export function sampleNow(freshMs = 15_000): void {
  const backend = current;
  if (!backend || backend.isClosed) return;
  const { byHost } = useCapacity.getState();
  for (const id of useHosts.getState().order) {
    const last = byHost[id]?.at(-1)?.at ?? 0;
    if (Date.now() - last >= freshMs) void sampleHost(backend, id);
  }
}

export function attachCapacity(backend: Backend): () => void {
  current = backend;
  failedAt.clear();
  const timer = setInterval(() => {
    if (!document.hidden && !backend.isClosed) sampleNow(SAMPLE_MS - 5_000);
  }, SAMPLE_MS);
  return () => {
    clearInterval(timer);
    if (current === backend) current = null;
  };
}
