import type { ContractDef, EventName, Payload } from '../shared/rpc.ts';
import type { Contract } from '../shared/contract/index.ts';
import type { EventSource } from './rpc/server.ts';
import { prepared, type Db } from './store/db.ts';

/** In-process pub/sub for contract events. Listeners that throw are isolated from each other. */
export class TypedEventBus<C extends ContractDef> implements EventSource<C> {
  private readonly listeners = new Map<string, Set<(p: unknown) => void>>();

  emit<K extends EventName<C>>(name: K, payload: Payload<C, K>): void {
    for (const l of this.listeners.get(name) ?? []) {
      try {
        l(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  subscribe<K extends EventName<C>>(name: K, listener: (payload: Payload<C, K>) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    const l = listener as (p: unknown) => void;
    set.add(l);
    return () => set.delete(l);
  }

  listenerCount(name: string): number {
    return this.listeners.get(name)?.size ?? 0;
  }
}

/**
 * The app's event bus. Events are also written to a small feed table so that other Fluid processes
 * sharing the database (a CLI command next to a running app or web mode) can replay them: a sandbox
 * created, an approval decided or a setting changed in one door shows up live in the others.
 */
export class EventBus extends TypedEventBus<Contract> {
  private feed: { db: Db; origin: string; last: number; timer: NodeJS.Timeout | null } | null = null;

  override emit<K extends EventName<Contract>>(name: K, payload: Payload<Contract, K>): void {
    super.emit(name, payload);
    if (this.feed && RELAYED.has(name)) {
      // Written in one transaction per pass of the event loop: a commit per event cost more than the
      // rest of an audit append, and readers poll every 500 ms anyway.
      this.unwritten.push([name, JSON.stringify(payload), Date.now()]);
      if (!this.flushing) {
        this.flushing = true;
        unflushed.add(this);
        setImmediate(() => this.flushFeed());
      }
    }
  }

  private unwritten: Array<[name: string, payload: string, ts: number]> = [];
  private flushing = false;

  /** Write the events emitted since the last pass (also at detach and at process exit). */
  flushFeed(): void {
    this.flushing = false;
    unflushed.delete(this);
    const rows = this.unwritten.splice(0);
    const f = this.feed;
    if (!f || !rows.length) return;
    try {
      const insert = prepared(f.db, 'INSERT INTO event_feed (name, payload, origin, ts) VALUES (?, ?, ?, ?)');
      f.db.transaction(() => {
        for (const [name, payload, ts] of rows) insert.run(name, payload, f.origin, ts);
      })();
    } catch {
      /* the feed is best effort; local listeners already have the event */
    }
  }

  /** Record events for other processes; with `follow`, also replay theirs (long-running doors). */
  attachFeed(db: Db, origin: string, follow: boolean): void {
    const row = db.prepare('SELECT MAX(seq) AS s FROM event_feed').get() as { s: number | null };
    this.feed = { db, origin, last: row.s ?? 0, timer: null };
    if (follow) this.follow();
  }

  follow(intervalMs = 500): void {
    const f = this.feed;
    if (!f || f.timer) return;
    let sweeps = 0;
    f.timer = setInterval(() => {
      try {
        const rows = prepared(
          f.db,
          'SELECT seq, name, payload, origin FROM event_feed WHERE seq > ? ORDER BY seq LIMIT 500',
        ).all(f.last) as Array<{ seq: number; name: string; payload: string; origin: string }>;
        for (const r of rows) {
          f.last = r.seq;
          if (r.origin !== f.origin)
            super.emit(r.name as EventName<Contract>, JSON.parse(r.payload) as never);
        }
        if (++sweeps % 120 === 0)
          f.db.prepare('DELETE FROM event_feed WHERE ts < ?').run(Date.now() - 10 * 60_000);
      } catch {
        /* database busy or closing: try again next tick */
      }
    }, intervalMs);
    f.timer.unref();
  }

  detachFeed(): void {
    this.flushFeed();
    if (this.feed?.timer) clearInterval(this.feed.timer);
    this.feed = null;
  }
}

/** Buses with events not yet written: written at exit too (a CLI command may exit right after one). */
const unflushed = new Set<EventBus>();
process.on('exit', () => {
  for (const bus of [...unflushed]) bus.flushFeed();
});

const RELAYED = new Set<string>([
  'hosts.changed',
  'sandboxes.changed',
  'sandboxes.runChanged',
  'diff.changed',
  'approvals.changed',
  'settings.changed',
  'audit.appended',
  'tasks.changed',
  'agent.changed',
  'targets.changed',
  'changes.changed',
]);
