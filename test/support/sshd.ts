/** A throwaway OpenSSH server on a loopback port, for tests that need to control its host key. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './core.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestSshd {
  port: number;
  dir: string;
  fingerprint(): string;
  /** Replace the host key and restart (a reinstalled host, or a man in the middle). */
  rotateHostKey(): Promise<void>;
  stop(): Promise<void>;
}

function sshdBinary(): string {
  if (!existsSync('/usr/sbin/sshd'))
    throw new Error('OpenSSH server is not installed: apt-get install openssh-server');
  return '/usr/sbin/sshd';
}

/** Root login with the given authorized public key(s). */
export async function startSshd(authorizedKeys: string): Promise<TestSshd> {
  const { dir, cleanup } = tempDir('fluid-sshd-');
  const port = await freePort();
  mkdirSync(join(dir, 'keys'), { recursive: true });
  writeFileSync(join(dir, 'authorized_keys'), authorizedKeys, { mode: 0o600 });
  const genKey = () => {
    rmSync(join(dir, 'keys', 'host'), { force: true });
    rmSync(join(dir, 'keys', 'host.pub'), { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'keys', 'host')]);
  };
  genKey();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'keys', 'host')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel VERBOSE',
    ].join('\n') + '\n',
  );
  mkdirSync('/run/sshd', { recursive: true });
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(sshdBinary(), ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    const end = Date.now() + 10_000;
    while (!/Server listening/.test(log)) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`sshd did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stopChild = async () => {
    const c = child as ChildProcess | null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGTERM');
    });
  };
  await start();
  return {
    port,
    dir,
    fingerprint: () => {
      const out = execFileSync('ssh-keygen', [
        '-l',
        '-E',
        'sha256',
        '-f',
        join(dir, 'keys', 'host.pub'),
      ]).toString();
      return out.split(/\s+/)[1]!;
    },
    rotateHostKey: async () => {
      await stopChild();
      genKey();
      await start();
    },
    stop: async () => {
      await stopChild();
      cleanup();
    },
  };
}

export const readPub = (file: string) => readFileSync(file, 'utf8');
