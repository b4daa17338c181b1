/**
 * Sandbox speed on the lab, the competing approaches side by side in one run (absolute times on a
 * shared 2-core TCG machine mislead; read the ratios):
 *
 * A. create → first command
 *    pool       Fluid's warm pool: a member made ahead (restored, identity, login, baseline) and paused;
 *               the create resumes it, sets its clock over the connection it kept, and runs
 *    restore    Fluid: overlay on the warm template, memory image restored, identity via the guest agent
 *    cold       Fluid: overlay on the base, cold boot, identity via the guest agent, reserved address
 *    original   the original product's way: cold boot on a NAT network, poll DHCP leases every 2 s
 *               (`virsh domifaddr --source lease`), then a fresh `ssh` login per attempt with backoff
 *
 * B. exec round trip of `true` in a running sandbox
 *    pooled     Fluid's pooled ssh2 connection through the host (TCP_NODELAY), the command on a
 *               runner the connection started ahead (guest.ts, Spare)
 *    channel    the same connection, a new exec channel per command (before spares)
 *    control    an OpenSSH ControlMaster connection through the same jump
 *    fresh      a new `ssh -J` process per command (the original product's way)
 *    All three run the same guest-side command (Fluid's runner: timeout, process group, caps); a
 *    bare `true` over ControlMaster is printed after the table to show the runner's own cost.
 *
 * C. root command round trip (what sandboxes.exec runs), pooled
 *    root login Fluid: root commands on a connection that logged in as root (identity.ts)
 *    sudo        a sudo per command on the login user's connection (before root logins)
 *
 * Usage (root, lab up): node bench/sandbox.ts [--creates N=1] [--execs N=30]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { createCore } from '../src/core/createCore.ts';
import { connectInProcess } from '../src/core/doors/inprocess.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import { deriveDomain } from '../src/core/sandboxes/domain-xml.ts';
import { guestExec } from '../src/core/sandboxes/guest-agent.ts';
import { FLUID_USER, ROOT_USER, sandboxLogin } from '../src/core/sandboxes/identity.ts';
import { GATEWAY } from '../src/core/sandboxes/network.ts';
import { DEFAULT_TIMEOUT_MS, GuestSsh } from '../src/core/ssh/guest.ts';
import { DEFAULT_KILL_GRACE_MS, runnerCommand } from '../src/core/ssh/runner.ts';
import type { Sandbox } from '../src/shared/contract/sandboxes.ts';
import type { Task } from '../src/shared/contract/tasks.ts';
import { labHost, requireLab } from '../test/support/lab.ts';

const { values } = parseArgs({
  options: { creates: { type: 'string', default: '1' }, execs: { type: 'string', default: '30' } },
});
const CREATES = Number(values.creates);
const EXECS = Number(values.execs);

const lab = await requireLab();
const dataDir = mkdtempSync(join(tmpdir(), 'fluid-bench-'));
const core = createCore({
  dataDir,
  secrets: new MemorySecretStore(),
  logger: createLogger({ level: 'error' }),
});
const client = connectInProcess(core, { door: 'test', id: 'bench' });
const SOURCE = 'fluid-lab-web';
const sh = (cmd: string) => execFileSync('sh', ['-c', cmd]).toString();
const made: string[] = [];

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  if (last.status !== 'succeeded') throw new Error(`${last.title}: ${last.error?.message ?? last.status}`);
  return last;
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, p50: q(0.5), p95: q(0.95), min: s[0]! };
}

function table(title: string, rows: Array<[string, number[]]>, unit: 'ms' | 's') {
  const measured = rows.map(([name, xs]) => ({ name, ...stats(xs) }));
  const best = Math.min(...measured.map((r) => r.p50));
  const f = (v: number) => (unit === 's' ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(1)} ms`);
  console.log(`\n${title}`);
  console.log(
    `${'approach'.padEnd(12)} ${'n'.padStart(3)} ${'p50'.padStart(10)} ${'p95'.padStart(10)} ${'vs fastest'.padStart(11)}`,
  );
  for (const r of measured)
    console.log(
      `${r.name.padEnd(12)} ${String(r.n).padStart(3)} ${f(r.p50).padStart(10)} ${f(r.p95).padStart(10)} ${`${(r.p50 / best).toFixed(2)}x`.padStart(11)}`,
    );
}

try {
  await client.call('hosts.add', labHost(lab));
  await finish(await client.call('hosts.check', { host: 'lab' }));
  console.log('Preparing: base copy and warm template of', SOURCE, '(not measured)…');
  await finish(await client.call('bases.warm', { host: 'lab', source: SOURCE }));

  // ---- A. create → first command ------------------------------------------------------------------
  const created: Record<string, number[]> = { pool: [], restore: [], cold: [], original: [] };
  // The pool first: one member, made by this process (which keeps the member's connection), taken
  // by each create once it is ready again.
  await client.call('settings.update', { sandboxes: { warmPool: [`lab:${SOURCE}=1`] } });
  core.sandboxes.startPool();
  for (let i = 0; i < CREATES; i++) {
    while (!core.sandboxes.store.list().some((r) => r.state === 'pooled'))
      await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const task = await client.call('sandboxes.create', { host: 'lab', source: SOURCE });
    made.push(task.target!);
    const s = (await finish(task)).result as Sandbox;
    if (s.startPath !== 'pool') throw new Error(`expected a pool member, got ${s.startPath}`);
    const t1 = Date.now();
    const r = await client.call('sandboxes.exec', { sandbox: s.id, command: 'true' });
    if (r.exitCode !== 0) throw new Error('first command failed');
    created.pool!.push(Date.now() - t0);
    console.log(
      `  pool: ${Date.now() - t0} ms (create ${t1 - t0}: ${Object.entries(s.timings)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; first command ${Date.now() - t1})`,
    );
    await client.call('sandboxes.destroy', { sandbox: s.id });
  }
  await client.call('settings.update', { sandboxes: { warmPool: [] } });
  await core.sandboxes.stopPool();
  for (const r of core.sandboxes.store.list())
    if (r.state === 'pooled') await core.sandboxes.drainMember(r.id, 'the benchmark moves on');
  for (let i = 0; i < CREATES; i++) {
    for (const mode of ['restore', 'cold'] as const) {
      const t0 = Date.now();
      const task = await client.call('sandboxes.create', { host: 'lab', source: SOURCE, start: mode });
      made.push(task.target!);
      const s = (await finish(task)).result as Sandbox;
      const r = await client.call('sandboxes.exec', { sandbox: s.id, command: 'true' });
      if (r.exitCode !== 0) throw new Error('first command failed');
      created[mode]!.push(Date.now() - t0);
      console.log(
        `  ${mode}: ${((Date.now() - t0) / 1000).toFixed(1)} s (${Object.entries(s.timings)
          .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`)
          .join(', ')})`,
      );
      await client.call('sandboxes.destroy', { sandbox: s.id });
    }
    created.original!.push(await originalWay());
  }
  if (CREATES) {
    table('A. create → first command', Object.entries(created), 's');
    // What the targets are stated against: each of Fluid's paths beside the original way, p50 to p50.
    const original = stats(created.original!).p50;
    console.log(
      ['pool', 'restore', 'cold']
        .map((k) => `${k} ${(original / stats(created[k]!).p50).toFixed(1)}x`)
        .join(', ') + ' faster than the original way',
    );
  }

  // ---- B. exec round trip -------------------------------------------------------------------------
  const task = await client.call('sandboxes.create', { host: 'lab', source: SOURCE, start: 'auto' });
  made.push(task.target!);
  const s = (await finish(task)).result as Sandbox;
  const pooled: number[] = [];
  // The sandbox's own principal, valid from the host's side of the sandbox network only.
  const login = sandboxLogin(s.id, GATEWAY);
  const target = {
    key: 'bench',
    host: await core.hosts.connection('lab'),
    address: s.ip!,
    ...login,
    hostKey: { fingerprint: s.hostKeyFingerprint! },
  };
  const g = core.guests.get(target);
  const perChannel = new GuestSsh({ ...target, key: 'bench-channel' }, { ca: core.ca, spare: false });
  const channel: number[] = [];
  await g.exec('true');
  await perChannel.exec('true');
  // Alternating, so that both see the same guest.
  for (let i = 0; i < EXECS; i++)
    for (const [session, times] of [
      [g, pooled],
      [perChannel, channel],
    ] as const) {
      const t = process.hrtime.bigint();
      await session.exec('true');
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  if (g.stats.spareRuns < EXECS) throw new Error(`only ${g.stats.spareRuns} commands ran on a spare`);
  perChannel.close();
  // Root commands (what sandboxes.exec runs): over a root login, as Fluid does, or through a sudo
  // per command on the login user's connection.
  const rootTimes: Record<'root login' | 'sudo', number[]> = { 'root login': [], sudo: [] };
  for (const [name, rootUser] of [
    ['root login', ROOT_USER],
    ['sudo', undefined],
  ] as const) {
    const r = core.guests.get({
      key: `bench-${name}`,
      host: await core.hosts.connection('lab'),
      address: s.ip!,
      ...login,
      rootUser,
      hostKey: { fingerprint: s.hostKeyFingerprint! },
    });
    await r.exec('true', { root: true });
    if (r.stats.rootLogin !== (rootUser ? 'connected' : 'off'))
      throw new Error(`${name}: root login is ${r.stats.rootLogin}`);
    for (let i = 0; i < EXECS; i++) {
      const t = process.hrtime.bigint();
      await r.exec('true', { root: true });
      rootTimes[name].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'fluid-bench-ssh-'));
  const cert = core.ca.issue({
    principals: [login.principal],
    sourceAddress: login.sourceAddress,
    validitySeconds: 600,
    keyId: 'bench',
    purpose: 'bench',
  });
  writeFileSync(join(dir, 'id'), cert.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'id-cert.pub'), cert.certificate);
  const common = [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
  ];
  const jump = [
    '-o',
    `ProxyCommand=ssh ${common.join(' ')} -i ${lab.keyPath} -p ${lab.sshPort} -W %h:%p ${lab.sshUser}@${lab.sshHost}`,
  ];
  const guest = [
    ...common,
    ...jump,
    '-i',
    join(dir, 'id'),
    '-o',
    `CertificateFile=${join(dir, 'id-cert.pub')}`,
    `${FLUID_USER}@${s.ip}`,
  ];
  // The OpenSSH clients run exactly what Fluid's exec runs on the guest (the runner with the same
  // timeout and kill grace, the script on stdin), so the comparison is of transports only; the
  // bare run shows what the runner itself costs on this guest.
  const runner = runnerCommand('true', { timeoutMs: DEFAULT_TIMEOUT_MS, killGraceMs: DEFAULT_KILL_GRACE_MS });
  const timeIt = (args: string[], bare = false) => {
    const t = process.hrtime.bigint();
    const r = bare
      ? spawnSync('ssh', [...args, 'true'], { stdio: 'ignore' })
      : spawnSync('ssh', [...args, runner.command], {
          input: runner.preamble,
          stdio: ['pipe', 'ignore', 'ignore'],
        });
    if (r.status !== 0) throw new Error(`ssh failed (${r.status})`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const fresh = Array.from({ length: Math.min(EXECS, 10) }, () => timeIt(guest));
  const ctl = join(dir, 'ctl');
  spawnSync(
    'ssh',
    ['-o', 'ControlMaster=yes', '-o', `ControlPath=${ctl}`, '-o', 'ControlPersist=60', '-f', '-N', ...guest],
    { stdio: 'ignore' },
  );
  const control = Array.from({ length: EXECS }, () => timeIt(['-o', `ControlPath=${ctl}`, ...guest]));
  const bare = Array.from({ length: EXECS }, () => timeIt(['-o', `ControlPath=${ctl}`, ...guest], true));
  spawnSync('ssh', ['-o', `ControlPath=${ctl}`, '-O', 'exit', ...guest], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
  table(
    'B. exec round trip (`true` in a running sandbox, through the host)',
    [
      ['pooled', pooled],
      ['channel', channel],
      ['control', control],
      ['fresh', fresh],
    ],
    'ms',
  );
  table('C. root command round trip (`true` as root, pooled)', Object.entries(rootTimes), 'ms');
  const runnerCost = stats(control).p50 - stats(bare).p50;
  console.log(
    `(a bare \`true\` over ControlMaster, without the runner: p50 ${stats(bare).p50.toFixed(1)} ms; the runner adds ${runnerCost.toFixed(1)} ms on this guest)`,
  );
} finally {
  for (const id of made) await client.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.close();
  rmSync(dataDir, { recursive: true, force: true });
}

/** The original product's path: cold boot on the NAT network, lease polling, fresh ssh logins with backoff. */
async function originalWay(): Promise<number> {
  const base = core.sandboxes.bases
    .list()
    .find((b) => b.sourceName === SOURCE && b.state === 'ready' && b.template)!;
  const t = base.template!;
  const name = `fluid-bench-orig-${Date.now().toString(36)}`;
  const dir = join('/var/lib/fluid', core.installation, 'sandboxes', randomUUID());
  const mac = `52:54:00:ee:${[0, 0]
    .map(() =>
      Math.floor(Math.random() * 256)
        .toString(16)
        .padStart(2, '0'),
    )
    .join(':')}`;
  // The template's disk layer already trusts Fluid's CA (what the original baked in with cloud-init).
  const disks: Record<string, string> = {};
  for (const d of base.disks) disks[d.target] = join(dir, `${d.target}.qcow2`);
  const xml = deriveDomain(base.sourceXml, {
    name,
    uuid: randomUUID(),
    genid: randomUUID(),
    virtType: lab.virtType,
    disks,
    nic: { network: 'default', mac },
    serialLog: null,
    label: {
      kind: 'sandbox',
      id: randomUUID(),
      installation: core.installation,
      source: SOURCE,
      base: base.id,
    },
  }).xml;
  sh(
    `mkdir -p ${dir} && ${base.disks.map((d) => `qemu-img create -q -f qcow2 -F qcow2 -b ${t.dir}/${d.target}.qcow2 ${disks[d.target]}`).join(' && ')}`,
  );
  writeFileSync(join(dir, 'domain.xml'), xml);
  const keyDir = mkdtempSync(join(tmpdir(), 'fluid-bench-orig-'));
  // The template trusts Fluid's CA but accepts no principal (each clone's identity step names its
  // own); the original baked a login in with cloud-init at boot, which the guest agent stands in for
  // here, once the guest answers (its time counts against the original).
  const principal = 'fluid-bench-original';
  const cert = core.ca.issue({
    principals: [principal],
    validitySeconds: 600,
    keyId: 'bench-original',
    purpose: 'bench',
  });
  writeFileSync(join(keyDir, 'id'), cert.privateKey, { mode: 0o600 });
  writeFileSync(join(keyDir, 'id-cert.pub'), cert.certificate);
  const conn = await core.hosts.connection('lab');
  let trusted = false;
  const t0 = Date.now();
  try {
    sh(`virsh -c ${lab.libvirtUri} create ${join(dir, 'domain.xml')} >/dev/null`);
    let ip = '';
    while (!ip) {
      if (Date.now() - t0 > 600_000) throw new Error('no lease within 10 minutes');
      await new Promise((r) => setTimeout(r, 2000));
      ip =
        /(\d+\.\d+\.\d+\.\d+)\/\d+/.exec(
          sh(`virsh -c ${lab.libvirtUri} domifaddr ${name} --source lease 2>/dev/null || true`),
        )?.[1] ?? '';
    }
    for (let delay = 1000; ; delay = Math.min(delay * 2, 16_000)) {
      trusted ||= await guestExec(
        conn,
        lab.libvirtUri,
        name,
        '/bin/sh',
        ['-c', `echo ${principal} > /etc/ssh/fluid/principals_${FLUID_USER}`],
        { timeoutMs: 10_000 },
      ).then(
        (r) => r.exitCode === 0,
        () => false,
      );
      const r = spawnSync(
        'ssh',
        [
          '-o',
          'BatchMode=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'LogLevel=ERROR',
          '-o',
          'ConnectTimeout=15',
          '-i',
          join(keyDir, 'id'),
          '-o',
          `CertificateFile=${join(keyDir, 'id-cert.pub')}`,
          `${FLUID_USER}@${ip}`,
          'true',
        ],
        { stdio: 'ignore' },
      );
      if (r.status === 0) break;
      if (Date.now() - t0 > 600_000) throw new Error('ssh never came up');
      await new Promise((res) => setTimeout(res, delay));
    }
    const ms = Date.now() - t0;
    console.log(`  original: ${(ms / 1000).toFixed(1)} s (lease + ssh polling)`);
    return ms;
  } finally {
    spawnSync('sh', [
      '-c',
      `virsh -c ${lab.libvirtUri} destroy ${name} >/dev/null 2>&1; rm -rf ${dir} ${keyDir}`,
    ]);
  }
}
