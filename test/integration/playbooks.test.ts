/**
 * Playbooks on the lab, end to end through the real CLI: an agent's changes in a sandbox of
 * fluid-lab-web (a package from the mirror through the proxy, a web service with its site config,
 * a systemd unit, a user with a password, cron, sysctl, a secret in a config file, a deleted file)
 * become a playbook (`fluid playbook generate`), which `fluid playbook verify` proves in five steps
 * on a fresh sandbox of the same base — destroyed afterwards. Then a revision with a task that
 * changes something else and a task that changes every run fails, and the report names both. No
 * secret from the sandbox is in any revision, verification log or export. A verification cancelled
 * during its replay leaves no sandbox behind.
 *
 * Needs the lab (npm run lab) and ansible-core + ansible-lint on this machine; fails without them.
 * Takes about 12 minutes under TCG (two replays of ~4-5 minutes each; apt-get update alone is ~50 s a
 * run there). Run it under the VM lock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { GenerationReport, Revision, Verification } from '../../src/shared/contract/playbooks.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';
import { detectAnsible } from '../../src/core/playbooks/ansible.ts';
import { fluid } from '../support/cli.ts';
import { testCore } from '../support/core.ts';
import { labHost, requireLab, type Lab } from '../support/lab.ts';

let lab: Lab;
const core = testCore({ secrets: undefined }); // the file secret store: the CLI below shares the CA
const client = connectInProcess(core, { door: 'test', id: 'playbooks-it' });
const cli = (args: string[], timeoutMs = 1_200_000) =>
  fluid(args, { dataDir: core.paths.dataDir, timeoutMs });
let sb: Sandbox;
const started = Date.now();
const lap = (what: string) => console.log(`# ${what}: ${((Date.now() - started) / 1000).toFixed(0)} s`);

const PASSWORD = 'Pl4ybook-Secret-Pass';
const TOKEN = 'tok-3f9a8b7c6d5e4f3a2b1c0d9e';
let shadowHash = '';

const SCENARIO = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends tree >/dev/null
mkdir -p /etc/hello-web /srv/hello
printf 'port = 8081\\nroot = /srv/hello\\n' > /etc/hello-web/site.conf
printf '<h1>hello</h1>\\n' > /srv/hello/index.html
cat > /etc/systemd/system/hello-web.service <<'UNIT'
[Unit]
Description=A small web site
[Service]
ExecStart=/usr/bin/python3 -m http.server 8081 --directory /srv/hello
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now hello-web.service
printf 'port = 8081\\nroot = /srv/hello\\ngreeting = hello\\n' > /etc/hello-web/site.conf
systemctl restart hello-web.service
printf 'api_token = ${TOKEN}\\n' > /etc/hello-web/secrets.conf
chmod 0640 /etc/hello-web/secrets.conf
useradd -m -s /bin/bash -u 1601 deploy
echo 'deploy:${PASSWORD}' | chpasswd
echo '*/10 * * * * root /usr/bin/true' > /etc/cron.d/hello-web
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-hello.conf
sysctl -q -p /etc/sysctl.d/90-hello.conf
rm -f /etc/issue.net
`;

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

const secretsIn = (text: string) => [PASSWORD, TOKEN, shadowHash].filter((s) => s && text.includes(s));
const domains = () =>
  execFileSync('virsh', ['-q', '-c', lab.libvirtUri, 'list', '--all', '--name']).toString();

before(async () => {
  lab = await requireLab();
  const tools = await detectAnsible(true);
  assert.ok(
    tools.playbook && tools.lint,
    'ansible-core and ansible-lint must be installed: apt-get install -y ansible-core ansible-lint',
  );
  await client.call('hosts.add', labHost(lab));
  assert.equal((await finish(await client.call('hosts.check', { host: 'lab' }))).status, 'succeeded');
  // The warm template: the agent's sandbox and the verification's fresh one restore from it.
  const warm = await finish(await client.call('bases.warm', { host: 'lab', source: 'fluid-lab-web' }));
  assert.equal(warm.status, 'succeeded', JSON.stringify(warm.error));
  lap('warm template');
  const t = await finish(
    await client.call('sandboxes.create', {
      host: 'lab',
      source: 'fluid-lab-web',
      name: 'it-playbook',
      allow: ['deb.debian.org'],
      start: 'auto',
      refreshBase: false,
    }),
  );
  assert.equal(t.status, 'succeeded', JSON.stringify(t.error));
  sb = t.result as Sandbox;
  assert.equal(sb.startPath, 'restore');
  const r = await client.call('sandboxes.exec', { sandbox: sb.id, command: SCENARIO, timeoutSeconds: 900 });
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  shadowHash = (
    await client.call('sandboxes.exec', { sandbox: sb.id, command: 'getent shadow deploy | cut -d: -f2' })
  ).stdout.trim();
  assert.match(shadowHash, /^\$[0-9a-z]+\$/);
  lap('scenario done in the agent’s sandbox');
});

after(async () => {
  if (sb) await client.call('sandboxes.destroy', { sandbox: sb.id }).catch(() => {});
  for (const s of core.sandboxes.list({}))
    if (s.state !== 'destroyed')
      await core.sandboxes.destroy(s.id, { door: 'test', id: 'cleanup' }).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.dispose();
  lap('cleaned up');
});

test('generate, then verify: all five steps pass on a fresh sandbox, destroyed afterwards; no secret anywhere', async () => {
  const gen = await cli(['playbook', 'generate', sb.id, '--json']);
  assert.equal(gen.code, 0, gen.stderr);
  const g = gen.json<{
    playbook: string;
    revision: number;
    sha256: string;
    report: GenerationReport;
    yaml: string;
  }>();
  lap('generated');
  assert.deepEqual(g.report.uncovered, [], JSON.stringify(g.report.uncovered));
  const yaml = g.yaml;
  for (const want of [
    /name: Install tree \(versions pinned as in the sandbox\)/,
    /tree=\S+/,
    /name: Create user deploy/,
    /uid: 1601/,
    /password: '\{\{ deploy_password_hash \}\}'/,
    /name: Install \/etc\/hello-web\/site\.conf[\s\S]*?notify:\n\s+- Restart hello-web\.service/,
    /name: Enable and start hello-web\.service/,
    /name: Remove \/etc\/issue\.net\n\s+ansible\.builtin\.file:\n\s+path: \/etc\/issue\.net\n\s+state: absent/,
    /net\.ipv4\.ip_forward = 1/,
    /\/etc\/cron\.d\/hello-web|cron_file: hello-web/,
    /mode: '0640'/,
  ])
    assert.match(yaml, want);
  assert.deepEqual(secretsIn(yaml), [], 'no secret in the playbook');
  assert.deepEqual(g.report.secrets.map((s) => s.name).sort(), [
    'deploy_password_hash',
    'secrets_conf_token',
  ]);

  const ver = await cli(['playbook', 'verify', g.playbook, '--json']);
  lap('verified');
  const v = ver.json<Verification>();
  assert.deepEqual(
    v.steps.map((s) => [s.id, s.status]),
    [
      ['syntax', 'passed'],
      ['lint', 'passed'],
      ['replay', 'passed'],
      ['rediff', 'passed'],
      ['idempotence', 'passed'],
    ],
    v.steps.map((s) => `${s.id}: ${s.summary}\n${s.log.slice(-3000)}`).join('\n\n'),
  );
  assert.equal(ver.code, 0);
  assert.equal(v.status, 'passed');
  assert.equal(v.sha256, g.sha256, 'about the generated revision');
  assert.equal(v.replay?.startPath, 'restore', 'the warm-template path');
  assert.equal(v.replay?.baseFingerprint, sb.baseFingerprint);
  assert.equal(v.replay?.destroyed, true);
  assert.equal(core.sandboxes.store.row(v.replay!.sandboxId!).state, 'destroyed');
  assert.ok(!domains().includes(v.replay!.sandboxId!.slice(0, 8)), 'its domain is gone from the host');
  for (const s of v.steps) assert.ok(s.durationMs !== null && s.durationMs >= 0, `${s.id} has a duration`);
  const second = v.steps.find((s) => s.id === 'idempotence')!;
  assert.ok(second.tasks!.length > 5);
  assert.equal(second.tasks!.filter((t) => t.changed).length, 0);
  assert.deepEqual(secretsIn(JSON.stringify(v)), [], 'no secret in the verification logs');
  console.log(`# timings: ${JSON.stringify(v.timings)}`);

  // The export: self-contained, the reviewed bytes, vars to fill in — and no secret.
  const dir = mkdtempSync(join(tmpdir(), 'fluid-it-export-'));
  try {
    const ex = await cli(['playbook', 'export', g.playbook, join(dir, 'out'), '--json']);
    assert.equal(ex.code, 0, ex.stderr);
    const out = join(dir, 'out');
    const files = readdirSync(out, { recursive: true }) as string[];
    for (const f of [
      'playbook.yml',
      'vars/secrets.yml',
      'inventory.example.ini',
      'VERIFICATION.md',
      'verification.json',
      'MANIFEST.sha256',
      'README.md',
    ])
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    for (const f of files) {
      const p = join(out, f);
      if (statSync(p).isFile())
        assert.deepEqual(secretsIn(readFileSync(p, 'latin1')), [], `no secret in ${f}`);
    }
    assert.equal((statSync(join(out, 'vars/secrets.yml')).mode & 0o777).toString(8), '600');
    assert.match(readFileSync(join(out, 'vars/secrets.yml'), 'utf8'), /deploy_password_hash: ''/);
    const sums = execFileSync('sha256sum', ['-c', 'MANIFEST.sha256'], { cwd: out }).toString();
    assert.match(sums, /playbook\.yml: OK/);
    assert.equal(
      execFileSync('sha256sum', ['MANIFEST.sha256'], { cwd: out }).toString().split(' ')[0],
      g.sha256,
    );
    assert.match(readFileSync(join(out, 'VERIFICATION.md'), 'utf8'), /\*\*passed\*\*/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a task that changes something else is named by the re-diff, a task that changes every run by the second run', async () => {
  const name = core.playbooks.store.bySandbox(sb.id)!.name;
  const head = (await client.call('playbooks.get', { playbook: name })).revision as Revision;
  const edited = head.yaml.replace(
    /\n {2}handlers:\n/,
    `
    - name: Write a file the agent never wrote
      ansible.builtin.copy:
        dest: /etc/hello-web/extra.conf
        content: |
          not part of the change
        owner: root
        group: root
        mode: '0644'
    - name: Stamp the deploy time (changes on every run)
      ansible.builtin.shell: date +%s%N > /etc/hello-web/stamp
      changed_when: true
  handlers:
`,
  );
  assert.notEqual(edited, head.yaml);
  const file = join(core.paths.dataDir, 'edited.yml');
  writeFileSync(file, edited);
  const saved = await cli(['playbook', 'edit', name, '--file', file, '--message', 'two bad tasks', '--json']);
  assert.equal(saved.code, 0, saved.stderr);
  const before = await client.call('playbooks.verification', { playbook: name });
  assert.equal(before?.stale, true, 'the passing verification is stale now');

  const ver = await cli(['playbook', 'verify', name, '--json']);
  lap('verified the edited revision');
  assert.equal(ver.code, 1);
  const v = ver.json<Verification>();
  assert.equal(v.status, 'failed');
  const step = (id: string) => v.steps.find((s) => s.id === id)!;
  assert.equal(step('replay').status, 'passed', step('replay').log.slice(-3000));
  assert.equal(step('rediff').status, 'failed');
  const extra = step('rediff')
    .differences!.filter((d) => d.difference === 'extra')
    .map((d) => d.key);
  assert.ok(extra.includes('/etc/hello-web/extra.conf'), JSON.stringify(step('rediff').differences));
  assert.ok(extra.includes('/etc/hello-web/stamp'));
  assert.equal(step('idempotence').status, 'failed');
  assert.match(
    step('idempotence').summary,
    /Changed again: "Stamp the deploy time \(changes on every run\)"/,
  );
  assert.deepEqual(
    step('idempotence')
      .tasks!.filter((t) => t.changed)
      .map((t) => t.task),
    ['Stamp the deploy time (changes on every run)'],
  );
  assert.equal(v.replay?.destroyed, true);
});

test('a verification cancelled during its replay stops, says so, and leaves no sandbox behind', async () => {
  const name = core.playbooks.store.bySandbox(sb.id)!.name;
  const task = await client.call('playbooks.verify', { playbook: name });
  let sandboxId: string | null = null;
  for await (const t of client.stream('tasks.watch', { id: task.id })) {
    const v = await client.call('playbooks.verification', { playbook: name });
    sandboxId = v?.replay?.sandboxId ?? sandboxId;
    if (/replay — task/.test(t.message)) {
      await client.call('tasks.cancel', { id: task.id });
      break;
    }
    if (t.status !== 'running') break;
  }
  const done = await finish(task);
  assert.equal(done.status, 'cancelled');
  const v = (await client.call('playbooks.verification', { playbook: name }))!;
  assert.equal(v.status, 'cancelled');
  assert.equal(v.steps.find((s) => s.id === 'replay')!.status, 'cancelled');
  assert.deepEqual(
    v.steps.filter((s) => s.status === 'skipped').map((s) => s.id),
    ['rediff', 'idempotence'],
  );
  assert.ok(sandboxId, 'the replay had a sandbox');
  assert.equal(core.sandboxes.store.row(sandboxId).state, 'destroyed');
  assert.equal(v.replay?.destroyed, true);
  lap('cancelled');
});
