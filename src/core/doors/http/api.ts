/**
 * The HTTP door: REST over the same router as every other door. Each request is authenticated by its
 * API token (Authorization: Bearer …), which becomes the Actor (door `http`, id `token:<name>`, the
 * token's scope); the call then goes through the in-process transport to `core.serve`, where input
 * validation, the scope check, the member's own rules (person-only decisions, presence), audit and
 * cancellation are the same as for the app, the CLI and MCP. This file only translates HTTP.
 *
 *   request → /health | /v1/openapi.json (no token)  → token → route (routes.ts) → input from path,
 *   query or JSON body → Idempotency-Key replay? → call or stream → JSON (status from the route, or
 *   the error code's) | Server-Sent Events
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contract, type Contract } from '../../../shared/contract/index.ts';
import { FluidError, toErrorPayload } from '../../../shared/errors.ts';
import type { ContractDef, RpcClient } from '../../../shared/rpc.ts';
import type { Core } from '../../createCore.ts';
import { connectInProcess } from '../inprocess.ts';
import { authorize, mayUse } from '../../tokens/scopes.ts';
import type { Authenticated } from '../../tokens/service.ts';
import { compatCommand, compatCreateSandbox, isCompatCreate } from './compat.ts';
import { sendError, sendJson } from './errors.ts';
import { IdempotencyStore } from './idempotency.ts';
import { buildOpenApi } from './openapi.ts';
import { planPage, takePage } from './pagination.ts';
import { deriveRoutes, jsonSchemaOf, RouteTable, type JsonSchema, type Route } from './routes.ts';
import { SseWriter } from './sse.ts';

/** Bodies larger than this are refused (413): the largest contract input is an audit export. */
const MAX_BODY = 256 * 1024 * 1024;

export interface HttpApi {
  /** Is this request the API's (/v1/…, /api/v1/…, /health)? */
  owns(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The OpenAPI document this server answers to. */
  openapi(): Record<string, unknown>;
  readonly routes: readonly Route[];
  close(): void;
}

type AnyClient = {
  call(m: string, i: unknown, o?: { signal?: AbortSignal }): Promise<unknown>;
  stream(m: string, i: unknown, o?: { signal?: AbortSignal }): AsyncIterableIterator<unknown>;
  on(m: string, l: (p: unknown) => void): () => void;
  close(): void;
};

let derived: { table: RouteTable; inputs: Map<string, JsonSchema> } | null = null;

/** Routes and input schemas, derived once per process from the contract. */
function routeTable(): { table: RouteTable; inputs: Map<string, JsonSchema> } {
  if (derived) return derived;
  const routes = deriveRoutes(contract as ContractDef);
  const inputs = new Map<string, JsonSchema>();
  for (const r of routes)
    if (!inputs.has(r.member)) {
      const def = (contract as ContractDef)[r.member]!;
      if (def.kind !== 'event') inputs.set(r.member, jsonSchemaOf(def.input, 'input'));
    }
  derived = { table: new RouteTable(routes), inputs };
  return derived;
}

/** What a response looked like, for a test that checks the server against its OpenAPI document. */
export interface Exchange {
  method: string;
  path: string;
  route: Route | null;
  status: number;
  contentType: string;
  body: string;
}

export interface HttpApiOptions {
  /** Called with every finished response (tests: validate it against the document). */
  inspect?: (exchange: Exchange) => void;
}

export function createHttpApi(core: Core, options: HttpApiOptions = {}): HttpApi {
  const { table, inputs } = routeTable();
  const idem = new IdempotencyStore(core.db, core.clock);
  /** One in-process connection per token, served with the token's actor. */
  const clients = new Map<string, AnyClient>();
  let doc: Record<string, unknown> | null = null;
  let closed = false;

  const clientFor = (auth: Authenticated): AnyClient => {
    let c = clients.get(auth.token.id);
    if (!c || (c as unknown as RpcClient<Contract>).isClosed) {
      c = connectInProcess(core, auth.actor) as unknown as AnyClient;
      clients.set(auth.token.id, c);
    }
    return c;
  };

  const openapi = () => (doc ??= buildOpenApi(table.routes));

  function owns(req: IncomingMessage): boolean {
    const p = (req.url ?? '/').split('?')[0]!;
    return p === '/health' || p.startsWith('/v1/') || p.startsWith('/api/v1/');
  }

  function authenticate(req: IncomingMessage): Authenticated {
    const h = String(req.headers.authorization ?? '');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m)
      throw Object.assign(
        new FluidError(
          'AUTH_FAILED',
          'This request carries no API token. Send "Authorization: Bearer <token>"; a person creates tokens with `fluid token create` or in Settings → API tokens.',
        ),
        { status: 401 },
      );
    const auth = core.tokens.authenticate(m[1]!, req.socket.remoteAddress ?? null);
    if (!auth)
      throw Object.assign(
        new FluidError('AUTH_FAILED', 'This API token is not valid (unknown or revoked).'),
        { status: 401 },
      );
    return auth;
  }

  /** Routes of responses in flight (for inspect). */
  const routeOf = new WeakMap<ServerResponse, Route>();

  function capture(req: IncomingMessage, res: ServerResponse, inspect: (e: Exchange) => void): void {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (...a: unknown[]) => boolean;
    const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
    const keep = (c: unknown) => {
      if (typeof c === 'string') chunks.push(Buffer.from(c));
      else if (c instanceof Uint8Array) chunks.push(Buffer.from(c));
    };
    res.write = ((c: unknown, ...rest: unknown[]) => {
      keep(c);
      return write(c, ...rest);
    }) as typeof res.write;
    res.end = ((c?: unknown, ...rest: unknown[]) => {
      if (c !== undefined && typeof c !== 'function') keep(c);
      return end(c, ...rest);
    }) as typeof res.end;
    res.on('finish', () =>
      inspect({
        method: (req.method ?? 'GET').toUpperCase(),
        path: new URL(req.url ?? '/', 'http://fluid.invalid').pathname,
        route: routeOf.get(res) ?? null,
        status: res.statusCode,
        contentType: String(res.getHeader('content-type') ?? ''),
        body: Buffer.concat(chunks).toString('utf8'),
      }),
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (options.inspect) capture(req, res, options.inspect);
    const url = new URL(req.url ?? '/', 'http://fluid.invalid');
    const path = url.pathname;
    const method = (req.method ?? 'GET').toUpperCase();
    if (path === '/health' || path === '/v1/health') return void sendJson(res, 200, { status: 'ok' });
    if (path === '/v1/openapi.json' && (method === 'GET' || method === 'HEAD'))
      return void sendJson(res, 200, openapi());
    if (closed) return void sendError(res, new FluidError('UNAVAILABLE', 'The server is stopping.'));
    let auth: Authenticated;
    try {
      auth = authenticate(req);
    } catch (err) {
      return void sendError(res, err, 401, { 'WWW-Authenticate': 'Bearer realm="fluid"' });
    }
    if (path === '/v1/events' && method === 'GET') return events(req, res, url, auth);
    const m = table.match(method, path);
    if (!m)
      return void sendError(
        res,
        new FluidError('NOT_FOUND', `No route ${method} ${path}. The API is described at /v1/openapi.json.`),
      );
    if ('allow' in m)
      return void sendError(
        res,
        new FluidError('VALIDATION', `${path} does not take ${method}; it takes ${m.allow.join(', ')}.`),
        405,
        { Allow: m.allow.join(', ') },
      );
    const { route, params } = m;
    routeOf.set(res, route);
    try {
      // the scope first (the core checks it again): an agent learns "not yours" before any detail
      authorize(auth.actor, route.member, route.kind);
    } catch (err) {
      return void sendError(res, err);
    }
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    let raw: string;
    let input: Record<string, unknown>;
    try {
      raw = route.query ? '' : await readBody(req);
      input = buildInput(route, params, url.searchParams, raw);
    } catch (err) {
      return void sendError(res, err, (err as { status?: number }).status);
    }
    const client = clientFor(auth);
    if (route.kind === 'stream') return stream(res, client, route, input, ac.signal);

    const key = req.headers['idempotency-key'];
    const keyed = typeof key === 'string' && method !== 'GET' ? key : null;
    if (keyed) {
      try {
        const replay = idem.begin(auth.token.id, keyed, method, path + url.search, raw);
        if (replay) {
          res.writeHead(replay.status, {
            ...replay.headers,
            'Idempotency-Replayed': 'true',
            'Content-Length': String(Buffer.byteLength(replay.body)),
          });
          res.end(replay.body);
          return;
        }
      } catch (err) {
        return void sendError(res, err);
      }
    }
    let answer: Awaited<ReturnType<typeof run>>;
    try {
      answer = await run(client, route, input, ac.signal);
    } catch (err) {
      const payload = sendError(res, err);
      if (keyed)
        idem.finish(auth.token.id, keyed, {
          status: res.statusCode,
          headers: { 'Content-Type': 'application/json; charset=utf-8' },
          body: JSON.stringify(payload),
        });
      return;
    }
    const { status, headers, body } = answer;
    const text = JSON.stringify(body);
    if (keyed)
      idem.finish(auth.token.id, keyed, {
        status,
        headers: { ...headers, 'Content-Type': 'application/json; charset=utf-8' },
        body: text,
      });
    sendJson(res, status, body, headers);
  }

  /** Call the member (or its original-product adapter) and shape the answer. */
  async function run(
    client: AnyClient,
    route: Route,
    input: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: unknown }> {
    const rpc = client as unknown as RpcClient<Contract>;
    if (route.compat === 'createSandbox' || (route.member === 'sandboxes.create' && isCompatCreate(input)))
      return { status: 201, headers: {}, body: await compatCreateSandbox(rpc, input, signal) };
    if (route.compat === 'command') {
      const { sandbox, ...body } = input;
      return { status: 200, headers: {}, body: await compatCommand(rpc, String(sandbox), body, signal) };
    }
    if (route.list) {
      const plan = planPage(route, inputs.get(route.member)!, input);
      const result = await client.call(route.member, plan.input, { signal });
      const { body, next } = takePage(route, plan, result);
      const headers: Record<string, string> = {};
      if (next) {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(input))
          if (k !== 'cursor' && !route.params.includes(k) && v !== undefined) q.set(k, String(v));
        q.set('cursor', next);
        headers['X-Next-Cursor'] = next;
        headers.Link = `<${fill(route.path, input)}?${q.toString()}>; rel="next"`;
      }
      return { status: 200, headers, body };
    }
    const out = await client.call(route.member, input, { signal });
    const task =
      route.task === 'self'
        ? (out as { id: string })
        : route.task === 'nested'
          ? (out as { task: { id: string } }).task
          : null;
    return {
      status: route.status,
      headers: task ? { Location: `/v1/tasks/${encodeURIComponent(task.id)}` } : {},
      body: out,
    };
  }

  async function stream(
    res: ServerResponse,
    client: AnyClient,
    route: Route,
    input: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<void> {
    const it = client.stream(route.member, input, { signal });
    // A refusal (validation, scope, not found) comes at once: answer it as a plain error. A stream
    // that is merely quiet (a command printing nothing yet) gets its headers after a moment anyway.
    const next = it.next();
    let first: IteratorResult<unknown> | null;
    let timer: NodeJS.Timeout | undefined;
    try {
      first = await Promise.race([
        next,
        new Promise<null>((ok) => (timer = setTimeout(() => ok(null), 1000))),
      ]);
    } catch (err) {
      return void sendError(res, err);
    } finally {
      clearTimeout(timer);
    }
    const sse = new SseWriter(res);
    try {
      for (let r = first ?? (await next); !r.done; r = await it.next()) sse.send('item', r.value);
      sse.send('end', {});
    } catch (err) {
      if (!signal.aborted) sse.send('error', toErrorPayload(err));
    } finally {
      sse.end();
    }
  }

  /** GET /v1/events?name=a&name=b: contract events as they happen (all the token may see by default). */
  function events(req: IncomingMessage, res: ServerResponse, url: URL, auth: Authenticated): void {
    const all = Object.entries(contract as ContractDef)
      .filter(([, d]) => d.kind === 'event')
      .map(([n]) => n);
    const asked = url.searchParams
      .getAll('name')
      .flatMap((n) => n.split(','))
      .filter(Boolean);
    for (const n of asked) {
      if (!all.includes(n))
        return void sendError(
          res,
          new FluidError('NOT_FOUND', `No event named "${n}". Events: ${all.join(', ')}.`),
        );
      if (!mayUse(auth.actor, n, 'event'))
        return void sendError(res, new FluidError('DENIED', `This token cannot subscribe to ${n}.`));
    }
    const names = asked.length ? asked : all.filter((n) => mayUse(auth.actor, n, 'event'));
    const client = clientFor(auth);
    const sse = new SseWriter(res);
    const offs = names.map((n) => client.on(n, (p) => sse.send(n, p)));
    const stop = () => {
      for (const off of offs) off();
      sse.end();
    };
    res.on('close', stop);
    req.on('error', stop);
  }

  return {
    owns,
    handle: (req, res) => {
      handle(req, res).catch((err: unknown) => {
        core.log.error('http door: request failed', { err, url: req.url });
        if (!res.headersSent)
          sendError(res, new FluidError('INTERNAL', 'The request failed inside the server.'));
        else res.end();
      });
    },
    openapi,
    routes: table.routes,
    close: () => {
      closed = true;
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}

/** A path template with the input's values. */
function fill(template: string, input: Record<string, unknown>): string {
  return template.replace(/\{([^}]+)\}/g, (_, k: string) => encodeURIComponent(String(input[k])));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooBig = () =>
      Object.assign(new FluidError('VALIDATION', `The request body is larger than ${MAX_BODY} bytes.`), {
        status: 413,
      });
    if (declared > MAX_BODY) return reject(tooBig());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        reject(tooBig());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The member's input from the path, then the query (GET, DELETE) or the JSON body. */
function buildInput(
  route: Route,
  params: Record<string, string>,
  query: URLSearchParams,
  raw: string,
): Record<string, unknown> {
  let input: Record<string, unknown> = {};
  if (route.query) {
    for (const k of new Set(query.keys())) {
      const v = query.get(k)!;
      const t = route.types[k];
      if (t === 'number') input[k] = v.trim() === '' || Number.isNaN(Number(v)) ? v : Number(v);
      else if (t === 'boolean') input[k] = v === 'true' ? true : v === 'false' ? false : v;
      else input[k] = v;
    }
  } else if (raw.trim()) {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new FluidError('VALIDATION', 'The request body is not valid JSON.');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new FluidError('VALIDATION', 'The request body must be a JSON object.');
    input = body as Record<string, unknown>;
  }
  for (const [k, v] of Object.entries(params)) {
    if (k in input && input[k] !== v)
      throw new FluidError(
        'VALIDATION',
        `${k} is given by the path (${v}) and differs in the request (${String(input[k])}).`,
      );
    input[k] = v;
  }
  // a query string carries no types: a value the contract takes as a number must look like one
  for (const [k, v] of Object.entries(input))
    if (route.query && route.types[k] === 'number' && typeof v === 'string' && !route.params.includes(k))
      throw new FluidError('VALIDATION', `${k} must be a number (got "${v}").`);
  return input;
}
