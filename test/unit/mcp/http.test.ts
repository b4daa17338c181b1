/**
 * The MCP door over streamable HTTP, in process: the checks in front (token, Origin, Host), sessions,
 * and what happens to a call waiting for approval when the client cancels, disconnects, or the server
 * stops.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ToolRegistry } from '../../../src/core/agent/tools/registry.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../../src/core/mcp/http.ts';
import { WHO_DECIDES } from '../../../src/core/mcp/server.ts';
import type { Approval } from '../../../src/shared/contract/approvals.ts';
import { testCore } from '../../support/core.ts';

let core: ReturnType<typeof testCore>;
let tools: ToolRegistry;
let mcp: McpHttpServer;
let ran: string[];
const clients: Client[] = [];

beforeEach(async () => {
  core = testCore({ egress: null });
  ran = [];
  tools = new ToolRegistry({ approvals: core.approvals, audit: core.audit, settings: core.settings });
  tools.register({
    name: 'peek',
    description: 'Look.',
    input: z.object({ name: z.string() }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `peek ${i.name}`,
    run: async (i) => ({ content: `saw ${i.name}`, data: { name: i.name } }),
  });
  tools.register({
    name: 'wipe_disk',
    description: 'Erase a disk.',
    input: z.object({ disk: z.string() }),
    readOnly: false,
    risk: 'high',
    summarize: (i) => `wipe_disk ${i.disk}`,
    run: async (i) => {
      ran.push(i.disk);
      return { content: `wiped ${i.disk}` };
    },
  });
  mcp = await startMcpHttpServer({
    core: { tools, approvals: core.approvals, log: core.log },
    mode: 'edit',
    heartbeatMs: 200,
  });
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await mcp.close();
  await core.dispose();
});

async function client(name = 'http-client', token = mcp.token): Promise<Client> {
  const c = new Client({ name, version: '1.0.0' });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(mcp.url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  clients.push(c);
  return c;
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
const pendingOne = () => approvalEvent('pending');

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
};

function post(headers: Record<string, string>, body: unknown = INIT, path = '/mcp') {
  return fetch(new URL(path, mcp.url), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

describe('in front of the protocol', () => {
  test('the URL is loopback and the token is random and long', () => {
    assert.match(mcp.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    assert.ok(mcp.token.length >= 32);
  });

  test('no token or a wrong token: 401 with a Bearer challenge; no session is made', async () => {
    const none = await post({});
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await post({ authorization: `Bearer ${mcp.token}x` })).status, 401);
    assert.equal((await post({ authorization: mcp.token })).status, 401);
    assert.equal(mcp.sessions, 0);
    await assert.rejects(client('c', 'wrong-token-wrong-token'), /401|Unauthorized/);
  });

  test('a foreign Origin is refused even with the token (DNS rebinding, cross-site pages)', async () => {
    const r = await post({ authorization: `Bearer ${mcp.token}`, origin: 'http://evil.example' });
    assert.equal(r.status, 403);
    const same = await post({ authorization: `Bearer ${mcp.token}`, origin: `http://127.0.0.1:${mcp.port}` });
    assert.equal(same.status, 200);
  });

  test('a Host header that is not this loopback server is refused', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: mcp.port,
          path: '/mcp',
          method: 'POST',
          headers: {
            host: `attacker.example:${mcp.port}`,
            authorization: `Bearer ${mcp.token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(INIT));
    });
    assert.equal(status, 421);
  });

  test('other paths are 404; requests without a session are 400; unknown sessions 404', async () => {
    const auth = { authorization: `Bearer ${mcp.token}` };
    assert.equal((await post(auth, INIT, '/other')).status, 404);
    assert.equal((await post(auth, { jsonrpc: '2.0', id: 2, method: 'tools/list' })).status, 400);
    assert.equal(
      (await post({ ...auth, 'mcp-session-id': 'nope' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' }))
        .status,
      404,
    );
  });

  test('only loopback interfaces are accepted', async () => {
    await assert.rejects(
      startMcpHttpServer({ core: { tools, approvals: core.approvals }, mode: 'edit', host: '0.0.0.0' }),
      /loopback only/,
    );
  });
});

describe('sessions', () => {
  test('each client gets its own session, named after the client in the audit log', async () => {
    const a = await client('alpha');
    const b = await client('beta');
    assert.equal(mcp.sessions, 2);
    assert.deepEqual(
      (await a.listTools()).tools.map((t) => t.name),
      ['peek', 'wipe_disk'],
    );
    const r = (await b.callTool({ name: 'peek', arguments: { name: 'x' } })) as CallToolResult;
    assert.deepEqual(r.structuredContent, { name: 'x' });
    await a.callTool({ name: 'peek', arguments: { name: 'y' } });
    const actors = core.audit
      .list({ limit: 10, action: 'tool.call' })
      .entries.map((e) => e.actor.id)
      .sort();
    assert.deepEqual(actors, ['alpha', 'beta']);
  });

  test('a call waiting for approval gets progress over its SSE response and completes when approved', async () => {
    const c = await client();
    const progress: string[] = [];
    let enough!: () => void;
    const sixBeats = new Promise<void>((resolve) => (enough = resolve));
    const call = c.callTool({ name: 'wipe_disk', arguments: { disk: 'vdb' } }, undefined, {
      onprogress: (p) => {
        progress.push(p.message ?? '');
        if (progress.length === 6) enough();
      },
      resetTimeoutOnProgress: true,
      timeout: 500,
    });
    const a = await pendingOne();
    assert.deepEqual(a.requestedBy, { door: 'mcp', id: 'http-client' });
    // Six heartbeats 200 ms apart outlast the client's 500 ms timeout: progress keeps the call open.
    await sixBeats;
    assert.ok(progress[0]!.startsWith(`Waiting for approval ${a.id} (`), progress[0]);
    assert.ok(progress[0]!.endsWith(WHO_DECIDES), progress[0]);
    for (const p of progress) assert.doesNotMatch(p, /fluid approval|approve </);
    // A person decides (in-process: the test door stands for the app's confirmed decision).
    core.approvals.decide(a.id, 'approve', undefined, { door: 'test', id: 'alice' });
    const r = (await call) as CallToolResult;
    assert.equal(r.isError, false);
    assert.deepEqual(ran, ['vdb']);
  });

  test('cancelling the request cancels the approval request', async () => {
    const c = await client();
    const ac = new AbortController();
    const call = c.callTool({ name: 'wipe_disk', arguments: { disk: 'vdc' } }, undefined, {
      signal: ac.signal,
    });
    const a = await pendingOne();
    ac.abort();
    await assert.rejects(call);
    await approvalEvent('cancelled', a.id);
    assert.deepEqual(ran, []);
  });

  test('a client that drops the response while waiting has its approval request cancelled', async () => {
    const c = await client();
    await c.listTools();
    const sid = (c.transport as StreamableHTTPClientTransport).sessionId!;
    const ac = new AbortController();
    const raw = fetch(mcp.url, {
      method: 'POST',
      signal: ac.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${mcp.token}`,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'raw-1',
        method: 'tools/call',
        params: { name: 'wipe_disk', arguments: { disk: 'vde' } },
      }),
    });
    const res = await raw;
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const a = await pendingOne();
    ac.abort();
    await approvalEvent('cancelled', a.id);
    assert.deepEqual(ran, []);
  });

  test('DELETE ends a session', async () => {
    const c = await client();
    assert.equal(mcp.sessions, 1);
    await (c.transport as StreamableHTTPClientTransport).terminateSession();
    assert.equal(mcp.sessions, 0, 'the session is gone once DELETE has been answered');
  });

  test('stopping the server cancels the approval requests of calls in flight', async () => {
    const c = await client();
    void c.callTool({ name: 'wipe_disk', arguments: { disk: 'vdf' } }).catch(() => {});
    const a = await pendingOne();
    await mcp.close();
    assert.equal(core.approvals.get(a.id).status, 'cancelled');
    assert.deepEqual(ran, []);
  });
});
