/**
 * CLI: production targets, changes, and applying them.
 *
 *   fluid target add|list|check|trust|remove|history
 *   fluid change submit|show|list
 *   fluid apply <change>            (streams the log; Ctrl-C cancels and says which tasks ran)
 *
 * Approving is `fluid approval approve <id>` on a terminal (it shows the bundle's summary).
 */
import { resolve } from 'node:path';
import type { Apply, Change, ChangeBundle, Target } from '../shared/contract/changes.ts';
import { FluidError } from '../shared/errors.ts';
import type { Command, Ctx } from './command.ts';
import { STATUS_MARK, table, UsageError } from './io.ts';
import { follow, taskOutcome } from './sandboxes.ts';

const need = (v: string | undefined, usage: string): string => {
  if (!v) throw new UsageError(usage);
  return v;
};

function parseLogin(spec: string): { user: string; address: string; port: number } {
  const m = /^([^@]+)@(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new UsageError(`Expected user@address[:port], got "${spec}".`);
  return { user: m[1]!, address: m[2]!.replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : 22 };
}

const short = (h: string | null | undefined, n = 12) => (h ? `${h.slice(0, n)}…` : '-');

export function describeTarget(t: Target): string {
  const check = t.lastCheck;
  return [
    `${t.name}  (${t.id})`,
    `  login:     ${t.user}@${t.address}:${t.port}${t.jump ? ` through ${t.jump.hostName}` : ''}, become: ${t.become}`,
    `  host key:  ${t.hostKey ? `${t.hostKey.type} ${t.hostKey.fingerprint}` : 'none trusted'}`,
    `  key:       ${t.credential.fingerprint} (held in Fluid's secret store)`,
    ...(t.sourceVm ? [`  copy of:   ${t.sourceVm.vm} on ${t.sourceVm.hostName}`] : []),
    ...(t.lockedBy ? [`  locked:    apply ${t.lockedBy.applyId} since ${t.lockedBy.since}`] : []),
    ...(t.lastBaseline
      ? [`  state:     ${short(t.lastBaseline.sha256)} after apply ${t.lastBaseline.applyId.slice(0, 8)}`]
      : []),
    ...(check
      ? [
          `  checked:   ${check.checkedAt} (${check.facts.hostname ?? '?'}, ${check.facts.os ?? '?'})`,
          ...check.checks.map(
            (c) =>
              `    ${STATUS_MARK[c.status]}  ${c.title}: ${c.detail}${c.advice && c.status !== 'pass' ? `\n          → ${c.advice}` : ''}`,
          ),
        ]
      : []),
  ].join('\n');
}

const applyLine = (a: Apply) =>
  `${a.startedAt.replace(/\.\d+Z$/, 'Z')}  ${a.status.padEnd(10)} ${a.id.slice(0, 8)}  ${a.changeTitle}  — ${a.summary}`;

/** What a person reads before approving: the diff summary, the playbook hash, verification, preview. */
export function describeChange(
  c: Change,
  opts: { diffs?: boolean; bundle?: ChangeBundle | null } = {},
): string {
  const out = [
    `${c.title}`,
    `  change:       ${c.id}`,
    `  status:       ${c.status} — ${c.statusDetail}`,
    `  bundle:       sha256 ${c.sha256 ?? '(not sealed yet)'}`,
    `  target:       ${c.target.name}`,
    `  playbook:     ${c.playbook.name} revision ${c.playbook.revision}, sha256 ${c.playbook.sha256}`,
    `  from:         ${c.sandbox ? `sandbox ${c.sandbox.name}` : '-'}${c.diff ? `, diff ${c.diff.id.slice(0, 8)} (${c.diff.items} items, sha256 ${short(c.diff.sha256)})` : ''}`,
    `  verification: ${c.verification ? `${c.verification.status}${c.verification.stale ? ' (STALE: the playbook changed since)' : ''} — ${c.verification.steps.map((s) => `${s.id} ${s.status}`).join(', ')}` : '-'}`,
    `  baseline:     ${
      c.baseline
        ? `${short(c.baseline.sha256)} at ${c.baseline.takenAt} over ${Object.entries(c.baseline.counts)
            .filter(([, n]) => n)
            .map(([k, n]) => `${n} ${k}`)
            .join(', ')}`
        : '-'
    }`,
  ];
  if (opts.bundle?.diff || c.baseline) {
    const s = opts.bundle?.baseline.scope;
    if (s)
      for (const [k, v] of Object.entries(s)) if (v.length) out.push(`    ${k.padEnd(9)} ${v.join(', ')}`);
  }
  for (const u of c.baseline?.unscoped ?? []) out.push(`    not fingerprinted: ${u}`);
  if (c.approval)
    out.push(
      `  approval:     ${c.approval.status}${c.approval.decidedBy ? ` by ${c.approval.decidedBy.door}:${c.approval.decidedBy.id} (${c.approval.decidedVia})` : ''}${c.approval.usableUntil ? `, usable once until ${c.approval.usableUntil}` : ''}${c.approval.usedBy ? `, used by apply ${c.approval.usedBy.slice(0, 8)}` : ''}  (id ${c.approval.id})`,
    );
  if (c.preview) {
    out.push(
      '',
      `Production preview (check mode with --diff on ${c.target.name}, ${c.preview.takenAt}): ${c.preview.changed} task${c.preview.changed === 1 ? '' : 's'} would change it`,
    );
    for (const t of c.preview.tasks) {
      out.push(`  ${t.changed ? 'CHANGE' : t.status === 'ok' ? 'ok    ' : t.status.padEnd(6)}  ${t.task}`);
      if (opts.diffs && t.diff)
        out.push(
          ...t.diff
            .trimEnd()
            .split('\n')
            .map((l) => `          ${l}`),
        );
    }
    for (const w of c.preview.warnings) out.push(`  note: ${w}`);
  }
  for (const w of c.warnings) out.push(`warning: ${w}`);
  if (c.error) out.push(`error [${c.error.code}]: ${c.error.message}`);
  if (c.applies.length) out.push('', 'Applies:', ...c.applies.map((a) => `  ${applyLine(a)}`));
  if (c.status === 'awaiting-approval' && c.approval)
    out.push(
      '',
      `Approve on a terminal: fluid approval approve ${c.approval.id}   then: fluid apply ${c.id.slice(0, 8)}`,
    );
  return out.join('\n');
}

function describeApply(a: Apply): string {
  const out = [`Apply ${a.id}: ${a.status}`, `  ${a.summary}`];
  if (a.refusal) {
    out.push(`  refused [${a.refusal.reason}]`);
    for (const d of a.refusal.drift) out.push(`    drifted: ${d.detail}`);
  }
  if (a.tasks.length)
    out.push(
      '  tasks:',
      ...a.tasks.map(
        (t) =>
          `    ${t.changed ? 'changed' : t.status.padEnd(7)}  ${t.task}${t.status === 'failed' && t.message ? `: ${t.message.split('\n')[0]}` : ''}`,
      ),
    );
  if (a.postCheck)
    out.push(
      `  post-check: ${a.postCheck.changed} task${a.postCheck.changed === 1 ? '' : 's'} would still change; ${a.postCheck.matches ? 'production matches the change' : 'production does NOT match the change'}`,
      ...a.postCheck.mismatches.map((m) => `    mismatch: ${m.detail}`),
    );
  if (a.baselineAfter) out.push(`  new baseline: ${a.baselineAfter.sha256}`);
  if (a.approvedBy)
    out.push(
      `  approved by ${a.approvedBy.door}:${a.approvedBy.id} (${a.approvedVia}); bundle ${a.bundleSha256}`,
    );
  return out.join('\n');
}

async function watchApply(ctx: Ctx, applyId: string, taskId: string | null): Promise<Apply> {
  let final: Apply | null = null;
  const onSigint = () => {
    ctx.io.err('\nCancelling the apply…');
    if (taskId) void ctx.client.call('tasks.cancel', { id: taskId }).catch(() => {});
  };
  process.on('SIGINT', onSigint);
  let status = '';
  try {
    for await (const e of ctx.client.stream('changes.watchApply', { apply: applyId })) {
      if (e.kind === 'log') {
        if (!ctx.io.json) process.stdout.write(e.data);
      } else {
        if (e.apply.status !== status && !ctx.io.json) ctx.io.err(`[${e.apply.status}] ${e.apply.summary}`);
        status = e.apply.status;
        if (e.kind === 'end') final = e.apply;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  return final ?? (await ctx.client.call('changes.applyGet', { apply: applyId }));
}

export const changeCommands: Record<string, Command> = {
  'target add': {
    summary: 'Register a production target over SSH (shows its host key and asks before trusting it).',
    usage:
      'fluid target add <name> <user@address[:port]> --key FILE [--jump HOST] [--become sudo|doas|none] [--source HOST/VM] [--accept-fingerprint SHA256:...]',
    options: {
      key: { type: 'string' },
      jump: { type: 'string' },
      become: { type: 'string' },
      source: { type: 'string' },
      'accept-fingerprint': { type: 'string' },
    },
    run: async (ctx) => {
      const usage = changeCommands['target add']!.usage;
      const name = need(ctx.args[0], usage);
      const { user, address, port } = parseLogin(need(ctx.args[1], usage));
      const key = need(ctx.values.key as string | undefined, `--key FILE is required.\n${usage}`);
      const become = (ctx.values.become as string | undefined) ?? 'sudo';
      if (!['sudo', 'doas', 'none'].includes(become)) throw new UsageError('--become is sudo, doas or none.');
      const jump = ctx.values.jump as string | undefined;
      let sourceVm: { host: string; vm: string } | undefined;
      if (ctx.values.source) {
        const [host, vm] = String(ctx.values.source).split('/');
        if (!host || !vm)
          throw new UsageError('--source is HOST/VM (the source VM this target is the production copy of).');
        sourceVm = { host, vm };
      }
      const probe = await ctx.client.call('targets.probe', { address, port, jump });
      const fp = probe.hostKey.fingerprint;
      if (probe.known)
        ctx.io.err(
          `Note: ${address}:${port} is already the target "${probe.known.name}" (${probe.known.matches ? 'same key' : 'DIFFERENT key'}).`,
        );
      let accepted = ctx.values['accept-fingerprint'] as string | undefined;
      if (accepted && accepted !== fp)
        throw new FluidError(
          'HOSTKEY_MISMATCH',
          `${address}:${port} presents ${fp}, not the ${accepted} you expected. Nothing was added.`,
          {
            presented: fp,
          },
        );
      if (!accepted) {
        ctx.io.err(
          `The target ${address}:${port}${jump ? ` (through ${jump})` : ''} presents a ${probe.hostKey.type} key with fingerprint\n  ${fp}\nCompare it with the machine's own (ssh-keygen -lf /etc/ssh/ssh_host_${probe.hostKey.type.replace('ssh-', '')}_key.pub, on its console).`,
        );
        const answer = await ctx.io.ask('Trust this host key? [y/N] ');
        if (answer === null)
          throw new UsageError(`Not confirmed. To add it without a prompt, pass --accept-fingerprint ${fp}`);
        if (!/^y(es)?$/i.test(answer)) throw new FluidError('DENIED', 'Not trusted; nothing was added.');
        accepted = fp;
      }
      const t = await ctx.client.call('targets.add', {
        name,
        address,
        port,
        user,
        credential: { type: 'keyFile', path: resolve(key) },
        jump,
        become: become as 'sudo' | 'doas' | 'none',
        acceptFingerprint: accepted,
        sourceVm,
      });
      ctx.io.result(t, () => `Added target ${t.name}.\n${describeTarget(t)}`);
    },
  },

  'target list': {
    summary: 'Production targets.',
    usage: 'fluid target list [--json]',
    run: async (ctx) => {
      const ts = await ctx.client.call('targets.list', {});
      ctx.io.result(ts, () =>
        ts.length
          ? table(
              ts.map((t) => ({
                name: t.name,
                login: `${t.user}@${t.address}:${t.port}`,
                via: t.jump?.hostName ?? 'direct',
                become: t.become,
                ok: t.lastCheck ? (t.lastCheck.ok ? 'yes' : 'no') : 'unchecked',
                key: t.hostKey?.fingerprint ?? '-',
                lock: t.lockedBy ? `apply ${t.lockedBy.applyId.slice(0, 8)}` : '-',
              })),
              [
                ['name', 'name'],
                ['login', 'login'],
                ['via', 'via'],
                ['become', 'become'],
                ['ok', 'ready'],
                ['lock', 'locked by'],
                ['key', 'host key'],
              ],
            )
          : 'No targets. Add one with fluid target add.',
      );
    },
  },

  'target check': {
    summary: 'Log in to a target with its pinned host key and held key; check becoming root and Python.',
    usage: 'fluid target check <target> [--json]',
    run: async (ctx) => {
      const t = await ctx.client.call('targets.check', {
        target: need(ctx.args[0], 'fluid target check <target>'),
      });
      ctx.io.result(t, () => describeTarget(t));
      return t.lastCheck?.ok ? 0 : 1;
    },
  },

  'target trust': {
    summary: 'Pin a target’s new host key after a deliberate change.',
    usage: 'fluid target trust <target> --accept-fingerprint SHA256:...',
    options: { 'accept-fingerprint': { type: 'string' } },
    run: async (ctx) => {
      const usage = 'fluid target trust <target> --accept-fingerprint SHA256:...';
      const t = await ctx.client.call('targets.trust', {
        target: need(ctx.args[0], usage),
        acceptFingerprint: need(ctx.values['accept-fingerprint'] as string | undefined, usage),
      });
      ctx.io.result(t, () => `Target ${t.name} now trusts ${t.hostKey?.fingerprint}.`);
    },
  },

  'target remove': {
    summary: 'Forget a target and the key Fluid holds for it.',
    usage: 'fluid target remove <target>',
    run: async (ctx) => {
      const ref = need(ctx.args[0], 'fluid target remove <target>');
      const r = await ctx.client.call('targets.remove', { target: ref });
      ctx.io.result(r, () => `Removed target ${ref}.`);
    },
  },

  'target history': {
    summary: 'The applies to a target, newest first.',
    usage: 'fluid target history <target> [--json]',
    run: async (ctx) => {
      const target = need(ctx.args[0], 'fluid target history <target>');
      const a = await ctx.client.call('changes.applies', { target });
      ctx.io.result(a, () =>
        a.length ? a.map(applyLine).join('\n') : `Nothing was applied to ${target} yet.`,
      );
    },
  },

  'change submit': {
    summary:
      'Submit a sandbox’s change for review: verify, fingerprint the target, preview in check mode, seal, ask.',
    usage:
      'fluid change submit (--sandbox S | --playbook P [--revision N]) --target T [--title TEXT] [--no-wait] [--json]',
    options: {
      sandbox: { type: 'string' },
      playbook: { type: 'string' },
      revision: { type: 'string' },
      target: { type: 'string' },
      title: { type: 'string' },
      'no-wait': { type: 'boolean' },
    },
    run: async (ctx) => {
      const usage = changeCommands['change submit']!.usage;
      const target = need(ctx.values.target as string | undefined, usage);
      const sandbox = ctx.values.sandbox as string | undefined;
      const playbook = ctx.values.playbook as string | undefined;
      if (!sandbox && !playbook) throw new UsageError(usage);
      const revision = ctx.values.revision ? Number(ctx.values.revision) : undefined;
      if (revision !== undefined && !(Number.isInteger(revision) && revision > 0))
        throw new UsageError('--revision is a number.');
      const r = await ctx.client.call('changes.submit', {
        target,
        sandbox,
        playbook,
        revision,
        title: ctx.values.title as string | undefined,
      });
      if (ctx.values['no-wait']) {
        ctx.io.result(r.change, () => `Submitted change ${r.change.id} (task ${r.task.id}).`);
        return 0;
      }
      if (!ctx.io.json) ctx.io.err(`Change ${r.change.id}: verifying, fingerprinting ${target}, previewing…`);
      const t = await follow(ctx, r.task);
      const c = await ctx.client.call('changes.get', { change: r.change.id });
      ctx.io.result(c, () => describeChange(c));
      taskOutcome(t);
      return 0;
    },
  },

  'change show': {
    summary:
      'A change: diff summary, playbook hash, verification, the production preview (--diffs), approval, applies.',
    usage: 'fluid change show <change> [--diffs] [--bundle] [--json]',
    options: { diffs: { type: 'boolean' }, bundle: { type: 'boolean' } },
    run: async (ctx) => {
      const ref = need(ctx.args[0], 'fluid change show <change>');
      if (ctx.values.bundle) {
        const b = await ctx.client.call('changes.bundle', { change: ref });
        // the canonical JSON exactly: `fluid change show X --bundle | sha256sum` gives the bundle's sha256
        process.stdout.write(b.json);
        return 0;
      }
      const c = await ctx.client.call('changes.get', { change: ref });
      const bundle = c.sha256 ? (await ctx.client.call('changes.bundle', { change: c.id })).bundle : null;
      ctx.io.result(c, () => describeChange(c, { diffs: !!ctx.values.diffs, bundle }));
    },
  },

  'change list': {
    summary: 'Changes, newest first.',
    usage: 'fluid change list [--target T] [--sandbox S] [--json]',
    options: { target: { type: 'string' }, sandbox: { type: 'string' } },
    run: async (ctx) => {
      const cs = await ctx.client.call('changes.list', {
        target: ctx.values.target as string | undefined,
        sandbox: ctx.values.sandbox as string | undefined,
      });
      ctx.io.result(cs, () =>
        cs.length
          ? table(
              cs.map((c) => ({
                id: c.id.slice(0, 8),
                status: c.status,
                target: c.target.name,
                title: c.title,
                bundle: short(c.sha256),
                at: c.createdAt.replace(/\.\d+Z$/, 'Z'),
              })),
              [
                ['id', 'id'],
                ['status', 'status'],
                ['target', 'target'],
                ['title', 'title'],
                ['bundle', 'bundle'],
                ['at', 'submitted'],
              ],
            )
          : 'No changes.',
      );
    },
  },

  apply: {
    summary: 'Apply an approved change to its target, streaming the log (Ctrl-C cancels).',
    usage: 'fluid apply <change> [--json]',
    run: async (ctx) => {
      const ref = need(ctx.args[0], 'fluid apply <change>');
      const { apply, task } = await ctx.client.call('changes.apply', { change: ref });
      if (!ctx.io.json)
        ctx.io.err(`Apply ${apply.id} of ${apply.changeTitle} (bundle ${short(apply.bundleSha256)})`);
      const final = await watchApply(ctx, apply.id, task.id);
      ctx.io.result(final, () => describeApply(final));
      return final.status === 'succeeded' && final.postCheck?.matches ? 0 : 1;
    },
  },
};
