/** CLI: `fluid playbook …` — generate, show, edit, verify, list and export playbooks. */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type {
  GenerationReport,
  PlaybookSummary,
  Revision,
  Verification,
} from '../shared/contract/playbooks.ts';
import { FluidError } from '../shared/errors.ts';
import type { Command, Ctx } from './command.ts';
import { table, UsageError } from './io.ts';
import { follow, taskOutcome } from './sandboxes.ts';

const need = (v: string | undefined, usage: string): string => {
  if (!v) throw new UsageError(usage);
  return v;
};
const num = (v: unknown, what: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what} is a revision number (1, 2, …).`);
  return n;
};

const MARK: Record<string, string> = {
  passed: 'ok  ',
  failed: 'FAIL',
  skipped: 'skip',
  pending: '... ',
  running: '... ',
  cancelled: 'cncl',
};

const verificationText = (v: Verification): string => {
  const out = [
    `Verification of revision ${v.revision} (sha256 ${v.sha256.slice(0, 16)}…): ${v.status.toUpperCase()}${v.stale ? ' — STALE: the playbook has a newer revision' : ''}`,
    `  ansible-core ${v.tools.ansibleCore ?? '?'}, ansible-lint ${v.tools.ansibleLint ?? '?'}${v.replay?.sandboxName ? `; replayed on ${v.replay.sandboxName} (${v.replay.startPath ?? '?'}, ${v.replay.destroyed ? 'destroyed' : 'NOT destroyed'})` : ''}`,
  ];
  for (const s of v.steps) {
    out.push(
      `${MARK[s.status] ?? s.status}  ${s.title}${s.durationMs !== null ? ` (${(s.durationMs / 1000).toFixed(1)} s)` : ''}: ${s.summary}`,
    );
    for (const w of s.warnings) out.push(`      warning: ${w}`);
    for (const d of s.differences ?? []) out.push(`      [${d.difference}] ${d.detail}`);
    if (s.id === 'idempotence' && s.status === 'failed')
      for (const t of (s.tasks ?? []).filter((x) => x.changed)) out.push(`      changed again: ${t.task}`);
  }
  return out.join('\n');
};

const reportText = (r: GenerationReport): string =>
  [
    `${r.covered.length} changes covered (${r.covered.filter((c) => c.by === 'written').length} by tasks already written), ${r.excluded.length} excluded by a person, ${r.uncovered.length} not expressed.`,
    ...r.uncovered.map((u) => `  not expressed: ${u.kind} ${u.key}: ${u.reason}`),
    ...r.written.map((w) => `  written task "${w.task}": ${w.kept ? 'kept' : 'dropped'} (${w.why})`),
    ...r.secrets.map((s) => `  secret variable ${s.name}: ${s.description}`),
    ...r.notes.map((n) => `  note: ${n}`),
  ].join('\n');

const listRows = (list: PlaybookSummary[]) =>
  list.map((p) => ({
    name: p.name,
    sandbox: p.sandboxName ?? '-',
    revision: p.head?.number ?? '-',
    tasks: p.tasks,
    sha256: p.head ? p.head.sha256.slice(0, 12) : '-',
    verified: p.verification ? `${p.verification.status}${p.verification.stale ? ' (stale)' : ''}` : 'never',
    updated: p.updatedAt.replace(/\.\d+Z$/, 'Z'),
  }));

/** Write an export into `dir`: every path stays inside it. */
export function writeExport(
  dir: string,
  files: Array<{ path: string; encoding: 'utf8' | 'base64'; content: string; mode: string }>,
  force: boolean,
): void {
  const root = resolve(dir);
  if (existsSync(root) && readdirSync(root).length && !force)
    throw new FluidError(
      'CONFLICT',
      `${root} exists and is not empty; choose another folder or pass --force.`,
    );
  mkdirSync(root, { recursive: true });
  for (const f of files) {
    const target = resolve(root, f.path);
    const rel = relative(root, target);
    if (
      !rel ||
      rel.startsWith('..') ||
      isAbsolute(rel) ||
      isAbsolute(f.path) ||
      f.path.split('/').includes('..')
    )
      throw new FluidError('VALIDATION', `Refusing to write ${f.path}: it would land outside ${root}.`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : f.content, {
      mode: parseInt(f.mode, 8),
    });
    chmodSync(target, parseInt(f.mode, 8));
  }
}

async function editInEditor(ctx: Ctx, current: string): Promise<string> {
  const editor = process.env.VISUAL || process.env.EDITOR;
  if (!editor || !process.stdin.isTTY)
    throw new UsageError('No editor: set $EDITOR (and run on a terminal), or pass --file FILE / --stdin.');
  const dir = mkdtempSync(join(tmpdir(), 'fluid-edit-'));
  chmodSync(dir, 0o700);
  const file = join(dir, 'playbook.yml');
  try {
    writeFileSync(file, current, { mode: 0o600 });
    const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'editor', file], { stdio: 'inherit' });
    if (r.status !== 0)
      throw new FluidError('CANCELLED', `The editor exited ${r.status ?? r.signal}; nothing was saved.`);
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    void ctx;
  }
}

function readStdin(): string {
  return readFileSync(0, 'utf8');
}

export const playbookCommands: Record<string, Command> = {
  'playbook list': {
    summary: 'Playbooks with their head revision and latest verification.',
    usage: 'fluid playbook list [--sandbox S] [--json]',
    options: { sandbox: { type: 'string' } },
    run: async (ctx) => {
      const list = await ctx.client.call('playbooks.list', {
        sandbox: ctx.values.sandbox as string | undefined,
      });
      ctx.io.result(list, (l: PlaybookSummary[]) =>
        l.length
          ? table(listRows(l), [
              ['name', 'name'],
              ['sandbox', 'sandbox'],
              ['revision', 'rev'],
              ['tasks', 'tasks'],
              ['sha256', 'sha256'],
              ['verified', 'verified'],
              ['updated', 'updated'],
            ])
          : 'No playbooks yet. `fluid playbook generate <sandbox>` writes one from what changed in a sandbox.',
      );
    },
  },

  'playbook show': {
    summary: 'A playbook revision (YAML), its history, a diff between revisions, or its verification.',
    usage:
      'fluid playbook show <playbook> [--revision N] [--history] [--diff A..B] [--verification] [--file PATH] [--json]',
    options: {
      revision: { type: 'string' },
      history: { type: 'boolean' },
      diff: { type: 'string' },
      verification: { type: 'boolean' },
      file: { type: 'string' },
    },
    run: async (ctx) => {
      const playbook = need(ctx.args[0], 'Which playbook? fluid playbook show <playbook>');
      const revision = num(ctx.values.revision, '--revision');
      if (ctx.values.history) {
        const list = await ctx.client.call('playbooks.revisions', { playbook });
        ctx.io.result(list, () =>
          table(
            list.map((r) => ({
              n: r.number,
              sha: r.sha256.slice(0, 16),
              at: r.createdAt.replace(/\.\d+Z$/, 'Z'),
              by: `${r.author.door}:${r.author.id}`,
              origin: r.origin,
              message: r.message,
            })),
            [
              ['n', 'rev'],
              ['sha', 'sha256'],
              ['at', 'created'],
              ['by', 'by'],
              ['origin', 'origin'],
              ['message', 'message'],
            ],
          ),
        );
        return;
      }
      if (ctx.values.diff) {
        const m = /^(\d+)\.\.(\d+)$/.exec(String(ctx.values.diff));
        if (!m) throw new UsageError('--diff takes two revisions: --diff 2..3');
        const d = await ctx.client.call('playbooks.revisionDiff', {
          playbook,
          from: Number(m[1]),
          to: Number(m[2]),
        });
        ctx.io.result(d, () => d.diff || `Revisions ${m[1]} and ${m[2]} are the same.`);
        return;
      }
      if (ctx.values.verification) {
        const v = await ctx.client.call('playbooks.verification', { playbook });
        ctx.io.result(v, () =>
          v
            ? `${verificationText(v)}\n\n${v.steps.map((s) => `---- ${s.title} ----\n${s.log || '(no log)'}`).join('\n\n')}`
            : 'Never verified. `fluid playbook verify ' + playbook + '`',
        );
        return;
      }
      if (ctx.values.file) {
        const g = await ctx.client.call('playbooks.get', { playbook, revision });
        const f = await ctx.client.call('playbooks.file', {
          playbook,
          revision: g.revision!.number,
          path: String(ctx.values.file),
        });
        ctx.io.result(f, () => (f.encoding === 'utf8' ? f.content : `(binary, base64)\n${f.content}`));
        return;
      }
      const g = await ctx.client.call('playbooks.get', { playbook, revision });
      ctx.io.result(g, () => {
        const r = g.revision as Revision;
        const v = g.playbook.verification;
        return [
          `# ${g.playbook.name} revision ${r.number} of ${g.playbook.revisions}, sha256 ${r.sha256}`,
          `# ${r.origin} by ${r.author.door}:${r.author.id} at ${r.createdAt}: ${r.message}`,
          `# verification: ${v ? `${v.status}${v.stale ? ` (stale: about revision ${v.revision})` : ''}` : 'never run'}`,
          ...(r.secrets.length ? [`# variables to supply: ${r.secrets.map((s) => s.name).join(', ')}`] : []),
          ...(r.files.length ? [`# shipped files: ${r.files.map((f) => f.path).join(', ')}`] : []),
          r.yaml,
        ].join('\n');
      });
    },
  },

  'playbook create': {
    summary: 'Create a playbook (empty, or from a YAML file).',
    usage: 'fluid playbook create <name> [--sandbox S] [--file FILE | --stdin] [--json]',
    options: { sandbox: { type: 'string' }, file: { type: 'string' }, stdin: { type: 'boolean' } },
    run: async (ctx) => {
      const name = need(ctx.args[0], 'Which name? fluid playbook create <name> [--sandbox S] [--file F]');
      const yaml = ctx.values.file
        ? readFileSync(String(ctx.values.file), 'utf8')
        : ctx.values.stdin
          ? readStdin()
          : undefined;
      const p = await ctx.client.call('playbooks.create', {
        name,
        sandbox: ctx.values.sandbox as string | undefined,
        yaml,
      });
      ctx.io.result(
        p,
        () => `Created playbook ${p.name} (revision 1, sha256 ${p.head?.sha256.slice(0, 16)}…).`,
      );
    },
  },

  'playbook edit': {
    summary: 'Edit a playbook in $EDITOR (or save a file) as a new revision; its verification becomes stale.',
    usage: 'fluid playbook edit <playbook> [--file FILE | --stdin] [--message M] [--json]',
    options: { file: { type: 'string' }, stdin: { type: 'boolean' }, message: { type: 'string' } },
    run: async (ctx) => {
      const playbook = need(ctx.args[0], 'Which playbook? fluid playbook edit <playbook>');
      const g = await ctx.client.call('playbooks.get', { playbook });
      const head = g.revision!;
      const yaml = ctx.values.file
        ? readFileSync(String(ctx.values.file), 'utf8')
        : ctx.values.stdin
          ? readStdin()
          : await editInEditor(ctx, head.yaml);
      if (yaml === head.yaml) {
        ctx.io.result({ saved: false, revision: head.number }, () => 'No change; nothing saved.');
        return;
      }
      const diag = await ctx.client.call('playbooks.validate', { yaml });
      for (const d of diag.diagnostics.filter((x) => x.severity !== 'info'))
        if (!ctx.io.json) ctx.io.err(`${d.severity}: line ${d.line}:${d.column}: ${d.message}`);
      const r = await ctx.client.call('playbooks.save', {
        playbook,
        yaml,
        baseRevision: head.number,
        message: ctx.values.message as string | undefined,
      });
      ctx.io.result(
        r,
        () =>
          `Saved revision ${r.number} (sha256 ${r.sha256.slice(0, 16)}…). Verify it: fluid playbook verify ${playbook}`,
      );
    },
  },

  'playbook generate': {
    summary: "Generate a sandbox's playbook from its system diff, merged with the tasks already written.",
    usage: 'fluid playbook generate <sandbox> [--playbook NAME] [--diff ID] [--json]',
    options: { playbook: { type: 'string' }, diff: { type: 'string' } },
    run: async (ctx) => {
      const sandbox = need(ctx.args[0], 'Which sandbox? fluid playbook generate <sandbox>');
      const task = await ctx.client.call('playbooks.generate', {
        sandbox,
        playbook: ctx.values.playbook as string | undefined,
        diff: ctx.values.diff as string | undefined,
      });
      const done = await follow(ctx, task);
      taskOutcome(done);
      const r = done.result as {
        playbook: string;
        revision: number;
        sha256: string;
        report: GenerationReport;
      };
      const g = await ctx.client.call('playbooks.get', { playbook: r.playbook, revision: r.revision });
      ctx.io.result({ ...r, yaml: g.revision?.yaml }, () =>
        [
          `Playbook ${r.playbook} revision ${r.revision} (sha256 ${r.sha256.slice(0, 16)}…).`,
          reportText(r.report),
          '',
          g.revision?.yaml ?? '',
          `Verify it: fluid playbook verify ${r.playbook}`,
        ].join('\n'),
      );
    },
  },

  'playbook verify': {
    summary: 'Verify a revision: syntax, lint, replay on a fresh sandbox, re-diff, second run.',
    usage: 'fluid playbook verify <playbook> [--revision N] [--detach] [--json]',
    options: { revision: { type: 'string' }, detach: { type: 'boolean' } },
    run: async (ctx) => {
      const playbook = need(ctx.args[0], 'Which playbook? fluid playbook verify <playbook>');
      const task = await ctx.client.call('playbooks.verify', {
        playbook,
        revision: num(ctx.values.revision, '--revision'),
      });
      if (ctx.values.detach) {
        ctx.io.result(
          task,
          () => `Verifying (task ${task.id}). fluid playbook show ${playbook} --verification`,
        );
        return 0;
      }
      const done = await follow(ctx, task);
      const v = await ctx.client.call('playbooks.verification', { playbook });
      if (!v) taskOutcome(done);
      ctx.io.result(v, () => verificationText(v!));
      return v?.status === 'passed' ? 0 : 1;
    },
  },

  'playbook export': {
    summary:
      'Write a revision as a self-contained folder: playbook, files, vars to fill in, inventory, verification report.',
    usage:
      'fluid playbook export <playbook> <folder> [--revision N] [--vault-password-file FILE] [--force] [--json]',
    options: {
      revision: { type: 'string' },
      'vault-password-file': { type: 'string' },
      force: { type: 'boolean' },
    },
    run: async (ctx) => {
      const playbook = need(ctx.args[0], 'Which playbook? fluid playbook export <playbook> <folder>');
      const dir = need(ctx.args[1], 'Which folder? fluid playbook export <playbook> <folder>');
      const pw = ctx.values['vault-password-file']
        ? readFileSync(String(ctx.values['vault-password-file']), 'utf8').replace(/\r?\n$/, '')
        : undefined;
      const out = await ctx.client.call('playbooks.export', {
        playbook,
        revision: num(ctx.values.revision, '--revision'),
        vaultPassword: pw,
      });
      writeExport(dir, out.files, !!ctx.values.force);
      const summary = {
        folder: resolve(dir),
        revision: out.revision,
        sha256: out.sha256,
        files: out.files.map((f) => f.path),
      };
      ctx.io.result(
        summary,
        () =>
          `Wrote revision ${out.revision} (sha256 ${out.sha256}) to ${resolve(dir)}:\n${out.files.map((f) => `  ${f.path}`).join('\n')}`,
      );
    },
  },
};
