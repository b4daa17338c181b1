/** GuestSsh.exec against a real sshd: scripts intact, exit codes, timeouts that kill, caps, streams. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ensureTestUser,
  liveProcesses,
  localTarget,
  makeCa,
  startCaSshd,
  TEST_USER,
  waitFor,
  type CaSshd,
  type TestCa,
} from './harness.ts';
import { GuestSsh } from '../../../src/core/ssh/guest.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Duplex } from 'node:stream';
import { FluidError } from '../../../src/shared/errors.ts';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';

const NOSUDO = 'fluid-test-nosudo';
let sshd: CaSshd;
let t: TestCa;
let g: GuestSsh;
let classic: GuestSsh;

before(async () => {
  ensureTestUser();
  ensureTestUser(NOSUDO, { sudo: false });
  t = makeCa();
  sshd = await startCaSshd({
    caPublicKey: t.ca.publicKey(),
    principals: { [TEST_USER]: [TEST_USER], [NOSUDO]: [NOSUDO] },
  });
  g = new GuestSsh(localTarget(sshd), { ca: t.ca });
  classic = new GuestSsh(localTarget(sshd, { key: 'sb-classic' }), { ca: t.ca, runner: 'classic' });
});

after(async () => {
  g?.close();
  classic?.close();
  await sshd?.stop();
});

const inlineSession = () => g;
const isCode = (c: string) => (e: unknown) => e instanceof FluidError && e.code === c;
/** Live processes in session sid. */
function inSession(sid: number): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[3]) === sid && f[0] !== 'Z') found.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return found;
}

/** A unique marker for processes a test starts, so it can look for survivors. */
const marker = () => `${3000 + Math.floor(Math.random() * 6000)}.${Date.now() % 100000}`;

for (const runner of ['inline', 'classic'] as const)
  describe(`exec (${runner} runner)`, () => {
    // Each test reads the session for its runner.
    let g!: GuestSsh;
    before(() => {
      g = runner === 'inline' ? inlineSession() : classic;
    });

    test('exit code, stdout and stderr', async () => {
      const r = await g.exec('echo out; echo err >&2; exit 3');
      assert.equal(r.exitCode, 3);
      assert.equal(r.signal, null);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
      assert.equal(r.truncated, false);
      assert.equal(r.timedOut, false);
      assert.ok(r.durationMs >= 0);
    });

    test('a multi-line script with heredocs, $VARS and quotes arrives and runs exactly as written', async () => {
      const script = `#!/bin/bash
set -euo pipefail
greeting="hello   world"   # three spaces survive quoting
echo "$greeting" '$greeting' \\$greeting
cat > /tmp/fluid-heredoc-$$.txt <<'EOF'
literal: $HOME $(id -u) \`date\` "double" 'single' \\back\\slash
EOF
cat /tmp/fluid-heredoc-$$.txt && rm /tmp/fluid-heredoc-$$.txt
cat <<EOF
expanded: user=$USER sum=$((40 + 2))
	tab-indented line kept
EOF
cat <<-EOF
	dash-heredoc strips tabs
	EOF
printf '%s|' "a b" 'c"d' "e'f"; echo
arr=(one "two three"); echo "\${#arr[@]} \${arr[1]}"
echo 'ünïcødé ✓ — %q would have broken this: "\\n"'
if [[ "x" == x ]]; then echo "bashisms work"; fi
false || echo "exit status $?"`;
      const r = await g.exec(script);
      assert.equal(r.stderr, '');
      assert.equal(r.exitCode, 0);
      assert.equal(
        r.stdout,
        [
          'hello   world $greeting $greeting',
          'literal: $HOME $(id -u) `date` "double" \'single\' \\back\\slash',
          `expanded: user=${TEST_USER} sum=42`,
          '\ttab-indented line kept',
          'dash-heredoc strips tabs',
          'a b|c"d|e\'f|',
          '2 two three',
          'ünïcødé ✓ — %q would have broken this: "\\n"',
          'bashisms work',
          'exit status 1',
          '',
        ].join('\n'),
      );
    });

    test('a script larger than the kernel argument limit (128 KiB) runs', async () => {
      const lines = Array.from({ length: 6000 }, (_, i) => `x${i}='${'v'.repeat(40)}'`);
      const script = `${lines.join('\n')}\necho "$x0 $x5999" | wc -c`;
      assert.ok(Buffer.byteLength(script) > 256 * 1024);
      const r = await g.exec(script);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), '82');
    });

    test('stdin reaches the script; without stdin reads see EOF', async () => {
      const input = 'line one\nline "two"\n\u00e9\n';
      const r = await g.exec('cat; echo "[$(wc -l </dev/null)]"', { stdin: input });
      assert.equal(r.stdout, `${input}[0]\n`);
      assert.equal((await g.exec('read -r x || echo eof')).stdout, 'eof\n');
      const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const sum = await g.exec('sha256sum | cut -d" " -f1', { stdin: bin });
      const { createHash } = await import('node:crypto');
      assert.equal(sum.stdout.trim(), createHash('sha256').update(bin).digest('hex'));
    });

    test('syntax errors and unknown commands name the line', async () => {
      const r = await g.exec('echo a\nnosuch-cmd-xyz\nif then');
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, /line 2: nosuch-cmd-xyz: command not found/);
      assert.match(r.stderr, /syntax error/);
    });

    test('root through sudo', async () => {
      const r = await g.exec(
        'id -u; cat > /root/fluid-root-test <<EOF\n$(id -un)\nEOF\ncat /root/fluid-root-test; rm /root/fluid-root-test',
        {
          root: true,
        },
      );
      assert.equal(r.stdout, '0\nroot\n');
      assert.notEqual((await g.exec('id -u')).stdout, '0\n', 'not root without root: true');
    });

    test('a user without passwordless sudo gets DENIED, not a cryptic exit 1', async () => {
      const n = new GuestSsh(localTarget(sshd, { user: NOSUDO, key: 'nosudo' }), { ca: t.ca, runner });
      try {
        assert.equal((await n.exec('id -un')).stdout, `${NOSUDO}\n`);
        await assert.rejects(
          n.exec('id -u', { root: true }),
          (e: unknown) =>
            isCode('DENIED')(e) && /passwordless sudo|sudo without a password/.test((e as Error).message),
        );
        await assert.rejects(n.readFile('/etc/hostname'), isCode('DENIED'));
      } finally {
        n.close();
      }
    });

    test('a timeout kills the whole remote process tree and reports timedOut', async () => {
      const m = marker();
      const started = Date.now();
      const r = await g.exec(`sleep ${m} & (trap "" TERM; exec sleep ${m}1) & echo started; sleep ${m}2`, {
        timeoutMs: 800,
        killGraceMs: 500,
      });
      const took = Date.now() - started;
      assert.equal(r.timedOut, true);
      assert.equal(r.exitCode, null);
      assert.equal(r.stdout, 'started\n');
      assert.ok(took >= 800 && took < 4000, `took ${took} ms`);
      await waitFor('no survivors', () => liveProcesses(`sleep ${m}`).length === 0, 2000);
      // The connection is still good.
      assert.equal((await g.exec('echo after')).stdout, 'after\n');
    });

    test('a timeout as root kills root processes too', async () => {
      const m = marker();
      const r = await g.exec(`sleep ${m} & sleep ${m}9`, { timeoutMs: 500, killGraceMs: 300, root: true });
      assert.equal(r.timedOut, true);
      await waitFor('no survivors', () => liveProcesses(`sleep ${m}`).length === 0, 2000);
    });

    test('exit 124 from the script is an exit code, not a timeout', async () => {
      const r = await g.exec('exit 124', { timeoutMs: 10_000 });
      assert.equal(r.exitCode, 124);
      assert.equal(r.timedOut, false);
    });

    test('cancel through an AbortSignal kills the process tree', async () => {
      const m = marker();
      const ac = new AbortController();
      const started = Date.now();
      const p = g.exec(`sleep ${m} & sleep ${m}5`, { signal: ac.signal, killGraceMs: 300 });
      await waitFor('started', () => liveProcesses(`sleep ${m}5`).length === 1);
      ac.abort();
      await assert.rejects(p, isCode('CANCELLED'));
      assert.ok(Date.now() - started < 5000);
      await waitFor('no survivors', () => liveProcesses(`sleep ${m}`).length === 0, 2000);
      await assert.rejects(g.exec('true', { signal: ac.signal }), isCode('CANCELLED'));
    });

    test('cancel works for root commands too (sudo relays the signal)', async () => {
      const m = marker();
      const ac = new AbortController();
      const p = g.exec(`sleep ${m} & sleep ${m}5`, { signal: ac.signal, killGraceMs: 300, root: true });
      await waitFor('started', () => liveProcesses(`sleep ${m}5`).length === 1);
      ac.abort();
      await assert.rejects(p, isCode('CANCELLED'));
      await waitFor('no survivors', () => liveProcesses(`sleep ${m}`).length === 0, 2000);
    });

    test('output over the cap keeps head and tail around a visible marker', async () => {
      const r = await g.exec('seq 1 200000; echo done >&2', { maxOutputBytes: 1000 });
      assert.equal(r.exitCode, 0);
      assert.equal(r.truncated, true);
      const total = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join('').length;
      const m = /\n…\[truncated (\d+) bytes\]…\n/.exec(r.stdout);
      assert.ok(m, 'marker present');
      assert.equal(Number(m[1]), total - 1000);
      assert.ok(r.stdout.startsWith('1\n2\n3\n'));
      assert.ok(r.stdout.endsWith('199999\n200000\n'));
      assert.equal(r.stderr, 'done\n');
    });

    test('output streams live to callbacks', async () => {
      const chunks: { at: number; text: string }[] = [];
      const started = Date.now();
      const r = await g.exec('echo one; sleep 0.6; echo two >&2; sleep 0.2', {
        onStdout: (c) => chunks.push({ at: Date.now() - started, text: `out:${c}` }),
        onStderr: (c) => chunks.push({ at: Date.now() - started, text: `err:${c}` }),
      });
      assert.deepEqual(
        chunks.map((c) => c.text),
        ['out:one\n', 'err:two\n'],
      );
      assert.ok(chunks[0]!.at < r.durationMs - 500, `first chunk at ${chunks[0]!.at} of ${r.durationMs} ms`);
    });

    test('a background process holding stdout does not hang the call', async () => {
      const m = marker();
      const started = Date.now();
      const r = await g.exec(`sleep ${m} & echo "pid $!"`);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      assert.equal(r.exitCode, 0);
      const pid = Number(/pid (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(liveProcesses(`sleep ${m}`).includes(pid), 'left running, as nohup-style jobs expect');
      process.kill(pid, 'SIGTERM');
    });

    test('many concurrent commands share one connection', async () => {
      const before = g.stats.connects;
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => g.exec(`sleep 0.1; echo ${i}`)));
      assert.deepEqual(
        results.map((r) => r.stdout),
        Array.from({ length: 30 }, (_, i) => `${i}\n`),
      );
      assert.equal(g.stats.connects, before);
    });

    test('two commands at once on one connection each get their own stdin and output', async () => {
      const a = Buffer.alloc(300_000, 'a');
      const b = Buffer.alloc(200_000, 'b');
      const script = 'echo "$(wc -c) $(id -u)"; tr -d "\\n" <<<"$RANDOM" >/dev/null; echo err >&2';
      const [ra, rb, rroot] = await Promise.all([
        g.exec(script, { stdin: a }),
        g.exec(script, { stdin: b }),
        g.exec(script, { stdin: 'cc', root: true }),
      ]);
      const uid = (await g.exec('id -u')).stdout.trim();
      assert.equal(ra.stdout, `300000 ${uid}\n`);
      assert.equal(rb.stdout, `200000 ${uid}\n`);
      assert.equal(rroot.stdout, '2 0\n');
      for (const r of [ra, rb, rroot]) assert.equal(r.stderr, 'err\n');
    });

    test('a command that reads stdin line by line and answers as it goes', async () => {
      const lines = Array.from({ length: 500 }, (_, i) => `line ${i}`);
      const r = await g.exec('n=0; while IFS= read -r l; do n=$((n + 1)); echo "${l^^}"; done; echo "n=$n"', {
        stdin: lines.join('\n') + '\n',
      });
      assert.equal(r.stdout, [...lines.map((l) => l.toUpperCase()), 'n=500', ''].join('\n'));
    });

    test('a normal exit leaves no process of the runner behind', async () => {
      const sidScript = 'read -r l </proc/$BASHPID/stat; set -- ${l##*) }; echo "sid $4"';
      const r = await g.exec(sidScript, { timeoutMs: 60_000 });
      assert.equal(r.exitCode, 0);
      const sid = Number(/sid (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(sid > 1);
      await waitFor('the session to empty', () => inSession(sid).length === 0, 2000);
      // While a command runs, its session has processes (the look can see them).
      const ac = new AbortController();
      let running = 0;
      const p = g.exec(`${sidScript}; sleep ${marker()}`, {
        signal: ac.signal,
        killGraceMs: 300,
        onStdout: (c) => (running = Number(/sid (\d+)/.exec(c.toString())?.[1] ?? 0)),
      });
      await waitFor('started', () => running > 0);
      assert.ok(inSession(running).length > 0);
      ac.abort();
      await assert.rejects(p, isCode('CANCELLED'));
    });

    test('NUL bytes in a script are refused up front', async () => {
      await assert.rejects(g.exec('echo a\0b'), isCode('VALIDATION'));
    });
  });

describe('root commands over a root login (target.rootUser)', () => {
  /** The command names from the script's shell up to init: sudo shows up there when it was used. */
  const ANCESTRY =
    'id -u; p=$$; while [ "$p" -gt 1 ]; do read -r c < /proc/$p/comm; echo "$c"; set -- $(cat /proc/$p/stat | sed "s/.*) //"); p=$2; done';
  const ancestry = (out: string) => out.trim().split('\n').slice(1);

  test('an sshd that lets root in: root commands log in as root, with no sudo each', async () => {
    // The same principal for both users, as a sandbox's identity step writes it.
    const rootSshd = await startCaSshd({
      caPublicKey: t.ca.publicKey(),
      principals: { [TEST_USER]: [TEST_USER], root: [TEST_USER] },
      extraConfig: ['PermitRootLogin prohibit-password'],
    });
    const r = new GuestSsh(localTarget(rootSshd, { key: 'sb-root', rootUser: 'root' }), { ca: t.ca });
    try {
      assert.equal(r.stats.rootLogin, 'idle');
      const res = await r.exec(ANCESTRY, { root: true });
      assert.equal(res.stdout.split('\n')[0], '0', res.stderr);
      assert.ok(!ancestry(res.stdout).includes('sudo'), `no sudo: ${ancestry(res.stdout).join(' < ')}`);
      assert.equal(r.stats.rootLogin, 'connected');
      assert.equal(r.stats.connected, false, 'the login user’s connection is not needed for root commands');
      // Files as root go the same way (a root-only file, still without the login user's connection);
      // commands without root stay the login user's.
      assert.ok((await r.readFile('/etc/shadow')).length > 0);
      assert.equal(r.stats.connected, false, 'file operations use the root login too');
      assert.equal((await r.exec('id -un')).stdout, `${TEST_USER}\n`);
      assert.equal(r.stats.connected, true);
      assert.match(rootSshd.log(), /Accepted publickey for root .* ED25519-CERT/);
      // The held state reaches the root connection too (a paused pool member keeps both).
      r.hold(true);
      r.disconnect();
      assert.equal(r.stats.rootLogin, 'idle');
      assert.equal((await r.exec('id -u', { root: true })).stdout, '0\n');
    } finally {
      r.close();
      await rootSshd.stop();
    }
  });

  test('an sshd that refuses root: root commands use sudo, and the refusal is remembered', async () => {
    const r = new GuestSsh(localTarget(sshd, { key: 'sb-root-refused', rootUser: 'root' }), { ca: t.ca });
    try {
      const res = await r.exec(ANCESTRY, { root: true });
      assert.equal(res.stdout.split('\n')[0], '0', res.stderr);
      assert.ok(ancestry(res.stdout).includes('sudo'), `through sudo: ${ancestry(res.stdout).join(' < ')}`);
      assert.equal(r.stats.rootLogin, 'refused');
      const refusals = () => (sshd.log().match(/root/g) ?? []).length;
      const before = refusals();
      assert.equal((await r.exec('id -u', { root: true })).stdout, '0\n');
      assert.equal(refusals(), before, 'no second root login attempt');
    } finally {
      r.close();
    }
  });
});

describe('runners started ahead (Spare)', () => {
  /** Prints the pid of the other session on this command's connection: the spare started after it. */
  const FIND_SPARE =
    'pp=$(ps -o ppid= -p $$); for i in $(seq 100); do s=$(pgrep -P $pp | grep -vx $$); [ -n "$s" ] && break; sleep 0.05; done; echo "$s"';
  const session = (key: string, over: object = {}) =>
    new GuestSsh(localTarget(sshd, { key }), { ca: t.ca, ...over });
  /** A live (not zombie) process? */
  const alive = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  };

  test('after the first command each command runs on a runner started ahead, on a channel of its own', async () => {
    const s = session('sb-spare');
    try {
      const pids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await s.exec('echo "$$ $BASH_SOURCE"; echo err >&2; exit 3', { stdin: 'unused' });
        assert.deepEqual([r.exitCode, r.stderr], [3, 'err\n']);
        pids.push(r.stdout);
      }
      assert.equal(s.stats.spareRuns, 5, 'every command but the first');
      assert.equal(new Set(pids).size, 6, `a runner (and a channel) per command: ${pids.join(' ')}`);
      assert.ok(pids.every((p) => p.endsWith(' /dev/fd/9\n')));
      assert.equal(s.stats.connects, 1);
      // Without spares, nothing runs ahead.
      const off = session('sb-spare-off', { spare: false });
      await off.exec('true');
      await off.exec('true');
      assert.equal(off.stats.spareRuns, 0);
      off.close();
    } finally {
      s.close();
    }
  });

  test('prepare logs in and starts a spare, so the first command already runs on one', async () => {
    const s = session('sb-prepare');
    try {
      await s.prepare();
      assert.equal(s.stats.connects, 1);
      assert.equal(s.stats.spareRuns, 0, 'nothing ran yet');
      assert.equal((await s.exec('id -un')).stdout, `${TEST_USER}\n`);
      assert.equal(s.stats.spareRuns, 1, 'the first command ran on the spare prepare started');
      assert.equal(s.stats.connects, 1);
    } finally {
      s.close();
    }
    // For root commands on an sshd that refuses root: the refusal is remembered, the login user's
    // connection is made instead (root commands then go through sudo, which has no spare).
    const r = new GuestSsh(localTarget(sshd, { key: 'sb-prepare-root', rootUser: 'root' }), { ca: t.ca });
    try {
      await r.prepare({ root: true });
      assert.equal(r.stats.rootLogin, 'refused');
      assert.equal(r.stats.connected, true);
      assert.equal((await r.exec('id -u', { root: true })).stdout, '0\n');
    } finally {
      r.close();
    }
  });

  test('a spare never makes a command wait for a channel slot', async () => {
    // Two slots, one held by the spare: two commands that each wait for the other still both run.
    const s = session('sb-spare-slots', { maxChannels: 2 });
    try {
      await s.exec('true');
      const d = (await s.exec('mktemp -d')).stdout.trim();
      const [a, b] = await Promise.all(
        ['a b', 'b a'].map((x) => {
          const [me, other] = x.split(' ');
          return s.exec(`touch ${d}/${me}; until [ -e ${d}/${other} ]; do sleep 0.05; done`, {
            timeoutMs: 20_000,
          });
        }),
      );
      assert.deepEqual([a!.exitCode, b!.exitCode, a!.timedOut, b!.timedOut], [0, 0, false, false]);
      await s.exec(`rm -r ${d}`);
    } finally {
      s.close();
    }
  });

  test('a spare whose connection closes runs nothing and leaves nothing behind', async () => {
    const s = session('sb-spare-close');
    const spare = Number((await s.exec(FIND_SPARE)).stdout);
    assert.ok(spare > 1 && alive(spare), 'a runner waits on the connection');
    s.close();
    await waitFor('the spare to exit', () => !alive(spare));
  });

  test('a spare killed while it waits: the next command runs once, on a channel of its own', async () => {
    const s = session('sb-spare-killed');
    try {
      const d = (await s.exec('mktemp -d')).stdout.trim();
      for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
        const spare = Number((await s.exec(FIND_SPARE)).stdout);
        assert.ok(spare > 1 && alive(spare));
        const runs = s.stats.spareRuns;
        // Killed before the client can hear of it: the command is written to the dead spare.
        process.kill(spare, sig);
        const r = await s.exec(`echo ran >> ${d}/${sig}; wc -l < ${d}/${sig}`);
        assert.deepEqual([r.exitCode, r.stdout], [0, '1\n'], `${sig}: ran exactly once`);
        assert.equal(s.stats.spareRuns, runs, `${sig}: not on the dead spare`);
      }
      // A KILL can come at any moment, so it is reported as it is, never run again.
      const spare = Number((await s.exec(FIND_SPARE)).stdout);
      process.kill(spare, 'SIGKILL');
      const r = await s.exec(`echo ran >> ${d}/kill`);
      assert.equal(r.signal, 'SIGKILL');
      assert.equal((await s.exec(`cat ${d}/kill 2>/dev/null | wc -l; rm -r ${d}`)).stdout, '0\n');
    } finally {
      s.close();
    }
  });
});

describe('a guest that goes away under its connection', () => {
  /**
   * A host whose forwarded streams can be ended from the far side without closing, as the host's sshd
   * leaves them when the guest behind them is rebooted or restored by another process: 'end' comes,
   * 'close' never does, and writes vanish.
   */
  function cuttableHost(): { host: LocalConnection; cut: () => void } {
    const host = new LocalConnection('cuttable');
    const cuts: (() => void)[] = [];
    host.forwardOut = (address, port) =>
      new Promise((resolve) => {
        const sock = connect({ host: address, port }, () => resolve(stream));
        let gone = false;
        const stream = new Duplex({
          allowHalfOpen: true,
          read() {},
          write(chunk, _enc, cb) {
            if (gone) return cb();
            sock.write(chunk, cb);
          },
        });
        sock.on('data', (c) => !gone && stream.push(c));
        cuts.push(() => {
          gone = true;
          stream.push(null);
          sock.destroy();
        });
      });
    return { host, cut: () => cuts.splice(0).forEach((c) => c()) };
  }

  test('an idle connection (with its spare) is dropped when its stream ends, and the next command logs in anew', async () => {
    const { host, cut } = cuttableHost();
    const s = new GuestSsh(localTarget(sshd, { key: 'sb-cut-idle', host }), { ca: t.ca });
    try {
      await s.exec('true');
      await s.exec('true');
      assert.equal(s.stats.spareRuns, 1);
      cut();
      await waitFor('the connection to be dropped', () => !s.stats.connected);
      const r = await s.exec('echo again', { timeoutMs: 20_000 });
      assert.deepEqual([r.exitCode, r.stdout, r.timedOut], [0, 'again\n', false]);
      assert.equal(s.stats.connects, 2);
    } finally {
      s.close();
    }
  });

  test('a command running when the stream ends fails at once instead of waiting for its deadline', async () => {
    const { host, cut } = cuttableHost();
    const s = new GuestSsh(localTarget(sshd, { key: 'sb-cut-busy', host }), { ca: t.ca });
    try {
      await s.exec('true');
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const p = s.exec('echo up; sleep 30', { timeoutMs: 60_000, onStdout: () => started() });
      await running;
      cut();
      await assert.rejects(p, (e) => isCode('HOST_UNREACHABLE')(e) && /dropped/.test((e as Error).message));
    } finally {
      s.close();
    }
  });
});
