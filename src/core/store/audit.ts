/**
 * The audit log: append-only and hash-chained. Each row's hash covers its own fields and the previous
 * row's hash, so editing, deleting or reordering any row is detected by verify(). The head (last seq
 * and hash) is also written to a file beside the database, so removing the newest rows is detected too.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Actor } from '../../shared/rpc.ts';
import type { AuditEntry, AuditVerify } from '../../shared/contract/audit.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from './db.ts';
import type { EventBus } from '../events.ts';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditInput {
  actor: Actor;
  action: string;
  target?: string | null;
  data?: unknown;
}

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

export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return sha256Hex(
    canonicalJson([
      e.seq,
      e.ts,
      e.actor.door,
      e.actor.id,
      e.action,
      e.target,
      canonicalJson(e.data ?? null),
      e.prevHash,
    ]),
  );
}

const toEntry = (r: Row): AuditEntry => ({
  seq: r.seq,
  ts: r.ts,
  actor: { door: r.actor_door as Actor['door'], id: r.actor_id },
  action: r.action,
  target: r.target,
  data: safeParse(r.data),
  prevHash: r.prev_hash,
  hash: r.hash,
});

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return { unparseable: s };
  }
}

export class AuditLog {
  private readonly db: Db;
  private readonly clock: Clock;
  private readonly bus: EventBus | null;
  private readonly headFile: string | null;

  constructor(db: Db, clock: Clock, bus: EventBus | null, headFile: string | null) {
    this.db = db;
    this.clock = clock;
    this.bus = bus;
    this.headFile = headFile;
  }

  append(input: AuditInput): AuditEntry {
    const entry = this.db
      .transaction((): AuditEntry => {
        const last = this.db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as
          { seq: number; hash: string } | undefined;
        const seq = (last?.seq ?? 0) + 1;
        const base = {
          seq,
          ts: this.clock.now().toISOString(),
          actor: input.actor,
          action: input.action,
          target: input.target ?? null,
          data: JSON.parse(canonicalJson(input.data ?? null)) as unknown,
          prevHash: last?.hash ?? GENESIS_HASH,
        };
        const hash = entryHash(base);
        this.db
          .prepare(
            `INSERT INTO audit_log (seq, ts, actor_door, actor_id, action, target, data, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            seq,
            base.ts,
            base.actor.door,
            base.actor.id,
            base.action,
            base.target,
            canonicalJson(base.data),
            base.prevHash,
            hash,
          );
        // Inside the write transaction: appends from other processes are serialised by SQLite's lock.
        this.writeHead(seq, hash);
        return { ...base, hash };
      })
      .immediate();
    this.bus?.emit('audit.appended', entry);
    return entry;
  }

  list(opts: { limit: number; beforeSeq?: number; action?: string; target?: string }): {
    entries: AuditEntry[];
    total: number;
  } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.action) {
      where.push('action = ?');
      args.push(opts.action);
    }
    if (opts.target) {
      where.push('target = ?');
      args.push(opts.target);
    }
    const total = (
      this.db
        .prepare(`SELECT COUNT(*) AS n FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`)
        .get(...args) as { n: number }
    ).n;
    if (opts.beforeSeq) {
      where.push('seq < ?');
      args.push(opts.beforeSeq);
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ?`,
      )
      .all(...args, opts.limit) as Row[];
    return { entries: rows.map(toEntry), total };
  }

  verify(): AuditVerify {
    const rows = this.db
      .prepare('SELECT * FROM audit_log ORDER BY seq ASC')
      .iterate() as IterableIterator<Row>;
    const result = verifyEntries(mapIter(rows, toEntry));
    const head = this.readHead();
    if (head && head.seq > result.lastSeq) {
      result.problems.push({
        seq: result.lastSeq + 1,
        kind: 'gap',
        message: `Entries ${result.lastSeq + 1}..${head.seq} were removed from the end of the log (the recorded head is entry ${head.seq}).`,
      });
      result.ok = false;
    } else if (head && head.seq === result.lastSeq && head.hash !== result.headHash) {
      result.problems.push({
        seq: head.seq,
        kind: 'content',
        message: `Entry ${head.seq} does not match the recorded head hash: the newest entry was changed or replaced.`,
      });
      result.ok = false;
    }
    return result;
  }

  exportJsonl(): { content: string; count: number; headHash: string } {
    const lines: string[] = [];
    let headHash = GENESIS_HASH;
    for (const r of this.db
      .prepare('SELECT * FROM audit_log ORDER BY seq ASC')
      .iterate() as IterableIterator<Row>) {
      const e = toEntry(r);
      lines.push(JSON.stringify(e));
      headHash = e.hash;
    }
    return { content: lines.join('\n') + (lines.length ? '\n' : ''), count: lines.length, headHash };
  }

  private writeHead(seq: number, hash: string): void {
    if (!this.headFile) return;
    const tmp = `${this.headFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ seq, hash }), { mode: 0o600 });
    renameSync(tmp, this.headFile);
  }

  private readHead(): { seq: number; hash: string } | null {
    if (!this.headFile || !existsSync(this.headFile)) return null;
    try {
      const h = JSON.parse(readFileSync(this.headFile, 'utf8')) as { seq: number; hash: string };
      return typeof h.seq === 'number' && typeof h.hash === 'string' ? h : null;
    } catch {
      return null;
    }
  }
}

function* mapIter<A, B>(it: Iterable<A>, f: (a: A) => B): Generator<B> {
  for (const a of it) yield f(a);
}

/** Verify a sequence of entries (from the database or an exported file). Reports every bad row. */
export function verifyEntries(entries: Iterable<AuditEntry>): AuditVerify {
  const problems: AuditVerify['problems'] = [];
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  let lastSeq = 0;
  for (const e of entries) {
    count++;
    if (e.seq !== expectedSeq) {
      problems.push({
        seq: e.seq,
        kind: 'gap',
        message:
          e.seq > expectedSeq
            ? `Entries ${expectedSeq}..${e.seq - 1} are missing before entry ${e.seq}.`
            : `Entry ${e.seq} is out of order (expected ${expectedSeq}).`,
      });
    }
    if (e.prevHash !== prevHash) {
      problems.push({
        seq: e.seq,
        kind: 'chain',
        message: `Entry ${e.seq} does not follow the entry before it: its recorded previous hash does not match${
          e.seq > 1
            ? ` entry ${e.seq - 1}'s hash (entry ${e.seq - 1} was changed, or entries were removed or reordered)`
            : ' the start of the log'
        }.`,
      });
    }
    const recomputed = entryHash(e);
    if (recomputed !== e.hash) {
      problems.push({
        seq: e.seq,
        kind: 'content',
        message: `Entry ${e.seq} (${e.action}) was changed after it was written: its content no longer matches its hash.`,
      });
    }
    prevHash = e.hash;
    expectedSeq = e.seq + 1;
    lastSeq = e.seq;
  }
  return { ok: problems.length === 0, count, lastSeq, headHash: prevHash, problems };
}

export function parseJsonl(content: string): { entries: AuditEntry[]; problems: AuditVerify['problems'] } {
  const entries: AuditEntry[] = [];
  const problems: AuditVerify['problems'] = [];
  content.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const e = JSON.parse(line) as AuditEntry;
      if (typeof e.seq !== 'number' || typeof e.hash !== 'string' || !e.actor)
        throw new Error('missing fields');
      entries.push(e);
    } catch (err) {
      problems.push({
        seq: -(i + 1),
        kind: 'malformed',
        message: `Line ${i + 1} is not an audit entry (${(err as Error).message}).`,
      });
    }
  });
  return { entries, problems };
}
