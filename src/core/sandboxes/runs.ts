/**
 * Commands in sandboxes as server-side objects. Every command from any door is one run: it is
 * audited when it starts (`sandbox.exec.start`) and when it ends (`sandbox.exec`, with the exit code
 * and how much it printed), recorded with an id in the database, and its output is kept in a bounded
 * window (output-log.ts) that readers attach to from an offset.
 *
 * Two origins: `exec` (sandboxes.exec / execStream, the agent's run_command) belongs to its caller and
 * is killed when the caller goes away; `run` (sandboxes.runStart, the app's Run tab) belongs to this
 * backend: a reload or a dropped socket only detaches the page, which attaches again and continues.
 * When a run ends its newest output is kept in the database, so its history survives the process; a
 * run whose process died is shown as interrupted.
 */
import { randomUUID } from 'node:crypto';
import type { Run, RunItem, RunStatus } from '../../shared/contract/runs.ts';
import { FluidError, toErrorPayload, type ErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { EventBus } from '../events.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { GuestExecResult } from '../ssh/guest.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import { pidAlive } from '../store/tasks.ts';
import { AsyncQueue } from '../util/queue.ts';
import { OutputLog, sliceOf, type OutputChunk, type OutputSlice } from './output-log.ts';
import type { SandboxRow } from './store.ts';

export const RUNS_MIGRATION = {
  name: 'sandbox-runs-and-placement',
  sql: `
    CREATE TABLE sandbox_runs (
      id TEXT PRIMARY KEY,
      sandbox_id TEXT NOT NULL,
      sandbox_name TEXT NOT NULL,
      origin TEXT NOT NULL,
      command TEXT NOT NULL,
      actor_door TEXT NOT NULL,
      actor_id TEXT NOT NULL,
      status TEXT NOT NULL,
      timeout_seconds INTEGER NOT NULL,
      started_at TEXT NOT NULL,
      ended_at TEXT,
      duration_ms INTEGER,
      exit_code INTEGER,
      signal TEXT,
      timed_out INTEGER NOT NULL DEFAULT 0,
      truncated INTEGER NOT NULL DEFAULT 0,
      stdout_bytes INTEGER NOT NULL DEFAULT 0,
      stderr_bytes INTEGER NOT NULL DEFAULT 0,
      tail TEXT,
      error TEXT,
      owner_pid INTEGER,
      owner_instance TEXT
    );
    CREATE INDEX sandbox_runs_sandbox ON sandbox_runs(sandbox_id, started_at);
    CREATE INDEX sandbox_runs_started ON sandbox_runs(started_at);
    ALTER TABLE sandboxes ADD COLUMN placement TEXT;
  `,
};

type Stream = 'stdout' | 'stderr';

interface RunRow {
  id: string;
  sandbox_id: string;
  sandbox_name: string;
  origin: Run['origin'];
  command: string;
  actor_door: Actor['door'];
  actor_id: string;
  status: RunStatus;
  timeout_seconds: number;
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  exit_code: number | null;
  signal: string | null;
  timed_out: number;
  truncated: number;
  stdout_bytes: number;
  stderr_bytes: number;
  tail: string | null;
  error: string | null;
  owner_pid: number | null;
  owner_instance: string | null;
}

/** How a run executes its command (the sandbox service: egress up, certificate SSH, root). */
export type RunExecutor = (
  r: SandboxRow,
  command: string,
  opts: {
    timeoutMs: number;
    maxOutputBytes: number;
    stdin?: string;
    signal: AbortSignal;
    onStdout: (c: Buffer) => void;
    onStderr: (c: Buffer) => void;
  },
) => Promise<GuestExecResult>;

export interface RunDeps {
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  /** This process's identity (the task manager's instance): its runs are alive by definition. */
  instance: string;
  exec: RunExecutor;
}

export interface StartRun {
  command: string;
  timeoutSeconds: number;
  maxOutputBytes: number;
  stdin?: string;
  origin: Run['origin'];
  /** exec only: the caller's signal (the run is killed when the caller goes away). */
  signal?: AbortSignal;
  onStdout?: (c: Buffer) => void;
  onStderr?: (c: Buffer) => void;
}

/** Output kept for attaching while a run lives, and in the database once it ended. */
export const WINDOW_BYTES = { run: 1024 * 1024, exec: 256 * 1024 } as const;
export const KEPT_BYTES = { run: 64 * 1024, exec: 16 * 1024 } as const;
/** Ended runs kept in memory (their whole window) for quick attaching. */
const RECENT_RUNS = 32;
/** Ended runs whose output tail stays in the database; older ones keep their row, not the output. */
const TAILS_KEPT = 500;
const AUDIT_COMMAND_CHARS = 2000;

interface LiveRun {
  id: string;
  row: SandboxRow;
  origin: Run['origin'];
  command: string;
  actor: Actor;
  timeoutSeconds: number;
  startedAt: Date;
  endedAt: Date | null;
  status: RunStatus;
  out: OutputLog<Stream>;
  result: GuestExecResult | null;
  error: ErrorPayload | null;
  ac: AbortController;
  cancelledBy: Actor | null;
  ended: Promise<GuestExecResult>;
  onEnd: Set<() => void>;
}

export class RunManager {
  private readonly d: RunDeps;
  private readonly live = new Map<string, LiveRun>();
  private readonly recent = new Map<string, LiveRun>();

  constructor(deps: RunDeps) {
    this.d = deps;
  }

  /**
   * Start a command; resolves when it ends (origin `exec`) — `start` returns the run at once and
   * `result` follows it. Throws only for what prevents the start (the caller checked the sandbox).
   */
  start(row: SandboxRow, input: StartRun, actor: Actor): { run: Run; result: Promise<GuestExecResult> } {
    const id = randomUUID();
    const now = this.d.clock.now();
    const ac = new AbortController();
    const origin = input.origin;
    const lr: LiveRun = {
      id,
      row,
      origin,
      command: input.command,
      actor,
      timeoutSeconds: input.timeoutSeconds,
      startedAt: now,
      endedAt: null,
      status: 'running',
      out: new OutputLog<Stream>(WINDOW_BYTES[origin]),
      result: null,
      error: null,
      ac,
      cancelledBy: null,
      ended: Promise.resolve(null as unknown as GuestExecResult),
      onEnd: new Set(),
    };
    this.d.db
      .prepare(
        `INSERT INTO sandbox_runs (id, sandbox_id, sandbox_name, origin, command, actor_door, actor_id, status, timeout_seconds, started_at, owner_pid, owner_instance)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
      )
      .run(
        id,
        row.id,
        row.name,
        origin,
        input.command,
        actor.door,
        actor.id,
        input.timeoutSeconds,
        now.toISOString(),
        process.pid,
        this.d.instance,
      );
    this.live.set(id, lr);
    // Audited before anything runs: a command that never ends (a crash, a kill) is still on record.
    this.d.audit.append({
      actor,
      action: 'sandbox.exec.start',
      target: row.id,
      data: { run: id, origin, command: clip(input.command), timeoutSeconds: input.timeoutSeconds },
    });
    this.d.bus.emit('sandboxes.runChanged', { runId: id, sandboxId: row.id, status: 'running' });

    const callerGone = () => {
      lr.cancelledBy ??= actor;
      ac.abort();
    };
    if (input.signal?.aborted) callerGone();
    else input.signal?.addEventListener('abort', callerGone, { once: true });

    lr.ended = this.d
      .exec(row, input.command, {
        timeoutMs: input.timeoutSeconds * 1000,
        maxOutputBytes: input.maxOutputBytes,
        stdin: input.stdin,
        signal: ac.signal,
        onStdout: (c) => {
          lr.out.push('stdout', c);
          input.onStdout?.(c);
        },
        onStderr: (c) => {
          lr.out.push('stderr', c);
          input.onStderr?.(c);
        },
      })
      .then(
        (res) => {
          this.finish(lr, ac.signal.aborted ? 'cancelled' : 'exited', res, null);
          return res;
        },
        (err: unknown) => {
          const payload = toErrorPayload(err);
          this.finish(lr, ac.signal.aborted ? 'cancelled' : 'failed', null, payload);
          throw err;
        },
      )
      .finally(() => input.signal?.removeEventListener('abort', callerGone));
    // A detached run has no caller to hear its failure: it is recorded on the run instead.
    if (origin === 'run') lr.ended.catch(() => {});
    return { run: this.dtoLive(lr), result: lr.ended };
  }

  private finish(
    lr: LiveRun,
    status: RunStatus,
    res: GuestExecResult | null,
    error: ErrorPayload | null,
  ): void {
    lr.endedAt = this.d.clock.now();
    lr.status = status;
    lr.result = res;
    lr.error =
      status === 'cancelled'
        ? {
            code: 'CANCELLED',
            message: lr.cancelledBy
              ? `Stopped by ${lr.cancelledBy.door}:${lr.cancelledBy.id}; the command was killed.`
              : 'Stopped; the command was killed.',
          }
        : error;
    const durationMs = Math.max(0, lr.endedAt.getTime() - lr.startedAt.getTime());
    const tail = lr.out.tail(KEPT_BYTES[lr.origin]);
    try {
      this.d.db
        .prepare(
          `UPDATE sandbox_runs SET status = ?, ended_at = ?, duration_ms = ?, exit_code = ?, signal = ?, timed_out = ?, truncated = ?,
             stdout_bytes = ?, stderr_bytes = ?, tail = ?, error = ?, owner_pid = NULL, owner_instance = NULL WHERE id = ?`,
        )
        .run(
          status,
          lr.endedAt.toISOString(),
          durationMs,
          res?.exitCode ?? null,
          res?.signal ?? null,
          res?.timedOut ? 1 : 0,
          res?.truncated ? 1 : 0,
          lr.out.bytes('stdout'),
          lr.out.bytes('stderr'),
          JSON.stringify({ total: lr.out.total, chunks: tail }),
          lr.error ? JSON.stringify(lr.error) : null,
          lr.id,
        );
      this.pruneTails();
    } catch (err) {
      this.d.log.warn('could not record the end of a run', { run: lr.id, err });
    }
    this.d.audit.append({
      actor: lr.actor,
      action: 'sandbox.exec',
      target: lr.row.id,
      data: {
        run: lr.id,
        origin: lr.origin,
        command: clip(lr.command),
        status,
        exitCode: res?.exitCode ?? null,
        timedOut: res?.timedOut ?? false,
        durationMs,
        stdoutBytes: lr.out.bytes('stdout'),
        stderrBytes: lr.out.bytes('stderr'),
        truncated: res?.truncated ?? false,
        ...(lr.error ? { error: lr.error.message } : {}),
        ...(lr.cancelledBy && lr.cancelledBy !== lr.actor
          ? { cancelledBy: `${lr.cancelledBy.door}:${lr.cancelledBy.id}` }
          : {}),
      },
    });
    this.live.delete(lr.id);
    this.recent.set(lr.id, lr);
    for (const old of this.recent.keys()) {
      if (this.recent.size <= RECENT_RUNS) break;
      this.recent.delete(old);
    }
    this.d.bus.emit('sandboxes.runChanged', { runId: lr.id, sandboxId: lr.row.id, status });
    for (const l of [...lr.onEnd]) l();
  }

  private pruneTails(): void {
    this.d.db
      .prepare(
        `UPDATE sandbox_runs SET tail = NULL WHERE tail IS NOT NULL AND id NOT IN
           (SELECT id FROM sandbox_runs WHERE tail IS NOT NULL ORDER BY started_at DESC LIMIT ?)`,
      )
      .run(TAILS_KEPT);
  }

  /** Kill a running command (any door may stop what it can see; the audit log names who). */
  cancel(id: string, actor: Actor): Run {
    const lr = this.live.get(id);
    if (!lr) {
      const r = this.get(id);
      if (r.status === 'running')
        throw new FluidError(
          'CONFLICT',
          `That command runs in another Fluid process (pid ${r.ownerPid ?? '?'}); stop it there.`,
        );
      return r;
    }
    lr.cancelledBy = actor;
    lr.ac.abort();
    return this.dtoLive(lr);
  }

  get(id: string): Run {
    const lr = this.live.get(id) ?? this.recent.get(id);
    if (lr) return this.dtoLive(lr);
    return this.dtoRow(this.row(id));
  }

  /** Runs of a sandbox (or all), newest first; runs of a process that died become interrupted. */
  list(opts: { sandboxId?: string; limit: number }): Run[] {
    const rows = (
      opts.sandboxId
        ? this.d.db
            .prepare('SELECT * FROM sandbox_runs WHERE sandbox_id = ? ORDER BY started_at DESC LIMIT ?')
            .all(opts.sandboxId, opts.limit)
        : this.d.db.prepare('SELECT * FROM sandbox_runs ORDER BY started_at DESC LIMIT ?').all(opts.limit)
    ) as RunRow[];
    return rows.map((r) => {
      const lr = this.live.get(r.id) ?? this.recent.get(r.id);
      return lr ? this.dtoLive(lr) : this.dtoRow(r);
    });
  }

  /** Every run of this process that is still going (shutdown, tests). */
  running(): Run[] {
    return [...this.live.values()].map((lr) => this.dtoLive(lr));
  }

  /**
   * A run's output from `offset`, then live until it ends. A run of another process is followed
   * through the database: its output shows when it ends there.
   */
  attach(id: string, offset: number, signal?: AbortSignal): AsyncIterable<RunItem> {
    const lr = this.live.get(id) ?? this.recent.get(id);
    let stop = () => {};
    const q = new AsyncQueue<RunItem>(() => stop());
    const onAbort = () => {
      stop();
      q.end();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const sendSlice = (slice: OutputSlice<Stream>) => {
      if (slice.dropped) q.push({ kind: 'dropped', bytes: slice.dropped });
      for (const c of slice.chunks) q.push(item(c));
    };
    if (lr) {
      q.push({ kind: 'run', run: this.dtoLive(lr) });
      sendSlice(lr.out.from(offset));
      if (lr.status !== 'running') {
        q.push({ kind: 'exit', run: this.dtoLive(lr) });
        q.end();
        return q;
      }
      // from() and subscribe() run in one tick: no chunk falls between them.
      const un = lr.out.subscribe((c) => c.data && q.push(item(c)));
      const onEnd = () => {
        stop();
        q.push({ kind: 'exit', run: this.dtoLive(lr) });
        q.end();
      };
      lr.onEnd.add(onEnd);
      stop = () => {
        un();
        lr.onEnd.delete(onEnd);
        signal?.removeEventListener('abort', onAbort);
      };
      return q;
    }
    const row = this.row(id);
    q.push({ kind: 'run', run: this.dtoRow(row) });
    const fromRow = (r: RunRow) => {
      const kept = parseTail(r.tail);
      sendSlice(sliceOf(kept.chunks, kept.total, offset));
      q.push({ kind: 'exit', run: this.dtoRow(r) });
      q.end();
    };
    if (this.dtoRow(row).status !== 'running') {
      fromRow(this.row(id));
      return q;
    }
    const timer = setInterval(() => {
      try {
        const r = this.row(id);
        if (this.dtoRow(r).status === 'running') return;
        stop();
        fromRow(this.row(id));
      } catch (err) {
        stop();
        q.fail(err);
      }
    }, 1000);
    timer.unref();
    stop = () => {
      clearInterval(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    return q;
  }

  /** Kill this process's runs (shutdown); each is recorded as cancelled. */
  async close(): Promise<void> {
    const all = [...this.live.values()];
    for (const lr of all) {
      lr.cancelledBy ??= { door: 'system', id: 'shutdown' };
      lr.ac.abort();
    }
    await Promise.allSettled(all.map((lr) => lr.ended));
  }

  private row(id: string): RunRow {
    const r = this.d.db.prepare('SELECT * FROM sandbox_runs WHERE id = ?').get(id) as RunRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No command run "${id}".`);
    return r;
  }

  private dtoLive(lr: LiveRun): Run {
    const end = lr.endedAt ?? this.d.clock.now();
    const res = lr.result;
    return {
      id: lr.id,
      sandboxId: lr.row.id,
      sandboxName: lr.row.name,
      command: lr.command,
      origin: lr.origin,
      startedBy: lr.actor,
      status: lr.status,
      startedAt: lr.startedAt.toISOString(),
      endedAt: lr.endedAt?.toISOString() ?? null,
      durationMs: Math.max(0, end.getTime() - lr.startedAt.getTime()),
      timeoutSeconds: lr.timeoutSeconds,
      exitCode: res?.exitCode ?? null,
      signal: res?.signal ?? null,
      timedOut: res?.timedOut ?? false,
      truncated: res?.truncated ?? false,
      stdoutBytes: lr.out.bytes('stdout'),
      stderrBytes: lr.out.bytes('stderr'),
      droppedBytes: lr.out.dropped,
      error: lr.error,
      live: true,
      ownerPid: lr.status === 'running' ? process.pid : null,
    };
  }

  /** A row of the database; a running row whose process is gone is closed as interrupted. */
  private dtoRow(r: RunRow): Run {
    if (r.status === 'running' && !this.ownerAlive(r)) r = this.interrupt(r);
    const kept = parseTail(r.tail);
    const started = Date.parse(r.started_at);
    const durationMs =
      r.duration_ms ??
      Math.max(0, (r.ended_at ? Date.parse(r.ended_at) : this.d.clock.now().getTime()) - started);
    return {
      id: r.id,
      sandboxId: r.sandbox_id,
      sandboxName: r.sandbox_name,
      command: r.command,
      origin: r.origin,
      startedBy: { door: r.actor_door, id: r.actor_id },
      status: r.status,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      durationMs: Math.max(0, durationMs),
      timeoutSeconds: r.timeout_seconds,
      exitCode: r.exit_code,
      signal: r.signal,
      timedOut: r.timed_out === 1,
      truncated: r.truncated === 1,
      stdoutBytes: r.stdout_bytes,
      stderrBytes: r.stderr_bytes,
      droppedBytes: kept.chunks.length ? kept.chunks[0]!.start : r.stdout_bytes + r.stderr_bytes,
      error: r.error ? (JSON.parse(r.error) as ErrorPayload) : null,
      live: false,
      ownerPid: r.status === 'running' ? r.owner_pid : null,
    };
  }

  private ownerAlive(r: RunRow): boolean {
    if (r.owner_instance === this.d.instance) return this.live.has(r.id);
    if (!r.owner_pid) return false;
    return r.owner_pid !== process.pid && pidAlive(r.owner_pid);
  }

  private interrupt(r: RunRow): RunRow {
    const error: ErrorPayload = {
      code: 'CANCELLED',
      message: `Interrupted: the Fluid process running this command (pid ${r.owner_pid ?? '?'}) stopped before it ended. Whether it finished in the sandbox is unknown.`,
    };
    const now = this.d.clock.now().toISOString();
    const changed = this.d.db
      .prepare(
        `UPDATE sandbox_runs SET status = 'interrupted', ended_at = ?, error = ?, owner_pid = NULL, owner_instance = NULL
         WHERE id = ? AND status = 'running'`,
      )
      .run(now, JSON.stringify(error), r.id).changes;
    if (changed) {
      this.d.audit.append({
        actor: { door: 'system', id: 'recovery' },
        action: 'sandbox.exec.interrupted',
        target: r.sandbox_id,
        data: { run: r.id, ownerPid: r.owner_pid },
      });
      this.d.bus.emit('sandboxes.runChanged', {
        runId: r.id,
        sandboxId: r.sandbox_id,
        status: 'interrupted',
      });
    }
    return this.row(r.id);
  }
}

function item(c: OutputChunk<Stream>): RunItem {
  return { kind: c.kind, data: c.data, offset: c.end };
}

function parseTail(tail: string | null): { total: number; chunks: OutputChunk<Stream>[] } {
  if (!tail) return { total: 0, chunks: [] };
  try {
    return JSON.parse(tail) as { total: number; chunks: OutputChunk<Stream>[] };
  } catch {
    return { total: 0, chunks: [] };
  }
}

const clip = (command: string) =>
  command.length > AUDIT_COMMAND_CHARS ? command.slice(0, AUDIT_COMMAND_CHARS) + '…' : command;
