/**
 * The exec runners, run with the local bash exactly as sshd would run them (the login shell gets
 * `-c <command line>`, the script and stdin arrive on its stdin), plus the output buffer.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../../support/eventually.ts';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import {
  CLASSIC_RUNNER,
  HeadTailBuffer,
  RUNNER,
  RUNNER_COMMAND,
  runnerCommand,
  truncationMarker,
  type RunnerKind,
} from '../../../src/core/ssh/runner.ts';

interface LocalRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

let seq = 0;

function runLocal(
  script: string,
  opts: {
    runner?: RunnerKind;
    /** The login shell sshd would start; default bash. */
    shell?: string[];
    stdin?: string;
    timeoutMs?: number;
    graceTenths?: number;
    declaredLength?: number;
    /** Send exactly this on stdin instead of the preamble and stdin. */
    rawStdin?: string;
    /** Put in the environment of the runner and everything it starts (see survivors()). */
    mark?: string;
    onStart?: (pid: number) => void;
    /** called with all stdout so far, on every chunk */
    onStdout?: (stdout: string) => void;
  } = {},
): Promise<LocalRun> {
  const body = Buffer.from(script);
  // A longer declared length than the bytes sent: the command line says more than arrives.
  const declared = opts.declaredLength ? Buffer.alloc(opts.declaredLength, 'x') : body;
  const cmd = runnerCommand(declared, {
    runner: opts.runner,
    timeoutMs: opts.timeoutMs,
    killGraceMs: (opts.graceTenths ?? 5) * 100,
  });
  const shell = opts.shell ?? ['bash'];
  // Detached: a session and process group of its own, like sshd's child.
  const child = spawn(shell[0]!, [...shell.slice(1), '-c', cmd.command], {
    detached: true,
    env: { ...process.env, FLUID_RUNNER_TEST_MARK: opts.mark ?? `none-${process.pid}-${++seq}` },
  });
  opts.onStart?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    opts.onStdout?.(stdout);
  });
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {});
  // What comes before the script (the inline runner's header line) is sent as made.
  const header = cmd.preamble.subarray(0, cmd.preamble.length - declared.length);
  child.stdin.end(
    opts.rawStdin !== undefined
      ? Buffer.from(opts.rawStdin)
      : Buffer.concat([header, body, Buffer.from(opts.stdin ?? '')]),
  );
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

/** Live processes whose environment carries FLUID_RUNNER_TEST_MARK=mark (a run's leftovers). */
function survivors(mark: string): number[] {
  const needle = `FLUID_RUNNER_TEST_MARK=${mark}\0`;
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'latin1').includes(needle) && alive(Number(e)))
        found.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return found;
}

/** Live processes whose command line contains needle. */
function withArgs(needle: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle))
        found.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return found;
}

const markOf = (what: string) => `${what}-${process.pid}-${++seq}`;

for (const runner of ['inline', 'classic'] as const) {
  describe(`exec runner: ${runner} (local bash)`, () => {
    const run = (script: string, o: Parameters<typeof runLocal>[1] = {}) =>
      runLocal(script, { runner, ...o });

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
      const r = await run(script);
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
      const r = await run('read -r a; read -r b; echo "[$a][$b]"; cat | wc -c', {
        stdin: 'first line\nsecond\nthird\n',
      });
      assert.equal(r.stdout, '[first line][second]\n6\n');
      const none = await run('if read -r x; then echo got; else echo eof; fi');
      assert.equal(none.stdout, 'eof\n');
    });

    test('errors name the line, and bash job notices never leak into the output', async () => {
      const r = await run('echo a\nnosuchcommand-xyz\n(sleep 0.2 &)\nsleep 0.1 & wait\necho b');
      assert.equal(r.stdout, 'a\nb\n');
      assert.match(r.stderr, /line 2: nosuchcommand-xyz: command not found/);
      assert.doesNotMatch(r.stderr, /Done|\[1\]/);
    });

    test('an incomplete script is refused and nothing runs', async () => {
      const r = await run('touch /tmp/fluid-runner-must-not-exist; echo ran', { declaredLength: 500 });
      assert.equal(r.code, 125);
      assert.match(r.stderr, /arrived incomplete/);
      assert.equal(r.stdout, '');
      assert.equal(existsSync('/tmp/fluid-runner-must-not-exist'), false);
    });

    if (runner === 'inline')
      for (const [what, stdin] of [
        ['nothing at all (a runner started ahead whose connection closed)', ''],
        ['a header cut short', '40 300.0'],
        ['a header that is not numbers', 'x 300.000 20\ntouch /tmp/fluid-runner-must-not-exist\n'],
        ['a header with a fractional length', '1.5 300.000 20\ntouch /tmp/fluid-runner-must-not-exist\n'],
        [
          'a header with a separator inside a number',
          '1:2 300.000 20\ntouch /tmp/fluid-runner-must-not-exist\n',
        ],
        ['a header without a grace', '47 300.000\ntouch /tmp/fluid-runner-must-not-exist\n'],
      ] as const)
        test(`the header decides nothing it should not: ${what} runs nothing`, async () => {
          const r = await run('', { rawStdin: stdin });
          assert.equal(r.code, 125);
          assert.match(r.stderr, stdin.includes('\n') ? /header is malformed/ : /arrived incomplete/);
          assert.equal(r.stdout, '');
          assert.equal(existsSync('/tmp/fluid-runner-must-not-exist'), false);
        });

    test('an empty script succeeds', async () => {
      const r = await run('');
      assert.equal(r.code, 0);
    });

    test('a timeout kills the whole process group and ends with SIGALRM', async () => {
      const r = await run(
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

    test('the deadline holds when the runner is killed with its session (the client’s last resort)', async () => {
      const mark = markOf('killed');
      let runnerPid = 0;
      let started!: () => void;
      const backgroundStarted = new Promise<void>((r) => (started = r));
      const pending = run('sleep 308 & echo "bg $!"; sleep 309', {
        timeoutMs: 1000,
        graceTenths: 2,
        mark,
        onStart: (pid) => (runnerPid = pid),
        onStdout: (out) => /bg \d+/.test(out) && started(),
      });
      await backgroundStarted;
      // Once the runner has started its timer beside the script (classic: timeout(1) runs the script).
      const children = () =>
        readdirSync('/proc').filter((e) => {
          try {
            const st = readFileSync(`/proc/${e}/stat`, 'utf8');
            return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === runnerPid;
          } catch {
            return false;
          }
        }).length;
      await eventually('the runner to start its timer', () => children() >= (runner === 'inline' ? 2 : 1));
      process.kill(-runnerPid, 'SIGKILL');
      // The script's group is not the session's: it outlives the runner, until the deadline.
      assert.ok(survivors(mark).length >= 2, 'the script outlived its runner');
      await eventually('the script group to be killed at its deadline', () => !survivors(mark).length);
      assert.deepEqual(survivors(mark), [], 'the script group was killed at its deadline');
      const r = await pending;
      assert.equal(r.signal, 'SIGKILL');
    });

    test('a script that exits 124 by itself is not a timeout', async () => {
      const r = await run('exit 124', { timeoutMs: 5000 });
      assert.equal(r.code, 124);
      assert.equal(r.signal, null);
    });

    test('TERM to the runner (a cancel) kills the group', async () => {
      let runnerPid = 0;
      let started!: () => void;
      const backgroundStarted = new Promise<void>((r) => (started = r));
      const pending = run('sleep 303 & echo "bg $!"; sleep 304', {
        onStart: (pid) => (runnerPid = pid),
        onStdout: (out) => /bg \d+/.test(out) && started(),
      });
      await backgroundStarted;
      // sshd delivers a signal request to the session's process group.
      process.kill(-runnerPid, 'SIGTERM');
      const r = await pending;
      assert.equal(r.code, 143);
      const pid = Number(/bg (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(pid > 0);
      assert.equal(alive(pid), false);
    });

    test('the command line carries only fixed text (and, for the classic runner, numbers)', () => {
      const script = "echo 'it''s' $(rm -rf /) `x` \"$y\"";
      const c = runnerCommand(script, { runner, timeoutMs: 1500, killGraceMs: 2000 });
      assert.ok(!c.command.includes('rm -rf'));
      const n = Buffer.byteLength(script);
      if (runner === 'classic') {
        assert.deepEqual(c.preamble, Buffer.from(script));
        assert.equal(c.command, `exec bash -c '${CLASSIC_RUNNER}' fluid-exec ${n} 1.500 20`);
        assert.equal(
          runnerCommand('x', { runner, root: true }).command,
          `exec sudo -n -- bash -c '${CLASSIC_RUNNER}' fluid-exec 1 0 20`,
        );
        assert.equal(c.spare, false);
      } else {
        assert.deepEqual(c.preamble, Buffer.from(`${n} 1.500 20\n${script}`));
        assert.equal(
          c.command,
          `R='${RUNNER}'; if [ -n "$BASH_VERSION" ] && ! shopt -qo posix; then eval "$R"; else exec bash -c "$R" fluid-exec; fi`,
        );
        // Every command has the same line, so a runner can be started before its command exists.
        assert.equal(runnerCommand('other', { timeoutMs: 5 }).command, RUNNER_COMMAND);
        assert.equal(c.spare, true);
        const root = runnerCommand('x', { root: true });
        assert.equal(root.command, `R='${RUNNER}'; exec sudo -n -- bash -c "$R" fluid-exec`);
        assert.equal(root.spare, false);
      }
      assert.throws(() => runnerCommand('a\0b', { runner }), /NUL/);
      assert.throws(() => runnerCommand('x', { runner, timeoutMs: -1 }), /timeoutMs/);
    });

    test('the script starts clean: none of the runner’s variables, functions, traps or job control', async () => {
      const r = await run(
        'echo "${n-u}${t-u}${k-u}${s-u}${p-u}${tp-u}${rc-u}${to-u}${cx-u}${R-u}${me-u}|$#|$(declare -F | wc -l)|$(trap -p | wc -l)"; case $- in *m*) echo job-control;; esac',
        { timeoutMs: 10_000 },
      );
      assert.equal(r.stdout, 'uuuuuuuuuuu|0|0|0\n');
    });

    for (const shell of [['sh'], ['bash', '--posix']])
      test(`a login shell that is ${shell.join(' ')} hands the runner to bash`, async () => {
        const r = await run('echo "$BASH_VERSION" | grep -c . ; shopt -qo posix && echo posix; exit 4', {
          shell,
          stdin: 'ignored',
          timeoutMs: 10_000,
        });
        assert.equal(r.code, 4, r.stderr);
        assert.equal(r.stdout, '1\n');
        assert.equal(r.stderr, '');
      });

    test('the script is not visible in ps', async () => {
      const secret = markOf('fluid-secret-in-script');
      const go = `/tmp/${markOf('fluid-runner-go')}`;
      // A process with a known command line, to show the look sees command lines.
      const control = `sleep 3${process.pid}.${++seq}`;
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      // The script waits for the test to look before it ends.
      const pending = run(
        `: ${secret}\n${control} & c=$!\necho started; until [ -e ${go} ]; do sleep 0.02; done; rm ${go}; kill $c`,
        { timeoutMs: 10_000, onStdout: (out) => out.includes('started') && started() },
      );
      await running;
      await eventually('the control process to show in ps', () => withArgs(control).length > 0);
      assert.equal(withArgs(control).length, 1, 'the control process is visible');
      assert.deepEqual(withArgs(secret), []);
      writeFileSync(go, '');
      const r = await pending;
      assert.equal(r.code, 0, r.stderr);
    });

    test('a normal exit leaves nothing of the runner behind; background jobs keep running', async () => {
      const mark = markOf('exit');
      const r = await run('sleep 305 >/dev/null 2>&1 & echo "bg $!"', { timeoutMs: 60_000, mark });
      assert.equal(r.code, 0);
      const bg = Number(/bg (\d+)/.exec(r.stdout)?.[1]);
      // Only the script's own background job carries the mark now: no timer or helper lingers.
      // A timer signalled as the runner exits may take a moment to go.
      await eventually('a signalled timer to go', () => survivors(mark).length <= 1);
      assert.deepEqual(survivors(mark), [bg]);
      process.kill(bg, 'SIGTERM');
    });

    test('a timeout leaves no process behind, the runner’s included', async () => {
      const mark = markOf('timeout');
      const r = await run('sleep 306 & sleep 307', { timeoutMs: 300, graceTenths: 2, mark });
      assert.equal(r.signal, 'SIGALRM');
      await eventually('every process of the script to go', () => !survivors(mark).length);
      assert.deepEqual(survivors(mark), []);
    });
  });
}

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
