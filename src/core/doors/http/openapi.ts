/**
 * The OpenAPI 3.1 document of the HTTP door, generated from the zod contract (z.toJSONSchema) and the
 * derived routes, so it cannot describe an API other than the one served. `npm run build:openapi`
 * writes it to out/openapi.json; the server serves the same document at /v1/openapi.json.
 *
 * Components: every `…Schema` the contract exports under its name (Sandbox, Task, …), each member's
 * answer as `<member>.Output` (a stream's item as `<member>.Item`, an event's payload as
 * `<member>.Event`) unless it is one of those, and ErrorPayload. Request bodies and parameters are the
 * member's input as a client sends it (defaults optional), less what the path carries.
 */
import { z } from 'zod';
import * as contractModule from '../../../shared/contract/index.ts';
import { contract } from '../../../shared/contract/index.ts';
import { ERROR_CODES } from '../../../shared/errors.ts';
import type { ContractDef } from '../../../shared/rpc.ts';
import { fluidVersion } from '../../version.ts';
import {
  CompatCommandResponseSchema,
  CompatCommandSchema,
  CompatCreateSandboxResponseSchema,
  CompatCreateSandboxSchema,
} from './compat.ts';
import { jsonSchemaOf, type JsonSchema, type Route } from './routes.ts';
import { STATUS_OF } from './errors.ts';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

/** The component name of each member's answer (stream item, event payload). */
export function outputComponents(c: ContractDef): {
  schemas: Record<string, JsonSchema>;
  idOf: Map<string, string>;
} {
  const reg = z.registry<{ id: string }>();
  const ids = new Map<z.ZodType, string>();
  const name = (s: z.ZodType, id: string): string => {
    const known = ids.get(s);
    if (known) return known;
    ids.set(s, id);
    reg.add(s, { id });
    return id;
  };
  for (const [k, v] of Object.entries(contractModule))
    if (k.endsWith('Schema') && v instanceof z.ZodType) name(v, k.slice(0, -'Schema'.length));
  name(CompatCreateSandboxResponseSchema, 'CompatCreateSandboxResponse');
  name(CompatCommandResponseSchema, 'CompatCommandResponse');
  const idOf = new Map<string, string>();
  for (const [member, def] of Object.entries(c)) {
    if (def.kind === 'event') idOf.set(member, name(def.payload, `${member}.Event`));
    else idOf.set(member, name(def.output, `${member}.${def.kind === 'stream' ? 'Item' : 'Output'}`));
  }
  const out = z.toJSONSchema(reg, {
    uri: (id) => `#/components/schemas/${id}`,
    io: 'output',
    unrepresentable: 'any',
    target: 'draft-2020-12',
  }) as { schemas: Record<string, JsonSchema> };
  for (const s of Object.values(out.schemas)) {
    delete s.$schema;
    delete s.$id;
  }
  return { schemas: out.schemas, idOf };
}

/** The input as a request body: without the fields the path carries. */
function bodyOf(input: JsonSchema, params: string[]): JsonSchema {
  const body = structuredClone(input);
  for (const p of params) delete body.properties?.[p];
  if (body.required) {
    body.required = body.required.filter((r) => !params.includes(r));
    if (!body.required.length) delete body.required;
  }
  return body;
}

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('ErrorPayload') } },
});

export function buildOpenApi(routes: readonly Route[]): Record<string, unknown> {
  const c = contract as ContractDef;
  const { schemas, idOf } = outputComponents(c);
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (path: string, method: string, op: Record<string, unknown>) => {
    (paths[path] ??= {})[method.toLowerCase()] = op;
  };

  for (const route of routes) {
    const def = c[route.member]!;
    if (def.kind === 'event') continue;
    const input = jsonSchemaOf(def.input, 'input');
    const props = input.properties ?? {};
    const required = new Set(input.required ?? []);
    const parameters: Array<Record<string, unknown>> = route.params.map((p) => ({
      name: p,
      in: 'path',
      required: true,
      schema: props[p] ?? { type: 'string' },
    }));
    let requestBody: Record<string, unknown> | undefined;
    if (route.query) {
      for (const [k, s] of Object.entries(props)) {
        if (route.params.includes(k)) continue;
        parameters.push({ name: k, in: 'query', required: required.has(k), schema: s });
      }
      if (route.list) {
        if (!props.limit)
          parameters.push({
            name: 'limit',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 1, maximum: 500 },
            description: 'Page size',
          });
        parameters.push({
          name: 'cursor',
          in: 'query',
          required: false,
          schema: { type: 'string' },
          description: 'The X-Next-Cursor of the previous page',
        });
      }
    } else {
      let schema: JsonSchema =
        route.compat === 'command'
          ? bodyOf(jsonSchemaOf(CompatCommandSchema, 'input'), [])
          : bodyOf(input, route.params);
      if (route.member === 'sandboxes.create' && !route.compat)
        schema = { anyOf: [schema, jsonSchemaOf(CompatCreateSandboxSchema, 'input')] };
      requestBody = {
        required: !!schema.required?.length || !!schema.anyOf,
        content: { 'application/json': { schema } },
      };
    }
    if (route.method !== 'GET')
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        schema: { type: 'string', minLength: 1, maxLength: 255 },
        description: 'Send the same key again to get the first response back instead of acting twice',
      });

    const responses: Record<string, unknown> = {};
    const outRef = ref(
      route.compat === 'command'
        ? 'CompatCommandResponse'
        : route.compat === 'createSandbox'
          ? 'CompatCreateSandboxResponse'
          : idOf.get(route.member)!,
    );
    if (route.kind === 'stream') {
      responses['200'] = {
        description:
          'Server-Sent Events: `item` (the schema in x-fluid-item) for each item, then `end`, or `error` ({code, message, data})',
        content: { 'text/event-stream': { schema: { type: 'string' }, 'x-fluid-item': outRef } },
      };
    } else {
      const headers: Record<string, unknown> = {};
      if (route.task)
        headers.Location = {
          description: 'The task: GET it, or watch it at …/watch',
          schema: { type: 'string' },
        };
      if (route.list) {
        headers['X-Next-Cursor'] = {
          description: 'The next page (absent on the last)',
          schema: { type: 'string' },
        };
        headers.Link = { description: '<…?cursor=…>; rel="next"', schema: { type: 'string' } };
      }
      responses[String(route.status)] = {
        description: route.task ? 'Accepted: the work runs as a task' : 'OK',
        ...(Object.keys(headers).length ? { headers } : {}),
        content: { 'application/json': { schema: outRef } },
      };
      if (route.member === 'sandboxes.create' && !route.compat)
        responses['201'] = {
          description: "The original product's body (source_vm_name …): the sandbox, once it is running",
          content: { 'application/json': { schema: ref('CompatCreateSandboxResponse') } },
        };
    }
    responses['401'] = errorResponse('No API token, or not a valid one');
    responses['403'] = errorResponse("The token's scope does not reach this, or only a person decides it");
    responses['4XX'] = errorResponse('Bad input, not found, conflict');
    responses['5XX'] = errorResponse('A host or the server failed');
    const ns = route.member.slice(0, route.member.lastIndexOf('.'));
    add(route.path, route.method, {
      operationId: route.operationId,
      summary: def.summary,
      tags: [route.compat ? 'original product' : ns],
      parameters,
      ...(requestBody ? { requestBody } : {}),
      responses,
    });
  }

  const events = Object.entries(c).filter(([, d]) => d.kind === 'event');
  add('/v1/events', 'GET', {
    operationId: 'events',
    summary:
      'Contract events as Server-Sent Events, named as in the contract (all the token may see, or ?name=…).',
    tags: ['events'],
    parameters: [
      {
        name: 'name',
        in: 'query',
        required: false,
        schema: { type: 'array', items: { type: 'string', enum: events.map(([n]) => n) } },
        style: 'form',
        explode: true,
      },
    ],
    responses: {
      '200': {
        description: 'One SSE event per contract event; its data is the payload (x-fluid-events)',
        content: {
          'text/event-stream': {
            schema: { type: 'string' },
            'x-fluid-events': Object.fromEntries(events.map(([n]) => [n, ref(idOf.get(n)!)])),
          },
        },
      },
      '401': errorResponse('No API token, or not a valid one'),
      '4XX': errorResponse('An unknown event, or one the token may not see'),
    },
  });
  const health = {
    summary: 'Is the server up (no token needed).',
    tags: ['original product'],
    security: [],
    responses: {
      '200': {
        description: 'OK',
        content: {
          'application/json': {
            schema: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] },
          },
        },
      },
    },
  };
  add('/health', 'GET', { operationId: 'health', ...health });
  add('/v1/health', 'GET', { operationId: 'compat.health', ...health });
  add('/v1/openapi.json', 'GET', {
    operationId: 'openapi',
    summary: 'This document (no token needed).',
    tags: ['meta'],
    security: [],
    responses: {
      '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
    },
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'Fluid HTTP API',
      version: fluidVersion(),
      description: [
        'Sandboxes, commands, snapshots, diffs, playbooks, changes and approvals over HTTP: the same contract as every other Fluid door, with the same policy, approvals and audit.',
        'Authenticate with `Authorization: Bearer <token>` (`fluid token create --scope agent|operator --name …`). An agent token asks and never decides; an operator token decides only while a person allows unattended decisions.',
        'Errors are `{code, message, data}` with these statuses: ' +
          ERROR_CODES.map((code) => `${code} ${STATUS_OF[code]}`).join(', ') +
          ' (a missing or invalid token: 401 AUTH_FAILED).',
        'Long work answers 202 with the task (Location: /v1/tasks/{id}); watch it at /v1/tasks/{id}/watch (Server-Sent Events). Lists page with ?limit= and ?cursor= (the X-Next-Cursor header).',
      ].join('\n\n'),
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A Fluid API token' } },
    },
  };
}
