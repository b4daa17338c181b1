import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FluidError } from '../../../src/shared/errors.ts';
import { listModels } from '../../../src/core/agent/providers/index.ts';
import type { Message, ModelEvent, ProviderKind } from '../../../src/core/agent/providers/types.ts';
import {
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import { API_KEY, providerFor, request, run, runError, user } from './helpers.ts';

const iterate = <T>(stream: AsyncIterable<T>): AsyncIterator<T> => stream[Symbol.asyncIterator]();

/** Lets pending I/O callbacks and promise continuations run (the fake clock does not move). */
async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

export function assertFluid(err: unknown, code: string): asserts err is FluidError {
  assert.ok(err instanceof FluidError, `expected a FluidError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.ok(!err.message.includes(API_KEY), 'the API key must never appear in an error');
  assert.ok(!JSON.stringify(err.data ?? null).includes(API_KEY));
}

/** The behaviour every provider kind must show against the scripted server (one server per suite). */
export function providerSuite(kind: ProviderKind): void {
  let server: ScriptedModelServer;
  before(async () => {
    server = await startScriptedModelServer();
  });
  after(async () => {
    await server.close();
  });

  describe(`${kind} provider against the scripted server`, () => {
    beforeEach(() => server.reset());

    test('streams text in several deltas, then usage and done', async () => {
      server.load({ steps: [{ text: 'Hello from the scripted model — über ✓ 🌍', chunkSize: 4 }] });
      const r = await run(providerFor(server, kind), request([user('hi')]));
      assert.equal(r.text, 'Hello from the scripted model — über ✓ 🌍');
      assert.ok(r.events.filter((e) => e.type === 'text_delta').length > 5);
      assert.equal(r.done.stopReason, 'end_turn');
      assert.deepEqual(r.done.message, {
        role: 'assistant',
        content: [{ type: 'text', text: 'Hello from the scripted model — über ✓ 🌍' }],
      });
      assert.deepEqual(r.events.map((e) => e.type).slice(-2), ['usage', 'done']);
      const rec = server.requests[0]!;
      assert.equal(rec.path, kind === 'anthropic' ? '/v1/messages' : '/v1/chat/completions');
      // This SDK release sends the Anthropic key as a bearer token; the server accepts x-api-key too.
      assert.ok(rec.auth === 'bearer' || rec.auth === 'x-api-key');
      assert.equal(rec.stream, true);
      assert.ok(!JSON.stringify(rec.headers).includes(API_KEY), 'recorded headers carry no credentials');
      const body = rec.body as Record<string, unknown>;
      assert.equal(body.model, 'scripted-model');
      if (kind === 'openai') {
        assert.deepEqual(body.stream_options, { include_usage: true });
        assert.equal(body.max_tokens, 1024, 'a non-OpenAI host gets max_tokens');
      } else {
        assert.equal(body.max_tokens, 1024);
        assert.deepEqual(
          (body.system as Array<{ text: string }>)[0]!.text,
          'You are Fluid, an infrastructure agent.',
        );
      }
    });

    test('tool-call round trip: tool_use → tool_result → text', async () => {
      server.load({
        name: 'nginx',
        steps: [
          {
            id: 'check',
            match: { lastUserText: 'nginx', turn: 'user', tools: ['run_command'] },
            text: 'Let me check the service.',
            toolCalls: [
              { name: 'run_command', input: { sandbox_id: 'sbx-1', command: 'systemctl is-active nginx' } },
            ],
          },
          {
            id: 'answer',
            match: { toolResult: { tool: 'run_command', content: { regex: '^(?<state>active|inactive)$' } } },
            text: 'nginx is {{state}}.',
          },
        ],
      });
      const provider = providerFor(server, kind);
      const history: Message[] = [user('Is nginx up on web1?')];
      const first = await run(provider, request(history));
      assert.equal(first.done.stopReason, 'tool_use');
      assert.equal(first.toolUses.length, 1);
      const call = first.toolUses[0]!;
      assert.equal(call.name, 'run_command');
      assert.deepEqual(call.input, { sandbox_id: 'sbx-1', command: 'systemctl is-active nginx' });
      assert.match(call.id, kind === 'anthropic' ? /^toolu_01[A-Za-z0-9]{22}$/ : /^call_[A-Za-z0-9]{24}$/);
      assert.deepEqual(first.done.message.content, [
        { type: 'text', text: 'Let me check the service.' },
        { type: 'tool_use', id: call.id, name: 'run_command', input: call.input },
      ]);

      history.push(first.done.message, {
        role: 'user',
        content: [{ type: 'tool_result', toolUseId: call.id, content: 'active' }],
      });
      const second = await run(provider, request(history));
      assert.equal(second.text, 'nginx is active.');
      assert.equal(second.done.stopReason, 'end_turn');
      assert.deepEqual(
        server.requests.map((r) => r.step),
        ['step 1 "check"', 'step 2 "answer"'],
      );

      // What went over the wire for the tool result.
      const body = server.requests[1]!.body as { messages: Array<Record<string, unknown>> };
      if (kind === 'anthropic') {
        assert.deepEqual(body.messages[1]!.content, [
          { type: 'text', text: 'Let me check the service.' },
          { type: 'tool_use', id: call.id, name: 'run_command', input: call.input },
        ]);
        const last = body.messages[2]!.content as Array<Record<string, unknown>>;
        assert.equal(last[0]!.type, 'tool_result');
        assert.equal(last[0]!.tool_use_id, call.id);
        assert.equal(last[0]!.content, 'active');
      } else {
        const assistant = body.messages[2]!;
        assert.equal(assistant.role, 'assistant');
        assert.deepEqual(assistant.tool_calls, [
          {
            id: call.id,
            type: 'function',
            function: { name: 'run_command', arguments: JSON.stringify(call.input) },
          },
        ]);
        assert.deepEqual(body.messages[3], { role: 'tool', tool_call_id: call.id, content: 'active' });
      }
    });

    test('usage accounting: input (cache reads included), output, cache reads', async () => {
      server.load({
        steps: [{ text: 'ok', usage: { inputTokens: 1200, outputTokens: 34, cacheReadTokens: 1000 } }],
      });
      const r = await run(providerFor(server, kind), request([user('hi')]));
      assert.deepEqual(r.usage, {
        type: 'usage',
        inputTokens: 1200,
        outputTokens: 34,
        cacheReadTokens: 1000,
      });
      if (kind === 'anthropic') {
        server.load({
          steps: [{ text: 'ok', usage: { inputTokens: 500, outputTokens: 3, cacheWriteTokens: 400 } }],
        });
        const w = await run(providerFor(server, kind), request([user('hi')]));
        assert.deepEqual(w.usage, {
          type: 'usage',
          inputTokens: 500,
          outputTokens: 3,
          cacheWriteTokens: 400,
        });
      }
    });

    test('429 with retry-after is retried once the announced delay has passed (fake clock)', async (t) => {
      server.load({
        steps: [
          { error: { status: 429, headers: { 'retry-after': '1' } } },
          { text: 'after the rate limit' },
        ],
      });
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const it = iterate(providerFor(server, kind).stream(request([user('hi')])));
      const first = await it.next();
      assert.deepEqual(first.value, {
        type: 'retry',
        attempt: 1,
        maxRetries: 3,
        delayMs: 1000,
        reason: 'rate limited (429)',
        status: 429,
      });
      const rest = (async () => {
        const events: ModelEvent[] = [];
        for (let r = await it.next(); !r.done; r = await it.next()) events.push(r.value);
        return events;
      })();
      await turns();
      t.mock.timers.tick(999);
      await turns();
      assert.equal(server.requests.length, 1, 'no second request before the delay has passed');
      t.mock.timers.tick(1);
      const events = await rest;
      assert.equal(
        events.map((e) => (e.type === 'text_delta' ? e.text : '')).join(''),
        'after the rate limit',
      );
      assert.equal(events.filter((e) => e.type === 'retry').length, 0);
      assert.equal(server.requests.length, 2);
    });

    test('529 (overloaded) then 500 then success, each retry announced', async () => {
      server.load({
        steps: [{ error: { status: 529 } }, { error: { status: 500 } }, { text: 'third time lucky' }],
      });
      const r = await run(providerFor(server, kind), request([user('hi')]));
      assert.equal(r.text, 'third time lucky');
      assert.deepEqual(
        r.retries.map((e) => [e.attempt, e.status, e.reason]),
        [
          [1, 529, 'overloaded (529)'],
          [2, 500, 'server error (500)'],
        ],
      );
      for (const e of r.retries) assert.ok(e.delayMs >= 2 && e.delayMs <= 20, `backoff ${e.delayMs}`);
      assert.equal(server.requests.length, 3);
    });

    test('gives up after maxRetries with UNAVAILABLE naming the status', async () => {
      server.load({ steps: [{ error: { status: 503 }, times: 'forever' }] });
      const events: ModelEvent[] = [];
      const err = await runError(providerFor(server, kind, { maxRetries: 2 }), request([user('hi')]), events);
      assertFluid(err, 'UNAVAILABLE');
      assert.match(err.message, /after 3 attempts/);
      assert.match(err.message, /503/);
      assert.match(err.message, /try again in a few minutes/i);
      assert.deepEqual((err.data as { status: number; attempts: number }).status, 503);
      assert.equal((err.data as { attempts: number }).attempts, 3);
      assert.equal(events.filter((e) => e.type === 'retry').length, 2);
      assert.equal(server.requests.length, 3);
    });

    test('a rejected key is AUTH_FAILED at once, without retries and without the key', async () => {
      server.load({ auth: { apiKey: 'the-right-key' }, steps: [{ text: 'never' }] });
      const err = await runError(providerFor(server, kind), request([user('hi')]));
      assertFluid(err, 'AUTH_FAILED');
      assert.match(err.message, /Settings → Providers/);
      assert.equal(server.requests.length, 1);
    });

    test('400 is VALIDATION carrying the provider message', async () => {
      server.load({
        steps: [{ error: { status: 400, message: 'max_tokens: 99999999 > 64000, the maximum' } }],
      });
      const err = await runError(providerFor(server, kind), request([user('hi')]));
      assertFluid(err, 'VALIDATION');
      assert.match(err.message, /max_tokens: 99999999 > 64000/);
      assert.equal(server.requests.length, 1);
    });

    test('a context overflow 400 is flagged for compaction', async () => {
      server.load({
        steps: [{ error: { status: 400, message: 'prompt is too long: 210000 tokens > 200000 maximum' } }],
      });
      const err = await runError(providerFor(server, kind), request([user('hi')]));
      assertFluid(err, 'VALIDATION');
      assert.equal((err.data as { contextOverflow?: boolean }).contextOverflow, true);
    });

    test('cancel mid-stream: CANCELLED without waiting for more data, and the connection is closed', async (t) => {
      // under a fake clock the server sends its next chunk only when the test advances the clock:
      // the cancel must complete without that
      t.mock.timers.enable({ apis: ['setTimeout'] });
      server.load({ steps: [{ text: 'word '.repeat(200), chunkSize: 5, chunkDelayMs: 40 }] });
      const ctl = new AbortController();
      const events: ModelEvent[] = [];
      const it = iterate(providerFor(server, kind).stream(request([user('hi')], { signal: ctl.signal })));
      while (events.filter((e) => e.type === 'text_delta').length < 3) {
        const next = it.next();
        // release server chunks until the provider yields its next event
        let settled = false;
        void next.finally(() => (settled = true));
        while (!settled) {
          t.mock.timers.tick(40);
          await turns();
        }
        const r = await next;
        assert.ok(!r.done, 'the stream ended before the cancel');
        events.push(r.value);
      }
      ctl.abort();
      const err = await it.next().then(
        () => null,
        (e: unknown) => e,
      );
      assertFluid(err, 'CANCELLED');
      await server.waitFor((s) => s.requests[0]?.outcome === 'client_closed');
      assert.equal(server.requests.length, 1, 'no retry after a cancel');
    });

    test('cancel during a retry wait is CANCELLED at once (fake clock: the 30 s wait never passes)', async (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      server.load({
        steps: [{ error: { status: 429, headers: { 'retry-after': '30' } } }, { text: 'late' }],
      });
      const ctl = new AbortController();
      const it = iterate(providerFor(server, kind).stream(request([user('hi')], { signal: ctl.signal })));
      const first = await it.next();
      assert.equal(first.value?.type, 'retry');
      const waiting = it.next(); // the provider sleeps on the fake clock
      await turns();
      ctl.abort();
      const err = await waiting.then(
        () => null,
        (e: unknown) => e,
      );
      assertFluid(err, 'CANCELLED');
      assert.equal(server.requests.length, 1);
    });

    test('a retry-after beyond the limit fails at once with UNAVAILABLE', async () => {
      server.load({ steps: [{ error: { status: 429, headers: { 'retry-after': '3600' } } }] });
      const err = await runError(providerFor(server, kind), request([user('hi')]));
      assertFluid(err, 'UNAVAILABLE');
      assert.match(err.message, /asks to wait 3600 s/);
    });

    test('a scenario mismatch comes back as a readable VALIDATION error', async () => {
      server.load({
        name: 'deploy',
        steps: [{ id: 'deploy', match: { lastUserText: 'deploy the app' }, text: 'deploying' }],
      });
      const err = await runError(providerFor(server, kind), request([user('hello there')]));
      assertFluid(err, 'VALIDATION');
      assert.match(err.message, /request #1 .* matched no step/);
      assert.match(
        err.message,
        /step 1 "deploy": lastUserText should contain "deploy the app", got "hello there"/,
      );
      assert.equal(server.mismatches.length, 1);
    });

    test('tool arguments split in 3-code-point chunks (unicode, escapes) are assembled exactly', async () => {
      const input = {
        path: '/etc/motd',
        content: `Grüße 🌍 — "quoted" \\ back\nslash\ttab \u0000 ${'日本語'.repeat(20)} 🚀`,
        nested: { list: [1, 2.5, -3, true, null], ключ: 'значение', emoji: '👩‍👩‍👧', empty: {} },
      };
      server.load({
        steps: [{ toolCalls: [{ name: 'write_file', input }, { name: 'list_vms' }], chunkSize: 3 }],
      });
      const r = await run(providerFor(server, kind), request([user('write it')]));
      assert.equal(r.toolUses.length, 2);
      assert.deepEqual(r.toolUses[0]!.input, input);
      assert.equal(r.toolUses[1]!.name, 'list_vms');
      assert.deepEqual(r.toolUses[1]!.input, {});
      assert.equal(r.done.stopReason, 'tool_use');
    });

    test('a 300 kB tool argument in 1 kB chunks is assembled exactly', async () => {
      const big = Array.from(
        { length: 4000 },
        (_, i) => `line ${i}: ${'é✓"\\'.repeat(4)} ${'x'.repeat(60)}`,
      ).join('\n');
      const input = { sandbox_id: 'sbx-1', command: `cat > /tmp/big <<'EOF'\n${big}\nEOF` };
      server.load({ steps: [{ toolCalls: [{ name: 'run_command', input }], chunkSize: 1021 }] });
      const r = await run(providerFor(server, kind), request([user('write it')]));
      assert.ok(JSON.stringify(input).length > 300_000);
      assert.deepEqual(r.toolUses[0]!.input, input);
    });

    test('a connection dropped mid-stream is retried; the partial text is marked void', async () => {
      server.load({
        steps: [
          { text: 'this answer breaks off', chunkSize: 3, disconnectAfterChunks: 4 },
          { text: 'complete answer' },
        ],
      });
      const r = await run(providerFor(server, kind), request([user('hi')]));
      assert.equal(r.retries.length, 1);
      assert.equal(r.retries[0]!.discardPartial, true);
      assert.equal(r.retries[0]!.reason, 'connection reset');
      assert.deepEqual(r.done.message.content, [{ type: 'text', text: 'complete answer' }]);
      assert.equal(server.requests[0]!.outcome, 'disconnected');
    });

    test('an error event inside the stream (overloaded) is retried', async () => {
      server.load({
        steps: [{ text: 'xyz', streamError: { afterChunks: 1, type: 'overloaded_error' } }, { text: 'ok' }],
      });
      const r = await run(providerFor(server, kind), request([user('hi')]));
      assert.equal(r.retries.length, 1);
      assert.equal(r.text.endsWith('ok'), true);
      assert.deepEqual(r.done.message.content, [{ type: 'text', text: 'ok' }]);
    });

    test('no data within timeoutMs: retried, then TIMEOUT (fake clock: the server never answers)', async (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      // the server would answer after 1.5 s of the fake clock, which the test never lets pass
      server.load({ steps: [{ text: 'slow', delayMs: 1500, times: 'forever' }] });
      const it = iterate(
        providerFor(server, kind, { timeoutMs: 150, maxRetries: 1, retryBaseDelayMs: 10 }).stream(
          request([user('hi')]),
        ),
      );
      const first = it.next();
      await server.waitFor((s) => s.requests.length === 1);
      t.mock.timers.tick(150); // the idle timeout of attempt 1
      const retry = await first;
      assert.equal(retry.value?.type, 'retry');
      assert.equal(retry.value?.type === 'retry' && retry.value.reason, 'timed out');
      const second = it.next();
      await turns();
      t.mock.timers.tick(10); // the backoff
      await server.waitFor((s) => s.requests.length === 2);
      t.mock.timers.tick(150); // the idle timeout of attempt 2
      const err = await second.then(
        () => null,
        (e: unknown) => e,
      );
      assertFluid(err, 'TIMEOUT');
      assert.equal(server.requests.length, 2);
    });

    test('listModels reads GET /v1/models and maps a bad key to AUTH_FAILED', async () => {
      server.load({ models: ['model-a', 'model-b'], steps: [] });
      const base = kind === 'anthropic' ? server.anthropicBaseUrl : server.openaiBaseUrl;
      assert.deepEqual(await listModels({ kind, baseUrl: base, apiKey: API_KEY }), ['model-a', 'model-b']);
      server.load({ auth: { apiKey: 'other' }, steps: [] });
      await assert.rejects(listModels({ kind, baseUrl: base, apiKey: API_KEY }), (e: unknown) => {
        assertFluid(e, 'AUTH_FAILED');
        return true;
      });
    });
  });
}
