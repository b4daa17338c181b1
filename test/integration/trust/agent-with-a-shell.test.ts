/**
 * The threat Fluid's approvals are built against: an MCP client (Claude Code and the like) that waits
 * on an approval while holding a shell as the same OS user. Every way it has to get its own request
 * decided is tried for real — the CLI without a terminal, `--yes`, loosening the rules or allowing
 * unattended decisions through settings, and the web door with anything it can read in the data dir —
 * and each must fail and change nothing. A person on a terminal (a real pty) and a person in the web
 * UI (the token from the URL they were shown) still decide.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LoggingMessageNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createCore, type Core } from '../../../src/core/createCore.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import { startWebServer, type WebServer } from '../../../src/core/doors/web.ts';
import { createLogger } from '../../../src/core/platform/logger.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import { connectWebSocket } from '../../../src/shared/web.ts';
import type { Approval } from '../../../src/shared/contract/approvals.ts';
import { FLUID_BIN, fluid, fluidOnTerminal } from '../../support/cli.ts';
import { tempDir } from '../../support/core.ts';

const data = tempDir('fluid-trust-');
let core: Core;
let web: WebServer;
let mcp: Client;
const mcpText: string[] = [];

const shell = (args: string[]) => fluid(args, { dataDir: data.dir });

before(async () => {
  core = createCore({
    dataDir: data.dir,
    secrets: new MemorySecretStore(),
    logger: createLogger({ level: 'error' }),
    egress: null,
  });
  // The person's rule: listing hosts asks first (so the client has something to wait on).
  await connectInProcess(core, { door: 'test', id: 'setup' }).call('settings.update', {
    agent: { rules: [{ tool: 'list_hosts', decision: 'ask' }] },
  });
  web = await startWebServer({ core, staticDir: null, writeDiscoveryFile: true });

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [FLUID_BIN, 'mcp'],
    env: { ...env, FLUID_DATA_DIR: data.dir },
    stderr: 'pipe',
  });
  mcp = new Client({ name: 'claude-code', version: '2.1.197' });
  mcp.setNotificationHandler(
    LoggingMessageNotificationSchema,
    (n) => void mcpText.push(JSON.stringify(n.params)),
  );
  await mcp.connect(transport);
  mcpText.push(mcp.getInstructions() ?? '');
});

after(async () => {
  await mcp?.close().catch(() => {});
  await web?.close();
  await core?.close();
  data.cleanup();
});

const seen = new Set<string>();
/** The next request the client files (each test waits on its own). */
async function pendingFor(client: string): Promise<Approval> {
  for (;;) {
    const a = core.approvals
      .list({ status: 'pending', limit: 10 })
      .find((x) => x.requestedBy.id === client && !seen.has(x.id));
    if (a) {
      seen.add(a.id);
      return a;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every readable file under the data dir, as an agent with a shell would read it. */
function readDataDir(dir: string): string {
  let all = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) all += readDataDir(p);
    else all += readFileSync(p).toString('latin1') + '\n';
  }
  return all;
}

test('an MCP client with a shell cannot get its own pending call decided; a person on a terminal can', async () => {
  const call = mcp.callTool({ name: 'list_hosts', arguments: {} }, undefined, { timeout: 300_000 });
  const a = await pendingFor('claude-code');

  // 1. The CLI from the agent's shell: no terminal.
  const approve = await shell(['approval', 'approve', a.id]);
  assert.equal(approve.code, 1, approve.stderr);
  assert.match(approve.stderr, /no terminal/);
  const yes = await shell(['approval', 'approve', a.id, '--yes']);
  assert.equal(yes.code, 1);
  assert.match(yes.stderr, /Unattended CLI decisions are off/);

  // 2. Loosen the rules, or allow unattended decisions, through settings.
  const rules = await shell(['settings', 'set', 'agent.rules=[{"tool":"*","decision":"allow"}]']);
  assert.equal(rules.code, 1);
  assert.match(rules.stderr, /DENIED/);
  const unattended = await shell(['settings', 'set', 'approvals.allowUnattendedCli=true']);
  assert.equal(unattended.code, 1);
  assert.equal(core.settings.get().approvals.allowUnattendedCli, false);
  assert.deepEqual(core.settings.get().agent.rules, [{ tool: 'list_hosts', decision: 'ask' }]);

  // 3. The web door with anything in the data dir: the discovery file holds no token.
  const discovery = JSON.parse(readFileSync(join(data.dir, 'server.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(discovery.token, undefined);
  assert.equal(typeof discovery.tokenSha256, 'string');
  const everything = readDataDir(data.dir);
  assert.ok(!everything.includes(web.token), 'the token is nowhere in the data dir');
  const candidates = new Set(everything.match(/[A-Za-z0-9_-]{24,}/g) ?? []);
  assert.ok(candidates.size > 0);
  let refused = 0;
  for (const guess of [...candidates].slice(0, 40)) {
    await assert.rejects(connectWebSocket(WebSocket as never, web.origin, guess));
    refused++;
  }
  assert.ok(refused > 0);

  // Nothing was decided, and the MCP client was never told how to decide.
  assert.equal(core.approvals.get(a.id).status, 'pending');
  assert.equal(core.audit.list({ limit: 100, action: 'approval.decide' }).entries.length, 0);
  assert.doesNotMatch(mcpText.join('\n'), /fluid approval approve/);

  // A person at a real terminal (a pty) confirms, and the call goes ahead.
  const person = await fluidOnTerminal(['approval', 'approve', a.id], { dataDir: data.dir, answer: 'y\n' });
  assert.equal(person.code, 0, person.out);
  const decided = core.approvals.get(a.id);
  assert.equal(decided.status, 'approved');
  assert.equal(decided.decidedBy?.door, 'cli');
  assert.equal(decided.decidedVia, 'terminal');
  const result = (await call) as CallToolResult;
  assert.equal(result.isError, false, JSON.stringify(result.content));
});

test('a person in the web UI, holding the URL they were shown, decides with an in-window confirmation', async () => {
  const call = mcp.callTool({ name: 'list_hosts', arguments: {} }, undefined, { timeout: 300_000 });
  const a = await pendingFor('claude-code');
  const token = new URL(web.url).hash.replace(/^#token=/, '');
  const person = await connectWebSocket(WebSocket as never, web.origin, token);
  try {
    const out = await person.call('approvals.decide', { id: a.id, decision: 'deny', note: 'not now' });
    assert.equal(out.status, 'denied');
    assert.equal(out.decidedBy?.door, 'web');
    // A high-risk request (new egress) needs the person's explicit confirmation in the window.
    const egress = core.approvals.request({
      kind: 'egress',
      title: 'egress to 169.254.169.254:80',
      detail: 'a sandbox asks to reach the metadata address',
      risk: 'high',
      subject: { destination: '169.254.169.254:80' },
      requestedBy: { door: 'mcp', id: 'claude-code' },
    });
    await assert.rejects(
      person.call('approvals.decide', { id: egress.id, decision: 'approve' }),
      (e: { code: string; data: { presence: { methods: string[] } } }) =>
        e.code === 'DENIED' && e.data.presence.methods.join() === 'confirm',
    );
    const ok = await person.call('approvals.decide', {
      id: egress.id,
      decision: 'approve',
      presence: { kind: 'confirm' },
    });
    assert.equal(ok.decidedVia, 'confirm');
  } finally {
    person.close();
  }
  const result = (await call) as CallToolResult;
  assert.equal(result.isError, true);
  assert.match(JSON.stringify(result.content), /denied/);
});
