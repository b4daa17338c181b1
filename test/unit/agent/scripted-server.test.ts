import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import {
  ScenarioError,
  loadScenarioFile,
  parseScenario,
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import { viewOf } from '../../../src/core/agent/scripted/scenario.ts';

let server: ScriptedModelServer;
before(async () => {
  server = await startScriptedModelServer();
});
after(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const KEY = 'sk-scripted-test-key';
const anthropic = () => new Anthropic({ apiKey: KEY, baseURL: server.anthropicBaseUrl, maxRetries: 0 });
const openai = () => new OpenAI({ apiKey: KEY, baseURL: server.openaiBaseUrl, maxRetries: 0 });

const TOOL_STEP = {
  text: 'Checking.',
  toolCalls: [
    { name: 'mcp__fluid__run_command', input: { sandbox_id: 'sbx-1', command: 'uptime', note: 'ünï ✓' } },
  ],
  usage: { inputTokens: 321, outputTokens: 12 },
};

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('wire formats, checked by the official SDKs', () => {
  test('Anthropic non-streaming: a faithful Message', async () => {
    server.load({ steps: [TOOL_STEP] });
    const msg = await anthropic().messages.create({
      model: 'claude-test',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.match(msg.id, /^msg_01[A-Za-z0-9]{22}$/);
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'claude-test', 'the model is echoed');
    assert.equal(msg.stop_reason, 'tool_use');
    assert.equal(msg.stop_sequence, null);
    assert.deepEqual(msg.content[0], { type: 'text', text: 'Checking.' });
    const tu = msg.content[1];
    assert.ok(tu && tu.type === 'tool_use');
    assert.match(tu.id, /^toolu_01[A-Za-z0-9]{22}$/);
    assert.equal(tu.name, 'mcp__fluid__run_command');
    assert.deepEqual(tu.input, TOOL_STEP.toolCalls[0]!.input);
    assert.equal(msg.usage.input_tokens, 321);
    assert.equal(msg.usage.output_tokens, 12);
    assert.equal(msg.usage.cache_read_input_tokens, 0);
    assert.equal(msg.usage.cache_creation_input_tokens, 0);
  });

  test('Anthropic streaming: the SDK accumulates the event sequence into the same Message', async () => {
    server.load({ steps: [{ ...TOOL_STEP, chunkSize: 2 }] });
    const stream = anthropic().messages.stream({
      model: 'claude-test',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const seen: string[] = [];
    stream.on('streamEvent', (e) => seen.push(e.type));
    const msg = await stream.finalMessage();
    assert.equal(msg.stop_reason, 'tool_use');
    const text = msg.content[0];
    assert.ok(text && text.type === 'text');
    assert.equal(text.text, 'Checking.');
    const tu = msg.content[1];
    assert.ok(tu && tu.type === 'tool_use');
    assert.deepEqual(tu.input, TOOL_STEP.toolCalls[0]!.input);
    assert.equal(msg.usage.output_tokens, 12);
    assert.equal(seen[0], 'message_start');
    assert.deepEqual(seen.slice(-2), ['message_delta', 'message_stop']);
    assert.ok(
      seen.filter((t) => t === 'content_block_delta').length > 10,
      'arguments arrive in several chunks',
    );
    assert.equal(server.requests[0]!.stream, true);
  });

  test('OpenAI non-streaming: a faithful ChatCompletion', async () => {
    server.load({ steps: [TOOL_STEP] });
    const c = await openai().chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, 'gpt-test');
    const choice = c.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, 'Checking.');
    const call = choice.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_STEP.toolCalls[0]!.input);
    assert.deepEqual(
      [c.usage?.prompt_tokens, c.usage?.completion_tokens, c.usage?.total_tokens],
      [321, 12, 333],
    );
  });

  test('OpenAI streaming: the SDK assembles chunks, tool-call deltas and the usage chunk', async () => {
    server.load({ steps: [{ ...TOOL_STEP, chunkSize: 2 }] });
    const stream = openai().chat.completions.stream({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'hi' }],
      stream_options: { include_usage: true },
    });
    let chunks = 0;
    stream.on('chunk', () => chunks++);
    const c = await stream.finalChatCompletion();
    assert.equal(c.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(c.choices[0]!.message.content, 'Checking.');
    const call = c.choices[0]!.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_STEP.toolCalls[0]!.input);
    assert.equal(c.usage?.prompt_tokens, 321);
    assert.ok(chunks > 10);
  });

  test('GET /v1/models serves both SDKs', async () => {
    server.load({ models: ['alpha', 'beta'], steps: [] });
    const a: string[] = [];
    for await (const m of anthropic().models.list()) a.push(m.id);
    const o: string[] = [];
    for await (const m of openai().models.list()) o.push(m.id);
    assert.deepEqual(a, ['alpha', 'beta']);
    assert.deepEqual(o, ['alpha', 'beta']);
    assert.equal((await anthropic().models.retrieve('beta')).id, 'beta');
  });

  test('raw HTTP: ?beta=true is routed on the pathname; x-api-key is accepted; SSE framing', async () => {
    server.load({ steps: [{ text: 'hey' }] });
    const res = await fetch(`${server.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'm',
        max_tokens: 5,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await res.text();
    assert.match(text, /^event: message_start\ndata: \{"type":"message_start"/);
    assert.match(text, /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/);
    const rec = server.requests[0]!;
    assert.equal(rec.path, '/v1/messages');
    assert.equal(rec.query, '?beta=true');
    assert.equal(rec.auth, 'x-api-key');
    assert.equal(rec.headers['x-api-key'], undefined, 'credentials are not recorded');
    assert.equal(rec.headers['anthropic-version'], '2023-06-01');
  });

  test('raw HTTP: OpenAI SSE ends with [DONE] and carries a usage chunk only when asked', async () => {
    server.load({ steps: [{ text: 'a' }, { text: 'b' }] });
    const call = (body: Record<string, unknown>) =>
      fetch(`${server.openaiBaseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({
          model: 'm',
          stream: true,
          messages: [{ role: 'user', content: 'hi' }],
          ...body,
        }),
      }).then((r) => r.text());
    const withUsage = await call({ stream_options: { include_usage: true } });
    const without = await call({});
    assert.match(withUsage, /data: \[DONE\]\n\n$/);
    assert.match(withUsage, /"choices":\[\],"usage":\{"prompt_tokens"/);
    assert.doesNotMatch(without, /"usage"/);
    assert.match(without, /data: \[DONE\]\n\n$/);
  });

  test('missing credentials are refused with 401 in the API’s error format', async () => {
    server.load({ steps: [{ text: 'never' }] });
    const a = await post('/v1/messages', { model: 'm', max_tokens: 5, messages: [] });
    assert.equal(a.status, 401);
    assert.equal(a.body.type, 'error');
    assert.equal((a.body.error as { type: string }).type, 'authentication_error');
    const o = await post('/v1/chat/completions', { model: 'm', messages: [] }, { 'x-api-key': KEY });
    assert.equal(o.status, 401, 'OpenAI wants a bearer token');
    assert.match((o.body.error as { message: string }).message, /Authorization: Bearer/);
    assert.equal(server.answered.length, 0);
  });

  test('count_tokens answers an estimate', async () => {
    const r = await post(
      '/v1/messages/count_tokens',
      { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(400) }] },
      { 'x-api-key': KEY },
    );
    assert.equal(r.status, 200);
    assert.ok((r.body.input_tokens as number) > 100);
  });
});

describe('scenario semantics', () => {
  const ask = async (text: string, extra: Record<string, unknown> = {}) => {
    const r = await post(
      '/v1/messages',
      { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: text }], ...extra },
      { 'x-api-key': KEY },
    );
    const content =
      (r.body.content as Array<{ type: string; text?: string; input?: unknown }> | undefined) ?? [];
    return { status: r.status, text: content.find((c) => c.type === 'text')?.text, body: r.body, content };
  };

  test('steps in order; times; optional steps are skipped; fallbacks are never consumed', async () => {
    server.load({
      name: 'order',
      steps: [
        { match: { lastUserText: 'one' }, text: 'first', times: 2 },
        { id: 'maybe', optional: true, match: { lastUserText: 'optional' }, text: 'optional answered' },
        { match: { lastUserText: 'two' }, text: 'second' },
      ],
      fallbacks: [{ id: 'title', match: { system: 'generate a title' }, text: 'A title' }],
    });
    assert.equal((await ask('one')).text, 'first');
    assert.equal((await ask('ONE again')).text, 'first', 'contains is case-insensitive');
    assert.equal((await ask('x', { system: 'Please generate a title' })).text, 'A title');
    assert.equal((await ask('two')).text, 'second', 'the optional step is skipped');
    const over = await ask('three');
    assert.equal(over.status, 400);
    assert.match(
      (over.body.error as { message: string }).message,
      /scenario "order" has no steps left \(all 3 used\)\. No fallback \(of 1\) matched\./,
    );
    assert.deepEqual(
      server.requests.map((r) => r.step),
      ['step 1', 'step 1', 'fallback "title"', 'step 3', null],
    );
    assert.equal(server.state().remaining, 0);
  });

  test('named regex groups become variables for later replies and tool inputs', async () => {
    server.load({
      steps: [
        {
          match: { lastUserText: { regex: 'clone (?<vm>[\\w-]+)' } },
          toolCalls: [{ name: 'create_sandbox', input: { source_vm: '{{vm}}' } }],
        },
        {
          match: { toolResult: { tool: 'create_sandbox', content: { regex: '(?<sbx>sbx-[0-9a-f]{8})' } } },
          toolCalls: [{ name: 'run_command', input: { sandbox_id: '{{sbx}}', command: 'hostname' } }],
        },
        { match: { turn: 'tool_result' }, text: '{{vm}} cloned into {{sbx}}; it says {{lastToolResult}}' },
      ],
    });
    const first = await ask('please clone web-01 now');
    const tu1 = first.content[0] as unknown as { id: string; input: unknown };
    assert.deepEqual(tu1.input, { source_vm: 'web-01' });
    const msgs: unknown[] = [
      { role: 'user', content: 'please clone web-01 now' },
      { role: 'assistant', content: first.content },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: tu1.id, content: 'created sbx-0a1b2c3d' }],
      },
    ];
    const second = await post(
      '/v1/messages',
      { model: 'm', max_tokens: 5, messages: msgs },
      { 'x-api-key': KEY },
    );
    const tu2 = (second.body.content as Array<{ id: string; input: unknown }>)[0]!;
    assert.deepEqual(tu2.input, { sandbox_id: 'sbx-0a1b2c3d', command: 'hostname' });
    msgs.push(
      { role: 'assistant', content: second.body.content },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: tu2.id, content: [{ type: 'text', text: 'web-01-clone' }] },
        ],
      },
    );
    const third = await post(
      '/v1/messages',
      { model: 'm', max_tokens: 5, messages: msgs },
      { 'x-api-key': KEY },
    );
    assert.equal(
      (third.body.content as Array<{ text: string }>)[0]!.text,
      'web-01 cloned into sbx-0a1b2c3d; it says web-01-clone',
    );
    assert.deepEqual(server.vars, { vm: 'web-01', sbx: 'sbx-0a1b2c3d' });
  });

  test('a mismatch explains the expected step and what arrived', async () => {
    server.load({
      steps: [
        {
          id: 'needs-tools',
          match: {
            tools: ['run_command'],
            system: 'Fluid',
            toolResult: { tool: 'list_vms', isError: false },
          },
          text: 'x',
        },
      ],
    });
    const r = await ask('hello', { system: 'You are Fluid' });
    assert.equal(r.status, 400);
    const message = (r.body.error as { message: string }).message;
    assert.match(
      message,
      /request #1 \(POST \/v1\/messages\) matched no step: expected step 1 "needs-tools"/,
    );
    assert.match(
      message,
      /a tool result for tool list_vms with isError=false was expected, got no tool results/,
    );
    assert.match(message, /tools \["run_command"\] should be offered, got \[\]/);
    assert.match(message, /The request: api=anthropic, model="m", turn=user, lastUserText="hello"/);
    assert.equal(server.mismatches[0]!.seq, 1);
    assert.equal(server.requests[0]!.error, message);
  });

  test('both wire formats reduce to the same request view', () => {
    const a = viewOf('anthropic', {
      model: 'm',
      system: [{ type: 'text', text: 'sys' }],
      tools: [{ name: 't', input_schema: {} }],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'c1', name: 't', input: { a: 1 } }] },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 'c1', content: 'out', is_error: true }],
        },
      ],
    });
    const o = viewOf('openai', {
      model: 'm',
      tools: [{ type: 'function', function: { name: 't', parameters: {} } }],
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: [{ type: 'text', text: 'go' }] },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 't', arguments: '{"a":1}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'out' },
      ],
    });
    for (const v of [a, o]) {
      assert.equal(v.system, 'sys');
      assert.deepEqual(v.toolNames, ['t']);
      assert.equal(v.lastUserText, 'go');
      assert.equal(v.turn, 'tool_result');
      assert.equal(v.toolResults[0]!.tool, 't');
      assert.equal(v.toolResults[0]!.content, 'out');
    }
    assert.equal(a.toolResults[0]!.isError, true);
  });

  test('invalid scenarios are refused with the offending field named', () => {
    assert.throws(
      () => parseScenario({ steps: [{ match: { lastUsertext: 'typo' } }] }),
      (e: unknown) => e instanceof ScenarioError && /lastUsertext/.test(e.message),
    );
    assert.throws(
      () => parseScenario({ steps: [{ error: { status: 200 } }] }),
      (e: unknown) => e instanceof ScenarioError && /status/.test(e.message),
    );
    assert.throws(
      () => parseScenario({ steps: [{ match: { lastUserText: { regex: '(' } } }] }),
      (e: unknown) => e instanceof ScenarioError && /step 1/.test(e.message),
    );
  });
});

describe('out-of-process use', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-scripted-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const YAML = `# A scenario file as the CLI and e2e tests use it.
name: yaml-file
steps:
  - id: greet
    match:
      lastUserText: hello
    text: "Hello back 👋"
  - id: rate-limited
    error: { status: 429, headers: { retry-after: "0" } }
  - text: after the rate limit
`;

  test('a YAML scenario file loads', () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, YAML);
    const s = loadScenarioFile(file);
    assert.equal(s.name, 'yaml-file');
    assert.equal(s.steps.length, 3);
    assert.equal(s.steps[1]!.error?.headers?.['retry-after'], '0');
  });

  test('admin endpoints: load a scenario over HTTP, inspect requests and state', async () => {
    const load = await fetch(`${server.url}/_scripted/scenario`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: YAML,
    });
    assert.deepEqual(await load.json(), { ok: true, name: 'yaml-file', steps: 3 });
    const bad = await fetch(`${server.url}/_scripted/scenario`, {
      method: 'POST',
      body: 'steps: [{ txet: x }]',
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /txet/);

    const c = await openai().chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'hello' }],
    });
    assert.equal(c.choices[0]!.message.content, 'Hello back 👋');
    const { requests } = (await (await fetch(`${server.url}/_scripted/requests`)).json()) as {
      requests: Array<{ path: string; step: string; auth: string; headers: Record<string, string> }>;
    };
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.step, 'step 1 "greet"');
    assert.equal(requests[0]!.auth, 'bearer');
    assert.equal(requests[0]!.headers.authorization, undefined);
    const state = (await (await fetch(`${server.url}/_scripted/state`)).json()) as Record<string, unknown>;
    assert.equal(state.name, 'yaml-file');
    assert.equal(state.current, 1);
    await fetch(`${server.url}/_scripted/reset`, { method: 'POST' });
    assert.equal(server.requests.length, 0);
  });

  test('scripts/scripted-model.ts serves a scenario file until killed', async () => {
    const file = join(dir, 'cli.yaml');
    writeFileSync(file, YAML);
    const child = spawn(process.execPath, ['scripts/scripted-model.ts', '--scenario', file, '--port', '0'], {
      cwd: join(import.meta.dirname, '../../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout });
        rl.once('line', resolve);
        child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
        setTimeout(() => reject(new Error('no output within 10 s')), 10_000).unref();
      });
      const info = JSON.parse(line) as {
        url: string;
        port: number;
        anthropicBaseUrl: string;
        openaiBaseUrl: string;
      };
      assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(info.url, `http://127.0.0.1:${info.port}`);
      assert.equal(info.openaiBaseUrl, `${info.url}/v1`);
      const client = new Anthropic({ apiKey: KEY, baseURL: info.anthropicBaseUrl, maxRetries: 0 });
      const msg = await client.messages.create({
        model: 'm',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'hello' }],
      });
      assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello back 👋' }]);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    assert.equal(child.exitCode, 0);
  });
});
