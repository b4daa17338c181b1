/**
 * The system diff on the lab: real libvirt, real sandboxes of fluid-lab-web (TCG here), the real CLI.
 * - A new sandbox's diff is empty: Fluid's identity, CA trust and proxy work sit under the baseline.
 * - A scenario (a package from the mirror through the egress proxy, a config edit under /etc, a unit
 *   added and enabled, a user and a group, a cron job, a sysctl, a deleted file, a chmod) shows up as
 *   exactly those items, in JSON and in text, with the noise filtered and no password hash anywhere.
 * - A change hidden from the guest's own tools (replaced ls and find) still shows.
 * - Between two snapshots: only what happened between them; after a restore the baseline still holds.
 * - Stopped: read as it is, same items. Both start paths (cold boot, warm-template restore).
 * Run under the VM lock: flock /tmp/fluid-vm.lock node --test test/integration/diff-lab.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { labHost, requireLab, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { testCore } from '../support/core.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { compareDiffs, type Diff, type DiffItem } from '../../src/shared/contract/diff.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';

let lab: Lab;
const core = testCore({ secrets: undefined }); // file-backed: the CLI subprocesses share the CA
const client = connectInProcess(core, { door: 'test', id: 'diff-lab' });
const cli = (args: string[]) => fluid(args, { dataDir: core.paths.dataDir, timeoutMs: 600_000 });
const made: string[] = [];
let sb: Sandbox;
let scenario: Diff;

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

async function create(input: Parameters<typeof client.call<'sandboxes.create'>>[1]): Promise<Sandbox> {
  const task = await client.call('sandboxes.create', input);
  made.push(task.target!);
  const t = await finish(task);
  assert.equal(t.status, 'succeeded', `create failed: ${JSON.stringify(t.error)}`);
  return t.result as Sandbox;
}

async function diff(sandbox: string, opts: { from?: string; to?: string; method?: 'fast' | 'walk' } = {}) {
  const t = await finish(await client.call('diff.run', { sandbox, ...opts }));
  assert.equal(t.status, 'succeeded', `diff failed: ${JSON.stringify(t.error)}`);
  return client.call('diff.get', { sandbox, diff: (t.result as { id: string }).id, showNoise: true });
}

async function exec(sandbox: string, command: string): Promise<string> {
  const r = await client.call('sandboxes.exec', { sandbox, command, timeoutSeconds: 900 });
  assert.equal(r.exitCode, 0, `${command.slice(0, 200)}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const sh = (cmd: string) => execFileSync('sh', ['-c', cmd]).toString();
const summary = (items: DiffItem[]) =>
  items.map((i) => `${i.kind} ${i.key}${'change' in i ? ` ${i.change}` : ''}`).sort();
const chainOf = (s: Sandbox) =>
  sh(`virsh -c ${lab.libvirtUri} domblklist --details ${s.domainName} | awk '$2=="disk"{print $4}'`).trim();

before(async () => {
  lab = await requireLab();
  await client.call('hosts.add', labHost(lab));
  const check = await finish(await client.call('hosts.check', { host: 'lab' }));
  assert.equal(check.status, 'succeeded');
  const pre = (check.result as { checks: Array<{ id: string; status: string; detail: string }> }).checks.find(
    (c) => c.id === 'diff',
  );
  assert.equal(pre?.status, 'pass', `the lab host can read sandbox disks: ${pre?.detail}`);
});

after(async () => {
  for (const id of made) await client.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
  await core.sandboxes.settleTemplates();
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.dispose();
});

const SCENARIO = `set -e
apt-get update -o Acquire::Languages=none -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tree >/dev/null
sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config
printf 'Authorised use only.\\n' > /etc/motd
cat > /etc/systemd/system/hello-web.service <<'EOF'
[Unit]
Description=Hello web

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable hello-web.service 2>/dev/null
groupadd webops
useradd -m -s /bin/bash -G webops deploy
echo 'deploy:Sup3r-Secret!' | chpasswd
echo '*/5 * * * * root /usr/bin/true # heartbeat' > /etc/cron.d/heartbeat
echo 'vm.swappiness = 10' > /etc/sysctl.d/60-web.conf
rm /etc/issue.net
chmod 0600 /etc/issue`;

const EXPECTED = [
  'package dpkg:tree:amd64 installed',
  'group webops added',
  'group deploy added',
  'user deploy added',
  'file /etc/issue modified',
  'file /etc/issue.net deleted',
  'file /etc/motd modified',
  'file /etc/ssh/sshd_config modified',
  'unit /etc/systemd/system/hello-web.service added',
  'unit-state hello-web.service|/etc/systemd/system/multi-user.target.wants/hello-web.service enabled',
  'cron /etc/cron.d/heartbeat added',
  'sysctl vm.swappiness',
].sort();

describe('a sandbox cold-booted from fluid-lab-web', () => {
  test('its baseline sits under its disk, and its first diff is empty: Fluid’s own work is not a change', async () => {
    sb = await create({
      host: 'lab',
      source: 'fluid-lab-web',
      name: 'diff-cold',
      start: 'cold',
      allow: ['deb.debian.org'],
    });
    assert.ok(
      sb.timings.baseline !== undefined,
      `creation has a baseline phase: ${JSON.stringify(sb.timings)}`,
    );
    const b = await client.call('diff.baseline', { sandbox: sb.id });
    assert.ok(b, 'a baseline was recorded');
    assert.equal(b.mode, 'quiesced');
    assert.equal(b.disks[0]!.target, 'vda');
    assert.equal(chainOf(sb), b.disks[0]!.top, 'the sandbox writes to the layer above its baseline');
    const d = await diff(sb.id);
    assert.deepEqual(summary(d.items), [], `no changes expected, got ${JSON.stringify(summary(d.items))}`);
    assert.equal(d.consistency.mode, 'quiesced-layer');
    assert.equal(d.method, 'fast');
    assert.equal(chainOf(sb), b.disks[0]!.top, 'the short-lived layer was committed back');
  });

  test('the scenario shows up as exactly its changes, noise filtered, no secrets', async () => {
    await exec(sb.id, SCENARIO);
    scenario = await diff(sb.id);
    assert.deepEqual(summary(scenario.items), EXPECTED);
    const get = <K extends DiffItem['kind']>(kind: K, key: string) =>
      scenario.items.find((i) => i.kind === kind && i.key === key) as Extract<DiffItem, { kind: K }>;
    assert.match(get('package', 'dpkg:tree:amd64').after!.version, /^2\./);
    const deploy = get('user', 'deploy');
    assert.deepEqual(deploy.after!.groups, ['webops']);
    assert.equal(deploy.after!.password, 'set');
    assert.equal(deploy.passwordChanged, true);
    const sshd = get('file', '/etc/ssh/sshd_config');
    assert.ok(sshd.content?.kind === 'text' && /\+PermitRootLogin no/.test(sshd.content.diff));
    assert.deepEqual(get('file', '/etc/issue').aspects, ['mode']);
    assert.equal(get('file', '/etc/issue').after!.mode, '0600');
    assert.deepEqual(get('cron', '/etc/cron.d/heartbeat').entries.added, [
      '*/5 * * * * root /usr/bin/true # heartbeat',
    ]);
    assert.equal(get('sysctl', 'vm.swappiness').after, '10');
    // the noise is counted per rule and listed; the package's own files are there, not in the items
    assert.equal(scenario.counts.noise, scenario.noise!.length);
    const noise = new Map(scenario.noise!.map((n) => [n.path, n.rule]));
    assert.equal(noise.get('/usr/bin/tree'), 'package-file');
    assert.equal(noise.get('/var/lib/dpkg/status'), 'package-state');
    assert.equal(noise.get('/home/deploy/.bashrc'), 'skel');
    const text = JSON.stringify(scenario);
    assert.doesNotMatch(text, /\$[0-9a-z]{1,2}\$[^"\s]{8,}/, 'no password hash in the diff');
    assert.doesNotMatch(text, /Sup3r-Secret/);
  });

  test('fluid diff: the same diff as JSON, and as text grouped by kind', async () => {
    const r = await cli(['diff', sb.name, '--json', '--show-noise']);
    assert.equal(r.code, 0, r.stderr);
    const d = r.json<Diff>();
    assert.equal(d.sha256, scenario.sha256, 'the CLI reads the same changes');
    assert.deepEqual(summary(d.items), EXPECTED);
    assert.ok(d.noise && d.noise.length === d.counts.noise);
    const t = await cli(['diff', sb.name, '--last']);
    assert.equal(t.code, 0, t.stderr);
    for (const heading of [
      'Packages (1)',
      'Groups (2)',
      'Users (1)',
      'Files (4)',
      'Systemd units (1)',
      'Cron (1)',
      'Sysctl settings (1)',
    ])
      assert.ok(t.stdout.includes(heading), `${heading} in:\n${t.stdout}`);
    assert.match(t.stdout, /\+ tree:amd64 installed/);
    assert.match(t.stdout, /paths? filtered as noise/);
    const noPerson = await cli(['diff', sb.name, '--exclude', d.items[0]!.id]);
    assert.equal(noPerson.code, 1, 'a CLI without a terminal (a script, an agent’s shell) cannot exclude');
    assert.match(noPerson.stderr, /Only a person decides/);
  });

  test('fast path and full walk agree on the real sandbox', async () => {
    const walk = await diff(sb.id, { method: 'walk' });
    assert.equal(walk.method, 'walk');
    const cmp = compareDiffs(scenario, walk);
    assert.ok(
      cmp.equal,
      JSON.stringify({
        a: summary(cmp.onlyInA),
        b: summary(cmp.onlyInB),
        d: cmp.differing.map((x) => x.key),
      }),
    );
    assert.ok(Number(walk.stats.pathsCompared) > 5 * Number(scenario.stats.pathsCompared));
  });

  test('the agent checks its work with diff_sandbox (read-only) and sees the same changes', async () => {
    const out = await core.tools.invoke(
      'diff_sandbox',
      { sandbox_id: sb.name, include_content: false },
      {
        actor: { door: 'agent', id: 'diff-lab' },
        sessionId: null,
        mode: 'read-only',
        signal: new AbortController().signal,
      },
    );
    assert.equal(out.isError, false, out.content);
    assert.match(out.content, /\+ tree:amd64 installed/);
    assert.match(out.content, /hello-web\.service enabled/);
    assert.match(out.content, /user deploy added/);
  });

  test('a change hidden from the guest’s own ls and find still shows: the diff never asks the guest', async () => {
    await client.call('snapshots.create', { sandbox: sb.id, name: 'before-hide', memory: false });
    await exec(
      sb.id,
      `set -e
for t in ls find; do p=$(command -v $t); mv "$p" "$(dirname "$p")/.$t.real"
printf '#!/bin/sh\\n"%s" "$@" | grep -v payload\\n' "$(dirname "$p")/.$t.real" > "$p"; chmod 755 "$p"; done
echo '* * * * * root /usr/local/sbin/payload' > /etc/cron.d/payload
printf '#!/bin/sh\\nexit 0\\n' > /usr/local/sbin/payload; chmod 755 /usr/local/sbin/payload`,
    );
    const seen = await exec(sb.id, 'ls /etc/cron.d; find /usr/local/sbin');
    assert.doesNotMatch(seen, /payload/, 'inside the guest, the payload is hidden');
    const d = await diff(sb.id, { from: 'before-hide' });
    const keys = summary(d.items);
    assert.ok(keys.includes('cron /etc/cron.d/payload added'), keys.join('\n'));
    assert.ok(keys.includes('file /usr/local/sbin/payload added'), keys.join('\n'));
    assert.ok(
      keys.some((k) => /^file \/usr\/bin\/ls modified$/.test(k)),
      keys.join('\n'),
    );
    assert.ok(!keys.some((k) => /tree|hello-web|deploy/.test(k)), 'only what happened after the snapshot');
    const ls = d.items.find((i) => i.key === '/usr/bin/ls')!;
    assert.ok(ls.kind === 'file' && ls.package === 'coreutils' && ls.aspects.includes('content'));
  });

  test('between two snapshots: only what happened between them; after a restore, the baseline still holds', async () => {
    await client.call('snapshots.create', { sandbox: sb.id, name: 'hidden', memory: false });
    await exec(sb.id, 'echo later > /etc/later.conf');
    const between = await diff(sb.id, { from: 'before-hide', to: 'hidden' });
    assert.equal(between.consistency.mode, 'snapshot');
    const keys = summary(between.items);
    assert.ok(keys.includes('cron /etc/cron.d/payload added'));
    assert.ok(!keys.includes('file /etc/later.conf added'), 'after the second snapshot: not part of it');
    assert.ok(!keys.some((k) => /tree/.test(k)), 'before the first snapshot: not part of it');
    await client.call('snapshots.restore', { sandbox: sb.id, snapshot: 'before-hide' });
    const back = await diff(sb.id);
    const cmp = compareDiffs(scenario, back);
    assert.ok(
      cmp.equal,
      `after restoring before-hide the diff is the scenario again: ${JSON.stringify({ a: summary(cmp.onlyInA), b: summary(cmp.onlyInB), d: cmp.differing.map((x) => [x.key, x.fields]) })}`,
    );
  });

  test('stopped: the disk is read as it is, with the same changes', async () => {
    await client.call('sandboxes.stop', { sandbox: sb.id });
    const d = await diff(sb.id);
    assert.equal(d.consistency.mode, 'stopped');
    const cmp = compareDiffs(scenario, d);
    assert.ok(
      cmp.equal,
      JSON.stringify({
        a: summary(cmp.onlyInA),
        b: summary(cmp.onlyInB),
        d: cmp.differing.map((x) => [x.key, x.fields]),
      }),
    );
    const dir = core.sandboxes.store.row(sb.id).dir;
    assert.doesNotMatch(sh(`ls -R ${dir}`), /fluid-diff-/, 'no short-lived layer is left');
  });
});

describe('a sandbox restored from the warm template', () => {
  test('its baseline is recorded too, and its first diff is empty', async () => {
    const warm = await finish(await client.call('bases.warm', { host: 'lab', source: 'fluid-lab-web' }));
    assert.equal(warm.status, 'succeeded', JSON.stringify(warm.error));
    const r = await create({ host: 'lab', source: 'fluid-lab-web', name: 'diff-warm', start: 'restore' });
    assert.equal(r.startPath, 'restore');
    const b = await client.call('diff.baseline', { sandbox: r.id });
    assert.ok(b && b.disks[0]!.top === chainOf(r));
    const d = await diff(r.id);
    assert.deepEqual(summary(d.items), []);
    await client.call('sandboxes.destroy', { sandbox: r.id });
  });
});
