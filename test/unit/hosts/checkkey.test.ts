/**
 * The key file check that runs before a person is asked to trust a host key: real keys made by
 * ssh-keygen (one with a passphrase), a public key, a file that is no key, a missing file, an
 * unreadable one, and paths that are not absolute.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkKeyFile } from '../../../src/core/hosts/ssh.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const refused = (re: RegExp) => (e: unknown) =>
  e instanceof FluidError && e.code === 'VALIDATION' && re.test(e.message);

test('a usable key gives its type and the fingerprint ssh-keygen shows; anything else says why', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-checkkey-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const expected = execFileSync('ssh-keygen', ['-l', '-f', `${key}.pub`], { encoding: 'utf8' }).split(' ')[1];
  const ok = checkKeyFile(key);
  assert.deepEqual(ok, { keyPath: key, type: 'ssh-ed25519', fingerprint: expected });

  const locked = join(dir, 'locked');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret words', '-f', locked]);
  assert.throws(() => checkKeyFile(locked), refused(/passphrase.*SSH agent/));

  assert.throws(() => checkKeyFile(`${key}.pub`), refused(/not a private key.*id_ed25519\.pub/));
  const junk = join(dir, 'notes.txt');
  writeFileSync(junk, 'just some text\n');
  assert.throws(() => checkKeyFile(junk), refused(/not a private key/));
  assert.throws(
    () => checkKeyFile(join(dir, 'missing')),
    refused(/Cannot read the key file .*missing.*ENOENT/),
  );
  assert.throws(() => checkKeyFile(dir), refused(/Cannot read the key file/));
  if (process.getuid?.() !== 0) {
    const closed = join(dir, 'closed');
    writeFileSync(closed, 'x');
    chmodSync(closed, 0);
    assert.throws(() => checkKeyFile(closed), refused(/EACCES/));
  }
  assert.throws(() => checkKeyFile('~/.ssh/id_ed25519'), refused(/"~" is not expanded/));
  assert.throws(() => checkKeyFile('id_ed25519'), refused(/absolute path/));
});
