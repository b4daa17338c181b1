/**
 * The providers' own HTTP client (providers/http.ts) and the Anthropic provider over it, against
 * real local HTTP servers that misbehave on purpose: a server that answers without streaming, one
 * that closes kept-alive connections, one that never answers, one that sends HTML or echoes the
 * credentials back. (The behaviour shared with every provider kind is in provider-suite.ts.)
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SseParser, JsonHttpClient, HttpStatusError } from '../../../src/core/agent/providers/http.ts';
import { anthropicBody, buildAnthropicParams } from '../../../src/core/agent/providers/anthropic.ts';
import { createProvider } from '../../../src/core/agent/providers/index.ts';
import type { ModelEvent, ToolDefinition } from '../../../src/core/agent/providers/types.ts';
import { API_KEY, TOOLS, request, run, runError, user } from './helpers.ts';
import { assertFluid } from './provider-suite.ts';

interface TestServer {
  url: string;
  requests: Array<{ headers: IncomingMessage['headers']; body: string; socket: Socket }>;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, n: number, body: string) => void,
): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ headers: req.headers, body, socket: req.socket });
      handler(req, res, requests.length, body);
    });
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => r());
      }),
  };
  servers.push(s);
  return s;
}

const anthropic = (url: string, extra: Record<string, unknown> = {}) =>
  createProvider({
    kind: 'anthropic',
    baseUrl: url,
    model: 'claude-test',
    apiKey: API_KEY,
    maxRetries: 2,
    retryBaseDelayMs: 1,
    ...extra,
  });

function sseBody(events: Array<[string, unknown]>): string {
  return events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
}

const okStream = (text: string) =>
  sseBody([
    [
      'message_start',
      {
        type: 'message_start',
        message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], usage: { input_tokens: 7 } },
      },
    ],
    [
      'content_block_start',
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    ],
    ['ping', { type: 'ping' }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    [
      'message_delta',
      { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } },
    ],
    ['message_stop', { type: 'message_stop' }],
  ]);

describe('server-sent events', () => {
  test('LF, CRLF and CR line ends, split anywhere, comments, multi-line data, unknown fields', () => {
    const text =
      ': a comment\r\nevent: a\r\ndata: one\r\ndata:two\r\nid: 5\r\n\r\nevent: b\rdata: x\r\rdata: {"k": "é"}\n\n';
    const expected = [
      { event: 'a', data: 'one\ntwo' },
      { event: 'b', data: 'x' },
      { event: '', data: '{"k": "é"}' },
    ];
    // Whole, and cut at every position (a CR at the end of one chunk and its LF in the next included).
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      assert.deepEqual(got, expected, `cut at ${cut}`);
    }
    // One character at a time.
    const p = new SseParser();
    const got = [...text].flatMap((c) => p.push(c));
    assert.deepEqual(got, expected);
  });

  test('an event not closed by a blank line is not dispatched; an empty data line is an event', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('data:\n\nevent: x\ndata: unfinished\n'), [{ event: '', data: '' }]);
  });
});

describe('the Anthropic request body', () => {
  const frozen: ToolDefinition[] = TOOLS.map((t) =>
    Object.freeze({ ...t, inputSchema: Object.freeze({ ...t.inputSchema }) }),
  );
  for (const promptCaching of [true, false])
    for (const tools of [TOOLS, frozen, []])
      test(`is the SDK's params as JSON (caching ${promptCaching}, ${tools.length} tools${tools === frozen ? ', frozen' : ''})`, () => {
        const req = request(
          [user('hi'), { role: 'assistant', content: [{ type: 'text', text: 'ok' }] }, user('go')],
          {
            tools,
          },
        );
        const cfg = { model: 'm', promptCaching };
        // Twice: the second body comes from the serialised tools kept the first time.
        for (let i = 0; i < 2; i++)
          assert.equal(anthropicBody(req, cfg), JSON.stringify(buildAnthropicParams(req, cfg)));
      });
});

test('the Anthropic request body follows a changed list of the same frozen definitions', () => {
  const defs = TOOLS.map((t) => Object.freeze({ ...t, inputSchema: Object.freeze({ ...t.inputSchema }) }));
  const cfg = { model: 'm' };
  for (const tools of [defs, [defs[0]!], defs, [defs[0]!, defs[0]!], [defs[1]!, defs[0]!]]) {
    const req = request([user('hi')], { tools });
    assert.equal(anthropicBody(req, cfg), JSON.stringify(buildAnthropicParams(req, cfg)));
  }
});

describe('the Anthropic provider over its own client', () => {
  test('a streamed answer: the headers sent, the key only in authorization', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(okStream('streamed'));
    });
    const r = await run(anthropic(s.url, { headers: { 'x-extra': 'yes' } }), request([user('hi')]));
    assert.equal(r.text, 'streamed');
    assert.deepEqual(r.usage, { type: 'usage', inputTokens: 7, outputTokens: 2 });
    const h = s.requests[0]!.headers;
    assert.equal(h.authorization, `Bearer ${API_KEY}`);
    assert.equal(h['content-type'], 'application/json');
    assert.ok(h['anthropic-version']);
    assert.equal(h['x-extra'], 'yes');
    const body = JSON.parse(s.requests[0]!.body) as { stream: boolean; model: string };
    assert.equal(body.stream, true);
    assert.equal(body.model, 'claude-test');
  });

  test('an answer that is not streamed (a proxy that buffers): text, tool call, usage and stop reason', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'msg_2',
          type: 'message',
          role: 'assistant',
          model: 'claude-test',
          content: [
            { type: 'text', text: 'Checking.' },
            {
              type: 'tool_use',
              id: 'toolu_1',
              name: 'run_command',
              input: { sandbox_id: 's', command: 'ls' },
            },
          ],
          stop_reason: 'tool_use',
          stop_sequence: null,
          usage: { input_tokens: 30, output_tokens: 12, cache_read_input_tokens: 10 },
        }),
      );
    });
    const r = await run(anthropic(s.url), request([user('hi')]));
    assert.equal(r.text, 'Checking.');
    assert.equal(r.done.stopReason, 'tool_use');
    assert.deepEqual(r.done.message.content, [
      { type: 'text', text: 'Checking.' },
      { type: 'tool_use', id: 'toolu_1', name: 'run_command', input: { sandbox_id: 's', command: 'ls' } },
    ]);
    assert.deepEqual(r.usage, { type: 'usage', inputTokens: 40, outputTokens: 12, cacheReadTokens: 10 });
  });

  test('the connections are kept alive and reused from one request to the next', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(okStream('again'));
    });
    const p = anthropic(s.url);
    for (let i = 0; i < 3; i++) await run(p, request([user('hi')]));
    assert.equal(s.requests.length, 3);
    assert.equal(new Set(s.requests.map((r) => r.socket)).size, 1);
  });

  test('a kept-alive connection the server closed is replaced at once: no retry, no failure', async () => {
    const s = await serve((req, res, n) => {
      // The second request arrives on the kept connection: drop it as a server whose idle timeout
      // has just passed would.
      if (n === 2) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(okStream(`answer ${n}`));
    });
    const p = anthropic(s.url);
    await run(p, request([user('hi')]));
    const r = await run(p, request([user('hi')]));
    assert.equal(r.text, 'answer 3');
    assert.equal(r.retries.length, 0);
    assert.equal(s.requests.length, 3);
    assert.notEqual(s.requests[2]!.socket, s.requests[1]!.socket);
  });

  test('a connection reset on a fresh connection goes through the retry loop (announced)', async () => {
    const s = await serve((req, res, n) => {
      if (n === 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(okStream('after the reset'));
    });
    const r = await run(anthropic(s.url), request([user('hi')]));
    assert.equal(r.text, 'after the reset');
    assert.equal(r.retries.length, 1);
    assert.equal(r.retries[0]!.reason, 'connection reset');
  });

  test('cancel before the answer: CANCELLED, the request is torn down, no retry', async () => {
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    const s = await serve((_req, res) => {
      res.on('close', () => closed());
      // never answers
    });
    const ctl = new AbortController();
    const events: ModelEvent[] = [];
    const pending = runError(anthropic(s.url), request([user('hi')], { signal: ctl.signal }), events);
    while (s.requests.length === 0) await new Promise((r) => setImmediate(r));
    ctl.abort();
    const err = await pending;
    assertFluid(err, 'CANCELLED');
    await gone;
    assert.equal(s.requests.length, 1);
    assert.equal(events.length, 0);
  });

  test("a non-JSON error page (a proxy's 502) is UNAVAILABLE with its text, retried", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway from the proxy</body></html>');
    });
    const events: ModelEvent[] = [];
    const err = await runError(anthropic(s.url, { maxRetries: 1 }), request([user('hi')]), events);
    assertFluid(err, 'UNAVAILABLE');
    assert.match(err.message, /502/);
    assert.match(err.message, /Bad Gateway from the proxy/);
    assert.equal(events.filter((e) => e.type === 'retry').length, 1);
  });

  test("the provider's error message is surfaced, with the key scrubbed even when the server echoes it", async () => {
    const s = await serve((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json', 'request-id': 'req_42' });
      res.end(
        JSON.stringify({
          type: 'error',
          error: {
            type: 'invalid_request_error',
            message: `messages.0: bad block (you sent ${req.headers.authorization})`,
          },
        }),
      );
    });
    const err = await runError(anthropic(s.url), request([user('hi')]));
    assertFluid(err, 'VALIDATION');
    assert.match(err.message, /messages\.0: bad block/);
    assert.match(err.message, /\[redacted\]/);
    assert.equal((err.data as { requestId?: string }).requestId, 'req_42');
  });

  test("the client's own errors never hold the key", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('no');
    });
    const client = new JsonHttpClient({ baseUrl: s.url, headers: { authorization: `Bearer ${API_KEY}` } });
    const err = await client.post('/v1/messages', '{}', new AbortController().signal).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof HttpStatusError);
    assert.equal(err.status, 401);
    assert.ok(!JSON.stringify({ m: err.message, e: err.error, s: err.stack }).includes(API_KEY));
    client.close();
  });
});

describe('the OpenAI-compatible provider over its own client', () => {
  const openai = (url: string, extra: Record<string, unknown> = {}) =>
    createProvider({
      kind: 'openai',
      baseUrl: `${url}/v1`,
      model: 'local-model',
      apiKey: '',
      maxRetries: 1,
      retryBaseDelayMs: 1,
      ...extra,
    });

  test('an answer that is not streamed: text, tool call, usage and stop reason', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'local-model',
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: 'Listing.',
                tool_calls: [
                  { id: 'call_1', type: 'function', function: { name: 'list_vms', arguments: '{}' } },
                ],
              },
              finish_reason: 'tool_calls',
            },
          ],
          usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 },
        }),
      );
    });
    const r = await run(openai(s.url), request([user('hi')]));
    assert.equal(r.text, 'Listing.');
    assert.equal(r.done.stopReason, 'tool_use');
    assert.deepEqual(r.done.message.content, [
      { type: 'text', text: 'Listing.' },
      { type: 'tool_use', id: 'call_1', name: 'list_vms', input: {} },
    ]);
    assert.deepEqual(r.usage, { type: 'usage', inputTokens: 20, outputTokens: 5 });
    assert.equal(s.requests[0]!.headers.authorization, 'Bearer no-key', 'a keyless local server');
    const body = JSON.parse(s.requests[0]!.body) as { stream: boolean };
    assert.equal(body.stream, true);
  });

  test('an error chunk inside the stream carries the server message; the key stays out', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        `data: ${JSON.stringify({ error: { message: `model not loaded (key ${API_KEY})`, type: 'invalid_request_error', code: 400 } })}\n\n`,
      );
    });
    const err = await runError(openai(s.url, { apiKey: API_KEY }), request([user('hi')]));
    assertFluid(err, 'VALIDATION');
    assert.match(err.message, /model not loaded/);
  });
});
