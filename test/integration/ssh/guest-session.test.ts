/**
 * Connection behaviour against a real sshd: pooling, reconnecting after the server drops us,
 * certificate renewal, idle close, PTY shells, and going through a jump host (another real sshd,
 * reached with SshConnection, standing in for a libvirt host).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import {
  ensureTestUser,
  localTarget,
  loginWith,
  makeCa,
  recordIssued,
  startCaSshd,
  TEST_USER,
  waitFor,
  type CaSshd,
  type TestCa,
} from './harness.ts';
import {
  GuestSsh,
  GuestSshPool,
  SOCKET_CLOSE_GRACE_MS,
  type GuestShell,
} from '../../../src/core/ssh/guest.ts';
import { SshConnection } from '../../../src/core/hosts/ssh.ts';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import { startSshd } from '../../support/sshd.ts';
import { FluidError } from '../../../src/shared/errors.ts';

let sshd: CaSshd;
let t: TestCa;

before(async () => {
  ensureTestUser();
  // A 1 s floor so a test can watch a certificate expire; production keeps 60 s.
  t = makeCa({ minSeconds: 1, maxSeconds: 600 });
  sshd = await startCaSshd({ caPublicKey: t.ca.publicKey(), principals: { [TEST_USER]: [TEST_USER] } });
});

after(async () => {
  await sshd?.stop();
});

const isCode = (c: string) => (e: unknown) => e instanceof FluidError && e.code === c;

/** A socket whose end never reaches the far end (nor the far end's): only destroy() closes it. */
class SilentEnd extends Duplex {
  private readonly inner: Socket;
  constructor(inner: Socket) {
    super();
    this.inner = inner;
    inner.on('data', (d: Buffer) => {
      if (!this.push(d)) inner.pause();
    });
  }
  override _read(): void {
    this.inner.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.inner.write(chunk, cb);
  }
  override _final(cb: () => void): void {
    cb();
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

/** The pid of the sshd process serving the connection a command runs on. */
async function sessionPid(g: GuestSsh): Promise<number> {
  // Up the tree from the script (runner, timeout when there is a deadline) to sshd's per-connection process.
  const r = await g.exec(
    `p=$PPID; while [ "$p" -gt 1 ]; do case "$(tr '\\0' ' ' < /proc/$p/cmdline)" in sshd:*) echo $p; exit;; esac; p=$(awk '{print $4}' /proc/$p/stat); done`,
  );
  const pid = Number(r.stdout.trim());
  assert.ok(pid > 1, r.stdout + r.stderr);
  assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /^sshd: fluid-test/);
  return pid;
}

describe('pooling and reconnects', () => {
  test('the pool hands out one session per key; calls reuse its connection', async () => {
    const pool = new GuestSshPool({ ca: t.ca });
    const target = localTarget(sshd, { key: 'sb-pool' });
    const g = pool.get(target);
    assert.equal(pool.get({ ...target }), g, 'same target, same session');
    await g.exec('true');
    const serial = g.stats.serial;
    await g.exec('true');
    await g.readFile('/etc/hostname');
    assert.equal(g.stats.connects, 1);
    assert.equal(g.stats.serial, serial);
    // A new connection object for the same host keeps the session (and its live connection).
    const sameHost = pool.get({ ...target, host: new LocalConnection('local') });
    assert.equal(sameHost, g);
    await g.exec('true');
    assert.equal(g.stats.connects, 1);
    const other = pool.get(localTarget(sshd, { key: 'sb-other' }));
    assert.notEqual(other, g);
    // A changed target (e.g. a new host key recorded) replaces the session.
    const changed = pool.get({ ...target, hostKey: { fingerprint: [sshd.hostKeyFingerprint, 'SHA256:x'] } });
    assert.notEqual(changed, g);
    await assert.rejects(g.exec('true'), isCode('UNAVAILABLE'));
    assert.equal(pool.size, 2);
    pool.closeAll();
    assert.equal(pool.size, 0);
    await assert.rejects(changed.exec('true'), isCode('UNAVAILABLE'));
  });

  test('after the server drops the connection, the next call reconnects with a new certificate', async () => {
    const g = new GuestSsh(localTarget(sshd), { ca: t.ca });
    try {
      const pid = await sessionPid(g);
      const firstSerial = g.stats.serial;
      process.kill(pid, 'SIGTERM');
      await waitFor('the drop to be noticed', () => !g.stats.connected);
      assert.equal((await g.exec('echo back')).stdout, 'back\n');
      assert.equal(g.stats.connects, 2);
      assert.notEqual(g.stats.serial, firstSerial);
    } finally {
      g.close();
    }
  });

  test('a drop during a command is HOST_UNREACHABLE (it may or may not have run), then it recovers', async () => {
    const g = new GuestSsh(localTarget(sshd), { ca: t.ca });
    try {
      const pid = await sessionPid(g);
      const running = g.exec('sleep 5; echo late');
      await new Promise((r) => setTimeout(r, 200));
      process.kill(pid, 'SIGTERM');
      await assert.rejects(
        running,
        (e: unknown) => isCode('HOST_UNREACHABLE')(e) && /may or may not/.test((e as Error).message),
      );
      assert.equal((await g.exec('echo ok')).stdout, 'ok\n');
    } finally {
      g.close();
    }
  });

  test('a pooled connection outlives its certificate; new connections get fresh ones', async () => {
    const issued = recordIssued(t.ca);
    const g = new GuestSsh(localTarget(sshd), { ca: t.ca, certValiditySeconds: 2 });
    try {
      await g.exec('true');
      const first = issued.at(-1)!;
      assert.ok(first.validBefore.getTime() - Date.now() <= 2000);
      await new Promise((r) => setTimeout(r, first.validBefore.getTime() - Date.now() + 1100));
      // Expired now: sshd refuses it for a new login...
      await assert.rejects(loginWith(sshd.port, TEST_USER, first.privateKey, first.certificate));
      // ...but the connection it opened stays logged in.
      assert.equal((await g.exec('echo still')).stdout, 'still\n');
      assert.equal(g.stats.connects, 1);
      // A new connection logs in with a new certificate.
      g.disconnect();
      assert.equal((await g.exec('echo renewed')).stdout, 'renewed\n');
      assert.equal(g.stats.connects, 2);
      assert.equal(g.stats.serial, issued.at(-1)!.serial);
      assert.ok(issued.at(-1)!.serial > first.serial);
    } finally {
      g.close();
    }
  });

  test('an idle connection is closed and reopened on demand', async () => {
    const g = new GuestSsh(localTarget(sshd), { ca: t.ca, idleTimeoutMs: 200 });
    try {
      await g.exec('true');
      assert.equal(g.stats.connected, true);
      await waitFor('idle close', () => !g.stats.connected, 3000);
      await g.exec('true');
      assert.equal(g.stats.connects, 2);
    } finally {
      g.close();
    }
  });

  test('a closed connection whose far end never answers is not kept open', async (ctx) => {
    // The socket to a guest that was destroyed right after Fluid closed its connection: the FIN is
    // never acknowledged, so the socket would wait out the kernel's retransmissions (and keep the
    // process alive). Here the stream simply never passes the end on.
    let silent: SilentEnd | null = null;
    const host = new LocalConnection('local');
    const forward = host.forwardOut.bind(host);
    host.forwardOut = async (address, port) =>
      (silent = new SilentEnd((await forward(address, port)) as Socket));
    const g = new GuestSsh(localTarget(sshd, { host }), { ca: t.ca });
    await g.exec('true');
    assert.ok(silent);
    const s = silent as SilentEnd;
    ctx.mock.timers.enable({ apis: ['setTimeout'] });
    g.close();
    assert.equal(s.destroyed, false, 'ended, waiting for the far end');
    ctx.mock.timers.tick(SOCKET_CLOSE_GRACE_MS);
    assert.equal(s.destroyed, true);
  });

  test('an unreachable guest is HOST_UNREACHABLE', async () => {
    const g = new GuestSsh(localTarget(sshd, { port: 1 }), { ca: t.ca });
    await assert.rejects(g.exec('true'), isCode('HOST_UNREACHABLE'));
    g.close();
  });
});

describe('interactive shell', () => {
  function collect(sh: GuestShell) {
    let out = '';
    sh.onData((c) => (out += c.toString()));
    return {
      text: () => out,
      waitFor: (re: RegExp) => waitFor(`shell output ${re}`, () => re.test(out), 5000),
    };
  }

  test('a PTY shell echoes, resizes and reports its exit', async () => {
    const g = new GuestSsh(localTarget(sshd), { ca: t.ca });
    try {
      const sh = await g.shell({ cols: 100, rows: 30, term: 'xterm-256color' });
      const out = collect(sh);
      const exited = new Promise<{ exitCode: number | null }>((r) => sh.onExit(r));
      sh.write('echo "hi $((6 * 7))"; stty size; echo "TERM=$TERM"\n');
      await out.waitFor(/hi 42/);
      await out.waitFor(/30 100/);
      await out.waitFor(/TERM=xterm-256color/);
      sh.resize(132, 43);
      sh.write('stty size\n');
      await out.waitFor(/43 132/);
      assert.equal(g.stats.shells, 1);
      sh.write('exit 3\n');
      assert.deepEqual(await exited, { exitCode: 3, signal: null });
      assert.equal(sh.closed, true);
      assert.equal(g.stats.shells, 0);
      assert.throws(() => sh.write('x'), isCode('UNAVAILABLE'));
      // The shell had its own connection, with a permit-pty certificate; exec connections do not.
      const rows = t.db
        .prepare(
          "SELECT purpose, extensions FROM ssh_certificates WHERE purpose LIKE 'guest-%' ORDER BY serial DESC LIMIT 1",
        )
        .all() as { purpose: string; extensions: string }[];
      assert.deepEqual(rows, [{ purpose: 'guest-shell', extensions: '["permit-pty"]' }]);
      assert.equal(g.stats.connects, 0, 'no exec connection was needed');
    } finally {
      g.close();
    }
  });

  test('closing a shell ends it; closing the session ends its shells', async () => {
    const g = new GuestSsh(localTarget(sshd), { ca: t.ca });
    const a = await g.shell();
    const aExit = new Promise((r) => a.onExit(r));
    a.close();
    await aExit;
    const b = await g.shell();
    const bExit = new Promise((r) => b.onExit(r));
    g.close();
    await bExit;
    assert.equal(b.closed, true);
    await assert.rejects(g.shell(), isCode('UNAVAILABLE'));
  });
});

describe('through a jump host', () => {
  test('GuestSsh over SshConnection.forwardOut logs in and runs commands', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'fluid-jump-key-'));
    const keyPath = join(keyDir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
    const jump = await startSshd(readFileSync(`${keyPath}.pub`, 'utf8'));
    let host: SshConnection | null = null;
    let g: GuestSsh | null = null;
    try {
      host = await SshConnection.open({
        hostId: 'jump',
        address: '127.0.0.1',
        port: jump.port,
        user: 'root',
        auth: { type: 'key', keyPath },
        fingerprint: jump.fingerprint(),
        connectTimeoutMs: 10_000,
      });
      g = new GuestSsh(localTarget(sshd, { host, key: 'sb-jump' }), { ca: t.ca });
      const r = await g.exec('id -un; echo "$SSH_CONNECTION"');
      assert.equal(r.stdout.split('\n')[0], TEST_USER);
      assert.equal((await g.exec('id -u', { root: true })).stdout, '0\n');
      const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await g.writeFile('/tmp/fluid-jump-test.bin', data);
      assert.ok((await g.readFile('/tmp/fluid-jump-test.bin')).equals(data));
      await g.exec('rm -f /tmp/fluid-jump-test.bin', { root: true });
      const n = 30;
      const started = performance.now();
      for (let i = 0; i < n; i++) await g.exec('true');
      console.log(`# exec through the jump: ${((performance.now() - started) / n).toFixed(1)} ms per call`);
      assert.equal(g.stats.connects, 1);
      // The jump going away takes the guest connection with it; a new jump connection brings it back.
      host.close();
      await waitFor('guest connection to drop', () => !g!.stats.connected);
      await assert.rejects(g.exec('true'), isCode('HOST_UNREACHABLE'));
    } finally {
      g?.close();
      host?.close();
      await jump.stop();
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  test('the host may be given as a function returning its current connection', async () => {
    const g = new GuestSsh(localTarget(sshd, { host: async () => new LocalConnection('local') }), {
      ca: t.ca,
    });
    try {
      assert.equal((await g.exec('echo via-fn')).stdout, 'via-fn\n');
    } finally {
      g.close();
    }
  });
});
