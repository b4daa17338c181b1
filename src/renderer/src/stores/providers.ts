/**
 * Model providers: providers.list on every connection, and again after this window saves or
 * deletes one (there is no event for providers). Keys never reach the renderer: only `hasKey`.
 */
import { create } from 'zustand';
import type { Provider } from '../../../shared/contract/agent.ts';
import type { Backend } from '../backend.ts';
import { toErrorInfo, type ErrorInfo } from '../lib/errors.ts';
import { rpc } from './connection.ts';

interface ProvidersStore {
  loaded: boolean;
  error: ErrorInfo | null;
  list: Provider[];
}

export const useProviders = create<ProvidersStore>(() => ({ loaded: false, error: null, list: [] }));

async function load(backend: Backend, isAlive: () => boolean = () => true): Promise<void> {
  try {
    const list = await backend.call('providers.list', {});
    if (isAlive()) useProviders.setState({ loaded: true, error: null, list });
  } catch (err) {
    if (isAlive()) useProviders.setState({ loaded: true, error: toErrorInfo(err) });
  }
}

export function attachProviders(backend: Backend): () => void {
  let alive = true;
  void load(backend, () => alive);
  return () => {
    alive = false;
  };
}

/** After a change made here (save, delete). */
export async function reloadProviders(): Promise<void> {
  try {
    await load(rpc());
  } catch {
    // disconnected: the next connection loads them
  }
}

export function upsertProvider(p: Provider): void {
  useProviders.setState((s) => {
    const list = s.list.some((x) => x.id === p.id)
      ? s.list.map((x) => (x.id === p.id ? p : x))
      : [...s.list, p];
    return { list: p.isDefault ? list.map((x) => (x.id === p.id ? x : { ...x, isDefault: false })) : list };
  });
}

export function defaultProvider(list: Provider[]): Provider | null {
  return list.find((p) => p.isDefault) ?? list[0] ?? null;
}
