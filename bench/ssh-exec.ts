/**
 * Exec round-trip latency, the competing approaches side by side in one run:
 *   ssh2 pooled, bare `true`      one ssh2 connection, client.exec('true'): the floor
 *   GuestSsh.exec, inline runner  Fluid's exec: pooled + the runner in the login shell, started
 *                                 ahead on the connection (guest.ts, Spare; the default)
 *   inline, channel per command   the same runner on a new channel per command (before spares)
 *   GuestSsh.exec, classic runner the previous runner: bash + timeout(1) + bash per command
 *   ... as root                   the same through `sudo -n`
 *   OpenSSH ControlMaster         `ssh -S ctl host true` over a master connection
 *   fresh ssh per command         `ssh host true`: a full login each time
 *
 * Against a local sshd (default; as root, starts its own sshd trusting a test CA, certificate login
 * as the test user):            node bench/ssh-exec.ts [N=200]
 * Against a real guest (e.g. a TCG VM; key login, the runners sent exactly as GuestSsh sends them
 * over one pooled ssh2 connection):
 *   node bench/ssh-exec.ts --target user@host[:port] --identity key [--rounds N=30]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import {
  ensureTestUser,
  localTarget,
  makeCa,
  startCaSshd,
  TEST_USER,
  writeKeyFiles,
} from '../test/integration/ssh/harness.ts';
import { DEFAULT_TIMEOUT_MS, GuestSsh } from '../src/core/ssh/guest.ts';
import { DEFAULT_KILL_GRACE_MS, runnerCommand, type RunnerKind } from '../src/core/ssh/runner.ts';
import { certificateAuthHandler } from '../src/core/ssh/ssh2-cert.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: 'string' },
    identity: { type: 'string' },
    rounds: { type: 'string' },
  },
});
const remote = values.target;
const N = Number(values.rounds ?? positionals[0] ?? process.env.N ?? (remote ? 30 : 200));
const dir = mkdtempSync(join(tmpdir(), 'fluid-bench-ssh-'));
const ctl = join(dir, 'ctl');
const cleanups: (() => unknown)[] = [];

let host = '127.0.0.1';
let port: number;
let user: string;
let sshAuth: string[];
let auth: Pick<ConnectConfig, 'authHandler' | 'privateKey'>;
let guests: { inline: GuestSsh; perChannel: GuestSsh; classic: GuestSsh } | null = null;

if (remote) {
  if (!values.identity) throw new Error('--target needs --identity <private key file>');
  const m = /^([^@]+)@([^:]+)(?::(\d+))?$/.exec(remote);
  if (!m) throw new Error('--target is user@host[:port]');
  [user, host, port] = [m[1]!, m[2]!, Number(m[3] ?? 22)];
  sshAuth = ['-i', values.identity];
  auth = { privateKey: readFileSync(values.identity) };
} else {
  ensureTestUser();
  const { ca } = makeCa();
  const sshd = await startCaSshd({ caPublicKey: ca.publicKey(), principals: { [TEST_USER]: [TEST_USER] } });
  cleanups.push(() => sshd.stop());
  const cert = ca.issue({ principals: [TEST_USER], validitySeconds: 600, keyId: 'bench', purpose: 'bench' });
  const key = writeKeyFiles(dir, 'id', cert.privateKey, cert.certificate);
  [user, port] = [TEST_USER, sshd.port];
  sshAuth = ['-i', key, '-o', `CertificateFile=${key}-cert.pub`];
  auth = { authHandler: certificateAuthHandler(TEST_USER, cert.privateKey, cert.certificate) };
  guests = {
    inline: new GuestSsh(localTarget(sshd), { ca }),
    perChannel: new GuestSsh(localTarget(sshd, { key: 'per-channel' }), { ca, spare: false }),
    classic: new GuestSsh(localTarget(sshd, { key: 'classic' }), { ca, runner: 'classic' }),
  };
  cleanups.push(() => {
    guests!.inline.close();
    guests!.perChannel.close();
    guests!.classic.close();
  });
}
const sshArgs = [
  ...sshAuth,
  ...['-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no'],
  ...['-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'],
  ...['-p', String(port), `${user}@${host}`],
];

async function ssh2Client(): Promise<Client> {
  const sock = connect({ host, port });
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c)).once('error', reject);
    c.connect({ sock, username: user, ...auth });
  });
}

function openChannel(c: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.exec(command, (err, s) => (err ? reject(err) : resolve(s))));
}

/** Write stdin to an exec channel and wait for it to close with exit code 0. */
function drive(s: ClientChannel, what: string, stdin?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let code: number | null = null;
    s.on('data', () => {});
    s.stderr.on('data', () => {});
    s.on('exit', (c: number | null) => (code = c));
    s.on('close', () => (code === 0 ? resolve() : reject(new Error(`${what} exited ${code}`))));
    if (stdin) s.end(stdin);
    else s.end();
  });
}

/** One exec channel: the command, then what goes on stdin; resolves with the exit code. */
async function rawExec(c: Client, command: string, stdin?: Buffer): Promise<void> {
  await drive(await openChannel(c, command), command.slice(0, 40), stdin);
}

/** GuestSsh's spare, by hand: the runner's channel opened ahead, the next one asked for at once. */
let spare: Promise<ClientChannel> | null = null;
async function spareExec(c: Client): Promise<void> {
  const cmd = runnerCommand('true', { timeoutMs: DEFAULT_TIMEOUT_MS, killGraceMs: DEFAULT_KILL_GRACE_MS });
  const channel = await (spare ?? openChannel(c, cmd.command));
  const done = drive(channel, 'spare', cmd.preamble);
  spare = openChannel(c, cmd.command);
  await done;
}

/** What GuestSsh.exec sends for `true` with its default deadline, over the given connection. */
function runnerExec(c: Client, runner: RunnerKind, root = false): Promise<void> {
  const cmd = runnerCommand('true', {
    timeoutMs: DEFAULT_TIMEOUT_MS,
    killGraceMs: DEFAULT_KILL_GRACE_MS,
    runner,
    root,
  });
  return rawExec(c, cmd.command, cmd.preamble);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: 'ignore' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

const pooled = await ssh2Client();
cleanups.push(() => pooled.end());
const master = spawnSync('ssh', ['-M', '-S', ctl, '-f', '-N', '-o', 'ControlPersist=120', ...sshArgs]);
if (master.status !== 0) throw new Error(`ControlMaster did not start: ${master.stderr}`);
cleanups.push(() => spawnSync('ssh', ['-S', ctl, '-O', 'exit', ...sshArgs]));

const INLINE = 'GuestSsh.exec, inline runner';
const PER_CHANNEL = 'inline, channel per command';
const CLASSIC = 'GuestSsh.exec, classic runner';
const INLINE_ROOT = 'inline runner, root (sudo)';
const CLASSIC_ROOT = 'classic runner, root (sudo)';
const CONTROL = 'OpenSSH ControlMaster';
const FRESH = 'fresh ssh per command';
const cases: [string, () => Promise<unknown>][] = [
  ['ssh2 pooled, bare `true`', () => rawExec(pooled, 'true')],
  [INLINE, guests ? () => guests!.inline.exec('true') : () => spareExec(pooled)],
  [PER_CHANNEL, guests ? () => guests!.perChannel.exec('true') : () => runnerExec(pooled, 'inline')],
  [CLASSIC, guests ? () => guests!.classic.exec('true') : () => runnerExec(pooled, 'classic')],
  [
    INLINE_ROOT,
    guests ? () => guests!.inline.exec('true', { root: true }) : () => runnerExec(pooled, 'inline', true),
  ],
  [
    CLASSIC_ROOT,
    guests ? () => guests!.classic.exec('true', { root: true }) : () => runnerExec(pooled, 'classic', true),
  ],
  [CONTROL, () => run('ssh', ['-S', ctl, ...sshArgs, 'true'])],
  [FRESH, () => run('ssh', [...sshArgs, 'true'])],
];
const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
try {
  for (const [, fn] of cases) await fn(); // warm up
  // Interleave the cases so that load on the machine affects them alike. Fresh logins are slow:
  // they run every 5th round.
  for (let i = 0; i < N; i++) {
    for (const [name, fn] of cases) {
      if (name === FRESH && i % 5 !== 0) continue;
      const t0 = performance.now();
      await fn();
      samples.get(name)!.push(performance.now() - t0);
    }
  }
} finally {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
}

const pct = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;
const rows = cases.map(([name]) => {
  const a = [...samples.get(name)!].sort((x, y) => x - y);
  return { name, n: a.length, p50: pct(a, 50), p95: pct(a, 95), min: a[0]! };
});
const p50 = (name: string) => rows.find((r) => r.name === name)!.p50;
console.log(`exec('true') round trip, ${remote ? `${user}@${host}:${port}` : 'local sshd'}, ${N} rounds\n`);
console.log(
  `${'case'.padEnd(32)}${'n'.padStart(5)}${'min'.padStart(9)}${'p50'.padStart(9)}${'p95'.padStart(9)}  p50 / ControlMaster`,
);
for (const r of rows)
  console.log(
    `${r.name.padEnd(32)}${String(r.n).padStart(5)}${r.min.toFixed(1).padStart(9)}${r.p50.toFixed(1).padStart(9)}${r.p95.toFixed(1).padStart(9)}  ${(r.p50 / p50(CONTROL)).toFixed(2)}x`,
  );
const ratio = (a: string, b: string) => (p50(b) / p50(a)).toFixed(1);
console.log(`
inline runner: ${ratio(INLINE, PER_CHANNEL)}x faster started ahead than on a channel per command,
               ${ratio(INLINE, CLASSIC)}x faster than the classic runner, ${ratio(INLINE, FRESH)}x faster than a fresh ssh,
               ${(p50(INLINE) / p50(CONTROL)).toFixed(2)}x ControlMaster's time; as root ${ratio(INLINE_ROOT, CLASSIC_ROOT)}x faster than classic
(ms; machine load shows in p95)`);
