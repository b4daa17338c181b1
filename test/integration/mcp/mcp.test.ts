/**
 * `fluid mcp` as a real subprocess, driven by the official MCP SDK client: over stdio and over
 * streamable HTTP. Approvals are decided by a person through another door (a core in this process,
 * serving the app's door on the same data dir); the client is only told that a person decides. One
 * call reaches the lab's libvirt host over SSH, and a read on the production VM comes back redacted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  LoggingMessageNotificationSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { createCore } from '../../../src/core/createCore.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import type { Approval } from '../../../src/shared/contract/approvals.ts';
import type { AuditEntry } from '../../../src/shared/contract/audit.ts';
import type { ToolInfo } from '../../../src/shared/contract/agent.ts';
import { FLUID_BIN, fluid } from '../../support/cli.ts';
import { tempDir, testCore } from '../../support/core.ts';
import { requireLab, type Lab } from '../../support/lab.ts';

const data = tempDir('fluid-mcp-it-');
const run = (args: string[], stdin?: string) => fluid(args, { dataDir: data.dir, stdin });
const env = (extra: Record<string, string> = {}) => {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) e[k] = v;
  return { ...e, FLUID_DATA_DIR: data.dir, ...extra };
};
const clients: Client[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  data.cleanup();
});

async function stdioClient(
  args: string[] = [],
  name = 'it-stdio',
): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [FLUID_BIN, 'mcp', ...args],
    env: env(),
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return { client, stderr: () => err };
}

interface HttpInfo {
  url: string;
  port: number;
  token: string;
  mode: string;
  tools: number;
  pid: number;
}

/** `fluid mcp --http --json`: the first stdout line says where it listens. */
async function startHttp(
  args: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<{ child: ChildProcess; info: HttpInfo; exited: Promise<number | null>; stderr: () => string }> {
  const child = spawn(process.execPath, [FLUID_BIN, 'mcp', '--http', '--json', ...args], {
    env: env(extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    void exited.then((code) =>
      reject(new Error(`fluid mcp --http exited ${code} before listening:\n${err}`)),
    );
  });
  return { child, info: JSON.parse(line) as HttpInfo, exited, stderr: () => err };
}

async function httpClient(info: HttpInfo, name = 'it-http'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(info.url), {
      requestInit: { headers: { Authorization: `Bearer ${info.token}` } },
    }),
  );
  clients.push(client);
  return client;
}

async function until<T>(
  what: string,
  get: () => Promise<T | null | undefined | false>,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const text = (r: { content: unknown }) => (r.content as Array<{ text: string }>)[0]!.text;
const approvals = async (status: string) =>
  (await run(['approval', 'list', '--status', status, '--json'])).json<Approval[]>();

/** Change settings the way the app does: through the contract, on the same data dir. */
async function setRules(rules: unknown[]): Promise<void> {
  const core = createCore({ dataDir: data.dir, egress: null });
  try {
    await connectInProcess(core, { door: 'test', id: 'settings' }).call('settings.update', {
      agent: { rules },
    } as never);
  } finally {
    await core.close();
  }
}

let registry: ToolInfo[];
before(async () => {
  // What the rest of Fluid says the tools are (the contract's tools.list, from a core of its own).
  const core = testCore({ egress: null });
  try {
    registry = await connectInProcess(core, { door: 'test', id: 'parity' }).call('tools.list', {});
  } finally {
    await core.dispose();
  }
});

const mcpShape = (tools: Tool[]) =>
  tools.map((t) => ({
    name: t.name,
    description: t.description,
    readOnly: t.annotations?.readOnlyHint,
    risk: t._meta?.['fluid/risk'],
    inputSchema: t.inputSchema,
  }));
const registryShape = (tools: ToolInfo[]) =>
  tools.map((t) => ({
    name: t.name,
    description: t.description,
    readOnly: t.readOnly,
    risk: t.risk,
    inputSchema: t.inputSchema,
  }));

describe('fluid mcp over stdio', () => {
  // One server for the tests that need nothing special (each start costs a couple of seconds).
  let shared: Awaited<ReturnType<typeof stdioClient>>;
  before(async () => {
    shared = await stdioClient([], 'it-stdio');
  });

  test('lists exactly the registry of every other door (names, descriptions, schemas)', async () => {
    const { client, stderr } = shared;
    assert.equal(client.getServerVersion()?.name, 'fluid');
    const { tools } = await client.listTools();
    assert.ok(tools.length >= 5, `${tools.length} tools`);
    assert.deepEqual(mcpShape(tools), registryShape(registry));
    assert.match(stderr(), /Fluid MCP server on stdio \(edit mode/);
  });

  test('--read-only lists only the tools that change nothing, and refuses the others', async () => {
    const { client } = await stdioClient(['--read-only']);
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      registry.filter((t) => t.readOnly).map((t) => t.name),
    );
    assert.ok(tools.every((t) => t.annotations?.readOnlyHint === true));
    assert.ok(!tools.some((t) => t.name === 'create_sandbox'));
    const r = (await client.callTool({
      name: 'create_playbook',
      arguments: { name: 'x' },
    })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /read-only mode/);
  });

  test('list_hosts answers with the local host, structured; the audit log names the MCP client', async () => {
    const { client } = shared;
    const r = (await client.callTool({ name: 'list_hosts', arguments: {} })) as CallToolResult;
    assert.equal(r.isError, false, text(r));
    const hosts = (r.structuredContent as { hosts: Array<{ host: string; target: string }> }).hosts;
    assert.ok(
      hosts.some((h) => h.host === 'local' && h.target === 'local machine'),
      JSON.stringify(hosts),
    );
    assert.match(text(r), /"host": "local"/);
    const audit = (await run(['audit', 'list', '--json', '--limit', '50'])).json<{ entries: AuditEntry[] }>();
    const call = audit.entries.find((e) => e.action === 'tool.call' && e.actor.id === 'it-stdio');
    assert.ok(call, 'tool.call audited');
    assert.equal(call.actor.door, 'mcp');
    assert.equal((call.data as { tool: string }).tool, 'list_hosts');
  });

  test('invalid arguments come back as a tool error with the validation message', async () => {
    const { client } = shared;
    const r = (await client.callTool({ name: 'list_vms', arguments: { host: 42 } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /Invalid arguments for list_vms: host:/);
  });

  test('a call that needs approval waits for a person in another door; the client is never told how to decide', async () => {
    await setRules([{ tool: 'create_playbook', decision: 'ask' }]);
    try {
      const { client } = shared;
      const instructions = client.getInstructions() ?? '';
      assert.match(instructions, /a person decides in the Fluid app or on\s+their own terminal/);
      const logs: string[] = [];
      client.setNotificationHandler(
        LoggingMessageNotificationSchema,
        (n) => void logs.push(String(n.params.data)),
      );
      const progress: string[] = [];
      let settled = false;
      const call = client
        .callTool({ name: 'create_playbook', arguments: { name: 'nginx-fix' } }, undefined, {
          onprogress: (p) => void progress.push(p.message ?? ''),
          resetTimeoutOnProgress: true,
        })
        .finally(() => (settled = true));

      const [a] = await until('the approval request', async () => {
        const p = await approvals('pending');
        return p.length ? p : null;
      });
      assert.equal(a!.title, 'create_playbook nginx-fix');
      assert.deepEqual(a!.requestedBy, { door: 'mcp', id: 'it-stdio' });
      await until('the log message', async () => logs.length > 0 && progress.length > 0);
      assert.equal(settled, false);
      const told = [instructions, ...logs, ...progress].join('\n');
      assert.doesNotMatch(told, /fluid approval|approval approve|approve </);
      assert.match(logs[0]!, /A person must decide in the Fluid app or on their own terminal\./);
      const res = await client.readResource({ uri: 'fluid://approvals/pending' });
      assert.doesNotMatch((res.contents[0] as { text: string }).text, /fluid approval|approve </);

      // A person decides in the app: another process's core, the app's door, on the same data dir.
      const app = createCore({ dataDir: data.dir, egress: null });
      try {
        await connectInProcess(app, { door: 'app', id: 'person' }).call('approvals.decide', {
          id: a!.id,
          decision: 'approve',
          note: 'looks fine',
        });
      } finally {
        await app.close();
      }

      const r = (await call) as CallToolResult;
      assert.equal(r.isError, false, text(r));
      assert.match(text(r), /Created playbook nginx-fix/);
      const listed = (await client.callTool({ name: 'list_playbooks', arguments: {} })) as CallToolResult;
      assert.match(text(listed), /nginx-fix/);

      const audit = (await run(['audit', 'list', '--json', '--limit', '50'])).json<{
        entries: AuditEntry[];
      }>();
      const decide = audit.entries.find((e) => e.action === 'approval.decide' && e.target === a!.id)!;
      assert.deepEqual(decide.actor, { door: 'app', id: 'person' });
      const toolCall = audit.entries.find(
        (e) => e.action === 'tool.call' && (e.data as { approvalId?: string }).approvalId === a!.id,
      )!;
      assert.equal((toolCall.data as { decision: string }).decision, 'approved');
      assert.deepEqual(toolCall.actor, { door: 'mcp', id: 'it-stdio' });
    } finally {
      await setRules([]);
    }
  });

  test('when the client goes away mid-wait, the server exits and withdraws the approval request', async () => {
    await setRules([{ tool: 'create_playbook', decision: 'ask' }]);
    try {
      const { client } = await stdioClient();
      const transport = client.transport as StdioClientTransport;
      const pid = transport.pid!;
      void client.callTool({ name: 'create_playbook', arguments: { name: 'abandoned' } }).catch(() => {});
      const [a] = await until('the approval request', async () => {
        const p = await approvals('pending');
        return p.length ? p : null;
      });
      await client.close(); // closes stdin
      await until('the server process to exit', async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      });
      const cancelled = (await approvals('cancelled')).find((x) => x.id === a!.id);
      assert.ok(cancelled, 'the request was withdrawn');
    } finally {
      await setRules([]);
    }
  });
});

describe('fluid mcp --http', () => {
  let server: Awaited<ReturnType<typeof startHttp>>;
  before(async () => {
    server = await startHttp();
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });

  test('prints a loopback URL and a random token', () => {
    assert.match(server.info.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    assert.ok(server.info.token.length >= 32);
    assert.equal(server.info.mode, 'edit');
  });

  test('with the token: the same tools as stdio, and list_hosts works', async () => {
    const client = await httpClient(server.info);
    const { tools } = await client.listTools();
    assert.deepEqual(mcpShape(tools), registryShape(registry));
    const r = (await client.callTool({ name: 'list_hosts', arguments: {} })) as CallToolResult;
    assert.equal(r.isError, false);
    assert.ok(
      (r.structuredContent as { hosts: Array<{ host: string }> }).hosts.some((h) => h.host === 'local'),
    );
  });

  test('without the token: 401; with a foreign Origin: 403', async () => {
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '0' } },
    };
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const none = await fetch(server.info.url, { method: 'POST', headers, body: JSON.stringify(init) });
    assert.equal(none.status, 401);
    const foreign = await fetch(server.info.url, {
      method: 'POST',
      headers: {
        ...headers,
        authorization: `Bearer ${server.info.token}`,
        origin: 'http://attacker.example',
      },
      body: JSON.stringify(init),
    });
    assert.equal(foreign.status, 403);
    const bad = new Client({ name: 'nope', version: '0' });
    await assert.rejects(
      bad.connect(
        new StreamableHTTPClientTransport(new URL(server.info.url), {
          requestInit: { headers: { Authorization: 'Bearer not-the-token-not-the-token' } },
        }),
      ),
    );
  });

  test('SIGTERM stops it cleanly and withdraws the approval requests of calls in flight', async () => {
    await setRules([{ tool: 'create_playbook', decision: 'ask' }]);
    try {
      const token = 'a-token-from-the-environment-123';
      const own = await startHttp(['--read-only'], { FLUID_MCP_TOKEN: token });
      assert.equal(own.info.token, token);
      assert.equal(own.info.mode, 'read-only');
      own.child.kill('SIGTERM');
      assert.equal(await own.exited, 0, own.stderr());

      const edit = await startHttp();
      const client = await httpClient(edit.info);
      void client.callTool({ name: 'create_playbook', arguments: { name: 'interrupted' } }).catch(() => {});
      const [a] = await until('the approval request', async () => {
        const p = await approvals('pending');
        return p.length ? p : null;
      });
      edit.child.kill('SIGTERM');
      assert.equal(await edit.exited, 0, edit.stderr());
      assert.ok(
        (await approvals('cancelled')).some((x) => x.id === a!.id),
        'withdrawn',
      );
    } finally {
      await setRules([]);
    }
  });
});

describe('through the lab', () => {
  let lab: Lab;
  before(async () => {
    lab = await requireLab();
  });

  test('list_vms on the lab host (added with the CLI) shows its source VMs', async () => {
    const added = await run([
      'host',
      'add',
      `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`,
      '--key',
      lab.keyPath,
      '--accept-fingerprint',
      lab.hostKeyFingerprint,
      '--name',
      'lab',
      '--no-check',
      '--json',
    ]);
    assert.equal(added.code, 0, added.stdout + added.stderr);
    const { client } = await stdioClient([], 'lab-client');
    const r = (await client.callTool({ name: 'list_vms', arguments: { host: 'lab' } })) as CallToolResult;
    assert.equal(r.isError, false, text(r));
    const { vms, errors } = r.structuredContent as {
      vms: Array<{ name: string; host: string; state: string }>;
      errors: string[];
    };
    assert.deepEqual(errors, []);
    for (const s of lab.sources) {
      const vm = vms.find((v) => v.name === s.name);
      assert.ok(vm, `${s.name} listed: ${JSON.stringify(vms)}`);
      assert.equal(vm.host, 'lab');
      assert.ok(['running', 'shut off'].includes(vm.state), vm.state);
    }
  });

  test('output read on the production VM reaches the MCP client with its secrets redacted', async () => {
    // A key stored through the CLI: its value is redacted wherever it shows up.
    const stored = 'sk-proj-STOREDviaCLI-0a1b2c3d4e5f6a7b';
    const add = await run(
      ['provider', 'add', 'mcp-redaction', '--kind', 'openai', '--model', 'm', '--key-stdin'],
      stored,
    );
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const secrets = [
      'Pr0d-DB-Passw0rd-77',
      'ghp_9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZZZ',
      'b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHI',
      stored,
    ];
    // What a config file on production could hold, printed on the VM itself (read-only policy: printf).
    const command = `printf '%s\\n' 'db_host = 10.0.0.9' 'db_password = ${secrets[0]}' 'token: ${secrets[1]}' '-----BEGIN OPENSSH PRIVATE KEY-----' '${secrets[2]}' '-----END OPENSSH PRIVATE KEY-----' 'upstream=${stored}'`;
    const { client } = await stdioClient([], 'redaction-client');
    const r = (await client.callTool({
      name: 'run_source_command',
      arguments: { source_vm: 'fluid-lab-prod', host: 'lab', command },
    })) as CallToolResult;
    assert.equal(r.isError, false, text(r));
    const wire = JSON.stringify(r);
    for (const v of secrets) assert.ok(!wire.includes(v), `${v.slice(0, 12)}… reached the MCP client`);
    assert.match(text(r), /db_host = 10\.0\.0\.9/, 'the rest of the output is there');
    assert.match(text(r), /db_password = \[REDACTED:password#\d+\]/);
    assert.match(text(r), /\[REDACTED:private-key#\d+\]/);
  });
});
