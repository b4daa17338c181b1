import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileSecretStore, type MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import {
  dpapiBackend,
  macKeychainBackend,
  secretServiceBackend,
  type KeyBackend,
  type Runner,
  type RunResult,
} from '../../../src/core/platform/keychain.ts';
import { createLogger, redact } from '../../../src/core/platform/logger.ts';
import { defaultDataDir, resolvePaths } from '../../../src/core/platform/paths.ts';
import { runDoctor } from '../../../src/core/doctor.ts';
import { openDatabase } from '../../../src/core/store/db.ts';
import { AuditLog } from '../../../src/core/store/audit.ts';
import { EventBus } from '../../../src/core/events.ts';
import { systemClock } from '../../../src/core/platform/clock.ts';
import { tempDir } from '../../support/core.ts';

/** A keychain in memory that counts how often it is asked (stands in for secret-tool here only). */
function fakeKeychain(by: KeyBackend['by'] = 'secret-service') {
  const items = new Map<string, Buffer>();
  const calls = { probe: 0, save: 0, load: 0 };
  const backend: KeyBackend = {
    by,
    label: `fake ${by}`,
    probe: () => void calls.probe++,
    save: (id, key) => {
      calls.save++;
      items.set(id, Buffer.from(key));
      return '';
    },
    load: (id) => {
      calls.load++;
      return items.get(id) ?? null;
    },
  };
  return { backend, items, calls };
}

const fileOf = (f: string) =>
  JSON.parse(readFileSync(f, 'utf8')) as {
    format: string;
    store: string;
    key: { by: string } | null;
    entries: Record<string, { v: number; by: string; data: string }>;
  };

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

test('without a keychain: a 0600 file whose entries say they are plain; a broken file is a clear error', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'secrets.json');
  const plain = new FileSecretStore(file, { backend: 'file' });
  plain.set('anthropic', 'sk-ant-verysecret');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const doc = fileOf(file);
  assert.equal(doc.format, 'fluid-secrets/1');
  assert.deepEqual(doc.entries.anthropic, { v: 1, by: 'file', data: 'sk-ant-verysecret' });
  assert.equal(plain.get('anthropic'), 'sk-ant-verysecret');
  assert.equal(plain.kind, 'file');
  plain.delete('anthropic');
  assert.equal(plain.get('anthropic'), null);
  writeFileSync(file, '{broken');
  assert.throws(() => new FileSecretStore(file, { backend: 'file' }).get('k'), /unreadable/);
  writeFileSync(file, JSON.stringify({ format: 'fluid-secrets/9', entries: {} }));
  assert.throws(() => new FileSecretStore(file, { backend: 'file' }).get('k'), /newer Fluid/);
  cleanup();
});

test('with a keychain: values are sealed (AES-GCM, key in the keychain) and another door reads them', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'secrets.json');
  const kc = fakeKeychain();
  const app = new FileSecretStore(file, { backend: kc.backend });
  app.set(
    'ssh-ca/ed25519',
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIabc\n-----END PRIVATE KEY-----\n',
  );
  app.set('provider/claude', 'sk-ant-api03-secretsecret');
  const text = readFileSync(file, 'utf8');
  assert.ok(!text.includes('sk-ant-api03'), 'no plain value in the file');
  assert.ok(!text.includes('MC4CAQAw'));
  const doc = fileOf(file);
  assert.equal(doc.key?.by, 'secret-service');
  assert.equal(doc.entries['provider/claude']!.by, 'secret-service');
  assert.equal(kc.items.size, 1, 'one key per store in the keychain');

  const cli = new FileSecretStore(file, { backend: kc.backend });
  assert.equal(cli.get('provider/claude'), 'sk-ant-api03-secretsecret');
  cli.set('provider/openai', 'sk-proj-fromthecli-1234567890');
  assert.equal(app.get('provider/openai'), 'sk-proj-fromthecli-1234567890');

  // A sealed value is bound to its name: moving it under another name does not open.
  const moved = fileOf(file);
  moved.entries['provider/claude']!.data = moved.entries['provider/openai']!.data;
  writeFileSync(file, JSON.stringify(moved), { mode: 0o600 });
  assert.throws(() => cli.get('provider/claude'), /does not open with the store's key/);
  // Another store's keychain (or a missing key) is a clear error, never an empty value.
  const other = new FileSecretStore(file, { backend: fakeKeychain().backend });
  assert.throws(() => other.get('provider/openai'), /holds no key for the secrets/);
  // Told to keep secrets in the plain file, a process says it cannot open the sealed ones.
  assert.throws(
    () => new FileSecretStore(file, { backend: 'file' }).get('provider/openai'),
    /sealed by secret-service, which this process does not use/,
  );
  cleanup();
});

test('old files: plain values are read and sealed once a keychain is there; the app moves its safeStorage values', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'secrets.json');
  // safeStorage output as the old app wrote it: base64 of "v11" + ciphertext.
  const sealedByApp = Buffer.concat([Buffer.from('v11'), Buffer.alloc(32, 7)]).toString('base64');
  writeFileSync(
    file,
    JSON.stringify({ 'ssh-ca/ed25519': 'PLAIN-CA-KEY-PEM-TEXT', 'provider/x': sealedByApp }),
    { mode: 0o600 },
  );
  const kc = fakeKeychain();
  const cli = new FileSecretStore(file, { backend: kc.backend });
  assert.equal(cli.get('ssh-ca/ed25519'), 'PLAIN-CA-KEY-PEM-TEXT');
  assert.throws(() => cli.get('provider/x'), /Start the Fluid app once/);
  assert.deepEqual(cli.describe().counts, { file: 1, 'safe-storage': 1 });

  // Reading for redaction seals the plain value (the CA key no longer sits in plain text).
  assert.deepEqual(cli.values(), ['PLAIN-CA-KEY-PEM-TEXT']);
  assert.ok(!readFileSync(file, 'utf8').includes('PLAIN-CA-KEY'));
  assert.equal(fileOf(file).entries['ssh-ca/ed25519']!.by, 'secret-service');
  assert.equal(fileOf(file).entries['provider/x']!.by, 'safe-storage', 'the CLI cannot open it: left as is');

  // The app opens it with safeStorage and moves it; then the CLI reads it.
  const app = new FileSecretStore(file, {
    backend: kc.backend,
    legacy: { decrypt: (s) => (s === sealedByApp ? 'sk-from-the-old-app-123' : 'wrong') },
  });
  assert.equal(app.migrate(), 1);
  assert.equal(fileOf(file).entries['provider/x']!.by, 'secret-service');
  assert.equal(
    new FileSecretStore(file, { backend: kc.backend }).get('provider/x'),
    'sk-from-the-old-app-123',
  );
  cleanup();
});

test('redaction reads memory: no keychain or file read per log line; kept current on set/delete and on other writers', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'secrets.json');
  const kc = fakeKeychain();
  const store = new FileSecretStore(file, { backend: kc.backend });
  store.set('a', 'first-secret-value');
  const log = createLogger({ dir, secrets: () => store.values() });
  const loadsBefore = kc.calls.load;
  for (let i = 0; i < 500; i++) log.info(`line ${i} with first-secret-value`);
  assert.equal(kc.calls.load, loadsBefore, 'the keychain is not asked per line');
  store.set('b', 'second-secret-value');
  log.info('now second-secret-value');
  store.delete('a');
  assert.deepEqual(store.values(), ['second-secret-value']);
  // Another process (another door) writes: the set follows the file.
  new FileSecretStore(file, { backend: kc.backend }).set('c', 'third-secret-value');
  assert.deepEqual(store.values().sort(), ['second-secret-value', 'third-secret-value']);
  log.error('third-secret-value leaked?', { err: new Error('token third-secret-value') });
  const text = readFileSync(join(dir, 'fluid.log'), 'utf8');
  for (const v of ['first-secret-value', 'second-secret-value', 'third-secret-value'])
    assert.ok(!text.includes(v), `${v} is not in the log`);
  assert.equal(text.split('\n').filter((l) => l.includes('[redacted]')).length, 502);
  cleanup();
});

test('auto: the platform keychain when it answers, the 0600 file (said why) when it does not', () => {
  const { dir, cleanup } = tempDir();
  const none: Runner = () => ({
    status: 1,
    stdout: '',
    stderr: 'secret-tool: Cannot autolaunch D-Bus without X11 $DISPLAY',
  });
  const store = new FileSecretStore(join(dir, 'a.json'), { platform: 'linux', run: none });
  store.set('k', 'value-123456');
  assert.equal(store.kind, 'file');
  const info = store.describe();
  assert.equal(info.backend, 'file');
  assert.match(info.keychainProblem!, /Secret Service is not reachable.*DBUS_SESSION_BUS_ADDRESS/);

  // The service answers lookups but will not keep a key (no login collection): the file, too.
  const noCollection: Runner = (_cmd, args) =>
    args[0] === 'lookup'
      ? { status: 1, stdout: '', stderr: '' }
      : {
          status: 1,
          stdout: '',
          stderr: 'Object does not exist at path /org/freedesktop/secrets/collection/login',
        };
  const s2 = new FileSecretStore(join(dir, 'b.json'), { platform: 'linux', run: noCollection });
  s2.set('k', 'value-123456');
  assert.equal(fileOf(join(dir, 'b.json')).entries.k!.by, 'file');
  assert.match(s2.describe().keychainProblem!, /did not store Fluid's key/);

  // Asked for by name: no silent fallback.
  const named = new FileSecretStore(join(dir, 'c.json'), {
    backend: 'secret-service',
    platform: 'linux',
    run: none,
  });
  assert.throws(() => named.set('k', 'v'), /not reachable/);
  assert.throws(
    () => new FileSecretStore(join(dir, 'd.json'), { backend: 'wallet' as never }).describe(),
    /FLUID_SECRET_BACKEND|backend/,
  );
  cleanup();
});

/** Records every command; answers like the real tool would. */
function recorder(answer: (cmd: string, args: string[], input: string) => RunResult) {
  const seen: Array<{ cmd: string; args: string[]; input: string }> = [];
  const run: Runner = (cmd, args, opts) => {
    seen.push({ cmd, args, input: opts.input ?? '' });
    return answer(cmd, args, opts.input ?? '');
  };
  return { seen, run };
}

const KEY = Buffer.alloc(32, 0xab);
const HEX = KEY.toString('hex');

test('secret-tool: exact commands, the key only on stdin; not-found vs unreachable vs not installed', () => {
  const kept = new Map<string, string>();
  const r = recorder((_c, args, input) => {
    if (args[0] === 'store') {
      kept.set(args.at(-1)!, input);
      return { status: 0, stdout: '', stderr: '' };
    }
    const v = kept.get(args.at(-1)!);
    return v ? { status: 0, stdout: v, stderr: '' } : { status: 1, stdout: '', stderr: '' };
  });
  const b = secretServiceBackend(r.run);
  assert.equal(b.load('store-1', ''), null, 'exit 1 with no stderr is "not found"');
  b.save('store-1', KEY);
  assert.deepEqual(r.seen[1], {
    cmd: 'secret-tool',
    args: [
      'store',
      '--label',
      'Fluid secrets key (store-1)',
      'application',
      'fluid',
      'fluid-store',
      'store-1',
    ],
    input: HEX,
  });
  assert.ok(b.load('store-1', '')!.equals(KEY));
  assert.deepEqual(r.seen[2]!.args, ['lookup', 'application', 'fluid', 'fluid-store', 'store-1']);
  for (const s of r.seen) assert.ok(!s.args.join(' ').includes(HEX), 'the key is never an argument');

  const missing = secretServiceBackend(() => ({
    status: null,
    stdout: '',
    stderr: '',
    error: Object.assign(new Error('spawn secret-tool ENOENT'), { code: 'ENOENT' }),
  }));
  assert.throws(() => missing.probe(), /not installed.*apt install libsecret-tools gnome-keyring/);
  const locked = secretServiceBackend(() => ({
    status: 1,
    stdout: '',
    stderr: 'Cannot create an item in a locked collection',
  }));
  assert.throws(() => locked.load('x', ''), /not reachable.*locked collection/);
  const garbage = secretServiceBackend(() => ({ status: 0, stdout: 'not-hex', stderr: '' }));
  assert.throws(() => garbage.load('x', ''), /malformed/);
});

test('macOS security(1): lookup by account and service; the key goes in through interactive stdin', () => {
  const kept = new Map<string, string>();
  const r = recorder((_c, args, input) => {
    if (args[0] === '-i') {
      const m = /-a (\S+) .* -w ([0-9a-f]+)\n$/.exec(input)!;
      kept.set(m[1]!, m[2]!);
      return { status: 0, stdout: '', stderr: '' };
    }
    const v = kept.get(args[2]!);
    return v
      ? { status: 0, stdout: `${v}\n`, stderr: '' }
      : { status: 44, stdout: '', stderr: 'could not be found' };
  });
  const b = macKeychainBackend(r.run);
  assert.equal(b.load('s-1', ''), null, 'exit 44 is "not found"');
  b.save('s-1', KEY);
  assert.deepEqual(r.seen[1], {
    cmd: '/usr/bin/security',
    args: ['-i'],
    input: `add-generic-password -U -a s-1 -s "Fluid secrets" -l "Fluid secrets key" -w ${HEX}\n`,
  });
  assert.ok(b.load('s-1', '')!.equals(KEY));
  assert.deepEqual(r.seen[2], {
    cmd: '/usr/bin/security',
    args: ['find-generic-password', '-a', 's-1', '-s', 'Fluid secrets', '-w'],
    input: '',
  });
  const denied = macKeychainBackend(() => ({
    status: 51,
    stdout: '',
    stderr: 'User interaction is not allowed.',
  }));
  assert.throws(() => denied.load('s-1', ''), /did not answer.*not allowed/);
});

test('Windows DPAPI: PowerShell ProtectedData for the current user; the sealed key is kept in the file', () => {
  // Stand-in for DPAPI: "protect" prefixes, "unprotect" strips the prefix.
  const r = recorder((_c, args, input) => {
    const script = args.at(-1)!;
    const data = Buffer.from(input.trim(), 'base64');
    const out = script.includes('::Protect(')
      ? Buffer.concat([Buffer.from('DPAPI'), data])
      : data.subarray(5);
    return { status: 0, stdout: out.toString('base64') + '\r\n', stderr: '' };
  });
  const b = dpapiBackend(r.run);
  const recorded = b.save('s', KEY);
  assert.equal(Buffer.from(recorded, 'base64').subarray(0, 5).toString(), 'DPAPI');
  assert.ok(b.load('s', recorded)!.equals(KEY));
  assert.equal(b.load('s', ''), null);
  const [protect, unprotect] = r.seen;
  assert.equal(protect!.cmd, 'powershell.exe');
  assert.deepEqual(protect!.args.slice(0, 3), ['-NoProfile', '-NonInteractive', '-Command']);
  assert.match(
    protect!.args[3]!,
    /ProtectedData\]::Protect\(\$b,\$null,\[Security\.Cryptography\.DataProtectionScope\]::CurrentUser\)/,
  );
  assert.match(unprotect!.args[3]!, /::Unprotect\(/);
  assert.equal(protect!.input, KEY.toString('base64'));
  for (const s of r.seen) assert.ok(!s.args.join(' ').includes(KEY.toString('base64')));
});

test('doctor names the backend; a plain file is a warning with how to get a keychain', () => {
  const { dir, cleanup } = tempDir();
  const paths = resolvePaths(dir);
  const db = openDatabase(paths.db);
  const audit = new AuditLog(db, systemClock, new EventBus(), paths.auditHead);
  try {
    const plain = new FileSecretStore(paths.secrets, { backend: 'file' });
    plain.set('k', 'value-123456');
    const check = (secrets: FileSecretStore | MemorySecretStore) =>
      runDoctor({ paths, db, audit, secrets }).checks.find((c) => c.id === 'secrets')!;
    const p = check(plain);
    assert.equal(p.status, 'warn');
    assert.match(
      p.detail,
      /No keychain is in use: secrets are kept in plain text in .*secrets\.json, readable by your user only \(mode 600\)/,
    );
    if (process.platform === 'linux') assert.match(p.advice!, /apt install libsecret-tools gnome-keyring/);

    const kc = fakeKeychain();
    const { dir: d2, cleanup: c2 } = tempDir();
    const sealed = new FileSecretStore(join(d2, 'secrets.json'), { backend: kc.backend });
    sealed.set('k', 'value-123456');
    const s = runDoctor({
      paths: { ...paths, secrets: join(d2, 'secrets.json') },
      db,
      audit,
      secrets: sealed,
    }).checks.find((c) => c.id === 'secrets')!;
    assert.equal(s.status, 'pass');
    assert.match(s.detail, /Sealed by fake secret-service \(secret-service\): 1 secret in /);
    c2();

    writeFileSync(
      paths.secrets,
      JSON.stringify({ old: Buffer.concat([Buffer.from('v10'), Buffer.alloc(20)]).toString('base64') }),
      {
        mode: 0o600,
      },
    );
    const legacy = check(new FileSecretStore(paths.secrets, { backend: 'file' }));
    assert.equal(legacy.status, 'fail');
    assert.match(legacy.detail, /old .*Start the Fluid app once/);
  } finally {
    db.close();
    cleanup();
  }
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
