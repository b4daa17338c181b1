/**
 * diff_sandbox: the agent (built-in or over MCP) checks its own work the way the person will see it.
 * Read-only: it reads the disk on the host and stores a diff; it can neither include nor exclude
 * items (that is the person's choice) nor touch the baseline.
 */
import { z } from 'zod';
import { FluidError } from '../../shared/errors.ts';
import type { ToolRegistry } from '../agent/tools/registry.ts';
import type { TaskManager } from '../store/tasks.ts';
import { summary, type DiffService } from './service.ts';
import { renderDiff } from './render.ts';

export function registerDiffTool(reg: ToolRegistry, deps: { diff: DiffService; tasks: TaskManager }): void {
  reg.register({
    name: 'diff_sandbox',
    description:
      "What changed on a sandbox's system since Fluid handed it over (or between two of its snapshots): packages, services, users and groups, sudoers, cron, sysctl, kernel modules and files with their content diffs, noise filtered. Read from the sandbox's disk on the host, never through the guest, so it is what the person reviewing the change will see. Use it to check your work before you finish.",
    input: z.object({
      sandbox_id: z.string().min(1).max(128).describe('Sandbox id or name'),
      from_snapshot: z
        .string()
        .min(1)
        .max(128)
        .optional()
        .describe('Compare from this snapshot instead of the baseline'),
      to_snapshot: z
        .string()
        .min(1)
        .max(128)
        .optional()
        .describe('Compare up to this snapshot instead of now'),
      include_content: z.boolean().default(true).describe('Show text diffs of changed files'),
    }),
    readOnly: true,
    risk: 'low',
    summarize: (i) =>
      `diff_sandbox ${i.sandbox_id}${i.from_snapshot ? ` from ${i.from_snapshot}` : ''}${i.to_snapshot ? ` to ${i.to_snapshot}` : ''}`,
    run: async (i, ctx) => {
      const task = deps.diff.run(
        { sandbox: i.sandbox_id, from: i.from_snapshot, to: i.to_snapshot, method: 'auto' },
        ctx.actor,
      );
      const done = await deps.tasks.wait(task.id, ctx.signal);
      if (done.status !== 'succeeded')
        throw new FluidError(
          done.error?.code ?? 'INTERNAL',
          done.error?.message ?? `The diff ${done.status}.`,
        );
      const id = (done.result as { id: string }).id;
      const d = deps.diff.get(i.sandbox_id, id, false);
      return {
        content: renderDiff(d, { contents: i.include_content, maxDiffLines: 80 }),
        data: { ...summary(d), items: d.items, warnings: d.warnings, excluded: d.excluded },
      };
    },
  });
}
