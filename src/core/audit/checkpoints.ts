/**
 * When checkpoints are cut, and where they are kept on this machine.
 *
 * A checkpoint is cut inside the append transaction that makes it due — after `everyEntries` entries,
 * after `everyMs` since the last one, or right after an important action (an approval decided, a host
 * or a setting changed, an export) — so at most `everyEntries - 1` entries are ever unsigned while the
 * key works, whichever process appended them. Closing a core, exporting, and (in long-running doors) a
 * quiet period also cut one. An append that cuts nothing costs one indexed read: no file is written or
 * renamed per entry any more.
 *
 * Each checkpoint is kept in the database (audit_checkpoints, append-only by trigger) and appended to
 * audit-checkpoints.jsonl beside it (owner-only, never rewritten); HostWitness copies them to the hosts.
 */
import { appendFileSync, chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import type { Statement } from 'better-sqlite3';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { Db } from '../store/db.ts';
import { parseCheckpointText, toLine, type Checkpoint } from './checkpoint.ts';
import type { AuditSigner } from './signer.ts';

export interface CheckpointPolicy {
  /** Cut one when this many entries are unsigned. */
  everyEntries: number;
  /** Cut one at the next append (or, in a long-running door, on a timer) once this much time passed. */
  everyMs: number;
}

export const CHECKPOINT_POLICY: CheckpointPolicy = { everyEntries: 64, everyMs: 10_000 };

/** Actions after which a checkpoint is cut at once: decisions and changes of trust. */
const IMPORTANT =
  /^(approval\.(decide|cancel|expire)|host\.(add|remove|trust|update)|settings\.|audit\.|provider\.)|\.(apply|approve|deny)(\.|$)/;
export const isImportantAction = (action: string): boolean => IMPORTANT.test(action);

/** The file beside the database. */
export const CHECKPOINT_FILE = 'audit-checkpoints.jsonl';

interface CheckpointRow {
  n: number;
  seq: number;
  head: string;
  ts: string;
  key: string;
  sig: string;
}

export interface CheckpointLogOptions {
  db: Db;
  clock: Clock;
  signer: AuditSigner;
  /** The log id signed into every checkpoint: the installation id. */
  installation: string;
  /** audit-checkpoints.jsonl beside the database. */
  file: string;
  log?: Logger;
  policy?: CheckpointPolicy;
}

export class CheckpointLog {
  readonly file: string;
  readonly installation: string;
  readonly policy: CheckpointPolicy;
  readonly signer: AuditSigner;
  private readonly db: Db;
  private readonly clock: Clock;
  private readonly log: Logger | null;
  private readonly listeners = new Set<(c: Checkpoint) => void>();
  private readonly stmt: {
    latest: Statement;
    insert: Statement;
    all: Statement;
    head: Statement;
    firstTs: Statement;
  };
  private timer: NodeJS.Timeout | null = null;
  private timed = false;
  private closed = false;
  private warned: string | null = null;

  constructor(opts: CheckpointLogOptions) {
    this.db = opts.db;
    this.clock = opts.clock;
    this.signer = opts.signer;
    this.installation = opts.installation;
    this.file = opts.file;
    this.log = opts.log ?? null;
    this.policy = opts.policy ?? CHECKPOINT_POLICY;
    this.stmt = {
      latest: this.db.prepare('SELECT * FROM audit_checkpoints ORDER BY n DESC LIMIT 1'),
      insert: this.db.prepare(
        'INSERT INTO audit_checkpoints (n, seq, head, ts, key, sig) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      all: this.db.prepare('SELECT * FROM audit_checkpoints ORDER BY n ASC'),
      head: this.db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      firstTs: this.db.prepare('SELECT ts FROM audit_log WHERE seq > ? ORDER BY seq ASC LIMIT 1'),
    };
  }

  private toCheckpoint(r: CheckpointRow): Checkpoint {
    return { n: r.n, log: this.installation, seq: r.seq, head: r.head, ts: r.ts, key: r.key, sig: r.sig };
  }

  latest(): Checkpoint | null {
    const r = this.stmt.latest.get() as CheckpointRow | undefined;
    return r ? this.toCheckpoint(r) : null;
  }

  /** Every checkpoint the database holds, oldest first. */
  all(): Checkpoint[] {
    return (this.stmt.all.all() as CheckpointRow[]).map((r) => this.toCheckpoint(r));
  }

  get(n: number): Checkpoint | null {
    const r = this.db.prepare('SELECT * FROM audit_checkpoints WHERE n = ?').get(n) as
      CheckpointRow | undefined;
    return r ? this.toCheckpoint(r) : null;
  }

  /** Checkpoints with a number above `n`, oldest first. */
  after(n: number): Checkpoint[] {
    return (
      this.db.prepare('SELECT * FROM audit_checkpoints WHERE n > ? ORDER BY n ASC').all(n) as CheckpointRow[]
    ).map((r) => this.toCheckpoint(r));
  }

  /** Called when a checkpoint has been committed (the host witness listens). */
  onCut(listener: (c: Checkpoint) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Inside the append transaction, after entry `seq` was inserted: cut a checkpoint if one is due.
   * The caller passes the result to committed() once the transaction has committed.
   */
  afterAppend(seq: number, hash: string, action: string): Checkpoint | null {
    const last = this.stmt.latest.get() as CheckpointRow | undefined;
    const since = last?.seq ?? 0;
    let due = isImportantAction(action) || seq - since >= this.policy.everyEntries;
    if (!due) {
      const from = last?.ts ?? (this.stmt.firstTs.get(since) as { ts: string } | undefined)?.ts;
      due = from !== undefined && this.clock.now().getTime() - Date.parse(from) >= this.policy.everyMs;
    }
    if (!due) {
      this.arm();
      return null;
    }
    return this.cut(last, seq, hash);
  }

  private cut(last: CheckpointRow | undefined, seq: number, head: string): Checkpoint | null {
    const body = {
      n: (last?.n ?? 0) + 1,
      log: this.installation,
      seq,
      head,
      ts: this.clock.now().toISOString(),
    };
    let c: Checkpoint | null;
    try {
      c = this.signer.sign(body);
    } catch (err) {
      c = null;
      this.warn(`signing failed: ${(err as Error).message}`);
    }
    if (!c) {
      const problem = this.signer.state().problem;
      if (problem) this.warn(problem);
      return null;
    }
    this.stmt.insert.run(c.n, c.seq, c.head, c.ts, c.key, c.sig);
    return c;
  }

  /** After the transaction that cut `c` committed: the file beside the database, then the listeners. */
  committed(c: Checkpoint): void {
    this.disarm();
    try {
      const fresh = !existsSync(this.file);
      appendFileSync(this.file, toLine(c) + '\n', { mode: 0o600, flag: 'a' });
      if (fresh && process.platform !== 'win32') chmodSync(this.file, 0o600);
    } catch (err) {
      this.warn(`could not append checkpoint #${c.n} to ${this.file}: ${(err as Error).message}`);
    }
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (err) {
        this.log?.warn('audit checkpoint listener failed', { err });
      }
    }
  }

  /**
   * Cut a checkpoint of the current head now if any entry is unsigned (close, export, a quiet period).
   * Returns the newest checkpoint afterwards, cut now or earlier.
   */
  cutNow(): Checkpoint | null {
    if (this.closed) return this.latest();
    const made = this.db
      .transaction((): { cut: Checkpoint | null; latest: Checkpoint | null } => {
        const last = this.stmt.latest.get() as CheckpointRow | undefined;
        const head = this.stmt.head.get() as { seq: number; hash: string } | undefined;
        if (!head || head.seq <= (last?.seq ?? 0))
          return { cut: null, latest: last ? this.toCheckpoint(last) : null };
        const cut = this.cut(last, head.seq, head.hash);
        return { cut, latest: cut ?? (last ? this.toCheckpoint(last) : null) };
      })
      .immediate();
    if (made.cut) this.committed(made.cut);
    return made.latest;
  }

  /**
   * A log that existed before checkpoints (the migration marks it) is checkpointed once, at the next
   * start, as it is: from then on its rows are pinned.
   */
  adoptExisting(): void {
    const marked = this.db.prepare("SELECT 1 FROM meta WHERE key = 'audit.adopt'").get();
    if (!marked) return;
    this.cutNow();
    if (this.latest()) this.db.prepare("DELETE FROM meta WHERE key = 'audit.adopt'").run();
  }

  /** Long-running doors: cut a checkpoint when entries stayed unsigned for `everyMs` with no append. */
  startTimer(): void {
    this.timed = true;
  }

  private arm(): void {
    if (!this.timed || this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      try {
        this.cutNow();
      } catch (err) {
        this.log?.warn('audit checkpoint on a timer failed', { err });
      }
    }, this.policy.everyMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Cut a last checkpoint, then stop. */
  close(): void {
    this.disarm();
    try {
      this.cutNow();
    } catch (err) {
      this.log?.warn('audit checkpoint at close failed', { err });
    }
    this.closed = true;
  }

  /** The file beside the database, as verify reads it. */
  readFile(): {
    exists: boolean;
    checkpoints: Checkpoint[];
    malformed: Array<{ line: number; error: string }>;
    mode: number | null;
  } {
    if (!existsSync(this.file)) return { exists: false, checkpoints: [], malformed: [], mode: null };
    const text = readFileSync(this.file, 'utf8');
    return {
      exists: true,
      ...parseCheckpointText(text),
      mode: process.platform === 'win32' ? null : statSync(this.file).mode & 0o777,
    };
  }

  private warn(message: string): void {
    if (this.warned === message) return;
    this.warned = message;
    this.log?.warn(`audit checkpoint: ${message}`);
  }
}
