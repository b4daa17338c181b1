/**
 * The agent service: model providers, persisted sessions and the runs of their loop in this
 * process, and the `agent.watch` stream (snapshot first, then deltas; sessions run by another
 * process sharing the database are followed by polling it).
 *
 * Status: idle → running ⇄ waiting-approval → done | stopped | failed; any of the last three (and
 * idle) continue to running on agent.send. A session whose process died while running is shown as
 * idle with a lastError saying it was interrupted; agent.send continues the same transcript.
 */
import { randomUUID } from 'node:crypto';
import type {
  AgentEvent,
  AgentMode,
  Provider,
  Session,
  SessionStatus,
  ToolInfo,
  TranscriptBlock,
  TranscriptMessage,
} from '../../shared/contract/agent.ts';
import { FluidError, type ErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { EventBus } from '../events.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { SettingsService } from '../store/settings.ts';
import { pidAlive } from '../store/tasks.ts';
import { AsyncQueue } from '../util/queue.ts';
import { StepGate } from './gate.ts';
import { runSession, type LiveRun, type LoopHost } from './loop.ts';
import type { ModelProvider, ProviderConfig } from './providers/types.ts';
import { createProviderLazy as defaultCreateProvider } from './providers/lazy.ts';
import type { PresenceProof } from '../../shared/contract/presence.ts';
import type { PresenceService } from '../presence/service.ts';
import {
  ProviderStore,
  priceFor,
  providerPurpose,
  unpricedMessage,
  type ProviderInput,
  type ProviderTuning,
} from './providers-store.ts';
import { Redactor } from './redact.ts';
import { SessionStore, toSession, type SessionPatch, type SessionRow } from './sessions.ts';
import type { ToolRegistry } from './tools/registry.ts';

export interface AgentDeps {
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  settings: SettingsService;
  secrets: SecretStore;
  approvals: ApprovalService;
  /** Who may lower a provider's price (a person, with presence). */
  presence: PresenceService;
  tools: ToolRegistry;
  clock: Clock;
  log: Logger;
  /** This process's identity as the owner of running sessions (e.g. TaskManager.instance). */
  instance?: string;
  /** Builds model clients (default: the real providers). */
  createProvider?: (config: ProviderConfig) => ModelProvider;
  /** Applied to every provider client (tests shorten retry delays). */
  providerTuning?: ProviderTuning;
  /**
   * Whether the process owning a running session is alive. Default: a live pid other than this
   * process's (this pid with another instance is a previous life of a restarted process).
   */
  isAlive?: (pid: number) => boolean;
  /** How often watchers of another process's session and stop requests are polled (ms, default 500). */
  pollMs?: number;
}

export interface CreateSessionInput {
  task: string;
  title?: string;
  mode: AgentMode;
  providerId?: string;
  model?: string;
  host?: string;
  source?: string;
  maxSteps?: number;
  maxCostUsd?: number;
}

const ACTIVE: readonly SessionStatus[] = ['running', 'waiting-approval'];

/** A short title from the task: its first line, cut at a word near 80 characters. */
export function titleFrom(task: string): string {
  const line =
    task
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? 'Agent session';
  const one = line.replace(/\s+/g, ' ');
  if (one.length <= 80) return one;
  const cut = one.slice(0, 80);
  const sp = cut.lastIndexOf(' ');
  return `${(sp > 50 ? cut.slice(0, sp) : cut).replace(/[\s,.;:]+$/, '')}…`;
}

export class AgentService {
  readonly providers: ProviderStore;
  readonly store: SessionStore;
  readonly tools: ToolRegistry;
  readonly instance: string;
  private readonly d: AgentDeps;
  private readonly runs = new Map<string, { run: LiveRun; done: Promise<void>; poller: NodeJS.Timeout }>();
  /** Runs detached from `runs` that have not returned yet (shutdown waits for them). */
  private readonly ending = new Set<Promise<void>>();
  private readonly listeners = new Map<string, Set<(ev: AgentEvent) => void>>();
  private readonly redactors = new Map<string, Redactor>();
  private readonly host: LoopHost;
  private closed = false;

  constructor(deps: AgentDeps) {
    this.d = deps;
    this.tools = deps.tools;
    this.instance = deps.instance ?? randomUUID();
    this.providers = new ProviderStore({
      db: deps.db,
      secrets: deps.secrets,
      audit: deps.audit,
      clock: deps.clock,
      presence: deps.presence,
    });
    this.store = new SessionStore(deps.db, deps.clock);
    const create = deps.createProvider ?? defaultCreateProvider;
    // One client per provider configuration, reused by every turn of every session (a client keeps
    // its connection pool); a changed key, URL, model or tuning is a new configuration.
    const clients = new Map<string, ModelProvider>();
    // (Keyed by the configuration's JSON itself: the client holds the same key in memory anyway.)
    const client = (config: ProviderConfig): ModelProvider => {
      const key = JSON.stringify(config);
      let c = clients.get(key);
      if (!c) {
        c = create(config);
        if (clients.size >= 32) clients.delete(clients.keys().next().value!);
        clients.set(key, c);
      }
      return c;
    };
    this.host = {
      store: this.store,
      tools: deps.tools,
      approvals: deps.approvals,
      settings: deps.settings,
      clock: deps.clock,
      log: deps.log,
      provider: (id) => this.providers.get(id),
      price: (row, provider) => priceFor(provider, row.model),
      model: (row) => client(this.providers.config(row.provider_id, row.model, deps.providerTuning)),
      redactor: (id) => this.redactor(id),
      emit: (id, ev) => this.emit(id, ev),
      gate: new StepGate(),
      update: (id, patch) => this.update(id, patch),
      end: (id, patch) => {
        this.detach(id);
        return this.update(id, patch);
      },
    };
    this.recoverInterrupted();
  }

  // ---- providers and tools -------------------------------------------------------------------------

  listProviders(): Provider[] {
    return this.providers.list();
  }

  /** Add or change a provider; `presence` is verified at the door for exactly this call (providerPurpose). */
  async saveProvider(input: ProviderInput & { presence?: PresenceProof }, actor: Actor): Promise<Provider> {
    const { presence: proof, ...rest } = input;
    const presence = await this.d.presence.verify(actor, providerPurpose(rest), proof);
    return this.providers.save(rest, actor, presence);
  }

  deleteProvider(id: string, actor: Actor): { deleted: true } {
    this.providers.delete(id, actor);
    return { deleted: true };
  }

  testProvider(id: string, signal?: AbortSignal) {
    return this.providers.test(id, signal, this.d.providerTuning);
  }

  toolsInfo(mode?: AgentMode): ToolInfo[] {
    return this.tools.info(mode);
  }

  // ---- sessions ------------------------------------------------------------------------------------

  list(limit = 100): Session[] {
    this.recoverInterrupted();
    return this.store.list(limit).map(toSession);
  }

  get(id: string): Session {
    this.recoverInterrupted(id);
    return toSession(this.store.row(id));
  }

  transcript(id: string): { messages: TranscriptMessage[] } {
    this.store.row(id);
    return { messages: this.store.messages(id) };
  }

  /** The raw output of a tool call (people only: the model gets redacted slices through the loop). */
  toolOutput(
    id: string,
    handle: string,
    offset = 0,
    limit = 256 * 1024,
  ): { content: string; total: number; offset: number } {
    const out = this.store.output(id, handle);
    const start = Math.min(offset, out.content.length);
    return { content: out.content.slice(start, start + limit), total: out.content.length, offset: start };
  }

  create(input: CreateSessionInput, actor: Actor): Session {
    this.assertOpen();
    if (actor.door === 'agent') throw new FluidError('DENIED', 'An agent cannot start agent sessions.');
    const provider = this.providers.resolve(input.providerId);
    const defaults = this.d.settings.get().agent;
    const model = input.model || provider.model;
    const maxCostUsd = input.maxCostUsd ?? defaults.maxCostUsd;
    // Every session has a cost cap; a model nothing prices would run uncapped.
    if (!this.providers.price(provider.id, model))
      throw new FluidError('VALIDATION', unpricedMessage(provider, model, maxCostUsd), {
        providerId: provider.id,
        model,
      });
    const row = this.store.insert({
      title: input.title?.trim() || '(untitled)',
      mode: input.mode,
      providerId: provider.id,
      model,
      host: input.host || null,
      source: input.source || null,
      maxSteps: input.maxSteps ?? defaults.maxSteps,
      maxCostUsd,
      createdBy: actor,
      owner: { pid: process.pid, instance: this.instance },
    });
    const redactor = this.redactor(row.id);
    const task = redactor.redact(input.task).text;
    if (!input.title?.trim()) this.store.update(row.id, { title: titleFrom(task) });
    this.store.append(row.id, 'user', [{ type: 'text', text: task }]);
    this.d.audit.append({
      actor,
      action: 'agent.session.create',
      target: row.id,
      data: {
        title: this.store.row(row.id).title,
        mode: row.mode,
        providerId: row.provider_id,
        model: row.model,
        host: row.host,
        source: row.source,
        maxSteps: row.max_steps,
        maxCostUsd: row.max_cost_usd,
      },
    });
    this.start(row.id);
    return this.get(row.id);
  }

  /** Add a message; continue a session that is not running (also one that was interrupted). */
  send(id: string, text: string, actor: Actor): Session {
    this.assertOpen();
    if (actor.door === 'agent')
      throw new FluidError('DENIED', 'An agent cannot send messages to agent sessions.');
    this.recoverInterrupted(id);
    const row = this.store.row(id);
    if (!this.providers.price(row.provider_id, row.model))
      throw new FluidError(
        'VALIDATION',
        unpricedMessage(this.providers.get(row.provider_id), row.model, row.max_cost_usd),
        { providerId: row.provider_id, model: row.model },
      );
    const safe = this.redactor(id).redact(text).text;
    const live = this.runs.get(id);
    if (live) {
      live.run.pending.push(safe);
      return toSession(row);
    }
    if (ACTIVE.includes(row.status))
      throw new FluidError(
        'CONFLICT',
        `Session ${id} is running in another Fluid process (pid ${row.owner_pid}). Send from there, or stop it first.`,
        { ownerPid: row.owner_pid },
      );
    // A reply whose tool calls never got results (a crash, a kill) gets error results first, so
    // the transcript stays a valid conversation.
    const last = this.store.lastMessage(id);
    const repair: TranscriptBlock[] =
      last?.role === 'assistant'
        ? last.content
            .filter((b) => b.type === 'tool_use')
            .map((b) => ({
              type: 'tool_result' as const,
              toolUseId: (b as { id: string }).id,
              content:
                'No result: Fluid stopped while this call was running. Its effect is unknown; check the state before retrying.',
              isError: true,
            }))
        : [];
    const msg = this.store.append(id, 'user', [...repair, { type: 'text', text: safe }]);
    this.emit(id, { type: 'message', message: msg });
    // A person continuing a session that hit a limit grants it the same budget again.
    const raise: SessionPatch = {};
    if (row.steps >= row.max_steps) raise.max_steps = row.steps + row.max_steps;
    if (row.cost_usd > 0 && row.cost_usd >= row.max_cost_usd)
      raise.max_cost_usd = row.cost_usd + row.max_cost_usd;
    if (Object.keys(raise).length) {
      this.store.update(id, raise);
      this.d.audit.append({
        actor,
        action: 'agent.session.limits',
        target: id,
        data: {
          maxSteps: raise.max_steps ?? row.max_steps,
          maxCostUsd: raise.max_cost_usd ?? row.max_cost_usd,
        },
      });
    }
    this.d.audit.append({
      actor,
      action: 'agent.session.send',
      target: id,
      data: { chars: text.length, resumedFrom: row.status, repaired: repair.length },
    });
    this.start(id);
    return this.get(id);
  }

  /** Stop now: the model stream and running tools are cancelled. */
  async stop(id: string, actor: Actor, reason?: string): Promise<Session> {
    this.recoverInterrupted(id);
    const row = this.store.row(id);
    const error: ErrorPayload = {
      code: 'CANCELLED',
      message: reason ?? `Stopped by ${actor.door}:${actor.id}.`,
    };
    const live = this.runs.get(id);
    if (live) {
      live.run.stop ??= { status: 'stopped', error };
      live.run.ac.abort();
      await Promise.race([live.done, sleep(5000)]);
    } else if (ACTIVE.includes(row.status)) {
      // Running in another process: ask its owner, which polls for the request.
      this.store.update(id, { stop_requested: 1 });
      const until = Date.now() + 5000;
      while (Date.now() < until && ACTIVE.includes(this.store.row(id).status)) await sleep(100);
    } else {
      return toSession(row);
    }
    this.d.audit.append({
      actor,
      action: 'agent.session.stop',
      target: id,
      data: { reason: reason ?? null },
    });
    return this.get(id);
  }

  setMode(id: string, mode: AgentMode, actor: Actor): Session {
    if (actor.door === 'agent') throw new FluidError('DENIED', 'An agent cannot change its own mode.');
    const row = this.store.row(id);
    if (row.mode === mode) return toSession(row);
    this.update(id, { mode });
    this.d.audit.append({
      actor,
      action: 'agent.session.mode',
      target: id,
      data: { from: row.mode, to: mode },
    });
    return this.get(id);
  }

  /** Resolves when this process's run of the session ends (at once when none is running here). */
  async settled(id: string): Promise<Session> {
    await this.runs.get(id)?.done;
    await Promise.allSettled([...this.ending]);
    return this.get(id);
  }

  // ---- watch ---------------------------------------------------------------------------------------

  /** The session now (snapshot), then every event until the signal aborts or the consumer returns. */
  watch(id: string, signal?: AbortSignal): AsyncIterable<AgentEvent> {
    this.recoverInterrupted(id);
    const row = this.store.row(id);
    const messages = this.store.messages(id);
    let lastSeq = messages.at(-1)?.seq ?? 0;
    let lastKey = `${row.updated_at}|${row.status}`;
    let timer: NodeJS.Timeout | null = null;
    let un: (() => void) | null = null;
    const cleanup = () => {
      un?.();
      un = null;
      if (timer) clearInterval(timer);
      timer = null;
      signal?.removeEventListener('abort', onAbort);
    };
    const q = new AsyncQueue<AgentEvent>(cleanup);
    const onAbort = () => {
      cleanup();
      q.end();
    };
    q.push({ type: 'snapshot', session: toSession(row), messages });
    const live = this.runs.get(id);
    if (live) {
      if (live.run.partial) q.push({ type: 'text_delta', text: live.run.partial });
      for (const c of live.run.calls.values()) q.push({ ...c });
    }
    un = this.subscribe(id, (ev) => {
      if (ev.type === 'message') {
        if (ev.message.seq <= lastSeq) return;
        lastSeq = ev.message.seq;
      } else if (ev.type === 'status') {
        lastKey = `${ev.session.updatedAt}|${ev.session.status}`;
      }
      q.push(ev);
    });
    // Sessions run by another process sharing the database: follow its rows.
    timer = setInterval(() => {
      if (this.runs.has(id)) return;
      try {
        this.recoverInterrupted(id);
        for (const m of this.store.messages(id, lastSeq)) {
          lastSeq = m.seq;
          q.push({ type: 'message', message: m });
        }
        const r = this.store.row(id);
        const key = `${r.updated_at}|${r.status}`;
        if (key !== lastKey) {
          lastKey = key;
          q.push({ type: 'status', session: toSession(r) });
        }
      } catch (err) {
        cleanup();
        q.fail(err);
      }
    }, this.d.pollMs ?? 500);
    timer.unref();
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return q;
  }

  // ---- lifecycle -----------------------------------------------------------------------------------

  /**
   * Sessions marked running by a process that is gone become idle, with a lastError saying so;
   * their pending approvals are withdrawn. Run at startup and whenever sessions are read.
   */
  recoverInterrupted(onlyId?: string): Session[] {
    const isAlive = this.d.isAlive ?? ((pid: number) => pid !== process.pid && pidAlive(pid));
    const out: Session[] = [];
    const rows = onlyId
      ? [this.store.tryRow(onlyId)].filter((r): r is SessionRow => !!r && ACTIVE.includes(r.status))
      : this.store.active();
    for (const r of rows) {
      if (r.owner_instance === this.instance) continue;
      if (r.owner_pid !== null && isAlive(r.owner_pid)) continue;
      const error: ErrorPayload = {
        code: 'CANCELLED',
        message: `Interrupted: the Fluid process running this session (pid ${r.owner_pid ?? '?'}) stopped before the session finished. Send a message to continue; the transcript is kept.`,
        data: { interrupted: true, ownerPid: r.owner_pid },
      };
      const changed = this.d.db
        .prepare(
          "UPDATE agent_sessions SET status = 'idle', last_error = ?, stop_requested = 0, updated_at = ? WHERE id = ? AND status IN ('running','waiting-approval') AND owner_instance IS ?",
        )
        .run(JSON.stringify(error), this.d.clock.now().toISOString(), r.id, r.owner_instance).changes;
      if (!changed) continue;
      for (const a of this.d.approvals.list({ status: 'pending', sessionId: r.id, limit: 100 }))
        this.d.approvals.cancel(
          a.id,
          { door: 'system', id: 'recovery' },
          'the agent session was interrupted',
        );
      this.d.audit.append({
        actor: { door: 'system', id: 'recovery' },
        action: 'agent.session.interrupted',
        target: r.id,
        data: { ownerPid: r.owner_pid },
      });
      const s = toSession(this.store.row(r.id));
      this.emit(r.id, { type: 'status', session: s });
      this.d.bus.emit('agent.changed', { sessionId: r.id, status: s.status });
      out.push(s);
    }
    return out;
  }

  /** Stop every run of this process (shutdown): they end idle, to be continued later. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.runs.values()];
    const pending = [...all.map((r) => r.done), ...this.ending];
    for (const r of all) {
      r.run.stop ??= {
        status: 'idle',
        error: {
          code: 'CANCELLED',
          message: 'Fluid shut down while this session was running. Send a message to continue.',
          data: { interrupted: true },
        },
      };
      r.run.ac.abort();
    }
    await Promise.race([Promise.allSettled(pending), sleep(10_000)]);
  }

  // ---- internals -----------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new FluidError('UNAVAILABLE', 'Fluid is shutting down.');
  }

  private redactor(id: string): Redactor {
    let r = this.redactors.get(id);
    if (!r) {
      const row = this.store.row(id);
      const red = new Redactor({
        salt: id,
        known: () => this.d.secrets.values(),
        state: this.store.redactorState(row),
      });
      red.onNewLabel = () => this.store.update(id, { redactions: JSON.stringify(red.state().labels) });
      this.redactors.set(id, red);
      // Keep the redactors of recent sessions only (each remembers the secrets it has seen).
      for (const old of this.redactors.keys()) {
        if (this.redactors.size <= 200) break;
        if (!this.runs.has(old) && old !== id) this.redactors.delete(old);
      }
      r = red;
    }
    return r;
  }

  private subscribe(id: string, l: (ev: AgentEvent) => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(l);
    return () => {
      set.delete(l);
      if (!set.size) this.listeners.delete(id);
    };
  }

  private emit(id: string, ev: AgentEvent): void {
    for (const l of this.listeners.get(id) ?? []) {
      try {
        l(ev);
      } catch (err) {
        this.d.log.warn('agent watcher failed', { sessionId: id, err });
      }
    }
  }

  private update(id: string, patch: SessionPatch): SessionRow {
    const before = this.store.status(id);
    const row = this.store.update(id, patch);
    this.emit(id, { type: 'status', session: toSession(row) });
    if (row.status !== before) this.d.bus.emit('agent.changed', { sessionId: id, status: row.status });
    return row;
  }

  private start(id: string): void {
    const run: LiveRun = {
      id,
      ac: new AbortController(),
      partial: '',
      calls: new Map(),
      pending: [],
      stop: null,
    };
    this.update(id, {
      status: 'running',
      last_error: null,
      stop_requested: 0,
      owner_pid: process.pid,
      owner_instance: this.instance,
    });
    const poller = setInterval(() => {
      const r = this.store.tryRow(id);
      if (r?.stop_requested) {
        run.stop ??= {
          status: 'stopped',
          error: { code: 'CANCELLED', message: 'Stopped from another Fluid process.' },
        };
        run.ac.abort();
      }
    }, this.d.pollMs ?? 500);
    poller.unref();
    const done = runSession(this.host, run).finally(() => this.detach(id, run));
    this.runs.set(id, { run, done, poller });
  }

  /** Forget this process's run of a session (synchronously, as its last status is written). */
  private detach(id: string, which?: LiveRun): void {
    const entry = this.runs.get(id);
    if (!entry || (which && entry.run !== which)) return;
    clearInterval(entry.poller);
    this.runs.delete(id);
    this.ending.add(entry.done);
    void entry.done.finally(() => this.ending.delete(entry.done));
    if (this.store.tryRow(id)?.stop_requested) this.store.update(id, { stop_requested: 0 });
  }
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
  });
