/**
 * The demo behind the Agent view's "Run the demo" (src/core/agent/demo.ts), through the router as the
 * doors reach it: only a person's door starts it; without the lab's production VM registered as a
 * target it says what to do and starts nothing; with it, the scripted model answers in this process
 * (the shipped scenario, no admin routes), one server for the process, gone when the core closes.
 * The whole demo on the lab, in the browser: e2e/demo.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testCore } from '../../support/core.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import type { Actor } from '../../../src/shared/rpc.ts';

const person: Actor = { door: 'web', id: 'browser:alice' };

test('the demo: a person starts it; it says what it needs; its scripted model runs in this process until close', async (t) => {
  const core = testCore();
  let closed = false;
  t.after(() => (closed ? undefined : core.dispose()));
  for (const who of [
    { door: 'agent', id: 'ses_1' },
    { door: 'mcp', id: 'claude-code' },
    { door: 'cli', id: 'alice', interactive: false },
    { door: 'http', id: 'token:ci' },
  ] as Actor[])
    await assert.rejects(connectInProcess(core, who).call('agent.demo', {}), (e: { code: string }) => {
      assert.equal(e.code, 'DENIED');
      return true;
    });

  const w = connectInProcess(core, person);
  const missing = await w.call('agent.demo', {});
  assert.equal(missing.baseUrl, null, 'nothing was started');
  assert.equal(missing.target, null);
  assert.match(missing.missing ?? '', /fluid target add prod-web .* --source lab\/fluid-lab-prod/);

  // A person registered the lab's production VM as a target (the row as targets.add writes it).
  const local = core.hosts.list()[0]!;
  core.targets.store.insert({
    id: 'tgt-1',
    name: 'shop-prod',
    address: '192.0.2.10',
    port: 22,
    user: 'fluid-ops',
    become: 'sudo',
    credential: JSON.stringify({ publicKey: 'ssh-ed25519 AAAA', fingerprint: 'SHA256:x' }),
    jump_host_id: null,
    host_key_type: null,
    host_key_fp: null,
    source_host_id: local.id,
    source_vm: 'fluid-lab-prod',
    created_at: new Date(0).toISOString(),
    actor: person,
  });
  const demo = await w.call('agent.demo', {});
  assert.equal(demo.missing, null);
  assert.deepEqual([demo.target, demo.host, demo.source], ['shop-prod', local.name, 'fluid-lab-prod']);
  assert.match(demo.task, /^nginx on shop-prod returns 502/);
  assert.equal(demo.running, null);
  assert.match(demo.baseUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  const models = (await (
    await fetch(`${demo.baseUrl}/v1/models`, { headers: { 'x-api-key': 'k' } })
  ).json()) as { data: Array<{ id: string }> };
  assert.deepEqual(
    models.data.map((m) => m.id),
    ['scripted-model'],
  );
  // Nothing else on the machine reads its requests or changes its script.
  assert.equal((await fetch(`${demo.baseUrl}/_scripted/state`)).status, 404);
  assert.equal(
    (await fetch(`${demo.baseUrl}/_scripted/scenario`, { method: 'POST', body: 'steps: []' })).status,
    404,
  );
  assert.equal((await w.call('agent.demo', {})).baseUrl, demo.baseUrl, 'one server for the process');

  await core.dispose();
  closed = true;
  await assert.rejects(fetch(`${demo.baseUrl}/v1/models`), 'the server closed with the core');
});
