/**
 * Rows of the diff room: each sandbox's baseline (which disk layers it is), stored diffs, and the
 * person's include/exclude choices per item id (kept per sandbox, so they survive a new diff).
 */
import type { Actor } from '../../shared/rpc.ts';
import type { Baseline, Diff, DiffSummary } from '../../shared/contract/diff.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Db } from '../store/db.ts';

export const DIFF_MIGRATION = {
  name: 'system-diff',
  sql: `
    -- The disk state Fluid handed a sandbox over in: a frozen layer per disk under the running one.
    CREATE TABLE diff_baselines (
      sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes(id) ON DELETE CASCADE,
      mode TEXT NOT NULL CHECK (mode IN ('quiesced','crash-consistent')),
      disks TEXT NOT NULL,
      created_at TEXT NOT NULL
    );
    CREATE TABLE diffs (
      id TEXT PRIMARY KEY,
      sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
      created_at TEXT NOT NULL,
      created_by_door TEXT NOT NULL,
      created_by_id TEXT NOT NULL,
      sha256 TEXT NOT NULL,
      -- The whole diff (items, noise, stats) as JSON.
      body TEXT NOT NULL
    );
    CREATE INDEX diffs_sandbox ON diffs(sandbox_id, created_at);
    -- Items a person left out of the change (absent: included).
    CREATE TABLE diff_exclusions (
      sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
      item_id TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      updated_by_door TEXT NOT NULL,
      updated_by_id TEXT NOT NULL,
      PRIMARY KEY (sandbox_id, item_id)
    );
  `,
};

/** A stored diff: everything but the exclusions (those are read live). */
export type StoredDiff = Omit<Diff, 'excluded' | 'noise'> & { noise: Array<{ path: string; rule: string }> };

export class DiffStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  setBaseline(b: Baseline): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO diff_baselines (sandbox_id, mode, disks, created_at) VALUES (?, ?, ?, ?)',
      )
      .run(b.sandboxId, b.mode, JSON.stringify(b.disks), b.createdAt);
  }

  baseline(sandboxId: string): Baseline | null {
    const r = this.db.prepare('SELECT * FROM diff_baselines WHERE sandbox_id = ?').get(sandboxId) as
      { sandbox_id: string; mode: Baseline['mode']; disks: string; created_at: string } | undefined;
    if (!r) return null;
    return {
      sandboxId: r.sandbox_id,
      mode: r.mode,
      disks: JSON.parse(r.disks) as Baseline['disks'],
      createdAt: r.created_at,
    };
  }

  insert(d: StoredDiff): void {
    this.db
      .prepare(
        'INSERT INTO diffs (id, sandbox_id, created_at, created_by_door, created_by_id, sha256, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(d.id, d.sandboxId, d.createdAt, d.createdBy.door, d.createdBy.id, d.sha256, JSON.stringify(d));
  }

  get(sandboxId: string, id?: string): StoredDiff {
    const r = (
      id
        ? this.db.prepare('SELECT body FROM diffs WHERE sandbox_id = ? AND id = ?').get(sandboxId, id)
        : this.db
            .prepare(
              'SELECT body FROM diffs WHERE sandbox_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1',
            )
            .get(sandboxId)
    ) as { body: string } | undefined;
    if (!r)
      throw new FluidError(
        'NOT_FOUND',
        id
          ? `No diff ${id} of this sandbox. See \`fluid diff\` to take one.`
          : 'This sandbox has no diff yet: run `fluid diff <sandbox>` (or diff.run) first.',
      );
    return JSON.parse(r.body) as StoredDiff;
  }

  list(sandboxId: string): DiffSummary[] {
    const rows = this.db
      .prepare('SELECT body FROM diffs WHERE sandbox_id = ? ORDER BY created_at DESC, rowid DESC')
      .all(sandboxId) as Array<{ body: string }>;
    return rows.map((r) => {
      const d = JSON.parse(r.body) as StoredDiff;
      return {
        id: d.id,
        sandboxId: d.sandboxId,
        from: d.from,
        to: d.to,
        createdAt: d.createdAt,
        method: d.method,
        counts: d.counts,
        sha256: d.sha256,
      };
    });
  }

  /** The layer a snapshot froze for one disk (snapshots.ts records it in the row's detail), if any. */
  snapshotLayer(snapshotId: string, disk: string): string | null {
    const r = this.db.prepare('SELECT detail FROM snapshots WHERE id = ?').get(snapshotId) as
      { detail: string } | undefined;
    try {
      const d = JSON.parse(r?.detail ?? '{}') as { layers?: Record<string, unknown> };
      const layer = d.layers?.[disk];
      return typeof layer === 'string' && layer.startsWith('/') ? layer : null;
    } catch {
      return null;
    }
  }

  excluded(sandboxId: string): string[] {
    return (
      this.db
        .prepare('SELECT item_id FROM diff_exclusions WHERE sandbox_id = ? ORDER BY item_id')
        .all(sandboxId) as Array<{ item_id: string }>
    ).map((r) => r.item_id);
  }

  setIncluded(sandboxId: string, items: string[], included: boolean, actor: Actor, now: string): void {
    const del = this.db.prepare('DELETE FROM diff_exclusions WHERE sandbox_id = ? AND item_id = ?');
    const ins = this.db.prepare(
      'INSERT OR REPLACE INTO diff_exclusions (sandbox_id, item_id, updated_at, updated_by_door, updated_by_id) VALUES (?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const id of items) {
        if (included) del.run(sandboxId, id);
        else ins.run(sandboxId, id, now, actor.door, actor.id);
      }
    })();
  }
}
