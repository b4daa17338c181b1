/**
 * Playbook verification on the lab, the two ways to get a fresh machine side by side in one run
 * (absolute times on a shared 2-core TCG machine mislead; read the ratios):
 *
 *   warm   Fluid: the fresh sandbox restores the source's warm template (memory image), the path
 *          every verification takes
 *   cold   the same verification on a cold-booted fresh clone — how a Molecule-style run gets a fresh
 *          machine (create, boot, wait for it), everything else identical
 *
 * The change is realistic: nginx from the Debian mirror (through the egress proxy) with a site of
 * its own, a systemd unit enabled and started, a user with a password, a cron file, a sysctl setting,
 * a config file holding a secret, a deleted file. The playbook is generated from the sandbox's diff,
 * then verified once each way; every phase's time is printed (safety/syntax, lint, fresh sandbox,
 * replay, re-diff, second run) with the ratio cold/warm.
 *
 * Usage (root, lab up, under the VM lock): flock /tmp/fluid-vm.lock node bench/verify.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCore } from '../src/core/createCore.ts';
import { connectInProcess } from '../src/core/doors/inprocess.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import type { Verification } from '../src/shared/contract/playbooks.ts';
import type { Sandbox } from '../src/shared/contract/sandboxes.ts';
import type { Task } from '../src/shared/contract/tasks.ts';
import { labHost, requireLab } from '../test/support/lab.ts';

const CHANGE = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q nginx-light >/dev/null
mkdir -p /var/www/app
printf '<h1>app</h1>\\n' > /var/www/app/index.html
printf 'server {\\n    listen 8080;\\n    root /var/www/app;\\n}\\n' > /etc/nginx/sites-available/app
ln -sf /etc/nginx/sites-available/app /etc/nginx/sites-enabled/app
systemctl reload nginx
printf '[Unit]\\nDescription=worker\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/bench-worker.service
systemctl daemon-reload && systemctl enable --now bench-worker.service
useradd -m -s /bin/bash -u 1700 deploy && echo 'deploy:Bench-Secret-1' | chpasswd
echo '*/15 * * * * root /usr/bin/true' > /etc/cron.d/bench
echo 'vm.swappiness = 10' > /etc/sysctl.d/90-bench.conf && sysctl -q -p /etc/sysctl.d/90-bench.conf
mkdir -p /etc/app && printf 'password = bench-db-secret\\n' > /etc/app/db.ini
rm -f /etc/issue.net
`;

const lab = await requireLab();
const dataDir = mkdtempSync(join(tmpdir(), 'fluid-bench-verify-'));
const core = createCore({
  dataDir,
  secrets: new MemorySecretStore(),
  logger: createLogger({ level: 'error' }),
});
const client = connectInProcess(core, { door: 'test', id: 'bench-verify' });
const actor = { door: 'test' as const, id: 'bench-verify' };

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}
const s = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

let agent: Sandbox | null = null;
try {
  await client.call('hosts.add', labHost(lab));
  await finish(await client.call('hosts.check', { host: 'lab' }));
  const warm = await finish(await client.call('bases.warm', { host: 'lab', source: 'fluid-lab-web' }));
  if (warm.status !== 'succeeded') throw new Error(`warm template: ${warm.error?.message}`);
  const made = await finish(
    await client.call('sandboxes.create', {
      host: 'lab',
      source: 'fluid-lab-web',
      name: 'bench-agent',
      allow: ['deb.debian.org'],
      start: 'auto',
      refreshBase: false,
    }),
  );
  if (made.status !== 'succeeded') throw new Error(`agent sandbox: ${made.error?.message}`);
  agent = made.result as Sandbox;
  const r = await client.call('sandboxes.exec', { sandbox: agent.id, command: CHANGE, timeoutSeconds: 1200 });
  if (r.exitCode !== 0) throw new Error(`the change failed: ${r.stderr}`);
  const gen = await finish(await client.call('playbooks.generate', { sandbox: agent.id }));
  if (gen.status !== 'succeeded') throw new Error(`generate: ${gen.error?.message}`);
  const { playbook, revision } = gen.result as { playbook: string; revision: number };
  const tasks = (await client.call('playbooks.get', { playbook })).playbook.tasks;
  console.log(
    `Change: ${(await client.call('diff.get', { sandbox: agent.id })).counts.items} diff items → ${tasks} tasks (playbook ${playbook} revision ${revision}).\n`,
  );

  const results: Record<'warm' | 'cold', Verification> = {} as never;
  for (const mode of ['warm', 'cold'] as const) {
    const task = core.playbooks.verify(playbook, revision, actor, {
      start: mode === 'warm' ? 'auto' : 'cold',
    });
    await finish(task);
    const v = await client.call('playbooks.verification', { playbook });
    if (!v) throw new Error('no verification');
    results[mode] = v;
    console.log(`${mode}: ${v.status} (${v.replay?.startPath}), ${s(v.timings.total)}`);
    if (v.status !== 'passed')
      for (const st of v.steps) console.log(`  ${st.id} ${st.status}: ${st.summary}`);
  }

  const rows: Array<[string, string]> = [
    ['safety + syntax check', 'syntax'],
    ['ansible-lint', 'lint'],
    ['fresh sandbox', 'sandbox'],
    ['replay (incl. sandbox)', 'replay'],
    ['re-diff', 'rediff'],
    ['second run', 'idempotence'],
    ['total', 'total'],
  ];
  console.log(
    `\n${'phase'.padEnd(24)}${'warm'.padStart(10)}${'cold'.padStart(10)}${'cold/warm'.padStart(11)}`,
  );
  for (const [label, key] of rows) {
    const w = results.warm.timings[key];
    const c = results.cold.timings[key];
    console.log(
      `${label.padEnd(24)}${s(w).padStart(10)}${s(c).padStart(10)}${(w && c ? `${(c / w).toFixed(2)}×` : '-').padStart(11)}`,
    );
  }
  const ws = results.warm.timings.sandbox!;
  const cs = results.cold.timings.sandbox!;
  console.log(
    `\nA fresh machine: warm-template restore ${s(ws)} vs cold boot ${s(cs)} — ${(cs / ws).toFixed(1)}× faster; the whole verification ${(results.cold.timings.total! / results.warm.timings.total!).toFixed(2)}× faster.`,
  );
} finally {
  if (agent) await client.call('sandboxes.destroy', { sandbox: agent.id }).catch(() => {});
  for (const x of core.sandboxes.list({}))
    if (x.state !== 'destroyed') await core.sandboxes.destroy(x.id, actor).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.close();
  rmSync(dataDir, { recursive: true, force: true });
}
