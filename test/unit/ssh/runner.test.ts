/**
 * The exec runner, run with the local bash exactly as sshd would run it (`bash -c RUNNER …` with the
 * script and stdin on its stdin), plus the output buffer.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { HeadTailBuffer, RUNNER, runnerCommand, truncationMarker } from '../../../src/core/ssh/runner.ts';

interface LocalRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

function runLocal(
  script: string,
  opts: {
    stdin?: string;
    timeoutMs?: number;
    graceTenths?: number;
    declaredLength?: number;
    onStart?: (pid: number) => void;
    /** called with all stdout so far, on every chunk */
    onStdout?: (stdout: string) => void;
  } = {},
): Promise<LocalRun> {
  const body = Buffer.from(script);
  const t = opts.timeoutMs ? (opts.timeoutMs / 1000).toFixed(3) : '0';
  const n = String(opts.declaredLength ?? body.length);
  const child = spawn('bash', ['-c', RUNNER, 'fluid-exec', n, t, String(opts.graceTenths ?? 5)]);
  opts.onStart?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    opts.onStdout?.(stdout);
  });
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {});
  child.stdin.end(Buffer.concat([body, Buffer.from(opts.stdin ?? '')]));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, pid: child.pid! })),
  );
}

/** A live (not zombie) process? */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('exec runner (local bash)', () => {
  test('runs a multi-line script with heredocs, quotes and variables exactly as written', async () => {
    const script = [
      'set -e',
      'name="wor ld"',
      `echo "hello $name" 'single $name' \\$literal`,
      "cat <<'EOF'",
      'quoted heredoc: $HOME "x" \'y\' `z` \\n',
      'EOF',
      'cat <<EOF',
      'expanded: $name $((1 + 2))',
      'EOF',
      'printf "%s\\n" "tab\there" "percent %d"',
      'echo "ünïcødé ✓"',
      'exit 7',
    ].join('\n');
    const r = await runLocal(script);
    assert.equal(r.code, 7);
    assert.equal(
      r.stdout,
      [
        'hello wor ld single $name $literal',
        'quoted heredoc: $HOME "x" \'y\' `z` \\n',
        'expanded: wor ld 3',
        'tab\there',
        'percent %d',
        'ünïcødé ✓',
        '',
      ].join('\n'),
    );
    assert.equal(r.stderr, '');
  });

  test('the rest of stdin is the script’s stdin; without it, reads see EOF', async () => {
    const r = await runLocal('read -r a; read -r b; echo "[$a][$b]"; cat | wc -c', {
      stdin: 'first line\nsecond\nthird\n',
    });
    assert.equal(r.stdout, '[first line][second]\n6\n');
    const none = await runLocal('if read -r x; then echo got; else echo eof; fi');
    assert.equal(none.stdout, 'eof\n');
  });

  test('errors name the line, and bash job notices never leak into the output', async () => {
    const r = await runLocal('echo a\nnosuchcommand-xyz\n(sleep 0.2 &)\nsleep 0.1 & wait\necho b');
    assert.equal(r.stdout, 'a\nb\n');
    assert.match(r.stderr, /line 2: nosuchcommand-xyz: command not found/);
    assert.doesNotMatch(r.stderr, /Done|\[1\]/);
  });

  test('an incomplete script is refused and nothing runs', async () => {
    const r = await runLocal('touch /tmp/fluid-runner-must-not-exist; echo ran', { declaredLength: 500 });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /arrived incomplete/);
    assert.equal(r.stdout, '');
    assert.equal(existsSync('/tmp/fluid-runner-must-not-exist'), false);
  });

  test('an empty script succeeds', async () => {
    const r = await runLocal('');
    assert.equal(r.code, 0);
  });

  test('a timeout kills the whole process group and ends with SIGALRM', async () => {
    const r = await runLocal(
      'sleep 300 & echo "bg $!"\n(trap "" TERM; exec sleep 301) & echo "stubborn $!"\nsleep 302',
      { timeoutMs: 500, graceTenths: 5 },
    );
    // SIGALRM, not the 5-minute sleep finishing: the timeout ended it
    assert.equal(r.signal, 'SIGALRM');
    assert.equal(r.code, null);
    const pids = [...r.stdout.matchAll(/(?:bg|stubborn) (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} survived the timeout`);
  });

  test('a script that exits 124 by itself is not a timeout', async () => {
    const r = await runLocal('exit 124', { timeoutMs: 5000 });
    assert.equal(r.code, 124);
    assert.equal(r.signal, null);
  });

  test('TERM to the runner (a cancel) kills the group', async () => {
    let runner = 0;
    let started!: () => void;
    const backgroundStarted = new Promise<void>((r) => (started = r));
    const pending = runLocal('sleep 303 & echo "bg $!"; sleep 304', {
      onStart: (pid) => (runner = pid),
      onStdout: (out) => /bg \d+/.test(out) && started(),
    });
    await backgroundStarted;
    process.kill(runner, 'SIGTERM');
    const r = await pending;
    assert.equal(r.code, 143);
    const pid = Number(/bg (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(pid > 0);
    assert.equal(alive(pid), false);
  });

  test('the command line carries only fixed text and numbers', () => {
    const script = "echo 'it''s' $(rm -rf /) `x` \"$y\"";
    const c = runnerCommand(script, { timeoutMs: 1500, killGraceMs: 2000 });
    assert.ok(!c.command.includes('rm -rf'));
    assert.ok(c.command.startsWith("exec bash -c '"));
    assert.ok(c.command.endsWith(`' fluid-exec ${Buffer.byteLength(script)} 1.500 20`));
    assert.deepEqual(c.preamble, Buffer.from(script));
    assert.ok(runnerCommand('x', { root: true }).command.startsWith("exec sudo -n -- bash -c '"));
    assert.ok(runnerCommand('x').command.endsWith(' 1 0 20'));
    assert.throws(() => runnerCommand('a\0b'), /NUL/);
    assert.throws(() => runnerCommand('x', { timeoutMs: -1 }), /timeoutMs/);
  });
});

describe('HeadTailBuffer', () => {
  test('keeps everything under the cap', () => {
    const b = new HeadTailBuffer(10);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from('defg'));
    assert.equal(b.truncated, false);
    assert.equal(b.toText(), 'abcdefg');
  });

  test('keeps head and tail around a marker with the dropped count', () => {
    const b = new HeadTailBuffer(10);
    for (const c of 'abcdefghijklmnopqrstuvwxyz') b.push(Buffer.from(c));
    assert.equal(b.total, 26);
    assert.equal(b.dropped, 16);
    assert.equal(b.toText(), `abcde${truncationMarker(16)}vwxyz`);
    assert.equal(truncationMarker(16), '\n…[truncated 16 bytes]…\n');
  });

  test('large chunks', () => {
    const b = new HeadTailBuffer(6);
    b.push(Buffer.from('0123456789'));
    b.push(Buffer.from('ABCDEFGHIJ'));
    assert.equal(b.toBuffer().toString(), '012HIJ');
    assert.equal(b.dropped, 14);
  });

  test('head only', () => {
    const b = new HeadTailBuffer(4, 1);
    b.push(Buffer.from('abcdef'));
    assert.equal(b.toBuffer().toString(), 'abcd');
    assert.equal(b.total, 6);
    assert.equal(b.truncated, true);
  });
});
