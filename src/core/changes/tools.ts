/**
 * request_apply: the agent (built-in or over MCP, through the one tool registry) submits its
 * sandbox's change for a person's review and gets back the change id and its status. It may wait for
 * the decision; it can never make it: approvals are decided only at a person's door, and applying is
 * a person's act too. Nothing here reaches production except the read-only preview.
 */
import { z } from 'zod';
import type { Change } from '../../shared/contract/changes.ts';
import { FluidError } from '../../shared/errors.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { ToolRegistry } from '../agent/tools/registry.ts';
import type { TaskManager } from '../store/tasks.ts';
import type { TargetService } from '../targets/service.ts';
import type { ChangeService } from './service.ts';

const brief = (c: Change) => ({
  change_id: c.id,
  status: c.status,
  status_detail: c.statusDetail,
  bundle_sha256: c.sha256,
  target: c.target.name,
  playbook: `${c.playbook.name} revision ${c.playbook.revision}`,
  verification: c.verification ? `${c.verification.status}${c.verification.stale ? ' (stale)' : ''}` : null,
  preview: c.preview
    ? {
        tasks_that_would_change: c.preview.changed,
        tasks: c.preview.tasks.map((t) => `${t.status}${t.changed ? ' (would change)' : ''}: ${t.task}`),
        warnings: c.preview.warnings,
      }
    : null,
  approval: c.approval ? { status: c.approval.status, decided_via: c.approval.decidedVia } : null,
  warnings: c.warnings,
  error: c.error?.message ?? null,
});

export function registerChangeTools(
  reg: ToolRegistry,
  deps: { changes: ChangeService; targets: TargetService; approvals: ApprovalService; tasks: TaskManager },
): void {
  reg.register({
    name: 'list_targets',
    description:
      'List the production targets a change can be submitted to (name, address, the source VM each is the production copy of).',
    input: z.object({}),
    readOnly: true,
    risk: 'low',
    summarize: () => 'list_targets',
    run: async () => {
      const targets = deps.targets.list().map((t) => ({
        name: t.name,
        address: `${t.user}@${t.address}:${t.port}`,
        production_copy_of: t.sourceVm ? `${t.sourceVm.vm} on ${t.sourceVm.hostName}` : null,
      }));
      return { content: JSON.stringify(targets, null, 2), data: { targets } };
    },
  });

  reg.register({
    name: 'request_apply',
    description:
      "Submit your sandbox's change for a person's review, to be applied to a production target. Fluid verifies the sandbox's playbook (if not done yet), fingerprints the target and previews the playbook there in check mode (read-only), seals everything into one bundle and asks a person to approve exactly that bundle. Returns the change id and status. With wait_for_decision you wait (up to wait_minutes) for the person's decision; you cannot approve or apply it yourself.",
    input: z.object({
      sandbox_id: z.string().min(1).max(128).describe('The sandbox whose playbook is the change'),
      target: z.string().min(1).max(128).describe('The production target (see list_targets)'),
      title: z.string().min(1).max(200).optional().describe('One line a reviewer reads first'),
      wait_for_decision: z.boolean().default(false),
      wait_minutes: z.number().int().min(1).max(120).default(10),
    }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `request_apply ${i.sandbox_id} → ${i.target}${i.title ? `: ${i.title}` : ''}`,
    run: async (i, ctx) => {
      const { change, task } = deps.changes.submit(
        { sandbox: i.sandbox_id, target: i.target, title: i.title },
        ctx.actor,
        ctx.sessionId,
      );
      const done = await deps.tasks.wait(task.id, ctx.signal);
      if (ctx.signal.aborted) {
        deps.tasks.cancel(task.id);
        throw new FluidError('CANCELLED', 'Cancelled.');
      }
      let c = deps.changes.get(change.id);
      if (done.status !== 'succeeded')
        return {
          content: `The change could not be submitted: ${done.error?.message ?? done.status}\n${JSON.stringify(brief(c), null, 2)}`,
          data: brief(c),
          isError: true,
        };
      if (i.wait_for_decision && c.approval) {
        const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(i.wait_minutes * 60_000)]);
        try {
          await deps.approvals.wait(c.approval.id, signal);
        } catch (e) {
          if (ctx.signal.aborted) throw e;
        }
        c = deps.changes.get(change.id);
      }
      const head =
        c.status === 'awaiting-approval'
          ? `Change ${c.id} is sealed (bundle ${c.sha256}) and waits for a person's approval.`
          : `Change ${c.id}: ${c.status} — ${c.statusDetail}`;
      return { content: `${head}\n${JSON.stringify(brief(c), null, 2)}`, data: brief(c) };
    },
  });

  reg.register({
    name: 'get_change',
    description: 'The status of a change you submitted with request_apply: approval, applies, their results.',
    input: z.object({ change_id: z.string().min(1).max(128) }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `get_change ${i.change_id}`,
    run: async (i) => {
      const c = deps.changes.get(i.change_id);
      const out = {
        ...brief(c),
        applies: c.applies.map((a) => ({ status: a.status, summary: a.summary, at: a.startedAt })),
      };
      return { content: JSON.stringify(out, null, 2), data: out };
    },
  });
}
