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
  WHO_DECIDES,
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

/** The next approval event with this status (or the current one, if it is already there). */
function approvalEvent(status: Approval['status'], id?: string): Promise<Approval> {
  const now = core.approvals.list({ status, limit: 10 }).find((a) => !id || a.id === id);
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const off = core.bus.subscribe('approvals.changed', (a) => {
      if (a.status === status && (!id || a.id === id)) {
        off();
        resolve(a);
      }
    });
  });
}
const requested = () => approvalEvent('pending');

/** Resolves once `count` progress notifications have arrived (an event count, not a clock). */
function progressCounter() {
  const seen: Progress[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    seen,
    onprogress: (p: Progress) => {
      seen.push(p);
      for (const w of waiters.splice(0))
        if (seen.length >= w.n) w.resolve();
        else waiters.push(w);
    },
    atLeast: (n: number) =>
      seen.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
  };
}
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

  test('the server names itself and says a person decides approvals, never how to decide them', async () => {
    const { client } = await connect();
    assert.equal(client.getServerVersion()?.name, 'fluid');
    const instructions = client.getInstructions() ?? '';
    assert.match(instructions, /a person decides in the Fluid app or on\s+their own terminal/);
    assert.doesNotMatch(instructions, /fluid approval|approve <|approval (approve|deny)/);
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
    const progress = progressCounter();
    const logs: string[] = [];
    client.setNotificationHandler(
      LoggingMessageNotificationSchema,
      (n) => void logs.push(String(n.params.data)),
    );
    let settled = false;
    const call = client
      .callTool({ name: 'wipe_disk', arguments: { disk: 'vdb' } }, undefined, {
        onprogress: progress.onprogress,
        resetTimeoutOnProgress: true,
        timeout: 250,
      })
      .finally(() => (settled = true));

    const a = await requested();
    assert.equal(a.kind, 'tool');
    assert.equal(a.title, 'wipe_disk vdb');
    assert.equal(a.risk, 'high');
    assert.deepEqual(a.requestedBy, { door: 'mcp', id: 'unit-client' });
    assert.deepEqual(a.subject, { tool: 'wipe_disk', args: { disk: 'vdb' } });

    // Six heartbeats 100 ms apart outlast the client's 250 ms timeout: progress keeps the call alive.
    await progress.atLeast(6);
    assert.equal(settled, false, 'still waiting');
    assert.deepEqual(ran, []);
    const first = progress.seen[0]!.message!;
    assert.ok(first.startsWith(`Waiting for approval ${a.id} (`), first);
    assert.ok(first.endsWith(WHO_DECIDES), first);
    for (const p of progress.seen) assert.doesNotMatch(p.message ?? '', /fluid approval|approve </);
    assert.ok(
      progress.seen.every((p, i) => i === 0 || p.progress > progress.seen[i - 1]!.progress),
      'progress increases',
    );
    assert.deepEqual(logs, [`wipe_disk is waiting for approval ${a.id}. ${WHO_DECIDES}`]);

    // The pending approvals resource shows it, and who decides; not how.
    const res = await client.readResource({ uri: PENDING_APPROVALS_URI });
    const resText = (res.contents[0] as { text: string }).text;
    assert.doesNotMatch(resText, /fluid approval|approve </);
    const listed = JSON.parse(resText) as Array<Approval & { decision: string }>;
    assert.equal(listed[0]!.id, a.id);
    assert.equal(listed[0]!.decision, WHO_DECIDES);
    assert.ok(!('approve' in listed[0]!));

    // A person decides (in-process: the test door stands for the app's confirmed decision).
    core.approvals.decide(a.id, 'approve', 'ok', { door: 'test', id: 'alice' });
    const r = (await call) as CallToolResult;
    assert.equal(r.isError, false, text(r));
    assert.equal(text(r), 'wiped vdb');
    assert.deepEqual(ran, ['wipe vdb']);

    const decided = core.audit.list({ limit: 10, action: 'approval.decide' }).entries;
    assert.equal(decided.length, 1);
    assert.deepEqual(decided[0]!.actor, { door: 'test', id: 'alice' });
    assert.equal(decided[0]!.target, a.id);
    assert.deepEqual(core.approvals.get(a.id).decidedBy, { door: 'test', id: 'alice' });
    const calls = toolCalls();
    assert.equal(calls[0]!.decision, 'approved');
    assert.equal(calls[0]!.approvalId, a.id);
    assert.deepEqual(calls[0]!.actor, { door: 'mcp', id: 'unit-client' });
  });

  test('a long run reports progress too, so clients that abort silent calls keep waiting', async () => {
    // The job runs until the test lets it finish: after enough heartbeats to outlast the timeout.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    tools.register({
      name: 'slow_job',
      description: 'Takes a while.',
      input: z.object({}),
      readOnly: true,
      risk: 'low',
      summarize: () => 'slow_job',
      run: async () => {
        await gate;
        return { content: 'done' };
      },
    });
    const { client } = await connect({ heartbeatMs: 100 });
    const progress = progressCounter();
    const call = client.callTool({ name: 'slow_job', arguments: {} }, undefined, {
      onprogress: progress.onprogress,
      resetTimeoutOnProgress: true,
      timeout: 250,
    });
    // Four heartbeats 100 ms apart: longer than the 250 ms timeout, which progress kept resetting.
    await progress.atLeast(4);
    release();
    const r = (await call) as CallToolResult;
    assert.equal(text(r), 'done');
    assert.match(progress.seen[0]!.message!, /^slow_job is running \(\d+s\)\.$/);
    // No progress token, no progress notifications (and nothing breaks).
    const quiet = (await client.callTool({ name: 'slow_job', arguments: {} })) as CallToolResult;
    assert.equal(text(quiet), 'done');
  });

  test('a denied call is an error naming who denied it; the tool does not run', async () => {
    const { client } = await connect();
    const call = client.callTool({ name: 'wipe_disk', arguments: { disk: 'vda' } });
    const a = await requested();
    core.approvals.decide(a.id, 'deny', 'not today', { door: 'app', id: 'bob' });
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
    assert.equal(core.approvals.list({ status: 'pending', limit: 10 }).length, 0);
    const call = client.callTool({ name: 'poke', arguments: { target: 'prod-db' } });
    const a = await requested();
    assert.equal(a.title, 'poke prod-db');
    assert.match(a.detail, /rule 1/);
    core.approvals.decide(a.id, 'approve', undefined, { door: 'web', id: 'carol' });
    assert.equal(((await call) as CallToolResult).isError, false);
    assert.deepEqual(ran, ['poke dev-1', 'poke prod-db']);
  });

  test('cancelling a blocked call (notifications/cancelled) cancels the approval request', async () => {
    const { client } = await connect();
    const ac = new AbortController();
    const call = client.callTool({ name: 'wipe_disk', arguments: { disk: 'vdc' } }, undefined, {
      signal: ac.signal,
    });
    const a = await requested();
    ac.abort('changed my mind');
    await assert.rejects(call, /changed my mind|abort/i);
    const cancelled = await approvalEvent('cancelled', a.id);
    assert.equal(cancelled.note, 'the tool call was cancelled');
    const entry = core.audit.list({ limit: 10, action: 'approval.cancel' }).entries[0]!;
    assert.deepEqual(entry.actor, { door: 'mcp', id: 'unit-client' });
    assert.throws(
      () => core.approvals.decide(a.id, 'approve', undefined, { door: 'app', id: 'late' }),
      /cancelled/,
    );
    assert.deepEqual(ran, []);
  });

  test('a client that disconnects while waiting has its approval request cancelled', async () => {
    const { client, server } = await connect();
    void client.callTool({ name: 'wipe_disk', arguments: { disk: 'vdd' } }).catch(() => {});
    const a = await requested();
    await client.close();
    await server.close();
    assert.equal(core.approvals.get(a.id).status, 'cancelled', 'cancelled by the time close() returns');
    assert.deepEqual(ran, []);
  });
});

describe('redaction: what reaches the client has no secret in it', () => {
  const STORED = 'sk-proj-STOREDkey-0123456789abcdef';
  const CONFIG = [
    '# /etc/app/config.ini (read in a sandbox)',
    'db_host = 10.0.0.5',
    'db_password = S3cr3t-Pa55w0rd!',
    'api_token: ghp_0123456789abcdefghijABCDEFGHIJ012345',
    `upstream_key=${STORED}`,
    '-----BEGIN OPENSSH PRIVATE KEY-----',
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
    'QyNTUxOQAAACBcX3Jmb3JnZXRtZW5vdAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==',
    '-----END OPENSSH PRIVATE KEY-----',
    'url = postgres://app:DbPa55word-9@db.internal:5432/app',
  ].join('\n');
  const RAW = [
    'S3cr3t-Pa55w0rd!',
    'ghp_0123456789abcdefghijABCDEFGHIJ012345',
    STORED,
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ',
    'DbPa55word-9',
    'structured-secret-value',
  ];

  beforeEach(() => {
    core.secrets.set('provider/openai', STORED);
    tools = new ToolRegistry({
      approvals: core.approvals,
      audit: core.audit,
      settings: core.settings,
      knownSecrets: () => core.secrets.values(),
    });
    tools.register({
      name: 'read_config',
      description: 'Read a config file.',
      input: z.object({ path: z.string() }),
      readOnly: true,
      risk: 'low',
      summarize: (i) => `read_config ${i.path}`,
      run: async (i) => ({
        content: CONFIG,
        data: { path: i.path, password: 'structured-secret-value', nested: { lines: CONFIG.split('\n') } },
      }),
    });
    tools.register({
      name: 'failing_read',
      description: 'Fails, quoting what it read.',
      input: z.object({}),
      readOnly: true,
      risk: 'low',
      summarize: () => 'failing_read',
      run: async () => {
        throw new Error(`parse error near "db_password = S3cr3t-Pa55w0rd!" and ${STORED}`);
      },
    });
  });

  test('a file with a private key, passwords, tokens and a stored secret comes back redacted, text and structure', async () => {
    const { client } = await connect();
    const r = (await client.callTool({
      name: 'read_config',
      arguments: { path: '/etc/app/config.ini' },
    })) as CallToolResult;
    assert.equal(r.isError, false);
    const wire = JSON.stringify(r);
    for (const v of RAW) assert.ok(!wire.includes(v), `${v} reached the client`);
    const t = text(r);
    assert.match(t, /db_password = \[REDACTED:password#\d+\]/);
    assert.match(t, /\n\[REDACTED:private-key#\d+\]\nurl = /, 'the whole key block is one placeholder');
    assert.match(t, /db_host = 10\.0\.0\.5/, 'what is not secret stays readable');
    const data = r.structuredContent as { path: string; password: string };
    assert.equal(data.path, '/etc/app/config.ini');
    assert.match(data.password, /^\[REDACTED:password#\d+\]$/);

    // The same connection sees the same placeholder for the same secret.
    const again = (await client.callTool({
      name: 'read_config',
      arguments: { path: '/x' },
    })) as CallToolResult;
    assert.equal(text(again), t);
    const e = (await client.callTool({ name: 'failing_read', arguments: {} })) as CallToolResult;
    assert.equal(e.isError, true);
    assert.ok(!JSON.stringify(e).includes('S3cr3t-Pa55w0rd!') && !JSON.stringify(e).includes(STORED));
    assert.match(text(e), /db_password = \[REDACTED:password#\d+\]/);
  });

  test('the gate redacts for every door: an invoke without a door redactor is redacted too', async () => {
    const out = await tools.invoke(
      'read_config',
      { path: '/p' },
      {
        actor: { door: 'mcp', id: 'x' },
        sessionId: null,
        mode: 'edit',
        signal: new AbortController().signal,
      },
    );
    for (const v of RAW) assert.ok(!JSON.stringify({ c: out.content, d: out.data }).includes(v), v);
    assert.ok(out.redactions >= 5, `${out.redactions} redactions`);
    assert.equal(out.unredacted, CONFIG, 'the raw text is kept for people, apart from content and data');
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
