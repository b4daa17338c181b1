/**
 * What someone with write access to the data dir can do to the audit log, done for real on the SQLite
 * file (triggers dropped, rows rewritten with every hash after them recomputed by the same entryHash).
 */
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entryHash, GENESIS_HASH } from '../../src/core/store/audit.ts';
import { canonicalJson } from '../../src/core/util/canonical.ts';
import type { AuditEntry } from '../../src/shared/contract/audit.ts';

interface Row {
  seq: number;
  ts: string;
  actor_door: string;
  actor_id: string;
  action: string;
  target: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/**
 * Change entry `seq` with `edit`, then recompute its hash and the prev_hash/hash of every entry after it,
 * so that the chain alone verifies again. Returns the new head hash.
 */
export function rewriteAndRecompute(
  dbPath: string,
  seq: number,
  edit: (e: { action: string; target: string | null; data: unknown }) => void,
): string {
  const raw = new Database(dbPath);
  try {
    raw.exec('DROP TRIGGER IF EXISTS audit_log_no_update');
    const before = raw.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(seq - 1) as
      { hash: string } | undefined;
    let prev = seq > 1 ? before!.hash : GENESIS_HASH;
    const rows = raw.prepare('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq').all(seq) as Row[];
    const update = raw.prepare(
      'UPDATE audit_log SET action = ?, target = ?, data = ?, prev_hash = ?, hash = ? WHERE seq = ?',
    );
    raw.transaction(() => {
      for (const r of rows) {
        const e = { action: r.action, target: r.target, data: JSON.parse(r.data) as unknown };
        if (r.seq === seq) edit(e);
        const entry: Omit<AuditEntry, 'hash'> = {
          seq: r.seq,
          ts: r.ts,
          actor: { door: r.actor_door as AuditEntry['actor']['door'], id: r.actor_id },
          action: e.action,
          target: e.target,
          data: JSON.parse(canonicalJson(e.data)) as unknown,
          prevHash: prev,
        };
        const hash = entryHash(entry);
        update.run(e.action, e.target, canonicalJson(entry.data), prev, hash, r.seq);
        prev = hash;
      }
    })();
    return prev;
  } finally {
    raw.close();
  }
}

/** Delete audit rows (and, optionally, every checkpoint the database holds above a number). */
export function deleteRows(
  dbPath: string,
  opts: { fromSeq?: number; seqs?: number[]; checkpointsFrom?: number },
) {
  const raw = new Database(dbPath);
  try {
    raw.exec('DROP TRIGGER IF EXISTS audit_log_no_delete');
    if (opts.fromSeq !== undefined) raw.prepare('DELETE FROM audit_log WHERE seq >= ?').run(opts.fromSeq);
    for (const s of opts.seqs ?? []) raw.prepare('DELETE FROM audit_log WHERE seq = ?').run(s);
    if (opts.checkpointsFrom !== undefined) {
      raw.exec('DROP TRIGGER IF EXISTS audit_checkpoints_no_delete');
      raw.prepare('DELETE FROM audit_checkpoints WHERE n >= ?').run(opts.checkpointsFrom);
    }
  } finally {
    raw.close();
  }
}

/** Remove a file beside the database (the checkpoint file, the old head file). */
export function removeFile(path: string): void {
  if (existsSync(path)) rmSync(path);
}

/** A temp dir (without loading the whole core, as test/support/core.ts does). */
export function tempDir(prefix = 'fluid-audit-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
