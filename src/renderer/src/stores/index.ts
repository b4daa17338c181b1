/** Every domain store, hydrated together on each (re)connection. */
import type { Backend } from '../backend.ts';
import { attachAudit } from './audit.ts';
import { attachHosts } from './hosts.ts';
import { attachSettings } from './settings.ts';
import { attachSystem } from './system.ts';
import { attachTasks } from './tasks.ts';

export function hydrateStores(backend: Backend): () => void {
  const detach = [
    attachSystem(backend),
    attachSettings(backend),
    attachHosts(backend),
    attachTasks(backend),
    attachAudit(backend),
  ];
  return () => detach.forEach((d) => d());
}
