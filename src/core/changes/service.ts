/**
 * ChangeService: submit a change for review, bind its approval to the bundle, apply exactly that.
 *
 * Submitting (a task): the playbook revision must be verified (Fluid verifies it first when no
 * passed verification of exactly these bytes exists) and must keep check mode on; the target's state
 * over everything the change touches is read (the baseline); the playbook runs on the target in check
 * mode with --diff (the preview); the state is read again and must not have moved (proof the preview
 * changed nothing it measures); then the bundle is sealed and an approval of kind `apply` is asked
 * for, naming the bundle (subjectHash = the bundle's sha256).
 *
 * Approving goes through the approvals room (a person, with presence); this room refuses to let an
 * apply approval be given while its verification is stale or failed, or its target moved its key.
 *
 * Applying (a task, a person's door only): take the target's lock (one apply per target; a lock whose
 * owner died is reclaimed), then refuse — before anything runs — an approval that is not approved,
 * was used, or expired (approvals.applyTtlMinutes after the decision), a verification that went
 * stale, a bundle whose bytes, secrets, target or Ansible version no longer match, and a target whose
 * state drifted from the baseline (CONFLICT with data.reason 'STALE' and the drift, item by item).
 * The approval is then used (once, atomically), ansible-playbook runs the bundle's bytes with the log
 * streamed and per-task results kept; afterwards check mode runs again (production should need
 * nothing more), the target's state is compared with what the sandbox had, and the new baseline is
 * recorded. Cancel stops the run and names the tasks that ran. Everything is audited with the bundle
 * hash and who approved.
 */
import { randomUUID } from 'node:crypto';
import {
  BUNDLE_FORMAT,
  type Apply,
  type ApplyStatus,
  type Change,
  type ChangeBundle,
  type ChangeStatus,
  type DriftItem,
  type Preview,
  type RefusalReason,
} from '../../shared/contract/changes.ts';
import type { Approval } from '../../shared/contract/approvals.ts';
import type { Diff } from '../../shared/contract/diff.ts';
import type { SecretVar, Verification, VerificationBrief } from '../../shared/contract/playbooks.ts';
import type { Task } from '../../shared/contract/tasks.ts';
import { FluidError, isAbortError, toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { DiffService } from '../diff/service.ts';
import type { EventBus } from '../events.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SecretStore } from '../platform/secrets.ts';
import { detectAnsible, requireTools, runTool, Workspace, type AnsibleTools } from '../playbooks/ansible.ts';
import { checkIntegrity } from '../playbooks/revisions.ts';
import type { PlaybookService } from '../playbooks/service.ts';
import type { RevisionRow } from '../playbooks/store.ts';
import type { PresenceService } from '../presence/service.ts';
import { purposeOf } from '../presence/service.ts';
import type { SandboxService } from '../sandboxes/service.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { SettingsService } from '../store/settings.ts';
import type { TaskContext, TaskManager } from '../store/tasks.ts';
import { inventorySlice, playMatches, type TargetAccess } from '../targets/ansible.ts';
import type { TargetService } from '../targets/service.ts';
import { baselineOf, counts, drift, mismatches, readState } from '../targets/state.ts';
import { LIVE_INSTANCES, type TargetCredential, type TargetRow } from '../targets/store.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';
import { openSealed, seal, secretRefs, verifyBundle } from './bundle.ts';
import { changedTasks, failedTasks, playOnTarget, scrub } from './run.ts';
import { assertCheckModeSafe, mergeScopes, playsOf, scopeOfDiff, scopeOfPlaybook } from './scope.ts';
import { ChangeStore, type ApplyBody, type ApplyRow, type ChangeRow } from './store.ts';

export interface ChangeDeps {
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  tasks: TaskManager;
  settings: SettingsService;
  secrets: SecretStore;
  approvals: ApprovalService;
  presence: PresenceService;
  playbooks: PlaybookService;
  diff: DiffService;
  targets: TargetService;
  sandboxes: () => SandboxService;
}

/** ansible-playbook on production: at most this long per run. */
const PLAY_TIMEOUT_MS = 60 * 60_000;
const CHECK_TIMEOUT_MS = 30 * 60_000;
const RUNNING: readonly ApplyStatus[] = ['queued', 'waiting', 'checking', 'running', 'post-check'];

const isRunning = (s: ApplyStatus) => RUNNING.includes(s);

class Refusal extends FluidError {
  constructor(reason: RefusalReason, message: string, drift: DriftItem[] = []) {
    super('CONFLICT', message, { reason, drift });
  }
}

/** Whole lines of a streamed log, with secret values taken out. */
class LineScrubber {
  private partial = '';
  private readonly values: string[];
  private readonly sink: (text: string) => void;
  constructor(values: Iterable<string>, sink: (text: string) => void) {
    this.values = [...values];
    this.sink = sink;
  }
  push(chunk: string): void {
    this.partial += chunk;
    const nl = this.partial.lastIndexOf('\n');
    if (nl < 0) return;
    this.sink(scrub(this.partial.slice(0, nl + 1), this.values));
    this.partial = this.partial.slice(nl + 1);
  }
  flush(): void {
    if (this.partial) this.sink(scrub(this.partial, this.values));
    this.partial = '';
  }
}

export class ChangeService {
  readonly store: ChangeStore;
  private readonly d: ChangeDeps;
  private readonly instance: string;

  constructor(deps: ChangeDeps) {
    this.d = deps;
    this.store = new ChangeStore(deps.db);
    this.instance = deps.tasks.instance;
    LIVE_INSTANCES.add(this.instance);
    // An apply approval is refused while what it would approve is no longer true.
    deps.approvals.guard('apply', (a) => this.guardApproval(a));
  }

  close(): void {
    LIVE_INSTANCES.delete(this.instance);
  }

  private now(): string {
    return this.d.clock.now().toISOString();
  }

  private emit(changeId: string, applyId: string | null = null): void {
    let status: ChangeStatus = 'submitting';
    try {
      status = this.statusOf(this.store.row(changeId)).status;
    } catch {
      /* gone */
    }
    this.d.bus.emit('changes.changed', { changeId, status, applyId });
  }

  // ---- reading --------------------------------------------------------------------------------------

  /** Applies whose task died with their process are interrupted; their lock is reclaimed later. */
  private settle(): void {
    for (const a of this.store.runningApplies()) {
      if (this.applyAlive(a)) continue;
      const body = JSON.parse(a.body) as ApplyBody;
      body.summary = `Interrupted: Fluid stopped while the apply was ${a.status}. ${body.tasks.length ? `Tasks with results: ${body.tasks.map((t) => `"${t.task}"`).join(', ')}.` : 'No task had finished.'} Check the target before trying again.`;
      this.store.updateApply(a.id, {
        status: 'interrupted',
        finished_at: this.now(),
        body: JSON.stringify(body),
      });
      this.d.audit.append({
        actor: { door: 'system', id: 'startup' },
        action: 'change.apply.interrupted',
        target: a.change_id,
        data: { apply: a.id, bundle: a.bundle_sha256, status: a.status },
      });
    }
  }

  /** Its task runs (its row is written just before the task starts: a young row without one is starting). */
  private applyAlive(a: ApplyRow): boolean {
    if (!a.task_id) return Date.parse(this.now()) - Date.parse(a.started_at) < 60_000;
    try {
      return this.d.tasks.get(a.task_id).status === 'running';
    } catch {
      return false;
    }
  }

  private applyOf(r: ApplyRow, withLog = false): Apply {
    const body = JSON.parse(r.body) as ApplyBody;
    return {
      id: r.id,
      changeId: r.change_id,
      changeTitle: body.changeTitle,
      bundleSha256: r.bundle_sha256,
      target: body.target,
      approvalId: r.approval_id,
      approvedBy: body.approvedBy,
      approvedVia: body.approvedVia,
      status: r.status,
      summary: body.summary,
      refusal: body.refusal,
      requestedBy: { door: r.requested_by_door as Actor['door'], id: r.requested_by_id },
      taskId: r.task_id,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      tasks: body.tasks,
      postCheck: body.postCheck,
      baselineAfter: body.baselineAfter,
      timings: body.timings,
      ...(withLog ? { log: r.log } : {}),
    };
  }

  private verificationOf(bundle: ChangeBundle | null, r: ChangeRow): VerificationBrief | null {
    const id = bundle?.verification.id;
    try {
      const v = id
        ? this.d.playbooks.verification(r.playbook_id, id)
        : this.d.playbooks.verification(r.playbook_id);
      if (!v) return null;
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
    } catch {
      return null;
    }
  }

  /** When an approved apply stops being usable. */
  private usableUntil(a: Approval): string | null {
    if (a.status !== 'approved' || !a.decidedAt) return null;
    const ttl = this.d.settings.get().approvals.applyTtlMinutes;
    return new Date(Date.parse(a.decidedAt) + ttl * 60_000).toISOString();
  }

  private statusOf(r: ChangeRow): { status: ChangeStatus; detail: string } {
    if (r.state === 'submitting')
      return { status: 'submitting', detail: 'Verifying, taking the baseline and previewing on the target.' };
    if (r.state === 'failed') {
      const e = r.error ? (JSON.parse(r.error) as { message: string }) : null;
      return { status: 'submit-failed', detail: e?.message ?? 'The submission failed.' };
    }
    const applies = this.store.applies({ changeId: r.id, limit: 50 });
    const running = applies.find((a) => isRunning(a.status));
    if (running)
      return { status: 'applying', detail: `Apply ${running.id.slice(0, 8)} is ${running.status}.` };
    const done = applies.find((a) => a.status === 'succeeded');
    if (done) return { status: 'applied', detail: `Applied at ${done.finished_at ?? done.started_at}.` };
    const approval = r.approval_id ? this.d.approvals.get(r.approval_id) : null;
    if (!approval) return { status: 'void', detail: 'No approval was asked for.' };
    const used = this.store.approvalUse(approval.id);
    if (used) {
      const a = applies.find((x) => x.id === used.apply_id);
      return {
        status: 'apply-failed',
        detail: `The approval was used by apply ${used.apply_id.slice(0, 8)}, which ${a?.status ?? 'ended'}. Submit again for a new approval.`,
      };
    }
    if (approval.status === 'denied')
      return { status: 'denied', detail: `Denied by ${approval.decidedBy?.door}:${approval.decidedBy?.id}.` };
    if (approval.status === 'expired' || approval.status === 'cancelled')
      return {
        status: 'void',
        detail: `The approval request was ${approval.status}${approval.note ? ` (${approval.note})` : ''}. Submit again.`,
      };
    const bundle = this.store.bundle(r);
    const v = this.verificationOf(bundle, r);
    if (!v || v.stale || v.status !== 'passed')
      return {
        status: 'void',
        detail: !v
          ? 'Its verification is gone.'
          : v.stale
            ? `The playbook changed since (a newer revision than ${r.revision}): this change can no longer be approved or applied. Submit the new revision.`
            : `Its verification is ${v.status}.`,
      };
    if (approval.status === 'approved') {
      const until = this.usableUntil(approval)!;
      if (until <= this.now())
        return {
          status: 'void',
          detail: `The approval expired at ${until} unused. Submit again for a new approval.`,
        };
      return {
        status: 'approved',
        detail: `Approved by ${approval.decidedBy?.door}:${approval.decidedBy?.id} (${approval.decidedVia}); usable once until ${until}.`,
      };
    }
    return { status: 'awaiting-approval', detail: 'Waiting for a person to review and approve it.' };
  }

  private toChange(r: ChangeRow, withPreview = true): Change {
    const bundle = this.store.bundle(r);
    const { status, detail } = this.statusOf(r);
    const approval = r.approval_id ? this.d.approvals.get(r.approval_id) : null;
    const use = approval ? this.store.approvalUse(approval.id) : null;
    let sandbox: Change['sandbox'] = null;
    if (r.sandbox_id) {
      const s = this.d.sandboxes().store.maybe(r.sandbox_id);
      sandbox = { id: r.sandbox_id, name: s?.name ?? bundle?.diff?.sandboxName ?? r.sandbox_id };
    }
    let playbookName = r.playbook_id;
    try {
      playbookName = this.d.playbooks.store.row(r.playbook_id).name;
    } catch {
      /* kept as id */
    }
    return {
      id: r.id,
      title: r.title,
      sha256: r.sha256,
      status,
      statusDetail: detail,
      target: { id: r.target_id, name: r.target_name },
      playbook: { id: r.playbook_id, name: playbookName, revision: r.revision, sha256: r.revision_sha256 },
      sandbox,
      diff: bundle?.diff
        ? { id: bundle.diff.diffId, sha256: bundle.diff.sha256, items: bundle.diff.items }
        : null,
      verification: this.verificationOf(bundle, r),
      baseline: bundle
        ? {
            sha256: bundle.baseline.sha256,
            takenAt: r.baseline_at ?? r.created_at,
            counts: counts(bundle.baseline),
            unscoped: bundle.baseline.unscoped,
          }
        : null,
      preview: withPreview && r.preview ? (JSON.parse(r.preview) as Preview) : null,
      approval: approval
        ? {
            id: approval.id,
            status: approval.status,
            decidedBy: approval.decidedBy,
            decidedVia: approval.decidedVia,
            decidedAt: approval.decidedAt,
            usableUntil: this.usableUntil(approval),
            usedBy: use?.apply_id ?? null,
          }
        : null,
      applies: this.store.applies({ changeId: r.id, limit: 50 }).map((a) => this.applyOf(a)),
      warnings: JSON.parse(r.warnings) as string[],
      error: r.error ? (JSON.parse(r.error) as Change['error']) : null,
      submitTaskId: r.submit_task_id,
      createdAt: r.created_at,
      createdBy: { door: r.created_by_door as Actor['door'], id: r.created_by_id },
      sessionId: r.session_id,
    };
  }

  /** A change by id, id prefix, bundle sha256 prefix, or the id of its approval. */
  private row(ref: string): ChangeRow {
    const byApproval = this.d.db.prepare('SELECT * FROM changes WHERE approval_id = ?').get(ref) as
      ChangeRow | undefined;
    return byApproval ?? this.store.row(ref);
  }

  get(ref: string): Change {
    this.settle();
    this.voidSuperseded();
    return this.toChange(this.row(ref));
  }

  list(opts: { target?: string; sandbox?: string; limit: number }): Array<Omit<Change, 'preview'>> {
    this.settle();
    this.voidSuperseded();
    const targetId = opts.target ? this.d.targets.store.row(opts.target).id : undefined;
    const sandboxId = opts.sandbox ? this.d.sandboxes().store.row(opts.sandbox).id : undefined;
    return this.store.list({ targetId, sandboxId, limit: opts.limit }).map((r) => {
      const { preview: _p, ...rest } = this.toChange(r, false);
      return rest;
    });
  }

  bundle(ref: string): { sha256: string; json: string; bundle: ChangeBundle } {
    const r = this.row(ref);
    if (!r.bundle || !r.sha256)
      throw new FluidError('CONFLICT', `Change ${r.id.slice(0, 8)} has no sealed bundle (${r.state}).`);
    return { sha256: r.sha256, json: r.bundle, bundle: openSealed(r.bundle, r.sha256) };
  }

  applies(opts: { target?: string; change?: string; limit: number }): Apply[] {
    this.settle();
    const targetId = opts.target ? this.d.targets.store.row(opts.target).id : undefined;
    const changeId = opts.change ? this.row(opts.change).id : undefined;
    return this.store.applies({ targetId, changeId, limit: opts.limit }).map((a) => this.applyOf(a));
  }

  applyGet(id: string): Apply {
    this.settle();
    return this.applyOf(this.store.apply(id), true);
  }

  /** An apply now, then its log as written and each change of state, until it ends. */
  async *watchApply(
    id: string,
    signal: AbortSignal,
  ): AsyncGenerator<
    { kind: 'state'; apply: Apply } | { kind: 'log'; data: string } | { kind: 'end'; apply: Apply }
  > {
    this.settle();
    let row = this.store.applyBrief(id);
    yield { kind: 'state', apply: this.applyOf(row) };
    let offset = 0;
    let last = `${row.status}|${row.body.length}`;
    let wake: (() => void) | null = null;
    const un = this.d.bus.subscribe('changes.changed', (e) => {
      if (e.applyId === id) wake?.();
    });
    try {
      for (;;) {
        const more = this.store.logSlice(id, offset);
        if (more) {
          offset += more.length;
          yield { kind: 'log', data: more };
        }
        row = this.store.applyBrief(id);
        const now = `${row.status}|${row.body.length}`;
        if (!isRunning(row.status)) {
          const tail = this.store.logSlice(id, offset);
          if (tail) yield { kind: 'log', data: tail };
          yield { kind: 'end', apply: this.applyOf(row) };
          return;
        }
        if (now !== last) {
          last = now;
          yield { kind: 'state', apply: this.applyOf(row) };
        }
        if (signal.aborted) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
          const t = setTimeout(resolve, 300);
          signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
        wake = null;
        this.settle();
      }
    } finally {
      un();
    }
  }

  // ---- approvals ------------------------------------------------------------------------------------

  /** Pending approvals of changes whose playbook moved on are withdrawn: they can never be used. */
  private voidSuperseded(): void {
    const rows = this.d.db
      .prepare(
        "SELECT c.* FROM changes c JOIN approvals a ON a.id = c.approval_id WHERE a.status = 'pending' AND c.state = 'ready'",
      )
      .all() as ChangeRow[];
    for (const r of rows) {
      const head = this.d.playbooks.store.head(r.playbook_id);
      if (head && head.sha256 !== r.revision_sha256) {
        this.d.approvals.cancel(
          r.approval_id!,
          { door: 'system', id: 'changes' },
          `The playbook has a newer revision (${head.number}) than this change's (${r.revision}); submit the new revision for its own approval.`,
        );
        this.emit(r.id);
      }
    }
  }

  /** Checked by the approvals room before an apply approval is given. */
  private guardApproval(a: Approval): void {
    const r = this.d.db.prepare('SELECT * FROM changes WHERE approval_id = ?').get(a.id) as
      ChangeRow | undefined;
    if (!r || !r.bundle || !r.sha256)
      throw new FluidError(
        'CONFLICT',
        'This apply request belongs to no sealed change; it cannot be approved.',
      );
    if (a.subjectHash !== r.sha256)
      throw new FluidError(
        'CONFLICT',
        'This request does not name the change’s bundle; it cannot be approved.',
        {
          reason: 'INTEGRITY',
        },
      );
    const bundle = openSealed(r.bundle, r.sha256);
    const v = this.verificationOf(bundle, r);
    if (!v || v.status !== 'passed' || v.stale || v.sha256 !== bundle.playbook.sha256)
      throw new FluidError(
        'CONFLICT',
        !v
          ? 'The verification this change relies on is gone; submit the change again.'
          : v.stale
            ? `The playbook was edited after this change was submitted (its head is no longer revision ${r.revision}): the verification is stale, so this change cannot be approved. Submit the new revision.`
            : `The verification of this change ${v.status}; it cannot be approved.`,
        { reason: 'VERIFICATION' },
      );
    const t = this.d.targets.store.maybe(r.target_id);
    if (!t || t.host_key_fp !== bundle.target.hostKeyFingerprint)
      throw new FluidError(
        'CONFLICT',
        t
          ? `Target ${t.name} was re-pinned to another host key since this change was submitted; submit it again.`
          : 'The target of this change was removed.',
        { reason: 'TARGET' },
      );
  }

  // ---- submitting -----------------------------------------------------------------------------------

  submit(
    input: { target: string; sandbox?: string; playbook?: string; revision?: number; title?: string },
    actor: Actor,
    sessionId: string | null = null,
  ): { change: Change; task: Task } {
    const target = this.d.targets.store.row(input.target);
    let playbookRef = input.playbook;
    let sandboxId: string | null = null;
    if (input.sandbox) {
      const sbx = this.d.sandboxes().store.row(input.sandbox);
      sandboxId = sbx.id;
      if (!playbookRef) {
        const p = this.d.playbooks.store.bySandbox(sbx.id);
        if (!p)
          throw new FluidError(
            'CONFLICT',
            `Sandbox ${sbx.name} has no playbook yet. Generate one from its diff first (generate_playbook, or fluid playbook generate ${sbx.name}).`,
          );
        playbookRef = p.id;
      }
    }
    const pb = this.d.playbooks.store.row(playbookRef!);
    sandboxId ??= pb.sandbox_id;
    const { revision } = this.d.playbooks.get(pb.id, input.revision);
    if (!revision) throw new FluidError('CONFLICT', `Playbook ${pb.name} has no revision.`);
    const rev = this.d.playbooks.store.revision(pb.id, revision.number);
    checkIntegrity(this.d.playbooks.store, rev);
    const id = randomUUID();
    const title = input.title ?? `${pb.name} revision ${rev.number}`;
    this.store.insert({
      id,
      title,
      targetId: target.id,
      targetName: target.name,
      playbookId: pb.id,
      revision: rev.number,
      revisionSha256: rev.sha256,
      sandboxId,
      actor,
      sessionId,
      now: this.now(),
    });
    this.d.audit.append({
      actor,
      action: 'change.submit',
      target: id,
      data: {
        title,
        target: target.name,
        playbook: pb.name,
        revision: rev.number,
        sha256: rev.sha256,
        sandbox: sandboxId,
      },
    });
    const task = this.d.tasks.start({
      kind: 'change.submit',
      title: `Review bundle: ${title}`,
      target: id,
      run: (ctx) => this.runSubmit(id, rev, actor, sessionId, ctx),
    });
    this.store.setTask(id, task.id);
    this.emit(id);
    return { change: this.get(id), task };
  }

  private async waitTask(taskId: string, ctx: TaskContext, say: (t: Task) => void): Promise<Task> {
    const off = this.d.bus.subscribe('tasks.changed', (t) => {
      if (t.id === taskId && t.status === 'running') say(t);
    });
    try {
      const t = await this.d.tasks.wait(taskId, ctx.signal);
      if (ctx.signal.aborted) {
        this.d.tasks.cancel(taskId);
        throw new FluidError('CANCELLED', 'Cancelled.');
      }
      return t;
    } finally {
      off();
    }
  }

  /** A passed verification of exactly this revision: found, awaited, or run now. */
  private async verified(rev: RevisionRow, actor: Actor, ctx: TaskContext): Promise<Verification> {
    const pb = this.d.playbooks.store.row(rev.playbook_id);
    const find = () => this.d.playbooks.store.verifications(pb.id).filter((v) => v.sha256 === rev.sha256);
    let rows = find();
    let passed = rows.find((v) => v.status === 'passed');
    if (!passed) {
      const running = rows.find((v) => v.status === 'running' && v.task_id);
      const taskId = running?.task_id ?? this.d.playbooks.verify(pb.id, rev.number, actor).id;
      ctx.progress(0.05, `Verifying ${pb.name} revision ${rev.number}`);
      await this.waitTask(taskId, ctx, (t) =>
        ctx.progress(0.05 + 0.45 * (t.progress ?? 0), `Verifying: ${t.message}`),
      );
      rows = find();
      passed = rows.find((v) => v.status === 'passed');
      if (!passed) {
        const latest = rows[0] ? this.d.playbooks.verification(pb.id, rows[0].id) : null;
        const failed = latest?.steps.find((s) => s.status === 'failed');
        throw new FluidError(
          'CONFLICT',
          `Revision ${rev.number} of ${pb.name} did not pass verification${failed ? ` (${failed.title}: ${failed.summary})` : latest ? ` (${latest.status})` : ''}. Fix the playbook and submit again.`,
          { reason: 'VERIFICATION', verification: latest?.id ?? null },
        );
      }
    }
    const v = this.d.playbooks.verification(pb.id, passed.id)!;
    if (v.stale)
      throw new FluidError(
        'CONFLICT',
        `${pb.name} has a newer revision than ${rev.number}; submit the head.`,
        { reason: 'VERIFICATION' },
      );
    return v;
  }

  private access(t: TargetRow, inventory: string): TargetAccess {
    return {
      id: t.id,
      name: t.name,
      address: t.address,
      port: t.port,
      fingerprint: t.host_key_fp ?? '',
      privateKey: this.d.targets.privateKey(t),
      inventory,
      route: this.d.targets.route(t),
    };
  }

  /** The Ansible collections this machine's ansible-playbook sees (none, with Debian's ansible-core). */
  private async collections(tools: AnsibleTools): Promise<Record<string, string>> {
    const galaxy = tools.playbook?.replace(/ansible-playbook$/, 'ansible-galaxy');
    if (!galaxy) return {};
    const ws = Workspace.create('[]\n', new Map());
    try {
      const r = await runTool(ws, galaxy, ['collection', 'list', '--format', 'json'], { timeoutMs: 60_000 });
      if (r.code !== 0) return {};
      const parsed = JSON.parse(r.log.slice(r.log.indexOf('{'))) as Record<
        string,
        Record<string, { version: string }>
      >;
      const out: Record<string, string> = {};
      for (const cols of Object.values(parsed))
        for (const [name, v] of Object.entries(cols)) out[name] ??= v.version;
      return out;
    } catch {
      return {};
    } finally {
      await ws.dispose();
    }
  }

  private async runSubmit(
    id: string,
    rev: RevisionRow,
    actor: Actor,
    _sessionId: string | null,
    ctx: TaskContext,
  ): Promise<Change> {
    const t0 = Date.now();
    try {
      const r = this.store.row(id);
      const target = this.d.targets.store.row(r.target_id);
      const pb = this.d.playbooks.store.row(rev.playbook_id);
      const warnings: string[] = [];

      // 1. What Fluid agrees to preview on production.
      ctx.progress(0.02, 'Checking the playbook');
      const plays = playsOf(rev.yaml);
      assertCheckModeSafe(plays);
      const offTarget = plays.filter((p) => !playMatches(p.hosts, target.name));
      if (offTarget.length)
        throw new FluidError(
          'VALIDATION',
          `Play${offTarget.length > 1 ? 's' : ''} ${offTarget.map((p) => `"${String(p.name ?? '?')}" (hosts: ${String(p.hosts)})`).join(', ')} would not run on the target: a change's inventory holds one host, ${target.name}, in the group "production". Use hosts: all.`,
        );

      // 2. Proven before anyone reviews it.
      const v = await this.verified(rev, actor, ctx);
      ctx.signal.throwIfAborted();

      // 3. The diff it came from (the one the verification compared the replay with).
      let diff: Diff | null = null;
      const diffId = v.replay?.agentDiffId ?? null;
      const sandboxId = r.sandbox_id ?? pb.sandbox_id;
      if (diffId && sandboxId)
        try {
          diff = this.d.diff.get(sandboxId, diffId, false);
        } catch (e) {
          warnings.push(`The diff ${diffId} is no longer stored (${toErrorPayload(e).message}).`);
        }
      const sbx = sandboxId ? this.d.sandboxes().store.maybe(sandboxId) : null;
      if (sbx && target.source_vm && sbx.source_name !== target.source_vm)
        warnings.push(
          `The change was made in a sandbox of ${sbx.source_name}; target ${target.name} is the production copy of ${target.source_vm}.`,
        );

      // 4. What it touches, and the tools and secrets it needs.
      const fromPlaybook = scopeOfPlaybook(rev.yaml);
      const scope = mergeScopes(
        diff ? scopeOfDiff(diff.items, diff.excluded) : mergeScopes(),
        fromPlaybook.scope,
      );
      const tools = await detectAnsible();
      requireTools(tools, ['playbook']);
      if (!tools.coreVersion)
        throw new FluidError('UNAVAILABLE', 'Could not tell which ansible-core this machine has.');
      const { refs, values } = secretRefs(this.d.secrets, pb.id, JSON.parse(rev.secrets) as SecretVar[]);
      const files = checkIntegrity(this.d.playbooks.store, rev);
      const inventory = inventorySlice(target);
      const collections = await this.collections(tools);

      // 5. The target's state before (the baseline).
      ctx.progress(
        0.52,
        `Reading the state of ${target.name} (${Object.values(scope).reduce((n, x) => n + x.length, 0)} items)`,
      );
      const conn = await this.d.targets.connect(target);
      let state1;
      try {
        state1 = await readState(conn, target.become, scope, ctx.signal);
      } finally {
        conn.close();
      }
      const baselineAt = this.now();

      // 6. The preview: check mode with --diff, read-only.
      ctx.progress(0.6, `Previewing on ${target.name} in check mode`);
      const p0 = Date.now();
      let n = 0;
      const outcome = await playOnTarget({
        yaml: rev.yaml,
        files,
        secrets: values,
        access: this.access(target, inventory),
        tools,
        check: true,
        previewAll: true,
        signal: ctx.signal,
        timeoutMs: CHECK_TIMEOUT_MS,
        onEvent: (e) => {
          if (e.event === 'task') ctx.progress(0.6 + Math.min(0.3, ++n * 0.02), `Preview: ${String(e.task)}`);
        },
      });
      if (outcome.run.timedOut) throw new FluidError('TIMEOUT', 'The preview took too long and was stopped.');
      const unreachable = outcome.tasks.filter((t) => t.status === 'unreachable');
      if (unreachable.length || (outcome.run.code !== 0 && !outcome.tasks.length))
        throw new FluidError(
          'HOST_UNREACHABLE',
          `The preview could not run on ${target.name}: ${unreachable[0]?.message ?? outcome.run.log.trim().split('\n').slice(-3).join(' ')}`,
        );
      if (!outcome.tasks.length)
        throw new FluidError(
          'VALIDATION',
          `The preview ran no task on ${target.name}: does the playbook have tasks?`,
        );
      const previewWarnings: string[] = [];
      for (const t of outcome.tasks) {
        if (t.status === 'failed')
          previewWarnings.push(
            `"${t.task}" could not be previewed (${(t.message ?? 'failed in check mode').split('\n')[0]}); in check mode an earlier task's change is only simulated, so a task that needs it cannot run. The apply's post-check will show its real result.`,
          );
        if (t.status === 'skipped' && /check mode/i.test(t.message ?? ''))
          previewWarnings.push(
            `"${t.task}" does not support check mode: the preview cannot say what it will do.`,
          );
      }
      for (const u of fromPlaybook.unscoped) warnings.push(`Not in the baseline: ${u}.`);
      const normalized = outcome.tasks.map(({ durationMs: _d, message: _m, ...rest }) => rest);
      const preview: Preview = {
        takenAt: baselineAt,
        durationMs: Date.now() - p0,
        sha256: sha256Hex(canonicalJson(normalized)),
        changed: changedTasks(outcome.tasks).length,
        tasks: outcome.tasks,
        log: outcome.run.log,
        warnings: previewWarnings,
      };

      // 7. The state again: the preview changed nothing it measures, and nobody else did meanwhile.
      ctx.progress(0.92, `Reading the state of ${target.name} again`);
      const conn2 = await this.d.targets.connect(target);
      let state2;
      try {
        state2 = await readState(conn2, target.become, scope, ctx.signal);
      } finally {
        conn2.close();
      }
      const moved = drift(state1, state2);
      if (moved.length)
        throw new FluidError(
          'CONFLICT',
          `${target.name} changed while the preview ran: ${moved.map((m) => m.detail).join('; ')}. Submit again when it is quiet.`,
          { reason: 'STALE', drift: moved },
        );

      // 8. Seal the bundle and ask a person.
      const cred = JSON.parse(target.credential) as TargetCredential;
      const jump = target.jump_host_id ? this.d.targets.toTarget(target).jump : null;
      const jumpFp = target.jump_host_id
        ? ((
            this.d.db.prepare('SELECT host_key_fp FROM hosts WHERE id = ?').get(target.jump_host_id) as
              { host_key_fp: string | null } | undefined
          )?.host_key_fp ?? null)
        : null;
      const bundle: ChangeBundle = {
        format: BUNDLE_FORMAT,
        target: {
          id: target.id,
          name: target.name,
          address: target.address,
          port: target.port,
          user: target.user,
          become: target.become,
          hostKeyFingerprint: target.host_key_fp!,
          credentialFingerprint: cred.fingerprint,
          jump: jump ? { hostId: jump.hostId, name: jump.hostName, fingerprint: jumpFp } : null,
        },
        playbook: {
          id: pb.id,
          name: pb.name,
          revision: rev.number,
          sha256: rev.sha256,
          yamlSha256: rev.yaml_sha256,
          yaml: rev.yaml,
          files: JSON.parse(rev.files) as ChangeBundle['playbook']['files'],
        },
        vars: { secrets: refs },
        inventory,
        tools: { ansibleCore: tools.coreVersion, python: tools.python, collections },
        diff:
          diff && sandboxId
            ? {
                sandboxId,
                sandboxName: sbx?.name ?? sandboxId,
                diffId: diff.id,
                sha256: diff.sha256,
                items: diff.items.length,
                excluded: diff.excluded,
              }
            : null,
        verification: {
          id: v.id,
          sha256: v.sha256,
          status: 'passed',
          finishedAt: v.finishedAt ?? v.startedAt,
          steps: v.steps.map((s) => ({ id: s.id, status: s.status })),
        },
        baseline: baselineOf(scope, state1, fromPlaybook.unscoped),
        preview: { sha256: preview.sha256, changed: preview.changed, tasks: normalized },
      };
      const sealed = seal(bundle);
      this.store.seal(id, { sha256: sealed.sha256, bundle: sealed.json, preview, baselineAt, warnings });
      const approval = this.d.approvals.request({
        kind: 'apply',
        title: `apply "${r.title}" to ${target.name}`,
        detail: `${preview.changed} task${preview.changed === 1 ? '' : 's'} would change ${target.name} (${target.user}@${target.address}). Playbook ${pb.name} revision ${rev.number} (sha256 ${rev.sha256.slice(0, 12)}…), verified; bundle sha256 ${sealed.sha256}. Review it in Changes → ${r.title}.`,
        risk: 'high',
        subject: JSON.parse(sealed.json) as unknown,
        requestedBy: actor,
        sandboxId: sandboxId,
        sessionId: r.session_id,
      });
      this.store.setApproval(id, approval.id);
      this.d.audit.append({
        actor,
        action: 'change.sealed',
        target: id,
        data: {
          bundle: sealed.sha256,
          approval: approval.id,
          target: target.name,
          revision: rev.sha256,
          baseline: bundle.baseline.sha256,
          preview: { sha256: preview.sha256, changed: preview.changed, tasks: outcome.tasks.length },
          verification: v.id,
          durationMs: Date.now() - t0,
        },
      });
      this.emit(id);
      ctx.progress(1, `Sealed ${sealed.sha256.slice(0, 12)}…; waiting for approval`);
      return this.get(id);
    } catch (err) {
      const payload =
        ctx.signal.aborted || isAbortError(err)
          ? { code: 'CANCELLED' as const, message: 'Cancelled.' }
          : toErrorPayload(err);
      this.store.fail(id, payload);
      this.d.audit.append({ actor, action: 'change.submit.fail', target: id, data: { error: payload } });
      this.emit(id);
      throw err;
    }
  }

  // ---- applying -----------------------------------------------------------------------------------------

  apply(ref: string, actor: Actor): { apply: Apply; task: Task } {
    this.settle();
    const r = this.row(ref);
    this.d.presence.demand(
      actor,
      {
        purpose: purposeOf('changes.apply', { change: r.id }),
        required: false,
        what: `apply "${r.title}" to ${r.target_name}`,
      },
      null,
    );
    if (r.state !== 'ready' || !r.sha256)
      throw new FluidError(
        'CONFLICT',
        `Change ${r.id.slice(0, 8)} is not ready to apply (${this.statusOf(r).status}).`,
      );
    const approval = r.approval_id ? this.d.approvals.get(r.approval_id) : null;
    const id = randomUUID();
    const body: ApplyBody = {
      changeTitle: r.title,
      target: { id: r.target_id, name: r.target_name },
      summary: 'Queued.',
      refusal: null,
      approvedBy: approval?.decidedBy ?? null,
      approvedVia: approval?.decidedVia ?? null,
      tasks: [],
      postCheck: null,
      baselineAfter: null,
      timings: {},
    };
    this.store.insertApply({
      id,
      change_id: r.id,
      target_id: r.target_id,
      bundle_sha256: r.sha256,
      approval_id: r.approval_id,
      status: 'queued',
      requested_by_door: actor.door,
      requested_by_id: actor.id,
      started_at: this.now(),
      body: JSON.stringify(body),
    });
    const task = this.d.tasks.start({
      kind: 'change.apply',
      title: `Apply ${r.title}`,
      target: r.id,
      run: (ctx) => this.runApply(id, actor, ctx),
    });
    this.store.updateApply(id, { task_id: task.id });
    this.d.audit.append({
      actor,
      action: 'change.apply.request',
      target: r.id,
      data: { apply: id, bundle: r.sha256, approval: r.approval_id, target: r.target_name },
    });
    this.emit(r.id, id);
    return { apply: this.applyOf(this.store.apply(id)), task };
  }

  private async lockTarget(
    applyId: string,
    t: TargetRow,
    ctx: TaskContext,
    set: (s: ApplyStatus, summary: string) => void,
  ): Promise<void> {
    let announced = '';
    for (;;) {
      const { holder, reclaimed } = this.d.targets.store.tryLock(
        t.id,
        applyId,
        { pid: process.pid, instance: this.instance },
        this.now(),
      );
      if (reclaimed)
        this.d.audit.append({
          actor: { door: 'system', id: 'changes' },
          action: 'target.lock.reclaim',
          target: t.id,
          data: { target: t.name, from: reclaimed.apply_id, ownerPid: reclaimed.owner_pid, by: applyId },
        });
      if (!holder) {
        this.d.bus.emit('targets.changed', { targetId: t.id, change: 'locked' });
        return;
      }
      if (announced !== holder.apply_id) {
        announced = holder.apply_id;
        set(
          'waiting',
          `Waiting: apply ${holder.apply_id.slice(0, 8)} holds ${t.name} (since ${holder.acquired_at}).`,
        );
        ctx.progress(null, `Waiting for apply ${holder.apply_id.slice(0, 8)} to finish on ${t.name}`);
      }
      await new Promise<void>((resolve) => {
        const un = this.d.bus.subscribe('targets.changed', (e) => {
          if (e.targetId === t.id) done();
        });
        const timer = setTimeout(() => done(), 500);
        const onAbort = () => done();
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        function done() {
          un();
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          resolve();
        }
      });
      if (ctx.signal.aborted) throw new FluidError('CANCELLED', 'Cancelled while waiting for the target.');
    }
  }

  private async runApply(applyId: string, actor: Actor, ctx: TaskContext): Promise<Apply> {
    const row0 = this.store.apply(applyId);
    const change = this.store.row(row0.change_id);
    const body = JSON.parse(row0.body) as ApplyBody;
    const t0 = Date.now();
    const save = (patch: Partial<Pick<ApplyRow, 'status' | 'finished_at' | 'approval_id'>> = {}) => {
      this.store.updateApply(applyId, { ...patch, body: JSON.stringify(body) });
      this.emit(change.id, applyId);
    };
    const set = (status: ApplyStatus, summary: string) => {
      body.summary = summary;
      save({ status });
    };
    const target = this.d.targets.store.maybe(change.target_id);
    if (!target) {
      body.refusal = { reason: 'TARGET', message: 'The target of this change was removed.', drift: [] };
      set('refused', body.refusal.message);
      throw new Refusal('TARGET', body.refusal.message);
    }
    let locked = false;
    let values = new Map<string, string>();
    const started: string[] = [];
    let phase: ApplyStatus = 'waiting';
    try {
      // 1. One apply per target.
      await this.lockTarget(applyId, target, ctx, set);
      locked = true;
      body.timings.lockWait = Date.now() - t0;

      // 2. Everything the approval was given for must still hold.
      phase = 'checking';
      set('checking', 'Checking the approval, the bundle and the target.');
      const sealed = this.bundle(change.id);
      const bundle = sealed.bundle;
      const approval = change.approval_id ? this.d.approvals.get(change.approval_id) : null;
      if (!approval) throw new Refusal('UNAPPROVED', 'This change has no approval request.');
      if (approval.subjectHash !== sealed.sha256)
        throw new Refusal(
          'INTEGRITY',
          `The approval names ${approval.subjectHash}, not this bundle (${sealed.sha256}).`,
        );
      const use = this.store.approvalUse(approval.id);
      if (use)
        throw new Refusal(
          'USED',
          `The approval of this change was already used by apply ${use.apply_id.slice(0, 8)} at ${use.used_at}. An approval is good for one apply: submit the change again for a new one.`,
        );
      if (approval.status === 'expired')
        throw new Refusal('EXPIRED', 'The approval request expired before anyone decided it. Submit again.');
      if (approval.status !== 'approved')
        throw new Refusal('UNAPPROVED', `The change is not approved (its request is ${approval.status}).`);
      body.approvedBy = approval.decidedBy;
      body.approvedVia = approval.decidedVia;
      const until = this.usableUntil(approval)!;
      if (until <= this.now())
        throw new Refusal(
          'EXPIRED',
          `The approval expired at ${until} (approvals.applyTtlMinutes after ${approval.decidedAt}). Submit the change again for a new approval.`,
        );
      const v = this.verificationOf(bundle, change);
      if (!v || v.status !== 'passed' || v.stale || v.sha256 !== bundle.playbook.sha256)
        throw new Refusal(
          'VERIFICATION',
          !v
            ? 'The verification this change relies on is gone.'
            : v.stale
              ? `The playbook was edited after approval (its head is no longer revision ${bundle.playbook.revision}): the approval is void. Submit the new revision for its own approval.`
              : `The verification is ${v.status}.`,
        );
      if (
        target.host_key_fp !== bundle.target.hostKeyFingerprint ||
        (JSON.parse(target.credential) as TargetCredential).fingerprint !==
          bundle.target.credentialFingerprint ||
        target.address !== bundle.target.address ||
        target.port !== bundle.target.port ||
        target.user !== bundle.target.user ||
        target.become !== bundle.target.become ||
        (target.jump_host_id ?? null) !== (bundle.target.jump?.hostId ?? null)
      )
        throw new Refusal(
          'TARGET',
          `Target ${target.name} changed (host key, credential, address, user or jump) since the change was approved.`,
        );
      const tools = await detectAnsible(true);
      requireTools(tools, ['playbook']);
      if (tools.coreVersion !== bundle.tools.ansibleCore)
        throw new Refusal(
          'TOOLS',
          `The bundle was approved for ansible-core ${bundle.tools.ansibleCore}; this machine has ${tools.coreVersion ?? 'none'}. Submit the change again with this version.`,
        );
      const collections = await this.collections(tools);
      if (canonicalJson(collections) !== canonicalJson(bundle.tools.collections))
        throw new Refusal(
          'TOOLS',
          'The Ansible collections on this machine changed since the change was approved. Submit it again.',
        );
      const verified = verifyBundle(bundle, this.d.playbooks.store, this.d.secrets);
      values = verified.values;

      // 3. The target must be as it was when the change was reviewed.
      const conn = await this.d.targets.connect(target);
      let now;
      try {
        now = await readState(conn, target.become, bundle.baseline.scope, ctx.signal);
      } finally {
        conn.close();
      }
      const moved = drift(bundle.baseline.state, now);
      if (moved.length)
        throw new Refusal(
          'STALE',
          `${target.name} changed since this change was reviewed: ${moved.map((m) => m.detail).join('; ')}. Nothing was applied. Review what changed, then submit the change again.`,
          moved,
        );
      ctx.signal.throwIfAborted();

      // 4. Use the approval, once.
      if (!this.store.useApproval(approval.id, applyId, this.now()))
        throw new Refusal('USED', 'The approval of this change was just used by another apply.');
      this.d.audit.append({
        actor,
        action: 'change.apply.start',
        target: change.id,
        data: {
          apply: applyId,
          bundle: sealed.sha256,
          approval: approval.id,
          approvedBy: approval.decidedBy,
          approvedVia: approval.decidedVia,
          target: target.name,
          baseline: bundle.baseline.sha256,
        },
      });
      body.timings.checks = Date.now() - t0 - (body.timings.lockWait ?? 0);

      // 5. Exactly the approved bytes.
      phase = 'running';
      set(
        'running',
        `Running ${bundle.playbook.name} revision ${bundle.playbook.revision} on ${target.name}.`,
      );
      const live = new LineScrubber(values.values(), (text) => this.store.appendLog(applyId, text));
      const access = this.access(target, bundle.inventory);
      const r1 = Date.now();
      let n = 0;
      let lastSave = 0;
      live.push(`$ ansible-playbook playbook.yml --diff   (bundle ${sealed.sha256})\n`);
      const run = await playOnTarget({
        yaml: bundle.playbook.yaml,
        files: verified.files,
        secrets: values,
        access,
        tools,
        check: false,
        signal: ctx.signal,
        timeoutMs: PLAY_TIMEOUT_MS,
        onLog: (c) => live.push(c),
        onEvent: (e) => {
          if (e.event === 'task') {
            started.push(String(e.task ?? ''));
            ctx.progress(null, `Task ${++n}: ${String(e.task)}`);
          }
          if (e.event === 'result') {
            body.tasks.push({
              play: String(e.play ?? ''),
              task: String(e.task ?? ''),
              action: String(e.action ?? ''),
              host: String(e.host ?? ''),
              status: e.status as Apply['tasks'][number]['status'],
              changed: e.changed === true,
              handler: e.handler === true,
              message: typeof e.message === 'string' ? scrub(e.message, values.values()) : null,
              durationMs: typeof e.duration_ms === 'number' ? e.duration_ms : null,
            });
            if (Date.now() - lastSave > 250) {
              lastSave = Date.now();
              save();
            }
          }
        },
      }).finally(() => live.flush());
      body.timings.run = Date.now() - r1;
      const failed = failedTasks(run.tasks);
      if (run.run.code !== 0 || failed.length || run.run.timedOut) {
        const summary = run.run.timedOut
          ? 'ansible-playbook took too long and was stopped.'
          : `The apply failed${failed.length ? ` at ${failed.map((f) => `"${f.task}"`).join(', ')}: ${(failed[0]!.message ?? '').split('\n')[0]}` : ` (ansible-playbook exited ${run.run.code ?? run.run.signal})`}. Tasks that ran: ${run.started.length}. Production may be partly changed; the log and per-task results say what ran.`;
        set('failed', summary);
        body.timings.total = Date.now() - t0;
        save({ finished_at: this.now() });
        throw new FluidError('INTERNAL', summary);
      }

      // 6. Production should need nothing more, and have what the sandbox had.
      phase = 'post-check';
      set('post-check', 'Checking production in check mode, and its state against the change.');
      const c1 = Date.now();
      live.push(`\n$ ansible-playbook playbook.yml --check --diff   (post-apply check)\n`);
      const check = await playOnTarget({
        yaml: bundle.playbook.yaml,
        files: verified.files,
        secrets: values,
        access,
        tools,
        check: true,
        signal: ctx.signal,
        timeoutMs: CHECK_TIMEOUT_MS,
        onLog: (c) => live.push(c),
      }).finally(() => live.flush());
      const conn2 = await this.d.targets.connect(target);
      let after;
      try {
        after = await readState(conn2, target.become, bundle.baseline.scope, ctx.signal);
      } finally {
        conn2.close();
      }
      let items: Diff['items'] = [];
      if (bundle.diff)
        try {
          const d = this.d.diff.get(bundle.diff.sandboxId, bundle.diff.diffId, false);
          const skip = new Set(bundle.diff.excluded);
          items = d.items.filter((i) => !skip.has(i.id));
        } catch {
          live.push(
            `note: the diff ${bundle.diff.diffId} is no longer stored; production is not compared item by item.\n`,
          );
          live.flush();
        }
      const wrong = mismatches(items, after);
      const changedAgain = changedTasks(check.tasks);
      const checkFailed = failedTasks(check.tasks);
      body.postCheck = {
        changed: changedAgain.length,
        tasks: check.tasks,
        mismatches: wrong,
        matches: !changedAgain.length && !wrong.length && !checkFailed.length && check.run.code === 0,
      };
      const baselineAfter = baselineOf(bundle.baseline.scope, after, bundle.baseline.unscoped);
      body.baselineAfter = { sha256: baselineAfter.sha256 };
      this.d.targets.store.setBaseline(target.id, {
        sha256: baselineAfter.sha256,
        takenAt: this.now(),
        applyId,
      });
      body.timings.postCheck = Date.now() - c1;
      body.timings.total = Date.now() - t0;
      const changedCount = run.tasks.filter((t) => t.changed).length;
      set(
        'succeeded',
        body.postCheck.matches
          ? `Applied: ${changedCount} task${changedCount === 1 ? '' : 's'} changed ${target.name}; a second run in check mode changes nothing and the target has every item of the change.`
          : `Applied, but production does not match: ${[
              changedAgain.length
                ? `check mode would still change ${changedAgain.map((t) => `"${t.task}"`).join(', ')}`
                : '',
              checkFailed.length
                ? `check mode failed at ${checkFailed.map((t) => `"${t.task}"`).join(', ')}`
                : '',
              wrong.length ? wrong.map((w) => w.detail).join('; ') : '',
            ]
              .filter(Boolean)
              .join('; ')}.`,
      );
      save({ finished_at: this.now() });
      this.d.audit.append({
        actor,
        action: 'change.apply',
        target: change.id,
        data: {
          apply: applyId,
          bundle: sealed.sha256,
          approval: approval.id,
          approvedBy: approval.decidedBy,
          target: target.name,
          status: 'succeeded',
          tasks: run.tasks.length,
          changed: changedCount,
          postCheck: {
            changed: body.postCheck.changed,
            matches: body.postCheck.matches,
            mismatches: wrong.length,
          },
          baselineAfter: baselineAfter.sha256,
          durationMs: body.timings.total,
        },
      });
      return this.applyOf(this.store.apply(applyId));
    } catch (err) {
      const cancelled = ctx.signal.aborted || isAbortError(err);
      const p = toErrorPayload(err);
      const current = this.store.apply(applyId).status;
      if (err instanceof Refusal) {
        const data = err.data as { reason: RefusalReason; drift: DriftItem[] };
        body.refusal = { reason: data.reason, message: err.message, drift: data.drift };
        body.timings.total = Date.now() - t0;
        set('refused', err.message);
        save({ finished_at: this.now() });
      } else if (cancelled) {
        const results = new Set(body.tasks.map((t) => t.task));
        const during = started.filter((s) => !results.has(s));
        body.summary =
          phase === 'running'
            ? `Cancelled during the run. Tasks that ran: ${[...results].map((s) => `"${s}"`).join(', ') || 'none'}${during.length ? `; stopped during "${during[during.length - 1]}"` : ''}. Production may be partly changed; nothing after that ran.`
            : phase === 'post-check'
              ? 'Cancelled during the post-apply check: the playbook had run completely; the check did not finish.'
              : `Cancelled while ${phase === 'waiting' ? 'waiting for the target' : 'checking'}: nothing ran on the target.`;
        body.timings.total = Date.now() - t0;
        save({ status: 'cancelled', finished_at: this.now() });
      } else if (isRunning(current)) {
        body.summary = `${phase === 'post-check' ? 'The post-apply check failed' : 'The apply failed'}: ${p.message}`;
        body.timings.total = Date.now() - t0;
        save({ status: 'failed', finished_at: this.now() });
      }
      this.d.audit.append({
        actor,
        action: err instanceof Refusal ? 'change.apply.refuse' : 'change.apply',
        target: change.id,
        data: {
          apply: applyId,
          bundle: change.sha256,
          approval: change.approval_id,
          approvedBy: body.approvedBy,
          target: change.target_name,
          status: this.store.apply(applyId).status,
          reason: err instanceof Refusal ? (err.data as { reason: string }).reason : null,
          drift:
            err instanceof Refusal
              ? (err.data as { drift: DriftItem[] }).drift.map((d) => d.detail)
              : undefined,
          error: cancelled ? null : p.message,
          ran: body.tasks.map((t) => t.task),
        },
      });
      throw err;
    } finally {
      if (locked) {
        this.d.targets.store.unlock(target.id, applyId);
        this.d.bus.emit('targets.changed', { targetId: target.id, change: 'locked' });
      }
      this.emit(change.id, applyId);
    }
  }
}
