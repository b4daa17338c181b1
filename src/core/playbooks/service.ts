/**
 * PlaybookService: what every door calls. Playbooks and their revisions (store.ts, revisions.ts),
 * edits through the document model (model.ts), generation from a sandbox's diff (generate.ts),
 * verification (verify.ts) and export (export.ts).
 *
 * Who may do what: the agent (built-in or MCP) writes, edits, generates and verifies playbooks — its
 * own work product — and can read them. It cannot export the secret values Fluid holds (a vault
 * export is for a person), and nothing here approves or applies anything.
 */
import { randomUUID } from 'node:crypto';
import type { Diff } from '../../shared/contract/diff.ts';
import {
  PLAYBOOK_NAME_RE,
  type Diagnostic,
  type ExportFile,
  type GenerationReport,
  type PlaybookSummary,
  type Revision,
  type RevisionSummary,
  type SecretVar,
  type Verification,
  type VerificationBrief,
} from '../../shared/contract/playbooks.ts';
import type { Task } from '../../shared/contract/tasks.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { DiffService } from '../diff/service.ts';
import type { EventBus } from '../events.ts';
import type { HostService } from '../hosts/service.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { SandboxService } from '../sandboxes/service.ts';
import type { SshCa } from '../ssh/ca.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { TaskContext, TaskManager } from '../store/tasks.ts';
import { exportRevision } from './export.ts';
import { generate, type SandboxFacts } from './generate.ts';
import { PlaybookDoc, validateTaskSpec, type TaskSpec } from './model.ts';
import {
  checkIntegrity,
  diagnose,
  diffRevisions,
  hashRevision,
  referencedVariables,
  revisionFiles,
  revisionOf,
  summaryOf,
} from './revisions.ts';
import { heldValues, holdSecrets, type HeldSecret } from './secrets.ts';
import { PlaybookStore, sha256Hex, type PlaybookRow, type RevisionRow } from './store.ts';
import { Verifier, verificationOf } from './verify.ts';

export interface PlaybookDeps {
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  tasks: TaskManager;
  secrets: SecretStore;
  hosts: HostService;
  ca: SshCa;
  diff: DiffService;
  sandboxes: () => SandboxService;
}

export class PlaybookService {
  readonly store: PlaybookStore;
  private readonly d: PlaybookDeps;
  private verifierInstance: Verifier | null = null;

  constructor(deps: PlaybookDeps) {
    this.d = deps;
    this.store = new PlaybookStore(deps.db);
  }

  /** Verifications whose task ended without them (the process died) read as interrupted. */
  private settle(): void {
    this.store.interruptOrphans((taskId) => {
      try {
        return this.d.tasks.get(taskId).status === 'running';
      } catch {
        return false;
      }
    }, this.now());
  }

  private get verifier(): Verifier {
    return (this.verifierInstance ??= new Verifier({
      store: this.store,
      sandboxes: this.d.sandboxes(),
      diff: this.d.diff,
      hosts: this.d.hosts,
      ca: this.d.ca,
      tasks: this.d.tasks,
      audit: this.d.audit,
      bus: this.d.bus,
      clock: this.d.clock,
      log: this.d.log,
      secrets: this.d.secrets,
    }));
  }

  private now() {
    return this.d.clock.now().toISOString();
  }

  private emit(playbookId: string, revision: number | null) {
    this.d.bus.emit('playbooks.changed', { playbookId, revision, verificationId: null });
  }

  // ---- reading --------------------------------------------------------------------------------------

  /** The head revision; a playbook of the first model (task rows only) gets revision 1 from them. */
  private head(p: PlaybookRow): RevisionRow | null {
    const head = this.store.head(p.id);
    if (head) return head;
    const legacy = this.store.legacyTasks(p.id);
    const doc = PlaybookDoc.empty({ name: p.name, hosts: p.hosts, become: !!p.become });
    for (const t of legacy) {
      try {
        doc.add('tasks', { name: t.name, module: t.module, args: t.params });
      } catch {
        /* a row the old model accepted and this one does not: left out, the revision says so */
      }
    }
    return this.commit(
      p,
      doc.render(),
      new Map(),
      [],
      null,
      [],
      'migrated',
      `Revision 1 from the ${legacy.length} task rows of the first playbook model`,
      { door: 'system', id: 'migration' },
      0,
    );
  }

  summary(p: PlaybookRow): PlaybookSummary {
    this.settle();
    const head = this.head(p);
    let tasks = 0;
    if (head)
      try {
        tasks = PlaybookDoc.parse(head.yaml).taskCount();
      } catch {
        tasks = 0;
      }
    const latest = this.store.latestVerification(p.id);
    let sandboxName: string | null = null;
    if (p.sandbox_id) sandboxName = this.d.sandboxes().store.maybe(p.sandbox_id)?.name ?? null;
    return {
      id: p.id,
      name: p.name,
      sandboxId: p.sandbox_id,
      sandboxName,
      sessionId: p.session_id,
      createdAt: p.created_at,
      updatedAt: p.updated_at,
      createdBy: { door: p.created_by_door as Actor['door'], id: p.created_by_id },
      head: head ? summaryOf(head) : null,
      revisions: this.store.count(p.id),
      tasks,
      verification: latest ? brief(verificationOf(latest, head?.sha256 ?? null)) : null,
    };
  }

  list(sandbox?: string): PlaybookSummary[] {
    const sandboxId = sandbox ? this.d.sandboxes().store.row(sandbox).id : undefined;
    return this.store.list(sandboxId).map((p) => this.summary(p));
  }

  get(ref: string, revision?: number): { playbook: PlaybookSummary; revision: Revision | null } {
    const p = this.store.row(ref);
    const head = this.head(p);
    const r = revision === undefined ? head : this.store.revision(p.id, revision);
    return { playbook: this.summary(p), revision: r ? revisionOf(r) : null };
  }

  revisions(ref: string): RevisionSummary[] {
    const p = this.store.row(ref);
    this.head(p);
    return this.store.revisions(p.id).map(summaryOf);
  }

  revisionDiff(ref: string, from: number, to: number) {
    const p = this.store.row(ref);
    const a = this.store.revision(p.id, from);
    const b = this.store.revision(p.id, to);
    return { from: summaryOf(a), to: summaryOf(b), ...diffRevisions(this.store, a, b) };
  }

  file(ref: string, revision: number, path: string) {
    const p = this.store.row(ref);
    const r = this.store.revision(p.id, revision);
    const f = summaryOf(r).files.find((x) => x.path === path);
    if (!f) throw new FluidError('NOT_FOUND', `Revision ${revision} ships no file ${path}.`);
    const b = this.store.blob(f.sha256);
    return {
      path,
      sha256: f.sha256,
      encoding: f.text ? ('utf8' as const) : ('base64' as const),
      content: f.text ? b.toString('utf8') : b.toString('base64'),
    };
  }

  validate(yaml: string): { diagnostics: Diagnostic[] } {
    return { diagnostics: diagnose(yaml) };
  }

  // ---- writing --------------------------------------------------------------------------------------

  /** The one place revisions are made. */
  private commit(
    p: PlaybookRow,
    yaml: string,
    files: ReadonlyMap<string, Buffer>,
    secrets: SecretVar[],
    generation: GenerationReport | null,
    generatedTasks: string[],
    origin: RevisionRow['origin'],
    message: string,
    actor: Actor,
    base: number | null,
  ): RevisionRow {
    PlaybookDoc.parse(yaml); // YAML and structure: refused here, with positions in the error's data
    const h = hashRevision(yaml, files);
    const row = this.store.addRevision(
      {
        playbookId: p.id,
        yaml,
        yamlSha256: h.yamlSha256,
        sha256: h.sha256,
        files: h.files,
        secrets,
        generation,
        generatedTasks,
        origin,
        message,
        author: actor,
        createdAt: this.now(),
        base,
      },
      h.blobs,
    );
    this.d.audit.append({
      actor,
      action: 'playbook.revision',
      target: p.id,
      data: { name: p.name, revision: row.number, sha256: row.sha256, origin, message },
    });
    this.emit(p.id, row.number);
    return row;
  }

  create(
    input: { name: string; sandbox?: string; yaml?: string; sessionId?: string | null },
    actor: Actor,
  ): PlaybookSummary {
    if (!PLAYBOOK_NAME_RE.test(input.name))
      throw new FluidError(
        'VALIDATION',
        'A playbook name is 1-64 letters, digits, ".", "-" or "_", starting with a letter or digit.',
      );
    const sandboxId = input.sandbox ? this.d.sandboxes().store.row(input.sandbox).id : null;
    const yaml = input.yaml ?? PlaybookDoc.empty({ name: input.name }).render();
    PlaybookDoc.parse(yaml);
    const p = this.store.insert({
      name: input.name,
      sandboxId,
      sessionId: input.sessionId ?? null,
      actor,
      now: this.now(),
    });
    this.d.audit.append({
      actor,
      action: 'playbook.create',
      target: p.id,
      data: { name: p.name, sandbox: sandboxId },
    });
    this.commit(
      p,
      yaml,
      new Map(),
      [],
      null,
      [],
      isPersonDoor(actor) ? 'edited' : 'written',
      'Created',
      actor,
      0,
    );
    return this.summary(this.store.row(p.id));
  }

  /** Save edited YAML (the editor, `fluid playbook edit`): a new revision on top of `baseRevision`. */
  save(ref: string, yaml: string, baseRevision: number, message: string | undefined, actor: Actor): Revision {
    const p = this.store.row(ref);
    const head = this.head(p);
    if (!head) throw new FluidError('INTERNAL', 'The playbook has no revision.');
    if (head.number !== baseRevision)
      throw new FluidError(
        'CONFLICT',
        `The playbook changed meanwhile: its head is revision ${head.number}, not ${baseRevision}. Reload it, reapply your edit and save again.`,
        { head: head.number },
      );
    if (yaml === head.yaml)
      throw new FluidError(
        'VALIDATION',
        'Nothing changed: the text is the same as revision ' + head.number + '.',
      );
    const files = revisionFiles(this.store, head);
    const kept = new Map([...files].filter(([path]) => yaml.includes(path)));
    const row = this.commit(
      p,
      yaml,
      kept,
      keepSecrets(head, yaml),
      null,
      JSON.parse(head.generated_tasks) as string[],
      isPersonDoor(actor) ? 'edited' : 'written',
      message ?? `Edited (from revision ${head.number})`,
      actor,
      baseRevision,
    );
    return revisionOf(row);
  }

  /**
   * An edit through the document model (the agent's task tools): the operation runs on the head's
   * parsed document, which keeps every comment and the order of keys, and the result is saved.
   */
  edit<T>(
    ref: string,
    op: (doc: PlaybookDoc) => { result: T; message: string; template?: { path: string; content: string } },
    actor: Actor,
  ): { result: T; revision: RevisionSummary } {
    const p = this.store.row(ref);
    const head = this.head(p)!;
    const doc = PlaybookDoc.parse(head.yaml);
    const { result, message, template } = op(doc);
    const yaml = doc.render();
    const files = new Map(revisionFiles(this.store, head));
    if (template) files.set(template.path, Buffer.from(template.content, 'utf8'));
    const kept = new Map([...files].filter(([path]) => yaml.includes(path)));
    const row = this.commit(
      p,
      yaml,
      kept,
      keepSecrets(head, yaml),
      null,
      JSON.parse(head.generated_tasks) as string[],
      isPersonDoor(actor) ? 'edited' : 'written',
      message,
      actor,
      head.number,
    );
    return { result, revision: summaryOf(row) };
  }

  /** The playbook a sandbox's change is generated into: an explicit name, the sandbox's, or a new one. */
  forSandbox(
    sandbox: string,
    name: string | undefined,
    actor: Actor,
    sessionId: string | null = null,
  ): PlaybookRow {
    const sbx = this.d.sandboxes().store.row(sandbox);
    if (name) {
      const existing = this.store.maybe(name);
      if (existing) {
        if (existing.sandbox_id && existing.sandbox_id !== sbx.id)
          throw new FluidError(
            'CONFLICT',
            `Playbook ${name} belongs to another sandbox; choose another name.`,
          );
        this.store.linkSandbox(existing.id, sbx.id);
        return this.store.row(existing.id);
      }
    } else {
      const mine = this.store.bySandbox(sbx.id);
      if (mine) return mine;
    }
    let base = name ?? sbx.name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
    if (!PLAYBOOK_NAME_RE.test(base)) base = `sandbox-${sbx.id.slice(0, 8)}`;
    let n = base;
    for (let i = 2; this.store.maybe(n); i++) n = `${base.slice(0, 60)}-${i}`;
    const s = this.create({ name: n, sandbox: sbx.id, sessionId }, actor);
    return this.store.row(s.id);
  }

  // ---- generation -------------------------------------------------------------------------------------

  generate(
    input: { sandbox: string; playbook?: string; diff?: string },
    actor: Actor,
    sessionId: string | null = null,
  ): Task {
    const sbx = this.d.sandboxes().store.row(input.sandbox);
    const p = this.forSandbox(sbx.id, input.playbook, actor, sessionId);
    return this.d.tasks.start({
      kind: 'playbook.generate',
      title: `Generate ${p.name} from sandbox ${sbx.name}`,
      target: p.id,
      run: (ctx) => this.runGenerate(p.id, sbx.id, input.diff, actor, ctx),
    });
  }

  private async runGenerate(
    playbookId: string,
    sandboxId: string,
    diffId: string | undefined,
    actor: Actor,
    ctx: TaskContext,
  ) {
    const p = this.store.row(playbookId);
    const sbx = this.d.sandboxes().store.row(sandboxId);
    let diff: Diff;
    if (diffId) diff = this.d.diff.get(sandboxId, diffId, false);
    else {
      ctx.progress(0.05, `Reading what changed on ${sbx.name}`);
      const t = this.d.diff.run({ sandbox: sandboxId, method: 'auto' }, actor);
      const done = await this.d.tasks.wait(t.id, ctx.signal);
      ctx.signal.throwIfAborted();
      if (done.status !== 'succeeded')
        throw new FluidError(
          done.error?.code ?? 'INTERNAL',
          `The diff failed: ${done.error?.message ?? done.status}`,
        );
      diff = this.d.diff.get(sandboxId, (done.result as { id: string }).id, false);
    }
    ctx.progress(0.5, `Writing tasks for ${diff.items.length - diff.excluded.length} changes`);
    const head = this.head(p)!;
    const g = await generate({
      diff,
      sandboxName: sbx.name,
      facts: this.facts(sandboxId, actor, ctx.signal),
      previous: {
        yaml: head.yaml,
        files: revisionFiles(this.store, head),
        generated: new Set(JSON.parse(head.generated_tasks) as string[]),
      },
    });
    ctx.signal.throwIfAborted();
    const secrets = holdSecrets(this.d.secrets, p.id, g.secrets);
    const report: GenerationReport = {
      sandboxId,
      diffId: diff.id,
      diffSha256: diff.sha256,
      ...g.report,
      secrets,
    };
    const row = this.commit(
      p,
      g.yaml,
      g.files,
      secrets,
      report,
      g.generatedTasks,
      'generated',
      `Generated from diff ${diff.id.slice(0, 8)} of ${sbx.name}`,
      actor,
      head.number,
    );
    ctx.progress(1, `Revision ${row.number}`);
    return { playbook: p.name, playbookId: p.id, revision: row.number, sha256: row.sha256, report };
  }

  /** What generation asks the agent's sandbox: over Fluid's SSH, as root; contents checked by hash. */
  private facts(sandboxId: string, actor: Actor, signal: AbortSignal): SandboxFacts {
    const sbx = this.d.sandboxes();
    const exec = async (script: string, stdin?: string) => {
      const r = await sbx.exec(
        sandboxId,
        script,
        { timeoutSeconds: 120, maxOutputBytes: 1024 * 1024, stdin, signal },
        actor,
      );
      if (r.exitCode !== 0)
        throw new FluidError(
          'INTERNAL',
          `Reading facts from the sandbox failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`,
        );
      return r.stdout;
    };
    let apt: boolean | null = null;
    return {
      readFile: async (path, sha256) => {
        const f = await sbx.readFile(sandboxId, path, 16 * 1024 * 1024);
        const b = f.encoding === 'utf8' ? Buffer.from(f.content, 'utf8') : Buffer.from(f.content, 'base64');
        if (sha256Hex(b) !== sha256)
          throw new FluidError(
            'CONFLICT',
            `${path} changed in the sandbox since the diff read it (its sha256 is no longer ${sha256.slice(0, 12)}…). Generate again: the diff will be read anew.`,
          );
        return b;
      },
      pythonApt: async () =>
        (apt ??= /install ok installed/.test(
          await exec(`dpkg-query -W -f='\${Status}' python3-apt 2>/dev/null || true`),
        )),
      units: async (names) => {
        const ok = names.filter((n) => /^[A-Za-z0-9:_.@\\-]+$/.test(n));
        const out: Record<string, { exists: boolean; active: boolean }> = {};
        if (!ok.length) return out;
        const text = await exec(
          `while IFS= read -r u; do e=0; for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do [ -e "$d/$u" ] && e=1; done; a=$(systemctl is-active -- "$u" 2>/dev/null || true); printf '%s\\t%s\\t%s\\n' "$u" "$e" "$a"; done`,
          ok.join('\n') + '\n',
        );
        for (const line of text.split('\n')) {
          const [u, e, a] = line.split('\t');
          if (u) out[u] = { exists: e === '1', active: a === 'active' };
        }
        return out;
      },
      packageServices: async (pkgs) => {
        const ok = pkgs.filter((n) => /^[a-z0-9][a-z0-9+.:-]*$/.test(n));
        const out: Record<string, string[]> = {};
        if (!ok.length) return out;
        const text = await exec(
          `while IFS= read -r p; do dpkg-query -L -- "$p" 2>/dev/null | grep -E '^(/usr)?/lib/systemd/system/[^/]+\\.service$' | sed "s|.*/|$p\\t|"; done; true`,
          ok.join('\n') + '\n',
        );
        for (const line of text.split('\n')) {
          const [p, u] = line.split('\t');
          if (p && u) (out[p] ??= []).push(u);
        }
        return out;
      },
      packaged: async (paths) => {
        const ok = paths.filter((x) => x.startsWith('/') && !/[\t\n*?[\\]/.test(x));
        const out: Record<string, { package: string; matches: boolean }> = {};
        if (!ok.length) return out;
        // dpkg -S names the owner; conffiles are checked against dpkg's status, others against md5sums.
        const text = await exec(
          [
            'while IFS= read -r p; do',
            `  line=$(dpkg-query -S -- "$p" 2>/dev/null | awk -v p="$p" 'substr($0, length($0) - length(p) - 1) == ": " p && !/^diversion/ {print; exit}')`,
            '  [ -n "$line" ] || continue',
            '  pkg=${line%%: *}; pkg=${pkg%%,*}; m=1',
            '  if [ -f "$p" ] && [ ! -L "$p" ]; then',
            `    sum=$(md5sum < "$p" | cut -d' ' -f1)`,
            `    want=$(dpkg-query -W -f='\${Conffiles}\\n' -- "$pkg" 2>/dev/null | awk -v p="$p" '$1 == p {print $2; exit}')`,
            '    if [ -z "$want" ]; then',
            '      rel=${p#/}',
            '      for f in /var/lib/dpkg/info/"$pkg".md5sums /var/lib/dpkg/info/"$pkg":*.md5sums; do',
            `        [ -f "$f" ] && want=$(awk -v r="$rel" '$2 == r {print $1; exit}' "$f") && [ -n "$want" ] && break`,
            '      done',
            '    fi',
            '    [ "$want" = "$sum" ] || m=0',
            '  fi',
            `  printf '%s\\t%s\\t%s\\n' "$p" "$pkg" "$m"`,
            'done; true',
          ].join('\n'),
          ok.join('\n') + '\n',
        );
        for (const line of text.split('\n')) {
          const [path, pkg, m] = line.split('\t');
          if (path && pkg) out[path] = { package: pkg, matches: m === '1' };
        }
        return out;
      },
      commands: async (names) => {
        const ok = names.filter((n) => /^[a-z0-9_.+-]+$/.test(n));
        const text = await exec(
          `for c in ${ok.join(' ')}; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done; true`,
        );
        return Object.fromEntries(ok.map((n) => [n, text.split('\n').includes(n)]));
      },
      shadowHash: async (user) => {
        if (!/^[a-z_][a-z0-9_.-]*\$?$/.test(user)) return null;
        const text = await exec(`getent shadow -- "$(cat)" | cut -d: -f2`, user);
        const hash = text.trim();
        return hash && !hash.startsWith('!') && !hash.startsWith('*') ? hash : null;
      },
    };
  }

  // ---- verification ----------------------------------------------------------------------------------

  verify(
    ref: string,
    revision: number | undefined,
    actor: Actor,
    opts: { start?: 'auto' | 'cold' } = {},
  ): Task {
    const p = this.store.row(ref);
    const head = this.head(p);
    if (!head) throw new FluidError('CONFLICT', 'The playbook has no revision to verify.');
    const rev = revision === undefined ? head : this.store.revision(p.id, revision);
    checkIntegrity(this.store, rev);
    const running = this.store
      .verifications(p.id)
      .find((v) => v.status === 'running' && v.sha256 === rev.sha256);
    if (running)
      throw new FluidError(
        'CONFLICT',
        `Revision ${rev.number} is being verified already (task ${running.task_id}); watch that task or cancel it.`,
        { taskId: running.task_id },
      );
    return this.verifier.start(p.id, rev, actor, opts).task;
  }

  verification(ref: string, id?: string): Verification | null {
    this.settle();
    const p = this.store.row(ref);
    const head = this.head(p);
    const row = id ? this.store.verification(id) : this.store.latestVerification(p.id);
    if (!row) return null;
    if (row.playbook_id !== p.id)
      throw new FluidError('NOT_FOUND', `Verification ${id} is not of playbook ${p.name}.`);
    return verificationOf(row, head?.sha256 ?? null);
  }

  verifications(ref: string): VerificationBrief[] {
    this.settle();
    const p = this.store.row(ref);
    const head = this.head(p);
    return this.store.verifications(p.id).map((r) => brief(verificationOf(r, head?.sha256 ?? null)));
  }

  // ---- export ------------------------------------------------------------------------------------------

  async export(
    ref: string,
    revision: number | undefined,
    vaultPassword: string | undefined,
    actor: Actor,
  ): Promise<{ sha256: string; revision: number; files: ExportFile[] }> {
    if (vaultPassword && !isPersonDoor(actor))
      throw new FluidError(
        'DENIED',
        'Only a person exports the secret values Fluid holds (into an ansible-vault file); export without a vault password.',
      );
    const p = this.store.row(ref);
    const head = this.head(p)!;
    const rev = revision === undefined ? head : this.store.revision(p.id, revision);
    const files = checkIntegrity(this.store, rev);
    const s = summaryOf(rev);
    const ver = this.store.verifications(p.id).find((v) => v.sha256 === rev.sha256 && v.status !== 'running');
    const out = await exportRevision({
      name: p.name,
      number: rev.number,
      sha256: rev.sha256,
      yaml: rev.yaml,
      yamlSha256: rev.yaml_sha256,
      files,
      shipped: s.files,
      secrets: s.secrets,
      verification: ver ? verificationOf(ver, head.sha256) : null,
      vault: vaultPassword
        ? { password: vaultPassword, values: heldValues(this.d.secrets, p.id, s.secrets) }
        : null,
    });
    this.d.audit.append({
      actor,
      action: 'playbook.export',
      target: p.id,
      data: { revision: rev.number, sha256: rev.sha256, vault: !!vaultPassword, files: out.length },
    });
    return { sha256: rev.sha256, revision: rev.number, files: out };
  }

  /** Task specs are validated before any edit starts. */
  static checkTask(t: TaskSpec): void {
    validateTaskSpec(t);
  }

  static newId(): string {
    return randomUUID();
  }
}

function brief(v: Verification): VerificationBrief {
  return {
    id: v.id,
    revision: v.revision,
    sha256: v.sha256,
    status: v.status,
    stale: v.stale,
    startedAt: v.startedAt,
    finishedAt: v.finishedAt,
    steps: v.steps.map((s) => ({ id: s.id, status: s.status })),
  };
}

/** The secrets a new revision still needs: those of its parent that the new text references. */
function keepSecrets(parent: RevisionRow, yaml: string): SecretVar[] {
  const used = referencedVariables(yaml);
  return (JSON.parse(parent.secrets) as SecretVar[]).filter((s) => used.has(s.name));
}

export type { HeldSecret };
