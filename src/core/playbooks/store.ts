/**
 * Rows of the playbooks room: playbooks (one per sandbox, or written by hand), their immutable
 * revisions, the files revisions ship (content-addressed), and verification runs.
 *
 * Revisions are never updated or deleted (triggers refuse it): a save is always a new row. The
 * tables of the first playbook model (migration 4: playbooks + playbook_tasks) stay; a playbook
 * that only has task rows gets its first revision rendered from them the first time it is read.
 */
import { createHash, randomUUID } from 'node:crypto';
import type {
  GenerationReport,
  SecretVar,
  ShippedFile,
  Verification,
} from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Db } from '../store/db.ts';

export const PLAYBOOKS_MIGRATION = {
  name: 'playbook-revisions',
  sql: `
    ALTER TABLE playbooks ADD COLUMN sandbox_id TEXT;
    ALTER TABLE playbooks ADD COLUMN created_by_door TEXT NOT NULL DEFAULT 'agent';
    ALTER TABLE playbooks ADD COLUMN created_by_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX playbooks_sandbox ON playbooks(sandbox_id);

    -- Every save is a new row; rows never change (the triggers refuse it).
    CREATE TABLE playbook_revisions (
      id TEXT PRIMARY KEY,
      playbook_id TEXT NOT NULL REFERENCES playbooks(id),
      number INTEGER NOT NULL,
      -- SHA-256 of the revision manifest (playbook.yml and every shipped file).
      sha256 TEXT NOT NULL,
      yaml_sha256 TEXT NOT NULL,
      yaml TEXT NOT NULL,
      files TEXT NOT NULL,
      -- Variables the person supplies (names and descriptions only; values live in the secret store).
      secrets TEXT NOT NULL,
      generation TEXT,
      -- Fingerprints of the tasks Fluid generated in this revision (to tell them from written ones).
      generated_tasks TEXT NOT NULL DEFAULT '[]',
      origin TEXT NOT NULL CHECK (origin IN ('written','edited','generated','migrated')),
      message TEXT NOT NULL,
      author_door TEXT NOT NULL,
      author_id TEXT NOT NULL,
      created_at TEXT NOT NULL,
      UNIQUE (playbook_id, number)
    );
    CREATE TRIGGER playbook_revisions_no_update BEFORE UPDATE ON playbook_revisions
      BEGIN SELECT RAISE(ABORT, 'playbook revisions are immutable'); END;
    CREATE TRIGGER playbook_revisions_no_delete BEFORE DELETE ON playbook_revisions
      BEGIN SELECT RAISE(ABORT, 'playbook revisions are immutable'); END;

    -- Files revisions ship beside the playbook, by the SHA-256 of their bytes.
    CREATE TABLE playbook_blobs (
      sha256 TEXT PRIMARY KEY,
      size INTEGER NOT NULL,
      content BLOB NOT NULL
    );

    CREATE TABLE playbook_verifications (
      id TEXT PRIMARY KEY,
      playbook_id TEXT NOT NULL REFERENCES playbooks(id),
      revision INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('running','passed','failed','cancelled','interrupted')),
      task_id TEXT,
      requested_by_door TEXT NOT NULL,
      requested_by_id TEXT NOT NULL,
      started_at TEXT NOT NULL,
      finished_at TEXT,
      -- Steps, replay facts, tool versions and timings as JSON.
      body TEXT NOT NULL
    );
    CREATE INDEX playbook_verifications_playbook ON playbook_verifications(playbook_id, started_at);
  `,
};

export interface PlaybookRow {
  id: string;
  name: string;
  hosts: string;
  become: number;
  session_id: string | null;
  sandbox_id: string | null;
  created_by_door: string;
  created_by_id: string;
  created_at: string;
  updated_at: string;
}

export interface RevisionRow {
  id: string;
  playbook_id: string;
  number: number;
  sha256: string;
  yaml_sha256: string;
  yaml: string;
  files: string;
  secrets: string;
  generation: string | null;
  generated_tasks: string;
  origin: 'written' | 'edited' | 'generated' | 'migrated';
  message: string;
  author_door: string;
  author_id: string;
  created_at: string;
}

export interface NewRevision {
  playbookId: string;
  yaml: string;
  yamlSha256: string;
  sha256: string;
  files: ShippedFile[];
  secrets: SecretVar[];
  generation: GenerationReport | null;
  generatedTasks: string[];
  origin: RevisionRow['origin'];
  message: string;
  author: Actor;
  createdAt: string;
  /** The head the change was made on; another head by now is a CONFLICT. */
  base: number | null;
}

export interface VerificationRow {
  id: string;
  playbook_id: string;
  revision: number;
  sha256: string;
  status: Verification['status'];
  task_id: string | null;
  requested_by_door: string;
  requested_by_id: string;
  started_at: string;
  finished_at: string | null;
  body: string;
}

export const sha256Hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export class PlaybookStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  // ---- playbooks ----------------------------------------------------------------------------------

  insert(p: {
    name: string;
    sandboxId: string | null;
    sessionId: string | null;
    actor: Actor;
    now: string;
  }): PlaybookRow {
    const id = randomUUID();
    try {
      this.db
        .prepare(
          `INSERT INTO playbooks (id, name, hosts, become, session_id, sandbox_id, created_by_door, created_by_id, created_at, updated_at)
           VALUES (?, ?, 'all', 1, ?, ?, ?, ?, ?, ?)`,
        )
        .run(id, p.name, p.sessionId, p.sandboxId, p.actor.door, p.actor.id, p.now, p.now);
    } catch (e) {
      if (/UNIQUE/.test((e as Error).message))
        throw new FluidError(
          'CONFLICT',
          `A playbook named "${p.name}" exists; edit it or choose another name.`,
        );
      throw e;
    }
    return this.row(id);
  }

  row(ref: string): PlaybookRow {
    const r = this.db.prepare('SELECT * FROM playbooks WHERE id = ? OR name = ?').get(ref, ref) as
      PlaybookRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No playbook "${ref}". \`fluid playbook list\` shows them.`);
    return r;
  }

  maybe(ref: string): PlaybookRow | null {
    return (
      (this.db.prepare('SELECT * FROM playbooks WHERE id = ? OR name = ?').get(ref, ref) as
        PlaybookRow | undefined) ?? null
    );
  }

  list(sandboxId?: string): PlaybookRow[] {
    return (
      sandboxId
        ? this.db
            .prepare('SELECT * FROM playbooks WHERE sandbox_id = ? ORDER BY updated_at DESC')
            .all(sandboxId)
        : this.db.prepare('SELECT * FROM playbooks ORDER BY updated_at DESC').all()
    ) as PlaybookRow[];
  }

  bySandbox(sandboxId: string): PlaybookRow | null {
    return (
      (this.db
        .prepare('SELECT * FROM playbooks WHERE sandbox_id = ? ORDER BY created_at LIMIT 1')
        .get(sandboxId) as PlaybookRow | undefined) ?? null
    );
  }

  bySession(sessionId: string): PlaybookRow[] {
    return this.db
      .prepare('SELECT * FROM playbooks WHERE session_id = ? ORDER BY created_at')
      .all(sessionId) as PlaybookRow[];
  }

  linkSandbox(id: string, sandboxId: string): void {
    this.db
      .prepare('UPDATE playbooks SET sandbox_id = ? WHERE id = ? AND sandbox_id IS NULL')
      .run(sandboxId, id);
  }

  /** Task rows of the first playbook model (before revisions), in order. */
  legacyTasks(id: string): Array<{ name: string; module: string; params: Record<string, unknown> }> {
    return (
      this.db
        .prepare('SELECT name, module, params FROM playbook_tasks WHERE playbook_id = ? ORDER BY position')
        .all(id) as Array<{
        name: string;
        module: string;
        params: string;
      }>
    ).map((t) => ({
      name: t.name,
      module: t.module,
      params: JSON.parse(t.params) as Record<string, unknown>,
    }));
  }

  // ---- revisions ----------------------------------------------------------------------------------

  head(playbookId: string): RevisionRow | null {
    return (
      (this.db
        .prepare('SELECT * FROM playbook_revisions WHERE playbook_id = ? ORDER BY number DESC LIMIT 1')
        .get(playbookId) as RevisionRow | undefined) ?? null
    );
  }

  revision(playbookId: string, number: number): RevisionRow {
    const r = this.db
      .prepare('SELECT * FROM playbook_revisions WHERE playbook_id = ? AND number = ?')
      .get(playbookId, number) as RevisionRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `The playbook has no revision ${number}.`);
    return r;
  }

  revisions(playbookId: string): RevisionRow[] {
    return this.db
      .prepare('SELECT * FROM playbook_revisions WHERE playbook_id = ? ORDER BY number DESC')
      .all(playbookId) as RevisionRow[];
  }

  count(playbookId: string): number {
    return (
      this.db
        .prepare('SELECT COUNT(*) AS n FROM playbook_revisions WHERE playbook_id = ?')
        .get(playbookId) as { n: number }
    ).n;
  }

  /** Append a revision (one transaction: the head check, the blobs, the row). */
  addRevision(r: NewRevision, blobs: ReadonlyMap<string, Buffer>): RevisionRow {
    return this.db.transaction((): RevisionRow => {
      const head = this.head(r.playbookId);
      if (r.base !== null && (head?.number ?? 0) !== r.base)
        throw new FluidError(
          'CONFLICT',
          `The playbook changed meanwhile: its head is revision ${head?.number ?? 0}, not ${r.base}. Reload it, reapply your edit and save again.`,
          { head: head?.number ?? 0 },
        );
      for (const [sha, content] of blobs)
        this.db
          .prepare('INSERT OR IGNORE INTO playbook_blobs (sha256, size, content) VALUES (?, ?, ?)')
          .run(sha, content.length, content);
      const id = randomUUID();
      this.db
        .prepare(
          `INSERT INTO playbook_revisions (id, playbook_id, number, sha256, yaml_sha256, yaml, files, secrets, generation,
             generated_tasks, origin, message, author_door, author_id, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          id,
          r.playbookId,
          (head?.number ?? 0) + 1,
          r.sha256,
          r.yamlSha256,
          r.yaml,
          JSON.stringify(r.files),
          JSON.stringify(r.secrets),
          r.generation ? JSON.stringify(r.generation) : null,
          JSON.stringify(r.generatedTasks),
          r.origin,
          r.message,
          r.author.door,
          r.author.id,
          r.createdAt,
        );
      this.db.prepare('UPDATE playbooks SET updated_at = ? WHERE id = ?').run(r.createdAt, r.playbookId);
      return this.db.prepare('SELECT * FROM playbook_revisions WHERE id = ?').get(id) as RevisionRow;
    })();
  }

  blob(sha256: string): Buffer {
    const r = this.db.prepare('SELECT content FROM playbook_blobs WHERE sha256 = ?').get(sha256) as
      { content: Buffer } | undefined;
    if (!r)
      throw new FluidError('INTERNAL', `A shipped file (sha256 ${sha256}) is missing from the database.`);
    if (sha256Hex(r.content) !== sha256)
      throw new FluidError(
        'INTERNAL',
        `A shipped file's bytes no longer match their sha256 ${sha256}: the database was edited.`,
      );
    return r.content;
  }

  // ---- verifications ------------------------------------------------------------------------------

  insertVerification(v: VerificationRow): void {
    this.db
      .prepare(
        `INSERT INTO playbook_verifications (id, playbook_id, revision, sha256, status, task_id, requested_by_door,
           requested_by_id, started_at, finished_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        v.id,
        v.playbook_id,
        v.revision,
        v.sha256,
        v.status,
        v.task_id,
        v.requested_by_door,
        v.requested_by_id,
        v.started_at,
        v.finished_at,
        v.body,
      );
  }

  updateVerification(
    id: string,
    patch: Partial<Pick<VerificationRow, 'status' | 'task_id' | 'finished_at' | 'body'>>,
  ): void {
    const keys = Object.keys(patch) as Array<keyof typeof patch>;
    if (!keys.length) return;
    this.db
      .prepare(`UPDATE playbook_verifications SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`)
      .run(...keys.map((k) => patch[k] ?? null), id);
  }

  verification(id: string): VerificationRow {
    const r = this.db.prepare('SELECT * FROM playbook_verifications WHERE id = ?').get(id) as
      VerificationRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No verification ${id}.`);
    return r;
  }

  verifications(playbookId: string): VerificationRow[] {
    return this.db
      .prepare(
        'SELECT * FROM playbook_verifications WHERE playbook_id = ? ORDER BY started_at DESC, rowid DESC',
      )
      .all(playbookId) as VerificationRow[];
  }

  latestVerification(playbookId: string): VerificationRow | null {
    return (
      (this.db
        .prepare(
          'SELECT * FROM playbook_verifications WHERE playbook_id = ? ORDER BY started_at DESC, rowid DESC LIMIT 1',
        )
        .get(playbookId) as VerificationRow | undefined) ?? null
    );
  }

  /** Verifications left running by a process that died: interrupted. */
  interruptOrphans(isRunning: (taskId: string) => boolean, now: string): string[] {
    const rows = this.db
      .prepare("SELECT * FROM playbook_verifications WHERE status = 'running'")
      .all() as VerificationRow[];
    const out: string[] = [];
    for (const r of rows) {
      if (r.task_id && isRunning(r.task_id)) continue;
      // Its task id is written just after the row: a row this young without one is starting.
      if (!r.task_id && Date.parse(now) - Date.parse(r.started_at) < 5 * 60_000) continue;
      this.updateVerification(r.id, { status: 'interrupted', finished_at: now });
      out.push(r.id);
    }
    return out;
  }
}
