import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FluidError } from '../../../src/shared/errors.ts';
import { buildAnthropicParams, toAnthropicMessages } from '../../../src/core/agent/providers/anthropic.ts';
import {
  buildOpenAIParams,
  foldOpenAIStream,
  openaiStopReason,
  toOpenAIMessages,
} from '../../../src/core/agent/providers/openai.ts';
import {
  backoffDelay,
  classifyError,
  parseRetryAfter,
  retryPolicy,
  runWithRetries,
  type RetryPolicy,
} from '../../../src/core/agent/providers/retry.ts';
import { parseToolInput } from '../../../src/core/agent/providers/json.ts';
import { createProvider, describeProvider, knownModels } from '../../../src/core/agent/providers/index.ts';
import type { Message, ModelEvent } from '../../../src/core/agent/providers/types.ts';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions/completions';

const conversation: Message[] = [
  { role: 'user', content: [{ type: 'text', text: 'Fix nginx' }] },
  {
    role: 'assistant',
    content: [
      { type: 'text', text: 'Checking both.' },
      { type: 'tool_use', id: 'c1', name: 'run_command', input: { command: 'a' } },
      { type: 'tool_use', id: 'c2', name: 'run_command', input: { command: 'b' } },
    ],
  },
  {
    role: 'user',
    content: [
      { type: 'tool_result', toolUseId: 'c1', content: 'ok' },
      { type: 'tool_result', toolUseId: 'c2', content: 'denied', isError: true },
      { type: 'text', text: 'also check the logs' },
    ],
  },
];

describe('message mapping', () => {
  test('to chat format: assistant tool_calls, one tool message per result, then the user text', () => {
    assert.deepEqual(toOpenAIMessages('sys', conversation), [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'Fix nginx' },
      {
        role: 'assistant',
        content: 'Checking both.',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'run_command', arguments: '{"command":"a"}' } },
          { id: 'c2', type: 'function', function: { name: 'run_command', arguments: '{"command":"b"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      { role: 'tool', tool_call_id: 'c2', content: 'ERROR: denied' },
      { role: 'user', content: 'also check the logs' },
    ]);
    const onlyCalls = toOpenAIMessages('', [
      { role: 'assistant', content: [{ type: 'tool_use', id: 'x', name: 'list_vms', input: {} }] },
    ]);
    assert.equal((onlyCalls[0] as { content: unknown }).content, null);
  });

  test('to Messages API: tool_result blocks, is_error, empty text dropped, cache breakpoints', () => {
    const msgs = toAnthropicMessages(
      [...conversation, { role: 'assistant', content: [{ type: 'text', text: '' }] }, conversation[0]!],
      true,
    );
    assert.deepEqual(msgs[2]!.content, [
      { type: 'tool_result', tool_use_id: 'c1', content: 'ok' },
      { type: 'tool_result', tool_use_id: 'c2', content: 'denied', is_error: true },
      { type: 'text', text: 'also check the logs' },
    ]);
    assert.deepEqual(msgs[3]!.content, [{ type: 'text', text: '(empty)' }]);
    assert.deepEqual(msgs[4]!.content, [
      { type: 'text', text: 'Fix nginx', cache_control: { type: 'ephemeral' } },
    ]);

    const params = buildAnthropicParams(
      {
        system: 'sys',
        messages: [conversation[0]!],
        tools: [
          { name: 'a', description: 'A', inputSchema: { type: 'object', properties: {} } },
          { name: 'b', description: 'B', inputSchema: { properties: { x: { type: 'string' } } } },
        ],
        maxTokens: 10,
        temperature: 0.2,
      },
      { model: 'claude-x' },
    );
    assert.deepEqual(params.system, [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }]);
    assert.equal(params.tools?.[0] && 'cache_control' in params.tools[0], false);
    assert.deepEqual(params.tools?.[1], {
      name: 'b',
      description: 'B',
      input_schema: { type: 'object', properties: { x: { type: 'string' } } },
      cache_control: { type: 'ephemeral' },
    });
    assert.equal('temperature' in params, false, 'the Messages API dropped sampling parameters');
    assert.equal(params.model, 'claude-x');
    const noCache = buildAnthropicParams(
      { system: 'sys', messages: [conversation[0]!], tools: [], maxTokens: 10 },
      { model: 'm', promptCaching: false },
    );
    assert.deepEqual(noCache.system, [{ type: 'text', text: 'sys' }]);
    assert.equal(noCache.tools, undefined);
  });

  test('the output limit field follows the host', () => {
    const req = { system: '', messages: conversation.slice(0, 1), tools: [], maxTokens: 77 };
    const official = buildOpenAIParams(req, { model: 'gpt' }) as unknown as Record<string, unknown>;
    assert.equal(official.max_completion_tokens, 77);
    assert.equal(official.max_tokens, undefined);
    const router = buildOpenAIParams(req, {
      model: 'x',
      baseUrl: 'https://openrouter.ai/api/v1',
    }) as unknown as Record<string, unknown>;
    assert.equal(router.max_tokens, 77);
    const forced = buildOpenAIParams(req, {
      model: 'x',
      baseUrl: 'http://localhost:11434/v1',
      maxTokensField: 'max_completion_tokens',
    }) as unknown as Record<string, unknown>;
    assert.equal(forced.max_completion_tokens, 77);
  });
});

describe('OpenAI-compatible quirks', () => {
  async function fold(chunks: Array<Partial<ChatCompletionChunk>>): Promise<ModelEvent[]> {
    async function* gen() {
      for (const c of chunks) yield c as ChatCompletionChunk;
    }
    const out: ModelEvent[] = [];
    for await (const e of foldOpenAIStream(gen())) out.push(e);
    return out;
  }
  const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] as ChatCompletionChunk['choices'],
  });

  test('finish_reason "stop" with tool calls (Ollama) is a tool_use stop', async () => {
    assert.equal(openaiStopReason('stop', true), 'tool_use');
    assert.equal(openaiStopReason('stop', false), 'end_turn');
    assert.equal(openaiStopReason('length', false), 'max_tokens');
    assert.equal(openaiStopReason('content_filter', false), 'refusal');
    const events = await fold([
      choice({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'list_vms', arguments: '{}' } }] }),
      choice({}, 'stop'),
    ]);
    const done = events.at(-1);
    assert.ok(done?.type === 'done');
    assert.equal(done.stopReason, 'tool_use');
    assert.equal(
      events.some((e) => e.type === 'usage'),
      false,
      'no usage event when the server sends none',
    );
  });

  test('repeated names, missing index and invalid JSON arguments', async () => {
    const events = await fold([
      choice({ tool_calls: [{ id: 'a', function: { name: 'run_command', arguments: '{"comm' } }] }),
      choice({ tool_calls: [{ function: { name: 'run_command', arguments: 'and": "ls"}' } }] }),
      choice({ tool_calls: [{ index: 1, id: 'b', function: { name: 'broken', arguments: '{not json' } }] }),
      choice({}, 'tool_calls'),
    ]);
    const uses = events.filter((e) => e.type === 'tool_use');
    assert.deepEqual(uses[0], { type: 'tool_use', id: 'a', name: 'run_command', input: { command: 'ls' } });
    assert.equal(uses[1]!.name, 'broken');
    assert.deepEqual(uses[1]!.input, {});
    assert.match(uses[1]!.parseError ?? '', /not valid JSON/);
  });

  test('a stream without finish_reason is incomplete (retried as an interrupted stream)', async () => {
    await assert.rejects(fold([choice({ content: 'hi' })]), { name: 'IncompleteStreamError' });
  });
});

describe('retry policy pieces', () => {
  const policy: RetryPolicy = { ...retryPolicy({ kind: 'openai', model: 'm', apiKey: '' }) };

  test('defaults', () => {
    assert.deepEqual(policy, {
      maxRetries: 4,
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      maxRetryAfterMs: 60_000,
      timeoutMs: 300_000,
    });
  });

  test('backoff doubles, is jittered between half and full, and is capped', () => {
    assert.equal(
      backoffDelay(1, policy, () => 0),
      500,
    );
    assert.equal(
      backoffDelay(1, policy, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(3, policy, () => 1),
      4000,
    );
    assert.equal(
      backoffDelay(10, policy, () => 1),
      30_000,
    );
    assert.equal(
      backoffDelay(10, policy, () => 0),
      15_000,
    );
  });

  test('retry-after: seconds, HTTP date, and retry-after-ms first', () => {
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': '2' })), 2000);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': '2', 'retry-after-ms': '150' })), 150);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now), 5000);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'soon' })), undefined);
    assert.equal(parseRetryAfter(new Headers()), undefined);
  });

  const label = { name: 'OpenAI', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-live-abcdefghijkl' };
  const apiError = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    Object.assign(new Error(`${status} boom`), { status, error: body, headers: new Headers(headers) });

  test('429 insufficient_quota is not retried', () => {
    const f = classifyError(
      apiError(429, {
        message: 'You exceeded your current quota',
        type: 'insufficient_quota',
        code: 'insufficient_quota',
      }),
      label,
    );
    assert.equal(f.retryable, false);
    assert.equal(f.error.code, 'UNAVAILABLE');
    assert.match(f.error.message, /no quota or credit left/);
  });

  test('x-should-retry overrides the status', () => {
    assert.equal(classifyError(apiError(500, {}, { 'x-should-retry': 'false' }), label).retryable, false);
    assert.equal(classifyError(apiError(409, {}), label).retryable, true);
  });

  test('404 is NOT_FOUND pointing at the model and base URL; the key is scrubbed from messages', () => {
    const f = classifyError(apiError(404, { message: 'model sk-live-abcdefghijkl not found' }), label);
    assert.equal(f.error.code, 'NOT_FOUND');
    assert.match(f.error.message, /Check the model name and the base URL \(https:\/\/api\.openai\.com\/v1\)/);
    assert.ok(!f.error.message.includes('sk-live-abcdefghijkl'));
    assert.match(f.error.message, /\[redacted\]/);
  });

  test('our own FluidErrors pass through untouched', () => {
    const e = new FluidError('VALIDATION', 'bad');
    assert.equal(classifyError(e, label).error, e);
  });

  test('parseToolInput', () => {
    assert.deepEqual(parseToolInput(''), { input: {} });
    assert.deepEqual(parseToolInput(' {"a":1} '), { input: { a: 1 } });
    assert.match(parseToolInput('[1]').error ?? '', /not a JSON object/);
  });
});

describe('configuration helpers', () => {
  test('describeProvider and knownModels', () => {
    const a = describeProvider('anthropic');
    assert.equal(a.defaultBaseUrl, 'https://api.anthropic.com');
    assert.equal(a.apiKeyRequired, true);
    assert.ok(a.knownModels.some((m) => m.recommended));
    const o = describeProvider('openai');
    assert.deepEqual(
      o.presets.map((p) => p.id),
      ['openai', 'openrouter', 'ollama', 'vllm'],
    );
    assert.equal(o.presets.find((p) => p.id === 'ollama')?.apiKeyRequired, false);
    assert.ok(knownModels('openai').length > 0);
    knownModels('openai')[0]!.id = 'mutated';
    assert.notEqual(knownModels('openai')[0]!.id, 'mutated', 'callers get copies');
  });

  test('createProvider validates the kind and the model', () => {
    assert.throws(() => createProvider({ kind: 'gemini' as 'openai', model: 'm', apiKey: '' }), {
      code: 'VALIDATION',
    });
    assert.throws(() => createProvider({ kind: 'openai', model: '', apiKey: '' }), { code: 'VALIDATION' });
    const p = createProvider({ kind: 'anthropic', model: 'claude-x', apiKey: 'k' });
    assert.equal(p.kind, 'anthropic');
    assert.equal(p.model, 'claude-x');
  });
});

describe('errors inside a stream', () => {
  const label = { name: 'OpenRouter', baseUrl: 'https://openrouter.ai/api/v1', apiKey: 'k' };
  const streamError = (error: unknown) =>
    Object.assign(new Error('stream error'), { status: undefined, error });

  test('typed, numeric and unnamed error events', () => {
    const overloaded = classifyError(
      streamError({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }),
      label,
    );
    assert.deepEqual(
      [overloaded.retryable, overloaded.reason, overloaded.status],
      [true, 'overloaded (stream)', 529],
    );
    const numeric = classifyError(streamError({ code: 502, message: 'upstream died' }), label);
    assert.deepEqual([numeric.retryable, numeric.status], [true, 502]);
    const unnamed = classifyError(streamError({ message: 'something' }), label);
    assert.equal(unnamed.retryable, true);
    const invalid = classifyError(
      streamError({ type: 'invalid_request_error', message: 'bad tool schema' }),
      label,
    );
    assert.deepEqual([invalid.retryable, invalid.error.code], [false, 'VALIDATION']);
    const auth = classifyError(streamError({ code: 401, message: 'no auth' }), label);
    assert.deepEqual([auth.retryable, auth.error.code], [false, 'AUTH_FAILED']);
  });
});

describe('runWithRetries on a fake clock', () => {
  const label = { name: 'Test', baseUrl: 'http://127.0.0.1:9', apiKey: 'sk-test-key' };
  const policy: RetryPolicy = {
    maxRetries: 3,
    baseDelayMs: 10,
    maxDelayMs: 100,
    maxRetryAfterMs: 60_000,
    timeoutMs: 5000,
  };
  /** Settles promise continuations; no I/O is involved here, so this is deterministic. */
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  test('the next attempt starts exactly when the announced retry-after has passed', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let attempts = 0;
    const gen = runWithRetries(
      async function* ({ attempt }) {
        attempts++;
        if (attempt === 0)
          throw Object.assign(new Error('429 rate limited'), {
            status: 429,
            headers: new Headers({ 'retry-after': '2' }),
          });
        yield { type: 'text_delta', text: 'second attempt' } satisfies ModelEvent;
      },
      { policy, label },
    );
    const first = await gen.next();
    assert.equal(first.value?.type === 'retry' && first.value.delayMs, 2000);
    const next = gen.next();
    await flush();
    assert.equal(attempts, 1);
    t.mock.timers.tick(1999);
    await flush();
    assert.equal(attempts, 1, 'not before 2000 ms of the clock');
    t.mock.timers.tick(1);
    assert.deepEqual((await next).value, { type: 'text_delta', text: 'second attempt' });
    assert.equal(attempts, 2);
  });

  test('the idle timeout aborts a silent attempt exactly after timeoutMs, then retries', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const aborted: number[] = [];
    const gen = runWithRetries(
      async function* ({ attempt, signal }) {
        if (attempt === 0) {
          await new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted.push(attempt);
              reject(new Error('aborted'));
            }),
          );
        }
        yield { type: 'text_delta', text: 'ok' } satisfies ModelEvent;
      },
      { policy, label },
    );
    const first = gen.next();
    await flush();
    t.mock.timers.tick(4999);
    await flush();
    assert.deepEqual(aborted, [], 'still waiting for data');
    t.mock.timers.tick(1);
    const retry = (await first).value;
    assert.deepEqual(aborted, [0]);
    assert.equal(retry?.type === 'retry' && retry.reason, 'timed out');
  });
});
