/**
 * Exec round-trip latency against a local sshd (certificate login as the test user):
 *   ssh2 pooled, TCP_NODELAY     one ssh2 connection, client.exec('true')
 *   ssh2 pooled, Nagle on        the same without setNoDelay
 *   GuestSsh.exec                Fluid's exec: pooled + the runner (timeout, process group, caps)
 *   OpenSSH ControlMaster        `ssh -S ctl host true` over a master connection
 *   fresh ssh per command        `ssh host true`: a full login each time
 * Usage (as root; starts its own sshd): node bench/ssh-exec.ts [N=200]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import {
  ensureTestUser,
  localTarget,
  makeCa,
  startCaSshd,
  TEST_USER,
  writeKeyFiles,
} from '../test/integration/ssh/harness.ts';
import { GuestSsh } from '../src/core/ssh/guest.ts';
import { certificateAuthHandler } from '../src/core/ssh/ssh2-cert.ts';

const N = Number(process.argv[2] ?? process.env.N ?? 200);

ensureTestUser();
const { ca } = makeCa();
const sshd = await startCaSshd({ caPublicKey: ca.publicKey(), principals: { [TEST_USER]: [TEST_USER] } });
const dir = mkdtempSync(join(tmpdir(), 'fluid-bench-ssh-'));
const cert = ca.issue({ principals: [TEST_USER], validitySeconds: 600, keyId: 'bench', purpose: 'bench' });
const key = writeKeyFiles(dir, 'id', cert.privateKey, cert.certificate);
const ctl = join(dir, 'ctl');
const sshArgs = [
  ...['-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'],
  ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'],
  ...['-p', String(sshd.port), `${TEST_USER}@127.0.0.1`],
];

async function ssh2Client(noDelay: boolean): Promise<Client> {
  const sock = connect({ host: '127.0.0.1', port: sshd.port });
  sock.setNoDelay(noDelay);
  await new Promise((r) => sock.once('connect', r));
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c)).once('error', reject);
    c.connect({
      sock,
      username: TEST_USER,
      authHandler: certificateAuthHandler(TEST_USER, cert.privateKey, cert.certificate),
    });
  });
}

function rawExec(c: Client): Promise<void> {
  return new Promise((resolve, reject) =>
    c.exec('true', (err, s) => {
      if (err) return reject(err);
      s.on('data', () => {});
      s.stderr.on('data', () => {});
      s.on('close', () => resolve());
    }),
  );
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: 'ignore' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

const fast = await ssh2Client(true);
const nagle = await ssh2Client(false);
const guest = new GuestSsh(localTarget(sshd), { ca });
const master = spawnSync('ssh', ['-M', '-S', ctl, '-f', '-N', '-o', 'ControlPersist=120', ...sshArgs]);
if (master.status !== 0) throw new Error(`ControlMaster did not start: ${master.stderr}`);

const cases: [string, () => Promise<unknown>][] = [
  ['ssh2 pooled, TCP_NODELAY', () => rawExec(fast)],
  ['ssh2 pooled, Nagle on', () => rawExec(nagle)],
  ['GuestSsh.exec (runner)', () => guest.exec('true')],
  ['GuestSsh.exec, no timeout', () => guest.exec('true', { timeoutMs: 0 })],
  ['OpenSSH ControlMaster', () => run('ssh', ['-S', ctl, ...sshArgs, 'true'])],
  ['fresh ssh per command', () => run('ssh', [...sshArgs, 'true'])],
];
const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (const [, fn] of cases) await fn(); // warm up
// Interleave the cases so that load on the machine affects them alike. Fresh logins are slow:
// they run every 10th round.
for (let i = 0; i < N; i++) {
  for (const [name, fn] of cases) {
    if (name.startsWith('fresh') && i % 10 !== 0) continue;
    const t0 = performance.now();
    await fn();
    samples.get(name)!.push(performance.now() - t0);
  }
}

spawnSync('ssh', ['-S', ctl, '-O', 'exit', ...sshArgs]);
fast.end();
nagle.end();
guest.close();
await sshd.stop();
rmSync(dir, { recursive: true, force: true });

const pct = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;
const rows = cases.map(([name]) => {
  const a = [...samples.get(name)!].sort((x, y) => x - y);
  return { name, n: a.length, p50: pct(a, 50), p95: pct(a, 95), min: a[0]! };
});
const best = Math.min(...rows.map((r) => r.p50));
console.log(`exec('true') round trip, local sshd, ${N} rounds\n`);
console.log(
  `${'case'.padEnd(28)}${'n'.padStart(5)}${'min'.padStart(9)}${'p50'.padStart(9)}${'p95'.padStart(9)}  x p50 of best`,
);
for (const r of rows)
  console.log(
    `${r.name.padEnd(28)}${String(r.n).padStart(5)}${r.min.toFixed(1).padStart(9)}${r.p50.toFixed(1).padStart(9)}${r.p95.toFixed(1).padStart(9)}  ${(r.p50 / best).toFixed(1)}x`,
  );
console.log('\n(ms; machine load shows in p95)');
