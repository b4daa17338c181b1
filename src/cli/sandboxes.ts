/** CLI: sandboxes, snapshots, bases and approvals. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Approval } from '../shared/contract/approvals.ts';
import type { Sandbox, Snapshot } from '../shared/contract/sandboxes.ts';
import type { Task } from '../shared/contract/tasks.ts';
import { FluidError } from '../shared/errors.ts';
import type { Actor } from '../shared/rpc.ts';
import type { Core } from '../core/createCore.ts';
import { claimSweepSpawn, describeSweep, dueForSweep } from '../core/sandboxes/expiry.ts';
import type { Command, Ctx } from './command.ts';
import { table, UsageError } from './io.ts';
import { confirmOnTerminal, isInteractive, withPresence } from './presence.ts';
import type { PresenceProof } from '../shared/contract/presence.ts';

const EXPIRY: Actor = { door: 'system', id: 'expiry' };

/** Destroy every sandbox past its time to live (the hosts' own expiries first). Returns the names. */
async function sweep(core: Core): Promise<string[]> {
  const ids = await core.sandboxes.sweepExpired(EXPIRY);
  return ids.map((id) => core.sandboxes.store.maybe(id)?.name ?? id);
}

/**
 * Every command's share of expiry: when a sandbox is past its time to live (one indexed query), start
 * `fluid sandbox sweep` as a detached process and go on: the command's own output is not delayed.
 * One sweeper per minute at most, however many commands run (a lease in the database).
 */
export function sweepInBackground(core: Core, command: string): void {
  if (command === 'sandbox sweep') return;
  try {
    if (!dueForSweep(core.db, core.clock.now().toISOString())) return;
    if (!claimSweepSpawn(core.db, Date.now())) return;
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        process.argv[1]!,
        'sandbox',
        'sweep',
        '--background',
        '--data-dir',
        core.paths.dataDir,
      ],
      { detached: true, stdio: 'ignore', env: process.env, cwd: process.cwd() },
    );
    child.on('error', (err) => core.log.warn('could not start the expiry sweep', { err }));
    child.unref();
  } catch (err) {
    core.log.warn('could not check for expired sandboxes', { err });
  }
}

/** Follow a task to its end, showing progress on stderr unless --json; Ctrl+C cancels it. */
export async function follow(ctx: Ctx, task: Task): Promise<Task> {
  let last = '';
  let final = task;
  const onSigint = () => {
    ctx.io.err('\nCancelling…');
    void ctx.client.call('tasks.cancel', { id: task.id }).catch(() => {});
  };
  process.once('SIGINT', onSigint);
  try {
    for await (const t of ctx.client.stream('tasks.watch', { id: task.id })) {
      final = t;
      const line = `${t.progress === null ? '' : `${Math.round(t.progress * 100)}% `}${t.message}`;
      if (!ctx.io.json && line !== last && t.status === 'running') ctx.io.err(`  ${line}`);
      last = line;
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  return final;
}

export function taskOutcome(t: Task): void {
  if (t.status === 'succeeded') return;
  if (t.error) throw new FluidError(t.error.code, t.error.message, t.error.data);
  throw new FluidError('CANCELLED', `${t.title} ended ${t.status}.`);
}

const need = (v: string | undefined, usage: string): string => {
  if (!v) throw new UsageError(usage);
  return v;
};

const sandboxRows = (s: Sandbox[]) =>
  s.map((x) => ({
    name: x.name,
    state: x.state,
    host: x.hostName,
    source: x.sourceName,
    ip: x.ip,
    size: `${x.vcpus}/${x.memoryMiB}M`,
    expires: x.expiresAt ? x.expiresAt.replace(/\.\d+Z$/, 'Z') : '-',
    path: x.startPath
      ? `${x.startPath} ${x.timings.total ? `${(x.timings.total / 1000).toFixed(1)}s` : ''}`.trim()
      : '-',
  }));

const describe = (s: Sandbox): string =>
  [
    `${s.name}  (${s.id})`,
    `  state:     ${s.state}${s.error ? ` — ${s.error.code}: ${s.error.message}` : ''}`,
    `  host:      ${s.hostName}   source: ${s.sourceName}   base: ${s.baseFingerprint ? s.baseFingerprint.slice(0, 16) + '…' : '-'}`,
    `  address:   ${s.ip ?? '-'}   mac: ${s.mac ?? '-'}   host key: ${s.hostKeyFingerprint ?? '-'}`,
    `  size:      ${s.vcpus} vCPU, ${s.memoryMiB} MiB   ttl: ${s.ttlMinutes ?? '-'} min (expires ${s.expiresAt ?? 'never'})`,
    `  started:   ${s.startPath ?? '-'}${s.startPathReason ? ` (${s.startPathReason})` : ''}`,
    `  timings:   ${
      Object.entries(s.timings)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}s`)
        .join(', ') || '-'
    }`,
    `  egress:    ${s.egressAllow.length ? s.egressAllow.join(', ') : 'nothing allowed'}`,
    ...(s.placement ? [`  placement: ${s.placement.reason}`] : []),
    ...(s.session ? [`  session:   ${s.session.title} (${s.session.id}, ${s.session.status})`] : []),
  ].join('\n');

export const sandboxCommands: Record<string, Command> = {
  'sandbox create': {
    summary: 'Clone a source VM into a disposable sandbox.',
    usage:
      'fluid sandbox create --source VM [--host H] [--name N] [--vcpus N] [--memory MiB] [--ttl MIN] [--allow DEST]... [--start auto|restore|cold] [--refresh-base] [--detach]',
    options: {
      source: { type: 'string' },
      host: { type: 'string' },
      name: { type: 'string' },
      vcpus: { type: 'string' },
      memory: { type: 'string' },
      ttl: { type: 'string' },
      allow: { type: 'string', multiple: true },
      start: { type: 'string' },
      'refresh-base': { type: 'boolean' },
      detach: { type: 'boolean' },
    },
    run: async (ctx) => {
      const v = ctx.values;
      const num = (k: string) => (v[k] === undefined ? undefined : Number(v[k]));
      const task = await ctx.client.call('sandboxes.create', {
        source: need(
          (v.source as string) ?? ctx.args[0],
          'Which source VM? fluid sandbox create --source NAME [--host H]',
        ),
        host: v.host as string | undefined,
        name: v.name as string | undefined,
        vcpus: num('vcpus'),
        memoryMiB: num('memory'),
        ttlMinutes: num('ttl'),
        allow: (v.allow as string[] | undefined) ?? [],
        start: (v.start as 'auto' | 'restore' | 'cold' | undefined) ?? 'auto',
        refreshBase: !!v['refresh-base'],
      });
      const made = task.target
        ? await ctx.client.call('sandboxes.get', { sandbox: task.target }).catch(() => null)
        : null;
      if (v.detach) {
        ctx.io.result(
          task,
          () =>
            `Creating in the background: task ${task.id} (sandbox ${task.target}).${made?.placement ? `\n${made.placement.reason}` : ''}`,
        );
        return;
      }
      if (made?.placement && !ctx.io.json) ctx.io.err(`  ${made.placement.reason}`);
      const t = await follow(ctx, task);
      taskOutcome(t);
      const s = t.result as Sandbox;
      ctx.io.result(s, describe);
    },
  },
  'sandbox list': {
    summary: 'List sandboxes.',
    usage: 'fluid sandbox list [--host H] [--all] [--json]',
    options: { host: { type: 'string' }, all: { type: 'boolean' } },
    run: async (ctx) => {
      const s = await ctx.client.call('sandboxes.list', {
        host: ctx.values.host as string | undefined,
        includeDestroyed: !!ctx.values.all,
      });
      ctx.io.result(s, (x: Sandbox[]) =>
        x.length
          ? table(sandboxRows(x), [
              ['name', 'name'],
              ['state', 'state'],
              ['host', 'host'],
              ['source', 'source'],
              ['ip', 'ip'],
              ['size', 'cpu/mem'],
              ['path', 'start'],
              ['expires', 'expires'],
            ])
          : 'No sandboxes.',
      );
    },
  },
  'sandbox get': {
    summary: 'One sandbox in detail.',
    usage: 'fluid sandbox get <sandbox> [--json]',
    run: async (ctx) => {
      const s = await ctx.client.call('sandboxes.get', {
        sandbox: need(ctx.args[0], 'fluid sandbox get <sandbox>'),
      });
      ctx.io.result(s, describe);
    },
  },
  'sandbox start': {
    summary: 'Start a stopped sandbox.',
    usage: 'fluid sandbox start <sandbox>',
    run: async (ctx) => {
      const t = await follow(
        ctx,
        await ctx.client.call('sandboxes.start', {
          sandbox: need(ctx.args[0], 'fluid sandbox start <sandbox>'),
        }),
      );
      taskOutcome(t);
      ctx.io.result(t.result, describe);
    },
  },
  'sandbox stop': {
    summary: 'Shut a sandbox down (--force: power off).',
    usage: 'fluid sandbox stop <sandbox> [--force]',
    options: { force: { type: 'boolean' } },
    run: async (ctx) => {
      const s = await ctx.client.call('sandboxes.stop', {
        sandbox: need(ctx.args[0], 'fluid sandbox stop <sandbox>'),
        force: !!ctx.values.force,
      });
      ctx.io.result(s, () => `Stopped ${s.name}.`);
    },
  },
  'sandbox destroy': {
    summary: 'Destroy a sandbox and everything of it on its host.',
    usage: 'fluid sandbox destroy <sandbox>',
    run: async (ctx) => {
      const s = await ctx.client.call('sandboxes.destroy', {
        sandbox: need(ctx.args[0], 'fluid sandbox destroy <sandbox>'),
      });
      ctx.io.result(s, () => `Destroyed ${s.name}.`);
    },
  },
  'sandbox extend': {
    summary: "Set a sandbox's time to live (minutes from now).",
    usage: 'fluid sandbox extend <sandbox> --ttl MIN',
    options: { ttl: { type: 'string' } },
    run: async (ctx) => {
      const s = await ctx.client.call('sandboxes.extend', {
        sandbox: need(ctx.args[0], 'fluid sandbox extend <sandbox> --ttl MIN'),
        ttlMinutes: Number(need(ctx.values.ttl as string, 'fluid sandbox extend <sandbox> --ttl MIN')),
      });
      ctx.io.result(s, () => `${s.name} now expires at ${s.expiresAt}.`);
    },
  },
  'sandbox exec': {
    summary:
      'Run a command or script as root in a sandbox; output streams live, the exit code is the command’s.',
    usage: 'fluid sandbox exec <sandbox> [--timeout SECONDS] [--max-output BYTES] [--json] -- <command…>',
    options: { timeout: { type: 'string' }, 'max-output': { type: 'string' } },
    run: async (ctx) => {
      const [sandbox, ...words] = ctx.args;
      need(sandbox, 'fluid sandbox exec <sandbox> -- <command>');
      const command = words.join(' ');
      if (!command) throw new UsageError('What should run? fluid sandbox exec <sandbox> -- <command>');
      const opts = {
        sandbox: sandbox!,
        command,
        timeoutSeconds: Number(ctx.values.timeout ?? 600),
        maxOutputBytes: Number(ctx.values['max-output'] ?? 1024 * 1024),
      };
      if (ctx.io.json) {
        const r = await ctx.client.call('sandboxes.exec', opts);
        ctx.io.result(r, () => '');
        return r.exitCode ?? 1;
      }
      let code = 1;
      for await (const item of ctx.client.stream('sandboxes.execStream', opts)) {
        if (item.kind === 'stdout') process.stdout.write(item.data);
        else if (item.kind === 'stderr') process.stderr.write(item.data);
        else {
          code = item.result.exitCode ?? (item.result.timedOut ? 124 : 1);
          if (item.result.timedOut)
            ctx.io.err(`fluid: the command timed out after ${opts.timeoutSeconds} s and was killed`);
        }
      }
      return code;
    },
  },
  'sandbox runs': {
    summary: 'Commands run in a sandbox from any door (the app, the CLI, agents), newest first.',
    usage: 'fluid sandbox runs [<sandbox>] [--limit N] [--json]',
    options: { limit: { type: 'string' } },
    run: async (ctx) => {
      const runs = await ctx.client.call('sandboxes.runs', {
        sandbox: ctx.args[0],
        limit: Number(ctx.values.limit ?? 50),
      });
      ctx.io.result(runs, () =>
        runs.length
          ? table(
              runs.map((r) => ({
                started: r.startedAt.replace(/\.\d+Z$/, 'Z'),
                sandbox: r.sandboxName,
                by: `${r.startedBy.door}:${r.startedBy.id}`,
                status: r.status === 'exited' ? `exit ${r.exitCode ?? '?'}` : r.status,
                took: `${(r.durationMs / 1000).toFixed(1)}s`,
                output: `${r.stdoutBytes + r.stderrBytes} B`,
                command: r.command.split('\n')[0]!.slice(0, 60),
              })),
              [
                ['started', 'started'],
                ['sandbox', 'sandbox'],
                ['by', 'by'],
                ['status', 'status'],
                ['took', 'took'],
                ['output', 'output'],
                ['command', 'command'],
              ],
            )
          : 'No commands yet.',
      );
    },
  },
  'sandbox read': {
    summary: 'Print a file from a sandbox (read as root).',
    usage: 'fluid sandbox read <sandbox> <path> [--max-bytes N] [--json]',
    options: { 'max-bytes': { type: 'string' } },
    run: async (ctx) => {
      const r = await ctx.client.call('sandboxes.readFile', {
        sandbox: need(ctx.args[0], 'fluid sandbox read <sandbox> <path>'),
        path: need(ctx.args[1], 'fluid sandbox read <sandbox> <path>'),
        maxBytes: Number(ctx.values['max-bytes'] ?? 16 * 1024 * 1024),
      });
      if (ctx.io.json) ctx.io.result(r, () => '');
      else process.stdout.write(r.encoding === 'base64' ? Buffer.from(r.content, 'base64') : r.content);
    },
  },
  'sandbox write': {
    summary: 'Write a file into a sandbox as root (from --file, or stdin).',
    usage: 'fluid sandbox write <sandbox> <path> [--file LOCAL] [--mode 0644]',
    options: { file: { type: 'string' }, mode: { type: 'string' } },
    run: async (ctx) => {
      const data = ctx.values.file ? readFileSync(ctx.values.file as string) : readFileSync(0);
      const r = await ctx.client.call('sandboxes.writeFile', {
        sandbox: need(ctx.args[0], 'fluid sandbox write <sandbox> <path>'),
        path: need(ctx.args[1], 'fluid sandbox write <sandbox> <path>'),
        content: data.toString('base64'),
        encoding: 'base64',
        mode: ctx.values.mode as string | undefined,
      });
      ctx.io.result(r, () => `Wrote ${r.size} bytes to ${r.path}.`);
    },
  },
  'sandbox edit': {
    summary: 'Replace one unique occurrence of a string in a file.',
    usage: 'fluid sandbox edit <sandbox> <path> --old TEXT --new TEXT',
    options: { old: { type: 'string' }, new: { type: 'string' } },
    run: async (ctx) => {
      const r = await ctx.client.call('sandboxes.editFile', {
        sandbox: need(ctx.args[0], 'fluid sandbox edit <sandbox> <path> --old TEXT --new TEXT'),
        path: need(ctx.args[1], 'fluid sandbox edit <sandbox> <path> --old TEXT --new TEXT'),
        oldString: need(ctx.values.old as string, '--old TEXT is required'),
        newString: (ctx.values.new as string | undefined) ?? '',
      });
      ctx.io.result(r, () => `Edited ${r.path}.`);
    },
  },
  'sandbox shell': {
    summary: 'An interactive shell in a sandbox.',
    usage: 'fluid sandbox shell <sandbox>',
    run: async (ctx) => {
      const sandbox = need(ctx.args[0], 'fluid sandbox shell <sandbox>');
      const tty = process.stdin.isTTY;
      const size = () => ({ cols: process.stdout.columns || 120, rows: process.stdout.rows || 32 });
      let sessionId: string | null = null;
      let code: number | null = 0;
      if (tty) process.stdin.setRawMode(true);
      const onData = (d: Buffer) => {
        if (sessionId)
          void ctx.client
            .call('sandboxes.shellInput', { sessionId, data: d.toString('utf8') })
            .catch(() => {});
      };
      const onResize = () => {
        if (sessionId) void ctx.client.call('sandboxes.shellInput', { sessionId, ...size() }).catch(() => {});
      };
      try {
        for await (const item of ctx.client.stream('sandboxes.shell', { sandbox, ...size() })) {
          if (item.kind === 'open') {
            sessionId = item.sessionId;
            process.stdin.on('data', onData);
            process.stdout.on('resize', onResize);
            process.stdin.resume();
          } else if (item.kind === 'data') process.stdout.write(item.data);
          else code = item.code;
        }
      } finally {
        process.stdin.off('data', onData);
        process.stdout.off('resize', onResize);
        if (tty) process.stdin.setRawMode(false);
        process.stdin.pause();
      }
      return code ?? 0;
    },
  },
  'sandbox allow': {
    summary: 'Let a sandbox reach a destination through the egress proxy (host, host:port, *.domain).',
    usage: 'fluid sandbox allow <sandbox> <destination>',
    run: async (ctx) => {
      const sandbox = need(ctx.args[0], 'fluid sandbox allow <sandbox> <destination>');
      const destination = need(ctx.args[1], 'fluid sandbox allow <sandbox> <destination>');
      const s = await withPresence(ctx, (presence) =>
        ctx.client.call('sandboxes.egressAllow', { sandbox, destination, presence }),
      );
      ctx.io.result(s, () => `${s.name} may reach: ${s.egressAllow.join(', ')}`);
    },
  },
  'sandbox revoke': {
    summary: "Take a destination off a sandbox's egress allowlist.",
    usage: 'fluid sandbox revoke <sandbox> <destination>',
    run: async (ctx) => {
      const s = await ctx.client.call('sandboxes.egressRevoke', {
        sandbox: need(ctx.args[0], 'fluid sandbox revoke <sandbox> <destination>'),
        destination: need(ctx.args[1], 'fluid sandbox revoke <sandbox> <destination>'),
      });
      ctx.io.result(s, () => `${s.name} may reach: ${s.egressAllow.join(', ') || 'nothing'}`);
    },
  },
  'sandbox reconcile': {
    summary: "Compare the database with the hosts and clean Fluid's orphans.",
    usage: 'fluid sandbox reconcile [--host H] [--json]',
    options: { host: { type: 'string' } },
    run: async (ctx) => {
      const r = await ctx.client.call('sandboxes.reconcile', { host: ctx.values.host as string | undefined });
      ctx.io.result(r, () =>
        r.hosts
          .map((h) =>
            h.error
              ? `${h.hostName}: could not reconcile: ${h.error}`
              : `${h.hostName}: ${h.cleaned.length ? `cleaned ${h.cleaned.join('; ')}` : 'nothing to clean'}${h.adopted.length ? `; adopted ${h.adopted.join('; ')}` : ''}`,
          )
          .join('\n'),
      );
      return r.hosts.some((h) => h.error) ? 1 : 0;
    },
  },
  'sandbox sweep': {
    summary:
      'Destroy sandboxes past their time to live now (any command starts this in the background when one is due).',
    usage: 'fluid sandbox sweep [--json]',
    options: { background: { type: 'boolean' } },
    run: async (ctx) => {
      const names = await sweep(ctx.core);
      if (!ctx.values.background) ctx.io.result({ destroyed: names }, () => describeSweep(names));
    },
  },
  'snapshot create': {
    summary: 'Snapshot a sandbox (disk, plus memory when it runs).',
    usage: 'fluid snapshot create <sandbox> <name> [--no-memory]',
    options: { 'no-memory': { type: 'boolean' } },
    run: async (ctx) => {
      const s = await ctx.client.call('snapshots.create', {
        sandbox: need(ctx.args[0], 'fluid snapshot create <sandbox> <name>'),
        name: need(ctx.args[1], 'fluid snapshot create <sandbox> <name>'),
        memory: !ctx.values['no-memory'],
      });
      ctx.io.result(s, () => `Snapshot ${s.name} (${s.kind}).`);
    },
  },
  'snapshot list': {
    summary: "A sandbox's snapshots.",
    usage: 'fluid snapshot list <sandbox> [--json]',
    run: async (ctx) => {
      const s = await ctx.client.call('snapshots.list', {
        sandbox: need(ctx.args[0], 'fluid snapshot list <sandbox>'),
      });
      ctx.io.result(s, (x: Snapshot[]) =>
        x.length
          ? table(x, [
              ['name', 'name'],
              ['kind', 'kind'],
              ['createdAt', 'created'],
            ])
          : 'No snapshots.',
      );
    },
  },
  'snapshot restore': {
    summary: 'Roll a sandbox back to a snapshot.',
    usage: 'fluid snapshot restore <sandbox> <name>',
    run: async (ctx) => {
      const s = await ctx.client.call('snapshots.restore', {
        sandbox: need(ctx.args[0], 'fluid snapshot restore <sandbox> <name>'),
        snapshot: need(ctx.args[1], 'fluid snapshot restore <sandbox> <name>'),
      });
      ctx.io.result(s, () => `${s.name} is back at ${ctx.args[1]} (${s.state}).`);
    },
  },
  'snapshot delete': {
    summary: 'Delete a snapshot.',
    usage: 'fluid snapshot delete <sandbox> <name>',
    run: async (ctx) => {
      const r = await ctx.client.call('snapshots.delete', {
        sandbox: need(ctx.args[0], 'fluid snapshot delete <sandbox> <name>'),
        snapshot: need(ctx.args[1], 'fluid snapshot delete <sandbox> <name>'),
      });
      ctx.io.result(r, () => `Deleted ${ctx.args[1]}.`);
    },
  },
  pool: {
    summary:
      'The warm pool: sandboxes kept ready and paused per source (set with `fluid settings set sandboxes.warmPool=...`).',
    usage: 'fluid pool [--json]',
    options: {},
    run: async (ctx) => {
      const p = await ctx.client.call('sandboxes.pool', {});
      ctx.io.result(p, () =>
        p.length
          ? table(
              p.map((x) => ({
                host: x.host,
                source: x.source,
                ready: `${x.ready}/${x.size}`,
                filling: String(x.filling),
                note: x.note ?? '',
              })),
              [
                ['host', 'host'],
                ['source', 'source'],
                ['ready', 'ready'],
                ['filling', 'filling'],
                ['note', 'note'],
              ],
            )
          : 'No warm pool. Keep sandboxes of a source ready with e.g. `fluid settings set sandboxes.warmPool=\'["web-01=2"]\'`.',
      );
    },
  },
  'base list': {
    summary: 'Cached base copies of source VMs.',
    usage: 'fluid base list [--host H] [--json]',
    options: { host: { type: 'string' } },
    run: async (ctx) => {
      const b = await ctx.client.call('bases.list', { host: ctx.values.host as string | undefined });
      ctx.io.result(
        b,
        () =>
          table(
            b.map((x) => ({
              source: x.sourceName,
              state: x.state,
              method: x.method,
              template: x.templateState,
              fingerprint: x.fingerprint.slice(0, 16),
              created: x.createdAt,
            })),
            [
              ['source', 'source'],
              ['state', 'state'],
              ['method', 'method'],
              ['template', 'template'],
              ['fingerprint', 'fingerprint'],
              ['created', 'created'],
            ],
          ) || 'No bases yet.',
      );
    },
  },
  'base refresh': {
    summary: "Take a fresh consistent copy of a source VM's disks.",
    usage: 'fluid base refresh <source> [--host H]',
    options: { host: { type: 'string' } },
    run: async (ctx) => {
      const t = await follow(
        ctx,
        await ctx.client.call('bases.refresh', {
          source: need(ctx.args[0], 'fluid base refresh <source>'),
          host: ctx.values.host as string | undefined,
        }),
      );
      taskOutcome(t);
      ctx.io.result(
        t.result,
        () => `Base refreshed (fingerprint ${(t.result as { fingerprint: string }).fingerprint}).`,
      );
    },
  },
  'base prune': {
    summary: 'Remove base copies and warm templates that no sandbox uses, to free disk on a host.',
    usage: 'fluid base prune --host H [--json]',
    options: { host: { type: 'string' } },
    run: async (ctx) => {
      const r = await ctx.client.call('bases.prune', {
        host: need(ctx.values.host as string | undefined, 'fluid base prune --host H'),
      });
      ctx.io.result(r, () =>
        r.removed.length
          ? `Removed ${r.removed.join(', ')} (${(r.freedBytes / 1024 ** 2).toFixed(0)} MiB).`
          : 'Nothing to remove.',
      );
    },
  },
  'base warm': {
    summary: "Build a source's warm template now, so new sandboxes restore in seconds instead of booting.",
    usage: 'fluid base warm <source> [--host H] [--vcpus N] [--memory MiB]',
    options: { host: { type: 'string' }, vcpus: { type: 'string' }, memory: { type: 'string' } },
    run: async (ctx) => {
      const t = await follow(
        ctx,
        await ctx.client.call('bases.warm', {
          source: need(ctx.args[0], 'fluid base warm <source>'),
          host: ctx.values.host as string | undefined,
          vcpus: ctx.values.vcpus === undefined ? undefined : Number(ctx.values.vcpus),
          memoryMiB: ctx.values.memory === undefined ? undefined : Number(ctx.values.memory),
        }),
      );
      taskOutcome(t);
      const r = t.result as { bootMs: number; saveMs: number };
      ctx.io.result(
        r,
        () =>
          `Warm template ready (booted in ${(r.bootMs / 1000).toFixed(1)} s, saved in ${(r.saveMs / 1000).toFixed(1)} s).`,
      );
    },
  },
  'approval list': {
    summary: 'Approval requests (pending ones wait for you).',
    usage: 'fluid approval list [--status pending|approved|denied|expired|cancelled] [--json]',
    options: { status: { type: 'string' } },
    run: async (ctx) => {
      const a = await ctx.client.call('approvals.list', {
        status: ctx.values.status as Approval['status'] | undefined,
      });
      ctx.io.result(a, (x: Approval[]) =>
        x.length
          ? table(
              x.map((r) => ({
                id: r.id,
                status: r.status,
                kind: r.kind,
                risk: r.risk,
                title: r.title,
                by: `${r.requestedBy.door}:${r.requestedBy.id}`,
                decided: r.decidedBy ? `${r.decidedBy.door}:${r.decidedBy.id}` : '-',
              })),
              [
                ['id', 'id'],
                ['status', 'status'],
                ['kind', 'kind'],
                ['risk', 'risk'],
                ['title', 'title'],
                ['by', 'requested by'],
                ['decided', 'decided by'],
              ],
            )
          : 'No approval requests.',
      );
    },
  },
  ...decideCommand('approve'),
  ...decideCommand('deny'),
};

/** The request as a person should see it before deciding. */
export function describeApproval(a: Approval): string {
  if (a.kind === 'apply') return describeApplyApproval(a);
  const subject = JSON.stringify(a.subject, null, 2).split('\n');
  return [
    `── ${a.kind} request (${a.risk} risk) ${'─'.repeat(Math.max(0, 40 - a.kind.length))}`,
    `  ${a.title}`,
    `  ${a.detail}`,
    ...subject.map((l) => `  ${l}`),
    `  requested by ${a.requestedBy.door}:${a.requestedBy.id} at ${a.createdAt} (id ${a.id})`,
  ].join('\n');
}

/** An apply's subject is its whole bundle: show what a person reviews, and its hash. */
function describeApplyApproval(a: Approval): string {
  const b = a.subject as {
    target?: { name?: string; user?: string; address?: string };
    playbook?: { name?: string; revision?: number; sha256?: string };
    verification?: { status?: string };
    preview?: { changed?: number; tasks?: Array<{ task?: string; changed?: boolean; status?: string }> };
    baseline?: { sha256?: string };
  };
  return [
    `── production apply (${a.risk} risk) ${'─'.repeat(24)}`,
    `  ${a.title}`,
    `  ${a.detail}`,
    `  target:    ${b.target?.name} (${b.target?.user}@${b.target?.address})`,
    `  playbook:  ${b.playbook?.name} revision ${b.playbook?.revision}, sha256 ${b.playbook?.sha256}`,
    `  verified:  ${b.verification?.status}; target baseline ${b.baseline?.sha256}`,
    `  preview:   ${b.preview?.changed} task(s) would change the target:`,
    ...(b.preview?.tasks ?? []).map(
      (t) => `    ${t.changed ? 'CHANGE' : (t.status ?? '').padEnd(6)}  ${t.task}`,
    ),
    `  bundle:    sha256 ${a.subjectHash} (the approval names exactly this)`,
    `  requested by ${a.requestedBy.door}:${a.requestedBy.id} at ${a.createdAt} (id ${a.id})`,
    `  the diffs: fluid change show ${a.id} --diffs`,
  ].join('\n');
}

function decideCommand(decision: 'approve' | 'deny'): Record<string, Command> {
  const verb = decision === 'approve' ? 'Approve' : 'Deny';
  return {
    [`approval ${decision}`]: {
      summary: `${verb} a pending request (a person on a terminal: it shows the request and asks you to confirm).`,
      usage: `fluid approval ${decision} <id> [--note TEXT] [--yes]`,
      options: { note: { type: 'string' }, yes: { type: 'boolean' } },
      run: async (ctx) => {
        const id = need(ctx.args[0], `fluid approval ${decision} <id>`);
        const note = ctx.values.note as string | undefined;
        const yes = !!ctx.values.yes;
        const a = await ctx.client.call('approvals.get', { id });
        if (a.status !== 'pending')
          throw new FluidError(
            'CONFLICT',
            `This request is already ${a.status}${a.decidedBy ? ` (by ${a.decidedBy.door}:${a.decidedBy.id})` : ''}.`,
          );
        let presence: PresenceProof | undefined;
        if (isInteractive()) {
          ctx.io.err(describeApproval(a));
          const strong =
            decision === 'approve' && (a.risk === 'high' || ['egress', 'apply', 'settings'].includes(a.kind));
          const ok =
            yes && !strong ? true : await confirmOnTerminal(`${verb} this request?`, strong ? decision : 'y');
          if (!ok) throw new FluidError('DENIED', 'Not confirmed; the request is still pending.');
          presence = { kind: 'terminal' };
        } else if (yes) presence = { kind: 'unattended' };
        const out = await ctx.client.call('approvals.decide', { id, decision, note, presence });
        ctx.io.result(out, () => `${decision === 'approve' ? 'Approved' : 'Denied'}: ${out.title}`);
      },
    },
  };
}
