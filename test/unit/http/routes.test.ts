/**
 * The REST routes are derived from the contract: a new call or stream gets a route, two members never
 * share one, and the original product's documented paths keep answering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { contract } from '../../../src/shared/contract/index.ts';
import { call, event, stream, type ContractDef } from '../../../src/shared/rpc.ts';
import { deriveRoutes, jsonSchemaOf, RouteTable } from '../../../src/core/doors/http/routes.ts';
import { AGENT_EVENTS, AGENT_MEMBERS } from '../../../src/core/tokens/scopes.ts';

const c = contract as ContractDef;
const routes = deriveRoutes(c);

test('every call and stream of the contract has exactly one route of its own', () => {
  const members = Object.entries(c).filter(([, d]) => d.kind !== 'event');
  assert.ok(members.length > 80, 'the whole contract is there');
  for (const [name, def] of members) {
    const own = routes.filter((r) => r.member === name && !r.compat);
    assert.equal(own.length, 1, `${name} has ${own.length} routes`);
    assert.equal(own[0]!.kind, def.kind);
  }
  for (const r of routes) assert.ok(c[r.member], `${r.member} (${r.path}) is not in the contract`);
});

test('no two routes share a method and path, and path parameters are required input fields', () => {
  const seen = new Map<string, string>();
  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    assert.ok(!seen.has(key), `${key}: ${seen.get(key)} and ${r.member}`);
    seen.set(key, r.member);
    const def = c[r.member]!;
    if (def.kind === 'event') continue;
    const input = jsonSchemaOf(def.input, 'input');
    for (const p of r.params) {
      if (r.compat === 'command') continue;
      assert.ok(input.required?.includes(p), `${r.member}: {${p}} is not a required input field`);
    }
  }
  const ids = routes.map((r) => r.operationId);
  assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
});

test('a GET takes only what a query string can carry; streams and long work are marked', () => {
  for (const r of routes.filter((x) => x.method === 'GET'))
    for (const [k, t] of Object.entries(r.types))
      assert.notEqual(t, 'other', `${r.member}: ${k} cannot come from a query string`);
  assert.equal(routes.find((r) => r.member === 'sandboxes.create' && !r.compat)!.status, 202);
  assert.equal(routes.find((r) => r.member === 'tasks.get')!.status, 200);
  assert.equal(routes.find((r) => r.member === 'tasks.watch')!.kind, 'stream');
  assert.equal(routes.find((r) => r.member === 'sandboxes.list')!.list?.kind, 'array');
  assert.equal(routes.find((r) => r.member === 'audit.list')!.list?.kind, 'entries');
});

test("the original product's documented paths are served", () => {
  const table = new RouteTable(routes);
  const expect: Array<[string, string, string]> = [
    ['POST', '/v1/sandboxes', 'sandboxes.create'],
    ['GET', '/v1/sandboxes/sbx-1', 'sandboxes.get'],
    ['POST', '/v1/sandboxes/sbx-1/start', 'sandboxes.start'],
    ['POST', '/v1/sandboxes/sbx-1/stop', 'sandboxes.stop'],
    ['DELETE', '/v1/sandboxes/sbx-1', 'sandboxes.destroy'],
    ['POST', '/v1/sandboxes/sbx-1/command', 'sandboxes.exec'],
    ['POST', '/v1/sandboxes/sbx-1/snapshots', 'snapshots.create'],
    ['GET', '/v1/sandboxes/sbx-1/snapshots', 'snapshots.list'],
    ['POST', '/v1/sandboxes/sbx-1/snapshots/before-tls/restore', 'snapshots.restore'],
    ['POST', '/v1/human/ask', 'approvals.ask'],
    ['POST', '/api/v1/human/ask', 'approvals.ask'],
    ['GET', '/v1/hosts', 'hosts.list'],
    ['GET', '/v1/vms', 'sources.list'],
  ];
  for (const [method, path, member] of expect) {
    const m = table.match(method, path);
    assert.ok(m && 'route' in m, `${method} ${path} has no route`);
    assert.equal(m.route.member, member, `${method} ${path}`);
  }
  const snap = table.match('POST', '/v1/sandboxes/sbx-1/snapshots/before-tls/restore');
  assert.deepEqual(snap && 'params' in snap ? snap.params : null, {
    sandbox: 'sbx-1',
    snapshot: 'before-tls',
  });
  // a literal segment wins over a parameter; a known path with another method says which it takes
  const ask = table.match('POST', '/v1/approvals/ask');
  assert.equal(ask && 'route' in ask ? ask.route.member : null, 'approvals.ask');
  assert.deepEqual(table.match('PUT', '/v1/sandboxes/sbx-1'), { allow: ['GET', 'DELETE'] });
  assert.equal(table.match('GET', '/v1/nothing-here'), null);
});

test('a new contract member gets a route with no one writing one', () => {
  const extra = {
    ...c,
    'widgets.list': call(
      z.object({ limit: z.number().int().max(50).default(10) }),
      z.array(z.object({ id: z.string() })),
      'l',
    ),
    'widgets.get': call(z.object({ widget: z.string() }), z.object({ id: z.string() }), 'g'),
    'widgets.polish': call(z.object({ widget: z.string(), how: z.array(z.string()) }), z.object({}), 'p'),
    'widgets.watch': stream(z.object({ widget: z.string() }), z.object({}), 'w'),
    'widgets.changed': event(z.object({}), 'e'),
  } as ContractDef;
  const r = deriveRoutes(extra).filter((x) => x.member.startsWith('widgets.'));
  const by = Object.fromEntries(r.map((x) => [x.member, `${x.method} ${x.path}`]));
  assert.deepEqual(by, {
    'widgets.list': 'GET /v1/widgets',
    'widgets.get': 'GET /v1/widgets/{widget}',
    // an array in the input: a body, so a POST
    'widgets.polish': 'POST /v1/widgets/{widget}/polish',
    'widgets.watch': 'GET /v1/widgets/{widget}/watch',
  });
  assert.equal(r.find((x) => x.member === 'widgets.list')!.list?.kind, 'array');
  assert.equal(r.find((x) => x.member === 'widgets.watch')!.kind, 'stream');
});

test('the agent scope names only members and events that exist', () => {
  for (const m of AGENT_MEMBERS) assert.ok(c[m] && c[m]!.kind !== 'event', `${m} is not a call or stream`);
  for (const e of AGENT_EVENTS) assert.equal(c[e]?.kind, 'event', `${e} is not an event`);
  // deciding, settings, rules, tokens, presence, secrets: never an agent's
  for (const m of [
    'approvals.decide',
    'settings.update',
    'tokens.create',
    'tokens.revoke',
    'presence.registerBegin',
    'sandboxes.egressAllow',
    'changes.apply',
    'playbooks.export',
    'providers.save',
    'hosts.add',
    'hosts.trust',
    'targets.add',
    'audit.export',
  ])
    assert.ok(!AGENT_MEMBERS.has(m), `${m} must not be in the agent scope`);
});
