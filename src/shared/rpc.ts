/**
 * The contract's building blocks and wire protocol.
 *
 * A contract is a flat record of named members, each one of:
 *  - call:   request/response
 *  - stream: a cancellable async sequence of items (progress, terminal bytes, tokens)
 *  - event:  server push, subscribed by name
 *
 * Every door (in-process, WebSocket, Electron MessagePort) carries the same JSON frames over a Port.
 */
import type { z } from 'zod';
import { FluidError, type ErrorPayload } from './errors.ts';

export interface CallDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly kind: 'call';
  readonly input: I;
  readonly output: O;
  readonly summary: string;
}
export interface StreamDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly kind: 'stream';
  readonly input: I;
  readonly output: O;
  readonly summary: string;
}
export interface EventDef<P extends z.ZodType = z.ZodType> {
  readonly kind: 'event';
  readonly payload: P;
  readonly summary: string;
}
export type MemberDef = CallDef | StreamDef | EventDef;
export type ContractDef = Record<string, MemberDef>;

export const call = <I extends z.ZodType, O extends z.ZodType>(
  input: I,
  output: O,
  summary: string,
): CallDef<I, O> => ({ kind: 'call', input, output, summary });
export const stream = <I extends z.ZodType, O extends z.ZodType>(
  input: I,
  output: O,
  summary: string,
): StreamDef<I, O> => ({ kind: 'stream', input, output, summary });
export const event = <P extends z.ZodType>(payload: P, summary: string): EventDef<P> => ({
  kind: 'event',
  payload,
  summary,
});

export type CallName<C extends ContractDef> = {
  [K in keyof C]: C[K] extends CallDef ? K : never;
}[keyof C] &
  string;
export type StreamName<C extends ContractDef> = {
  [K in keyof C]: C[K] extends StreamDef ? K : never;
}[keyof C] &
  string;
export type EventName<C extends ContractDef> = {
  [K in keyof C]: C[K] extends EventDef ? K : never;
}[keyof C] &
  string;

/** What a client sends (before defaults are applied). */
export type In<C extends ContractDef, K extends keyof C> = C[K] extends CallDef<infer I> | StreamDef<infer I>
  ? z.input<I>
  : never;
/** What a handler receives (after parsing: defaults applied). */
export type ParsedIn<C extends ContractDef, K extends keyof C> = C[K] extends
  CallDef<infer I> | StreamDef<infer I>
  ? z.output<I>
  : never;
/** A call's result or a stream's item. */
export type Out<C extends ContractDef, K extends keyof C> = C[K] extends
  CallDef<z.ZodType, infer O> | StreamDef<z.ZodType, infer O>
  ? z.output<O>
  : never;
export type Payload<C extends ContractDef, K extends keyof C> =
  C[K] extends EventDef<infer P> ? z.output<P> : never;

/** Who is calling: every decision in the audit log names the door and, where known, the person. */
export interface Actor {
  door: 'app' | 'web' | 'cli' | 'mcp' | 'http' | 'agent' | 'test' | 'system';
  /** A human-readable identity (OS user, token label, agent session id). */
  id: string;
  /** CLI only: the process runs on an interactive terminal (stdin and stderr are TTYs). */
  interactive?: boolean;
  /**
   * HTTP only: what the API token allows. `agent` asks and never decides; `operator` is a person's
   * automation, which decides only while a person allows unattended decisions (like the CLI's --yes).
   */
  scope?: 'agent' | 'operator';
}

/**
 * Doors a person sits behind: the app window, the web UI (its token is held only by the person who
 * opened the printed URL), an interactive terminal, and in-process tests. Everything else — the
 * built-in agent, MCP clients, API tokens, a CLI process without a terminal (a script, or an agent's
 * shell) — may ask, but never decides an approval, loosens a rule or widens a sandbox's reach.
 */
export function isPersonDoor(actor: Actor): boolean {
  if (actor.door === 'app' || actor.door === 'web' || actor.door === 'test') return true;
  return actor.door === 'cli' && actor.interactive === true;
}

export interface HandlerContext {
  signal: AbortSignal;
  actor: Actor;
}

// ---- wire frames ---------------------------------------------------------------------------------

export type ClientFrame =
  | { t: 'call'; id: number; m: string; i: unknown }
  | { t: 'stream'; id: number; m: string; i: unknown }
  | { t: 'cancel'; id: number }
  | { t: 'sub'; id: number; m: string }
  | { t: 'unsub'; id: number };

export type ServerFrame =
  | { t: 'res'; id: number; o: unknown }
  | { t: 'err'; id: number; e: ErrorPayload }
  | { t: 'item'; id: number; o: unknown }
  | { t: 'end'; id: number }
  | { t: 'evt'; id: number; o: unknown };

/** A bidirectional message channel. Messages are JSON-compatible values. */
export interface Port {
  send(message: unknown): void;
  onMessage(handler: (message: unknown) => void): void;
  onClose(handler: () => void): void;
  close(): void;
}

/** Structural shape shared by the DOM MessagePort and Node's worker_threads MessagePort. */
export interface MessagePortLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: () => void): void;
  start?(): void;
  close(): void;
}

export function portFromMessagePort(mp: MessagePortLike): Port {
  const closeHandlers: Array<() => void> = [];
  let closed = false;
  const fireClose = () => {
    if (closed) return;
    closed = true;
    for (const h of closeHandlers) h();
  };
  mp.addEventListener('close', fireClose);
  return {
    send: (m) => {
      if (!closed) mp.postMessage(m);
    },
    onMessage: (h) => {
      mp.addEventListener('message', (ev) => h(ev.data));
      mp.start?.();
    },
    onClose: (h) => void closeHandlers.push(h),
    close: () => {
      mp.close();
      fireClose();
    },
  };
}

/** Structural shape of the browser WebSocket (also Node's global WebSocket). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (ev: { code: number; reason: string }) => void): void;
}

export function portFromWebSocket(ws: WebSocketLike): Port {
  return {
    send: (m) => {
      if (ws.readyState === 1) ws.send(JSON.stringify(m));
    },
    onMessage: (h) =>
      ws.addEventListener('message', (ev) => {
        if (typeof ev.data === 'string') h(JSON.parse(ev.data));
      }),
    onClose: (h) => ws.addEventListener('close', () => h()),
    close: () => ws.close(1000, 'client closed'),
  };
}

/** Two connected in-process ports. Messages are structured-cloned, as a real door would copy them. */
export function memoryPortPair(): [Port, Port] {
  type Side = { handlers: Array<(m: unknown) => void>; closeHandlers: Array<() => void> };
  const a: Side = { handlers: [], closeHandlers: [] };
  const b: Side = { handlers: [], closeHandlers: [] };
  let closed = false;
  const closeBoth = () => {
    if (closed) return;
    closed = true;
    for (const h of [...a.closeHandlers, ...b.closeHandlers]) queueMicrotask(h);
  };
  const make = (self: Side, peer: Side): Port => ({
    send: (m) => {
      if (closed) return;
      const copy = structuredClone(m);
      queueMicrotask(() => {
        for (const h of peer.handlers) h(copy);
      });
    },
    onMessage: (h) => void self.handlers.push(h),
    onClose: (h) => void self.closeHandlers.push(h),
    close: closeBoth,
  });
  return [make(a, b), make(b, a)];
}

// ---- client --------------------------------------------------------------------------------------

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

interface StreamState {
  items: unknown[];
  waiters: Array<{ resolve(r: IteratorResult<unknown>): void; reject(e: unknown): void }>;
  done: boolean;
  error?: FluidError;
}

export class ConnectionClosedError extends FluidError {
  constructor() {
    super('UNAVAILABLE', 'The connection to the Fluid backend was closed.');
  }
}

/**
 * The typed client. The renderer, the CLI, tests and SDKs all use it; it does not know which door
 * it is on. Inputs are validated before they are sent, results after they arrive.
 */
export class RpcClient<C extends ContractDef> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, StreamState>();
  private readonly subs = new Map<number, (payload: unknown) => void>();
  private closed = false;
  private readonly closeListeners = new Set<() => void>();

  private readonly contract: C;
  private readonly port: Port;

  constructor(contract: C, port: Port) {
    this.contract = contract;
    this.port = port;
    port.onMessage((m) => this.onFrame(m as ServerFrame));
    port.onClose(() => this.onClose());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onDisconnect(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  async call<K extends CallName<C>>(
    m: K,
    input: In<C, K>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<Out<C, K>> {
    const def = this.def(m, 'call');
    const parsed = def.input.safeParse(input);
    if (!parsed.success) throw validationError(parsed.error);
    if (this.closed) throw new ConnectionClosedError();
    opts.signal?.throwIfAborted();
    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const onAbort = () => this.port.send({ t: 'cancel', id } satisfies ClientFrame);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.port.send({ t: 'call', id, m, i: input } satisfies ClientFrame);
    try {
      const raw = await result;
      return def.output.parse(raw) as Out<C, K>;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  stream<K extends StreamName<C>>(
    m: K,
    input: In<C, K>,
    opts: { signal?: AbortSignal } = {},
  ): AsyncIterableIterator<Out<C, K>> {
    const def = this.def(m, 'stream');
    const parsed = def.input.safeParse(input);
    const id = this.nextId++;
    const st: StreamState = { items: [], waiters: [], done: false };
    if (!parsed.success) {
      st.done = true;
      st.error = validationError(parsed.error);
    } else if (this.closed) {
      st.done = true;
      st.error = new ConnectionClosedError();
    } else {
      this.streams.set(id, st);
      this.port.send({ t: 'stream', id, m, i: input } satisfies ClientFrame);
    }
    const cancel = () => {
      if (this.streams.has(id)) {
        this.streams.delete(id);
        this.port.send({ t: 'cancel', id } satisfies ClientFrame);
      }
      st.done = true;
      for (const w of st.waiters.splice(0)) w.resolve({ value: undefined, done: true });
    };
    opts.signal?.addEventListener('abort', cancel, { once: true });
    const iterator: AsyncIterableIterator<Out<C, K>> = {
      next: async (): Promise<IteratorResult<Out<C, K>>> => {
        const parse = (v: unknown) => ({ value: def.output.parse(v) as Out<C, K>, done: false as const });
        if (st.items.length) return parse(st.items.shift());
        if (st.error) throw st.error;
        if (st.done) return { value: undefined, done: true };
        const r = await new Promise<IteratorResult<unknown>>((resolve, reject) =>
          st.waiters.push({ resolve, reject }),
        );
        return r.done ? { value: undefined, done: true } : parse(r.value);
      },
      return: (): Promise<IteratorResult<Out<C, K>>> => {
        cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return iterator;
  }

  /** Subscribe to an event. Returns the unsubscribe function. */
  on<K extends EventName<C>>(m: K, listener: (payload: Payload<C, K>) => void): () => void {
    const def = this.def(m, 'event');
    const id = this.nextId++;
    this.subs.set(id, (raw) => {
      const parsed = def.payload.safeParse(raw);
      if (parsed.success) listener(parsed.data as Payload<C, K>);
    });
    if (!this.closed) this.port.send({ t: 'sub', id, m } satisfies ClientFrame);
    return () => {
      if (this.subs.delete(id) && !this.closed) this.port.send({ t: 'unsub', id } satisfies ClientFrame);
    };
  }

  close(): void {
    this.port.close();
    this.onClose();
  }

  private def<T extends MemberDef['kind']>(m: string, kind: T): Extract<MemberDef, { kind: T }> {
    const def = this.contract[m];
    if (!def || def.kind !== kind)
      throw new FluidError('NOT_FOUND', `No ${kind} named "${m}" in the contract.`);
    return def as Extract<MemberDef, { kind: T }>;
  }

  private onFrame(f: ServerFrame): void {
    switch (f.t) {
      case 'res': {
        const p = this.pending.get(f.id);
        this.pending.delete(f.id);
        p?.resolve(f.o);
        return;
      }
      case 'err': {
        const err = FluidError.fromPayload(f.e);
        const p = this.pending.get(f.id);
        if (p) {
          this.pending.delete(f.id);
          p.reject(err);
          return;
        }
        const st = this.streams.get(f.id);
        if (st) {
          this.streams.delete(f.id);
          st.done = true;
          st.error = err;
          for (const w of st.waiters.splice(0)) w.reject(err);
        }
        return;
      }
      case 'item': {
        const st = this.streams.get(f.id);
        if (!st) return;
        const w = st.waiters.shift();
        if (w) w.resolve({ value: f.o, done: false });
        else st.items.push(f.o);
        return;
      }
      case 'end': {
        const st = this.streams.get(f.id);
        if (!st) return;
        this.streams.delete(f.id);
        st.done = true;
        for (const w of st.waiters.splice(0)) w.resolve({ value: undefined, done: true });
        return;
      }
      case 'evt':
        this.subs.get(f.id)?.(f.o);
        return;
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new ConnectionClosedError();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const st of this.streams.values()) {
      st.done = true;
      st.error = err;
      for (const w of st.waiters.splice(0)) w.reject(err);
    }
    this.streams.clear();
    this.subs.clear();
    for (const l of this.closeListeners) l();
  }
}

export function validationError(error: z.ZodError): FluidError {
  const issues = error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  return new FluidError('VALIDATION', `Invalid input: ${summary}`, { issues });
}
