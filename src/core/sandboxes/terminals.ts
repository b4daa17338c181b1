/**
 * Terminals in sandboxes that belong to the backend, like tmux sessions: the shell (a PTY over the
 * sandbox's certificate SSH) lives here, pages attach to it and detach from it, and it ends only when
 * its shell exits, a person closes it, the sandbox stops, or nobody has been attached for the
 * `sandboxes.terminalIdleMinutes` setting. Its newest output is kept (scrollback) so a page that
 * attaches again redraws what it missed.
 *
 * Terminals are a person's: agent doors have their own command tools and never type into a person's
 * shell (the router refuses them).
 */
import { randomUUID } from 'node:crypto';
import type { Terminal, TerminalItem } from '../../shared/contract/runs.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { GuestShell } from '../ssh/guest.ts';
import type { AuditLog } from '../store/audit.ts';
import { AsyncQueue } from '../util/queue.ts';
import { OutputLog } from './output-log.ts';
import type { SandboxRow } from './store.ts';

export interface TerminalDeps {
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  /** Open the PTY (the sandbox service: certificate SSH through the host). */
  shell(r: SandboxRow, cols: number, rows: number): Promise<GuestShell>;
  /** Minutes an unattached terminal stays open (the setting; read when a terminal becomes unattached). */
  idleMinutes(): number;
  /** Timers (tests pass fake ones). */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

/** Scrollback a terminal keeps for pages that attach again. */
export const SCROLLBACK_BYTES = 256 * 1024;
/** Ended terminals listed for a while (their last output still attachable). */
const ENDED_KEPT = 20;

interface Term {
  id: string;
  row: SandboxRow;
  actor: Actor;
  shell: GuestShell;
  out: OutputLog<'data'>;
  cols: number;
  rows: number;
  openedAt: Date;
  endedAt: Date | null;
  endReason: string | null;
  exitCode: number | null;
  attached: number;
  idleSince: Date | null;
  idleTimer: { cancel(): void } | null;
  onEnd: Set<() => void>;
}

export class TerminalManager {
  private readonly d: TerminalDeps;
  private readonly terms = new Map<string, Term>();

  constructor(deps: TerminalDeps) {
    this.d = deps;
  }

  async open(row: SandboxRow, cols: number, rows: number, actor: Actor): Promise<Terminal> {
    const shell = await this.d.shell(row, cols, rows);
    const t: Term = {
      id: randomUUID(),
      row,
      actor,
      shell,
      out: new OutputLog<'data'>(SCROLLBACK_BYTES),
      cols,
      rows,
      openedAt: this.d.clock.now(),
      endedAt: null,
      endReason: null,
      exitCode: null,
      attached: 0,
      idleSince: null,
      idleTimer: null,
      onEnd: new Set(),
    };
    this.terms.set(t.id, t);
    shell.onData((c) => t.out.push('data', c));
    shell.onExit((e) =>
      this.ended(t, e.exitCode === null ? 'the shell was closed' : 'the shell exited', e.exitCode),
    );
    this.d.audit.append({
      actor,
      action: 'sandbox.shell',
      target: row.id,
      data: { terminal: t.id, cols, rows },
    });
    // Nobody is attached until a page attaches: the idle clock runs from the start.
    this.armIdle(t);
    return this.dto(t);
  }

  list(sandboxId?: string, includeEnded = false): Terminal[] {
    return [...this.terms.values()]
      .filter((t) => (!sandboxId || t.row.id === sandboxId) && (includeEnded || !t.endedAt))
      .sort((a, b) => b.openedAt.getTime() - a.openedAt.getTime())
      .map((t) => this.dto(t));
  }

  get(id: string): Terminal {
    return this.dto(this.term(id));
  }

  /** Scrollback from `offset`, then live; detaching (abort, return) leaves the terminal open. */
  attach(id: string, offset: number, signal?: AbortSignal): AsyncIterable<TerminalItem> {
    const t = this.term(id);
    let stop = () => {};
    const q = new AsyncQueue<TerminalItem>(() => stop());
    const slice = t.out.from(offset);
    q.push({ kind: 'terminal', terminal: this.dto(t) });
    if (slice.dropped) q.push({ kind: 'dropped', bytes: slice.dropped });
    for (const c of slice.chunks) q.push({ kind: 'data', data: c.data, offset: c.end });
    if (t.endedAt) {
      q.push({ kind: 'exit', terminal: this.dto(t) });
      q.end();
      return q;
    }
    t.attached++;
    this.disarmIdle(t);
    const un = t.out.subscribe((c) => c.data && q.push({ kind: 'data', data: c.data, offset: c.end }));
    const onEnd = () => {
      stop();
      q.push({ kind: 'exit', terminal: this.dto(t) });
      q.end();
    };
    t.onEnd.add(onEnd);
    let detached = false;
    const onAbort = () => {
      stop();
      q.end();
    };
    stop = () => {
      if (detached) return;
      detached = true;
      un();
      t.onEnd.delete(onEnd);
      signal?.removeEventListener('abort', onAbort);
      t.attached = Math.max(0, t.attached - 1);
      if (!t.attached && !t.endedAt) this.armIdle(t);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return q;
  }

  input(id: string, data: string | undefined, cols: number | undefined, rows: number | undefined): void {
    const t = this.term(id);
    if (t.endedAt) throw new FluidError('NOT_FOUND', 'That terminal has ended; open a new one.');
    if (cols && rows && (cols !== t.cols || rows !== t.rows)) {
      t.cols = cols;
      t.rows = rows;
      t.shell.resize(cols, rows);
    }
    if (data) t.shell.write(data);
  }

  close(id: string, actor: Actor, reason = 'closed'): Terminal {
    const t = this.term(id);
    if (t.endedAt) return this.dto(t);
    this.ended(t, `${reason} by ${actor.door}:${actor.id}`, null);
    t.shell.close();
    return this.dto(t);
  }

  /** End every terminal of a sandbox (it stops, is destroyed or restored). */
  closeSandbox(sandboxId: string, reason: string): void {
    for (const t of this.terms.values())
      if (t.row.id === sandboxId && !t.endedAt) {
        this.ended(t, reason, null);
        t.shell.close();
      }
  }

  closeAll(): void {
    for (const t of this.terms.values())
      if (!t.endedAt) {
        this.ended(t, 'Fluid shut down', null);
        t.shell.close();
      }
  }

  private term(id: string): Term {
    const t = this.terms.get(id);
    if (!t)
      throw new FluidError(
        'NOT_FOUND',
        'No such terminal here: it ended, or it belongs to another Fluid process. Open a new one.',
      );
    return t;
  }

  private ended(t: Term, reason: string, exitCode: number | null): void {
    if (t.endedAt) return;
    t.endedAt = this.d.clock.now();
    t.endReason = reason;
    t.exitCode = exitCode;
    this.disarmIdle(t);
    this.d.audit.append({
      actor: t.actor,
      action: 'sandbox.shell.end',
      target: t.row.id,
      data: {
        terminal: t.id,
        reason,
        exitCode,
        outputBytes: t.out.total,
        durationMs: Math.max(0, t.endedAt.getTime() - t.openedAt.getTime()),
      },
    });
    for (const l of [...t.onEnd]) l();
    // Keep a few ended ones (their last screen can still be read), drop the oldest.
    const ended = [...this.terms.values()].filter((x) => x.endedAt);
    for (const old of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT))) this.terms.delete(old.id);
  }

  private armIdle(t: Term): void {
    this.disarmIdle(t);
    t.idleSince = this.d.clock.now();
    const minutes = this.d.idleMinutes();
    const set =
      this.d.setTimer ??
      ((fn: () => void, ms: number) => {
        const h = setTimeout(fn, ms);
        h.unref();
        return { cancel: () => clearTimeout(h) };
      });
    t.idleTimer = set(() => {
      t.idleTimer = null;
      if (t.attached || t.endedAt) return;
      this.ended(t, `nobody attached for ${minutes} min (sandboxes.terminalIdleMinutes)`, null);
      t.shell.close();
    }, minutes * 60_000);
  }

  private disarmIdle(t: Term): void {
    t.idleTimer?.cancel();
    t.idleTimer = null;
    t.idleSince = null;
  }

  private dto(t: Term): Terminal {
    const idle = t.idleSince && !t.endedAt ? t.idleSince.getTime() + this.d.idleMinutes() * 60_000 : null;
    return {
      id: t.id,
      sandboxId: t.row.id,
      sandboxName: t.row.name,
      openedBy: t.actor,
      status: t.endedAt ? 'exited' : 'open',
      openedAt: t.openedAt.toISOString(),
      endedAt: t.endedAt?.toISOString() ?? null,
      endReason: t.endReason,
      exitCode: t.exitCode,
      cols: t.cols,
      rows: t.rows,
      attached: t.attached,
      idleClosesAt: idle ? new Date(idle).toISOString() : null,
      outputBytes: t.out.total,
      droppedBytes: t.out.dropped,
    };
  }
}
