/**
 * Fluid's agent tools: hosts and source VMs, sandboxes (create, run, files, snapshots), read-only
 * access to sources and production, and playbooks. Every tool calls the same core services as the
 * app and the CLI, as the calling agent (the audit log names the session or MCP client).
 */
import { z } from 'zod';
import type { Sandbox } from '../../../shared/contract/sandboxes.ts';
import { FluidError } from '../../../shared/errors.ts';
import type { Core } from '../../createCore.ts';
import type { ShellPolicy } from '../../policy/shell.ts';
import { registerPlaybookTools } from '../../playbooks/tools.ts';
import { SourceAccess } from '../source.ts';
import type { ToolContext, ToolRegistry } from './registry.ts';
import { registerDiffTool } from '../../diff/tool.ts';
import { registerChangeTools } from '../../changes/tools.ts';
import { canonicalDestinations } from '../../egress/reach.ts';

const SandboxId = z
  .string()
  .min(1)
  .max(128)
  .describe('Sandbox id or name (from create_sandbox or list_sandboxes)');
const AbsPath = z.string().min(1).max(4096).startsWith('/', 'must be an absolute path');

const json = (v: unknown) => JSON.stringify(v, null, 2);
const brief = (s: Sandbox) => ({
  sandbox_id: s.id,
  name: s.name,
  state: s.state,
  host: s.hostName,
  source_vm: s.sourceName,
  ip: s.ip,
  vcpus: s.vcpus,
  memory_mb: s.memoryMiB,
  expires_at: s.expiresAt,
  egress_allowed: s.egressAllow,
  started_by: s.startPath,
  error: s.error?.message ?? null,
});

function execText(r: {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
  durationMs?: number;
}): string {
  const parts = [`exit code: ${r.timedOut ? 'timed out (killed)' : r.exitCode}`];
  if (r.stdout) parts.push(`stdout:\n${r.stdout}`);
  if (r.stderr) parts.push(`stderr:\n${r.stderr}`);
  if (!r.stdout && !r.stderr) parts.push('(no output)');
  return parts.join('\n');
}

export interface BuiltinDeps {
  core: Core;
  shellPolicy: () => Promise<ShellPolicy>;
}

export function registerBuiltinTools(reg: ToolRegistry, deps: BuiltinDeps): void {
  const { core } = deps;
  const source = new SourceAccess(core.hosts);

  /** A sandbox by its name in summaries (approval titles, the audit log); the ref when unknown. */
  const sbName = (ref: string) => {
    try {
      const r = core.sandboxes.store.row(ref);
      return r.name === ref ? ref : `${r.name} (${r.id.slice(0, 8)})`;
    } catch {
      return ref;
    }
  };

  /** The host the session is about (agent.sessions.create), the default where a tool names none. */
  const sessionHost = (ctx: ToolContext) =>
    (ctx.sessionId ? core.agent.store.tryRow(ctx.sessionId)?.host : null) ?? undefined;

  async function waitTask(taskId: string, ctx: ToolContext) {
    const t = await core.tasks.wait(taskId, ctx.signal);
    if (t.status !== 'succeeded')
      throw new FluidError(t.error?.code ?? 'INTERNAL', t.error?.message ?? `${t.title} ended ${t.status}.`);
    return t;
  }

  // ---- hosts and sources ----------------------------------------------------------------------------

  reg.register({
    name: 'list_hosts',
    description: 'List the libvirt hosts Fluid can use, with their readiness and capacity facts.',
    input: z.object({}),
    readOnly: true,
    risk: 'low',
    summarize: () => 'list_hosts',
    run: async () => {
      const hosts = core.hosts.list().map((h) => ({
        host: h.name,
        target: h.kind === 'local' ? 'local machine' : `${h.user}@${h.address}:${h.port}`,
        ready: h.lastCheck ? h.lastCheck.ok : null,
        virt_type: h.lastCheck?.facts.virtType ?? null,
        cpus: h.lastCheck?.facts.cpus ?? null,
        memory_mb: h.lastCheck?.facts.memoryMiB ?? null,
      }));
      return { content: json(hosts), data: { hosts } };
    },
  });

  reg.register({
    name: 'list_vms',
    description:
      'List the source VMs (real VMs that sandboxes can be cloned from) on one host or all hosts, with their state.',
    input: z.object({ host: z.string().max(128).optional().describe('Host name; all hosts when omitted') }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `list_vms${i.host ? ` ${i.host}` : ''}`,
    run: async (i, ctx) => {
      const r = await core.hosts.sources(i.host, ctx.signal);
      const vms = r.vms.map((v) => ({
        name: v.name,
        host: v.hostName,
        state: v.state,
        vcpus: v.vcpus,
        memory_mb: v.memoryMiB,
        guest_agent: v.hasGuestAgent,
      }));
      const errors = r.errors.map((e) => `${e.hostName}: ${e.message}`);
      return { content: json({ vms, unreachable_hosts: errors }), data: { vms, errors } };
    },
  });

  // ---- sandboxes --------------------------------------------------------------------------------

  reg.register({
    name: 'list_sandboxes',
    description: 'List sandboxes (disposable clones of source VMs) with their state and address.',
    input: z.object({}),
    readOnly: true,
    risk: 'low',
    summarize: () => 'list_sandboxes',
    run: async () => {
      const list = core.sandboxes.list({}).map(brief);
      return { content: json(list), data: { sandboxes: list } };
    },
  });

  reg.register({
    name: 'get_sandbox',
    description: 'Details of one sandbox: state, address, size, time left, allowed egress, creation timings.',
    input: z.object({ sandbox_id: SandboxId }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `get_sandbox ${sbName(i.sandbox_id)}`,
    run: async (i) => {
      const s = core.sandboxes.get(i.sandbox_id);
      return {
        content: json({ ...brief(s), timings_ms: s.timings, base_fingerprint: s.baseFingerprint }),
        data: s,
      };
    },
  });

  reg.register({
    name: 'create_sandbox',
    description:
      'Create a sandbox: a disposable copy-on-write clone of a source VM with full root, its own identity and an isolated network (outbound access only to allowed destinations, through a proxy). Nothing you do in it affects the source. Returns when it is running.',
    input: z.object({
      source_vm: z
        .string()
        .min(1)
        .max(256)
        .optional()
        .describe("Name of the source VM to clone (default: the session's source VM)"),
      host: z
        .string()
        .max(128)
        .optional()
        .describe(
          "Host of the source VM (default: the session's host; otherwise Fluid places the sandbox on a host that has the source and the most free memory, and says why)",
        ),
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,47}$/)
        .optional(),
      cpu: z.number().int().min(1).max(64).optional().describe('vCPUs (default: as the source)'),
      memory_mb: z
        .number()
        .int()
        .min(256)
        .max(262144)
        .optional()
        .describe('Memory in MiB (default: as the source)'),
      ttl_minutes: z.number().int().min(5).max(1440).optional(),
      allow: z
        .array(z.string().max(300))
        .max(50)
        .optional()
        .describe(
          'Destinations the sandbox should reach, e.g. ["deb.debian.org"]. Those not already allowed become approval requests that a person decides; until then the proxy refuses them.',
        ),
    }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) =>
      `create_sandbox from ${i.source_vm ?? "the session's source"}${i.host ? ` on ${i.host}` : ''}`,
    run: async (i, ctx) => {
      // What the session is about (agent.sessions.create host/source) is the default for both.
      const session = ctx.sessionId ? core.agent.store.tryRow(ctx.sessionId) : undefined;
      const source = i.source_vm ?? session?.source ?? undefined;
      if (!source)
        throw new FluidError(
          'VALIDATION',
          'Which source VM? Pass source_vm (list_vms shows them); this session names none.',
        );
      const host = i.host ?? session?.host ?? undefined;
      const task = await core.sandboxes.createPlaced(
        {
          host,
          hostFromSession: !i.host && !!session?.host,
          source,
          name: i.name,
          vcpus: i.cpu,
          memoryMiB: i.memory_mb,
          ttlMinutes: i.ttl_minutes,
          allow: i.allow ?? [],
          start: 'auto',
          refreshBase: false,
        },
        ctx.actor,
        ctx.signal,
      );
      try {
        const t = await waitTask(task.id, ctx);
        const s = t.result as Sandbox;
        const waiting = canonicalDestinations(i.allow ?? []).filter((d) => !s.egressAllow.includes(d));
        return {
          content: json({
            ...brief(s),
            ...(s.placement ? { placement: s.placement.reason } : {}),
            ...(waiting.length ? { egress_awaiting_approval: waiting } : {}),
            note:
              `Created in ${((s.timings.total ?? 0) / 1000).toFixed(1)} s (${s.startPath}).` +
              (waiting.length
                ? ' The destinations in egress_awaiting_approval are not reachable yet: each is an approval request a person decides; requests to them are refused (the response names the request) until then.'
                : ''),
          }),
          data: s,
        };
      } catch (e) {
        if (ctx.signal.aborted) core.tasks.cancel(task.id);
        throw e;
      }
    },
  });

  for (const [name, verb, risk] of [
    ['start_sandbox', 'Start a stopped sandbox.', 'medium'],
    ['stop_sandbox', 'Shut a sandbox down (it keeps its disk; start it again later).', 'medium'],
    ['destroy_sandbox', 'Destroy a sandbox and everything of it. Irreversible.', 'high'],
  ] as const) {
    reg.register({
      name,
      description: verb,
      input: z.object({ sandbox_id: SandboxId }),
      readOnly: false,
      risk,
      summarize: (i) => `${name} ${sbName(i.sandbox_id)}`,
      run: async (i, ctx) => {
        let s: Sandbox;
        if (name === 'start_sandbox')
          s = (await waitTask(core.sandboxes.start(i.sandbox_id, ctx.actor).id, ctx)).result as Sandbox;
        else if (name === 'stop_sandbox') s = await core.sandboxes.stop(i.sandbox_id, false, ctx.actor);
        else s = await core.sandboxes.destroy(i.sandbox_id, ctx.actor);
        return { content: json(brief(s)), data: s };
      },
    });
  }

  reg.register({
    name: 'run_command',
    description:
      'Run a shell command or a multi-line bash script as root inside a sandbox. Returns the exit code, stdout and stderr. Use it to install packages, edit configuration, manage services and verify your changes.',
    input: z.object({
      sandbox_id: SandboxId,
      command: z.string().min(1).max(200_000),
      timeout_seconds: z.number().int().min(1).max(3600).optional().describe('Default 300'),
    }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) =>
      `run_command ${sbName(i.sandbox_id)}: ${i.command.length > 160 ? i.command.slice(0, 160) + '…' : i.command}`,
    run: async (i, ctx) => {
      const r = await core.sandboxes.exec(
        i.sandbox_id,
        i.command,
        { timeoutSeconds: i.timeout_seconds ?? 300, maxOutputBytes: 512 * 1024, signal: ctx.signal },
        ctx.actor,
      );
      return { content: execText(r), data: r, isError: r.exitCode !== 0 };
    },
  });

  reg.register({
    name: 'read_file',
    description: 'Read a file in a sandbox (as root).',
    input: z.object({
      sandbox_id: SandboxId,
      path: AbsPath,
      max_bytes: z
        .number()
        .int()
        .min(1)
        .max(4 * 1024 * 1024)
        .optional(),
    }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `read_file ${sbName(i.sandbox_id)}:${i.path}`,
    run: async (i) => {
      const r = await core.sandboxes.readFile(i.sandbox_id, i.path, i.max_bytes ?? 256 * 1024);
      return {
        content: r.encoding === 'utf8' ? r.content : `(binary file, ${r.size} bytes, base64)\n${r.content}`,
        data: { path: r.path, size: r.size, encoding: r.encoding, content: r.content },
      };
    },
  });

  reg.register({
    name: 'write_file',
    description:
      'Create or replace a file in a sandbox (as root, atomically). For small changes to an existing file prefer edit_file.',
    input: z.object({
      sandbox_id: SandboxId,
      path: AbsPath,
      content: z.string().max(4 * 1024 * 1024),
      mode: z
        .string()
        .regex(/^[0-7]{3,4}$/)
        .optional(),
    }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `write_file ${sbName(i.sandbox_id)}:${i.path} (${i.content.length} chars)`,
    run: async (i, ctx) => {
      const r = await core.sandboxes.writeFile(i.sandbox_id, i.path, i.content, 'utf8', i.mode, ctx.actor);
      return { content: `Wrote ${r.size} bytes to ${r.path}.`, data: r };
    },
  });

  reg.register({
    name: 'edit_file',
    description:
      'Replace one occurrence of old_str with new_str in a sandbox file. old_str must occur exactly once: include enough surrounding text to make it unique.',
    input: z.object({
      sandbox_id: SandboxId,
      path: AbsPath,
      old_str: z.string().min(1),
      new_str: z.string(),
    }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `edit_file ${sbName(i.sandbox_id)}:${i.path}`,
    run: async (i, ctx) => {
      await core.sandboxes.editFile(i.sandbox_id, i.path, i.old_str, i.new_str, ctx.actor);
      return { content: `Edited ${i.path}.` };
    },
  });

  reg.register({
    name: 'create_snapshot',
    description:
      'Snapshot a sandbox (disk and, while it runs, memory) so you can roll back with restore_snapshot.',
    input: z.object({
      sandbox_id: SandboxId,
      name: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/)
        .optional(),
    }),
    readOnly: false,
    risk: 'low',
    summarize: (i) => `create_snapshot ${sbName(i.sandbox_id)}${i.name ? ` ${i.name}` : ''}`,
    run: async (i, ctx) => {
      const s = await core.sandboxes.snapshotCreate(
        i.sandbox_id,
        i.name ?? `snap-${Date.now().toString(36)}`,
        true,
        ctx.actor,
      );
      return { content: json(s), data: s };
    },
  });

  reg.register({
    name: 'list_snapshots',
    description: "List a sandbox's snapshots.",
    input: z.object({ sandbox_id: SandboxId }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `list_snapshots ${sbName(i.sandbox_id)}`,
    run: async (i) => {
      const s = core.sandboxes.snapshotList(i.sandbox_id);
      return { content: json(s), data: { snapshots: s } };
    },
  });

  reg.register({
    name: 'restore_snapshot',
    description: 'Roll a sandbox back to one of its snapshots (everything after it is lost).',
    input: z.object({ sandbox_id: SandboxId, snapshot: z.string().min(1).max(128) }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `restore_snapshot ${sbName(i.sandbox_id)} ${i.snapshot}`,
    run: async (i, ctx) => {
      const s = await core.sandboxes.snapshotRestore(i.sandbox_id, i.snapshot, ctx.actor);
      return { content: json(brief(s)), data: s };
    },
  });

  // ---- read-only access to sources and production -------------------------------------------------

  reg.register({
    name: 'run_source_command',
    description:
      'Inspect a source or production VM with a read-only shell command (cat, grep, ls, systemctl status, journalctl, ss, ps, dpkg -l, …). Commands that could change anything are refused by policy; they run as an unprivileged user. Make changes in a sandbox instead.',
    input: z.object({
      source_vm: z.string().min(1).max(256),
      host: z.string().max(128).optional(),
      command: z.string().min(1).max(20_000),
    }),
    readOnly: true,
    risk: 'low',
    summarize: (i) =>
      `run_source_command ${i.source_vm}: ${i.command.length > 160 ? i.command.slice(0, 160) + '…' : i.command}`,
    precheck: async (i) => {
      const d = (await deps.shellPolicy()).check(i.command, 'read-only');
      return d.decision === 'deny' ? { decision: 'deny', reason: `read-only policy: ${d.reason}` } : null;
    },
    run: async (i, ctx) => {
      const r = await source.run(i.source_vm, i.host, i.command, {
        signal: ctx.signal,
        prefer: sessionHost(ctx),
      });
      return {
        content: execText({ ...r, timedOut: r.exitCode === 124 }),
        data: r,
        isError: r.exitCode !== 0,
      };
    },
  });

  reg.register({
    name: 'read_source_file',
    description:
      'Read a file on a source or production VM (as an unprivileged user: files only root can read are refused).',
    input: z.object({
      source_vm: z.string().min(1).max(256),
      host: z.string().max(128).optional(),
      path: AbsPath,
      max_bytes: z
        .number()
        .int()
        .min(1)
        .max(1024 * 1024)
        .optional(),
    }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `read_source_file ${i.source_vm}:${i.path}`,
    run: async (i, ctx) => {
      const max = i.max_bytes ?? 256 * 1024;
      const quoted = `'${i.path.replace(/'/g, `'\\''`)}'`;
      const r = await source.run(i.source_vm, i.host, `head -c ${max} -- ${quoted}`, {
        signal: ctx.signal,
        prefer: sessionHost(ctx),
        maxOutputChars: max + 1024,
      });
      if (r.exitCode !== 0)
        return {
          content: `Cannot read ${i.path}: ${r.stderr.trim() || `exit ${r.exitCode}`}`,
          isError: true,
        };
      return {
        content: r.stdout,
        data: { path: i.path, bytes: Buffer.byteLength(r.stdout), content: r.stdout },
      };
    },
  });

  // ---- playbooks (src/core/playbooks/tools.ts) -------------------------------------------------------

  registerPlaybookTools(reg, { playbooks: core.playbooks, tasks: core.tasks });

  // ---- the system diff (read-only: what changed on a sandbox, from its disk on the host) ----------

  registerDiffTool(reg, { diff: core.diff, tasks: core.tasks });

  // ---- production changes: submit for review and wait; never decide (src/core/changes/tools.ts) ----

  registerChangeTools(reg, {
    changes: core.changes,
    targets: core.targets,
    approvals: core.approvals,
    tasks: core.tasks,
  });
}
