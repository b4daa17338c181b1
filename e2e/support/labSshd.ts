/**
 * The lab host's sshd (scripts/lab/lab.sh: 127.0.0.1:2222, keys under <labDir>/sshd/) with a real
 * host key rotation, for tests of what Fluid does when a host's key changes. The original key is
 * saved beside itself before it is replaced, and put back (sshd re-reads its keys on SIGHUP) by
 * `restore`, which also runs at the next rotation if a test process died before restoring: every
 * other test pins the fingerprint in lab.json.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from './lab.ts';

const keyFiles = (lab: Lab) => {
  const dir = join((lab as Lab & { labDir?: string }).labDir ?? '/var/tmp/fluid-lab', 'sshd');
  const key = join(dir, 'ssh_host_ed25519_key');
  return { dir, key, pub: `${key}.pub`, saved: `${key}.saved-by-rekey-test`, pid: join(dir, 'sshd.pid') };
};

/** The SHA256 fingerprint of the ed25519 host key the lab sshd presents right now. */
export function presentedFingerprint(lab: Lab): string | null {
  try {
    const scan = execFileSync('ssh-keyscan', ['-p', String(lab.sshPort), '-t', 'ed25519', lab.sshHost], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
    const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: scan }).toString();
    return /\b(SHA256:[A-Za-z0-9+/]+)/.exec(out)?.[1] ?? null;
  } catch {
    return null;
  }
}

async function reload(lab: Lab, want: string): Promise<void> {
  const f = keyFiles(lab);
  const pid = Number(readFileSync(f.pid, 'utf8').trim());
  if (!pid) throw new Error(`the lab sshd is not running (${f.pid}): run npm run lab`);
  process.kill(pid, 'SIGHUP'); // sshd re-executes itself and reads its host keys again
  for (let i = 0; i < 100; i++) {
    if (presentedFingerprint(lab) === want) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the lab sshd does not present ${want} after a reload (now: ${presentedFingerprint(lab)})`);
}

/** Put the lab's original host key back (a no-op when it was never replaced). */
export async function restoreLabHostKey(lab: Lab): Promise<void> {
  const f = keyFiles(lab);
  if (existsSync(f.saved)) {
    copyFileSync(f.saved, f.key);
    copyFileSync(`${f.saved}.pub`, f.pub);
    rmSync(f.saved);
    rmSync(`${f.saved}.pub`);
  }
  if (presentedFingerprint(lab) !== lab.hostKeyFingerprint) await reload(lab, lab.hostKeyFingerprint);
}

/** Give the lab sshd a brand-new host key; returns its fingerprint. Restore with restoreLabHostKey. */
export async function rotateLabHostKey(lab: Lab): Promise<string> {
  const f = keyFiles(lab);
  await restoreLabHostKey(lab); // a run that died before restoring
  if (presentedFingerprint(lab) !== lab.hostKeyFingerprint)
    throw new Error(
      `the lab sshd does not present lab.json's key ${lab.hostKeyFingerprint}: run npm run lab`,
    );
  copyFileSync(f.key, f.saved);
  copyFileSync(f.pub, `${f.saved}.pub`);
  const tmp = mkdtempSync(join(tmpdir(), 'fluid-rekey-'));
  try {
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'fluid-lab-host-rotated',
      '-f',
      join(tmp, 'k'),
    ]);
    copyFileSync(join(tmp, 'k'), f.key);
    copyFileSync(join(tmp, 'k.pub'), f.pub);
    const fp = /\b(SHA256:[A-Za-z0-9+/]+)/.exec(
      execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(tmp, 'k.pub')]).toString(),
    )![1]!;
    await reload(lab, fp);
    return fp;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
