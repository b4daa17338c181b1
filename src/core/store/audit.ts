/**
 * The audit log: append-only (triggers refuse UPDATE and DELETE) and hash-chained (../audit/chain.ts),
 * with signed checkpoints of the chain's head (../audit/checkpoints.ts) kept in the database, in a file
 * beside it, on every host (../audit/witness.ts) and in every export (../audit/export.ts). verify()
 * checks all of them against the chain and names what disagrees.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Statement } from 'better-sqlite3';
import type { Actor } from '../../shared/rpc.ts';
import type { AuditEntry, AuditVerify } from '../../shared/contract/audit.ts';
import { canonicalJson } from '../util/canonical.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from './db.ts';
import type { EventBus } from '../events.ts';
import { entryHash, GENESIS_HASH, verifyEntries } from '../audit/chain.ts';
import type { Checkpoint } from '../audit/checkpoint.ts';
import type { CheckpointLog } from '../audit/checkpoints.ts';
import { exportLines, parseExport } from '../audit/export.ts';
import { verifyLog } from '../audit/verify.ts';
import type { HostWitness } from '../audit/witness.ts';

export { entryHash, GENESIS_HASH, verifyEntries };

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
  /** The head file earlier versions rewrote on every append: now only read, as one more anchor. */
  private readonly legacyHeadFile: string | null;
  private checkpoints: CheckpointLog | null = null;
  private witness: HostWitness | null = null;
  private readonly stmt: { last: Statement; insert: Statement; all: Statement };

  constructor(db: Db, clock: Clock, bus: EventBus | null, legacyHeadFile: string | null) {
    this.db = db;
    this.clock = clock;
    this.bus = bus;
    this.legacyHeadFile = legacyHeadFile;
    this.stmt = {
      last: db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare(
        `INSERT INTO audit_log (seq, ts, actor_door, actor_id, action, target, data, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      all: db.prepare('SELECT * FROM audit_log ORDER BY seq ASC'),
    };
  }

  /** Sign checkpoints of the chain (and copy them to the hosts). */
  attach(checkpoints: CheckpointLog, witness: HostWitness | null = null): void {
    this.checkpoints = checkpoints;
    this.witness = witness;
    checkpoints.adoptExisting();
  }

  get checkpointLog(): CheckpointLog | null {
    return this.checkpoints;
  }

  append(input: AuditInput): AuditEntry {
    const { entry, cut } = this.db
      .transaction((): { entry: AuditEntry; cut: Checkpoint | null } => {
        const last = this.stmt.last.get() as { seq: number; hash: string } | undefined;
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
        this.stmt.insert.run(
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
        // Inside the write transaction: appends from other processes are serialised by SQLite's lock,
        // and a checkpoint that is due is cut atomically with the entry that made it due.
        const cut = this.checkpoints?.afterAppend(seq, hash, base.action) ?? null;
        return { entry: { ...base, hash }, cut };
      })
      .immediate();
    if (cut) this.checkpoints!.committed(cut);
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

  private *entries(): Generator<AuditEntry> {
    for (const r of this.stmt.all.iterate() as IterableIterator<Row>) yield toEntry(r);
  }

  /** This machine only: the chain, the signed checkpoints and the checkpoint file beside the database. */
  verify(): AuditVerify {
    return verifyLog({
      entries: () => this.entries(),
      checkpoints: this.checkpoints,
      legacyHead: this.readLegacyHead(),
      copies: null,
    });
  }

  /** verify(), and every host's copy of the checkpoints compared with the database. */
  async verifyWithHosts(): Promise<AuditVerify> {
    const copies = this.witness ? await this.witness.readCopies() : [];
    return verifyLog({
      entries: () => this.entries(),
      checkpoints: this.checkpoints,
      legacyHead: this.readLegacyHead(),
      copies,
    });
  }

  /** The whole log as JSON lines with its checkpoints; a checkpoint of the current head is cut first. */
  exportJsonl(): { content: string; count: number; headHash: string } {
    this.checkpoints?.cutNow();
    // One read transaction: entries and checkpoints from the same snapshot.
    return this.db.transaction(() => {
      let count = 0;
      let headHash = GENESIS_HASH;
      const entries = [...this.entries()];
      for (const e of entries) {
        count++;
        headHash = e.hash;
      }
      const lines = exportLines(entries, this.checkpoints?.all() ?? []);
      return { content: lines.join('\n') + (lines.length ? '\n' : ''), count, headHash };
    })();
  }

  /** Cut a last checkpoint and give its delivery to the hosts up to deadlineMs. */
  async close(deadlineMs?: number): Promise<void> {
    this.checkpoints?.close();
    await this.witness?.close(deadlineMs);
  }

  private readLegacyHead(): { seq: number; hash: string } | null {
    if (!this.legacyHeadFile || !existsSync(this.legacyHeadFile)) return null;
    try {
      const h = JSON.parse(readFileSync(this.legacyHeadFile, 'utf8')) as { seq: number; hash: string };
      return typeof h.seq === 'number' && typeof h.hash === 'string' ? h : null;
    } catch {
      return null;
    }
  }
}

/** Parse an exported file's entries (checkpoint lines are read by verifyExport). */
export function parseJsonl(content: string): {
  entries: AuditEntry[];
  problems: AuditVerify['problems'];
} {
  const { entries, problems } = parseExport(content);
  return { entries, problems };
}
