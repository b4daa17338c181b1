/**
 * Claude Code, the real product, as an MCP client of `fluid mcp` (stdio). Its model is the scripted
 * model server (the real Anthropic wire format), which makes it call mcp__fluid__list_hosts, then
 * mcp__fluid__create_playbook, which a settings rule makes wait for a person: the test approves it
 * through the app's door (a core in this process on the same data dir), as a person would in the
 * app, and Claude Code gets the result and answers. Nothing Claude Code receives says how to decide.
 *
 * Claude Code is not a dependency of Fluid. The test installs a pinned version from npm into a cache
 * dir outside the repository (FLUID_CLAUDE_CODE_DIR, default /var/tmp/fluid-claude-code) and reuses
 * it on later runs. About 76 MB to download, 235 MB on disk, ~9 s with an empty npm cache.
 * If it cannot be installed, the test fails with the reason; it never skips.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startScriptedModelServer,
  type RecordedRequest,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import type { Approval } from '../../../src/shared/contract/approvals.ts';
import type { AuditEntry } from '../../../src/shared/contract/audit.ts';
import { createCore } from '../../../src/core/createCore.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import { FLUID_BIN, fluid } from '../../support/cli.ts';
import { tempDir } from '../../support/core.ts';

const CLAUDE_CODE_VERSION = process.env.FLUID_CLAUDE_CODE_VERSION ?? '2.1.197';
const CLAUDE_CODE_DIR = process.env.FLUID_CLAUDE_CODE_DIR ?? '/var/tmp/fluid-claude-code';
const SCENARIO = fileURLToPath(new URL('./claude-code.scenario.yaml', import.meta.url));

interface Proc {
  code: number | null;
  stdout: string;
  stderr: string;
}

function exec(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number },
) {
  return new Promise<Proc>((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The claude binary of the pinned version: from the cache dir, installed there first if needed. */
async function claudeCode(): Promise<{ bin: string; how: string }> {
  const bin = join(CLAUDE_CODE_DIR, 'node_modules', '.bin', 'claude');
  const version = async () =>
    existsSync(bin) ? (await exec(bin, ['--version'], { timeoutMs: 30_000 })).stdout.trim() : '';
  const have = await version();
  if (have.startsWith(CLAUDE_CODE_VERSION))
    return { bin, how: `cached copy in ${CLAUDE_CODE_DIR} (${have})` };
  mkdirSync(CLAUDE_CODE_DIR, { recursive: true });
  const started = Date.now();
  const npm = await exec(
    'npm',
    [
      'install',
      '--prefix',
      CLAUDE_CODE_DIR,
      '--no-audit',
      '--no-fund',
      '--no-save',
      '--loglevel=error',
      `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}`,
    ],
    { timeoutMs: 10 * 60_000 },
  ).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  if (npm.code !== 0) {
    throw new Error(
      `Could not install Claude Code ${CLAUDE_CODE_VERSION} into ${CLAUDE_CODE_DIR} ` +
        `(npm exited ${npm.code}):\n${npm.stderr || npm.stdout}`,
    );
  }
  const now = await version();
  if (!now.startsWith(CLAUDE_CODE_VERSION)) {
    throw new Error(
      `Installed @anthropic-ai/claude-code@${CLAUDE_CODE_VERSION} into ${CLAUDE_CODE_DIR}, but \`claude --version\` says "${now}".`,
    );
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  return { bin, how: `installed from npm into ${CLAUDE_CODE_DIR} in ${secs}s (${now})` };
}

const data = tempDir('fluid-claude-code-data-');
const home = tempDir('fluid-claude-code-home-');
let model: ScriptedModelServer;

before(async () => {
  model = await startScriptedModelServer({ scenario: SCENARIO });
  // create_playbook waits for a person's approval (a rule, set as the app would set it).
  const core = createCore({ dataDir: data.dir, egress: null });
  try {
    await connectInProcess(core, { door: 'test', id: 'settings' }).call('settings.update', {
      agent: { rules: [{ tool: 'create_playbook', decision: 'ask' }] },
    } as never);
  } finally {
    await core.close();
  }
});

after(async () => {
  await model?.close();
  data.cleanup();
  home.cleanup();
});

/** Tool results in a request to the model, by the name of the tool_use they answer. */
function toolResults(req: RecordedRequest): Array<{ tool: string; content: string; isError: boolean }> {
  type Block = {
    type: string;
    id?: string;
    name?: string;
    tool_use_id?: string;
    content?: unknown;
    is_error?: boolean;
  };
  const messages = ((req.body as { messages?: Array<{ content: string | Block[] }> }).messages ?? []).map(
    (m) => (typeof m.content === 'string' ? [] : m.content),
  );
  const names = new Map<string, string>();
  const out = [];
  for (const b of messages.flat()) {
    if (b.type === 'tool_use') names.set(b.id!, b.name!);
    if (b.type === 'tool_result') {
      const content =
        typeof b.content === 'string'
          ? b.content
          : ((b.content as Array<{ text?: string }> | undefined) ?? []).map((c) => c.text ?? '').join('');
      out.push({ tool: names.get(b.tool_use_id!) ?? '?', content, isError: !!b.is_error });
    }
  }
  return out;
}

/** `claude -p` against the scripted model, with one MCP server configured; stream-json events parsed. */
async function runClaude(
  bin: string,
  prompt: string,
  server: Record<string, unknown>,
  allowedTools: string[],
): Promise<Proc & { events: Array<Record<string, unknown>>; seconds: number; diag: () => string }> {
  const mcpConfig = join(home.dir, 'mcp.json');
  writeFileSync(mcpConfig, JSON.stringify({ mcpServers: { fluid: server } }), { mode: 0o600 });
  const started = Date.now();
  const cc = await exec(
    bin,
    [
      '-p',
      prompt,
      '--mcp-config',
      mcpConfig,
      '--strict-mcp-config',
      '--allowedTools',
      allowedTools.join(','),
      '--output-format',
      'stream-json',
      '--verbose',
    ],
    {
      cwd: home.dir,
      timeoutMs: 5 * 60_000,
      // A clean environment: nothing of the machine's own Claude or Anthropic settings leaks in.
      env: {
        PATH: process.env.PATH,
        HOME: home.dir,
        ANTHROPIC_BASE_URL: model.url,
        ANTHROPIC_API_KEY: 'x',
        ENABLE_TOOL_SEARCH: 'false',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        // Connect MCP servers before the first model request (by default they connect in the background).
        MCP_CONNECTION_NONBLOCKING: 'false',
      },
    },
  );
  const events = cc.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const diag = () =>
    `exit ${cc.code}\n--- stdout ---\n${cc.stdout.slice(-6000)}\n--- stderr ---\n${cc.stderr.slice(-3000)}\n` +
    `--- model ---\n${JSON.stringify(model.state(), null, 1)}`;
  return { ...cc, events, seconds: (Date.now() - started) / 1000, diag };
}

function checkRun(run: Awaited<ReturnType<typeof runClaude>>): void {
  assert.equal(run.code, 0, run.diag());
  assert.deepEqual(model.mismatches, [], run.diag());
  assert.equal(
    model.state().current,
    model.scenario.steps.length,
    `every scripted step was used\n${run.diag()}`,
  );
  // Claude Code connected to our server and offered its tools to the model.
  const init = run.events.find((e) => e.type === 'system' && e.subtype === 'init') as {
    mcp_servers: Array<{ name: string; status: string }>;
    tools: string[];
  };
  assert.deepEqual(init.mcp_servers, [{ name: 'fluid', status: 'connected' }], run.diag());
  assert.ok(init.tools.includes('mcp__fluid__list_hosts'));
}

let claude: { bin: string; how: string };

test(
  'Claude Code is there (the pinned version, from the cache or installed now)',
  { timeout: 15 * 60_000 },
  async (t) => {
    claude = await claudeCode();
    t.diagnostic(`Claude Code: ${claude.how}`);
    console.log(`# Claude Code: ${claude.how}`);
  },
);

test(
  'over stdio: Claude Code calls Fluid, waits for a person’s approval, and answers',
  { timeout: 10 * 60_000 },
  async (t) => {
    assert.ok(claude, 'Claude Code is not available (see the first test)');
    model.load(SCENARIO);

    // A person approves the playbook in the app (another door, same data dir) while Claude Code waits.
    let approved = null as Approval | null;
    let stop = false;
    const app = createCore({ dataDir: data.dir, egress: null });
    const door = connectInProcess(app, { door: 'app', id: 'person' });
    const approver = (async () => {
      try {
        while (!stop && !approved) {
          const pending = await door.call('approvals.list', { status: 'pending', limit: 20 });
          const a = pending.find((p) => p.title === 'create_playbook from-claude-code');
          if (a) {
            await door.call('approvals.decide', { id: a.id, decision: 'approve', note: 'fine' });
            approved = a;
          } else await new Promise((r) => setTimeout(r, 250));
        }
      } finally {
        await app.close();
      }
    })();
    const run = await runClaude(
      claude.bin,
      'Which hosts does Fluid know? Then start a playbook for the fix.',
      { command: process.execPath, args: [FLUID_BIN, 'mcp'], env: { FLUID_DATA_DIR: data.dir } },
      ['mcp__fluid__list_hosts', 'mcp__fluid__create_playbook'],
    ).finally(() => (stop = true));
    await approver;
    t.diagnostic(`claude -p took ${run.seconds.toFixed(1)}s`);
    checkRun(run);

    // The model saw our tools' results, as Claude Code passed them back.
    const results = model.answered.flatMap(toolResults);
    const hosts = results.find((r) => r.tool === 'mcp__fluid__list_hosts');
    assert.ok(hosts, run.diag());
    assert.equal(hosts.isError, false);
    assert.match(hosts.content, /"host": ?"local"/);
    const playbook = results.find((r) => r.tool === 'mcp__fluid__create_playbook');
    assert.ok(playbook, run.diag());
    assert.equal(playbook.isError, false, playbook.content);
    // Claude Code passes the model the structuredContent (the tool's data as JSON), not the text.
    assert.match(playbook.content, /"name": ?"from-claude-code"/);

    const result = run.events.find((e) => e.type === 'result') as { subtype: string; result: string };
    assert.equal(result.subtype, 'success');
    assert.match(result.result, /the playbook from-claude-code exists/);

    // Nothing that reached Claude Code's model told it how to decide an approval.
    assert.doesNotMatch(JSON.stringify(model.answered), /fluid approval|approval approve/);

    // Same gate as every door: approved in the app, audited with Claude Code as the MCP caller.
    assert.ok(approved, 'the approval request was seen and approved');
    const approvalId = approved.id;
    const audit = (await fluid(['audit', 'list', '--json', '--limit', '100'], { dataDir: data.dir })).json<{
      entries: AuditEntry[];
    }>();
    const calls = audit.entries.filter((e) => e.action === 'tool.call');
    assert.ok(calls.length >= 2, JSON.stringify(calls));
    for (const c of calls) assert.equal(c.actor.door, 'mcp');
    const client = calls[0]!.actor.id;
    t.diagnostic(`Claude Code introduced itself as "${client}"`);
    assert.match(client, /claude/i);
    const pb = calls.find((c) => (c.data as { tool: string }).tool === 'create_playbook')!;
    assert.equal((pb.data as { decision: string }).decision, 'approved');
    const decide = audit.entries.find((e) => e.action === 'approval.decide' && e.target === approvalId)!;
    assert.deepEqual(decide.actor, { door: 'app', id: 'person' });
  },
);

test(
  'over streamable HTTP with the bearer token: Claude Code calls list_hosts',
  { timeout: 10 * 60_000 },
  async (t) => {
    assert.ok(claude, 'Claude Code is not available (see the first test)');
    model.load({
      name: 'claude-code-http',
      steps: [
        {
          match: { turn: 'user', tools: ['mcp__fluid__list_hosts'] },
          toolCalls: [{ name: 'mcp__fluid__list_hosts', input: {} }],
        },
        {
          match: { toolResult: { tool: 'mcp__fluid__list_hosts', content: '"local"', isError: false } },
          text: 'Over HTTP, Fluid knows the local host.',
        },
      ],
    });
    const child = spawn(process.execPath, [FLUID_BIN, 'mcp', '--http', '--json'], {
      env: { ...process.env, FLUID_DATA_DIR: data.dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        void exited.then((code) => reject(new Error(`fluid mcp --http exited ${code}:\n${stderr}`)));
      });
      const info = JSON.parse(line) as { url: string; token: string };
      const run = await runClaude(
        claude.bin,
        'Which hosts does Fluid know?',
        { type: 'http', url: info.url, headers: { Authorization: `Bearer ${info.token}` } },
        ['mcp__fluid__list_hosts'],
      );
      t.diagnostic(`claude -p took ${run.seconds.toFixed(1)}s`);
      checkRun(run);
      const result = run.events.find((e) => e.type === 'result') as { result: string };
      assert.equal(result.result, 'Over HTTP, Fluid knows the local host.');
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    }
  },
);
