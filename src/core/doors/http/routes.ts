/**
 * REST routes derived from the contract: every call and stream gets a method and a path from its
 * name, with a few overrides where the rule would collide or read badly.
 *
 *   <namespace>.<verb>  →  the namespace's collection (RESOURCES) and, when the input names the
 *   resource (its key field), the item path /<collection>/{key}; then by verb:
 *     list                         GET    /collection
 *     get                          GET    /collection/{key}      (GET /collection when keyless)
 *     create, add, submit, request POST   /collection
 *     delete, destroy, remove, revoke DELETE /collection/{key}
 *     update                       PATCH  /collection/{key}
 *     a reading verb (READ_VERBS)  GET    /collection/{key}/<verb-in-kebab-case>
 *     anything else                POST   /collection/{key}/<verb-in-kebab-case>
 *   Streams answer with Server-Sent Events. A GET takes its input from the query string, so a member
 *   whose input holds objects or arrays is a POST whatever its verb.
 *
 * A new contract member gets a route without anyone writing one; the route test fails only when the
 * rule cannot place it (two members on one method and path), and an override settles it. The
 * original product's documented paths are served too (COMPAT_ROUTES), over the same members.
 */
import { z } from 'zod';
import type { ContractDef } from '../../../shared/rpc.ts';
import { TaskSchema } from '../../../shared/contract/tasks.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Where a namespace's members live, and which input field names one of its resources. */
export const RESOURCES: Record<string, { path: string; key?: string }> = {
  system: { path: '/v1/system' },
  tasks: { path: '/v1/tasks', key: 'id' },
  audit: { path: '/v1/audit' },
  settings: { path: '/v1/settings' },
  hosts: { path: '/v1/hosts', key: 'host' },
  sources: { path: '/v1/sources' },
  bases: { path: '/v1/bases' },
  approvals: { path: '/v1/approvals', key: 'id' },
  presence: { path: '/v1/presence', key: 'id' },
  sandboxes: { path: '/v1/sandboxes', key: 'sandbox' },
  snapshots: { path: '/v1/sandboxes/{sandbox}/snapshots', key: 'snapshot' },
  diff: { path: '/v1/sandboxes/{sandbox}/diffs', key: 'diff' },
  providers: { path: '/v1/providers', key: 'id' },
  tools: { path: '/v1/tools' },
  policy: { path: '/v1/policy' },
  agent: { path: '/v1/agent/sessions', key: 'sessionId' },
  'agent.sessions': { path: '/v1/agent/sessions', key: 'sessionId' },
  playbooks: { path: '/v1/playbooks', key: 'playbook' },
  targets: { path: '/v1/targets', key: 'target' },
  changes: { path: '/v1/changes', key: 'change' },
  tokens: { path: '/v1/tokens', key: 'name' },
};

const CREATE_VERBS = new Set(['create', 'add', 'submit', 'request']);
const DELETE_VERBS = new Set(['delete', 'destroy', 'remove', 'revoke']);
const UPDATE_VERBS = new Set(['update']);
/** Verbs that only read: GET (when the input fits a query string). */
const READ_VERBS = new Set([
  'list',
  'get',
  'info',
  'status',
  'doctor',
  'baseline',
  'capacity',
  'vms',
  'revisions',
  'revisionDiff',
  'file',
  'verification',
  'verifications',
  'bundle',
  'applies',
  'applyGet',
  'transcript',
  'toolOutput',
  'watch',
  'watchApply',
]);

/** Where the rule would collide or read badly. */
export const OVERRIDES: Record<string, { method?: Method; path?: string }> = {
  // a diff is made by POSTing to the sandbox's diffs; "the diff" (latest, or ?diff=) is read singular
  'diff.run': { method: 'POST', path: '/v1/sandboxes/{sandbox}/diffs' },
  'diff.get': { method: 'GET', path: '/v1/sandboxes/{sandbox}/diff' },
  // files of a sandbox as one resource
  'sandboxes.readFile': { method: 'GET', path: '/v1/sandboxes/{sandbox}/files' },
  'sandboxes.writeFile': { method: 'PUT', path: '/v1/sandboxes/{sandbox}/files' },
  'sandboxes.editFile': { method: 'PATCH', path: '/v1/sandboxes/{sandbox}/files' },
  'sandboxes.listDir': { method: 'GET', path: '/v1/sandboxes/{sandbox}/dirs' },
  // audit reads
  'audit.verify': { method: 'GET' },
  'audit.export': { method: 'GET' },
  // applies are their own resource
  'changes.applies': { method: 'GET', path: '/v1/applies' },
  'changes.applyGet': { method: 'GET', path: '/v1/applies/{apply}' },
  'changes.watchApply': { method: 'GET', path: '/v1/applies/{apply}/watch' },
  // its input carries a presence proof (an object), so it cannot be a DELETE with a query
  'presence.remove': { method: 'POST', path: '/v1/presence/{id}/remove' },
};

/** How a list answers: the contract's array (paged by the door), or audit's entries (paged natively). */
export type ListShape = { kind: 'array' } | { kind: 'entries' };

export interface Route {
  /** The contract member it serves. */
  member: string;
  kind: 'call' | 'stream';
  method: Method;
  /** OpenAPI path template. */
  path: string;
  /** Input fields taken from the path, in order. */
  params: string[];
  /** The input comes from the query string (GET, DELETE) rather than a JSON body. */
  query: boolean;
  /** Query values are strings: the input field types to coerce them to. */
  types: Record<string, 'string' | 'number' | 'boolean' | 'other'>;
  /** 200, 201 for creates, 202 when the answer is a task (Location: /v1/tasks/{id}). */
  status: 200 | 201 | 202;
  /** The answer is a task, or an object holding one under `task`. */
  task: 'self' | 'nested' | null;
  /** Cursor pagination (GET lists). */
  list: ListShape | null;
  /** The original product's path for this member (same input, or an adapter: see compat.ts). */
  compat?: 'alias' | 'createSandbox' | 'command';
  operationId: string;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  maximum?: number;
  default?: unknown;
  [k: string]: unknown;
}

/** A zod schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), without the $schema header. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete out.$schema;
  return out;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function split(member: string): { ns: string; verb: string } {
  const at = member.lastIndexOf('.');
  return { ns: member.slice(0, at), verb: member.slice(at + 1) };
}

/** The JSON type a query value must be turned into. */
function fieldType(s: JsonSchema | undefined): Route['types'][string] {
  if (!s) return 'other';
  const types = new Set<string>();
  const visit = (x: JsonSchema) => {
    if (x.anyOf) x.anyOf.forEach(visit);
    else if (x.oneOf) x.oneOf.forEach(visit);
    else if (Array.isArray(x.type)) x.type.forEach((t) => types.add(t));
    else if (x.type) types.add(x.type);
    else if ('enum' in x || 'const' in x) types.add('string');
  };
  visit(s);
  types.delete('null');
  if (types.size !== 1) return 'other';
  const [t] = [...types];
  if (t === 'string') return 'string';
  if (t === 'integer' || t === 'number') return 'number';
  if (t === 'boolean') return 'boolean';
  return 'other';
}

function taskShape(output: z.ZodType): Route['task'] {
  if (output === TaskSchema) return 'self';
  const shape = (output as { shape?: Record<string, unknown> }).shape;
  return shape && shape.task === TaskSchema ? 'nested' : null;
}

function listShape(method: Method, output: JsonSchema, input: JsonSchema): ListShape | null {
  if (method !== 'GET') return null;
  if (output.type === 'array') return { kind: 'array' };
  if (output.properties?.entries?.type === 'array' && input.properties?.beforeSeq) return { kind: 'entries' };
  return null;
}

/** Every call and stream of the contract, as routes; then the original product's paths. */
export function deriveRoutes(contract: ContractDef): Route[] {
  const routes: Route[] = [];
  for (const [member, def] of Object.entries(contract)) {
    if (def.kind === 'event') continue;
    const { ns, verb } = split(member);
    // a namespace not listed: /v1/<namespace>, its key the singular (widgets → widget) when the input has it
    const res = RESOURCES[ns] ?? {
      path: `/v1/${ns.split('.').map(kebab).join('/')}`,
      key: ns.replace(/s$/, ''),
    };
    const input = jsonSchemaOf(def.input, 'input');
    const props = input.properties ?? {};
    const required = new Set(input.required ?? []);
    const flat = Object.values(props).every((p) => fieldType(p) !== 'other');
    const keyed = !!res.key && required.has(res.key) && fieldType(props[res.key]) === 'string';
    const item = keyed ? `${res.path}/{${res.key}}` : res.path;
    let method: Method;
    let path: string;
    if (verb === 'list') [method, path] = ['GET', res.path];
    else if (verb === 'get') [method, path] = ['GET', item];
    else if (CREATE_VERBS.has(verb)) [method, path] = ['POST', res.path];
    else if (DELETE_VERBS.has(verb) && keyed) [method, path] = ['DELETE', item];
    else if (UPDATE_VERBS.has(verb)) [method, path] = ['PATCH', item];
    else [method, path] = [READ_VERBS.has(verb) ? 'GET' : 'POST', `${item}/${kebab(verb)}`];
    const o = OVERRIDES[member];
    if (o?.method) method = o.method;
    if (o?.path) path = o.path;
    if ((method === 'GET' || method === 'DELETE') && !flat) method = 'POST';
    routes.push(
      makeRoute(member, def.kind, method, path, input, jsonSchemaOf(def.output, 'output'), {
        create: CREATE_VERBS.has(verb),
        // the tasks namespace reads and cancels tasks; everything else that answers a task started one
        task: ns === 'tasks' ? null : taskShape(def.output),
      }),
    );
  }
  for (const c of COMPAT_ROUTES) {
    const def = contract[c.member];
    if (!def || def.kind === 'event') continue;
    const input = jsonSchemaOf(def.input, 'input');
    routes.push({
      ...makeRoute(c.member, def.kind, c.method, c.path, input, jsonSchemaOf(def.output, 'output'), {
        create: c.compat === 'createSandbox',
        task: c.compat === 'alias' ? taskShape(def.output) : null,
      }),
      compat: c.compat,
      operationId: c.operationId,
      ...(c.compat === 'createSandbox' ? { status: 201 as const } : {}),
    });
  }
  return routes;
}

function makeRoute(
  member: string,
  kind: 'call' | 'stream',
  method: Method,
  path: string,
  input: JsonSchema,
  output: JsonSchema,
  how: { create: boolean; task: Route['task'] },
): Route {
  const props = input.properties ?? {};
  const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const types: Route['types'] = {};
  for (const [k, v] of Object.entries(props)) types[k] = fieldType(v);
  return {
    member,
    kind,
    method,
    path,
    params,
    query: method === 'GET' || method === 'DELETE',
    types,
    status: how.task ? 202 : how.create && method === 'POST' ? 201 : 200,
    task: how.task,
    list: kind === 'call' ? listShape(method, output, input) : null,
    operationId: member,
  };
}

/**
 * The original product's documented paths that the derived routes do not already serve:
 *  - POST /v1/sandboxes also takes its body ({source_vm_name, cpu, memory_mb, wait_for_ip, …}) and
 *    answers as it did: 201 {sandbox, ip_address}, once the sandbox is running (createSandbox).
 *  - POST /v1/sandboxes/{id}/command runs a command: {command, timeout_sec, env} → {command: {…}}.
 *  - the blocking "ask a person", and the VM list.
 * (GET /v1/sandboxes/{id}, start, stop, DELETE, snapshots and their restore, GET /v1/hosts are the
 * derived routes themselves; GET /health is the door's own.)
 */
export const COMPAT_ROUTES: Array<{
  member: string;
  method: Method;
  path: string;
  compat: NonNullable<Route['compat']>;
  operationId: string;
}> = [
  {
    member: 'sandboxes.exec',
    method: 'POST',
    path: '/v1/sandboxes/{sandbox}/command',
    compat: 'command',
    operationId: 'compat.runCommand',
  },
  {
    member: 'approvals.ask',
    method: 'POST',
    path: '/v1/human/ask',
    compat: 'alias',
    operationId: 'compat.humanAsk',
  },
  {
    member: 'approvals.ask',
    method: 'POST',
    path: '/api/v1/human/ask',
    compat: 'alias',
    operationId: 'compat.apiHumanAsk',
  },
  { member: 'sources.list', method: 'GET', path: '/v1/vms', compat: 'alias', operationId: 'compat.listVms' },
];

// ---- matching ------------------------------------------------------------------------------------

interface Compiled {
  route: Route;
  segments: Array<{ literal: string } | { param: string }>;
}

export class RouteTable {
  readonly routes: Route[];
  private readonly compiled: Compiled[];

  constructor(routes: Route[]) {
    this.routes = routes;
    this.compiled = routes.map((route) => ({
      route,
      segments: route.path
        .split('/')
        .slice(1)
        .map((s) => (s.startsWith('{') ? { param: s.slice(1, -1) } : { literal: s })),
    }));
  }

  /**
   * The route for a method and path, with its path parameters; `allow` lists the methods the path
   * has when the method is not one of them. Literal segments win over parameters.
   */
  match(
    method: string,
    pathname: string,
  ): { route: Route; params: Record<string, string> } | { allow: string[] } | null {
    const parts = pathname.split('/').slice(1);
    let best: { c: Compiled; params: Record<string, string>; score: string } | null = null;
    const allow = new Set<string>();
    for (const c of this.compiled) {
      if (c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let score = '';
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = c.segments[i]!;
        const part = parts[i]!;
        if ('literal' in seg) {
          ok = seg.literal === part;
          score += '1';
        } else {
          let v: string;
          try {
            v = decodeURIComponent(part);
          } catch {
            ok = false;
            break;
          }
          ok = v.length > 0;
          params[seg.param] = v;
          score += '0';
        }
      }
      if (!ok) continue;
      if (c.route.method !== method && !(method === 'HEAD' && c.route.method === 'GET')) {
        allow.add(c.route.method);
        continue;
      }
      if (!best || score > best.score) best = { c, params, score };
    }
    if (best) return { route: best.c.route, params: best.params };
    return allow.size ? { allow: [...allow] } : null;
  }
}
