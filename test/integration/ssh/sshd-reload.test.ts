/**
 * How a clone's identity step makes sshd serve the new host keys (identity.ts, sshdReloadSection),
 * against real OpenSSH: a running listener is reloaded in place (SIGHUP), no restart through the
 * service manager; anything that is not sshd's listener is left alone and sshd restarted instead.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sshdReloadSection } from '../../../src/core/sandboxes/identity.ts';
import { tempDir } from '../../support/core.ts';
import { freePort, requireOpenSsh, SSHD, waitFor } from './harness.ts';

let dir: string;
let cleanup: () => void;
const pids: number[] = [];

before(() => {
  requireOpenSsh();
  ({ dir, cleanup } = tempDir());
});

after(() => {
  for (const pid of pids)
    try {
      process.kill(pid);
    } catch {
      /* gone */
    }
  cleanup();
});

/**
 * A real sshd on loopback, daemonized with its pid file. Started with -r, so that it does not
 * re-execute itself per connection and keeps serving the keys it started with until it reloads.
 */
async function startSshd(name: string): Promise<{ port: number; key: string; pidFile: string; pid: number }> {
  const d = join(dir, name);
  mkdirSync(d);
  const key = join(d, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const port = await freePort();
  const pidFile = join(d, 'sshd.pid');
  writeFileSync(
    join(d, 'sshd_config'),
    `Port ${port}\nListenAddress 127.0.0.1\nHostKey ${key}\nPidFile ${pidFile}\nUsePAM no\n`,
  );
  execFileSync(SSHD, ['-r', '-f', join(d, 'sshd_config')]);
  await waitFor(
    'the sshd pid file',
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
  );
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  pids.push(pid);
  return { port, key, pidFile, pid };
}

/** The ed25519 key sshd serves on port now, as a fingerprint ('' while nothing listens). */
function served(port: number): string {
  let scan: Buffer;
  try {
    scan = execFileSync('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    // Refused: the listener is re-executing itself.
    return '';
  }
  if (!scan.length) return '';
  return execFileSync('ssh-keygen', ['-lf', '-'], { input: scan }).toString().split(' ')[1]!;
}
const fingerprint = (pub: string) => execFileSync('ssh-keygen', ['-lf', pub]).toString().split(' ')[1]!;

function newKey(key: string): string {
  rmSync(key);
  rmSync(`${key}.pub`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  return fingerprint(`${key}.pub`);
}

/**
 * Run the section with its pid file at `pidFile` (a missing one by default); systemctl, service
 * and journalctl only record their calls, and /run/systemd/system is a scratch directory.
 */
function runSection(
  name: string,
  pidFile: string | null,
  clearFailed = false,
): { said: string; calls: string } {
  const d = join(dir, `run-${name}`);
  mkdirSync(join(d, 'bin'), { recursive: true });
  mkdirSync(join(d, 'systemd'));
  const calls = join(d, 'calls');
  writeFileSync(calls, '');
  for (const tool of ['systemctl', 'service', 'journalctl']) {
    writeFileSync(join(d, 'bin', tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\n`);
    chmodSync(join(d, 'bin', tool), 0o755);
  }
  const script = sshdReloadSection(clearFailed)
    .replaceAll('/run/sshd.pid', pidFile ?? join(d, 'missing.pid'))
    .replaceAll('/run/systemd/system', join(d, 'systemd'));
  const out = execFileSync('sh', ['-eu'], {
    input: `${script}\n`,
    env: { ...process.env, PATH: `${join(d, 'bin')}:${process.env.PATH}` },
  }).toString();
  return { said: /sshd=(\w+)/.exec(out)?.[1] ?? '?', calls: readFileSync(calls, 'utf8') };
}

test('a running listener is reloaded in place and then serves the keys written before it', async () => {
  const s = await startSshd('listener');
  assert.equal(served(s.port), fingerprint(`${s.key}.pub`));
  const before = served(s.port);
  const next = newKey(s.key);
  assert.equal(served(s.port), before, 'without a reload, this sshd keeps its old key');

  assert.deepEqual(runSection('listener', s.pidFile), { said: 'reloaded', calls: '' });
  // The listener re-executes itself (same process), refusing connections for a moment meanwhile.
  await waitFor('the reloaded sshd to serve the new key', () => served(s.port) === next, 10_000);
  assert.equal(Number(readFileSync(s.pidFile, 'utf8').trim()), s.pid, 'the same process, not a new one');
});

test('without a listener behind the pid file, sshd is restarted and nothing else is signalled', async () => {
  // No pid file: a clone that booted without host keys.
  for (const clearFailed of [true, false]) {
    const r = runSection(`missing-${clearFailed}`, null, clearFailed);
    assert.equal(r.said, 'restarted');
    assert.match(r.calls, /^systemctl restart ssh$/m);
    assert.equal(/reset-failed/.test(r.calls), clearFailed, 'reset-failed only when asked');
  }
  // A pid file naming some other process (stale, reused pid): it must not get the signal.
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  pids.push(other.pid!);
  let hupped = false;
  other.on('exit', (_c, sig) => (hupped = sig === 'SIGHUP'));
  const stale = join(dir, 'stale.pid');
  writeFileSync(stale, `${other.pid}\n`);
  const r = runSection('stale', stale);
  assert.equal(r.said, 'restarted');
  assert.match(r.calls, /^systemctl restart ssh$/m);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(hupped, false);
  assert.equal(other.exitCode, null, 'the other process still runs');
  // A pid file that is not a number.
  writeFileSync(stale, '1 2\n');
  assert.equal(runSection('garbage', stale).said, 'restarted');
});
