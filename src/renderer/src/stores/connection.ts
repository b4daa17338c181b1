/**
 * The connection to the backend and its lifecycle. In web mode a dropped socket is retried with
 * backoff; every successful (re)connection re-hydrates the stores (snapshot, then deltas).
 */
import { create } from 'zustand';
import { FluidError } from '../../../shared/errors.ts';
import { connectBackend, type Backend, type Door } from '../backend.ts';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'failed';

interface ConnectionStore {
  state: ConnectionState;
  door: Door | null;
  backend: Backend | null;
  /** Why the first connection failed (shown full screen), or why the last retry failed. */
  error: string | null;
  attempt: number;
  nextRetryAt: number | null;
  /** Increments on every successful connection; views refetch their own data when it changes. */
  generation: number;
}

export const useConnection = create<ConnectionStore>(() => ({
  state: 'connecting',
  door: null,
  backend: null,
  error: null,
  attempt: 0,
  nextRetryAt: null,
  generation: 0,
}));

/** Connected to the backend: actions that need it are enabled (the shell disables them otherwise). */
export const useOnline = (): boolean => useConnection((s) => s.state === 'connected');

/** Wires every store to a fresh backend; returns the function that detaches them. */
export type Hydrator = (backend: Backend) => () => void;

let hydrate: Hydrator = () => () => {};
let detach: (() => void) | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;

const MAX_BACKOFF_MS = 10_000;

/** The current backend. Throws UNAVAILABLE while disconnected (callers show it as a toast). */
export function rpc(): Backend {
  const b = useConnection.getState().backend;
  if (!b || b.isClosed)
    throw new FluidError('UNAVAILABLE', 'Not connected to the Fluid backend; reconnecting.');
  return b;
}

export async function startConnection(hydrator: Hydrator): Promise<void> {
  hydrate = hydrator;
  try {
    const { backend, door } = await connectBackend();
    attach(backend, door);
  } catch (err) {
    useConnection.setState({
      state: 'failed',
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** From the full-screen failure or the reconnect banner: try again now. */
export function retryNow(): void {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  const { state } = useConnection.getState();
  if (state === 'failed') {
    useConnection.setState({ state: 'connecting', error: null });
    void startConnection(hydrate);
  } else if (state === 'reconnecting' || state === 'disconnected') void reconnect();
}

function attach(backend: Backend, door: Door): void {
  detach?.();
  useConnection.setState((s) => ({
    backend,
    door,
    state: 'connected',
    error: null,
    attempt: 0,
    nextRetryAt: null,
    generation: s.generation + 1,
  }));
  detach = hydrate(backend);
  backend.onDisconnect(() => {
    if (useConnection.getState().backend !== backend) return;
    detach?.();
    detach = null;
    if (door === 'web') scheduleReconnect();
    else
      useConnection.setState({
        state: 'disconnected',
        error: 'The app lost its connection to the backend. Restart Fluid.',
      });
  });
}

function scheduleReconnect(): void {
  const attempt = useConnection.getState().attempt + 1;
  const delay = Math.min(500 * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  useConnection.setState({ state: 'reconnecting', attempt, nextRetryAt: Date.now() + delay });
  retryTimer = setTimeout(() => void reconnect(), delay);
}

async function reconnect(): Promise<void> {
  retryTimer = null;
  try {
    const { backend, door } = await connectBackend();
    attach(backend, door);
  } catch (err) {
    useConnection.setState({ error: err instanceof Error ? err.message : String(err) });
    scheduleReconnect();
  }
}
