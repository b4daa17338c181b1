/** What the backend says about itself (system.info); fetched on every connection. */
import { create } from 'zustand';
import type { Contract } from '../../../shared/contract/index.ts';
import type { Out } from '../../../shared/rpc.ts';
import type { Backend } from '../backend.ts';

export type SystemInfo = Out<Contract, 'system.info'>;

export const useSystem = create<{
  info: SystemInfo | null;
  /** The backend's clock minus this window's (ms): times on screen are measured on the backend's. */
  skewMs: number;
}>(() => ({ info: null, skewMs: 0 }));

/** Now on the backend's clock, as well as this window can tell. */
export const serverNow = (): number => Date.now() + useSystem.getState().skewMs;

export function attachSystem(backend: Backend): () => void {
  let alive = true;
  const sent = Date.now();
  backend.call('system.info', {}).then(
    (info) => {
      if (!alive) return;
      const back = Date.now();
      const at = info.now ? Date.parse(info.now) : NaN;
      // Half the round trip is the best guess of when the backend read its clock.
      const skewMs = Number.isFinite(at) ? Math.round(at - (sent + back) / 2) : 0;
      useSystem.setState({ info, skewMs });
    },
    () => {},
  );
  return () => {
    alive = false;
  };
}
