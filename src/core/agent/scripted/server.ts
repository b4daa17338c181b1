/**
 * The scripted model server: a real HTTP server on 127.0.0.1 speaking the Anthropic Messages and
 * OpenAI Chat Completions wire formats, answering from a scenario. The official SDKs (and Claude
 * Code) talk to it unchanged. It records every model request for assertions.
 *
 *   POST /v1/messages                 Anthropic (SSE when `stream: true`, else JSON)
 *   POST /v1/messages/count_tokens    Anthropic token count (an estimate)
 *   POST /v1/chat/completions         OpenAI (SSE chunks + [DONE] when `stream: true`, else JSON)
 *   GET  /v1/models[/id]              one body that both SDKs read
 *   GET  /_scripted/requests          the recorded requests
 *   GET  /_scripted/state             scenario position, variables, mismatches
 *   POST /_scripted/scenario          load a scenario (YAML or JSON body); resets everything
 *   POST /_scripted/reset             forget requests, rewind the scenario
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  ScenarioCursor,
  ScenarioError,
  fillTemplate,
  loadScenarioFile,
  parseScenario,
  parseScenarioText,
  summarize,
  viewOf,
  type RequestView,
  type Scenario,
  type ScenarioInput,
  type Step,
  type WireApi,
} from './scenario.ts';
import {
  anthropicErrorBody,
  anthropicMessageJson,
  anthropicStreamEvents,
  ids,
  modelJson,
  modelsListJson,
  openaiCompletionJson,
  openaiErrorBody,
  openaiStreamChunks,
  type Reply,
  type SseEvent,
} from './wire.ts';

export interface RecordedRequest {
  /** 1-based, in arrival order. */
  seq: number;
  method: string;
  /** Pathname only; the query string is in `query`. */
  path: string;
  query: string;
  /** Request headers without credentials (authorization, x-api-key, cookie). */
  headers: Record<string, string>;
  /** How the client authenticated. */
  auth: 'x-api-key' | 'bearer' | null;
  /** Parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
  api: WireApi | 'models' | 'other';
  stream: boolean;
  /** The step that answered: `step 2 "list"`, `fallback 1`; null when none did. */
  step: string | null;
  status: number | null;
  /**
   * pending: still answering; completed: the response was sent in full; client_closed: the client
   * went away first (a cancel); disconnected: the scenario dropped the connection.
   */
  outcome: 'pending' | 'completed' | 'client_closed' | 'disconnected';
  /** Why the request was refused (scenario mismatch, bad auth, bad JSON). */
  error?: string;
  startedAt: number;
  endedAt?: number;
}

export interface Mismatch {
  seq: number;
  message: string;
  request: string;
}

export interface ScriptedModelServerOptions {
  /** A scenario object, or the path of a YAML / JSON scenario file. Default: no steps. */
  scenario?: ScenarioInput | string;
  /** 0 (default): a free port. */
  port?: number;
  host?: string;
  /** A line per request, for the CLI's --verbose. */
  log?: (line: string) => void;
  /**
   * false: no /_scripted/ routes (404), so nothing else on the machine can read the recorded requests
   * or change the script (the app's own demo server). Default true.
   */
  admin?: boolean;
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key', 'cookie', 'proxy-authorization']);

/** Waits, but no longer than the response is open: a gone client or a closed server ends the wait. */
const sleep = (ms: number, res: ServerResponse) =>
  new Promise<void>((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve();
    const done = () => {
      clearTimeout(t);
      res.off('close', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    res.on('close', done);
  });

function toScenario(s: ScenarioInput | string | undefined): Scenario {
  if (s === undefined) return parseScenario({});
  if (typeof s === 'string') return loadScenarioFile(s);
  return parseScenario(s);
}

export class ScriptedModelServer {
  readonly requests: RecordedRequest[] = [];
  readonly mismatches: Mismatch[] = [];
  #server: Server;
  #cursor: ScenarioCursor;
  #port = 0;
  #host: string;
  #events = new EventEmitter();
  #log: ((line: string) => void) | undefined;
  #admin: boolean;

  private constructor(opts: ScriptedModelServerOptions) {
    this.#cursor = new ScenarioCursor(toScenario(opts.scenario));
    this.#host = opts.host ?? '127.0.0.1';
    this.#log = opts.log;
    this.#admin = opts.admin ?? true;
    this.#events.setMaxListeners(0);
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          this.#json(
            res,
            500,
            anthropicErrorBody(500, 'api_error', `scripted server: ${(err as Error).message}`),
          );
        } else res.destroy();
      });
    });
    this.#server.keepAliveTimeout = 1000;
  }

  static async start(opts: ScriptedModelServerOptions = {}): Promise<ScriptedModelServer> {
    const s = new ScriptedModelServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.#server.once('error', reject);
      s.#server.listen(opts.port ?? 0, s.#host, () => {
        s.#server.off('error', reject);
        resolve();
      });
    });
    s.#port = (s.#server.address() as AddressInfo).port;
    return s;
  }

  get port(): number {
    return this.#port;
  }
  /** The server root: the Anthropic SDK's baseURL and Claude Code's ANTHROPIC_BASE_URL. */
  get url(): string {
    return `http://${this.#host}:${this.#port}`;
  }
  get anthropicBaseUrl(): string {
    return this.url;
  }
  /** `${url}/v1`: the OpenAI SDK's baseURL. */
  get openaiBaseUrl(): string {
    return `${this.url}/v1`;
  }
  get scenario(): Scenario {
    return this.#cursor.scenario;
  }
  /** Variables captured by named regex groups so far. */
  get vars(): Record<string, string> {
    return { ...this.#cursor.vars };
  }
  /** Model requests answered by a scenario step or fallback. */
  get answered(): RecordedRequest[] {
    return this.requests.filter((r) => r.step !== null);
  }

  /** Replaces the scenario and forgets everything (requests, mismatches, variables). */
  load(scenario: ScenarioInput | string): void {
    this.#cursor = new ScenarioCursor(toScenario(scenario));
    this.reset();
  }

  /** Forgets the requests and mismatches and rewinds the scenario to its first step. */
  reset(): void {
    this.requests.length = 0;
    this.mismatches.length = 0;
    this.#cursor.rewind();
    this.#changed();
  }

  state() {
    return {
      name: this.#cursor.scenario.name ?? null,
      steps: this.#cursor.scenario.steps.length,
      /** 0-based index of the current step (= steps when all are used). */
      current: this.#cursor.index,
      remaining: this.#cursor.remaining,
      vars: this.vars,
      requests: this.requests.length,
      mismatches: [...this.mismatches],
    };
  }

  /** Resolves once `predicate` holds (checked on every request change); rejects after the timeout. */
  waitFor(predicate: (s: ScriptedModelServer) => boolean, timeoutMs = 5000): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`scripted model server: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#events.off('change', check);
      };
      this.#events.on('change', check);
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #changed() {
    this.#events.emit('change');
  }

  // -------------------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://scripted.local');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const bodyText = await readBody(req);

    if (path.startsWith('/_scripted/'))
      return this.#admin
        ? this.#adminRoute(method, path, bodyText, res)
        : this.#json(res, 404, { ok: false, error: 'this server takes no admin requests' });
    if (method === 'GET' && (path === '/' || path === '/health')) return this.#json(res, 200, { ok: true });

    const api: RecordedRequest['api'] =
      path === '/v1/messages' || path === '/v1/messages/count_tokens'
        ? 'anthropic'
        : path === '/v1/chat/completions'
          ? 'openai'
          : path === '/v1/models' || path.startsWith('/v1/models/')
            ? 'models'
            : 'other';
    let body: unknown = bodyText;
    try {
      body = bodyText ? JSON.parse(bodyText) : null;
    } catch {
      /* kept as text */
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (!CREDENTIAL_HEADERS.has(k) && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const bearer = /^bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    const apiKey = typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined;
    const rec: RecordedRequest = {
      seq: this.requests.length + 1,
      method,
      path,
      query: url.search,
      headers,
      auth: apiKey ? 'x-api-key' : bearer ? 'bearer' : null,
      body,
      api,
      stream: !!body && typeof body === 'object' && (body as { stream?: unknown }).stream === true,
      step: null,
      status: null,
      outcome: 'pending',
      startedAt: Date.now(),
    };
    this.requests.push(rec);
    this.#changed();
    res.on('close', () => {
      if (rec.outcome === 'pending') rec.outcome = res.writableFinished ? 'completed' : 'client_closed';
      rec.endedAt = Date.now();
      this.#log?.(
        `${rec.method} ${rec.path} #${rec.seq} ${rec.step ?? '-'} ${rec.status ?? '-'} ${rec.outcome}${
          rec.error ? ` ${rec.error.split('\n')[0]}` : ''
        }`,
      );
      this.#changed();
    });
    const errorBody = (status: number, type?: string, message?: string) =>
      rec.api === 'openai'
        ? openaiErrorBody(status, type, message)
        : anthropicErrorBody(status, type, message);
    const refuse = (status: number, type: string, message: string) => {
      rec.error = message;
      rec.status = status;
      this.#json(res, status, errorBody(status, type, message), this.#requestIdHeader(rec.api));
    };

    if (api === 'other')
      return refuse(404, 'not_found_error', `scripted model server: no route ${method} ${path}`);
    if (method !== (api === 'models' ? 'GET' : 'POST'))
      return refuse(405, 'invalid_request_error', `scripted model server: ${method} ${path} is not allowed`);

    // The real client paths send credentials; check they are there (and right, if the scenario says).
    const expected = this.#cursor.scenario.auth?.apiKey;
    const given = api === 'openai' ? bearer : (apiKey ?? bearer);
    if (!given) {
      return refuse(
        401,
        'authentication_error',
        api === 'openai'
          ? 'scripted model server: missing "Authorization: Bearer <key>" header'
          : 'scripted model server: missing x-api-key (or Authorization: Bearer) header',
      );
    }
    if (expected !== undefined && given !== expected)
      return refuse(401, 'authentication_error', 'scripted model server: invalid API key');

    if (api === 'models') {
      const models = this.#cursor.scenario.models ?? ['scripted-model'];
      rec.status = 200;
      if (path === '/v1/models') return this.#json(res, 200, modelsListJson(models));
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (!models.includes(id)) return refuse(404, 'not_found_error', `model: ${id}`);
      return this.#json(res, 200, modelJson(id));
    }
    if (!body || typeof body !== 'object')
      return refuse(400, 'invalid_request_error', 'scripted model server: the body is not a JSON object');
    if (path === '/v1/messages/count_tokens') {
      rec.status = 200;
      return this.#json(res, 200, { input_tokens: Math.ceil(bodyText.length / 4) });
    }

    const view = viewOf(api, body);
    const pick = this.#cursor.next(view);
    if (!pick.step) {
      const message = `scripted model: request #${rec.seq} (${method} ${path}) matched no step: ${pick.message}\nThe request: ${summarize(view)}`;
      this.mismatches.push({ seq: rec.seq, message, request: summarize(view) });
      return refuse(400, 'invalid_request_error', message);
    }
    rec.step = pick.label;
    this.#changed();
    const vars: Record<string, string> = {
      lastUserText: view.lastUserText ?? '',
      lastToolResult: view.toolResults.map((r) => r.content).join('\n'),
      model: view.model,
      requestNumber: String(rec.seq),
      ...this.#cursor.vars,
    };
    const { match: _match, ...rest } = pick.step;
    const step = fillTemplate(rest, vars) as Step;

    let clientGone = false;
    res.on('close', () => (clientGone = true));
    if (step.delayMs) await sleep(step.delayMs, res);
    if (clientGone) return;

    if (step.error) {
      const e = step.error;
      const hdrs: Record<string, string> = { ...this.#requestIdHeader(api) };
      for (const [k, v] of Object.entries(e.headers ?? {})) hdrs[k.toLowerCase()] = String(v);
      rec.status = e.status;
      rec.error = `scripted HTTP ${e.status}`;
      return this.#json(res, e.status, e.body ?? errorBody(e.status, e.type, e.message), hdrs);
    }

    const reply = this.#reply(api, view, step, bodyText);
    rec.status = 200;
    if (!view.stream) {
      return this.#json(
        res,
        200,
        api === 'anthropic' ? anthropicMessageJson(reply) : openaiCompletionJson(reply),
        this.#requestIdHeader(api),
      );
    }

    const events: SseEvent[] =
      api === 'anthropic'
        ? anthropicStreamEvents(reply)
        : openaiStreamChunks(reply, view.includeUsage).map((data) => ({ data }));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...this.#requestIdHeader(api),
    });
    res.flushHeaders();
    const write = (e: SseEvent) =>
      res.write(
        `${e.event ? `event: ${e.event}\n` : ''}data: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}\n\n`,
      );
    for (const [i, e] of events.entries()) {
      if (clientGone) return;
      if (step.disconnectAfterChunks !== undefined && i >= step.disconnectAfterChunks) {
        // Let what was written reach the client, then drop the connection without ending the body.
        rec.outcome = 'disconnected';
        await new Promise<void>((r) => res.write('', () => r()));
        await sleep(20, res);
        res.socket?.destroy();
        return;
      }
      if (step.streamError && i >= (step.streamError.afterChunks ?? 1)) {
        const type = step.streamError.type ?? 'overloaded_error';
        const message =
          step.streamError.message ?? (type === 'overloaded_error' ? 'Overloaded' : `scripted ${type}`);
        write(
          api === 'anthropic'
            ? { event: 'error', data: { type: 'error', error: { type, message } } }
            : { data: { error: { message, type, param: null, code: null } } },
        );
        res.end();
        return;
      }
      if (i > 0 && step.chunkDelayMs) {
        await sleep(step.chunkDelayMs, res);
        if (clientGone) return;
      }
      write(e);
    }
    if (api === 'openai') write({ data: '[DONE]' });
    res.end();
  }

  #reply(api: WireApi, view: RequestView, step: Step, bodyText: string): Reply {
    const text = step.text ?? '';
    const toolCalls = (step.toolCalls ?? []).map((c) => ({
      id: c.id ?? (api === 'anthropic' ? ids.anthropicTool() : ids.openaiTool()),
      name: c.name,
      input: c.input ?? {},
    }));
    const out =
      text.length + toolCalls.reduce((n, c) => n + c.name.length + JSON.stringify(c.input).length, 0);
    const u = step.usage ?? {};
    return {
      model: view.model || 'scripted-model',
      text,
      toolCalls,
      stopReason: step.stopReason ?? (toolCalls.length ? 'tool_use' : 'end_turn'),
      usage: {
        inputTokens: u.inputTokens ?? Math.ceil(bodyText.length / 4),
        outputTokens: u.outputTokens ?? Math.max(1, Math.ceil(out / 4)),
        cacheReadTokens: u.cacheReadTokens ?? 0,
        cacheWriteTokens: u.cacheWriteTokens ?? 0,
      },
      ...(step.chunkSize ? { chunkSize: step.chunkSize } : {}),
    };
  }

  #requestIdHeader(api: RecordedRequest['api']): Record<string, string> {
    return api === 'openai'
      ? { 'x-request-id': ids.openaiRequest() }
      : { 'request-id': ids.anthropicRequest() };
  }

  #json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  #adminRoute(method: string, path: string, bodyText: string, res: ServerResponse): void {
    if (method === 'GET' && path === '/_scripted/requests')
      return this.#json(res, 200, { requests: this.requests });
    if (method === 'GET' && path === '/_scripted/state') return this.#json(res, 200, this.state());
    if (method === 'POST' && path === '/_scripted/reset') {
      this.reset();
      return this.#json(res, 200, { ok: true });
    }
    if (method === 'POST' && path === '/_scripted/scenario') {
      try {
        const scenario = parseScenarioText(bodyText, 'scenario');
        this.#cursor = new ScenarioCursor(scenario);
        this.reset();
        return this.#json(res, 200, { ok: true, name: scenario.name ?? null, steps: scenario.steps.length });
      } catch (err) {
        const message = err instanceof ScenarioError ? err.message : String(err);
        return this.#json(res, 400, { ok: false, error: message });
      }
    }
    return this.#json(res, 404, { ok: false, error: `no admin route ${method} ${path}` });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function startScriptedModelServer(
  opts: ScriptedModelServerOptions = {},
): Promise<ScriptedModelServer> {
  return ScriptedModelServer.start(opts);
}

export { parseScenario, parseScenarioText, loadScenarioFile, ScenarioError } from './scenario.ts';
export type { Scenario, ScenarioInput, Step } from './scenario.ts';
