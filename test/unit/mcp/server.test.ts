/**
 * The MCP door over an in-memory transport, driven by the official SDK client, in front of a registry
 * of fake tools built on a real core's approvals, audit and settings.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import {
  LoggingMessageNotificationSchema,
  type CallToolResult,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { ToolRegistry } from '../../../src/core/agent/tools/registry.ts';
import {
  createMcpServer,
  PENDING_APPROVALS_URI,
  sanitizeClientName,
  toolTitle,
  type FluidMcpServer,
  type McpServerOptions,
} from '../../../src/core/mcp/server.ts';
import type { Approval } from '../../../src/shared/contract/approvals.ts';
import type { AgentMode } from '../../../src/shared/contract/agent.ts';
import { testCore } from '../../support/core.ts';

type TestCore = ReturnType<typeof testCore>;

let core: TestCore;
let tools: ToolRegistry;
let ran: string[];
const open: Array<{ client: Client; server: FluidMcpServer }> = [];

beforeEach(() => {
  core = testCore({ egress: null });
  ran = [];
  tools = new ToolRegistry({ approvals: core.approvals, audit: core.audit, settings: core.settings });
  tools.register({
    name: 'peek',
    description: 'Look at a thing.',
    input: z.object({ name: z.string().min(1).describe('What to look at') }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `peek ${i.name}`,
    run: async (i) => {
      ran.push(`peek ${i.name}`);
      return { content: `looked at ${i.name}`, data: { name: i.name, seen: true } };
    },
  });
  tools.register({
    name: 'poke',
    description: 'Change a thing.',
    input: z.object({ target: z.string() }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `poke ${i.target}`,
    run: async (i) => {
      ran.push(`poke ${i.target}`);
      return { content: `poked ${i.target}`, data: [i.target] };
    },
  });
  tools.register({
    name: 'wipe_disk',
    description: 'Erase a disk.\nSecond line.',
    input: z.object({ disk: z.string() }),
    readOnly: false,
    risk: 'high',
    summarize: (i) => `wipe_disk ${i.disk}`,
    run: async (i) => {
      ran.push(`wipe ${i.disk}`);
      return { content: `wiped ${i.disk}` };
    },
  });
});

afterEach(async () => {
  for (const c of open.splice(0)) {
    await c.client.close();
    await c.server.close();
  }
  await core.dispose();
});

async function connect(
  opts: Partial<McpServerOptions> & { mode?: AgentMode } = {},
  clientName = 'unit-client',
): Promise<{ client: Client; server: FluidMcpServer }> {
  const server = createMcpServer(
    { tools, approvals: core.approvals, log: core.log },
    { mode: 'edit', ...opts },
  );
  const client = new Client({ name: clientName, version: '1.0.0' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  const pair = { client, server };
  open.push(pair);
  return pair;
}

async function until<T>(what: string, get: () => T | undefined | null | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const pending = () => core.approvals.list({ status: 'pending', limit: 10 });
const text = (r: { content: unknown }) => (r.content as Array<{ type: string; text: string }>)[0]!.text;
const toolCalls = () =>
  core.audit
    .list({ limit: 100, action: 'tool.call' })
    .entries.map(
      (e) => ({ ...(e.data as Record<string, unknown>), actor: e.actor }) as Record<string, unknown>,
    );

describe('tools/list', () => {
  test('edit mode lists every tool with its JSON Schema, title and hints', async () => {
    const { client } = await connect();
    const { tools: listed } = await client.listTools();
    assert.deepEqual(
      listed.map((t) => t.name),
      ['peek', 'poke', 'wipe_disk'],
    );
    const peek = listed.find((t) => t.name === 'peek')!;
    assert.equal(peek.description, 'Look at a thing.');
    assert.equal(peek.title, 'Peek');
    assert.equal(peek.inputSchema.type, 'object');
    assert.deepEqual(peek.inputSchema.required, ['name']);
    assert.deepEqual(peek.inputSchema.properties, {
      name: { type: 'string', minLength: 1, description: 'What to look at' },
    });
    assert.deepEqual(peek.annotations, {
      title: 'Peek',
      readOnlyHint: true,
      destructiveHint: false,
      openWorldHint: false,
    });
    const wipe = listed.find((t) => t.name === 'wipe_disk')!;
    assert.equal(wipe.annotations?.readOnlyHint, false);
    assert.equal(wipe.annotations?.destructiveHint, true);
    assert.equal(wipe.title, 'Wipe disk');
    assert.equal(wipe._meta?.['fluid/risk'], 'high');
    assert.equal(listed.find((t) => t.name === 'poke')!.annotations?.destructiveHint, false);
  });

  test('read-only mode hides the tools that change things, and refuses them if called anyway', async () => {
    const { client } = await connect({ mode: 'read-only' });
    const { tools: listed } = await client.listTools();
    assert.deepEqual(
      listed.map((t) => t.name),
      ['peek'],
    );
    const r = (await client.callTool({ name: 'poke', arguments: { target: 'x' } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /not available in read-only mode/);
    assert.deepEqual(ran, []);
  });

  test('the server names itself and explains approvals', async () => {
    const { client } = await connect();
    assert.equal(client.getServerVersion()?.name, 'fluid');
    assert.match(client.getInstructions() ?? '', /fluid approval approve/);
  });
});

describe('tools/call', () => {
  test('an allowed call returns text and structured content, audited as the MCP client', async () => {
    const { client } = await connect();
    const r = (await client.callTool({ name: 'peek', arguments: { name: 'web-01' } })) as CallToolResult;
    assert.equal(r.isError, false);
    assert.equal(text(r), 'looked at web-01');
    assert.deepEqual(r.structuredContent, { name: 'web-01', seen: true });
    assert.deepEqual(ran, ['peek web-01']);
    const [call] = toolCalls();
    assert.deepEqual(call!.actor, { door: 'mcp', id: 'unit-client' });
    assert.equal(call!.tool, 'peek');
    assert.equal(call!.decision, 'allow');
  });

  test('data that is not an object gives no structuredContent', async () => {
    const { client } = await connect();
    const r = (await client.callTool({ name: 'poke', arguments: { target: 'a' } })) as CallToolResult;
    assert.equal(r.isError, false);
    assert.equal(r.structuredContent, undefined);
    assert.equal(text(r), 'poked a');
  });

  test('invalid arguments come back as isError with the validation message; nothing runs', async () => {
    const { client } = await connect();
    const r = (await client.callTool({ name: 'peek', arguments: { name: 5 } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /^Invalid arguments for peek: name: .*expected string/i);
    const r2 = (await client.callTool({ name: 'peek', arguments: {} })) as CallToolResult;
    assert.equal(r2.isError, true);
    assert.match(text(r2), /Invalid arguments for peek: name/);
    assert.deepEqual(ran, []);
  });

  test('an unknown tool is an error result', async () => {
    const { client } = await connect();
    const r = (await client.callTool({ name: 'nope', arguments: {} })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /no tool named nope/);
  });

  test('a deny rule in Settings refuses the call', async () => {
    core.settings.update(
      { agent: { rules: [{ tool: 'poke', decision: 'deny' }] } },
      { door: 'test', id: 't' },
    );
    const { client } = await connect();
    const r = (await client.callTool({ name: 'poke', arguments: { target: 'a' } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /Denied by policy: rule 1/);
    assert.deepEqual(ran, []);
  });

  test('the clientName option overrides the name the client gives', async () => {
    const { client } = await connect({ clientName: 'ci-runner' }, 'whatever');
    await client.callTool({ name: 'peek', arguments: { name: 'x' } });
    assert.deepEqual(toolCalls()[0]!.actor, { door: 'mcp', id: 'ci-runner' });
  });
});

describe('approvals', () => {
  test('a high-risk call blocks until a person decides from another door; progress names the approval', async () => {
    const { client } = await connect({ heartbeatMs: 100 });
    const progress: Progress[] = [];
    const logs: string[] = [];
    client.setNotificationHandler(
      LoggingMessageNotificationSchema,
      (n) => void logs.push(String(n.params.data)),
    );
    let settled = false;
    const call = client
      .callTool({ name: 'wipe_disk', arguments: { disk: 'vdb' } }, undefined, {
        onprogress: (p) => void progress.push(p),
        resetTimeoutOnProgress: true,
        timeout: 2000,
      })
      .finally(() => (settled = true));

    const [a] = await until('the approval request', () => (pending().length ? pending() : null));
    assert.equal(a!.kind, 'tool');
    assert.equal(a!.title, 'wipe_disk vdb');
    assert.equal(a!.risk, 'high');
    assert.deepEqual(a!.requestedBy, { door: 'mcp', id: 'unit-client' });
    assert.deepEqual(a!.subject, { tool: 'wipe_disk', args: { disk: 'vdb' } });

    // Longer than the client's timeout: progress notifications keep the request alive.
    await until('several progress notifications', () => progress.length >= 3);
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal(settled, false, 'still waiting');
    assert.deepEqual(ran, []);
    assert.match(progress[0]!.message!, new RegExp(`approval ${a!.id}.*fluid approval approve ${a!.id}`));
    assert.ok(
      progress.every((p, i) => i === 0 || p.progress > progress[i - 1]!.progress),
      'progress increases',
    );
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, new RegExp(`wipe_disk is waiting for approval ${a!.id}`));

    // The pending approvals resource shows it, with the command to run.
    const res = await client.readResource({ uri: PENDING_APPROVALS_URI });
    const listed = JSON.parse((res.contents[0] as { text: string }).text) as Array<
      Approval & { approve: string }
    >;
    assert.equal(listed[0]!.id, a!.id);
    assert.equal(listed[0]!.approve, `fluid approval approve ${a!.id}`);

    core.approvals.decide(a!.id, 'approve', 'ok', { door: 'cli', id: 'alice' });
    const r = (await call) as CallToolResult;
    assert.equal(r.isError, false, text(r));
    assert.equal(text(r), 'wiped vdb');
    assert.deepEqual(ran, ['wipe vdb']);

    const decided = core.audit.list({ limit: 10, action: 'approval.decide' }).entries;
    assert.equal(decided.length, 1);
    assert.deepEqual(decided[0]!.actor, { door: 'cli', id: 'alice' });
    assert.equal(decided[0]!.target, a!.id);
    assert.deepEqual(core.approvals.get(a!.id).decidedBy, { door: 'cli', id: 'alice' });
    const calls = toolCalls();
    assert.equal(calls[0]!.decision, 'approved');
    assert.equal(calls[0]!.approvalId, a!.id);
    assert.deepEqual(calls[0]!.actor, { door: 'mcp', id: 'unit-client' });
  });

  test('a long run reports progress too, so clients that abort silent calls keep waiting', async () => {
    tools.register({
      name: 'slow_job',
      description: 'Takes a while.',
      input: z.object({}),
      readOnly: true,
      risk: 'low',
      summarize: () => 'slow_job',
      run: async () => {
        await new Promise((r) => setTimeout(r, 450));
        return { content: 'done' };
      },
    });
    const { client } = await connect({ heartbeatMs: 100 });
    const progress: Progress[] = [];
    const r = (await client.callTool({ name: 'slow_job', arguments: {} }, undefined, {
      onprogress: (p) => void progress.push(p),
      resetTimeoutOnProgress: true,
      timeout: 300,
    })) as CallToolResult;
    assert.equal(text(r), 'done');
    assert.ok(progress.length >= 3, `${progress.length} progress notifications`);
    assert.match(progress[0]!.message!, /^slow_job is running \(\d+s\)\.$/);
    // No progress token, no progress notifications (and nothing breaks).
    const quiet = (await client.callTool({ name: 'slow_job', arguments: {} })) as CallToolResult;
    assert.equal(text(quiet), 'done');
  });

  test('a denied call is an error naming who denied it; the tool does not run', async () => {
    const { client } = await connect();
    const call = client.callTool({ name: 'wipe_disk', arguments: { disk: 'vda' } });
    const [a] = await until('the approval request', () => (pending().length ? pending() : null));
    core.approvals.decide(a!.id, 'deny', 'not today', { door: 'app', id: 'bob' });
    const r = (await call) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /wipe_disk was denied by app:bob: not today/);
    assert.deepEqual(ran, []);
  });

  test('an ask rule from Settings (by argument) makes an otherwise allowed tool wait', async () => {
    core.settings.update(
      { agent: { rules: [{ tool: 'poke', args: { target: '^prod' }, decision: 'ask' }] } },
      { door: 'test', id: 't' },
    );
    const { client } = await connect();
    const free = (await client.callTool({ name: 'poke', arguments: { target: 'dev-1' } })) as CallToolResult;
    assert.equal(free.isError, false);
    assert.equal(pending().length, 0);
    const call = client.callTool({ name: 'poke', arguments: { target: 'prod-db' } });
    const [a] = await until('the approval request', () => (pending().length ? pending() : null));
    assert.equal(a!.title, 'poke prod-db');
    assert.match(a!.detail, /rule 1/);
    core.approvals.decide(a!.id, 'approve', undefined, { door: 'web', id: 'carol' });
    assert.equal(((await call) as CallToolResult).isError, false);
    assert.deepEqual(ran, ['poke dev-1', 'poke prod-db']);
  });

  test('cancelling a blocked call (notifications/cancelled) cancels the approval request', async () => {
    const { client } = await connect();
    const ac = new AbortController();
    const call = client.callTool({ name: 'wipe_disk', arguments: { disk: 'vdc' } }, undefined, {
      signal: ac.signal,
    });
    const [a] = await until('the approval request', () => (pending().length ? pending() : null));
    ac.abort('changed my mind');
    await assert.rejects(call, /changed my mind|abort/i);
    const cancelled = await until('the approval to be cancelled', () => {
      const x = core.approvals.get(a!.id);
      return x.status === 'cancelled' ? x : null;
    });
    assert.equal(cancelled.note, 'the tool call was cancelled');
    const entry = core.audit.list({ limit: 10, action: 'approval.cancel' }).entries[0]!;
    assert.deepEqual(entry.actor, { door: 'mcp', id: 'unit-client' });
    assert.throws(
      () => core.approvals.decide(a!.id, 'approve', undefined, { door: 'cli', id: 'late' }),
      /cancelled/,
    );
    assert.deepEqual(ran, []);
  });

  test('a client that disconnects while waiting has its approval request cancelled', async () => {
    const { client, server } = await connect();
    void client.callTool({ name: 'wipe_disk', arguments: { disk: 'vdd' } }).catch(() => {});
    const [a] = await until('the approval request', () => (pending().length ? pending() : null));
    await client.close();
    await server.close();
    assert.equal(core.approvals.get(a!.id).status, 'cancelled', 'cancelled by the time close() returns');
    assert.deepEqual(ran, []);
  });
});

describe('helpers', () => {
  test('toolTitle and sanitizeClientName', () => {
    assert.equal(toolTitle('run_source_command'), 'Run source command');
    assert.equal(sanitizeClientName('claude-code'), 'claude-code');
    assert.equal(sanitizeClientName('  evil\u0000\nname  '), 'evilname');
    assert.equal(sanitizeClientName('x'.repeat(100))!.length, 64);
    assert.equal(sanitizeClientName(''), null);
    assert.equal(sanitizeClientName(undefined), null);
  });
});
