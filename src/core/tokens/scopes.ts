/**
 * What an API token's scope reaches. Checked by the core for every call, stream and event an HTTP
 * actor sends (createCore.serve), before the member's own rules (person-only decisions, presence).
 *
 * - `agent`: this list and nothing else. A member added to the contract stays out of an agent's reach
 *   until it is named here: the default is no.
 * - `operator`: every member; the core's own rules still apply (an operator is not a person: it
 *   decides only with an unattended presence, while a person allows it, and never creates tokens).
 */
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';

/** Calls and streams an agent token may use. */
export const AGENT_MEMBERS: ReadonlySet<string> = new Set([
  'system.info',
  // tasks (its own long work: progress, cancel)
  'tasks.list',
  'tasks.get',
  'tasks.cancel',
  'tasks.watch',
  // sandboxes: create, use, snapshot, destroy (egressAllow is a person's decision)
  'sandboxes.create',
  'sandboxes.list',
  'sandboxes.get',
  'sandboxes.start',
  'sandboxes.stop',
  'sandboxes.destroy',
  'sandboxes.extend',
  'sandboxes.exec',
  'sandboxes.execStream',
  'sandboxes.readFile',
  'sandboxes.listDir',
  'sandboxes.writeFile',
  'sandboxes.editFile',
  'sandboxes.shell',
  'sandboxes.shellInput',
  'sandboxes.egressRevoke',
  'snapshots.create',
  'snapshots.list',
  'snapshots.restore',
  'snapshots.delete',
  // what can be cloned, and where
  'sources.list',
  'hosts.list',
  'hosts.get',
  'hosts.capacity',
  'bases.list',
  // the system diff (reading; the include/exclude choices are the reviewer's)
  'diff.run',
  'diff.get',
  'diff.list',
  'diff.baseline',
  // playbooks: write, generate, verify (export is not here: it can write held secrets into a vault
  // file under a password of the caller's choosing)
  'playbooks.list',
  'playbooks.get',
  'playbooks.create',
  'playbooks.save',
  'playbooks.validate',
  'playbooks.revisions',
  'playbooks.revisionDiff',
  'playbooks.file',
  'playbooks.generate',
  'playbooks.verify',
  'playbooks.verification',
  'playbooks.verifications',
  // changes: submit for review and follow them; applying is a person's
  'targets.list',
  'targets.get',
  'changes.submit',
  'changes.get',
  'changes.list',
  'changes.bundle',
  'changes.applies',
  'changes.applyGet',
  'changes.watchApply',
  // asking a person
  'approvals.list',
  'approvals.get',
  'approvals.request',
  'approvals.ask',
  'tools.list',
  'policy.check',
]);

/** Events an agent token may subscribe to. */
export const AGENT_EVENTS: ReadonlySet<string> = new Set([
  'tasks.changed',
  'sandboxes.changed',
  'approvals.changed',
  'diff.changed',
  'playbooks.changed',
  'changes.changed',
  'targets.changed',
]);

/** May this actor use the member? Only HTTP actors are limited here. */
export function mayUse(actor: Actor, member: string, kind: 'call' | 'stream' | 'event'): boolean {
  if (actor.door !== 'http') return true;
  if (actor.scope === 'operator') return true;
  if (actor.scope !== 'agent') return false;
  return kind === 'event' ? AGENT_EVENTS.has(member) : AGENT_MEMBERS.has(member);
}

/** Throws DENIED (HTTP 403) when the actor's token does not reach the member. */
export function authorize(actor: Actor, member: string, kind: 'call' | 'stream' | 'event'): void {
  if (mayUse(actor, member, kind)) return;
  throw new FluidError(
    'DENIED',
    actor.scope === 'agent'
      ? `An agent token cannot use ${member}: agents ask and never decide, change settings or rules, or reach secrets. A person does this in the Fluid app, the web UI or on a terminal.`
      : `This token (${actor.id}) cannot use ${member}.`,
    { member, scope: actor.scope ?? null },
  );
}

/** Members an agent may use on any sandbox (listing and looking one up). */
const ANY_SANDBOX = new Set(['sandboxes.get', 'sandboxes.list']);

/**
 * An agent token works only in the sandboxes it created: commands, files, snapshots, diffs,
 * playbooks and changes of another agent's (or a person's) sandbox are refused, so agents sharing a
 * server cannot read or spoil each other's work. Checks the `sandbox` (and an ask's `sandboxId`) input.
 */
export function ownSandboxOnly(
  actor: Actor,
  member: string,
  input: unknown,
  lookup: (ref: string) => { id: string; name: string; createdBy: { door: string; id: string } },
): void {
  if (actor.door !== 'http' || actor.scope !== 'agent' || ANY_SANDBOX.has(member)) return;
  const i = (input ?? {}) as { sandbox?: unknown; sandboxId?: unknown };
  const ref =
    typeof i.sandbox === 'string' ? i.sandbox : typeof i.sandboxId === 'string' ? i.sandboxId : null;
  if (ref === null) return;
  const sb = lookup(ref);
  if (sb.createdBy.door !== actor.door || sb.createdBy.id !== actor.id)
    throw new FluidError(
      'DENIED',
      `The sandbox ${sb.name} was not created with this token (${actor.id}): an agent token works only in its own sandboxes.`,
      { member, sandbox: sb.id },
    );
}
