/**
 * Long work runs as a task: an id returned at once, progress, cancel, and a persisted outcome. Tasks
 * that were running when their process died are marked "interrupted" by the next process to start.
 */
import { randomUUID } from 'node:crypto';
import { TERMINAL_TASK_STATUSES, type Task } from '../../shared/contract/tasks.ts';
import { FluidError, isAbortError, toErrorPayload } from '../../shared/errors.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { Db } from './db.ts';
import type { EventBus } from '../events.ts';

export interface TaskContext {
  signal: AbortSignal;
  /** Report progress: a fraction 0..1 (or null if unknown) and a one-line message. */
  progress(fraction: number | null, message?: string): void;
  readonly taskId: string;
}

export interface StartTask<R> {
  kind: string;
  title: string;
  target?: string | null;
  cancellable?: boolean;
  run: (ctx: TaskContext) => Promise<R>;
}

interface Row {
  id: string;
  kind: string;
  title: string;
  target: string | null;
  status: Task['status'];
  progress: number | null;
  message: string;
  cancellable: number;
  cancel_requested: number;
  owner_pid: number;
  owner_instance: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  result: string | null;
  error: string | null;
}

const toTask = (r: Row): Task => ({
  id: r.id,
  kind: r.kind,
  title: r.title,
  target: r.target,
  status: r.status,
  progress: r.progress,
  message: r.message,
  cancellable: !!r.cancellable && r.status === 'running',
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  finishedAt: r.finished_at,
  result: r.result ? (JSON.parse(r.result) as unknown) : null,
  error: r.error ? (JSON.parse(r.error) as Task['error']) : null,
});

export const isTerminal = (t: Task): boolean =>
  (TERMINAL_TASK_STATUSES as readonly string[]).includes(t.status);

export class TaskManager {
  readonly instance = randomUUID();
  private readonly running = new Map<string, { ac: AbortController; done: Promise<unknown> }>();
  private readonly db: Db;
  private readonly bus: EventBus;
  private readonly clock: Clock;
  private readonly log: Logger;
  private poller: NodeJS.Timeout | null = null;

  constructor(db: Db, bus: EventBus, clock: Clock, log: Logger) {
    this.db = db;
    this.bus = bus;
    this.clock = clock;
    this.log = log;
  }

  /** Mark tasks whose owning process is gone as interrupted. Run once at startup. */
  recoverInterrupted(isAlive: (pid: number) => boolean = pidAlive): Task[] {
    const rows = this.db.prepare("SELECT * FROM tasks WHERE status = 'running'").all() as Row[];
    const now = this.clock.now().toISOString();
    const out: Task[] = [];
    for (const r of rows) {
      if (r.owner_instance === this.instance || (r.owner_pid !== process.pid && isAlive(r.owner_pid)))
        continue;
      const error = {
        code: 'CANCELLED',
        message: 'Fluid stopped while this task was running; it did not finish.',
      };
      this.db
        .prepare(
          "UPDATE tasks SET status = 'interrupted', finished_at = ?, updated_at = ?, error = ? WHERE id = ? AND status = 'running'",
        )
        .run(now, now, JSON.stringify(error), r.id);
      out.push(this.get(r.id));
    }
    return out;
  }

  start<R>(spec: StartTask<R>): Task {
    const id = randomUUID();
    const now = this.clock.now().toISOString();
    this.db
      .prepare(
        `INSERT INTO tasks (id, kind, title, target, status, progress, message, cancellable, owner_pid, owner_instance, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'running', NULL, 'Starting', ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        spec.kind,
        spec.title,
        spec.target ?? null,
        spec.cancellable === false ? 0 : 1,
        process.pid,
        this.instance,
        now,
        now,
      );
    const ac = new AbortController();
    let lastWrite = 0;
    let pendingWrite: NodeJS.Timeout | null = null;
    let latest: { fraction: number | null; message: string } | null = null;
    const flush = () => {
      pendingWrite = null;
      if (!latest || ac.signal.aborted) return;
      lastWrite = Date.now();
      this.db
        .prepare(
          "UPDATE tasks SET progress = ?, message = ?, updated_at = ? WHERE id = ? AND status = 'running'",
        )
        .run(latest.fraction, latest.message, this.clock.now().toISOString(), id);
      this.emit(id);
    };
    const ctx: TaskContext = {
      signal: ac.signal,
      taskId: id,
      progress: (fraction, message) => {
        const f = fraction === null ? null : Math.max(0, Math.min(1, fraction));
        latest = { fraction: f, message: message ?? latest?.message ?? '' };
        // Throttle writes and events to ~8/s; the last update always lands.
        const wait = 125 - (Date.now() - lastWrite);
        if (wait <= 0) flush();
        else pendingWrite ??= setTimeout(flush, wait);
      },
    };
    const done = (async () => {
      try {
        const result = await spec.run(ctx);
        ac.signal.throwIfAborted();
        this.finish(id, 'succeeded', result === undefined ? null : result, null);
      } catch (err) {
        if (ac.signal.aborted || isAbortError(err))
          this.finish(id, 'cancelled', null, { code: 'CANCELLED', message: 'Cancelled.' });
        else {
          const payload = toErrorPayload(err);
          if (payload.code === 'INTERNAL')
            this.log.error('task failed', { taskId: id, kind: spec.kind, err });
          this.finish(id, 'failed', null, payload);
        }
      } finally {
        if (pendingWrite) clearTimeout(pendingWrite);
        this.running.delete(id);
        this.updatePoller();
      }
    })();
    this.running.set(id, { ac, done });
    this.updatePoller();
    const task = this.get(id);
    this.bus.emit('tasks.changed', task);
    return task;
  }

  get(id: string): Task {
    const r = this.db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No task ${id}.`);
    return toTask(r);
  }

  list(opts: { status?: Task['status']; kind?: string; limit: number }): Task[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.status) {
      where.push('status = ?');
      args.push(opts.status);
    }
    if (opts.kind) {
      where.push('kind = ?');
      args.push(opts.kind);
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM tasks ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      )
      .all(...args, opts.limit) as Row[];
    return rows.map(toTask);
  }

  /** Request cancellation. Works across processes: the owner polls the flag. */
  cancel(id: string): Task {
    const t = this.get(id);
    if (isTerminal(t)) return t;
    if (!t.cancellable) throw new FluidError('CONFLICT', `Task "${t.title}" cannot be cancelled.`);
    this.db
      .prepare('UPDATE tasks SET cancel_requested = 1, message = ?, updated_at = ? WHERE id = ?')
      .run('Cancelling', this.clock.now().toISOString(), id);
    this.running.get(id)?.ac.abort();
    this.emit(id);
    return this.get(id);
  }

  /** Resolve when the task reaches a terminal state (polling the database for other processes' tasks). */
  async wait(id: string, signal?: AbortSignal): Promise<Task> {
    for await (const t of this.watch(id, signal)) if (isTerminal(t)) return t;
    return this.get(id);
  }

  /** The task now, then each change until it is terminal. */
  async *watch(id: string, signal?: AbortSignal): AsyncGenerator<Task> {
    let current = this.get(id);
    yield current;
    if (isTerminal(current)) return;
    const queue: Task[] = [];
    let wake: (() => void) | null = null;
    const un = this.bus.subscribe('tasks.changed', (t) => {
      if (t.id !== id) return;
      queue.push(t);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      while (!signal?.aborted) {
        if (!queue.length) {
          // Poll as a fallback: the task may belong to another process sharing this database.
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 500);
          });
          wake = null;
          if (!queue.length) {
            const fresh = this.get(id);
            if (fresh.updatedAt !== current.updatedAt || fresh.status !== current.status) queue.push(fresh);
          }
        }
        while (queue.length) {
          const t = queue.shift()!;
          if (
            t.updatedAt === current.updatedAt &&
            t.status === current.status &&
            t.message === current.message &&
            t.progress === current.progress
          )
            continue;
          current = t;
          yield t;
          if (isTerminal(t)) return;
        }
      }
    } finally {
      un();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Wait for every task this process started (for shutdown and tests). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  abortAll(): void {
    for (const r of this.running.values()) r.ac.abort();
  }

  close(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  private finish(id: string, status: Task['status'], result: unknown, error: unknown): void {
    const now = this.clock.now().toISOString();
    this.db
      .prepare(
        "UPDATE tasks SET status = ?, progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END, message = ?, finished_at = ?, updated_at = ?, result = ?, error = ? WHERE id = ?",
      )
      .run(
        status,
        status,
        status === 'succeeded'
          ? 'Done'
          : status === 'cancelled'
            ? 'Cancelled'
            : ((error as { message?: string })?.message ?? 'Failed'),
        now,
        now,
        result === null ? null : JSON.stringify(result),
        error === null ? null : JSON.stringify(error),
        id,
      );
    this.emit(id);
  }

  private emit(id: string): void {
    this.bus.emit('tasks.changed', this.get(id));
  }

  /** Poll for cancel requests made by other processes, only while this process runs tasks. */
  private updatePoller(): void {
    if (this.running.size && !this.poller) {
      this.poller = setInterval(() => {
        for (const [id, r] of this.running) {
          const row = this.db.prepare('SELECT cancel_requested FROM tasks WHERE id = ?').get(id) as
            { cancel_requested: number } | undefined;
          if (row?.cancel_requested) r.ac.abort();
        }
      }, 500);
      this.poller.unref();
    } else if (!this.running.size && this.poller) {
      clearInterval(this.poller);
      this.poller = null;
    }
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
