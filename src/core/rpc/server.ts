/**
 * Serves one router over any Port. Every door (in-process, WebSocket, Electron MessagePort, CLI)
 * ends here, so validation, error mapping and cancellation behave the same everywhere.
 */
import {
  type Actor,
  type CallName,
  type ClientFrame,
  type ContractDef,
  type EventName,
  type HandlerContext,
  type Out,
  type ParsedIn,
  type Payload,
  type Port,
  type ServerFrame,
  type StreamName,
  validationError,
} from '../../shared/rpc.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';

export type Router<C extends ContractDef> = {
  [K in CallName<C>]: (input: ParsedIn<C, K>, ctx: HandlerContext) => Promise<Out<C, K>> | Out<C, K>;
} & {
  [K in StreamName<C>]: (input: ParsedIn<C, K>, ctx: HandlerContext) => AsyncIterable<Out<C, K>>;
};

export interface EventSource<C extends ContractDef> {
  subscribe<K extends EventName<C>>(name: K, listener: (payload: Payload<C, K>) => void): () => void;
}

export interface ServeOptions {
  actor: Actor;
  /** Called for errors that are bugs (INTERNAL), with the original error. */
  onInternalError?: (member: string, err: unknown) => void;
  /** May this connection's actor use the member at all? Throws (DENIED) to refuse. */
  authorize?: (member: string, kind: 'call' | 'stream' | 'event') => void;
  /** …and with this (validated) input? Throws (DENIED) to refuse. */
  authorizeInput?: (member: string, input: unknown) => void;
}

export interface Served {
  close(): void;
  /** Number of calls and streams in flight (for tests and graceful shutdown). */
  readonly inFlight: number;
}

export function serve<C extends ContractDef>(
  contract: C,
  router: Router<C>,
  events: EventSource<C>,
  port: Port,
  opts: ServeOptions,
): Served {
  const running = new Map<number, AbortController>();
  const subs = new Map<number, () => void>();
  let closed = false;
  const send = (f: ServerFrame) => {
    if (!closed) port.send(f);
  };

  const fail = (id: number, member: string, err: unknown) => {
    const payload = toErrorPayload(err);
    if (payload.code === 'INTERNAL') opts.onInternalError?.(member, err);
    send({ t: 'err', id, e: payload });
  };

  const handlers = router as unknown as Record<
    string,
    (input: unknown, ctx: HandlerContext) => Promise<unknown> | unknown | AsyncIterable<unknown>
  >;

  const start = async (f: Extract<ClientFrame, { t: 'call' | 'stream' }>) => {
    const def = contract[f.m];
    const handler = handlers[f.m];
    if (!def || def.kind !== f.t || !handler) {
      send({ t: 'err', id: f.id, e: { code: 'NOT_FOUND', message: `No ${f.t} named "${f.m}".` } });
      return;
    }
    try {
      opts.authorize?.(f.m, def.kind);
    } catch (err) {
      send({ t: 'err', id: f.id, e: toErrorPayload(err) });
      return;
    }
    const parsed = def.input.safeParse(f.i);
    if (!parsed.success) {
      send({ t: 'err', id: f.id, e: validationError(parsed.error).toPayload() });
      return;
    }
    try {
      opts.authorizeInput?.(f.m, parsed.data);
    } catch (err) {
      send({ t: 'err', id: f.id, e: toErrorPayload(err) });
      return;
    }
    const ac = new AbortController();
    running.set(f.id, ac);
    const ctx: HandlerContext = { signal: ac.signal, actor: opts.actor };
    try {
      if (def.kind === 'call') {
        const out = await handler(parsed.data, ctx);
        ac.signal.throwIfAborted();
        send({ t: 'res', id: f.id, o: checkOutput(def.output, out, f.m) });
      } else {
        const it = handler(parsed.data, ctx) as AsyncIterable<unknown>;
        for await (const item of it) {
          if (ac.signal.aborted) break;
          send({ t: 'item', id: f.id, o: checkOutput(def.output, item, f.m) });
        }
        if (!ac.signal.aborted) send({ t: 'end', id: f.id });
      }
    } catch (err) {
      // A cancelled stream was ended by the client: nothing more to say.
      if (!(def.kind === 'stream' && ac.signal.aborted))
        fail(f.id, f.m, ac.signal.aborted ? abortReason() : err);
    } finally {
      running.delete(f.id);
    }
  };

  port.onMessage((raw) => {
    const f = raw as ClientFrame;
    if (!f || typeof f !== 'object' || typeof f.id !== 'number') return;
    switch (f.t) {
      case 'call':
      case 'stream':
        void start(f);
        return;
      case 'cancel':
        running.get(f.id)?.abort();
        return;
      case 'sub': {
        const def = contract[f.m];
        if (!def || def.kind !== 'event') {
          send({ t: 'err', id: f.id, e: { code: 'NOT_FOUND', message: `No event named "${f.m}".` } });
          return;
        }
        try {
          opts.authorize?.(f.m, 'event');
        } catch (err) {
          send({ t: 'err', id: f.id, e: toErrorPayload(err) });
          return;
        }
        subs.get(f.id)?.();
        subs.set(
          f.id,
          events.subscribe(f.m as EventName<C>, (payload) => send({ t: 'evt', id: f.id, o: payload })),
        );
        return;
      }
      case 'unsub':
        subs.get(f.id)?.();
        subs.delete(f.id);
        return;
    }
  });

  const close = () => {
    if (closed) return;
    closed = true;
    for (const ac of running.values()) ac.abort();
    running.clear();
    for (const un of subs.values()) un();
    subs.clear();
  };
  port.onClose(close);

  return {
    close: () => {
      close();
      port.close();
    },
    get inFlight() {
      return running.size;
    },
  };
}

function abortReason(): FluidError {
  return new FluidError('CANCELLED', 'The operation was cancelled.');
}

function checkOutput(
  schema: { safeParse(v: unknown): { success: boolean; data?: unknown; error?: unknown } },
  value: unknown,
  member: string,
) {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new FluidError('INTERNAL', `The backend produced an invalid result for "${member}".`, {
      issues: String(r.error),
    });
  }
  return r.data;
}
