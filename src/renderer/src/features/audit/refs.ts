/**
 * What an audit entry concerns, from its action, target, actor and data: the sandbox, agent session,
 * approval, host, change or playbook it names (by id), so the detail can link to them and show names.
 * Pure: unit-tested on its own.
 */
import type { AuditEntry } from '../../../../shared/contract/audit.ts';

export interface AuditRefs {
  sandbox: string | null;
  session: string | null;
  approval: string | null;
  host: string | null;
  change: string | null;
  playbook: string | null;
}

/** Which kind of thing an action's target is, by the action's first word. */
const TARGET_KIND: Record<string, keyof AuditRefs> = {
  sandbox: 'sandbox',
  snapshot: 'sandbox',
  diff: 'sandbox',
  egress: 'sandbox',
  host: 'host',
  approval: 'approval',
  tool: 'session',
  agent: 'session',
  change: 'change',
  playbook: 'playbook',
};

const DATA_KEYS: Array<[string, keyof AuditRefs]> = [
  ['sandboxId', 'sandbox'],
  ['sandbox', 'sandbox'],
  ['sessionId', 'session'],
  ['approvalId', 'approval'],
  ['hostId', 'host'],
  ['changeId', 'change'],
  ['playbookId', 'playbook'],
];

const str = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);

export function auditRefs(e: Pick<AuditEntry, 'action' | 'target' | 'actor' | 'data'>): AuditRefs {
  const out: AuditRefs = {
    sandbox: null,
    session: null,
    approval: null,
    host: null,
    change: null,
    playbook: null,
  };
  const kind = TARGET_KIND[e.action.split('.')[0] ?? ''];
  if (kind && e.target) out[kind] = e.target;
  const data = e.data && typeof e.data === 'object' ? (e.data as Record<string, unknown>) : {};
  for (const [key, k] of DATA_KEYS) out[k] ??= str(data[key]);
  // The built-in agent acts as agent:<session id>.
  if (e.actor.door === 'agent' && e.actor.id) out.session ??= e.actor.id;
  return out;
}
