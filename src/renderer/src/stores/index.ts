/** Every domain store, hydrated together on each (re)connection. */
import type { Backend } from '../backend.ts';
import { attachAgent } from './agent.ts';
import { attachApprovals } from './approvals.ts';
import { attachAudit } from './audit.ts';
import { attachCapacity } from './capacity.ts';
import { attachHosts } from './hosts.ts';
import { attachProviders } from './providers.ts';
import { attachSandboxes } from './sandboxes.ts';
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
    attachSandboxes(backend),
    attachApprovals(backend),
    attachProviders(backend),
    attachAgent(backend),
    attachCapacity(backend),
  ];
  return () => detach.forEach((d) => d());
}
