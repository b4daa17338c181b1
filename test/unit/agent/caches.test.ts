/**
 * What a long agent run reuses instead of rebuilding every turn: tool JSON Schemas (per schema,
 * following a changed tool set), the tool definitions of a mode, the settings (parsed again only when
 * the stored text changed), one model client per provider configuration, and the step gate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { ToolRegistry, jsonSchemaOf } from '../../../src/core/agent/tools/registry.ts';
import { toolDefinitions, toolSet } from '../../../src/core/agent/loop.ts';
import { StepGate } from '../../../src/core/agent/gate.ts';
import type { Rule } from '../../../src/core/agent/tools/rules.ts';
import { createProviderLazy } from '../../../src/core/agent/providers/lazy.ts';
import type { ProviderConfig } from '../../../src/core/agent/providers/types.ts';
import { testCore } from '../../support/core.ts';
import { addScriptedProvider, harness, watchUntil } from './agent-harness.ts';

const person = { door: 'test' as const, id: 't' };

function registry() {
  const core = testCore();
  return {
    core,
    tools: new ToolRegistry({ approvals: core.approvals, audit: core.audit, settings: core.settings }),
  };
}

const tool = (name: string, input: z.ZodType, readOnly = true) => ({
  name,
  description: `the ${name} tool`,
  input,
  readOnly,
  risk: 'low' as const,
  summarize: () => name,
  run: async () => ({ content: 'ok' }),
});

test('a JSON Schema is built once per zod schema, frozen, and a changed schema gets its own', () => {
  const a = z.object({ text: z.string() });
  const first = jsonSchemaOf(a);
  assert.equal(jsonSchemaOf(a), first, 'the same schema object gives the cached JSON Schema');
  assert.deepEqual(first, {
    type: 'object',
    properties: { text: { type: 'string' } },
    required: ['text'],
  });
  assert.ok(
    Object.isFrozen(first) && Object.isFrozen(first.properties),
    'callers cannot change the cached copy',
  );
  assert.throws(() => {
    (first as Record<string, unknown>).type = 'string';
  }, TypeError);
  const b = a.extend({ count: z.number().int().optional() });
  assert.notEqual(jsonSchemaOf(b), first);
  assert.deepEqual(Object.keys(jsonSchemaOf(b).properties as object), ['text', 'count']);
});

test('tool infos and definitions are cached per mode and rebuilt when a tool is registered', async () => {
  const { core, tools } = registry();
  tools.register(tool('look', z.object({ path: z.string() })));
  tools.register(tool('change', z.object({ path: z.string(), text: z.string() }), false));
  const v1 = tools.version;
  const edit1 = tools.info('edit');
  assert.deepEqual(
    edit1.map((t) => t.name),
    ['look', 'change'],
  );
  assert.deepEqual(
    tools.info('read-only').map((t) => t.name),
    ['look'],
  );
  assert.equal(tools.info('edit')[0]!.inputSchema, edit1[0]!.inputSchema, 'schemas are not rebuilt');
  const set1 = toolSet(tools, 'edit', 1000);
  assert.equal(toolSet(tools, 'edit', 1000), set1, 'the same registry, mode and cap reuse the set');
  assert.equal(set1.chars, JSON.stringify(set1.defs).length);
  assert.notEqual(toolSet(tools, 'edit', 2000), set1, 'another output cap is another set');
  assert.ok(toolDefinitions(tools, 'edit', 1000).some((d) => d.name === 'read_tool_output'));

  tools.register(tool('more', z.object({ n: z.number() })));
  assert.notEqual(tools.version, v1);
  assert.deepEqual(
    tools.info('edit').map((t) => t.name),
    ['look', 'change', 'more'],
  );
  const set2 = toolSet(tools, 'edit', 1000);
  assert.notEqual(set2, set1);
  assert.deepEqual(
    set2.defs.map((d) => d.name),
    ['look', 'change', 'more', 'read_tool_output'],
  );
  assert.ok(set2.chars > set1.chars);
  // A caller that changes the array it got does not change the next caller's.
  const mine = tools.info('edit');
  mine.pop();
  assert.equal(tools.info('edit').length, 3);
  await core.dispose();
});

test('settings are parsed again only when the stored text changed, and every caller gets its own copy', async () => {
  const core = testCore();
  const a = core.settings.get();
  a.agent.maxSteps = 999;
  assert.notEqual(core.settings.get().agent.maxSteps, 999, 'changing a copy changes nothing');
  core.settings.update({ agent: { maxSteps: 7 } }, person);
  assert.equal(core.settings.get().agent.maxSteps, 7);
  // Another process writing the database directly is seen at once.
  const stored = JSON.parse(
    (core.db.prepare("SELECT value FROM settings WHERE key = 'main'").get() as { value: string }).value,
  ) as { agent: { maxSteps: number } };
  stored.agent.maxSteps = 11;
  core.db.prepare("UPDATE settings SET value = ? WHERE key = 'main'").run(JSON.stringify(stored));
  assert.equal(core.settings.get().agent.maxSteps, 11);
  core.db.prepare("UPDATE settings SET value = ? WHERE key = 'main'").run('{"agent":{"maxSteps":"many"}}');
  assert.equal(
    core.settings.get().agent.maxSteps,
    60,
    'an invalid stored value still falls back to defaults',
  );
  await core.dispose();
});

test('the step gate lets a bounded number of waiters on per pass of the event loop, in order', async () => {
  const gate = new StepGate(2);
  const order: number[] = [];
  const all = [0, 1, 2, 3, 4].map((i) => gate.wait().then(() => order.push(i)));
  assert.equal(gate.waiting, 5);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1], 'the first pass lets two on');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1, 2, 3]);
  await Promise.all(all);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(gate.waiting, 0);
  assert.throws(() => new StepGate(0));
});

test('a session reuses one model client per provider configuration; a changed key makes a new one', async () => {
  const made: ProviderConfig[] = [];
  const h = await harness({
    deps: {
      createProvider: (config) => {
        made.push(config);
        return createProviderLazy(config);
      },
    },
  });
  try {
    await addScriptedProvider(h, 'anthropic');
    h.server.load({
      fallbacks: [
        { match: { lastToolResult: 'echo: 3' }, text: 'done' },
        { match: { lastToolResult: 'echo: 2' }, toolCalls: [{ name: 'echo', input: { text: '3' } }] },
        { match: { lastToolResult: 'echo: 1' }, toolCalls: [{ name: 'echo', input: { text: '2' } }] },
        { toolCalls: [{ name: 'echo', input: { text: '1' } }] },
      ],
    });
    const run = async () => {
      const s = await h.client().call('agent.sessions.create', { task: 'echo three times' });
      const events = await watchUntil(h, s.id);
      const end = events.at(-1);
      assert.ok(end?.type === 'status' && end.session.status === 'done', JSON.stringify(end));
      assert.equal(end.session.steps, 4);
    };
    await run();
    assert.equal(made.length, 1, 'four turns, one client');
    await run();
    assert.equal(made.length, 1, 'a second session with the same provider reuses it');
    await addScriptedProvider(h, 'anthropic', { id: 'scripted-anthropic' }); // saved again: same config
    await h.client().call('providers.save', {
      id: 'scripted-anthropic',
      kind: 'anthropic',
      label: 'Scripted (anthropic)',
      baseUrl: h.server.anthropicBaseUrl,
      model: 'scripted-model',
      apiKey: 'sk-ant-another-key-0123456789abcdef',
      isDefault: true,
      inputPerMTok: 0,
      outputPerMTok: 0,
    });
    await run();
    assert.equal(made.length, 2, 'a new key is a new client');
    assert.equal(made[1]!.apiKey, 'sk-ant-another-key-0123456789abcdef');
  } finally {
    await h.dispose();
  }
});

test('a transcript is parsed once and followed: rows another process appends, offsets, compaction', async () => {
  const core = testCore();
  const { SessionStore } = await import('../../../src/core/agent/sessions.ts');
  const mine = new SessionStore(core.db, core.clock);
  const other = new SessionStore(core.db, core.clock); // another process on the same database
  const row = mine.insert({
    title: 't',
    mode: 'edit',
    providerId: 'p',
    model: 'm',
    host: null,
    source: null,
    maxSteps: 10,
    maxCostUsd: 1,
    createdBy: person,
    owner: { pid: process.pid, instance: 'i' },
  });
  mine.append(row.id, 'user', [{ type: 'text', text: 'one' }]);
  const first = mine.messages(row.id);
  assert.deepEqual(
    first.map((m) => [m.seq, m.role, m.compacted]),
    [[1, 'user', false]],
  );
  assert.ok(Object.isFrozen(first[0]!.content), 'the kept content cannot be changed by a caller');
  other.append(row.id, 'assistant', [{ type: 'tool_use', id: 'tu1', name: 'echo', input: { text: 'x' } }]);
  other.append(row.id, 'user', [{ type: 'tool_result', toolUseId: 'tu1', content: 'x' }]);
  const second = mine.messages(row.id);
  assert.deepEqual(
    second.map((m) => m.seq),
    [1, 2, 3],
    'rows appended elsewhere are read',
  );
  assert.equal(second[0]!.content, first[0]!.content, 'the first message was not parsed again');
  assert.deepEqual(
    mine.messages(row.id, 1).map((m) => m.seq),
    [2, 3],
  );
  assert.deepEqual(
    other.messages(row.id, 2).map((m) => m.seq),
    [3],
    'a tail read without a kept transcript',
  );
  mine.update(row.id, { compacted_through: 2 });
  assert.deepEqual(
    mine.messages(row.id).map((m) => m.compacted),
    [true, true, false],
    'the compacted mark follows the session row',
  );
  assert.deepEqual(mine.messages(row.id), other.messages(row.id), 'the same transcript either way');
  await core.dispose();
});

test('rule patterns are compiled once and decide as before, an invalid pattern never matching', async () => {
  const { decideRule } = await import('../../../src/core/agent/tools/rules.ts');
  const rules: Rule[] = [
    { tool: 'run_*', args: { command: '^rm ' }, decision: 'deny' },
    { tool: 'x', args: { a: '(' }, decision: 'deny' },
    { tool: 'run_?ommand', decision: 'ask' },
  ];
  const call = (tool: string, args: Record<string, unknown>) =>
    decideRule(rules, { tool, args, mode: 'edit', risk: 'low' }).decision;
  for (let i = 0; i < 3; i++) {
    // The same answers on every call: a kept pattern carries no state from one test to the next.
    assert.equal(call('run_command', { command: 'rm -rf /' }), 'deny');
    assert.equal(call('run_command', { command: 'ls' }), 'ask');
    assert.equal(call('x', { a: '(' }), 'allow', 'the invalid pattern matches nothing');
    assert.equal(call('run_commandx', { command: 'ls' }), 'allow', 'a glob is anchored');
  }
});

test('a stored multi-line secret is found with any line endings on every call (its pattern is kept)', async () => {
  const { findSecrets } = await import('../../../src/core/agent/redact.ts');
  const key = [
    '-----BEGIN TEST KEY-----',
    'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=',
    '-----END TEST KEY-----',
  ].join('\n');
  const known = [{ value: key, kind: 'secret' as const }];
  for (let i = 0; i < 3; i++) {
    const text = `before\r\n${key.replace(/\n/g, '\r\n')}\r\nafter ${i}`;
    const spans = findSecrets(text, known);
    assert.ok(
      spans.some((s) => text.slice(s.start, s.end) === key.replace(/\n/g, '\r\n')),
      `call ${i}: the CRLF copy is found whole`,
    );
  }
});
