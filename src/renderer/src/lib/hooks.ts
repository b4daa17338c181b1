import { useCallback, useEffect, useEffectEvent, useRef, useState, type RefObject } from 'react';
import type { Task } from '../../../shared/contract/tasks.ts';
import type { Backend } from '../backend.ts';
import { rpc, useConnection } from '../stores/connection.ts';
import { useSystem } from '../stores/system.ts';
import { upsertTask, useTasks } from '../stores/tasks.ts';
import { toErrorInfo, type ErrorInfo } from './errors.ts';

export interface AsyncState<T> {
  data: T | null;
  error: ErrorInfo | null;
  loading: boolean;
  reload: () => void;
}

/**
 * Load something from the backend, again when `deps` or `refreshOn` change, on reload(), and after a
 * reconnection. A stale response (deps changed meanwhile) is dropped; the call is aborted on unmount.
 *
 * `deps` say what the data is about (a host, a sandbox, a revision): data or an error loaded for other
 * deps is never returned, so a view that switches from one host to another shows nothing of the first
 * while the second loads. `refreshOn` are mere reasons to look again (a check finished, a task moved
 * on): the data on screen stays until the new answer replaces it, as on reload() and reconnection.
 */
export function useBackendQuery<T>(
  load: ((backend: Backend, signal: AbortSignal) => Promise<T>) | null,
  deps: readonly unknown[],
  refreshOn: readonly unknown[] = [],
): AsyncState<T> {
  const generation = useConnection((s) => s.generation);
  const [nonce, setNonce] = useState(0);
  const enabled = !!load;
  // Every reason to load: when these differ from what the last answer was for, an answer is on its way.
  const reasons = [...deps, ...refreshOn, enabled, nonce, generation];
  const [state, setState] = useState<{
    data: T | null;
    error: ErrorInfo | null;
    /** The deps the data and error are about. */
    about: readonly unknown[] | null;
    /** The reasons the last answer came for (null: none yet, or the connection dropped). */
    answered: readonly unknown[] | null;
  }>({ data: null, error: null, about: null, answered: null });
  const run = useEffectEvent((backend: Backend, signal: AbortSignal) => load!(backend, signal));

  useEffect(() => {
    if (!enabled) return;
    const about = deps;
    const answered = reasons;
    const ac = new AbortController();
    let backend: Backend | null = null;
    (async () => {
      backend = rpc();
      return run(backend, ac.signal);
    })().then(
      (data) => !ac.signal.aborted && setState({ data, error: null, about, answered }),
      (err: unknown) => {
        if (ac.signal.aborted) return;
        // A dropped connection is not this query's failure: it reloads after reconnecting.
        if (backend?.isClosed) return setState((s) => ({ ...s, answered: null }));
        setState((s) => ({
          data: sameDeps(s.about, about) ? s.data : null,
          error: toErrorInfo(err),
          about,
          answered,
        }));
      },
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, reasons);

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  if (!enabled) return { data: null, error: null, loading: false, reload };
  const loading = !sameDeps(state.answered, reasons);
  if (!sameDeps(state.about, deps)) return { data: null, error: null, loading, reload };
  return { data: state.data, error: state.error, loading, reload };
}

function sameDeps(a: readonly unknown[] | null, b: readonly unknown[]): boolean {
  return a !== null && a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

/**
 * Follow a task with the tasks.watch stream (the task now, then every change until it ends).
 * Falls back to the task store, which tasks.changed keeps current.
 */
export function useWatchedTask(taskId: string | null): Task | null {
  const fromStore = useTasks((s) => (taskId ? (s.byId[taskId] ?? null) : null));
  const generation = useConnection((s) => s.generation);
  useEffect(() => {
    if (!taskId) return;
    const ac = new AbortController();
    (async () => {
      try {
        for await (const t of rpc().stream('tasks.watch', { id: taskId }, { signal: ac.signal }))
          upsertTask(t);
      } catch {
        // The store still follows tasks.changed; a lost stream is re-opened after reconnecting.
      }
    })();
    return () => ac.abort();
  }, [taskId, generation]);
  return fromStore;
}

/** Move focus to an element when `key` changes (step headings, detail panes). */
export function useFocusOnChange<T extends HTMLElement>(key: unknown): RefObject<T | null> {
  const ref = useRef<T>(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    ref.current?.focus({ preventScroll: false });
  }, [key]);
  return ref;
}

/**
 * Now on the backend's clock, re-rendered every `ms` so relative times ("3 min ago") and countdowns
 * stay true. While the backend is unreachable it stands still: nothing on screen pretends to know
 * how long something has been running since the connection dropped.
 */
export function useNow(ms = 30_000): number {
  const online = useConnection((s) => s.state === 'connected');
  const skew = useSystem((s) => s.skewMs);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!online) return;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, online]);
  return now + skew;
}
