/**
 * The warm pool on the lab (real libvirt, TCG guests, real sshd trusting Fluid's CA): `fluid serve`
 * fills it, is killed with SIGKILL mid-fill, and a new process reconciles — the paused members stay,
 * the half-made one goes, nothing is orphaned; two creates at once (two processes) never get the same
 * member; a member made by this process is handed out over the connection it kept.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { labHost, requireLab, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { testCore } from '../support/core.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';
import type { SandboxRow } from '../../src/core/sandboxes/store.ts';

const SOURCE = 'fluid-lab-web';
let lab: Lab;
// A file-backed secret store: `fluid serve` and the CLI below must see the same CA as this core.
const core = testCore({ secrets: undefined });
const client = connectInProcess(core, { door: 'test', id: 'pool-it' });
let server: ChildProcess | null = null;

const sh = (cmd: string) => execFileSync('sh', ['-c', cmd]).toString();
const members = () =>
  core.sandboxes.store
    .list()
    .filter((r) => r.created_by_id === 'warm-pool' && ['pooled', 'creating'].includes(r.state));
const pooled = () => members().filter((r) => r.state === 'pooled');
const domstate = (name: string) =>
  sh(`virsh -c ${lab.libvirtUri} domstate ${name} 2>/dev/null || echo gone`).trim();
/** Every domain of this installation on the lab, by its label. */
const ourDomains = () =>
  sh(`virsh -c ${lab.libvirtUri} list --all --name`)
    .split('\n')
    .filter(Boolean)
    .filter((n) => sh(`virsh -c ${lab.libvirtUri} dumpxml ${n}`).includes(core.installation));

async function until(what: string, ok: () => boolean, ms = 600_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The member's clock waiter (pool.ts) did its work and went: no FIFO, no process. */
async function noClockWaiterLeft(sandbox: string): Promise<void> {
  const r = await client.call('sandboxes.exec', {
    sandbox,
    command: 'ls -d /run/fluid-clock 2>&1; pgrep -af fluid-clock || echo no-waiter',
  });
  assert.match(r.stdout, /No such file or directory/);
  assert.match(r.stdout, /no-waiter/);
}

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

before(async () => {
  lab = await requireLab();
  await client.call('hosts.add', labHost(lab));
  assert.equal((await finish(await client.call('hosts.check', { host: 'lab' }))).status, 'succeeded');
  const warm = await finish(await client.call('bases.warm', { host: 'lab', source: SOURCE }));
  assert.equal(warm.status, 'succeeded', JSON.stringify(warm.error));
});

after(async () => {
  server?.kill('SIGKILL');
  await client.call('settings.update', { sandboxes: { warmPool: [] } }).catch(() => {});
  await core.sandboxes.stopPool();
  for (const r of core.sandboxes.store.list())
    if (r.state === 'pooled') await core.sandboxes.drainMember(r.id, 'test end').catch(() => {});
  for (const s of await client.call('sandboxes.list', {}))
    await client.call('sandboxes.destroy', { sandbox: s.id }).catch(() => {});
  await client.call('sandboxes.reconcile', {}).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  const left = ourDomains();
  await core.dispose();
  assert.deepEqual(left, [], 'no VM of this installation is left on the lab');
});

test('fluid serve fills the pool; SIGKILL mid-fill; reconcile keeps the paused members and removes the rest', async () => {
  await client.call('settings.update', { sandboxes: { warmPool: [`lab:${SOURCE}=3`] } });
  let log = '';
  server = spawn(process.execPath, ['bin/fluid.js', 'serve', '--no-ui', '--port', '0'], {
    env: { ...process.env, FLUID_DATA_DIR: core.paths.dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (d) => (log += d));
  server.stderr!.on('data', (d) => (log += d));
  // Two members ready, the third being made with its VM on the host: kill the server then.
  let filling: SandboxRow | undefined;
  await until(`two members ready and a third being made (server output:\n${log})`, () => {
    filling = members().find((r) => r.state === 'creating');
    return pooled().length === 2 && !!filling && domstate(filling.domain_name) !== 'gone';
  });
  for (const m of pooled()) assert.equal(domstate(m.domain_name), 'paused', `${m.name} waits paused`);
  // Members are not sandboxes: not listed, not reachable by name or id.
  assert.deepEqual(await client.call('sandboxes.list', {}), []);
  for (const ref of [pooled()[0]!.name, pooled()[0]!.id])
    await assert.rejects(client.call('sandboxes.exec', { sandbox: ref, command: 'true' }), /No sandbox/);
  const status = await client.call('sandboxes.pool', {});
  assert.deepEqual(
    status.map((s) => [s.host, s.source, s.size, s.ready, s.filling]),
    [['lab', SOURCE, 3, 2, 1]],
  );

  server.kill('SIGKILL');
  await new Promise((r) => server!.once('exit', r));
  server = null;
  const keep = pooled().map((r) => r.id);
  const r = await client.call('sandboxes.reconcile', { host: 'lab' });
  assert.equal(r.hosts[0]!.error, null);
  assert.ok(
    r.hosts[0]!.cleaned.some((c) => c.includes(filling!.domain_name)),
    `the half-made member's VM is removed: ${JSON.stringify(r.hosts[0])}`,
  );
  assert.deepEqual(
    pooled()
      .map((x) => x.id)
      .sort(),
    [...keep].sort(),
    'the paused members stay in the pool',
  );
  assert.equal(core.sandboxes.store.byId(filling!.id).state, 'failed');
  assert.equal(domstate(filling!.domain_name), 'gone');
  // Nothing orphaned: every VM of this installation is a pooled member.
  assert.deepEqual(
    ourDomains().sort(),
    pooled()
      .map((x) => x.domain_name)
      .sort(),
  );
});

test('two creates at once, from two processes, take two different members', async () => {
  await client.call('settings.update', { sandboxes: { warmPool: [] } });
  assert.equal(pooled().length, 2);
  const [cli, task] = await Promise.all([
    fluid(['sandbox', 'create', '--source', SOURCE, '--host', 'lab', '--json'], {
      dataDir: core.paths.dataDir,
      timeoutMs: 300_000,
    }),
    client.call('sandboxes.create', { host: 'lab', source: SOURCE }),
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  const fromCli = JSON.parse(cli.stdout) as Sandbox;
  const done = await finish(task);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const here = done.result as Sandbox;
  assert.notEqual(fromCli.id, here.id);
  for (const s of [fromCli, here]) {
    assert.equal(s.startPath, 'pool');
    // No process kept these connections: the clock goes through the guest agent, the login is new.
    assert.equal(s.startPathReason, 'taken from the warm pool (a new login)');
    const res = await client.call('sandboxes.exec', { sandbox: s.id, command: 'hostname; date +%s' });
    assert.equal(res.exitCode, 0, res.stderr);
    const guestNow = Number(res.stdout.trim().split('\n')[1]);
    assert.ok(Math.abs(guestNow - Date.now() / 1000) < 30, `the guest clock was set (${guestNow})`);
    await noClockWaiterLeft(s.id);
  }
  assert.equal(pooled().length, 0);
  for (const s of [fromCli, here]) await client.call('sandboxes.destroy', { sandbox: s.id });
});

test('a member this process made is handed out over the connection it kept', async () => {
  await client.call('settings.update', { sandboxes: { warmPool: [`lab:${SOURCE}=1`] } });
  core.sandboxes.startPool();
  await until('one member ready', () => pooled().length === 1);
  const member = pooled()[0]!;
  // Paused for longer than the keepalives would have allowed (3 × 15 s) if the connection had them.
  await new Promise((r) => setTimeout(r, 50_000));
  const t0 = Date.now();
  const done = await finish(await client.call('sandboxes.create', { host: 'lab', source: SOURCE }));
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const s = done.result as Sandbox;
  const res = await client.call('sandboxes.exec', { sandbox: s.id, command: 'date +%s' });
  const firstCommandMs = Date.now() - t0;
  assert.equal(s.id, member.id);
  assert.equal(s.startPathReason, 'taken from the warm pool');
  assert.equal(res.exitCode, 0, res.stderr);
  assert.ok(Math.abs(Number(res.stdout.trim()) - Date.now() / 1000) < 30, 'the guest clock was set');
  await noClockWaiterLeft(s.id);
  console.log(`pool handout → first command: ${firstCommandMs} ms (${JSON.stringify(s.timings)})`);
  // The pool makes a new member for the one taken.
  await until('the pool refilled', () => pooled().length === 1 && pooled()[0]!.id !== member.id);
  await client.call('sandboxes.destroy', { sandbox: s.id });
});
