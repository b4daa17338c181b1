import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileSecretStore } from '../../../src/core/platform/secrets.ts';
import { createLogger, redact } from '../../../src/core/platform/logger.ts';
import { defaultDataDir } from '../../../src/core/platform/paths.ts';
import { tempDir } from '../../support/core.ts';

test('data dir follows platform conventions and FLUID_DATA_DIR overrides it', () => {
  assert.equal(defaultDataDir({}, 'linux', '/home/a'), '/home/a/.local/share/fluid');
  assert.equal(defaultDataDir({ XDG_DATA_HOME: '/x' }, 'linux', '/home/a'), '/x/fluid');
  assert.equal(defaultDataDir({}, 'darwin', '/Users/a'), '/Users/a/Library/Application Support/Fluid');
  assert.match(
    defaultDataDir({ APPDATA: 'C:\\Users\\a\\AppData\\Roaming' }, 'win32', 'C:\\Users\\a'),
    /Roaming.Fluid$/,
  );
  assert.equal(defaultDataDir({ FLUID_DATA_DIR: '/srv/fluid' }, 'linux', '/home/a'), '/srv/fluid');
});

test('the secret file is owner-only, atomic, and a cipher seals values', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'secrets.json');
  const plain = new FileSecretStore(file);
  plain.set('anthropic', 'sk-ant-verysecret');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(plain.get('anthropic'), 'sk-ant-verysecret');
  plain.delete('anthropic');
  assert.equal(plain.get('anthropic'), null);
  const rot13 = {
    kind: 'test',
    encrypt: (s: string) => Buffer.from(s).toString('base64'),
    decrypt: (s: string) => Buffer.from(s, 'base64').toString(),
  };
  const sealed = new FileSecretStore(file, rot13);
  sealed.set('k', 'hunter2-hunter2');
  assert.ok(!readFileSync(file, 'utf8').includes('hunter2'));
  assert.equal(sealed.get('k'), 'hunter2-hunter2');
  writeFileSync(file, '{broken');
  assert.throws(() => sealed.get('k'), /unreadable/);
  cleanup();
});

test('logs never contain secrets: by key name or by known value', () => {
  const { dir, cleanup } = tempDir();
  const log = createLogger({ dir, secrets: () => ['sk-live-1234567890'] });
  log.info('calling provider with sk-live-1234567890', {
    apiKey: 'abc',
    nested: { password: 'p', ok: 'visible' },
    err: new Error('token sk-live-1234567890 rejected'),
  });
  const text = readFileSync(join(dir, 'fluid.log'), 'utf8');
  assert.ok(!text.includes('sk-live-1234567890'));
  assert.ok(!text.includes('"abc"'));
  assert.ok(text.includes('visible'));
  assert.equal(statSync(join(dir, 'fluid.log')).mode & 0o777, 0o600);
  assert.deepEqual(redact({ token: 'x', list: ['a'] }), { token: '[redacted]', list: ['a'] });
  cleanup();
});
