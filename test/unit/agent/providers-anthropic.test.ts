import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelEvent } from '../../../src/core/agent/providers/types.ts';
import { createProvider } from '../../../src/core/agent/providers/index.ts';
import {
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import { API_KEY, providerFor, request, run, runError, user } from './helpers.ts';
import { assertFluid, providerSuite } from './provider-suite.ts';

let server: ScriptedModelServer;
before(async () => {
  server = await startScriptedModelServer();
});
after(async () => {
  await server.close();
});

providerSuite('anthropic');

describe('provider setup', () => {
  test('an Anthropic provider without a key fails with AUTH_FAILED before any request', async () => {
    server.reset();
    const err = await runError(providerFor(server, 'anthropic', { apiKey: '' }), request([user('hi')]));
    assertFluid(err, 'AUTH_FAILED');
    assert.equal(server.requests.length, 0);
  });

  test('an OpenAI-compatible local server works without a key', async () => {
    server.load({ steps: [{ text: 'local' }] });
    const r = await run(providerFor(server, 'openai', { apiKey: '' }), request([user('hi')]));
    assert.equal(r.text, 'local');
  });

  test('an already-aborted signal is CANCELLED without a request', async () => {
    server.reset();
    const ctl = new AbortController();
    ctl.abort();
    const err = await runError(providerFor(server, 'openai'), request([user('hi')], { signal: ctl.signal }));
    assertFluid(err, 'CANCELLED');
    assert.equal(server.requests.length, 0);
  });

  test('an unreachable server: connection refused, retried, then UNAVAILABLE with what to do', async () => {
    const dead = await startScriptedModelServer();
    const url = dead.url;
    await dead.close();
    const p = createProvider({
      kind: 'anthropic',
      baseUrl: url,
      model: 'm',
      apiKey: API_KEY,
      maxRetries: 1,
      retryBaseDelayMs: 5,
    });
    const events: ModelEvent[] = [];
    const err = await runError(p, request([user('hi')]), events);
    assertFluid(err, 'UNAVAILABLE');
    assert.match(err.message, /could not be reached \(connection refused\)/);
    assert.match(err.message, /Check that http:\/\/127\.0\.0\.1:\d+ is reachable/);
    assert.equal(events.filter((e) => e.type === 'retry').length, 1);
  });
});
