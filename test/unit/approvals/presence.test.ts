/**
 * Who may decide, and the proofs of presence, through the router as every door reaches it: agents'
 * doors never decide; a CLI without a terminal never decides; high-risk approvals and loosening
 * settings need a confirmation, and once a key is enrolled, that key (WebAuthn, verified for real by
 * the server over a software authenticator).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testCore } from '../../support/core.ts';
import { softKey } from '../../support/authenticator.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import type { Actor } from '../../../src/shared/rpc.ts';
import type { Core } from '../../../src/core/createCore.ts';

const ORIGIN = 'http://localhost:4711';
const web: Actor = { door: 'web', id: 'browser:alice' };
const tty: Actor = { door: 'cli', id: 'alice', interactive: true };
const script: Actor = { door: 'cli', id: 'alice', interactive: false };
const mcp: Actor = { door: 'mcp', id: 'claude-code' };
const agent: Actor = { door: 'agent', id: 'ses_1' };

function highRisk(core: Core, title = 'egress to example.com:443') {
  return core.approvals.request({
    kind: 'egress',
    title,
    detail: 'a sandbox asks to reach example.com',
    risk: 'high',
    subject: { destination: 'example.com:443', sandbox: 'sbx-1' },
    requestedBy: mcp,
  });
}

const denied =
  (code = 'DENIED', re?: RegExp) =>
  (e: { code: string; message: string }) => {
    assert.equal(e.code, code);
    if (re) assert.match(e.message, re);
    return true;
  };

test('agent doors and a CLI without a terminal ask, but never decide, change rules or widen egress', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const a = highRisk(core);
  for (const who of [mcp, agent, script, { door: 'http', id: 'token:ci' } as Actor]) {
    const c = connectInProcess(core, who);
    for (const proof of [undefined, { kind: 'confirm' as const }, { kind: 'terminal' as const }]) {
      await assert.rejects(
        c.call('approvals.decide', { id: a.id, decision: 'approve', presence: proof }),
        denied(),
      );
      await assert.rejects(
        c.call('approvals.decide', { id: a.id, decision: 'deny', presence: proof }),
        denied(),
      );
    }
    await assert.rejects(
      c.call('settings.update', { agent: { rules: [{ tool: '*', decision: 'allow' }] } }),
      denied(),
    );
    await assert.rejects(c.call('settings.update', { approvals: { allowUnattendedCli: true } }), denied());
    // --yes without a terminal is refused while a person has not allowed unattended decisions.
    await assert.rejects(
      c.call('approvals.decide', { id: a.id, decision: 'approve', presence: { kind: 'unattended' } }),
      denied(),
    );
  }
  assert.equal(core.approvals.get(a.id).status, 'pending');
  assert.deepEqual(core.settings.get().agent.rules, []);
  // Nothing in the audit log says anything was decided.
  assert.equal(core.audit.list({ limit: 50, action: 'approval.decide' }).entries.length, 0);
});

test('a script may change settings that loosen nothing; loosening needs a person with presence', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const c = connectInProcess(core, script);
  assert.equal((await c.call('settings.update', { ui: { theme: 'dark' } })).ui.theme, 'dark');
  assert.equal((await c.call('settings.update', { agent: { maxSteps: 10 } })).agent.maxSteps, 10);
  await assert.rejects(c.call('settings.update', { agent: { maxSteps: 11 } }), denied());
  await assert.rejects(c.call('settings.update', { sandboxes: { egressAllow: ['evil.example'] } }), denied());
  // The person on a terminal confirms; the proof is bound to this patch only.
  const t1 = connectInProcess(core, tty);
  await assert.rejects(
    t1.call('settings.update', { sandboxes: { egressAllow: ['deb.debian.org'] } }),
    (e: { code: string; data: { presence: { methods: string[] } } }) =>
      e.code === 'DENIED' && e.data.presence.methods.includes('terminal'),
  );
  const s = await t1.call('settings.update', {
    sandboxes: { egressAllow: ['deb.debian.org'] },
    presence: { kind: 'terminal' },
  });
  assert.deepEqual(s.sandboxes.egressAllow, ['deb.debian.org']);
  const entry = core.audit.list({ limit: 1, action: 'settings.update' }).entries[0]!;
  assert.deepEqual((entry.data as { loosened: string[] }).loosened, ['sandboxes.egressAllow']);
  assert.equal((entry.data as { via: string }).via, 'terminal');
});

test('without a key: the web UI confirms in the window, a terminal confirms by typing; the audit says how', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const a = highRisk(core, 'first');
  const b = highRisk(core, 'second');
  const w = connectInProcess(core, web);
  await assert.rejects(
    w.call('approvals.decide', { id: a.id, decision: 'approve' }),
    (e: { code: string; data: { presence: { methods: string[] } } }) =>
      e.code === 'DENIED' && e.data.presence.methods.join() === 'confirm',
  );
  // A terminal proof does not come from a browser.
  await assert.rejects(
    w.call('approvals.decide', { id: a.id, decision: 'approve', presence: { kind: 'terminal' } }),
    denied('DENIED', /terminal/),
  );
  const ok = await w.call('approvals.decide', {
    id: a.id,
    decision: 'approve',
    presence: { kind: 'confirm' },
  });
  assert.equal(ok.status, 'approved');
  assert.equal(ok.decidedVia, 'confirm');
  const viaTty = await connectInProcess(core, tty).call('approvals.decide', {
    id: b.id,
    decision: 'approve',
    presence: { kind: 'terminal' },
  });
  assert.equal(viaTty.decidedVia, 'terminal');
  assert.deepEqual(viaTty.decidedBy, { door: 'cli', id: 'alice' });
  // Denying needs a person, not a proof.
  const c = highRisk(core, 'third');
  assert.equal((await w.call('approvals.decide', { id: c.id, decision: 'deny' })).status, 'denied');
  const log = core.audit
    .list({ limit: 10, action: 'approval.decide' })
    .entries.map((e) => e.data as { via: string });
  assert.deepEqual(log.map((d) => d.via).sort(), ['confirm', 'door', 'terminal']);
});

test('once a key is enrolled, only that key approves high-risk requests: bound to one decision, single use', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  core.presence.addOrigin(ORIGIN);
  const key = softKey();
  const w = connectInProcess(core, web);

  // Enrolling the first key is itself confirmed in the window.
  await assert.rejects(w.call('presence.registerBegin', { name: 'yubikey' }), denied());
  const reg = await w.call('presence.registerBegin', { name: 'yubikey', presence: { kind: 'confirm' } });
  await assert.rejects(
    w.call('presence.registerFinish', {
      challengeId: reg.challengeId,
      response: key.register(reg.options, 'http://evil.localhost:1'),
    }),
    denied(),
  );
  const reg2 = await w.call('presence.registerBegin', { name: 'yubikey', presence: { kind: 'confirm' } });
  const cred = await w.call('presence.registerFinish', {
    challengeId: reg2.challengeId,
    response: key.register(reg2.options, ORIGIN),
  });
  assert.equal(cred.name, 'yubikey');
  assert.equal((await w.call('presence.status', {})).credentials.length, 1);

  const a = highRisk(core, 'one');
  const b = highRisk(core, 'two');
  // The window's confirmation and the terminal no longer do.
  await assert.rejects(
    w.call('approvals.decide', { id: a.id, decision: 'approve', presence: { kind: 'confirm' } }),
    (e: { code: string; data: { presence: { methods: string[] } } }) =>
      e.code === 'DENIED' && e.data.presence.methods.join() === 'webauthn',
  );
  await assert.rejects(
    connectInProcess(core, tty).call('approvals.decide', {
      id: a.id,
      decision: 'approve',
      presence: { kind: 'terminal' },
    }),
    denied('DENIED', /security key is enrolled/),
  );

  // A challenge for approving A cannot approve B, nor deny A.
  const ch = await w.call('presence.challenge', {
    member: 'approvals.decide',
    input: { id: a.id, decision: 'approve' },
  });
  const proofA = {
    kind: 'webauthn' as const,
    challengeId: ch.challengeId,
    response: key.assert(ch.options, ORIGIN),
  };
  await assert.rejects(
    w.call('approvals.decide', { id: b.id, decision: 'approve', presence: proofA }),
    denied(),
  );
  // ... and the challenge was used up by that attempt.
  await assert.rejects(
    w.call('approvals.decide', { id: a.id, decision: 'approve', presence: proofA }),
    denied(),
  );

  const ch2 = await w.call('presence.challenge', {
    member: 'approvals.decide',
    input: { id: a.id, decision: 'approve' },
  });
  // A forged signature fails.
  await assert.rejects(
    w.call('approvals.decide', {
      id: a.id,
      decision: 'approve',
      presence: {
        kind: 'webauthn',
        challengeId: ch2.challengeId,
        response: key.assert(ch2.options, ORIGIN, true),
      },
    }),
    denied(),
  );
  const ch3 = await w.call('presence.challenge', {
    member: 'approvals.decide',
    input: { id: a.id, decision: 'approve' },
  });
  // Another origin (a page that is not Fluid's) fails.
  await assert.rejects(
    w.call('approvals.decide', {
      id: a.id,
      decision: 'approve',
      presence: {
        kind: 'webauthn',
        challengeId: ch3.challengeId,
        response: key.assert(ch3.options, 'http://localhost:9'),
      },
    }),
    denied(),
  );
  const ch4 = await w.call('presence.challenge', {
    member: 'approvals.decide',
    input: { id: a.id, decision: 'approve' },
  });
  const ok = await w.call('approvals.decide', {
    id: a.id,
    decision: 'approve',
    presence: { kind: 'webauthn', challengeId: ch4.challengeId, response: key.assert(ch4.options, ORIGIN) },
  });
  assert.equal(ok.status, 'approved');
  assert.equal(ok.decidedVia, 'webauthn');
  const entry = core.audit.list({ limit: 1, action: 'approval.decide' }).entries[0]!;
  assert.equal((entry.data as { credential: string }).credential, key.id);
  assert.equal(core.approvals.get(b.id).status, 'pending');

  // Removing the key needs the key.
  await assert.rejects(w.call('presence.remove', { id: key.id, presence: { kind: 'confirm' } }), denied());
  const ch5 = await w.call('presence.challenge', { member: 'presence.remove', input: { id: key.id } });
  await w.call('presence.remove', {
    id: key.id,
    presence: { kind: 'webauthn', challengeId: ch5.challengeId, response: key.assert(ch5.options, ORIGIN) },
  });
  assert.equal((await w.call('presence.status', {})).credentials.length, 0);
});

test('unattended CLI decisions exist only after a person allowed them, with presence', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const a = highRisk(core);
  const s = connectInProcess(core, script);
  await assert.rejects(
    s.call('approvals.decide', { id: a.id, decision: 'approve', presence: { kind: 'unattended' } }),
    denied('DENIED', /off/),
  );
  await connectInProcess(core, tty).call('settings.update', {
    approvals: { allowUnattendedCli: true },
    presence: { kind: 'terminal' },
  });
  const out = await s.call('approvals.decide', {
    id: a.id,
    decision: 'approve',
    presence: { kind: 'unattended' },
  });
  assert.equal(out.decidedVia, 'unattended');
  // Still never for agents' doors.
  const b = highRisk(core, 'b');
  await assert.rejects(
    connectInProcess(core, mcp).call('approvals.decide', {
      id: b.id,
      decision: 'approve',
      presence: { kind: 'unattended' },
    }),
    denied(),
  );
});

test("a provider's lower price is a person's decision: the cost caps count with it", async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  core.presence.addOrigin(ORIGIN);
  const w = connectInProcess(core, web);
  // Adding a provider at the model table's price (3 / 15 USD per million tokens) asks nothing.
  const base = { id: 'claude', kind: 'anthropic' as const, label: 'Claude', model: 'claude-sonnet-4-5' };
  const added = await connectInProcess(core, script).call('providers.save', { ...base, apiKey: 'sk-ant-x' });
  assert.deepEqual([added.inputPerMTok, added.outputPerMTok, added.priceSource], [3, 15, 'table']);
  const free = { ...base, inputPerMTok: 0, outputPerMTok: 0 };

  // Agents' doors, a script and an API token cannot lower it, whatever proof they send.
  for (const who of [mcp, agent, script, { door: 'http', id: 'token:ci' } as Actor]) {
    const c = connectInProcess(core, who);
    for (const proof of [undefined, { kind: 'confirm' as const }, { kind: 'terminal' as const }])
      await assert.rejects(c.call('providers.save', { ...free, presence: proof }), denied());
    // Nor can they price a new provider's unpriced model, or a cheaper one than its table price.
    await assert.rejects(
      c.call('providers.save', {
        id: 'cheap',
        kind: 'openai',
        label: 'x',
        model: 'vendor/unknown',
        inputPerMTok: 0,
        outputPerMTok: 0,
      }),
      denied(),
    );
    await assert.rejects(
      c.call('providers.save', { ...base, id: 'cheap', inputPerMTok: 1, outputPerMTok: 15 }),
      denied(),
    );
  }
  const kept = core.agent.providers.get('claude');
  assert.deepEqual([kept.inputPerMTok, kept.outputPerMTok], [3, 15]);
  assert.deepEqual(
    core.agent.providers.list().map((p) => p.id),
    ['claude'],
  );

  // A script may raise it (it only tightens the caps).
  const raised = await connectInProcess(core, script).call('providers.save', {
    ...base,
    inputPerMTok: 4,
    outputPerMTok: 20,
  });
  assert.deepEqual([raised.inputPerMTok, raised.outputPerMTok], [4, 20]);

  // A person in the window confirms; once a key is enrolled, only a key proof made for this very save.
  await assert.rejects(
    w.call('providers.save', free),
    (e: { code: string; message: string; data: { presence: { methods: string[] } } }) =>
      e.code === 'DENIED' &&
      e.data.presence.methods.join() === 'confirm' &&
      /it costs \$4 in \/ \$20 out per million tokens now/.test(e.message),
  );
  const key = softKey();
  const reg = await w.call('presence.registerBegin', { name: 'yubikey', presence: { kind: 'confirm' } });
  await w.call('presence.registerFinish', {
    challengeId: reg.challengeId,
    response: key.register(reg.options, ORIGIN),
  });
  await assert.rejects(w.call('providers.save', { ...free, presence: { kind: 'confirm' } }), denied());
  const proofFor = async (input: Record<string, unknown>) => {
    const ch = await w.call('presence.challenge', { member: 'providers.save', input });
    return {
      kind: 'webauthn' as const,
      challengeId: ch.challengeId,
      response: key.assert(ch.options, ORIGIN),
    };
  };
  // A proof made for a price of 1 does not set a price of 0.
  await assert.rejects(
    w.call('providers.save', {
      ...free,
      presence: await proofFor({ ...base, inputPerMTok: 1, outputPerMTok: 1 }),
    }),
    denied(),
  );
  assert.equal(core.agent.providers.get('claude').inputPerMTok, 4);
  const saved = await w.call('providers.save', { ...free, presence: await proofFor(free) });
  assert.deepEqual([saved.inputPerMTok, saved.outputPerMTok, saved.priceSource], [0, 0, 'person']);
  const log = core.audit.list({ limit: 10, action: 'provider.update' }).entries;
  assert.equal(log.length, 2, 'the raise and the confirmed lowering; nothing refused was written');
});
