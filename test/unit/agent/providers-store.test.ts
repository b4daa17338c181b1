import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type FluidError } from '../../../src/shared/errors.ts';
import Database from 'better-sqlite3';
import { isLocalEndpoint, lookupModel, normaliseModel } from '../../../src/core/agent/providers-store.ts';
import { migrate } from '../../../src/core/store/db.ts';
import { migrations } from '../../../src/core/store/migrations.ts';
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
    assert.deepEqual(
      [o.isDefault, o.hasKey, o.contextTokens, o.inputPerMTok, o.priceSource],
      [true, false, 128_000, null, 'unknown'],
    );
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
    assert.deepEqual([a2.inputPerMTok, a2.outputPerMTok, a2.priceSource], [2, 15, 'person']);
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
    // A provider that asks not to be the default is not, and the next one added becomes it.
    await c.call('providers.delete', { id: 'anthropic' });
    const demo = await c.call('providers.save', {
      id: 'demo',
      kind: 'anthropic',
      label: 'Demo',
      model: 'claude-sonnet-4-6',
      isDefault: false,
    });
    assert.equal(demo.isDefault, false);
    const next = await c.call('providers.save', { kind: 'openai', label: 'Real', model: 'gpt-4.1' });
    assert.equal(next.isDefault, true, 'the first provider added while none is the default');
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

  test('context windows and prices by model, OpenRouter and Bedrock spellings included', () => {
    const price = (model: string, baseUrl: string | null = null) => lookupModel(model, baseUrl).price;
    assert.deepEqual(lookupModel('anthropic/claude-opus-4.6'), {
      contextTokens: 200_000,
      price: { inputPerMTok: 5, outputPerMTok: 25 },
    });
    const sonnet = { inputPerMTok: 3, outputPerMTok: 15 };
    for (const m of [
      'claude-sonnet-4-5',
      'claude-sonnet-4-5-20250929',
      'anthropic/claude-sonnet-4.5',
      'anthropic/claude-sonnet-4',
      'anthropic/claude-3.7-sonnet',
      'anthropic/claude-3.7-sonnet:beta',
      'us.anthropic.claude-sonnet-4-20250514-v1:0',
    ])
      assert.deepEqual(price(m, 'https://openrouter.ai/api/v1'), sonnet, m);
    assert.deepEqual(price('anthropic/claude-opus-4.1'), { inputPerMTok: 15, outputPerMTok: 75 });
    assert.deepEqual(price('claude-opus-4-20250514'), { inputPerMTok: 15, outputPerMTok: 75 });
    assert.deepEqual(price('anthropic/claude-3.5-haiku'), { inputPerMTok: 0.8, outputPerMTok: 4 });
    assert.deepEqual(price('claude-haiku-4-5'), { inputPerMTok: 1, outputPerMTok: 5 });
    assert.deepEqual(price('openai/gpt-4o-mini'), { inputPerMTok: 0.15, outputPerMTok: 0.6 });
    assert.deepEqual(price('openai/gpt-4.1'), { inputPerMTok: 2, outputPerMTok: 8 });
    assert.deepEqual(price('gpt-5-mini'), { inputPerMTok: 0.25, outputPerMTok: 2 });
    assert.deepEqual(price('openai/gpt-5.1'), { inputPerMTok: 1.25, outputPerMTok: 10 });
    // Versions whose list price Fluid does not know stay unpriced rather than guessed.
    assert.equal(price('gpt-5.4-mini'), null);
    assert.equal(price('anthropic/claude-opus-5'), null);
    assert.equal(price('mystery-model'), null);
    assert.equal(lookupModel('mystery-model').contextTokens, 128_000);
    // Self-hosted families cost nothing on a local endpoint only; a router charges for them.
    assert.deepEqual(price('qwen3:8b', 'http://localhost:11434/v1'), { inputPerMTok: 0, outputPerMTok: 0 });
    assert.deepEqual(price('llama3.3', 'http://192.168.1.20:8000/v1'), { inputPerMTok: 0, outputPerMTok: 0 });
    assert.equal(price('qwen/qwen3-235b-a22b', 'https://openrouter.ai/api/v1'), null);
    assert.equal(price('qwen3'), null, 'the default endpoint is not local');
    // OpenRouter's free variants.
    assert.deepEqual(price('meta-llama/llama-3.3-70b-instruct:free', 'https://openrouter.ai/api/v1'), {
      inputPerMTok: 0,
      outputPerMTok: 0,
    });
    assert.equal(normaliseModel('Anthropic/Claude-Sonnet-4.5:thinking'), 'claude-sonnet-4-5');
    for (const [url, local] of [
      ['http://127.0.0.1:11434', true],
      ['http://[::1]:8000/v1', true],
      ['http://10.1.2.3/v1', true],
      ['http://172.20.0.5/v1', true],
      ['http://172.40.0.5/v1', false],
      ['http://gpu-box.local:8000/v1', true],
      ['https://openrouter.ai/api/v1', false],
      ['not a url', false],
    ] as const)
      assert.equal(isLocalEndpoint(url), local, url);
  });

  test("a person's price: both or neither, kept until the model changes, cleared with null", async () => {
    const c = h.client();
    const base = {
      id: 'router',
      kind: 'openai' as const,
      label: 'Router',
      baseUrl: 'https://openrouter.ai/api/v1',
    };
    const known = await c.call('providers.save', { ...base, model: 'anthropic/claude-sonnet-4.5' });
    assert.deepEqual([known.inputPerMTok, known.outputPerMTok, known.priceSource], [3, 15, 'table']);
    const unknown = await c.call('providers.save', { ...base, model: 'z-ai/unknown-9' });
    assert.deepEqual(
      [unknown.inputPerMTok, unknown.outputPerMTok, unknown.priceSource],
      [null, null, 'unknown'],
    );
    // Half a price for an unpriced model is refused, and changes nothing.
    await assert.rejects(
      c.call('providers.save', { ...base, model: 'z-ai/unknown-9', inputPerMTok: 1 }),
      (e: FluidError) => e.code === 'VALIDATION' && /give both/.test(e.message),
    );
    assert.equal((await c.call('providers.list', {}))[0]!.priceSource, 'unknown');
    const set = await c.call('providers.save', {
      ...base,
      model: 'z-ai/unknown-9',
      inputPerMTok: 0.5,
      outputPerMTok: 2,
    });
    assert.deepEqual([set.inputPerMTok, set.outputPerMTok, set.priceSource], [0.5, 2, 'person']);
    // Kept on saves that do not touch it; one side changes alone once both are known.
    const kept = await c.call('providers.save', { ...base, model: 'z-ai/unknown-9', label: 'Renamed' });
    assert.deepEqual([kept.inputPerMTok, kept.outputPerMTok], [0.5, 2]);
    const out = await c.call('providers.save', { ...base, model: 'z-ai/unknown-9', outputPerMTok: 3 });
    assert.deepEqual([out.inputPerMTok, out.outputPerMTok], [0.5, 3]);
    // Another model does not inherit the old model's price.
    const moved = await c.call('providers.save', { ...base, model: 'z-ai/unknown-10' });
    assert.equal(moved.priceSource, 'unknown');
    await c.call('providers.save', {
      ...base,
      model: 'anthropic/claude-sonnet-4.5',
      inputPerMTok: 2,
      outputPerMTok: 10,
    });
    const cleared = await c.call('providers.save', {
      ...base,
      model: 'anthropic/claude-sonnet-4.5',
      inputPerMTok: null,
      outputPerMTok: null,
    });
    assert.deepEqual([cleared.inputPerMTok, cleared.outputPerMTok, cleared.priceSource], [3, 15, 'table']);
    const audit = h.core.audit.list({ limit: 50, target: 'router' }).entries;
    assert.ok(audit.some((e) => (e.data as { priceSource?: string }).priceSource === 'person'));
  });

  test('prices stored before a person could say so: non-zero ones are kept as theirs, zero means unknown', () => {
    const db = new Database(':memory:');
    migrate(
      db,
      migrations.filter((m) => m.version < 8),
    );
    const ins = db.prepare(
      `INSERT INTO providers (id, kind, label, base_url, model, context_tokens, input_per_mtok, output_per_mtok, is_default, created_at, updated_at)
       VALUES (?, 'openai', ?, NULL, ?, 128000, ?, ?, 0, 'x', 'x')`,
    );
    ins.run('paid', 'paid', 'custom-model', 2, 6);
    ins.run('zero', 'zero', 'custom-model', 0, 0);
    migrate(db, migrations);
    const rows = db.prepare('SELECT id, price_set FROM providers ORDER BY id').all();
    assert.deepEqual(rows, [
      { id: 'paid', price_set: 1 },
      { id: 'zero', price_set: 0 },
    ]);
    db.close();
  });
});
