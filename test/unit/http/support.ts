/**
 * A real HTTP API server on a fresh core, with every response checked against the OpenAPI document
 * it serves (ajv, JSON Schema 2020-12): a route answering something its document does not describe is
 * a problem the test reports.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { testCore } from '../../support/core.ts';
import type { Core, CoreOptions } from '../../../src/core/createCore.ts';
import { startHttpApiServer, type HttpApiServer } from '../../../src/core/doors/http/server.ts';
import type { Exchange } from '../../../src/core/doors/http/api.ts';
import type { TlsMaterial } from '../../../src/core/doors/http/tls.ts';

const BASE = 'https://fluid.invalid/openapi.json';

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, Resp> }>>;
  components: Record<string, unknown>;
};
type Resp = {
  content?: Record<
    string,
    { schema?: unknown; 'x-fluid-item'?: unknown; 'x-fluid-events'?: Record<string, unknown> }
  >;
};

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Checks exchanges against a document. */
export class Conformance {
  readonly problems: string[] = [];
  readonly seen: Array<{ operation: string; status: number }> = [];
  private readonly ajv: Ajv2020;
  private readonly cache = new Map<string, ValidateFunction>();
  private readonly doc: Doc;

  constructor(doc: Record<string, unknown>) {
    this.doc = doc as unknown as Doc;
    this.ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    this.ajv.addSchema({ ...doc, $id: BASE });
  }

  private validator(ptr: string): ValidateFunction {
    let v = this.cache.get(ptr);
    if (!v) this.cache.set(ptr, (v = this.ajv.compile({ $ref: `${BASE}#/${ptr}` })));
    return v;
  }

  private check(ptr: string, value: unknown, what: string): void {
    const v = this.validator(ptr);
    if (!v(value))
      this.problems.push(
        `${what}: ${this.ajv.errorsText(v.errors, { dataVar: 'body' })} — ${JSON.stringify(value).slice(0, 300)}`,
      );
  }

  inspect = (e: Exchange): void => {
    const template = e.route?.path ?? (this.doc.paths[e.path] ? e.path : null);
    const method = (e.route?.method ?? e.method).toLowerCase();
    const what = `${e.method} ${e.path} → ${e.status}`;
    const op = template ? this.doc.paths[template]?.[method === 'head' ? 'get' : method] : undefined;
    if (!op) {
      // no operation (a path the API does not have): the answer must still be an ErrorPayload
      if (e.status < 400)
        this.problems.push(`${what}: answered ${e.status} on a path the document does not have`);
      else this.check('components/schemas/ErrorPayload', JSON.parse(e.body), what);
      return;
    }
    this.seen.push({ operation: `${method.toUpperCase()} ${template}`, status: e.status });
    const code = String(e.status);
    const key = op.responses[code] ? code : op.responses[`${code[0]}XX`] ? `${code[0]}XX` : null;
    if (!key) return void this.problems.push(`${what}: status ${code} is not documented`);
    const content = op.responses[key]!.content ?? {};
    const base = pointer('paths', template!, method === 'head' ? 'get' : method, 'responses', key, 'content');
    if (e.contentType.startsWith('text/event-stream')) {
      const media = content['text/event-stream'];
      if (!media) return void this.problems.push(`${what}: an event stream is not documented`);
      for (const [event, data] of parseSse(e.body)) {
        if (event === 'error' || event === 'end') {
          if (event === 'error') this.check('components/schemas/ErrorPayload', data, `${what} (error event)`);
        } else if (media['x-fluid-item'])
          this.check(`${base}/${pointer('text/event-stream', 'x-fluid-item')}`, data, `${what} (item)`);
        else if (media['x-fluid-events']?.[event])
          this.check(
            `${base}/${pointer('text/event-stream', 'x-fluid-events', event)}`,
            data,
            `${what} (${event})`,
          );
        else this.problems.push(`${what}: undocumented event ${event}`);
      }
      return;
    }
    if (!content['application/json']) return void this.problems.push(`${what}: JSON is not documented`);
    if (e.method === 'HEAD') return;
    let body: unknown;
    try {
      body = JSON.parse(e.body);
    } catch {
      return void this.problems.push(`${what}: not JSON: ${e.body.slice(0, 200)}`);
    }
    this.check(`${base}/${pointer('application/json', 'schema')}`, body, what);
  };
}

export function parseSse(text: string): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const block of text.split('\n\n')) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length) out.push([event, JSON.parse(data.join('\n'))]);
  }
  return out;
}

export interface ApiFixture {
  core: Core & { dispose: () => Promise<void> };
  server: HttpApiServer;
  url: string;
  conformance: Conformance;
  agent: string;
  operator: string;
  /** fetch with a token (agent by default) and JSON */
  req(
    method: string,
    path: string,
    body?: unknown,
    opts?: { token?: string | null; headers?: Record<string, string> },
  ): Promise<Response>;
  close(): Promise<void>;
}

export async function apiFixture(
  opts: { core?: Partial<CoreOptions>; host?: string; tls?: TlsMaterial | null } = {},
): Promise<ApiFixture> {
  const core = testCore({ egress: null, ...opts.core });
  const person = { door: 'test' as const, id: 'person' };
  const agent = core.tokens.create('agent-1', 'agent', person, null).secret;
  const operator = core.tokens.create('ops-1', 'operator', person, null).secret;
  let conformance: Conformance | null = null;
  const server = await startHttpApiServer({
    core,
    host: opts.host,
    tls: opts.tls,
    api: { inspect: (e) => conformance?.inspect(e) },
  });
  conformance = new Conformance(server.api.openapi());
  const req: ApiFixture['req'] = (method, path, body, o = {}) => {
    const token = o.token === undefined ? agent : o.token;
    return fetch(`${server.url}${path}`, {
      method,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...o.headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  return {
    core,
    server,
    url: server.url,
    conformance,
    agent,
    operator,
    req,
    close: async () => {
      await server.close();
      await core.dispose();
    },
  };
}
