/**
 * Rows of the changes room: changes (a sealed bundle never changes: triggers refuse it), applies with
 * their log and per-task results, and the single use of each approval.
 *
 * An approval is used by inserting its id into apply_approvals inside the same transaction that
 * starts the run: the primary key makes a second use fail, whichever process tries.
 */
import type { Apply, ChangeBundle, Preview } from '../../shared/contract/changes.ts';
import type { ErrorPayload } from '../../shared/errors.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Db } from '../store/db.ts';

export const CHANGES_MIGRATION = {
  name: 'change-bundles-and-applies',
  sql: `
    CREATE TABLE changes (
      id TEXT PRIMARY KEY,
      title TEXT NOT NULL,
      target_id TEXT NOT NULL,
      target_name TEXT NOT NULL,
      playbook_id TEXT NOT NULL,
      revision INTEGER NOT NULL,
      revision_sha256 TEXT NOT NULL,
      sandbox_id TEXT,
      state TEXT NOT NULL CHECK (state IN ('submitting','ready','failed')),
      -- The bundle's canonical JSON and its sha256 (the change's identity), once sealed.
      sha256 TEXT,
      bundle TEXT,
      baseline_at TEXT,
      preview TEXT,
      approval_id TEXT,
      submit_task_id TEXT,
      warnings TEXT NOT NULL DEFAULT '[]',
      error TEXT,
      created_at TEXT NOT NULL,
      created_by_door TEXT NOT NULL,
      created_by_id TEXT NOT NULL,
      session_id TEXT
    );
    CREATE INDEX changes_target ON changes(target_id, created_at);
    CREATE INDEX changes_sandbox ON changes(sandbox_id, created_at);
    CREATE TRIGGER changes_sealed BEFORE UPDATE OF sha256, bundle, preview, baseline_at, target_id, playbook_id, revision, revision_sha256 ON changes
      WHEN OLD.sha256 IS NOT NULL
      BEGIN SELECT RAISE(ABORT, 'a sealed change bundle is immutable'); END;
    CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes WHEN OLD.sha256 IS NOT NULL
      BEGIN SELECT RAISE(ABORT, 'a sealed change bundle is immutable'); END;

    CREATE TABLE change_applies (
      id TEXT PRIMARY KEY,
      change_id TEXT NOT NULL,
      target_id TEXT NOT NULL,
      bundle_sha256 TEXT NOT NULL,
      approval_id TEXT,
      status TEXT NOT NULL,
      task_id TEXT,
      requested_by_door TEXT NOT NULL,
      requested_by_id TEXT NOT NULL,
      started_at TEXT NOT NULL,
      finished_at TEXT,
      log TEXT NOT NULL DEFAULT '',
      -- Summary, refusal, approver, per-task results, post-check, new baseline, timings (JSON).
      body TEXT NOT NULL
    );
    CREATE INDEX change_applies_target ON change_applies(target_id, started_at);
    CREATE INDEX change_applies_change ON change_applies(change_id, started_at);

    -- Each approval of an apply is used once: by the apply that ran it.
    CREATE TABLE apply_approvals (
      approval_id TEXT PRIMARY KEY,
      apply_id TEXT NOT NULL,
      used_at TEXT NOT NULL
    );
    CREATE TRIGGER apply_approvals_no_update BEFORE UPDATE ON apply_approvals
      BEGIN SELECT RAISE(ABORT, 'a used approval stays used'); END;
    CREATE TRIGGER apply_approvals_no_delete BEFORE DELETE ON apply_approvals
      BEGIN SELECT RAISE(ABORT, 'a used approval stays used'); END;
  `,
};

export interface ChangeRow {
  id: string;
  title: string;
  target_id: string;
  target_name: string;
  playbook_id: string;
  revision: number;
  revision_sha256: string;
  sandbox_id: string | null;
  state: 'submitting' | 'ready' | 'failed';
  sha256: string | null;
  bundle: string | null;
  baseline_at: string | null;
  preview: string | null;
  approval_id: string | null;
  submit_task_id: string | null;
  warnings: string;
  error: string | null;
  created_at: string;
  created_by_door: string;
  created_by_id: string;
  session_id: string | null;
}

export interface ApplyRow {
  id: string;
  change_id: string;
  target_id: string;
  bundle_sha256: string;
  approval_id: string | null;
  status: Apply['status'];
  task_id: string | null;
  requested_by_door: string;
  requested_by_id: string;
  started_at: string;
  finished_at: string | null;
  log: string;
  body: string;
}

/** The JSON body of an apply row. */
export type ApplyBody = Pick<
  Apply,
  | 'summary'
  | 'refusal'
  | 'approvedBy'
  | 'approvedVia'
  | 'tasks'
  | 'postCheck'
  | 'baselineAfter'
  | 'timings'
  | 'changeTitle'
  | 'target'
>;

const LOG_CAP = 4 * 1024 * 1024;

export class ChangeStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  insert(r: {
    id: string;
    title: string;
    targetId: string;
    targetName: string;
    playbookId: string;
    revision: number;
    revisionSha256: string;
    sandboxId: string | null;
    actor: Actor;
    sessionId: string | null;
    now: string;
  }): void {
    this.db
      .prepare(
        `INSERT INTO changes (id, title, target_id, target_name, playbook_id, revision, revision_sha256, sandbox_id, state,
           created_at, created_by_door, created_by_id, session_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'submitting', ?, ?, ?, ?)`,
      )
      .run(
        r.id,
        r.title,
        r.targetId,
        r.targetName,
        r.playbookId,
        r.revision,
        r.revisionSha256,
        r.sandboxId,
        r.now,
        r.actor.door,
        r.actor.id,
        r.sessionId,
      );
  }

  row(ref: string): ChangeRow {
    const exact = this.db.prepare('SELECT * FROM changes WHERE id = ?').get(ref) as ChangeRow | undefined;
    if (exact) return exact;
    if (/^[0-9a-f-]{4,}$/.test(ref)) {
      const hits = this.db
        .prepare('SELECT * FROM changes WHERE id LIKE ? OR sha256 LIKE ? LIMIT 2')
        .all(`${ref}%`, `${ref}%`) as ChangeRow[];
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1)
        throw new FluidError('VALIDATION', `"${ref}" names more than one change; give more of its id.`);
    }
    throw new FluidError('NOT_FOUND', `No change "${ref}". \`fluid change list\` shows them.`);
  }

  list(opts: { targetId?: string; sandboxId?: string; limit: number }): ChangeRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.targetId) {
      where.push('target_id = ?');
      args.push(opts.targetId);
    }
    if (opts.sandboxId) {
      where.push('sandbox_id = ?');
      args.push(opts.sandboxId);
    }
    return this.db
      .prepare(
        `SELECT * FROM changes ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      )
      .all(...args, opts.limit) as ChangeRow[];
  }

  /** Anything on this target not finished yet (for removing a target). */
  openOnTarget(targetId: string): ChangeRow[] {
    return this.db
      .prepare("SELECT * FROM changes WHERE target_id = ? AND state = 'submitting'")
      .all(targetId) as ChangeRow[];
  }

  setTask(id: string, taskId: string): void {
    this.db.prepare('UPDATE changes SET submit_task_id = ? WHERE id = ?').run(taskId, id);
  }

  setWarnings(id: string, warnings: string[]): void {
    this.db.prepare('UPDATE changes SET warnings = ? WHERE id = ?').run(JSON.stringify(warnings), id);
  }

  /** Seal the bundle: written once, then the triggers keep it as it is. */
  seal(
    id: string,
    s: { sha256: string; bundle: string; preview: Preview; baselineAt: string; warnings: string[] },
  ): void {
    this.db
      .prepare(
        "UPDATE changes SET state = 'ready', sha256 = ?, bundle = ?, preview = ?, baseline_at = ?, warnings = ? WHERE id = ? AND state = 'submitting'",
      )
      .run(s.sha256, s.bundle, JSON.stringify(s.preview), s.baselineAt, JSON.stringify(s.warnings), id);
  }

  setApproval(id: string, approvalId: string): void {
    this.db
      .prepare('UPDATE changes SET approval_id = ? WHERE id = ? AND approval_id IS NULL')
      .run(approvalId, id);
  }

  fail(id: string, error: ErrorPayload): void {
    this.db
      .prepare("UPDATE changes SET state = 'failed', error = ? WHERE id = ? AND state = 'submitting'")
      .run(JSON.stringify(error), id);
  }

  bundle(r: ChangeRow): ChangeBundle | null {
    return r.bundle ? (JSON.parse(r.bundle) as ChangeBundle) : null;
  }

  // ---- applies ----------------------------------------------------------------------------------------

  insertApply(a: Omit<ApplyRow, 'log' | 'finished_at' | 'task_id'>): void {
    this.db
      .prepare(
        `INSERT INTO change_applies (id, change_id, target_id, bundle_sha256, approval_id, status, requested_by_door, requested_by_id, started_at, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        a.id,
        a.change_id,
        a.target_id,
        a.bundle_sha256,
        a.approval_id,
        a.status,
        a.requested_by_door,
        a.requested_by_id,
        a.started_at,
        a.body,
      );
  }

  apply(id: string): ApplyRow {
    const r = this.db.prepare('SELECT * FROM change_applies WHERE id = ?').get(id) as ApplyRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No apply ${id}.`);
    return r;
  }

  /** One apply without its log (for following it). */
  applyBrief(id: string): ApplyRow {
    const r = this.db
      .prepare(
        `SELECT id, change_id, target_id, bundle_sha256, approval_id, status, task_id, requested_by_door, requested_by_id,
           started_at, finished_at, '' AS log, body FROM change_applies WHERE id = ?`,
      )
      .get(id) as ApplyRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No apply ${id}.`);
    return r;
  }

  /** Applies without their logs, newest first. */
  applies(opts: { targetId?: string; changeId?: string; limit: number }): ApplyRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.targetId) {
      where.push('target_id = ?');
      args.push(opts.targetId);
    }
    if (opts.changeId) {
      where.push('change_id = ?');
      args.push(opts.changeId);
    }
    return this.db
      .prepare(
        `SELECT id, change_id, target_id, bundle_sha256, approval_id, status, task_id, requested_by_door, requested_by_id,
           started_at, finished_at, '' AS log, body
         FROM change_applies ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, rowid DESC LIMIT ?`,
      )
      .all(...args, opts.limit) as ApplyRow[];
  }

  updateApply(
    id: string,
    patch: Partial<Pick<ApplyRow, 'status' | 'task_id' | 'finished_at' | 'body' | 'approval_id'>>,
  ): void {
    const keys = Object.keys(patch) as Array<keyof typeof patch>;
    if (!keys.length) return;
    this.db
      .prepare(`UPDATE change_applies SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`)
      .run(...keys.map((k) => patch[k] ?? null), id);
  }

  appendLog(id: string, text: string): void {
    this.db
      .prepare(
        `UPDATE change_applies SET log = CASE WHEN length(log) + length(?) > ${LOG_CAP} THEN log ELSE log || ? END WHERE id = ?`,
      )
      .run(text, text, id);
  }

  logSlice(id: string, from: number): string {
    const r = this.db
      .prepare('SELECT substr(log, ?) AS s FROM change_applies WHERE id = ?')
      .get(from + 1, id) as { s: string } | undefined;
    return r?.s ?? '';
  }

  /**
   * Use an approval for an apply, once: false when it was used already (by this or any process).
   */
  useApproval(approvalId: string, applyId: string, now: string): boolean {
    try {
      this.db
        .prepare('INSERT INTO apply_approvals (approval_id, apply_id, used_at) VALUES (?, ?, ?)')
        .run(approvalId, applyId, now);
      return true;
    } catch (e) {
      if (/UNIQUE|PRIMARY/.test((e as Error).message)) return false;
      throw e;
    }
  }

  approvalUse(approvalId: string): { apply_id: string; used_at: string } | null {
    return (
      (this.db
        .prepare('SELECT apply_id, used_at FROM apply_approvals WHERE approval_id = ?')
        .get(approvalId) as { apply_id: string; used_at: string } | undefined) ?? null
    );
  }

  /** Applies whose task is not running any more but whose row says it is (the process died). */
  runningApplies(): ApplyRow[] {
    return this.db
      .prepare(
        "SELECT * FROM change_applies WHERE status IN ('queued','waiting','checking','running','post-check')",
      )
      .all() as ApplyRow[];
  }
}
