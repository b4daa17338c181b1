/**
 * The agent on the lab: a scripted model (the only stand-in) drives the real tools against the lab
 * host. One sandbox in all, destroyed at the end even when a test fails. Then `fluid run` as a
 * subprocess is killed with SIGKILL mid-session and `fluid run --resume` continues the transcript.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { labHost, requireLab, type Lab } from '../../support/lab.ts';
import { FLUID_BIN, fluid } from '../../support/cli.ts';
import { testCore } from '../../support/core.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import {
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import type { AgentEvent, Session, TranscriptMessage } from '../../../src/shared/contract/agent.ts';
import type { Task } from '../../../src/shared/contract/tasks.ts';
import { RESUME_TEXT } from '../../../src/cli/agent.ts';

let lab: Lab;
let server: ScriptedModelServer;
// A file-backed secret store: the `fluid run` subprocesses must see the provider key and the CA.
const core = testCore({ secrets: undefined });
const client = connectInProcess(core, { door: 'test', id: 'agent-it' });
const approver = connectInProcess(core, { door: 'test', id: 'approver' });
const made = new Set<string>();

const shape = (ms: TranscriptMessage[]) =>
  ms.map(
    (m) =>
      `${m.role}:${m.content.map((b) => (b.type === 'tool_use' ? `tool_use(${b.name})` : b.type === 'tool_result' ? `tool_result${b.isError ? '!' : ''}` : 'text')).join('+')}`,
  );

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

before(async () => {
  lab = await requireLab();
  server = await startScriptedModelServer();
  await client.call('hosts.add', labHost(lab));
  const check = await finish(await client.call('hosts.check', { host: 'lab' }));
  assert.equal(check.status, 'succeeded', JSON.stringify(check.error));
  await client.call('providers.save', {
    id: 'scripted',
    kind: 'anthropic',
    label: 'Scripted model',
    baseUrl: server.anthropicBaseUrl,
    model: 'scripted-model',
    apiKey: 'sk-ant-scripted-lab-key-000000000000',
    isDefault: true,
    // No price list knows the scripted model: a session starts only with a price.
    inputPerMTok: 0,
    outputPerMTok: 0,
  });
});

/** CLI processes a test started: a failing test must not leave one behind (it would keep this file alive). */
const children = new Set<ChildProcess>();

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const id of made) await client.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
  await core.sandboxes.settleTemplates();
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await server?.close();
  await core.dispose();
});

describe('an agent session on the lab', () => {
  test('clones fluid-lab-web, runs commands, edits a file, reads it back, destroys the sandbox after approval', async () => {
    server.load({
      name: 'lab-edit',
      steps: [
        {
          id: 'clone',
          match: {
            turn: 'user',
            lastUserText: 'fluid-lab-web',
            tools: ['create_sandbox', 'run_command', 'edit_file', 'read_file', 'destroy_sandbox'],
            system: 'Mode: edit',
          },
          text: 'I will work on a clone of fluid-lab-web.',
          toolCalls: [{ name: 'create_sandbox', input: { source_vm: 'fluid-lab-web', host: 'lab' } }],
        },
        {
          id: 'inspect',
          match: {
            toolResult: {
              tool: 'create_sandbox',
              isError: false,
              content: { regex: '"sandbox_id": "(?<sbx>[^"]+)"' },
            },
          },
          toolCalls: [
            {
              name: 'run_command',
              input: {
                sandbox_id: '{{sbx}}',
                command:
                  "hostname; printf 'greeting=hello\\nmode=test\\n' > /root/fluid-agent.conf; cat /root/fluid-agent.conf",
              },
            },
          ],
        },
        {
          id: 'edit',
          match: { toolResult: { tool: 'run_command', isError: false, content: 'greeting=hello' } },
          text: 'The file is there; changing the greeting.',
          toolCalls: [
            {
              name: 'edit_file',
              input: {
                sandbox_id: '{{sbx}}',
                path: '/root/fluid-agent.conf',
                old_str: 'greeting=hello',
                new_str: 'greeting=edited by the agent',
              },
            },
          ],
        },
        {
          id: 'read-back',
          match: { toolResult: { tool: 'edit_file', isError: false } },
          toolCalls: [
            { name: 'read_file', input: { sandbox_id: '{{sbx}}', path: '/root/fluid-agent.conf' } },
          ],
        },
        {
          id: 'destroy',
          match: {
            toolResult: {
              tool: 'read_file',
              isError: false,
              content: 'greeting=edited by the agent\nmode=test',
            },
          },
          text: 'Verified. Cleaning up as asked.',
          toolCalls: [{ name: 'destroy_sandbox', input: { sandbox_id: '{{sbx}}' } }],
        },
        {
          id: 'report',
          match: { toolResult: { tool: 'destroy_sandbox', isError: false, content: 'destroyed' } },
          text: 'Done: edited /root/fluid-agent.conf in {{sbx}}, read it back, and destroyed the sandbox.',
        },
      ],
    });
    const s = await client.call('agent.sessions.create', {
      task: 'Clone fluid-lab-web, write /root/fluid-agent.conf, change its greeting, check it, then remove the sandbox.',
      source: 'fluid-lab-web',
      host: 'lab',
    });

    // Follow it; approve the destroy from another client when it asks.
    const events: AgentEvent[] = [];
    let end: Session | null = null;
    for await (const ev of client.stream('agent.watch', { sessionId: s.id })) {
      events.push(ev);
      if (server.vars.sbx) made.add(server.vars.sbx);
      if (ev.type === 'tool_call' && ev.status === 'waiting-approval') {
        assert.equal(ev.name, 'destroy_sandbox');
        const a = await approver.call('approvals.get', { id: ev.approvalId! });
        assert.deepEqual(a.requestedBy, { door: 'agent', id: s.id });
        const sbx = await client.call('sandboxes.get', { sandbox: server.vars.sbx! });
        assert.equal(sbx.state, 'running', 'nothing is destroyed before the approval');
        await approver.call('approvals.decide', {
          id: ev.approvalId!,
          decision: 'approve',
          note: 'test cleanup',
        });
      }
      if (ev.type === 'status' && ['done', 'failed', 'stopped', 'idle'].includes(ev.session.status)) {
        end = ev.session;
        break;
      }
    }
    assert.ok(end);
    assert.equal(
      end.status,
      'done',
      `${JSON.stringify(end.lastError)}\n${JSON.stringify(server.mismatches, null, 2)}`,
    );
    assert.deepEqual(server.mismatches, []);
    const sbx = server.vars.sbx!;
    assert.ok(sbx);
    assert.equal((await client.call('sandboxes.get', { sandbox: sbx })).state, 'destroyed');
    made.delete(sbx);

    const t = await client.call('agent.transcript', { sessionId: s.id });
    assert.deepEqual(shape(t.messages), [
      'user:text',
      'assistant:text+tool_use(create_sandbox)',
      'user:tool_result',
      'assistant:tool_use(run_command)',
      'user:tool_result',
      'assistant:text+tool_use(edit_file)',
      'user:tool_result',
      'assistant:tool_use(read_file)',
      'user:tool_result',
      'assistant:text+tool_use(destroy_sandbox)',
      'user:tool_result',
      'assistant:text',
    ]);
    const hostname = t.messages[4]!.content[0]!;
    assert.ok(hostname.type === 'tool_result' && hostname.content.includes('greeting=hello'));
    const calls = events.filter((e) => e.type === 'tool_call' && e.status !== 'running');
    assert.deepEqual(
      calls.map((e) => (e.type === 'tool_call' ? `${e.name}:${e.status}` : '')),
      [
        'create_sandbox:done',
        'run_command:done',
        'edit_file:done',
        'read_file:done',
        'destroy_sandbox:waiting-approval',
        'destroy_sandbox:done',
      ],
    );
    // Who did what: the agent's tool calls and the person's decision.
    const decided = (await client.call('audit.list', { limit: 200, action: 'approval.decide' })).entries;
    assert.deepEqual(
      decided.map((e) => e.actor),
      [{ door: 'test', id: 'approver' }],
    );
    const toolCalls = (await client.call('audit.list', { limit: 200, action: 'tool.call' })).entries;
    assert.ok(toolCalls.length >= 5);
    assert.ok(toolCalls.every((e) => e.actor.door === 'agent' && e.actor.id === s.id));
    const created = (await client.call('sandboxes.list', {})).find((x) => x.id === sbx || x.name === sbx);
    assert.ok(!created || created.state === 'destroyed');
  });
});

describe('fluid run', () => {
  test('kill -9 mid-session, then --resume continues the same transcript', async () => {
    server.load({
      name: 'kill-and-resume',
      steps: [
        {
          id: 'look',
          match: { turn: 'user', lastUserText: 'KILL-TEST' },
          text: 'Looking at the hosts first.',
          toolCalls: [{ name: 'list_hosts', input: {} }],
        },
        {
          id: 'ask',
          match: { toolResult: { tool: 'list_hosts', content: 'lab' } },
          text: 'Removing the stale sandbox.',
          toolCalls: [{ name: 'destroy_sandbox', input: { sandbox_id: 'stale-sandbox-of-the-kill-test' } }],
        },
        {
          id: 'resumed',
          match: {
            lastUserText: RESUME_TEXT,
            toolResult: {
              tool: 'destroy_sandbox',
              isError: true,
              content: 'Fluid stopped while this call was running',
            },
          },
          text: 'Resumed after the interruption; the stale sandbox was left alone.',
        },
      ],
    });
    const env = { ...process.env, FLUID_DATA_DIR: core.paths.dataDir };
    const child = spawn(
      process.execPath,
      [
        FLUID_BIN,
        'run',
        'KILL-TEST: look at the hosts, then remove the stale sandbox',
        '--provider',
        'scripted',
        '--no-prompt',
      ],
      {
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('close', (code, signal) => resolve(signal ? -1 : code)),
    );

    // Mid-session: the destroy waits for an approval nobody gives; the process is killed there.
    // The approval row, the session's status and the terminal prompt appear in that order, each a
    // moment after the other: wait for all three.
    const asked = /waiting for a person to decide approval [0-9a-f-]+ \(in the Fluid app or web UI/;
    let sessionId = '';
    const deadline = Date.now() + 60_000;
    for (;;) {
      const m = /Session (ses_[0-9a-z]+) .*\n/.exec(stderr); // the whole line, not a prefix of the id
      if (m) sessionId = m[1]!;
      const pending = sessionId ? await client.call('approvals.list', { status: 'pending', sessionId }) : [];
      const status = sessionId ? (await client.call('agent.sessions.get', { sessionId })).status : null;
      if (pending.length && status === 'waiting-approval' && asked.test(stderr)) break;
      if (Date.now() > deadline)
        throw new Error(
          `no approval was asked (pending ${pending.length}, status ${status})\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, -1);

    // Another process sees it interrupted; its pending approval is withdrawn.
    const seen = await client.call('agent.sessions.get', { sessionId });
    assert.equal(seen.status, 'idle');
    assert.match(seen.lastError!.message, /^Interrupted/);
    assert.deepEqual(await client.call('approvals.list', { status: 'pending', sessionId }), []);
    const before = await client.call('agent.transcript', { sessionId });
    assert.deepEqual(shape(before.messages), [
      'user:text',
      'assistant:text+tool_use(list_hosts)',
      'user:tool_result',
      'assistant:text+tool_use(destroy_sandbox)',
    ]);

    const r = await fluid(['run', '--resume', sessionId, '--no-prompt'], {
      dataDir: core.paths.dataDir,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.match(r.stdout, /Resumed after the interruption/);
    assert.match(r.stderr, new RegExp(`Session ${sessionId} .*resumed`));
    const afterResume = await client.call('agent.transcript', { sessionId });
    assert.deepEqual(shape(afterResume.messages), [
      'user:text',
      'assistant:text+tool_use(list_hosts)',
      'user:tool_result',
      'assistant:text+tool_use(destroy_sandbox)',
      'user:tool_result!+text',
      'assistant:text',
    ]);
    assert.deepEqual(
      afterResume.messages.slice(0, 4).map((m) => m.createdAt),
      before.messages.map((m) => m.createdAt),
      'the same transcript, continued',
    );
    const done = await client.call('agent.sessions.get', { sessionId });
    assert.equal(done.status, 'done');
    assert.equal(done.steps, 3);
    assert.deepEqual(server.mismatches, []);
    // The interrupted approval was never decided, and nothing was destroyed.
    const cancelled = await client.call('approvals.list', { sessionId, status: 'cancelled' });
    assert.equal(cancelled.length, 1);
  });
});
