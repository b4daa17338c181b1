/**
 * Fluid's HTTP API from TypeScript: every operation typed from the OpenAPI document the server serves
 * (`schema.d.ts`, made by openapi-typescript in `npm run build:openapi`), plus the few helpers an agent
 * needs — wait for a task, read a stream, follow pages, ask a person.
 *
 *   const fluid = new FluidClient({ baseUrl: 'http://127.0.0.1:8080', token });
 *   const task = await fluid.createSandbox({ source: 'web-01' });
 *   const sandbox = (await fluid.waitTask(task.id)).result as Sandbox;
 *   const out = await fluid.call('post', '/v1/sandboxes/{sandbox}/exec', {
 *     path: { sandbox: sandbox.id },
 *     body: { command: 'uname -a' },
 *   });
 */
import type { components, paths } from './schema.d.ts';

export type Schemas = components['schemas'];
export type Sandbox = Schemas['Sandbox'];
export type Task = Schemas['Task'];
export type Approval = Schemas['Approval'];
export type ExecResult = Schemas['ExecResult'];
export type ErrorPayload = Schemas['ErrorPayload'];

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** Paths that have this method. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined | never ? never : P;
}[keyof paths];
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type PathParams<O> = O extends { parameters: { path?: infer X } } ? X : never;
type QueryParams<O> = O extends { parameters: { query?: infer X } } ? X : never;
type Body<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : never;
/** The JSON of the operation's success answers (200, 201, 202: a union where several exist). */
export type Answer<O> = O extends { responses: infer R }
  ? | (R extends { 200: infer A } ? JsonOf<A> : never)
    | (R extends { 201: infer A } ? JsonOf<A> : never)
    | (R extends { 202: infer A } ? JsonOf<A> : never)
  : never;

export type CallOptions<O> = {
  path?: PathParams<O>;
  query?: QueryParams<O>;
  body?: Body<O>;
  idempotencyKey?: string;
  signal?: AbortSignal;
};

export class FluidApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly data: unknown;
  constructor(status: number, p: { code?: string; message?: string; data?: unknown }) {
    super(`${p.code ?? 'INTERNAL'}: ${p.message ?? `HTTP ${status}`}`);
    this.name = 'FluidApiError';
    this.code = p.code ?? 'INTERNAL';
    this.status = status;
    this.data = p.data;
  }
}

export interface FluidClientOptions {
  baseUrl: string;
  token: string;
  fetch?: typeof fetch;
}

export class FluidClient {
  private readonly base: string;
  private readonly token: string;
  private readonly fetcher: typeof fetch;

  constructor(opts: FluidClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
    this.fetcher = opts.fetch ?? fetch;
  }

  private url(path: string, params?: object, query?: object): string {
    const filled = path.replace(/\{([^}]+)\}/g, (_, k: string) =>
      encodeURIComponent(String((params as Record<string, unknown> | undefined)?.[k] ?? '')),
    );
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries((query ?? {}) as Record<string, unknown>))
      if (v !== undefined && v !== null) q.set(k, String(v));
    const s = q.toString();
    return `${this.base}${filled}${s ? `?${s}` : ''}`;
  }

  private async send(
    method: Method,
    url: string,
    opts: { body?: unknown; key?: string; signal?: AbortSignal; sse?: boolean },
  ): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.token}`,
      Accept: opts.sse ? 'text/event-stream' : 'application/json',
    };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.key) headers['Idempotency-Key'] = opts.key;
    const res = await this.fetcher(url, {
      method: method.toUpperCase(),
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
    if (!res.ok)
      throw new FluidApiError(res.status, ((await res.json().catch(() => ({}))) ?? {}) as ErrorPayload);
    return res;
  }

  /** One operation of the API, typed by its method and path. */
  async call<M extends Method, P extends PathsWith<M>>(
    method: M,
    path: P,
    opts: CallOptions<Op<P, M>> = {},
  ): Promise<Answer<Op<P, M>>> {
    const res = await this.send(method, this.url(path as string, opts.path as object, opts.query as object), {
      body: opts.body,
      key: opts.idempotencyKey,
      signal: opts.signal,
    });
    return (await res.json()) as Answer<Op<P, M>>;
  }

  /** A stream (Server-Sent Events): its items, until `end`; an `error` event throws. */
  async *stream(
    method: 'get' | 'post',
    path: string,
    opts: { path?: object; query?: object; body?: unknown; signal?: AbortSignal } = {},
  ): AsyncGenerator<unknown> {
    const res = await this.send(method, this.url(path, opts.path, opts.query), {
      body: opts.body,
      signal: opts.signal,
      sse: true,
    });
    for await (const [event, data] of sse(res)) {
      if (event === 'item') yield data;
      else if (event === 'error') throw new FluidApiError(0, data as ErrorPayload);
      else if (event === 'end') return;
    }
  }

  /** Wait for a task to finish; throws its error unless it succeeded. */
  async waitTask(id: string, signal?: AbortSignal): Promise<Task> {
    let last: Task | null = null;
    for await (const t of this.stream('get', '/v1/tasks/{id}/watch', { path: { id }, signal }))
      last = t as Task;
    if (!last) last = await this.call('get', '/v1/tasks/{id}', { path: { id } });
    if (last.status !== 'succeeded')
      throw new FluidApiError(
        0,
        last.error ?? { code: 'INTERNAL', message: `The task ended ${last.status}.` },
      );
    return last;
  }

  /** Every item of a list route, page after page (X-Next-Cursor). */
  async *pages<T>(path: string, query: Record<string, unknown> = {}): AsyncGenerator<T> {
    let cursor: string | null = null;
    do {
      const res = await this.send(
        'get',
        this.url(path, undefined, cursor ? { ...query, cursor } : query),
        {},
      );
      for (const item of (await res.json()) as T[]) yield item;
      cursor = res.headers.get('x-next-cursor');
    } while (cursor);
  }

  /** Start creating a sandbox (POST /v1/sandboxes with the contract's body): the task. */
  async createSandbox(
    body: Exclude<Body<Op<'/v1/sandboxes', 'post'>>, { source_vm_name: string }>,
  ): Promise<Task> {
    const out = await this.call('post', '/v1/sandboxes', { body });
    if ('sandbox' in out) throw new FluidApiError(0, { code: 'INTERNAL', message: 'Expected a task.' });
    return out;
  }

  /** Ask a person and wait for the decision. */
  ask(body: Body<Op<'/v1/approvals/ask', 'post'>>, signal?: AbortSignal): Promise<Approval> {
    return this.call('post', '/v1/approvals/ask', { body, signal });
  }
}

/** Parse a Server-Sent Events body into (event, data) pairs. */
async function* sse(res: Response): AsyncGenerator<[string, unknown]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) yield [event, JSON.parse(data.join('\n')) as unknown];
    }
  }
}
