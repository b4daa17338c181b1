/**
 * `fluid` — the headless door. Every command goes through the same contract and router as the app.
 * Exit codes: 0 success, 1 failure (or a check that failed), 2 usage error.
 */
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Host, Preflight, Vm } from '../shared/contract/hosts.ts';
import type { Task } from '../shared/contract/tasks.ts';
import type { AuditVerify } from '../shared/contract/audit.ts';
import { FluidError } from '../shared/errors.ts';
import { createCore, type Core } from '../core/createCore.ts';
import { connectInProcess } from '../core/doors/inprocess.ts';
import { bytes, createIo, printError, STATUS_MARK, table, UsageError } from './io.ts';
import type { Command, Ctx } from './command.ts';
import { follow, sandboxCommands, sweepInBackground, taskOutcome } from './sandboxes.ts';
import { agentCommands } from './agent.ts';
import { playbookCommands } from './playbooks.ts';
import { diffCommands } from './diff.ts';
import { tokenCommands } from './tokens.ts';
import { changeCommands } from './changes.ts';
import { isInteractive, withPresence } from './presence.ts';
import { createInterface } from 'node:readline/promises';

/** A yes/no question on the terminal; Enter takes the default. */
async function askYesNo(question: string, dflt: boolean): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const a = (await rl.question(`${question} [${dflt ? 'Y/n' : 'y/N'}] `)).trim().toLowerCase();
    return a ? a.startsWith('y') : dflt;
  } catch {
    return dflt;
  } finally {
    rl.close();
  }
}

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function actorId(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function parseTarget(spec: string): { user: string; address: string; port: number } {
  // user@host[:port], user@[v6]:port
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new UsageError(`Expected user@host[:port], got "${spec}".`);
  return { user: m[1] ?? 'root', address: m[2]!.replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : 22 };
}

const formatPreflight = (p: Preflight): string =>
  [
    ...p.checks.map(
      (c) =>
        `${STATUS_MARK[c.status]}  ${c.title}: ${c.detail}${c.advice && c.status !== 'pass' ? `\n      → ${c.advice}` : ''}`,
    ),
    '',
    p.ok ? 'Ready for sandboxes.' : 'Not ready: fix the failed checks above.',
  ].join('\n');

const hostRows = (hosts: Host[]) =>
  hosts.map((h) => ({
    name: h.name,
    target: h.kind === 'local' ? 'local machine' : `${h.user}@${h.address}:${h.port}`,
    fingerprint: h.hostKey?.fingerprint ?? '-',
    virt: h.lastCheck?.facts.virtType ?? '?',
    ready: h.lastCheck ? (h.lastCheck.ok ? 'yes' : 'no') : 'unchecked',
  }));

const vmRows = (vms: Vm[]) =>
  vms.map((v) => ({
    host: v.hostName,
    name: v.name,
    state: v.state,
    vcpus: v.vcpus,
    memory: `${v.memoryMiB} MiB`,
    disks:
      v.disks
        .filter((d) => d.device === 'disk')
        .map((d) => d.source ?? d.target)
        .join(', ') || '-',
    agent: v.hasGuestAgent,
  }));

const ROW_KINDS = new Set(['content', 'chain', 'gap', 'malformed']);

const formatVerify = (v: AuditVerify): string => {
  const out = v.ok
    ? [`Audit log intact: ${v.count} entries, head ${v.headHash}.`]
    : [
        `Audit log FAILED verification (${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}):`,
        ...v.problems.map((p) =>
          ROW_KINDS.has(p.kind) ? `  row ${p.seq} [${p.kind}]: ${p.message}` : `  [${p.kind}] ${p.message}`,
        ),
      ];
  const c = v.checkpoint;
  if (c)
    out.push(
      `Signed checkpoint #${c.n}: entries 1..${c.seq}, head ${c.head.slice(0, 16)}…, ${c.ts}; signature ${c.signature}${
        c.matchesChain ? ', matches the chain' : ', does NOT match the chain'
      }${v.uncovered ? `; ${v.uncovered} newer entr${v.uncovered === 1 ? 'y' : 'ies'} not signed yet` : ''}.`,
    );
  else if (v.count) out.push('No signed checkpoint covers this log.');
  if (v.signingKey)
    out.push(
      `Signing key: ${v.signingKey.fingerprint ?? 'none yet'}${v.signingKey.problem ? ` (${v.signingKey.problem})` : ''}`,
    );
  for (const k of v.copies)
    out.push(
      `  ${k.kind === 'file' ? 'checkpoint file' : `host ${k.name}`}: ${k.status}${
        k.latest ? ` at #${k.latest.n} (seq ${k.latest.seq})` : ''
      } — ${k.detail} [${k.path}]`,
    );
  for (const n of v.notes) out.push(`note: ${n}`);
  return out.join('\n');
};

export const commands: Record<string, Command> = {
  doctor: {
    summary: 'Check this installation and the local libvirt host.',
    usage: 'fluid doctor [--json]',
    run: async (ctx) => {
      const sys = await ctx.client.call('system.doctor', {});
      const task = await ctx.client.call('hosts.check', { host: 'local' });
      const done = await ctx.client.stream('tasks.watch', { id: task.id })[Symbol.asyncIterator]();
      let t: Task = task;
      for (let r = await done.next(); !r.done; r = await done.next()) t = r.value;
      const local = t.status === 'succeeded' ? (t.result as Preflight) : null;
      const out = { ok: sys.ok && (local?.ok ?? false), system: sys, localHost: local ?? { error: t.error } };
      ctx.io.result(out, () =>
        [
          'Installation',
          ...sys.checks.map(
            (c) =>
              `${STATUS_MARK[c.status]}  ${c.title}: ${c.detail}${c.advice ? `\n      → ${c.advice}` : ''}`,
          ),
          '',
          'Local libvirt host',
          local ? formatPreflight(local) : `FAIL  ${t.error?.message ?? t.status}`,
        ].join('\n'),
      );
      return out.ok ? 0 : 1;
    },
  },

  serve: {
    summary: 'Web mode: serve the app and its API on loopback and print the URL (--api: the HTTP API alone).',
    usage:
      'fluid serve [--port N] [--host 127.0.0.1] [--no-ui] [--ui-dir DIR] | fluid serve --api [--host ADDR --tls-generate]',
    // loaded when used: the web door pulls in node:http, whose exports load undici (~60 ms)
    raw: async (argv, g) => (await import('./serve.ts')).serveCommand(argv, g),
  },

  'host add': {
    summary: 'Register a libvirt host over SSH (shows its fingerprint and asks before trusting it).',
    usage:
      'fluid host add <user@host[:port]> [--name NAME] (--key FILE | --agent) [--accept-fingerprint SHA256:...] [--libvirt-uri URI] [--storage-dir DIR] [--no-check]',
    options: {
      name: { type: 'string' },
      key: { type: 'string' },
      agent: { type: 'boolean' },
      'accept-fingerprint': { type: 'string' },
      'libvirt-uri': { type: 'string' },
      'storage-dir': { type: 'string' },
      'no-check': { type: 'boolean' },
    },
    run: async (ctx) => {
      const spec = ctx.args[0];
      if (!spec)
        throw new UsageError('Which host? fluid host add root@kvm1.example.com[:22] --key ~/.ssh/id_ed25519');
      const { user, address, port } = parseTarget(spec);
      const key = ctx.values.key as string | undefined;
      if (!key && !ctx.values.agent) throw new UsageError('Choose credentials: --key FILE or --agent.');
      const auth = key ? { type: 'key' as const, keyPath: resolve(key) } : { type: 'agent' as const };
      const probe = await ctx.client.call('hosts.probe', { address, port });
      const fp = probe.hostKey.fingerprint;
      if (probe.known)
        ctx.io.err(
          `Note: ${address}:${port} is already registered as "${probe.known.name}" (${probe.known.matches ? 'same key' : 'DIFFERENT key'}).`,
        );
      let accepted = ctx.values['accept-fingerprint'] as string | undefined;
      if (accepted && accepted !== fp) {
        throw new FluidError(
          'HOSTKEY_MISMATCH',
          `${address}:${port} presents ${fp}, not the ${accepted} you expected. Nothing was added.`,
          { presented: fp },
        );
      }
      if (!accepted) {
        ctx.io.err(
          `The host ${address}:${port} presents a ${probe.hostKey.type} key with fingerprint\n  ${fp}\nCompare it with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_${probe.hostKey.type.replace('ssh-', '')}_key.pub).`,
        );
        const answer = await ctx.io.ask('Trust this host key? [y/N] ');
        if (answer === null) {
          throw new UsageError(
            `Not confirmed. To add the host without a prompt, pass --accept-fingerprint ${fp}`,
          );
        }
        if (!/^y(es)?$/i.test(answer)) throw new FluidError('DENIED', 'Not trusted; nothing was added.');
        accepted = fp;
      }
      const host = await ctx.client.call('hosts.add', {
        name: ctx.values.name as string | undefined,
        address,
        port,
        user,
        auth,
        acceptFingerprint: accepted,
        libvirtUri: (ctx.values['libvirt-uri'] as string | undefined) ?? 'qemu:///system',
        storageDir: ctx.values['storage-dir'] as string | undefined,
      });
      if (!ctx.io.json)
        ctx.io.err(`Added host "${host.name}" (${host.user}@${host.address}:${host.port}, ${fp}).`);
      let preflight: Preflight | null = null;
      if (!ctx.values['no-check']) {
        if (!ctx.io.json) ctx.io.err('Running preflight checks…');
        const t = await follow(ctx, await ctx.client.call('hosts.check', { host: host.id }));
        taskOutcome(t);
        preflight = t.result as Preflight;
      }
      ctx.io.result({ host: await ctx.client.call('hosts.get', { host: host.id }), preflight }, () =>
        preflight ? formatPreflight(preflight) : '',
      );
      return preflight && !preflight.ok ? 1 : 0;
    },
  },

  'host list': {
    summary: 'List registered hosts.',
    usage: 'fluid host list [--json]',
    run: async (ctx) => {
      const hosts = await ctx.client.call('hosts.list', {});
      ctx.io.result(hosts, (h: Host[]) =>
        table(hostRows(h), [
          ['name', 'name'],
          ['target', 'target'],
          ['virt', 'virt'],
          ['ready', 'ready'],
          ['fingerprint', 'host key'],
        ]),
      );
    },
  },

  'host check': {
    summary: "Run a host's preflight checks.",
    usage: 'fluid host check <host> [--json]',
    run: async (ctx) => {
      const ref = ctx.args[0];
      if (!ref) throw new UsageError('Which host? fluid host check <name>');
      const t = await follow(ctx, await ctx.client.call('hosts.check', { host: ref }));
      taskOutcome(t);
      const p = t.result as Preflight;
      ctx.io.result(p, formatPreflight);
      return p.ok ? 0 : 1;
    },
  },

  'host remove': {
    summary: "Forget a host and delete this installation's files there (--keep-files keeps them).",
    usage: 'fluid host remove <host> [--keep-files] [--yes] [--json]',
    options: { 'keep-files': { type: 'boolean' }, yes: { type: 'boolean' } },
    run: async (ctx) => {
      const ref = ctx.args[0];
      if (!ref) throw new UsageError('Which host? fluid host remove <name>');
      let clean = !ctx.values['keep-files'];
      if (clean && isInteractive() && !ctx.values.yes && !ctx.io.json) {
        // A person on a terminal sees what would go, and may keep it (the default is to delete).
        const p = await ctx.client.call('hosts.removePreview', { host: ref });
        if (!p.reachable) ctx.io.err(`${p.host} cannot be reached (${p.error}); its files, if any, stay.`);
        else if (p.files.length) {
          const list = p.files.map((f) => `  ${f.path}  ${bytes(f.bytes)}  (${f.what})`).join('\n');
          const shared = p.sharedWith.length
            ? `\n(${p.sharedWith.join(', ')} reaches the same machine: its files stay.)`
            : '';
          ctx.io.err(`Fluid keeps ${bytes(p.totalBytes)} on ${p.host} (${p.storageDir}):\n${list}${shared}`);
          clean = await askYesNo('Delete them too?', true);
        }
      }
      const r = await ctx.client.call('hosts.remove', { host: ref, clean });
      ctx.io.result(r, () =>
        [
          `Removed host ${ref}.`,
          r.cleaned ? `Deleted ${bytes(r.cleaned.bytes)} of Fluid files there.` : null,
          r.note ?? null,
        ]
          .filter(Boolean)
          .join(' '),
      );
    },
  },

  'host trust': {
    summary: 'Trust a host’s new SSH key after a deliberate change.',
    usage: 'fluid host trust <host> --accept-fingerprint SHA256:...',
    options: { 'accept-fingerprint': { type: 'string' } },
    run: async (ctx) => {
      const ref = ctx.args[0];
      const fp = ctx.values['accept-fingerprint'] as string | undefined;
      if (!ref || !fp) throw new UsageError('fluid host trust <host> --accept-fingerprint SHA256:...');
      const h = await ctx.client.call('hosts.trust', { host: ref, acceptFingerprint: fp });
      ctx.io.result(h, () => `Host ${h.name} now trusts ${fp}.`);
    },
  },

  'host vms': {
    summary: 'Every VM defined on a host (sources and Fluid’s own).',
    usage: 'fluid host vms <host> [--json]',
    run: async (ctx) => {
      const ref = ctx.args[0];
      if (!ref) throw new UsageError('Which host? fluid host vms <name>');
      const vms = await ctx.client.call('hosts.vms', { host: ref });
      ctx.io.result(vms, (v: Vm[]) =>
        table(vmRows(v), [
          ['name', 'name'],
          ['state', 'state'],
          ['vcpus', 'vcpus'],
          ['memory', 'memory'],
          ['disks', 'disks'],
        ]),
      );
    },
  },

  'host capacity': {
    summary: 'What a host has and what sandboxes have committed.',
    usage: 'fluid host capacity <host> [--json]',
    run: async (ctx) => {
      const ref = ctx.args[0];
      if (!ref) throw new UsageError('Which host? fluid host capacity <name>');
      const c = await ctx.client.call('hosts.capacity', { host: ref });
      ctx.io.result(c, () =>
        [
          `CPUs:    ${c.cpus ?? '-'} (${c.committedVcpus} committed to sandboxes)`,
          `Memory:  ${c.freeMemoryMiB ?? '-'} MiB available of ${c.memoryMiB ?? '-'} MiB (${c.committedMemoryMiB} MiB committed)`,
          `Disk:    ${bytes(c.diskFreeBytes)} free of ${bytes(c.diskTotalBytes)}`,
          `VMs:     ${c.runningVms} running; virtualisation: ${c.virtType ?? 'unknown'}`,
        ].join('\n'),
      );
    },
  },

  'source list': {
    summary: 'VMs that can be cloned into sandboxes.',
    usage: 'fluid source list [--host H] [--json]',
    options: { host: { type: 'string' } },
    run: async (ctx) => {
      const r = await ctx.client.call('sources.list', { host: ctx.values.host as string | undefined });
      ctx.io.result(r, () =>
        [
          r.vms.length
            ? table(vmRows(r.vms), [
                ['host', 'host'],
                ['name', 'name'],
                ['state', 'state'],
                ['vcpus', 'vcpus'],
                ['memory', 'memory'],
                ['agent', 'guest agent'],
                ['disks', 'disks'],
              ])
            : 'No source VMs found.',
          ...r.errors.map((e) => `warning: host ${e.hostName}: [${e.code}] ${e.message}`),
        ].join('\n'),
      );
      return r.errors.length && !r.vms.length ? 1 : 0;
    },
  },

  'audit verify': {
    summary:
      "Check the audit log: the hash chain, its signed checkpoints, the checkpoint file and every host's copy (or an exported file, offline); names what disagrees.",
    usage: 'fluid audit verify [--file export.jsonl] [--local] [--json]',
    options: { file: { type: 'string' }, local: { type: 'boolean' } },
    run: async (ctx) => {
      const file = ctx.values.file as string | undefined;
      const v = file
        ? await ctx.client.call('audit.verifyExport', { content: readFileSync(file, 'utf8') })
        : await ctx.client.call('audit.verify', { hosts: !ctx.values.local });
      ctx.io.result(v, formatVerify);
      return v.ok ? 0 : 1;
    },
  },

  'audit export': {
    summary:
      'Export the audit log as JSON lines with its signed checkpoints (verify it anywhere: fluid audit verify --file).',
    usage: 'fluid audit export [--output FILE]',
    options: { output: { type: 'string', short: 'o' } },
    run: async (ctx) => {
      const e = await ctx.client.call('audit.export', {});
      const output = ctx.values.output as string | undefined;
      if (output) {
        writeFileSync(output, e.content, { mode: 0o600 });
        ctx.io.result(
          { file: resolve(output), count: e.count, headHash: e.headHash },
          () => `Wrote ${e.count} entries to ${output} (head ${e.headHash}).`,
        );
      } else process.stdout.write(e.content);
    },
  },

  'audit list': {
    summary: 'Show recent audit entries.',
    usage: 'fluid audit list [--limit N] [--action A] [--json]',
    options: { limit: { type: 'string' }, action: { type: 'string' } },
    run: async (ctx) => {
      const r = await ctx.client.call('audit.list', {
        limit: Number(ctx.values.limit ?? 50),
        action: ctx.values.action as string | undefined,
      });
      ctx.io.result(r, () =>
        table(
          r.entries.map((e) => ({
            seq: e.seq,
            ts: e.ts,
            who: `${e.actor.door}:${e.actor.id}`,
            action: e.action,
            target: e.target,
            data: JSON.stringify(e.data).slice(0, 80),
          })),
          [
            ['seq', 'seq'],
            ['ts', 'time'],
            ['who', 'who'],
            ['action', 'action'],
            ['target', 'target'],
            ['data', 'data'],
          ],
        ),
      );
    },
  },

  'settings get': {
    summary: 'Show settings.',
    usage: 'fluid settings get [--json]',
    run: async (ctx) => {
      const s = await ctx.client.call('settings.get', {});
      ctx.io.result(s, () => JSON.stringify(s, null, 2));
    },
  },

  'settings set': {
    summary:
      'Change settings: fluid settings set hosts.minFreeDiskGiB=20 agent.rules=\'[{"tool":"run_command","decision":"ask"}]\'',
    usage: 'fluid settings set <path=value>...',
    run: async (ctx) => {
      if (!ctx.args.length) throw new UsageError('fluid settings set <path=value>...');
      const patch: Record<string, Record<string, unknown>> = {};
      for (const a of ctx.args) {
        const m = /^([a-zA-Z]+)\.([a-zA-Z]+)=(.*)$/.exec(a);
        if (!m) throw new UsageError(`Expected section.key=value, got "${a}".`);
        const raw = m[3]!;
        let value: unknown = raw;
        if (/^-?\d+(\.\d+)?$|^(true|false|null)$|^[[{"]/.test(raw)) {
          try {
            value = JSON.parse(raw);
          } catch (e) {
            throw new UsageError(`${m[1]}.${m[2]}: not valid JSON (${(e as Error).message}).`);
          }
        }
        (patch[m[1]!] ??= {})[m[2]!] = value;
      }
      const s = await withPresence(ctx, (presence) =>
        ctx.client.call('settings.update', { ...(patch as object), presence } as never),
      );
      ctx.io.result(s, () => JSON.stringify(s, null, 2));
    },
  },

  'task list': {
    summary: 'Recent tasks.',
    usage: 'fluid task list [--json]',
    run: async (ctx) => {
      const ts = await ctx.client.call('tasks.list', {});
      ctx.io.result(ts, () =>
        table(
          ts.map((t) => ({ id: t.id, kind: t.kind, status: t.status, title: t.title, created: t.createdAt })),
          [
            ['id', 'id'],
            ['kind', 'kind'],
            ['status', 'status'],
            ['title', 'title'],
            ['created', 'created'],
          ],
        ),
      );
    },
  },

  'task get': {
    summary: 'One task and its outcome.',
    usage: 'fluid task get <id> [--json]',
    run: async (ctx) => {
      if (!ctx.args[0]) throw new UsageError('fluid task get <id>');
      const t = await ctx.client.call('tasks.get', { id: ctx.args[0] });
      ctx.io.result(t, () => JSON.stringify(t, null, 2));
    },
  },

  'task cancel': {
    summary: 'Cancel a running task.',
    usage: 'fluid task cancel <id>',
    run: async (ctx) => {
      if (!ctx.args[0]) throw new UsageError('fluid task cancel <id>');
      const t = await ctx.client.call('tasks.cancel', { id: ctx.args[0] });
      ctx.io.result(t, () => `Task ${t.id}: ${t.status} (${t.message}).`);
    },
  },
  ...sandboxCommands,
  ...diffCommands,
  ...tokenCommands,
  ...agentCommands,
  ...playbookCommands,
  ...changeCommands,
  ...lazy(
    'policy check',
    'Would a shell command be allowed on a source or production VM? (--jsonl for many)',
    "fluid policy check [--mode read-only] [--json | --jsonl] -- '<command>'",
    () => import('./policy.ts').then((m) => m.policyCommands['policy check']!),
  ),
  ...lazy(
    'mcp',
    'Serve Fluid’s tools to MCP clients (Claude Code …) over stdio, or --http.',
    'fluid mcp [--read-only] [--http [--port N] [--host H] [--token T]]',
    () => import('./mcp.ts').then((m) => m.mcpCommands.mcp!),
  ),
};

/** A command whose implementation (and its heavy dependencies) loads only when it runs. */
function lazy(
  name: string,
  summary: string,
  usage: string,
  load: () => Promise<Command>,
): Record<string, Command> {
  return {
    [name]: {
      summary,
      usage,
      raw: async (argv, g) => {
        const cmd = await load();
        if (cmd.raw) return cmd.raw(argv, g);
        throw new Error(`${name} is not a raw command`);
      },
    },
  };
}

function help(): string {
  const names = Object.keys(commands);
  const w = Math.max(...names.map((n) => n.length));
  return [
    'fluid — AI agents on disposable clones of real VMs; humans approve what reaches production.',
    '',
    'Usage: fluid <command> [options]   (global: --json, --data-dir DIR, --help)',
    '',
    ...names.map((n) => `  ${n.padEnd(w)}  ${commands[n]!.summary}`),
    '',
    'State lives in FLUID_DATA_DIR (or the platform data dir); the desktop app and web mode share it.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // Find the command words: the first positionals, skipping global options and their values.
  const { tokens } = parseArgs({
    args: argv,
    options: GLOBAL_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positional = tokens.filter((t) => t.kind === 'positional').slice(0, 2);
  const words = positional.map((t) => t.value);
  let name = '';
  if (words.length >= 2 && commands[`${words[0]} ${words[1]}`]) name = `${words[0]} ${words[1]}`;
  else if (words.length >= 1 && commands[words[0]!]) name = words[0]!;
  const io0 = createIo(argv.includes('--json'));
  if (!name) {
    if (words.length) {
      io0.err(`Unknown command "${words.join(' ')}".\n`);
      io0.err(help());
      return 2;
    }
    io0.out(help());
    return argv.includes('--help') || argv.includes('-h') ? 0 : 2;
  }
  const drop = new Set(positional.slice(0, name.split(' ').length).map((t) => t.index));
  const rest = argv.filter((_, i) => !drop.has(i));
  const cmd = commands[name]!;
  if (cmd.raw) {
    const g = parseArgs({
      args: rest,
      options: GLOBAL_OPTIONS,
      strict: false,
      allowPositionals: true,
    }).values;
    if (g.help) {
      io0.out(`${cmd.usage}\n\n${cmd.summary}`);
      return 0;
    }
    return cmd.raw(rest, { json: !!g.json, dataDir: g['data-dir'] as string | undefined });
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...(cmd.options ?? {}) },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    io0.err(`${(e as Error).message}\nUsage: ${cmd.usage}`);
    return 2;
  }
  const io = createIo(!!parsed.values.json);
  if (parsed.values.help) {
    io.out(`${cmd.usage}\n\n${cmd.summary}`);
    return 0;
  }
  let core: Core | null = null;
  try {
    const dataDir = parsed.values['data-dir'] as string | undefined;
    core = createCore({ dataDir: dataDir ? resolve(dataDir) : undefined });
    const client = connectInProcess(core, { door: 'cli', id: actorId(), interactive: isInteractive() });
    // Expired sandboxes go even if only the CLI is ever used: swept in the background when one is due.
    sweepInBackground(core, name);
    const code = await cmd.run!({
      io,
      core,
      client,
      args: parsed.positionals,
      values: parsed.values as Ctx['values'],
    });
    return code ?? 0;
  } catch (err) {
    printError(io, err);
    if (err instanceof UsageError) {
      io.err(`Usage: ${cmd.usage}`);
      return 2;
    }
    return 1;
  } finally {
    await core?.close();
  }
}
