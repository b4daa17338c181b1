/** CLI: `fluid diff` — what changed on a sandbox, read from its disk on the host. */
import type { Diff } from '../shared/contract/diff.ts';
import { renderDiff } from '../core/diff/render.ts';
import type { Command } from './command.ts';
import { UsageError } from './io.ts';
import { follow, taskOutcome } from './sandboxes.ts';

const USAGE =
  'fluid diff <sandbox> [--from SNAP] [--to SNAP] [--json] [--show-noise] [--no-content] [--method auto|fast|walk]\n' +
  '       fluid diff <sandbox> --last [--json] [--show-noise]            (the latest stored diff, not read again)\n' +
  '       fluid diff <sandbox> --exclude ID... | --include ID...         (what the change carries; ids from the output)';

const list = (v: unknown): string[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => String(x).split(',')).filter(Boolean);

export const diffCommands: Record<string, Command> = {
  diff: {
    summary:
      'What changed on a sandbox since Fluid handed it over (or between two snapshots), grouped by kind.',
    usage: USAGE,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      'show-noise': { type: 'boolean' },
      'no-content': { type: 'boolean' },
      method: { type: 'string' },
      last: { type: 'boolean' },
      exclude: { type: 'string', multiple: true },
      include: { type: 'string', multiple: true },
    },
    run: async (ctx) => {
      const sandbox = ctx.args[0];
      if (!sandbox || ctx.args.length > 1) throw new UsageError(`Which sandbox?\n${USAGE}`);
      const exclude = list(ctx.values.exclude);
      const include = list(ctx.values.include);
      if (exclude.length || include.length) {
        let r = { excluded: [] as string[] };
        if (exclude.length)
          r = await ctx.client.call('diff.select', { sandbox, items: exclude, included: false });
        if (include.length)
          r = await ctx.client.call('diff.select', { sandbox, items: include, included: true });
        ctx.io.result(r, () =>
          r.excluded.length
            ? `Excluded from the change: ${r.excluded.join(', ')}`
            : 'Every item is included in the change.',
        );
        return 0;
      }
      const method = (ctx.values.method as string | undefined) ?? 'auto';
      if (!['auto', 'fast', 'walk'].includes(method))
        throw new UsageError(`--method is auto, fast or walk.\n${USAGE}`);
      let diffId: string | undefined;
      if (!ctx.values.last) {
        const task = await ctx.client.call('diff.run', {
          sandbox,
          from: ctx.values.from as string | undefined,
          to: ctx.values.to as string | undefined,
          method: method as 'auto' | 'fast' | 'walk',
        });
        const done = await follow(ctx, task);
        taskOutcome(done);
        diffId = (done.result as { id: string }).id;
      }
      const d = await ctx.client.call('diff.get', {
        sandbox,
        diff: diffId,
        showNoise: !!ctx.values['show-noise'],
      });
      ctx.io.result(d, (x: Diff) =>
        renderDiff(x, {
          contents: !ctx.values['no-content'],
          color: !!process.stdout.isTTY && !process.env.NO_COLOR,
        }),
      );
      return 0;
    },
  },
};
