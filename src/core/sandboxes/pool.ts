/**
 * The warm pool. Per source (opt-in: Settings → Sandboxes → Warm pool, `source=N`), Fluid makes
 * sandboxes ahead of time on the restore path — warm template restored, identity applied, Fluid's CA
 * trusted, first login done, baseline recorded, host expiry armed — then pauses them, keeping their
 * SSH connection. A create that matches takes one: resume, set the clock, and it runs, in well under
 * a second instead of the restore path's seconds (service.ts, `takeFromPool`).
 *
 *   members     sandbox rows made by POOL_ACTOR: `creating` while being made, `pooled` when ready.
 *               They are never listed as sandboxes and no ref reaches them (store.ts); a handout
 *               changes the row's owner atomically, so two creates never get the same one.
 *   accounting  members count against the host's admission limits like any sandbox; a fill that
 *               does not fit waits instead of asking a person.
 *   lifecycle   a member nobody takes is recycled after MEMBER_TTL_MINUTES (the host's watchdog
 *               removes it by itself if no Fluid process runs); members of an older base or another
 *               size are drained; reconcile keeps paused members after a crash and removes any that
 *               are not paused any more.
 *
 * This file decides (planPool, pure) and drives (WarmPool: one pass at a time per process, one fill
 * at a time per host); making and removing a member is the sandbox service's.
 */
import type { Host } from '../../shared/contract/hosts.ts';
import type { PoolStatus } from '../../shared/contract/sandboxes.ts';
import type { Actor } from '../../shared/rpc.ts';
import { toErrorPayload } from '../../shared/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { BaseRecord } from './bases.ts';
import type { SandboxRow } from './store.ts';

export const POOL_ACTOR: Actor = { door: 'system', id: 'warm-pool' };

/** A member nobody took is replaced after this long (it would only grow older than its source). */
export const MEMBER_TTL_MINUTES = 12 * 60;

/** After a member could not be made, the next try for that source waits this long. */
const RETRY_MS = 120_000;

export function isPoolMember(r: Pick<SandboxRow, 'created_by_door' | 'created_by_id'>): boolean {
  return r.created_by_door === POOL_ACTOR.door && r.created_by_id === POOL_ACTOR.id;
}

/**
 * A paused guest's clock stands still; the one who resumes it sets it. `sudo date` costs a sudo
 * round trip (hundreds of ms under emulation), so a member gets a root waiter before it is paused:
 * it reads one timestamp from a FIFO only the login user can open, sets the clock and says how it
 * went on a second FIFO. /run is tmpfs: nothing of it reaches the disk the diff reads.
 */
const CLOCK_DIR = '/run/fluid-clock';

/** Run as root (once, while the member is made). */
export function clockWaiterScript(loginUser: string): string {
  return `d=${CLOCK_DIR}; rm -rf "$d"; mkdir -m 700 "$d" && mkfifo -m 600 "$d/set" "$d/done" && chown -R ${loginUser} "$d" || exit 1
nohup sh -c 'read -r t < ${CLOCK_DIR}/set; date -u -s "@$t" >/dev/null 2>&1; echo $? > ${CLOCK_DIR}/done; rm -rf ${CLOCK_DIR}' >/dev/null 2>&1 &`;
}

/** Run as the login user when the member is handed out: exit 0 when the clock was set, 3 without a waiter. */
export function clockSetScript(epochMs: number): string {
  return `d=${CLOCK_DIR}; [ -p "$d/set" ] || exit 3; echo ${(epochMs / 1000).toFixed(3)} > "$d/set"; read -r rc < "$d/done"; exit "$rc"`;
}

export interface PoolEntry {
  /** Host name or id; null: every host that has the source. */
  host: string | null;
  source: string;
  size: number;
}

/** Settings lines `source=N` / `host:source=N` (the schema checks their shape). */
export function parsePoolEntries(lines: readonly string[]): PoolEntry[] {
  return lines.flatMap((line) => {
    const m = /^(?:([^:=\s]+):)?([^:=\s]+)=(\d+)$/.exec(line.trim());
    return m ? [{ host: m[1] ?? null, source: m[2]!, size: Number(m[3]) }] : [];
  });
}

/** A member as the planner sees it. */
export interface PlanMember {
  id: string;
  hostId: string;
  source: string;
  baseId: string | null;
  vcpus: number;
  memoryMiB: number;
  /** `filling`: being made by a live process; `ready`: paused, waiting. */
  phase: 'filling' | 'ready';
}

/** What the planner knows of one wanted source on one host. */
export interface PlanTarget {
  hostId: string;
  hostName: string;
  source: string;
  size: number;
  hostMemoryMiB: number | null;
  /** The latest ready base copy of the source on this host (null: none yet). */
  base: Pick<BaseRecord, 'id' | 'templateState' | 'template' | 'templateError'> | null;
  /** The source is not on this host (entries without a host apply where the source is). */
  missing?: boolean;
  /** Why the last fill failed, if it did. */
  lastError?: string | null;
}

export interface PoolPlan {
  fill: Array<{ hostId: string; source: string }>;
  /** Bases whose warm template the pool needs first. */
  warm: Array<{ hostId: string; source: string }>;
  drain: Array<{ id: string; reason: string }>;
  status: PoolStatus[];
}

/**
 * One pass's decisions: drain what is stale or too many, fill what is missing (one at a time per
 * host, since a fill is a whole restore), and say for each entry why it is not full.
 */
export function planPool(targets: PlanTarget[], members: PlanMember[], minHostMemoryMiB: number): PoolPlan {
  const plan: PoolPlan = { fill: [], warm: [], drain: [], status: [] };
  const claimed = new Set<string>();
  const fillingHosts = new Set(members.filter((m) => m.phase === 'filling').map((m) => m.hostId));
  for (const t of targets) {
    const mine = members.filter((m) => m.hostId === t.hostId && m.source === t.source);
    for (const m of mine) claimed.add(m.id);
    const status: PoolStatus = {
      host: t.hostName,
      source: t.source,
      size: t.size,
      ready: 0,
      filling: mine.filter((m) => m.phase === 'filling').length,
      note: null,
    };
    plan.status.push(status);
    const drainAll = (reason: string) => {
      for (const m of mine) if (m.phase === 'ready') plan.drain.push({ id: m.id, reason });
      status.note = reason;
    };
    if (t.missing) {
      drainAll(`${t.source} is not on ${t.hostName}`);
      continue;
    }
    if (t.hostMemoryMiB !== null && t.hostMemoryMiB < minHostMemoryMiB) {
      drainAll(
        `${t.hostName} has ${t.hostMemoryMiB} MiB of memory, below the pool's minimum of ${minHostMemoryMiB} MiB (Settings → Sandboxes)`,
      );
      continue;
    }
    const tpl = t.base?.templateState === 'ready' ? t.base.template : null;
    if (!t.base || !tpl) {
      drainAll(
        t.base?.templateState === 'failed'
          ? `the warm template of ${t.source} failed: ${t.base.templateError ?? 'unknown error'}`
          : `waiting for the warm template of ${t.source}`,
      );
      if (!t.base || t.base.templateState === 'none') plan.warm.push({ hostId: t.hostId, source: t.source });
      continue;
    }
    const current: PlanMember[] = [];
    for (const m of mine) {
      if (m.phase !== 'ready') continue;
      if (m.baseId !== t.base.id) plan.drain.push({ id: m.id, reason: 'made from an older base copy' });
      else if (m.vcpus !== tpl.vcpus || m.memoryMiB !== tpl.memoryMiB)
        plan.drain.push({ id: m.id, reason: 'another size than the warm template' });
      else current.push(m);
    }
    status.ready = current.length;
    for (const m of current.slice(t.size)) plan.drain.push({ id: m.id, reason: 'more than the pool size' });
    const have = current.length + status.filling;
    if (have >= t.size) continue;
    if (t.lastError) status.note = `the last member could not be made: ${t.lastError}`;
    else status.note = status.filling ? 'filling' : 'waiting to fill';
    if (!fillingHosts.has(t.hostId)) {
      plan.fill.push({ hostId: t.hostId, source: t.source });
      fillingHosts.add(t.hostId);
    }
  }
  // Members of sources no entry wants any more.
  for (const m of members)
    if (!claimed.has(m.id) && m.phase === 'ready')
      plan.drain.push({ id: m.id, reason: 'its source is no longer in the warm pool settings' });
  return plan;
}

export interface WarmPoolDeps {
  log: Logger;
  /** The pool lines from Settings, and the host memory threshold. */
  settings(): { lines: readonly string[]; minHostMemoryMiB: number };
  hosts(): Host[];
  /** Source VM names on a host (null when the host cannot be asked now). */
  sources(hostId: string): Promise<string[] | null>;
  latestBase(hostId: string, source: string): PlanTarget['base'];
  members(): SandboxRow[];
  memberAlive(r: SandboxRow): boolean;
  fill(hostId: string, source: string): Promise<void>;
  drain(id: string, reason: string): Promise<void>;
  warm(hostId: string, source: string): Promise<unknown>;
  /** Let go of the SSH connections of members another process handed out. */
  release(ids: string[]): void;
}

/** Keeps the pool as Settings say: one pass at a time, again after every change and periodically. */
export class WarmPool {
  private readonly d: WarmPoolDeps;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private readonly errors = new Map<string, string>();
  private readonly failedAt = new Map<string, number>();
  private readonly warming = new Set<string>();
  private readonly held = new Set<string>();
  private last: PoolStatus[] = [];

  constructor(d: WarmPoolDeps) {
    this.d = d;
  }

  start(intervalMs = 60_000): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Run a pass soon (after a settings change, a handout, a template ready). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: unknown) => this.d.log.warn('warm pool pass failed', { err }))
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Wait for the pass in flight (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** A member this process made keeps its SSH connection until handed out or drained. */
  noteHeld(id: string): void {
    this.held.add(id);
  }

  forget(id: string): void {
    this.held.delete(id);
  }

  status(): PoolStatus[] {
    return this.last;
  }

  /** What one pass would decide now (also what `status` reports between passes). */
  async plan(): Promise<PoolPlan> {
    const { lines, minHostMemoryMiB } = this.d.settings();
    const entries = parsePoolEntries(lines);
    const hosts = this.d.hosts();
    const targets: PlanTarget[] = [];
    for (const e of entries) {
      const matching = e.host ? hosts.filter((h) => h.name === e.host || h.id === e.host) : hosts;
      if (!matching.length) {
        targets.push({
          hostId: `missing:${e.host}`,
          hostName: e.host ?? '(no host)',
          source: e.source,
          size: e.size,
          hostMemoryMiB: null,
          base: null,
          missing: true,
        });
        continue;
      }
      for (const h of matching) {
        const names = e.host || matching.length === 1 ? null : await this.d.sources(h.id);
        if (names && !names.includes(e.source)) continue;
        targets.push({
          hostId: h.id,
          hostName: h.name,
          source: e.source,
          size: e.size,
          hostMemoryMiB: h.lastCheck?.facts.memoryMiB ?? null,
          base: this.d.latestBase(h.id, e.source),
          lastError: this.errors.get(`${h.id}/${e.source}`) ?? null,
        });
      }
    }
    const members: PlanMember[] = this.d.members().flatMap((r) => {
      const phase =
        r.state === 'pooled' ? 'ready' : r.state === 'creating' && this.d.memberAlive(r) ? 'filling' : null;
      return phase
        ? [
            {
              id: r.id,
              hostId: r.host_id,
              source: r.source_name,
              baseId: r.base_id,
              vcpus: r.vcpus,
              memoryMiB: r.memory_mib,
              phase,
            } satisfies PlanMember,
          ]
        : [];
    });
    return planPool(targets, members, minHostMemoryMiB);
  }

  private async pass(): Promise<void> {
    // Connections held for members that are no longer in the pool (another process took them).
    const pooled = new Set(
      this.d
        .members()
        .filter((r) => r.state === 'pooled' || r.state === 'creating')
        .map((r) => r.id),
    );
    const gone = [...this.held].filter((id) => !pooled.has(id));
    if (gone.length) {
      for (const id of gone) this.held.delete(id);
      this.d.release(gone);
    }
    const plan = await this.plan();
    this.last = plan.status;
    for (const w of plan.warm) {
      const key = `${w.hostId}/${w.source}`;
      if (this.warming.has(key)) continue;
      this.warming.add(key);
      void this.d
        .warm(w.hostId, w.source)
        .catch((err: unknown) => this.d.log.warn('warm pool: no warm template', { source: w.source, err }))
        .finally(() => {
          this.warming.delete(key);
          this.kick();
        });
    }
    for (const x of plan.drain) {
      if (this.stopped) return;
      await this.d
        .drain(x.id, x.reason)
        .catch((err: unknown) => this.d.log.warn('could not drain a pool member', { id: x.id, err }));
    }
    // Fills run one after another (each is a whole restore); the next pass picks up what is left.
    for (const f of plan.fill) {
      if (this.stopped) return;
      const key = `${f.hostId}/${f.source}`;
      // After a failure (over the host's limits, say), wait a little before trying again.
      if ((this.failedAt.get(key) ?? 0) + RETRY_MS > Date.now()) continue;
      try {
        await this.d.fill(f.hostId, f.source);
        this.errors.delete(key);
        this.failedAt.delete(key);
      } catch (err) {
        this.errors.set(key, toErrorPayload(err).message);
        this.failedAt.set(key, Date.now());
        this.d.log.warn('could not make a warm pool member', { host: f.hostId, source: f.source, err });
        continue;
      }
      this.again = true;
    }
    this.last = (await this.plan()).status;
  }
}
