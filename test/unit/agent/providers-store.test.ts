import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type FluidError } from '../../../src/shared/errors.ts';
import { modelDefaults } from '../../../src/core/agent/providers-store.ts';
import { MODEL_KEY, addScriptedProvider, harness, type Harness } from './agent-harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.dispose();
});

describe('model providers', () => {
  test('save, list, default, key in the secret store only, delete', async () => {
    const c = h.client();
    assert.deepEqual(await c.call('providers.list', {}), []);
    const a = await c.call('providers.save', {
      kind: 'anthropic',
      label: 'Anthropic',
      model: 'claude-sonnet-4-6',
      apiKey: 'sk-ant-key-aaaaaaaaaaaaaaaaaaaa',
    });
    assert.equal(a.id, 'anthropic');
    assert.equal(a.isDefault, true, 'the first provider is the default');
    assert.equal(a.hasKey, true);
    assert.deepEqual([a.contextTokens, a.inputPerMTok, a.outputPerMTok], [200_000, 3, 15]);
    assert.equal(h.core.secrets.get('provider/anthropic'), 'sk-ant-key-aaaaaaaaaaaaaaaaaaaa');
    const row = h.core.db.prepare('SELECT * FROM providers').all();
    assert.ok(!JSON.stringify(row).includes('sk-ant-key'), 'no key in the database');

    const o = await c.call('providers.save', {
      id: 'local',
      kind: 'openai',
      label: 'Ollama',
      baseUrl: 'http://localhost:11434/v1',
      model: 'some-new-model',
      isDefault: true,
    });
    assert.deepEqual([o.isDefault, o.hasKey, o.contextTokens, o.inputPerMTok], [true, false, 128_000, 0]);
    const list = await c.call('providers.list', {});
    assert.deepEqual(
      list.map((p) => [p.id, p.isDefault]),
      [
        ['local', true],
        ['anthropic', false],
      ],
    );
    assert.ok(!JSON.stringify(list).includes('sk-ant-key'), 'keys are never returned');

    // Omitting the key keeps it; an empty key removes it; given values win over the model table.
    const a2 = await c.call('providers.save', {
      id: 'anthropic',
      kind: 'anthropic',
      label: 'Anthropic',
      model: 'claude-sonnet-4-6',
      inputPerMTok: 2,
    });
    assert.equal(a2.hasKey, true);
    assert.equal(a2.inputPerMTok, 2);
    const a3 = await c.call('providers.save', {
      id: 'anthropic',
      kind: 'anthropic',
      label: 'Anthropic',
      model: 'claude-sonnet-4-6',
      apiKey: '',
    });
    assert.equal(a3.hasKey, false);
    assert.equal(h.core.secrets.get('provider/anthropic'), null);

    await c.call('providers.delete', { id: 'local' });
    const left = await c.call('providers.list', {});
    assert.deepEqual(
      left.map((p) => [p.id, p.isDefault]),
      [['anthropic', true]],
      'the default moves on',
    );
    await assert.rejects(
      c.call('providers.delete', { id: 'local' }),
      (e: FluidError) => e.code === 'NOT_FOUND',
    );
    const actions = h.core.audit.list({ limit: 20 }).entries.map((e) => e.action);
    assert.ok(
      actions.includes('provider.add') &&
        actions.includes('provider.update') &&
        actions.includes('provider.delete'),
    );
    assert.ok(
      !JSON.stringify(h.core.audit.list({ limit: 20 })).includes('sk-ant-key'),
      'no key in the audit log',
    );
  });

  test('providers.test lists the models, and reports a bad key without revealing it', async () => {
    await addScriptedProvider(h, 'anthropic');
    h.server.load({ models: ['scripted-model', 'other-model'], steps: [] });
    const ok = await h.client().call('providers.test', { id: 'scripted-anthropic' });
    assert.deepEqual(ok, {
      ok: true,
      models: ['scripted-model', 'other-model'],
      message: 'Connected: 2 models offered, including scripted-model.',
    });

    h.server.load({ auth: { apiKey: 'the-right-key' }, steps: [] });
    const bad = await h.client().call('providers.test', { id: 'scripted-anthropic' });
    assert.equal(bad.ok, false);
    assert.ok(bad.message.length > 0);
    assert.ok(!bad.message.includes(MODEL_KEY));

    await addScriptedProvider(h, 'openai');
    h.server.load({ steps: [] });
    const o = await h.client().call('providers.test', { id: 'scripted-openai' });
    assert.equal(o.ok, true);
  });

  test('a session needs a provider', async () => {
    await assert.rejects(
      h.client().call('agent.sessions.create', { task: 'anything' }),
      (e: FluidError) => e.code === 'VALIDATION' && /No model provider is configured/.test(e.message),
    );
  });

  test('defaults per model family', () => {
    assert.deepEqual(modelDefaults('anthropic/claude-opus-4.6'), {
      contextTokens: 200_000,
      inputPerMTok: 5,
      outputPerMTok: 25,
    });
    assert.deepEqual(modelDefaults('claude-haiku-4-5'), {
      contextTokens: 200_000,
      inputPerMTok: 1,
      outputPerMTok: 5,
    });
    assert.deepEqual(modelDefaults('gpt-5.4-mini'), {
      contextTokens: 400_000,
      inputPerMTok: 0.25,
      outputPerMTok: 2,
    });
    assert.deepEqual(modelDefaults('qwen3'), { contextTokens: 40_000, inputPerMTok: 0, outputPerMTok: 0 });
    assert.deepEqual(modelDefaults('mystery-model'), {
      contextTokens: 128_000,
      inputPerMTok: 0,
      outputPerMTok: 0,
    });
  });
});
