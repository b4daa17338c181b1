/**
 * Generation from a diff (no VM: the diff is a fixture of the diff room's shape, the sandbox a fake
 * that hands out contents by hash): every kind of change becomes the task an Ansible engineer would
 * write, in a sensible order; secrets never appear; excluded items are left out; tasks already
 * written are kept where they cover the same change; nothing the agent put on the disk is ever
 * evaluated as Jinja.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, parseCronLine } from '../../../src/core/playbooks/generate.ts';
import { PlaybookDoc } from '../../../src/core/playbooks/model.ts';
import { diagnose, taskFingerprint } from '../../../src/core/playbooks/revisions.ts';
import { visit } from 'yaml';
import { parseYaml } from '../../../src/core/playbooks/yaml.ts';
import { buildTestDiff, fakeSandbox, fileChange, scenario, sha } from './fixtures.ts';

const SECRETS = [
  'hunter2-secret-xyz',
  '$6$salt$Zk3XaHashOfTheDeployPasswordNotForPlaybooks',
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
];

async function gen(opts: { pythonApt?: boolean; excluded?: string[] } = {}) {
  const s = scenario();
  const diff = opts.excluded
    ? { ...s.diff, excluded: opts.excluded.map((k) => s.diff.items.find((i) => i.key === k)!.id) }
    : s.diff;
  const facts = fakeSandbox(s.disk, { shadow: s.shadow, pythonApt: opts.pythonApt });
  const g = await generate({ diff, sandboxName: 'web-01', facts, previous: null });
  const tasks = PlaybookDoc.parse(g.yaml).list('tasks');
  return { ...g, s, diff, tasks, facts, names: tasks.map((t) => t.name ?? '') };
}

test('the scenario becomes one task per change, in the order packages, users, files, units, services, cron, sysctl', async () => {
  const g = await gen();
  const modules = g.tasks.map((t) => t.module);
  const first = (m: string) => modules.indexOf(m);
  assert.ok(first('ansible.builtin.command') < first('ansible.builtin.group'), modules.join());
  assert.ok(first('ansible.builtin.group') < first('ansible.builtin.user'));
  assert.ok(first('ansible.builtin.user') < first('ansible.builtin.copy'));
  assert.ok(first('ansible.builtin.copy') < first('ansible.builtin.systemd'));
  assert.ok(first('ansible.builtin.systemd') < first('ansible.builtin.cron'));
  assert.ok(first('ansible.builtin.cron') < first('ansible.builtin.lineinfile'));
  // Directories before the files in them; the deletion is a file task with state absent.
  assert.ok(
    g.names.indexOf('Create directory /var/www/app') < g.names.indexOf('Install /var/www/app/index.html'),
  );
  const removal = g.tasks.find((t) => t.name === 'Remove /etc/issue.net')!;
  assert.deepEqual(removal.args, { path: '/etc/issue.net', state: 'absent' });
  // Every item is covered and reported.
  assert.deepEqual(g.report.uncovered, []);
  assert.equal(g.report.covered.length, g.diff.items.length);
});

test('packages are pinned as in the sandbox; without python3-apt, apt-get with changes read from its summary', async () => {
  const without = await gen({ pythonApt: false });
  const install = without.tasks.find((t) => t.name?.startsWith('Install nginx-common'))!;
  assert.equal(install.module, 'ansible.builtin.command');
  assert.deepEqual((install.args as { argv: string[] }).argv.slice(-2), [
    'nginx-common=1.22.1-9+deb12u1',
    'nginx-light=1.22.1-9+deb12u1',
  ]);
  assert.match(String(install.keywords.changed_when), /0 upgraded, 0 newly installed/);
  assert.match(without.yaml, /# noqa: command-instead-of-module/);
  assert.ok(without.report.notes.some((n) => /python3-apt/.test(n)));

  const withApt = await gen({ pythonApt: true });
  const apt = withApt.tasks.find((t) => t.module === 'ansible.builtin.apt')!;
  assert.deepEqual((apt.args as { name: string[] }).name, [
    'nginx-common=1.22.1-9+deb12u1',
    'nginx-light=1.22.1-9+deb12u1',
  ]);
  assert.equal((apt.args as { install_recommends: boolean }).install_recommends, false);
});

test('files keep owner, group and a quoted mode; small text inline, binaries and Jinja-looking text shipped', async () => {
  const g = await gen();
  const ini = g.tasks.find((t) => t.name === 'Install /etc/app/app.ini')!;
  assert.equal((ini.args as { mode: string }).mode, '0640');
  assert.match(g.yaml, /mode: '0640'/);
  assert.ok(!/mode: 0?6[0-9]{2}\b/.test(g.yaml), 'no unquoted mode');
  const tool = g.tasks.find((t) => t.name === 'Install /opt/tool/bin/tool')!;
  assert.equal((tool.args as { src: string }).src, 'files/opt/tool/bin/tool');
  assert.equal(sha(g.files.get('files/opt/tool/bin/tool')!), sha(g.s.disk.get('/opt/tool/bin/tool')!));
  const templated = g.tasks.find((t) => t.name === 'Install /etc/templated.conf')!;
  assert.equal(
    (templated.args as { src: string }).src,
    'files/etc/templated.conf',
    'text with {{ }} is copied, never templated',
  );
  const link = g.tasks.find((t) => t.name?.startsWith('Link /etc/nginx/sites-enabled/app'))!;
  assert.deepEqual(
    [(link.args as { state: string }).state, (link.args as { src: string }).src],
    ['link', '/etc/nginx/sites-available/app'],
  );
  const sudoers = g.tasks.find((t) => t.name === 'Install sudoers rules /etc/sudoers.d/deploy')!;
  assert.equal((sudoers.args as { validate: string }).validate, '/usr/sbin/visudo -cf %s');
  // Every content read from the sandbox was checked against the diff's hash (the fake refuses others).
  assert.ok(g.facts.reads.includes('/etc/app/app.ini'));
});

test('a changed config of a running service notifies its restart; a new unit is enabled and started with daemon_reload', async () => {
  const g = await gen();
  const site = g.tasks.find((t) => t.name === 'Install /etc/nginx/sites-available/app')!;
  assert.deepEqual(site.keywords.notify, ['Restart nginx.service']);
  const handlers = PlaybookDoc.parse(g.yaml).list('handlers');
  const restart = handlers.find((h) => h.name === 'Restart nginx.service')!;
  assert.deepEqual(restart.args, { name: 'nginx.service', state: 'restarted', daemon_reload: true });
  const unit = g.tasks.find((t) => t.name === 'Enable and start pbdemo.service')!;
  assert.deepEqual(unit.args, {
    name: 'pbdemo.service',
    enabled: true,
    state: 'started',
    daemon_reload: true,
  });
  const sysctl = g.tasks.find((t) => t.module === 'ansible.builtin.lineinfile')!;
  assert.deepEqual(sysctl.keywords.notify, ['Apply sysctl settings']);
  const cron = g.tasks.find((t) => t.module === 'ansible.builtin.cron')!;
  assert.equal((cron.args as { cron_file: string }).cron_file, 'pbdemo');
  assert.equal((cron.args as { minute: string }).minute, '*/5');
});

test('no secret from the sandbox appears in the playbook: they become no_log variables the person supplies', async () => {
  const g = await gen();
  for (const s of SECRETS) {
    assert.ok(!g.yaml.includes(s), `the playbook holds ${s}`);
    for (const f of g.files.values())
      assert.ok(!f.toString('latin1').includes(s), `a shipped file holds ${s}`);
  }
  const names = g.secrets.map((s) => s.name).sort();
  assert.deepEqual(names, ['app_ini_password', 'app_key_content', 'deploy_password_hash']);
  assert.equal(g.secrets.find((s) => s.name === 'app_ini_password')!.value, 'hunter2-secret-xyz');
  for (const t of g.tasks.filter((x) => JSON.stringify(x.args).includes('{{ ')))
    assert.equal(t.keywords.no_log, true, `${t.name} uses a secret without no_log`);
  assert.match(g.yaml, /vars_files:\n\s+- vars\/secrets\.yml/);
  assert.match(
    g.secrets.find((s) => s.name === 'app_ini_password')!.description,
    /\/etc\/app\/app\.ini \(line 3\)/,
  );
});

test('items a person excluded are left out (and reported), nothing else changes', async () => {
  const all = await gen();
  const some = await gen({ excluded: ['/etc/issue.net', 'net.ipv4.ip_forward'] });
  assert.ok(!some.names.includes('Remove /etc/issue.net'));
  assert.ok(!some.tasks.some((t) => t.module === 'ansible.builtin.lineinfile'));
  assert.ok(
    !PlaybookDoc.parse(some.yaml)
      .list('handlers')
      .some((h) => h.name === 'Apply sysctl settings'),
  );
  assert.deepEqual(some.report.excluded.map((e) => e.key).sort(), ['/etc/issue.net', 'net.ipv4.ip_forward']);
  assert.equal(some.tasks.length, all.tasks.length - 2);
});

test('the generated playbook passes Fluid’s own checks (structure, safety) and reads back as Ansible reads it', async () => {
  const g = await gen();
  const diags = diagnose(g.yaml, new Map([...g.files.keys()].map((p) => [p, null])));
  assert.deepEqual(
    diags.filter((d) => d.severity === 'error'),
    [],
  );
  assert.deepEqual(
    diags.filter((d) => d.source === 'safety'),
    [],
    'no secret-looking literal left',
  );
  const js = parseYaml(g.yaml).toJS() as Array<{ tasks: Array<Record<string, unknown>> }>;
  const group = js[0]!.tasks.find((t) => t.name === 'Create group deploy')!;
  assert.equal((group['ansible.builtin.group'] as { gid: number }).gid, 1500);
});

test('tasks already written are kept where they cover the same change; Fluid’s own tasks are regenerated', async () => {
  const s = scenario();
  const facts = fakeSandbox(s.disk, { shadow: s.shadow });
  const first = await generate({ diff: s.diff, sandboxName: 'web-01', facts, previous: null });
  // The agent (or a person) replaces the generated copy of the site config by a template, with a comment.
  const doc = PlaybookDoc.parse(first.yaml);
  const at = doc.list('tasks').find((t) => t.name === 'Install /etc/nginx/sites-available/app')!.index;
  doc.remove('tasks', at);
  doc.add('tasks', {
    name: 'Render the app site from its template',
    module: 'ansible.builtin.template',
    args: {
      src: 'templates/app.j2',
      dest: '/etc/nginx/sites-available/app',
      mode: '0644',
      owner: 'root',
      group: 'root',
    },
    notify: 'Restart nginx.service',
  });
  const edited = doc
    .render()
    .replace(
      '    - name: Render the app site',
      '    # the agent wrote this one\n    - name: Render the app site',
    );
  // Fingerprints of Fluid's own tasks, as the revision records them (generatedTasks).
  const prevDoc = PlaybookDoc.parse(first.yaml);
  const fps = new Set<string>();
  for (const section of ['tasks', 'handlers'] as const)
    for (const n of prevDoc.section(section)?.items ?? [])
      fps.add(taskFingerprint((n as { toJSON(): unknown }).toJSON()));
  assert.deepEqual([...fps].sort(), [...first.generatedTasks].sort());
  const again = await generate({
    diff: s.diff,
    sandboxName: 'web-01',
    facts,
    previous: {
      yaml: edited,
      files: new Map([['templates/app.j2', Buffer.from('server { listen 8080; }\n')]]),
      generated: fps,
    },
  });
  const tasks = PlaybookDoc.parse(again.yaml).list('tasks');
  const tpl = tasks.filter((t) => t.module === 'ansible.builtin.template');
  assert.equal(tpl.length, 1, 'the written template task is kept');
  assert.ok(
    !tasks.some((t) => t.name === 'Install /etc/nginx/sites-available/app'),
    'no generated copy beside it',
  );
  assert.ok(again.yaml.includes('# the agent wrote this one'), 'its comment survives');
  assert.ok(again.files.has('templates/app.j2'), 'its template ships along');
  const site = again.report.covered.find((c) => c.key === '/etc/nginx/sites-available/app')!;
  assert.equal(site.by, 'written');
  // Placed where the generated task would have been: after the directories, before the units.
  const names = tasks.map((t) => t.name);
  assert.ok(
    names.indexOf('Render the app site from its template') < names.indexOf('Enable and start pbdemo.service'),
  );
  assert.equal(tasks.length, PlaybookDoc.parse(first.yaml).list('tasks').length);
});

test('names and values from the sandbox that look like Jinja are tagged !unsafe, never evaluated', async () => {
  const disk = new Map<string, string>([['/etc/{{ lookup("pipe", "id") }}', 'x\n']]);
  const diff = buildTestDiff([
    fileChange(disk, 'file', '/etc/{{ lookup("pipe", "id") }}', 'added'),
    {
      kind: 'sysctl',
      key: 'kernel.x',
      name: 'kernel.x',
      before: null,
      after: '{% include "/etc/passwd" %}',
      file: '/etc/sysctl.d/x.conf',
    },
  ]);
  const g = await generate({ diff, sandboxName: 'sbx', facts: fakeSandbox(disk), previous: null });
  const nodes: Array<{ tag?: string; value: unknown }> = [];
  visit(parseYaml(g.yaml), {
    Scalar(_, n) {
      if (typeof n.value === 'string' && /\{\{|\{%/.test(n.value)) nodes.push(n);
    },
  });
  assert.deepEqual(
    nodes.map((n) => [n.tag, n.value]),
    [
      ['!unsafe', '/etc/{{ lookup("pipe", "id") }}'],
      ['!unsafe', 'kernel.x = {% include "/etc/passwd" %}'],
    ],
  );
  const diags = diagnose(g.yaml);
  assert.deepEqual(
    diags.filter((d) => d.source === 'safety' && d.severity === 'error'),
    [],
    'the safety check accepts !unsafe strings',
  );
  // The task names (templated by Ansible) are defused.
  for (const t of PlaybookDoc.parse(g.yaml).list('tasks')) assert.ok(!/\{\{|\{%/.test(t.name ?? ''), t.name!);
});

test('content changed in the sandbox since the diff is refused, not copied', async () => {
  const s = scenario();
  const disk = new Map(s.disk);
  disk.set('/etc/app/app.ini', '[db]\npassword = swapped-after-the-diff\n');
  await assert.rejects(
    generate({
      diff: s.diff,
      sandboxName: 'web-01',
      facts: fakeSandbox(disk, { shadow: s.shadow }),
      previous: null,
    }),
    /changed since the diff/,
  );
});

test('cron lines as ansible.builtin.cron reads them', () => {
  assert.deepEqual(parseCronLine('*/5 * * * * root /usr/bin/true', true), {
    minute: '*/5',
    hour: '*',
    day: '*',
    month: '*',
    weekday: '*',
    user: 'root',
    job: '/usr/bin/true',
  });
  assert.deepEqual(parseCronLine('@daily /usr/local/bin/backup --all', false), {
    special: 'daily',
    user: undefined,
    job: '/usr/local/bin/backup --all',
  });
  assert.deepEqual(parseCronLine('MAILTO=ops@example.com', false), {
    env: { name: 'MAILTO', value: 'ops@example.com' },
  });
  assert.equal(parseCronLine('* * *', false), null);
});

test('without crontab on the target, cron files are copied as they are', async () => {
  const s = scenario();
  const disk = new Map(s.disk);
  disk.set('/etc/cron.d/pbdemo', '*/5 * * * * root /usr/bin/true\n');
  const items = s.diff.items.map((i) =>
    i.key === '/etc/cron.d/pbdemo'
      ? { ...i, after: { ...(i as { after: object }).after, sha256: sha(disk.get('/etc/cron.d/pbdemo')!) } }
      : i,
  );
  const g = await generate({
    diff: { ...s.diff, items: items as typeof s.diff.items },
    sandboxName: 'web-01',
    facts: fakeSandbox(disk, { shadow: s.shadow, missing: ['crontab'] }),
    previous: null,
  });
  const tasks = PlaybookDoc.parse(g.yaml).list('tasks');
  assert.ok(!tasks.some((t) => t.module === 'ansible.builtin.cron'));
  const copy = tasks.find((t) => t.name === 'Install /etc/cron.d/pbdemo')!;
  assert.equal((copy.args as { content: string }).content, '*/5 * * * * root /usr/bin/true\n');
  assert.ok(g.report.notes.some((n) => /crontab/.test(n)));
});

test('what installing a package put on the disk is the package task’s: owned files matching dpkg, rc.d links, state directories', async () => {
  const disk = new Map<string, string>([
    ['/etc/nginx/nginx.conf', 'user www-data;\n'],
    ['/etc/nginx/mine.conf', 'edited by the agent\n'],
  ]);
  const diff = buildTestDiff([
    {
      kind: 'package',
      key: 'dpkg:nginx:amd64',
      manager: 'dpkg',
      name: 'nginx',
      arch: 'amd64',
      change: 'installed',
      before: null,
      after: { version: '1.22.1-9' },
    },
    fileChange(disk, 'file', '/etc/nginx/nginx.conf', 'added'),
    fileChange(disk, 'file', '/etc/nginx/mine.conf', 'added'),
    fileChange(disk, 'file', '/etc/rc2.d/S01nginx', 'added', {
      after: { type: 'symlink', target: '../init.d/nginx' },
    }),
    fileChange(disk, 'file', '/var/lib/nginx/body', 'added', { after: { type: 'dir', mode: '0700' } }),
  ]);
  const facts = fakeSandbox(disk, {
    packaged: {
      '/etc/nginx/nginx.conf': { package: 'nginx', matches: true },
      '/etc/nginx/mine.conf': { package: 'nginx', matches: false },
      '/etc/init.d/nginx': { package: 'nginx', matches: true },
    },
  });
  const g = await generate({ diff, sandboxName: 's', facts, previous: null });
  const names = PlaybookDoc.parse(g.yaml)
    .list('tasks')
    .map((t) => t.name);
  assert.ok(names.includes('Install /etc/nginx/mine.conf'), 'a conffile the agent changed is copied');
  for (const n of names)
    assert.ok(!/nginx\.conf$|S01nginx|\/var\/lib\/nginx/.test(n ?? ''), `${n} is the package's doing`);
  const byPkg = g.report.covered
    .filter((c) => c.task.startsWith('Install nginx'))
    .map((c) => c.key)
    .sort();
  assert.deepEqual(byPkg, [
    '/etc/nginx/nginx.conf',
    '/etc/rc2.d/S01nginx',
    '/var/lib/nginx/body',
    'dpkg:nginx:amd64',
  ]);
});
