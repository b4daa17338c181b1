/**
 * The agent loop against the scripted model server (both wire formats), with small tools on a
 * real ToolRegistry: streaming, tool round trips, limits, cancel, modes, output caps, redaction,
 * compaction, approvals from another client, resume after a crash, and watching from another
 * process's point of view.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { AgentEvent, Session, TranscriptBlock } from '../../../src/shared/contract/agent.ts';
import { type FluidError } from '../../../src/shared/errors.ts';
import { AgentService } from '../../../src/core/agent/service.ts';
import { COMPACTION_SYSTEM, SUMMARY_PREFIX } from '../../../src/core/agent/compaction.ts';
import { RESUME_TEXT } from '../../../src/cli/agent.ts';
import {
  API_KEY_IN_OUTPUT,
  MODEL_KEY,
  PASSWORD,
  PEM,
  addScriptedProvider,
  harness,
  modelRequests,
  waitForCalls,
  watchUntil,
  type Harness,
} from './agent-harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.dispose();
});

const texts = (content: TranscriptBlock[]) => content.flatMap((b) => (b.type === 'text' ? [b.text] : []));
const kinds = (s: Session, h2: Harness) =>
  h2.agent.transcript(s.id).messages.map((m) => `${m.role}:${m.content.map((b) => b.type).join('+')}`);

for (const kind of ['anthropic', 'openai'] as const) {
  describe(`a session over the ${kind} wire format`, () => {
    test('streams text, runs a tool as the agent, persists the transcript, counts usage and cost', async () => {
      await addScriptedProvider(h, kind, { inputPerMTok: 3, outputPerMTok: 15 });
      h.server.load({
        steps: [
          {
            id: 'ask',
            match: {
              api: kind,
              turn: 'user',
              lastUserText: 'Say hello',
              tools: ['echo', 'write_note', 'read_tool_output'],
              system: 'Mode: edit',
            },
            text: 'I will echo it.',
            toolCalls: [{ name: 'echo', input: { text: 'hello' } }],
            usage: { inputTokens: 1000, outputTokens: 50 },
            delayMs: 150,
            chunkSize: 3,
            chunkDelayMs: 5,
          },
          {
            id: 'answer',
            match: { toolResult: { tool: 'echo', content: 'echo: hello', isError: false } },
            text: 'Done: hello was echoed.',
            usage: { inputTokens: 1200, outputTokens: 20 },
          },
        ],
      });
      const client = h.client();
      const changed: string[] = [];
      const un = h.core.bus.subscribe('agent.changed', (e) => changed.push(e.status));
      const s = await client.call('agent.sessions.create', {
        task: 'Say hello through the echo tool',
        source: 'fluid-lab-web',
        host: 'lab',
      });
      assert.equal(s.status, 'running');
      assert.equal(s.title, 'Say hello through the echo tool');
      assert.deepEqual(s.createdBy, { door: 'test', id: 'person' });
      const events = await watchUntil(h, s.id);
      un();

      const end = await h.agent.settled(s.id);
      assert.equal(end.status, 'done', JSON.stringify(end.lastError));
      assert.equal(end.steps, 2);
      assert.deepEqual(
        { in: end.usage.inputTokens, out: end.usage.outputTokens, ctx: end.usage.contextTokens },
        { in: 2200, out: 70, ctx: 1200 },
      );
      assert.ok(Math.abs(end.usage.costUsd - (2200 * 3 + 70 * 15) / 1e6) < 1e-9, String(end.usage.costUsd));
      assert.deepEqual(h.server.mismatches, []);

      // Events: snapshot first, streamed text, the tool call's life, messages, statuses.
      assert.equal(events[0]!.type, 'snapshot');
      const deltas = events.filter((e) => e.type === 'text_delta').map((e) => (e as { text: string }).text);
      assert.ok(deltas.length >= 2, `several deltas, got ${JSON.stringify(deltas)}`);
      assert.equal(deltas.join(''), 'I will echo it.Done: hello was echoed.');
      const calls = events.filter((e) => e.type === 'tool_call') as Array<
        Extract<AgentEvent, { type: 'tool_call' }>
      >;
      assert.deepEqual(
        calls.map((c) => [c.name, c.status, c.output ?? null]),
        [
          ['echo', 'running', null],
          ['echo', 'done', 'echo: hello'],
        ],
      );
      assert.ok(events.some((e) => e.type === 'message' && e.message.role === 'assistant'));
      assert.deepEqual(changed, ['running', 'done']);

      // The transcript, provider-neutral.
      const t = await client.call('agent.transcript', { sessionId: s.id });
      assert.deepEqual(
        t.messages.map((m) => [m.seq, m.role, m.content.map((b) => b.type)]),
        [
          [1, 'user', ['text']],
          [2, 'assistant', ['text', 'tool_use']],
          [3, 'user', ['tool_result']],
          [4, 'assistant', ['text']],
        ],
      );
      // The tool ran through the registry as the agent of this session, and was audited.
      assert.deepEqual(
        h.calls.map((c) => [c.name, c.actor]),
        [['echo', { door: 'agent', id: s.id }]],
      );
      const audit = h.core.audit.list({ limit: 50, action: 'tool.call' }).entries;
      assert.equal(audit.length, 1);
      assert.deepEqual(audit[0]!.actor, { door: 'agent', id: s.id });

      // The system prompt names the mode and the session's source and host.
      const first = modelRequests(h)[0]!.body;
      const system =
        kind === 'anthropic'
          ? JSON.stringify(first.system)
          : JSON.stringify((first.messages as unknown[])[0]);
      assert.match(system, /Mode: edit/);
      assert.match(system, /fluid-lab-web/);
      assert.match(system, /run_source_command/);
    });
  });
}

describe('limits', () => {
  test('the step cap stops a runaway loop with a clear error; a message continues with the same budget', async () => {
    await addScriptedProvider(h);
    h.server.load({ steps: [], fallbacks: [{ toolCalls: [{ name: 'echo', input: { text: 'again' } }] }] });
    const s = await h.client().call('agent.sessions.create', { task: 'Loop forever', maxSteps: 3 });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'stopped');
    assert.equal(end.steps, 3);
    assert.equal(end.lastError?.code, 'DENIED');
    assert.match(end.lastError!.message, /step limit: 3 model turns/);
    assert.deepEqual((end.lastError!.data as { limit: string }).limit, 'steps');
    assert.equal(modelRequests(h).length, 3);
    // The transcript is complete: every tool call has its result.
    const last = h.agent.transcript(s.id).messages.at(-1)!;
    assert.equal(last.role, 'user');
    assert.equal(last.content[0]!.type, 'tool_result');

    await h.client().call('agent.send', { sessionId: s.id, text: 'go on' });
    const again = await h.agent.settled(s.id);
    assert.equal(again.status, 'stopped');
    assert.equal(again.steps, 6);
    assert.equal(again.maxSteps, 6);
  });

  test('the cost cap stops the session once the spend reaches it', async () => {
    await addScriptedProvider(h, 'anthropic', { inputPerMTok: 1000, outputPerMTok: 0 });
    h.server.load({
      steps: [],
      fallbacks: [
        {
          toolCalls: [{ name: 'echo', input: { text: 'spend' } }],
          usage: { inputTokens: 1000, outputTokens: 10 },
        },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Spend money', maxCostUsd: 2.5 });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'stopped');
    assert.equal(end.steps, 3, 'three turns at $1 each reach $2.50');
    assert.ok(Math.abs(end.usage.costUsd - 3) < 1e-9);
    assert.match(end.lastError!.message, /cost limit/);
    assert.equal((end.lastError!.data as { limit: string }).limit, 'cost');
  });

  test('a model nothing prices: the session refuses to start and says how to set a price; with one, the cap holds', async () => {
    await addScriptedProvider(h, 'openai', { inputPerMTok: null, outputPerMTok: null });
    h.server.load({
      steps: [],
      fallbacks: [
        {
          toolCalls: [{ name: 'echo', input: { text: 'spend' } }],
          usage: { inputTokens: 1000, outputTokens: 10 },
        },
      ],
    });
    const c = h.client();
    await assert.rejects(
      c.call('agent.sessions.create', { task: 'Spend money', maxCostUsd: 2.5 }),
      (e: FluidError) =>
        e.code === 'VALIDATION' &&
        /no price for model "scripted-model"/.test(e.message) &&
        /Settings → Providers/.test(e.message) &&
        /fluid provider update scripted-openai --price-in/.test(e.message) &&
        /\$2\.50/.test(e.message),
    );
    assert.deepEqual(await c.call('agent.sessions.list', {}), [], 'no session was created');
    assert.equal(h.server.requests.length, 0, 'the model was never called');

    // A model the provider is not set up for is priced by the table or refused the same way.
    await c.call('providers.save', {
      id: 'scripted-openai',
      kind: 'openai',
      label: 'Scripted (openai)',
      model: 'scripted-model',
      inputPerMTok: 1000,
      outputPerMTok: 0,
    });
    await assert.rejects(
      c.call('agent.sessions.create', { task: 'x', model: 'another-unknown-model' }),
      (e: FluidError) => e.code === 'VALIDATION' && /another-unknown-model/.test(e.message),
    );

    // With the person's price the same session runs, and the cap stops it.
    const s = await c.call('agent.sessions.create', { task: 'Spend money', maxCostUsd: 2.5 });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'stopped');
    assert.equal(end.steps, 3);
    assert.match(end.lastError!.message, /cost limit/);

    // The price taken away: continuing is refused rather than run uncapped.
    await c.call('providers.save', {
      id: 'scripted-openai',
      kind: 'openai',
      label: 'Scripted (openai)',
      model: 'scripted-model',
      inputPerMTok: null,
      outputPerMTok: null,
    });
    const before = h.server.requests.length;
    await assert.rejects(
      c.call('agent.send', { sessionId: s.id, text: 'go on' }),
      (e: FluidError) => e.code === 'VALIDATION' && /no price/.test(e.message),
    );
    assert.equal(h.server.requests.length, before);
  });
});

describe('cancel', () => {
  test('agent.stop cancels the model stream promptly and keeps the partial reply', async () => {
    await addScriptedProvider(h);
    h.server.load({ steps: [{ text: 'word '.repeat(200), chunkSize: 5, chunkDelayMs: 50 }] });
    const s = await h.client().call('agent.sessions.create', { task: 'Talk a lot' });
    await watchUntil(h, s.id, (_ev, all) => all.filter((e) => e.type === 'text_delta').length >= 3);
    const stopped = await h.client().call('agent.stop', { sessionId: s.id });
    assert.equal(stopped.status, 'stopped');
    assert.equal(stopped.lastError?.code, 'CANCELLED');
    assert.match(stopped.lastError!.message, /Stopped by test:person/);
    // the stream was cut, not waited for: the server saw the client leave, and the reply is partial
    await h.server.waitFor((srv) => srv.requests.some((r) => r.outcome === 'client_closed'));
    const last = h.agent.transcript(s.id).messages.at(-1)!;
    assert.equal(last.role, 'assistant');
    assert.match(texts(last.content)[0]!, /^word word/);
    assert.ok(texts(last.content)[0]!.length < 'word '.repeat(200).trim().length, 'the partial reply');
    assert.equal(h.core.audit.list({ limit: 10, action: 'agent.session.stop' }).entries.length, 1);
  });

  test('agent.stop cancels a running tool; the call gets an error result and the session continues later', async () => {
    await addScriptedProvider(h);
    h.server.load({
      steps: [
        {
          toolCalls: [
            { name: 'slow', input: {} },
            { name: 'echo', input: { text: 'never' } },
          ],
        },
        {
          match: {
            lastUserText: 'try again',
            toolResult: { tool: 'slow', isError: true, content: 'Cancelled while running' },
          },
          text: 'OK, stopping there.',
        },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Run the slow tool' });
    await waitForCalls(h, (calls) => calls.some((c) => c.name === 'slow'), 'the slow tool started');
    // the slow tool never finishes on its own: stop returning at all means it was cancelled
    const stopped = await h.client().call('agent.stop', { sessionId: s.id });
    assert.equal(stopped.status, 'stopped');
    assert.ok(!h.calls.some((c) => c.name === 'echo'), 'the next call of the turn did not run');
    const last = h.agent.transcript(s.id).messages.at(-1)!;
    assert.deepEqual(
      last.content.map((b) => (b.type === 'tool_result' ? [b.isError, b.content.split(':')[0]] : b.type)),
      [
        [true, 'Cancelled while running'],
        [true, 'Not run'],
      ],
    );
    await h.client().call('agent.send', { sessionId: s.id, text: 'try again' });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'done', JSON.stringify(end.lastError));
    assert.deepEqual(h.server.mismatches, []);
  });
});

describe('modes', () => {
  test('read-only hides the tools that change things; a switch applies from the next turn', async () => {
    await addScriptedProvider(h);
    h.server.load({
      steps: [
        { match: { system: 'READ-ONLY' }, toolCalls: [{ name: 'write_note', input: { note: 'sneaky' } }] },
        {
          match: {
            toolResult: { tool: 'write_note', isError: true, content: 'not available in read-only mode' },
          },
          text: 'I cannot write.',
        },
        {
          match: { system: 'Mode: edit', tools: ['write_note', 'destroy_thing'] },
          toolCalls: [{ name: 'write_note', input: { note: 'ok' } }],
        },
        { match: { toolResult: { tool: 'write_note', content: 'wrote ok' } }, text: 'Written.' },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Look around', mode: 'read-only' });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
    const offered = (modelRequests(h)[0]!.body.tools as Array<{ name: string }>).map((t) => t.name).sort();
    assert.deepEqual(offered, ['dump', 'echo', 'read_tool_output', 'slow']);
    assert.ok(!h.calls.some((c) => c.name === 'write_note'), 'nothing was written in read-only mode');

    const changed = await h.client().call('agent.setMode', { sessionId: s.id, mode: 'edit' });
    assert.equal(changed.mode, 'edit');
    await h.client().call('agent.send', { sessionId: s.id, text: 'Now write it' });
    const end2 = await h.agent.settled(s.id);
    assert.equal(end2.status, 'done', JSON.stringify(h.server.mismatches));
    assert.deepEqual(
      h.calls.map((c) => [c.name, c.mode]),
      [['write_note', 'edit']],
    );
    assert.deepEqual(
      h.core.audit.list({ limit: 10, action: 'agent.session.mode' }).entries.map((e) => e.data),
      [{ from: 'read-only', to: 'edit' }],
    );
  });
});

describe('tool output in the context', () => {
  test('long output is cut to toolOutputChars with a handle; read_tool_output reads on; agent.toolOutput serves it whole', async () => {
    await addScriptedProvider(h);
    h.core.settings.update({ agent: { toolOutputChars: 1000 } }, { door: 'test', id: 'setup' });
    h.server.load({
      steps: [
        { toolCalls: [{ name: 'dump', input: { what: 'big' } }] },
        {
          match: { toolResult: { tool: 'dump', content: { regex: '"handle":"(?<h>out_[0-9a-f]+)"' } } },
          toolCalls: [{ name: 'read_tool_output', input: { handle: '{{h}}', offset: 51000, limit: 200 } }],
        },
        {
          match: { toolResult: { tool: 'read_tool_output', content: 'line 1000' } },
          text: 'Found line 1000.',
        },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Dump the big file' });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
    const msgs = h.agent.transcript(s.id).messages;
    const cut = msgs[2]!.content[0]!;
    assert.equal(cut.type, 'tool_result');
    if (cut.type !== 'tool_result') return;
    assert.ok(cut.content.length <= 1000, `capped: ${cut.content.length}`);
    assert.match(cut.content, /^line 0000/);
    assert.match(cut.content, /line 1999 x+$/);
    assert.match(cut.content, /characters cut here/);
    assert.ok(cut.handle);
    const more = msgs[4]!.content[0]!;
    assert.ok(
      more.type === 'tool_result' &&
        more.content.startsWith('line 1000') &&
        /characters 51000–51200 of 101999/.test(more.content),
      JSON.stringify(more),
    );

    const full = await h
      .client()
      .call('agent.toolOutput', { sessionId: s.id, handle: cut.handle, offset: 0, limit: 200_000 });
    assert.equal(full.total, 2000 * 51 - 1);
    assert.equal(full.content.split('\n').length, 2000);
    await assert.rejects(
      h.client().call('agent.toolOutput', { sessionId: 'ses_other', handle: cut.handle }),
      (e: FluidError) => e.code === 'NOT_FOUND',
    );
  });
});

describe('redaction', () => {
  test('secrets in tool output, in the task and in the secret store never reach the model', async () => {
    await addScriptedProvider(h);
    h.core.secrets.set('other/token', 'stored-secret-value-42');
    h.server.load({
      steps: [
        { toolCalls: [{ name: 'dump', input: { what: 'secrets' } }] },
        {
          match: { toolResult: { tool: 'dump', content: '[REDACTED:private-key#1]' } },
          text: 'The config holds [REDACTED:password#2].',
        },
      ],
    });
    const task = 'Check /etc/app/config (admin password=Adm1n-Secret!) and ignore stored-secret-value-42';
    const s = await h.client().call('agent.sessions.create', { task });
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
    const sent = JSON.stringify(modelRequests(h).map((r) => r.body));
    for (const secret of [
      PEM.split('\n')[1]!,
      PASSWORD,
      API_KEY_IN_OUTPUT,
      MODEL_KEY,
      'Adm1n-Secret!',
      'stored-secret-value-42',
    ])
      assert.ok(!sent.includes(secret), `${secret.slice(0, 12)}… reached the model`);
    assert.match(sent, /\[REDACTED:private-key#1\]/);
    assert.match(sent, /db_password = \[REDACTED:password#2\]/);
    assert.match(sent, /OPENAI_API_KEY=\[REDACTED:api-key#1\]/);
    assert.match(sent, /listen 8080/, 'the rest of the output is intact');
    // The transcript keeps what the model saw; the raw output sits behind the handle, for people.
    const stored = JSON.stringify(h.agent.transcript(s.id));
    assert.ok(!stored.includes(PASSWORD) && !stored.includes('Adm1n-Secret!'));
    const result = h.agent.transcript(s.id).messages[2]!.content[0]!;
    assert.ok(result.type === 'tool_result' && result.handle);
    if (result.type === 'tool_result') {
      const raw = h.agent.toolOutput(s.id, result.handle!);
      assert.ok(raw.content.includes(PASSWORD));
    }
    // Placeholders are stable and persisted (salted hashes, no values).
    const row = h.agent.store.row(s.id);
    assert.ok(!row.redactions.includes(PASSWORD));
    assert.equal(Object.keys(JSON.parse(row.redactions) as object).length >= 4, true);
  });
});

describe('compaction', () => {
  test('near the context limit older turns are summarised by one model call and replaced by the summary', async () => {
    await addScriptedProvider(h, 'anthropic', { contextTokens: 10_000 });
    h.core.settings.update({ agent: { compactAt: 0.9 } }, { door: 'test', id: 'setup' });
    h.server.load({
      steps: [
        {
          match: { turn: 'user' },
          toolCalls: [{ name: 'echo', input: { text: 'alpha' } }],
          usage: { inputTokens: 1500, outputTokens: 10 },
        },
        {
          match: { toolResult: { content: 'echo: alpha' } },
          toolCalls: [{ name: 'echo', input: { text: 'beta' } }],
          usage: { inputTokens: 2000, outputTokens: 10 },
        },
        {
          match: { toolResult: { content: 'echo: beta' } },
          toolCalls: [{ name: 'echo', input: { text: 'gamma' } }],
          usage: { inputTokens: 9500, outputTokens: 10 },
        },
        {
          id: 'summary',
          match: { system: 'You summarise the working history', lastUserText: 'echo: alpha' },
          text: 'SUMMARY-7Q: the user asked for three echoes; alpha and beta are done.',
          usage: { inputTokens: 800, outputTokens: 30 },
        },
        {
          match: { toolResult: { content: 'echo: gamma' }, system: 'Fluid' },
          text: 'All three echoed.',
          usage: { inputTokens: 900, outputTokens: 10 },
        },
      ],
    });
    const s = await h
      .client()
      .call('agent.sessions.create', { task: 'Echo ORIGINAL-TASK-MARKER three times' });
    const events = await watchUntil(h, s.id);
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
    const reqs = modelRequests(h);
    assert.equal(reqs.length, 5);
    assert.equal(reqs[3]!.step, 'step 4 "summary"');
    assert.equal(JSON.stringify(reqs[3]!.body.system).includes('You summarise'), true);
    assert.deepEqual(reqs[3]!.body.tools, undefined, 'the summary call offers no tools');
    assert.match(JSON.stringify(reqs[3]!.body.messages), /ORIGINAL-TASK-MARKER/);
    assert.equal(COMPACTION_SYSTEM.startsWith('You summarise'), true);

    const after = JSON.stringify(reqs[4]!.body.messages);
    assert.match(after, /SUMMARY-7Q/);
    assert.ok(after.includes(SUMMARY_PREFIX.slice(0, 40)));
    assert.ok(!after.includes('ORIGINAL-TASK-MARKER'), 'the old turns are gone from the context');
    assert.ok(!after.includes('echo: alpha'));
    assert.match(after, /echo: gamma/, 'the last turns stay verbatim');

    const ev = events.find((e) => e.type === 'compaction');
    assert.ok(ev && ev.type === 'compaction');
    assert.equal(ev.compactedThrough, 3);
    const msgs = h.agent.transcript(s.id).messages;
    assert.deepEqual(
      msgs.map((m) => m.compacted),
      [true, true, true, false, false, false, false, false],
    );
    assert.match(
      texts(msgs[0]!.content)[0]!,
      /ORIGINAL-TASK-MARKER/,
      'people still see the compacted messages',
    );
    assert.equal(end.steps, 4, 'the summary call is not a step');
    assert.equal(end.usage.inputTokens, 1500 + 2000 + 9500 + 800 + 900);
  });
});

describe('approvals', () => {
  for (const decision of ['approve', 'deny'] as const) {
    test(`a high-risk tool waits for a person (${decision}); the agent cannot decide; the audit log names who did`, async () => {
      await addScriptedProvider(h, decision === 'approve' ? 'anthropic' : 'openai');
      h.server.load({
        steps: [
          { toolCalls: [{ name: 'destroy_thing', input: { thing: 'sbx-1' } }] },
          decision === 'approve'
            ? {
                match: { toolResult: { tool: 'destroy_thing', content: 'destroyed sbx-1', isError: false } },
                text: 'Destroyed.',
              }
            : {
                match: { toolResult: { tool: 'destroy_thing', content: 'denied by test:alice: keep it' } },
                text: 'Left it alone.',
              },
        ],
      });
      const s = await h.client().call('agent.sessions.create', { task: 'Destroy sbx-1' });
      const events = await watchUntil(
        h,
        s.id,
        (ev) => ev.type === 'tool_call' && ev.status === 'waiting-approval',
      );
      const waiting = events.find((e) => e.type === 'tool_call' && e.status === 'waiting-approval');
      assert.ok(waiting && waiting.type === 'tool_call' && waiting.approvalId);
      await watchUntil(
        h,
        s.id,
        (ev) => (ev.type === 'status' || ev.type === 'snapshot') && ev.session.status === 'waiting-approval',
      );
      assert.equal(h.agent.get(s.id).status, 'waiting-approval');
      const approvalId = waiting.approvalId;
      const pending = await h.client().call('approvals.get', { id: approvalId });
      assert.equal(pending.status, 'pending');
      assert.deepEqual(pending.requestedBy, { door: 'agent', id: s.id });
      assert.equal(pending.sessionId, s.id);
      // The agent itself can never decide.
      await assert.rejects(
        h
          .client({ door: 'agent', id: s.id })
          .call('approvals.decide', { id: approvalId, decision: 'approve' }),
        (e: FluidError) => e.code === 'DENIED',
      );
      // Still blocked: the tool has not run, and the session still waits.
      assert.equal(h.calls.length, 0);
      assert.equal(h.agent.get(s.id).status, 'waiting-approval');
      await h.client({ door: 'test', id: 'alice' }).call('approvals.decide', {
        id: approvalId,
        decision,
        note: decision === 'deny' ? 'keep it' : 'fine',
      });
      const end = await h.agent.settled(s.id);
      assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
      assert.equal(h.calls.length, decision === 'approve' ? 1 : 0);
      const decided = h.core.audit.list({ limit: 10, action: 'approval.decide' }).entries;
      assert.equal(decided.length, 1);
      assert.deepEqual(decided[0]!.actor, { door: 'test', id: 'alice' });
      const toolAudit = h.core.audit.list({ limit: 10, action: 'tool.call' }).entries;
      assert.deepEqual(
        toolAudit.map((e) => [e.actor.door, (e.data as { decision: string }).decision]),
        [['agent', decision === 'approve' ? 'approved' : 'denied']],
      );
      const t = h.agent.transcript(s.id).messages[2]!.content[0]!;
      assert.ok(t.type === 'tool_result');
    });
  }
});

describe('resume', () => {
  test('a session whose process died shows as interrupted; agent.send repairs the transcript and continues it', async () => {
    await addScriptedProvider(h);
    // What a killed process leaves behind: running, owned by a dead pid, a tool call without result.
    const child = spawnSync(process.execPath, ['-e', '0']);
    const deadPid = child.pid!;
    const row = h.agent.store.insert({
      title: 'Crashed',
      mode: 'edit',
      providerId: 'scripted-anthropic',
      model: 'scripted-model',
      host: null,
      source: null,
      maxSteps: 10,
      maxCostUsd: 1,
      createdBy: { door: 'cli', id: 'someone' },
      owner: { pid: deadPid, instance: 'the-dead-process' },
    });
    h.agent.store.update(row.id, { status: 'running', steps: 1 });
    h.agent.store.append(row.id, 'user', [{ type: 'text', text: 'Do the slow thing' }]);
    h.agent.store.append(row.id, 'assistant', [
      { type: 'text', text: 'Running it.' },
      { type: 'tool_use', id: 'toolu_crash1', name: 'slow', input: {} },
    ]);

    const seen = h.agent.get(row.id);
    assert.equal(seen.status, 'idle');
    assert.match(
      seen.lastError!.message,
      /^Interrupted: the Fluid process running this session \(pid \d+\) stopped/,
    );
    assert.equal(h.core.audit.list({ limit: 5, action: 'agent.session.interrupted' }).entries.length, 1);

    h.server.load({
      steps: [
        {
          match: {
            lastUserText: RESUME_TEXT,
            toolResult: { tool: 'slow', isError: true, content: 'Fluid stopped while this call was running' },
          },
          text: 'Resumed where I left off.',
        },
      ],
    });
    const resumed = await h.client().call('agent.send', { sessionId: row.id, text: RESUME_TEXT });
    assert.equal(resumed.status, 'running');
    const end = await h.agent.settled(row.id);
    assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
    assert.deepEqual(kinds(end, h), [
      'user:text',
      'assistant:text+tool_use',
      'user:tool_result+text',
      'assistant:text',
    ]);
    assert.equal(end.steps, 2);
  });

  test('a session of another live process cannot be continued here; agent.stop asks its owner through the database', async () => {
    await addScriptedProvider(h);
    h.server.load({ steps: [{ toolCalls: [{ name: 'slow', input: {} }] }] });
    const s = await h.client().call('agent.sessions.create', { task: 'Be slow' });
    await waitForCalls(h, (calls) => calls.length === 1, 'the slow tool started');
    // A second process (same database, another instance) sees the session as running elsewhere.
    const other = new AgentService({
      db: h.core.db,
      bus: h.core.bus,
      audit: h.core.audit,
      settings: h.core.settings,
      secrets: h.core.secrets,
      approvals: h.core.approvals,
      presence: h.core.presence,
      tools: h.tools,
      clock: h.core.clock,
      log: h.core.log,
      instance: 'other-process',
      isAlive: () => true,
      pollMs: 50,
    });
    assert.equal(other.get(s.id).status, 'running');
    assert.throws(
      () => other.send(s.id, 'hi', { door: 'test', id: 'p' }),
      (e: FluidError) => e.code === 'CONFLICT',
    );
    const stopped = await other.stop(s.id, { door: 'test', id: 'p' });
    assert.equal(stopped.status, 'stopped');
    assert.match(stopped.lastError!.message, /another Fluid process/);
    await other.close();
  });
});

describe('watch', () => {
  test('snapshot then deltas; a reconnect gets a full snapshot; another process follows by polling', async () => {
    await addScriptedProvider(h);
    h.server.load({
      steps: [
        { toolCalls: [{ name: 'echo', input: { text: 'one' } }] },
        { toolCalls: [{ name: 'slow', input: {} }] },
        { text: 'Finished.' },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Watch me' });
    await waitForCalls(h, (calls) => calls.some((c) => c.name === 'slow'), 'the slow tool started');

    // A reconnecting watcher: a snapshot with everything so far, then the call in progress.
    const first = await watchUntil(h, s.id, (ev) => ev.type === 'tool_call' && ev.name === 'slow');
    const snap = first[0]!;
    assert.equal(snap.type, 'snapshot');
    if (snap.type === 'snapshot') {
      assert.equal(snap.messages.length, 4);
      assert.equal(snap.session.status, 'running');
    }

    // Another process sharing the database.
    const other = new AgentService({
      db: h.core.db,
      bus: h.core.bus,
      audit: h.core.audit,
      settings: h.core.settings,
      secrets: h.core.secrets,
      approvals: h.core.approvals,
      presence: h.core.presence,
      tools: h.tools,
      clock: h.core.clock,
      log: h.core.log,
      instance: 'observer',
      isAlive: () => true,
      pollMs: 30,
    });
    const ac = new AbortController();
    const seen: AgentEvent[] = [];
    let snapshotSeen!: () => void;
    const watchingStarted = new Promise<void>((r) => (snapshotSeen = r));
    const watching = (async () => {
      for await (const ev of other.watch(s.id, ac.signal)) {
        seen.push(ev);
        if (ev.type === 'snapshot') snapshotSeen();
        if (ev.type === 'status' && ev.session.status === 'done') break;
      }
    })();
    await watchingStarted;
    h.release();
    await watching;
    ac.abort();
    assert.equal(seen[0]!.type, 'snapshot');
    const newMessages = seen
      .filter((e) => e.type === 'message')
      .map((e) => (e.type === 'message' ? e.message.seq : 0));
    assert.deepEqual(newMessages, [5, 6]);
    assert.equal(seen.at(-1)!.type === 'status' && seen.at(-1)!.type, 'status');
    await other.close();
  });
});

describe('while running', () => {
  test('a retry that discards partial text emits text_reset; the transcript keeps the reply once', async () => {
    await addScriptedProvider(h);
    h.server.load({
      steps: [
        { text: 'First attempt that breaks', chunkSize: 4, disconnectAfterChunks: 5, delayMs: 100 },
        { text: 'The whole answer.', chunkSize: 4 },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Answer' });
    const events = await watchUntil(h, s.id);
    const types = events.map((e) => e.type);
    assert.ok(types.includes('retry'), JSON.stringify(types));
    assert.ok(types.indexOf('text_reset') > types.indexOf('text_delta'), JSON.stringify(types));
    const after = events.slice(types.lastIndexOf('text_reset') + 1);
    assert.equal(
      after.flatMap((e) => (e.type === 'text_delta' ? [e.text] : [])).join(''),
      'The whole answer.',
    );
    const msgs = h.agent.transcript(s.id).messages;
    assert.deepEqual(texts(msgs.at(-1)!.content), ['The whole answer.']);
  });

  test('a message sent while the agent works joins the conversation after the current tool results', async () => {
    await addScriptedProvider(h);
    h.server.load({
      steps: [
        { toolCalls: [{ name: 'slow', input: {} }] },
        {
          match: {
            lastUserText: 'also check the logs',
            toolResult: { tool: 'slow', content: 'slow: finished' },
          },
          text: 'Will do.',
        },
      ],
    });
    const s = await h.client().call('agent.sessions.create', { task: 'Be slow' });
    await waitForCalls(h, (calls) => calls.length === 1, 'the slow tool started');
    const during = await h.client().call('agent.send', { sessionId: s.id, text: 'also check the logs' });
    assert.equal(during.status, 'running');
    h.release();
    const end = await h.agent.settled(s.id);
    assert.equal(end.status, 'done', JSON.stringify(h.server.mismatches));
    assert.deepEqual(kinds(end, h), [
      'user:text',
      'assistant:tool_use',
      'user:tool_result',
      'user:text',
      'assistant:text',
    ]);
  });
});
