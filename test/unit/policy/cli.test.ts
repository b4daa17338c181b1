import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { policyCheck, policyCommands } from '../../../src/cli/policy.ts';

const RUNNER = fileURLToPath(new URL('./fixtures/run-policy-cli.ts', import.meta.url));

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [RUNNER, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fluid policy check', () => {
  test('is exported as a raw command', () => {
    const cmd = policyCommands['policy check'];
    assert.ok(cmd?.raw);
    assert.match(cmd.usage, /policy check/);
  });

  test('allow exits 0 and says why', () => {
    const r = cli(['--mode', 'read-only', '--', 'cat /etc/os-release | grep ID']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^allow: read-only: cat, grep\n$/);
  });

  test('deny exits 1 and says why', () => {
    const r = cli(['--', 'cat x; rm -rf /']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^deny: rm deletes files\n$/);
  });

  test('--json prints one object', () => {
    const r = cli(['--json', '--', 'sed -i s/a/b/ f']);
    assert.equal(r.code, 1);
    const o = JSON.parse(r.stdout);
    assert.equal(o.command, 'sed -i s/a/b/ f');
    assert.equal(o.mode, 'read-only');
    assert.equal(o.decision, 'deny');
    assert.match(o.reason, /sed -i/);
    assert.ok(Array.isArray(o.commands));
  });

  test('usage errors exit 2', () => {
    assert.equal(cli(['--mode', 'read-write', '--', 'ls']).code, 2);
    assert.equal(cli(['--', 'ls', '-la']).code, 2);
    assert.equal(cli([]).code, 2);
    assert.equal(cli(['--bogus', '--', 'ls']).code, 2);
    assert.equal(cli(['--jsonl', '--', 'ls']).code, 2);
  });

  test('--jsonl streams one object per line, malformed lines included', () => {
    const lines = [
      JSON.stringify('cat /etc/os-release | grep ID'),
      'not json',
      JSON.stringify('rm -rf /'),
      '42',
      '',
      '{"command":"ls"}',
      JSON.stringify('journalctl -u nginx --no-pager'),
      '"unterminated',
    ];
    const r = cli(['--jsonl', '--mode', 'read-only'], lines.join('\n') + '\n');
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(out.length, lines.length);
    assert.deepEqual(
      out.map((o) => o.decision),
      ['allow', 'deny', 'deny', 'deny', 'deny', 'deny', 'allow', 'deny'],
    );
    assert.equal(out[0].command, 'cat /etc/os-release | grep ID');
    assert.equal(out[1].command, null);
    assert.match(out[1].reason, /not a JSON-encoded string/);
    assert.match(out[2].reason, /rm deletes files/);
    for (const [i, o] of out.entries()) assert.equal(o.line, i + 1);
  });

  test('--jsonl answers a large stream in order, one line per command', async () => {
    const cmds = ['ls -la', 'rm x', 'cat /etc/hosts | grep localhost', 'echo a > f'];
    const n = 20_000;
    const child = spawn(process.execPath, [RUNNER, '--jsonl'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    for (let i = 0; i < n; i++) {
      if (!child.stdin.write(JSON.stringify(cmds[i % cmds.length]) + '\n'))
        await new Promise((r) => child.stdin.once('drain', r));
    }
    child.stdin.end();
    assert.equal(await done, 0);
    const out = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
    assert.equal(out.length, n);
    for (let i = 0; i < n; i += 997) {
      const o = JSON.parse(out[i]!);
      assert.equal(o.line, i + 1);
      assert.equal(o.command, cmds[i % cmds.length]);
      assert.equal(o.decision, i % 2 === 0 ? 'allow' : 'deny');
    }
  });

  test('the exported function runs the same path with injected streams', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let text = '';
    stdout.on('data', (c: Buffer) => (text += c.toString()));
    stdin.end(`${JSON.stringify('uptime')}\n[1,2]\n`);
    const code = await policyCheck(['--jsonl'], { json: false }, { stdin, stdout, stderr });
    assert.equal(code, 0);
    const out = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      out.map((o) => [o.command, o.decision]),
      [
        ['uptime', 'allow'],
        [null, 'deny'],
      ],
    );
  });
});
