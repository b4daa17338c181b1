/**
 * A real OpenSSH sshd for the SSH tests: its own config, host key and log in a temp dir, on a random
 * loopback port, trusting a test CA (TrustedUserCAKeys) with per-user principals files, and a
 * throwaway local user with passwordless sudo. Missing tools fail loudly: the tests never skip.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { SshCa, type IssuedCertificate, type ValidityLimits } from '../../../src/core/ssh/ca.ts';
import { certificateAuthHandler } from '../../../src/core/ssh/ssh2-cert.ts';
import type { GuestTarget } from '../../../src/core/ssh/guest.ts';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import { SSH_CA_MIGRATION } from '../../../src/core/ssh/schema.ts';
import { openDatabase, type Db } from '../../../src/core/store/db.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import { fingerprintOf } from '../../../src/core/hosts/ssh.ts';
import { parseKeyLine } from '../../../src/core/ssh/cert.ts';

export const TEST_USER = 'fluid-test';
export const SSHD = '/usr/sbin/sshd';

/** Throws with an install hint when a tool the SSH tests need is missing. */
export function requireOpenSsh(): void {
  const missing: string[] = [];
  if (!existsSync(SSHD)) missing.push('sshd (apt-get install -y openssh-server)');
  for (const [tool, pkg] of [
    ['ssh-keygen', 'openssh-client'],
    ['ssh', 'openssh-client'],
    ['sudo', 'sudo'],
    ['bash', 'bash'],
    ['useradd', 'passwd'],
  ] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      missing.push(`${tool} (apt-get install -y ${pkg})`);
    }
  }
  if (missing.length) throw new Error(`The SSH integration tests need: ${missing.join(', ')}.`);
  if (process.getuid?.() !== 0)
    throw new Error('The SSH integration tests run sshd and create a test user: run them as root.');
}

/** A local user with a usable (not locked) account, bash, and (unless told otherwise) passwordless sudo. */
export function ensureTestUser(name = TEST_USER, opts: { sudo?: boolean } = {}): void {
  requireOpenSsh();
  const exists = () => {
    try {
      execFileSync('id', [name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!exists()) {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/bash', name], { stdio: 'pipe' });
    } catch (e) {
      // Test files run in parallel: another one may have just created it.
      if (!exists()) throw e;
    }
  }
  // '*': no password login, but not locked ('!' makes sshd refuse every login without PAM).
  execFileSync('usermod', ['-p', '*', name]);
  const sudoers = `/etc/sudoers.d/${name}`;
  if (opts.sudo === false) {
    rmSync(sudoers, { force: true });
    return;
  }
  const line = `${name} ALL=(ALL) NOPASSWD:ALL\n`;
  if (!existsSync(sudoers) || readFileSync(sudoers, 'utf8') !== line) {
    writeFileSync(`${sudoers}.tmp`, line, { mode: 0o440 });
    renameSync(`${sudoers}.tmp`, sudoers);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface CaSshd {
  port: number;
  dir: string;
  hostKeyLine: string;
  hostKeyFingerprint: string;
  log(): string;
  stop(): Promise<void>;
}

export interface CaSshdOptions {
  caPublicKey: string;
  /** user -> principals accepted for that user */
  principals: Record<string, string[]>;
  extraConfig?: string[];
}

export async function startCaSshd(opts: CaSshdOptions): Promise<CaSshd> {
  requireOpenSsh();
  const dir = mkdtempSync(join(tmpdir(), 'fluid-ssh-test-'));
  chmodSync(dir, 0o755); // sshd reads the principals file as the logging-in user
  mkdirSync(join(dir, 'principals'), { mode: 0o755 });
  for (const [user, list] of Object.entries(opts.principals))
    writeFileSync(join(dir, 'principals', user), list.join('\n') + '\n', { mode: 0o644 });
  writeFileSync(join(dir, 'ca.pub'), opts.caPublicKey + '\n');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')]);
  const hostKeyLine = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim();
  const port = await freePort();
  const logFile = join(dir, 'sshd.log');
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      // sshd takes the first value of a keyword: extra lines go first so they can override.
      ...(opts.extraConfig ?? []),
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `TrustedUserCAKeys ${join(dir, 'ca.pub')}`,
      `AuthorizedPrincipalsFile ${join(dir, 'principals', '%u')}`,
      'AuthorizedKeysFile none',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      'UsePAM no',
      'StrictModes no',
      'PrintMotd no',
      'LogLevel VERBOSE',
      'MaxStartups 100',
      'Subsystem sftp internal-sftp',
    ].join('\n') + '\n',
  );
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  execFileSync(SSHD, ['-t', '-f', join(dir, 'sshd_config')]);
  const child: ChildProcess = spawn(SSHD, ['-D', '-f', join(dir, 'sshd_config'), '-E', logFile], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited at start:\n${log()}`);
    if (await answers(port)) break;
    if (Date.now() > deadline) throw new Error(`sshd did not start listening on ${port}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    dir,
    hostKeyLine,
    hostKeyFingerprint: fingerprintOf(parseKeyLine(hostKeyLine).blob),
    log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('SSH-'));
    });
    s.once('error', () => resolve(false));
  });
}

export interface TestCa {
  ca: SshCa;
  db: Db;
  secrets: MemorySecretStore;
}

export function makeCa(validity?: ValidityLimits): TestCa {
  const db = openDatabase(':memory:', [{ version: 1, ...SSH_CA_MIGRATION }]);
  const secrets = new MemorySecretStore();
  return { ca: new SshCa({ secrets, db, validity }), db, secrets };
}

/** Write a private key and certificate where the OpenSSH tools can read them. */
export function writeKeyFiles(dir: string, name: string, privateKey: string, certificate: string): string {
  const key = join(dir, name);
  writeFileSync(key, privateKey, { mode: 0o600 });
  writeFileSync(`${key}-cert.pub`, certificate + '\n');
  return key;
}

export function keygenList(certFile: string): string {
  return execFileSync('ssh-keygen', ['-L', '-f', certFile]).toString();
}

/** A raw ssh2 login with a given key and certificate (resolves when ready). */
export function loginWith(
  port: number,
  user: string,
  privateKey: string,
  certificate: string,
): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    c.once('error', (e) => {
      c.end();
      reject(e);
    });
    c.connect({
      host: '127.0.0.1',
      port,
      username: user,
      readyTimeout: 10_000,
      authHandler: certificateAuthHandler(user, privateKey, certificate),
    });
  });
}

/** Pids of live (not zombie) processes whose command line contains `needle`. */
export function liveProcesses(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!cmd.includes(needle)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') found.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return found.filter((p) => p !== process.pid);
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A target for the test sshd, reached directly (the local host is the "jump"). */
export function localTarget(sshd: CaSshd, over: Partial<GuestTarget> = {}): GuestTarget {
  return {
    key: 'sb-test',
    host: new LocalConnection('local'),
    address: '127.0.0.1',
    port: sshd.port,
    user: TEST_USER,
    hostKey: { fingerprint: sshd.hostKeyFingerprint },
    sandboxId: 'sb-test',
    ...over,
  };
}

/** Records every certificate the CA issues. */
export function recordIssued(ca: SshCa): IssuedCertificate[] {
  const issued: IssuedCertificate[] = [];
  const orig = ca.issue.bind(ca);
  ca.issue = (req) => {
    const c = orig(req);
    issued.push(c);
    return c;
  };
  return issued;
}
