/**
 * Sandbox expiry on the lab, with real VMs, through the three places it happens (expiry.ts):
 *  - the host's own watchdog destroys an expired sandbox while no Fluid process runs at all;
 *  - with only the CLI ever used (no `fluid serve`), a plain command leaves a sweep behind that
 *    destroys an expired sandbox;
 *  - the janitor of a running `fluid serve` destroys one when it expires, and the audit log says so.
 * Everything goes through the real `fluid` command; the test process opens the data dir only to set
 * the host-side grace (a setting) while no sandbox is waiting to expire.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { requireLab, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { tempDir } from '../support/core.ts';
import { FLUID_BIN } from '../support/cli.ts';
import { createCore } from '../../src/core/createCore.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { AuditEntry } from '../../src/shared/contract/audit.ts';

let lab: Lab;
const { dir: dataDir, cleanup } = tempDir('fluid-expiry-it-');
const cli = (args: string[]) => fluid(args, { dataDir, timeoutMs: 600_000 });
let installation = '';
const made: Sandbox[] = [];
let serve: ChildProcess | null = null;

const virsh = (args: string) =>
  execFileSync('sh', ['-c', `virsh -q -c ${lab.libvirtUri} ${args} 2>/dev/null || echo gone`])
    .toString()
    .trim();
const expiryDir = () => `/var/lib/fluid/${installation}/expiry`;

/** Fluid processes using this data dir (by environment or command line): the CLI, serve, a sweep. */
function fluidProcesses(): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    if (Number(p) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'utf8');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (env.includes(`FLUID_DATA_DIR=${dataDir}\0`) || cmd.includes(dataDir))
        out.push(`${p}: ${cmd.split('\0').join(' ').trim()}`);
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

/** What the host's watchdog holds and says, for a failure message. */
function hostExpiryState(): string {
  const d = expiryDir();
  if (!existsSync(d)) return `${d} does not exist`;
  const files = readdirSync(d).map((f) => {
    const text = f.endsWith('.json') || f.endsWith('.expired') ? readFileSync(`${d}/${f}`, 'utf8') : '';
    return `  ${f} ${text}`.trimEnd();
  });
  const log = existsSync(`${d}/watch.log`) ? readFileSync(`${d}/watch.log`, 'utf8').slice(-2000) : '(no log)';
  return `now ${Math.floor(Date.now() / 1000)}; ${d}:\n${files.join('\n')}\nlog:\n${log}`;
}

async function setGrace(minutes: number): Promise<void> {
  const core = createCore({ dataDir });
  try {
    core.settings.update(
      { sandboxes: { hostExpiryGraceMinutes: minutes } },
      { door: 'test', id: 'expiry-it' },
    );
  } finally {
    await core.close();
  }
}

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 300_000,
  state: () => string = () => '',
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.fail(`timed out after ${ms / 1000} s waiting for: ${what}\n${state()}`);
}

async function create(name: string): Promise<Sandbox> {
  const r = await cli([
    'sandbox',
    'create',
    '--source',
    'fluid-lab-web',
    '--host',
    'lab',
    '--name',
    name,
    '--ttl',
    '30',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const s = r.json<Sandbox>();
  made.push(s);
  assert.equal(s.state, 'running');
  return s;
}

async function expireIn(s: Sandbox, minutes: number): Promise<Sandbox> {
  const r = await cli(['sandbox', 'extend', s.id, '--ttl', String(minutes), '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json<Sandbox>();
}

async function audit(action: string): Promise<AuditEntry[]> {
  const r = await cli(['audit', 'list', '--action', action, '--limit', '50', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json<{ entries: AuditEntry[] }>().entries;
}

before(async () => {
  lab = await requireLab();
  const add = await cli([
    'host',
    'add',
    `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`,
    '--name',
    'lab',
    '--key',
    lab.keyPath,
    '--accept-fingerprint',
    lab.hostKeyFingerprint,
    '--libvirt-uri',
    lab.libvirtUri,
    '--json',
  ]);
  assert.equal(add.code, 0, add.stdout + add.stderr);
  const core = createCore({ dataDir });
  installation = core.installation;
  await core.close();
  // One boot for the template; the three sandboxes restore it.
  const warm = await cli(['base', 'warm', 'fluid-lab-web', '--host', 'lab', '--json']);
  assert.equal(warm.code, 0, warm.stdout + warm.stderr);
});

after(async () => {
  serve?.kill('SIGKILL');
  for (const s of made) await cli(['sandbox', 'destroy', s.id, '--json']).catch(() => {});
  await cli(['base', 'prune', '--host', 'lab', '--json']).catch(() => {});
  cleanup();
});

let onlyCli: Sandbox;

test('the host destroys an expired sandbox by itself while no Fluid process runs', async () => {
  onlyCli = await create('exp-cli'); // for the next test
  const hostOnly = await create('exp-host');
  assert.ok(existsSync(`${expiryDir()}/${hostOnly.id}.json`), 'the host holds its expiry');
  // The host's watchdog acts at expiry + grace, with the grace set when the expiry is (re)armed.
  await setGrace(60);
  onlyCli = await expireIn(onlyCli, 1);
  await setGrace(0);
  const soon = await expireIn(hostOnly, 1);

  // From here until the domain is gone, nothing of Fluid may run: only the host's watchdog acts.
  await until(
    'every fluid process to exit',
    () => fluidProcesses().length === 0,
    120_000,
    () => fluidProcesses().join('\n'),
  );
  const seen = new Set<string>();
  await until(
    `the host to destroy ${hostOnly.domainName}`,
    () => {
      for (const p of fluidProcesses()) seen.add(p);
      return virsh(`domstate ${hostOnly.domainName}`) === 'gone';
    },
    300_000,
    hostExpiryState,
  );
  assert.deepEqual([...seen], [], 'no Fluid process ran while the host expired the sandbox');
  assert.ok(Date.now() >= Date.parse(soon.expiresAt!), 'not before its expiry');
  assert.ok(!existsSync(`/var/lib/fluid/${installation}/sandboxes/${hostOnly.id}`), 'its files are gone');
  const tomb = JSON.parse(readFileSync(`${expiryDir()}/${hostOnly.id}.expired`, 'utf8')) as {
    destroyed: boolean;
  };
  assert.equal(tomb.destroyed, true);
  assert.notEqual(
    virsh(`domstate ${onlyCli.domainName}`),
    'gone',
    'the one with a grace period is still there',
  );
});

test('with only the CLI used, an expired sandbox disappears after any command', async () => {
  const expiresAt = Date.parse(onlyCli.expiresAt!);
  await until('the sandbox to pass its expiry', () => Date.now() > expiresAt + 1000);
  // A plain command: it answers with its own output; the sweep it leaves behind does the rest.
  const r = await cli(['host', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r
      .json<Array<{ name: string }>>()
      .map((h) => h.name)
      .sort(),
    ['lab', 'local'],
  );
  await until(
    `the sweep to destroy ${onlyCli.domainName}`,
    () => virsh(`domstate ${onlyCli.domainName}`) === 'gone',
    300_000,
    () => `${fluidProcesses().join('\n')}\n${hostExpiryState()}`,
  );
  await until(
    'the sweep to finish',
    () => fluidProcesses().length === 0,
    120_000,
    () => fluidProcesses().join('\n'),
  );

  const rows = (await cli(['sandbox', 'list', '--all', '--json'])).json<Sandbox[]>();
  const state = (id: string) => rows.find((s) => s.id === id)?.state;
  assert.equal(state(onlyCli.id), 'destroyed');
  const destroyed = (await audit('sandbox.destroy')).find((e) => e.target === onlyCli.id);
  assert.ok(
    destroyed,
    `the sweep audited the destroy; expiries audited: ${JSON.stringify(await audit('sandbox.expire'))}`,
  );
  assert.deepEqual(destroyed.actor, { door: 'system', id: 'expiry' });
  assert.match((destroyed.data as { reason: string }).reason, /^expired at /);
  // The sweep also closed the row of the sandbox the host had destroyed, from its tombstone.
  const host = made.find((s) => s.name === 'exp-host')!;
  assert.equal(state(host.id), 'destroyed');
  const expired = (await audit('sandbox.expire')).find((e) => e.target === host.id);
  assert.ok(expired, `the host's expiry was audited; state: ${state(host.id)}`);
  assert.deepEqual(expired.actor, { door: 'system', id: 'host-expiry' });
  assert.ok(!existsSync(`${expiryDir()}/${host.id}.expired`), 'the tombstone was read and removed');
});

test('the janitor of a running `fluid serve` destroys a sandbox when it expires, and audits it', async () => {
  await setGrace(60);
  const s = await create('exp-janitor');
  serve = spawn(process.execPath, [FLUID_BIN, 'serve', '--no-ui', '--json'], {
    env: { ...process.env, FLUID_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  serve.stdout!.on('data', (d) => (out += d));
  await until('fluid serve to start', () => out.includes('"url"'), 120_000);
  const soon = await expireIn(s, 1);
  // No other command from here: the janitor alone acts on the expiry.
  await until(`the janitor to destroy ${s.domainName}`, () => virsh(`domstate ${s.domainName}`) === 'gone');
  assert.ok(Date.now() >= Date.parse(soon.expiresAt!));
  const core = createCore({ dataDir });
  try {
    await until(
      'the row to be closed',
      () => core.sandboxes.store.maybe(s.id)?.state === 'destroyed',
      60_000,
    );
    const e = core.audit.list({ limit: 20, target: s.id, action: 'sandbox.destroy' }).entries;
    assert.equal(e.length, 1);
    assert.deepEqual(e[0]!.actor, { door: 'system', id: 'janitor' });
    assert.match((e[0]!.data as { reason: string }).reason, /^expired at /);
    assert.deepEqual((e[0]!.data as { cleaned: string[] }).cleaned.slice(0, 2), ['domain', 'files']);
  } finally {
    await core.close();
  }
  serve.kill('SIGTERM');
  await new Promise((r) => serve!.once('exit', r));
  serve = null;
});
