/** The whole contract: every member any door can reach. */
import { auditContract } from './audit.ts';
import { diffContract } from './diff.ts';
import { hostsContract } from './hosts.ts';
import { settingsContract } from './settings.ts';
import { systemContract } from './system.ts';
import { approvalsContract } from './approvals.ts';
import { sandboxesContract } from './sandboxes.ts';
import { agentContract } from './agent.ts';
import { tasksContract } from './tasks.ts';
import { presenceContract } from './presence.ts';
import { playbooksContract } from './playbooks.ts';
import { changesContract } from './changes.ts';
import { tokensContract } from './tokens.ts';

export const contract = {
  ...systemContract,
  ...diffContract,
  ...tasksContract,
  ...auditContract,
  ...settingsContract,
  ...hostsContract,
  ...approvalsContract,
  ...sandboxesContract,
  ...agentContract,
  ...presenceContract,
  ...playbooksContract,
  ...changesContract,
  ...tokensContract,
};
export type Contract = typeof contract;

export * from './common.ts';
export * from './diff.ts';
export * from './tasks.ts';
export * from './audit.ts';
export * from './settings.ts';
export * from './hosts.ts';
export * from './system.ts';
export * from './approvals.ts';
export * from './sandboxes.ts';
export * from './agent.ts';
export * from './presence.ts';
export * from './playbooks.ts';
export * from './changes.ts';
export * from './tokens.ts';
