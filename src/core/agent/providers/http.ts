/**
 * The HTTP client of the model providers: one POST of a JSON body per attempt, its answer read as
 * server-sent events (or as one JSON document when the server does not stream), over node:http and
 * node:https with one keep-alive agent per provider client. It does what the attempt loop in
 * retry.ts needs and nothing else: no retries, no timers (the loop retries, times out and cancels
 * through the signal), failures thrown in the shapes `classifyError` reads — `HttpStatusError`
 * (status, headers, the parsed error body), `StreamErrorEvent` (an error sent inside the stream), and
 * Node's own socket errors (`code` ECONNRESET, ECONNREFUSED, …).
 *
 * The API key travels in a header only: no URL, message or error made here holds it.
 */
import http from 'node:http';
import https from 'node:https';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';

/** One server-sent event: its `event:` name ('' when unnamed) and its `data:` lines joined. */
export interface SseEvent {
  event: string;
  data: string;
}

/** A non-2xx answer. `error` is the parsed JSON body (or its text), as the providers' SDKs keep it. */
export class HttpStatusError extends Error {
  readonly status: number;
  readonly headers: Headers;
  readonly error: unknown;
  readonly requestID: string | null;

  constructor(status: number, headers: Headers, body: string) {
    let parsed: unknown;
    try {
      parsed = body ? JSON.parse(body) : undefined;
    } catch {
      parsed = undefined;
    }
    const text = body.length > 500 ? `${body.slice(0, 500)}…` : body;
    super(parsed === undefined ? `${status} ${text || 'status code (no body)'}` : `${status} ${text}`);
    this.name = 'HttpStatusError';
    this.status = status;
    this.headers = headers;
    this.error = parsed;
    this.requestID = headers.get('request-id') ?? headers.get('x-request-id');
  }
}

/** An error the server sent inside a stream that had started with 200 (no status of its own). */
export class StreamErrorEvent extends Error {
  readonly error: unknown;
  readonly headers: Headers;

  constructor(body: unknown, headers: Headers) {
    const b = body as { message?: unknown; error?: { message?: unknown } } | null;
    const m = b?.error?.message ?? b?.message;
    super(typeof m === 'string' ? m : 'an error event in the response stream');
    this.name = 'StreamErrorEvent';
    this.error = body;
    this.headers = headers;
  }
}

/** What a request answered with 2xx: its headers and its body, decoded to text. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  contentType: string;
  body: AsyncIterable<string>;
}

export interface JsonHttpClientOptions {
  /** The API root, e.g. `https://api.anthropic.com` or `http://localhost:11434/v1`. */
  baseUrl: string;
  /** Sent with every request (credentials included: they never leave the headers). */
  headers: Record<string, string>;
  /** Connections kept per host (default: no limit, as the providers' SDKs). */
  maxSockets?: number;
}

export class JsonHttpClient {
  readonly #url: URL;
  readonly #prefix: string;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;
  readonly #headers: Record<string, string>;

  constructor(opts: JsonHttpClientOptions) {
    this.#url = new URL(opts.baseUrl);
    if (this.#url.protocol !== 'http:' && this.#url.protocol !== 'https:')
      throw new TypeError(`the base URL must be http or https, not ${this.#url.protocol}`);
    this.#prefix = this.#url.pathname.replace(/\/+$/, '');
    const secure = this.#url.protocol === 'https:';
    const agentOptions: http.AgentOptions = {
      keepAlive: true,
      ...(opts.maxSockets ? { maxSockets: opts.maxSockets } : {}),
      // The environment's proxy, when Node is asked to use it (as fetch does).
      ...(process.env.NODE_USE_ENV_PROXY === '1' || process.execArgv.includes('--use-env-proxy')
        ? { proxyEnv: process.env }
        : {}),
    };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = secure ? https.request : http.request;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = v;
    this.#headers = headers;
  }

  /**
   * POST `body` (JSON: text, or encoded parts sent one after another) to `path` under the base URL.
   * Resolves once a 2xx answer's headers are in; a non-2xx answer is read whole and thrown as an
   * HttpStatusError. Aborting the signal destroys the request and its answer (the body's iteration
   * then throws the signal's reason).
   */
  async post(path: string, body: string | Buffer | Buffer[], signal: AbortSignal): Promise<HttpAnswer> {
    signal.throwIfAborted();
    const payload =
      typeof body === 'string' ? [Buffer.from(body, 'utf8')] : Array.isArray(body) ? body : [body];
    let res: http.IncomingMessage;
    try {
      res = await this.#send(path, payload, signal);
    } catch (err) {
      // A kept-alive socket the server had already closed: the request never reached it; once more
      // on a new connection (as Node's documentation advises), without counting as a retry.
      if ((err as { reusedSocket?: boolean }).reusedSocket && !signal.aborted)
        res = await this.#send(path, payload, signal);
      else throw err;
    }
    const headers = toHeaders(res.headers);
    const status = res.statusCode ?? 0;
    const text = decoded(res, signal);
    if (status < 200 || status >= 300) {
      let all = '';
      for await (const chunk of text) all += chunk;
      throw new HttpStatusError(status, headers, all);
    }
    return { status, headers, contentType: headers.get('content-type') ?? '', body: text };
  }

  /** Close idle connections (the client stays usable: it opens new ones). */
  close(): void {
    this.#agent.destroy();
  }

  #send(path: string, payload: Buffer[], signal: AbortSignal): Promise<http.IncomingMessage> {
    let length = 0;
    for (const part of payload) length += part.length;
    return new Promise((resolve, reject) => {
      const req = this.#request({
        agent: this.#agent,
        protocol: this.#url.protocol,
        hostname: this.#url.hostname.replace(/^\[|\]$/g, ''),
        port: this.#url.port || undefined,
        path: this.#prefix + path,
        method: 'POST',
        headers: {
          ...this.#headers,
          'content-type': 'application/json',
          'content-length': String(length),
        },
      });
      const onAbort = () => req.destroy(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('response', (res) => {
        // From here the answer's own reader owns the abort (see decoded()).
        signal.removeEventListener('abort', onAbort);
        resolve(res);
      });
      req.once('error', (err: Error & { reusedSocket?: boolean; code?: string }) => {
        signal.removeEventListener('abort', onAbort);
        if (req.reusedSocket && err.code === 'ECONNRESET' && !signal.aborted) err.reusedSocket = true;
        reject(signal.aborted ? abortReason(signal) : err);
      });
      // The parts go out in one write of the socket (corked), without being copied together first.
      req.cork();
      for (const part of payload) req.write(part);
      req.end();
      req.uncork();
    });
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error('The request was aborted.');
  e.name = 'AbortError';
  return e;
}

function toHeaders(raw: http.IncomingHttpHeaders): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) h.append(k, x);
    else h.set(k, v);
  }
  return h;
}

/** The answer's body as text (decompressed when the server compressed it); destroyed on abort. */
async function* decoded(res: http.IncomingMessage, signal: AbortSignal): AsyncGenerator<string> {
  const encoding = String(res.headers['content-encoding'] ?? '').toLowerCase();
  let stream: Readable = res;
  if (encoding === 'gzip' || encoding === 'x-gzip') stream = res.pipe(createGunzip());
  else if (encoding === 'br') stream = res.pipe(createBrotliDecompress());
  else if (encoding === 'deflate') stream = res.pipe(createInflate());
  if (stream !== res) res.once('error', (err) => stream.destroy(err));
  stream.setEncoding('utf8');
  const onAbort = () => {
    const reason = abortReason(signal);
    res.destroy(reason);
    stream.destroy(reason);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of stream) yield chunk as string;
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Stopped early (an error event, a consumer that stopped): the connection cannot be reused.
    if (!res.complete) res.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// Server-sent events

/**
 * The event-stream format (WHATWG HTML, "server-sent events"): lines end in LF, CRLF or CR; `event:`
 * names the event, `data:` lines are joined with LF, comments and other fields are ignored, a blank
 * line dispatches. An event not closed by a blank line when the stream ends is dropped.
 */
export class SseParser {
  #pending: string[] = [];
  #event = '';
  #data: string[] = [];
  #skipLf = false;

  /** Feed a chunk of text; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.#skipLf && chunk.length > 0) {
      this.#skipLf = false;
      if (chunk.charCodeAt(0) === 10) chunk = chunk.slice(1);
    }
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      let line = chunk.slice(start, i);
      if (this.#pending.length) {
        this.#pending.push(line);
        line = this.#pending.join('');
        this.#pending = [];
      }
      this.#line(line, out);
      if (c === 13) {
        if (i + 1 < chunk.length) {
          if (chunk.charCodeAt(i + 1) === 10) i++;
        } else this.#skipLf = true;
      }
      start = i + 1;
    }
    if (start < chunk.length) this.#pending.push(chunk.slice(start));
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length) out.push({ event: this.#event, data: this.#data.join('\n') });
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' a comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
  }
}

/** The events of a text stream. */
export async function* sseEvents(text: AsyncIterable<string>): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  for await (const chunk of text) {
    const events = parser.push(chunk);
    for (const ev of events) yield ev;
  }
}

/** A whole body as one JSON value (a non-streamed answer). */
export async function readJson(text: AsyncIterable<string>): Promise<unknown> {
  let all = '';
  for await (const chunk of text) all += chunk;
  return JSON.parse(all);
}
