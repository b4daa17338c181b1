/**
 * When a clone's identity step restarts sshd (identity.ts, restartSection), against real OpenSSH:
 * an sshd that re-executes itself per connection serves host keys written after its start, so a
 * restored clone needs no restart; one run with -r keeps its old keys and gets one, as does a cold
 * clone, a changed drop-in, an OpenSSH with sshd-session, or a listener that cannot be found.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { restartSection } from '../../../src/core/sandboxes/identity.ts';
import { tempDir } from '../../support/core.ts';
import { freePort, requireOpenSsh, SSHD, waitFor } from './harness.ts';

let dir: string;
let cleanup: () => void;
const started: string[] = [];

before(() => {
  requireOpenSsh();
  ({ dir, cleanup } = tempDir());
});

after(() => {
  for (const pidFile of started)
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').trim()));
      } catch {
        /* gone */
      }
    }
  cleanup();
});

/** A real sshd on loopback, daemonized with its pid file, started with the given flags. */
async function startSshd(
  name: string,
  flags: string[],
): Promise<{ port: number; key: string; pidFile: string }> {
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
  execFileSync(SSHD, [...flags, '-f', join(d, 'sshd_config')]);
  started.push(pidFile);
  await waitFor(
    'the sshd pid file',
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
  );
  return { port, key, pidFile };
}

/** The ed25519 key sshd serves on port now, as a fingerprint. */
function served(port: number): string {
  const scan = execFileSync('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return execFileSync('ssh-keygen', ['-lf', '-'], { input: scan }).toString().split(' ')[1]!;
}
const fingerprint = (pub: string) => execFileSync('ssh-keygen', ['-lf', pub]).toString().split(' ')[1]!;

/** Run the section with its paths in the scratch dir; systemctl and service only record their call. */
function decide(
  o: { cold?: boolean; conf?: boolean; pidFile?: string; session?: boolean },
  name: string,
): { restarted: string; calls: string } {
  const d = join(dir, `decide-${name}`);
  mkdirSync(join(d, 'bin'), { recursive: true });
  mkdirSync(join(d, 'systemd'));
  const calls = join(d, 'calls');
  writeFileSync(calls, '');
  for (const tool of ['systemctl', 'service', 'journalctl']) {
    writeFileSync(join(d, 'bin', tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\n`);
    chmodSync(join(d, 'bin', tool), 0o755);
  }
  if (o.session) writeFileSync(join(d, 'sshd-session'), '');
  const script = restartSection(!!o.cold)
    .replaceAll('/run/sshd.pid', o.pidFile ?? join(d, 'missing.pid'))
    .replaceAll('/usr/lib/openssh/sshd-session', join(d, 'sshd-session'))
    .replaceAll('/run/systemd/system', join(d, 'systemd'));
  const out = execFileSync('sh', ['-eu'], {
    input: `${o.conf ? 'SSHD_CONF=1\n' : ''}${script}\n`,
    env: { ...process.env, PATH: `${join(d, 'bin')}:${process.env.PATH}` },
  }).toString();
  return { restarted: /sshd-restarted=(\d)/.exec(out)?.[1] ?? '?', calls: readFileSync(calls, 'utf8') };
}

test('an sshd that re-executes per connection serves new host keys at once: a restored clone needs no restart', async () => {
  const s = await startSshd('rexec', []);
  assert.deepEqual(decide({ pidFile: s.pidFile }, 'rexec'), { restarted: '0', calls: '' });
  // What the decision rests on: keys written after the start are the ones the next login sees.
  assert.equal(served(s.port), fingerprint(`${s.key}.pub`));
  rmSync(s.key);
  rmSync(`${s.key}.pub`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', s.key]);
  assert.equal(served(s.port), fingerprint(`${s.key}.pub`));

  // Everything else restarts it.
  for (const [name, o] of [
    ['cold', { cold: true }],
    ['conf', { conf: true }],
    ['session', { session: true }],
    ['nopid', {}],
  ] as const) {
    const r = decide({ pidFile: s.pidFile, ...o, ...(name === 'nopid' ? { pidFile: undefined } : {}) }, name);
    assert.equal(r.restarted, '1', name);
    assert.match(r.calls, /^systemctl restart ssh/m, name);
    assert.equal(/reset-failed/.test(r.calls), name === 'cold', `${name}: reset-failed on cold clones only`);
  }
});

test('an sshd run with -r keeps the keys it started with, and gets a restart', async () => {
  const s = await startSshd('norexec', ['-r']);
  const before = served(s.port);
  rmSync(s.key);
  rmSync(`${s.key}.pub`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', s.key]);
  assert.equal(served(s.port), before, 'the old key, until a restart');
  assert.notEqual(before, fingerprint(`${s.key}.pub`));
  const r = decide({ pidFile: s.pidFile }, 'norexec');
  assert.equal(r.restarted, '1');
  assert.match(r.calls, /^systemctl restart ssh/m);
});
