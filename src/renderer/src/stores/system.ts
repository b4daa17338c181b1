/** What the backend says about itself (system.info); fetched on every connection. */
import { create } from 'zustand';
import type { Contract } from '../../../shared/contract/index.ts';
import type { Out } from '../../../shared/rpc.ts';
import type { Backend } from '../backend.ts';

export type SystemInfo = Out<Contract, 'system.info'>;

export const useSystem = create<{ info: SystemInfo | null }>(() => ({ info: null }));

export function attachSystem(backend: Backend): () => void {
  let alive = true;
  backend.call('system.info', {}).then(
    (info) => alive && useSystem.setState({ info }),
    () => {},
  );
  return () => {
    alive = false;
  };
}
