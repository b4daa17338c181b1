import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, ModelEvent } from '../../../src/core/agent/providers/types.ts';
import {
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import { providerFor, request, run, user } from './helpers.ts';
import { providerSuite } from './provider-suite.ts';

let server: ScriptedModelServer;
before(async () => {
  server = await startScriptedModelServer();
});
after(async () => {
  await server.close();
});

providerSuite('openai');

describe('a walkthrough scenario, driven like the agent loop drives a provider', () => {
  test('fixtures/wire-walkthrough.yaml: clone, rate limit, inspect, start, report', async () => {
    const file = new URL('./fixtures/wire-walkthrough.yaml', import.meta.url).pathname;
    server.load(file);
    const provider = providerFor(server, 'openai', {});
    const tools = [
      { name: 'create_sandbox', description: 'Clone a VM.', inputSchema: { type: 'object', properties: {} } },
      { name: 'run_command', description: 'Run a command.', inputSchema: { type: 'object', properties: {} } },
    ];
    const fakeTools: Record<string, (input: Record<string, unknown>) => string> = {
      create_sandbox: (i) => `created sbx-0123abcd from ${String(i.source_vm)}`,
      run_command: (i) => (String(i.command).includes('start') ? 'active' : 'inactive'),
    };
    const history: Message[] = [user('Fix nginx on web-01 please')];
    const retries: ModelEvent[] = [];
    for (let turn = 0; turn < 10; turn++) {
      const r = await run(provider, request(history, { tools }));
      retries.push(...r.retries);
      history.push(r.done.message);
      if (r.done.stopReason !== 'tool_use') break;
      history.push({
        role: 'user',
        content: r.toolUses.map((t) => ({
          type: 'tool_result',
          toolUseId: t.id,
          content: fakeTools[t.name]!(t.input),
        })),
      });
    }
    const last = history.at(-1)!;
    assert.deepEqual(last.content, [
      { type: 'text', text: 'nginx is running again on sbx-0123abcd (a clone of web-01).' },
    ]);
    assert.equal(retries.length, 1);
    assert.deepEqual(server.vars, { vm: 'web-01', sbx: 'sbx-0123abcd' });
    assert.equal(server.state().remaining, 0);
    assert.deepEqual(server.mismatches, []);
  });
});
