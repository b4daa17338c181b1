/**
 * One secret store for every door, on a real Secret Service: a private D-Bus session bus with GNOME
 * Keyring unlocked in it (what a Linux desktop session has), secret-tool as the client. A core built
 * the way the Electron app builds it and the real CLI (`node bin/fluid.js`, a separate process) each
 * read what the other stored, the file holds no secret in the clear, and the shared log file holds no
 * secret value although both processes logged lines containing them.
 *
 * Needs (Debian): dbus-daemon, dbus-bin (dbus-send), gnome-keyring, libsecret-tools. Fails with the apt command
 * when one is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createCore, type Core } from '../../src/core/createCore.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { FileSecretStore } from '../../src/core/platform/secrets.ts';
import { fluid } from '../support/cli.ts';
import { tempDir } from '../support/core.ts';

const NEED = ['dbus-daemon', 'dbus-send', 'gnome-keyring-daemon', 'secret-tool'];
const APT = 'apt-get install -y dbus-daemon dbus-bin gnome-keyring libsecret-tools';

const home = tempDir('fluid-keyring-');
const data = tempDir('fluid-secrets-it-');
const children: ChildProcess[] = [];
let bus = '';
let app: Core;
let server: Server;
let baseUrl = '';
/** Authorization headers the model server saw, in order. */
const seen: string[] = [];

const APP_KEY = 'sk-proj-APPDOORkey-7c1e4b0f9a2d6e3b';
const CLI_KEY = 'sk-proj-CLIDOORkey-5d8a2f7e1c9b4a06';

/** The environment of every process in this test: the private bus, no backend override. */
function env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    DBUS_SESSION_BUS_ADDRESS: bus,
    FLUID_LOG_LEVEL: 'debug',
    ...extra,
  };
  delete e.FLUID_SECRET_BACKEND;
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete e[k];
  return e;
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => resolve(l.trim()));
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready`)));
  });
}

/** Waits (event by event: one bus query at a time) until the keyring owns its bus name. */
async function keyringReady(): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = spawnSync(
      'dbus-send',
      [
        '--session',
        '--print-reply',
        '--dest=org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus.NameHasOwner',
        'string:org.freedesktop.secrets',
      ],
      { env: env(), encoding: 'utf8' },
    );
    if (/boolean true/.test(r.stdout)) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('GNOME Keyring never took the org.freedesktop.secrets name on the test bus');
}

before(async () => {
  const missing = NEED.filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
  if (missing.length)
    throw new Error(
      `This test needs ${missing.join(', ')} (a Secret Service to keep Fluid's key). Install: ${APT}`,
    );

  // A session bus of our own, and GNOME Keyring unlocked on it (a login keyring with a password).
  const dbus = spawn('dbus-daemon', ['--session', '--nofork', '--nosyslog', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(dbus);
  bus = await firstLine(dbus, 'dbus-daemon');
  assert.match(bus, /^unix:/);
  const runtime = join(home.dir, 'run');
  mkdirSync(runtime, { mode: 0o700 });
  const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
    env: env({ HOME: home.dir, XDG_RUNTIME_DIR: runtime }),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(keyring);
  keyring.stdin!.end('keyring-password');
  keyring.stdout!.resume();
  process.env.DBUS_SESSION_BUS_ADDRESS = bus;
  delete process.env.FLUID_SECRET_BACKEND;
  await keyringReady();

  // A model server that records the key each request carries.
  server = createServer((req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ object: 'list', data: [{ id: 'm1', object: 'model', created: 0, owned_by: 't' }] }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;

  // The app's door: the store as src/main/index.ts builds it (with the safeStorage opener for old values).
  const secrets = new FileSecretStore(join(data.dir, 'secrets.json'), {
    legacy: { decrypt: () => assert.fail('nothing here was sealed by safeStorage') },
  });
  app = createCore({ dataDir: data.dir, secrets });
});

after(async () => {
  await app?.close();
  server?.close();
  for (const c of children.reverse()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  home.cleanup();
  data.cleanup();
});

/** A session bus that is not there (as over SSH without a desktop session). */
const NO_BUS = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/fluid-test-bus', DISPLAY: undefined };

const cli = (args: string[], stdin?: string, extra: Record<string, string | undefined> = {}) =>
  fluid(args, { dataDir: data.dir, stdin, env: env(extra) });

describe('the app and the CLI share one store, sealed by the Secret Service', () => {
  let providerId = '';
  let caKey = '';

  test('the app stores a provider key and the CA key: the file holds neither, the keyring holds the store key', async () => {
    const client = connectInProcess(app, { door: 'app', id: 'person' });
    const p = await client.call('providers.save', {
      kind: 'openai',
      label: 'From the app',
      baseUrl,
      model: 'm1',
      apiKey: APP_KEY,
    });
    providerId = p.id;
    caKey = app.ca.publicKey();
    assert.equal(app.secrets.kind, 'secret-service');
    const text = readFileSync(join(data.dir, 'secrets.json'), 'utf8');
    assert.ok(!text.includes(APP_KEY));
    assert.ok(!text.includes('PRIVATE KEY'));
    const doc = JSON.parse(text) as {
      store: string;
      key: { by: string };
      entries: Record<string, { v: number; by: string }>;
    };
    assert.equal(doc.key.by, 'secret-service');
    assert.ok(Object.keys(doc.entries).length >= 2);
    for (const e of Object.values(doc.entries)) assert.deepEqual([e.v, e.by], [1, 'secret-service']);
    const held = execFileSync('secret-tool', ['lookup', 'application', 'fluid', 'fluid-store', doc.store], {
      env: env(),
    }).toString();
    assert.match(held.trim(), /^[0-9a-f]{64}$/, 'the keyring holds the store key');
  });

  test('the CLI, a separate process, uses the key the app stored (the model server sees it)', async () => {
    const r = await cli(['provider', 'test', providerId, '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(r.json<{ ok: boolean }>().ok, true);
    assert.equal(seen.at(-1), `Bearer ${APP_KEY}`);
  });

  test('the app uses a key the CLI stored', async () => {
    const add = await cli(
      [
        'provider',
        'add',
        'from-cli',
        '--kind',
        'openai',
        '--model',
        'm1',
        '--base-url',
        baseUrl,
        '--key-stdin',
      ],
      CLI_KEY,
    );
    assert.equal(add.code, 0, add.stderr + add.stdout);
    assert.ok(!readFileSync(join(data.dir, 'secrets.json'), 'utf8').includes(CLI_KEY));
    const client = connectInProcess(app, { door: 'app', id: 'person' });
    const t = await client.call('providers.test', { id: 'from-cli' });
    assert.equal(t.ok, true, t.message);
    assert.equal(seen.at(-1), `Bearer ${CLI_KEY}`);
  });

  test('a core built as the CLI builds it signs with the same CA key', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createCore } from ${JSON.stringify(new URL('../../src/core/createCore.ts', import.meta.url).href)};
const c = createCore({ dataDir: process.env.FLUID_DATA_DIR });
c.log.warn('provider answered', { body: 'Incorrect API key provided: ' + process.argv[1] });
process.stdout.write(c.ca.publicKey());
await c.close();`,
        APP_KEY,
      ],
      { env: env({ FLUID_DATA_DIR: data.dir }) },
    ).toString();
    assert.equal(out, caKey);
  });

  test('doctor, from the CLI, names the Secret Service', async () => {
    const r = await cli(['doctor', '--json']);
    const check = r
      .json<{ system: { checks: Array<{ id: string; status: string; detail: string }> } }>()
      .system.checks.find((c) => c.id === 'secrets')!;
    assert.equal(check.status, 'pass', check.detail);
    assert.match(check.detail, /Sealed by the Secret Service .*: \d+ secrets in /);
  });

  test('without the session bus the CLI says why and changes nothing', async () => {
    const before = readFileSync(join(data.dir, 'secrets.json'), 'utf8');
    const r = await cli(['provider', 'test', providerId], undefined, NO_BUS);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /Secret Service is not reachable.*DBUS_SESSION_BUS_ADDRESS/s);
    const add = await cli(
      ['provider', 'add', 'nobus', '--kind', 'openai', '--model', 'm1', '--key-stdin'],
      'sk-nobus-12345678',
      NO_BUS,
    );
    assert.notEqual(add.code, 0);
    assert.equal(
      readFileSync(join(data.dir, 'secrets.json'), 'utf8'),
      before,
      'nothing was written in plain text',
    );
  });

  test('the shared log holds no secret value, though both processes logged lines containing them', () => {
    app.log.warn('provider answered', { body: `Incorrect API key provided: ${CLI_KEY}` });
    const log = readFileSync(join(app.paths.logs, 'fluid.log'), 'utf8');
    for (const v of [APP_KEY, CLI_KEY]) assert.ok(!log.includes(v), `${v.slice(0, 16)}… is not in the log`);
    assert.ok(!/PRIVATE KEY|MC4CAQAw/.test(log));
    const redacted = log.split('\n').filter((l) => l.includes('Incorrect API key provided: [redacted]'));
    assert.equal(redacted.length, 2, 'one line from the CLI-built core, one from the app');
  });
});
