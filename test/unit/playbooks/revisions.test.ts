/**
 * Revisions through the real core (in-process door, in-memory secrets): each save is a new immutable
 * revision whose sha256 covers the YAML and every shipped file; stale edits are refused; history
 * and diffs; the agent's tools edit through the same path and keep comments; names cannot escape a
 * folder; what an agent may not do (export held secrets, run commands in a verification sandbox).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import { writeExport } from '../../../src/cli/playbooks.ts';
import { hashRevision } from '../../../src/core/playbooks/revisions.ts';
import { compareReplay, playGroups } from '../../../src/core/playbooks/verify.ts';
import { BundlePath, revisionManifest, VERIFY_ACTOR } from '../../../src/shared/contract/playbooks.ts';
import { type FluidError } from '../../../src/shared/errors.ts';
import { testCore } from '../../support/core.ts';
import { buildTestDiff, fileChange } from './fixtures.ts';

const core = testCore();
after(() => core.dispose());
const person = connectInProcess(core, { door: 'test', id: 'person' });
const agentCtx = (id = 'session-1') => ({
  actor: { door: 'agent' as const, id },
  sessionId: id,
  mode: 'edit' as const,
  signal: new AbortController().signal,
});
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const tool = async (name: string, input: unknown) => {
  const t = core.tools.get(name)!;
  return t.run(t.input.parse(input), agentCtx());
};

const WITH_COMMENTS = `# Keep this header.
- name: Apply web # the play
  hosts: all
  become: true
  tasks:
    # the motd, as the person wants it
    - name: Write the motd
      ansible.builtin.copy:
        dest: /etc/motd
        content: "hi\\n"
        mode: '0644'
`;

test('every save is a new revision; its sha256 is that of the manifest of the exact bytes', async () => {
  const p = await person.call('playbooks.create', { name: 'rev-a', yaml: WITH_COMMENTS });
  const r1 = p.head!;
  assert.equal(r1.yamlSha256, sha(WITH_COMMENTS));
  assert.equal(r1.sha256, sha(revisionManifest(sha(WITH_COMMENTS), [])));
  const edited = WITH_COMMENTS.replace('"hi\\n"', '"hello\\n"');
  const r2 = await person.call('playbooks.save', { playbook: 'rev-a', yaml: edited, baseRevision: 1 });
  assert.equal(r2.number, 2);
  assert.equal(r2.yaml, edited, 'byte for byte');
  assert.equal(r2.origin, 'edited');
  assert.notEqual(r2.sha256, r1.sha256);
  // The first revision is still there, unchanged.
  const old = await person.call('playbooks.get', { playbook: 'rev-a', revision: 1 });
  assert.equal(old.revision!.yaml, WITH_COMMENTS);
  const d = await person.call('playbooks.revisionDiff', { playbook: 'rev-a', from: 1, to: 2 });
  assert.match(d.diff, /^- {8}content: "hi\\n"$/m);
  assert.match(d.diff, /^\+ {8}content: "hello\\n"$/m);
  const hist = await person.call('playbooks.revisions', { playbook: 'rev-a' });
  assert.deepEqual(
    hist.map((h) => h.number),
    [2, 1],
  );
});

test('a save on a stale head is a CONFLICT; nothing is lost or overwritten', async () => {
  await person.call('playbooks.create', { name: 'rev-b', yaml: WITH_COMMENTS });
  await person.call('playbooks.save', { playbook: 'rev-b', yaml: WITH_COMMENTS + '\n', baseRevision: 1 });
  await assert.rejects(
    person.call('playbooks.save', { playbook: 'rev-b', yaml: WITH_COMMENTS + '# mine\n', baseRevision: 1 }),
    (e: FluidError) => e.code === 'CONFLICT' && /head is revision 2/.test(e.message),
  );
  assert.equal((await person.call('playbooks.revisions', { playbook: 'rev-b' })).length, 2);
  await assert.rejects(
    person.call('playbooks.save', { playbook: 'rev-b', yaml: '- name: [broken\n', baseRevision: 2 }),
    (e: FluidError) => e.code === 'VALIDATION' && /not valid YAML/.test(e.message),
  );
});

test('revisions are immutable in the database itself', () => {
  const p = core.playbooks.store.row('rev-a');
  assert.throws(
    () => core.db.prepare("UPDATE playbook_revisions SET yaml = 'x' WHERE playbook_id = ?").run(p.id),
    /immutable/,
  );
  assert.throws(
    () => core.db.prepare('DELETE FROM playbook_revisions WHERE playbook_id = ?').run(p.id),
    /immutable/,
  );
});

test('the agent’s task tools edit through revisions and keep a person’s comments', async () => {
  await person.call('playbooks.create', { name: 'rev-c', yaml: WITH_COMMENTS });
  await tool('add_playbook_task', {
    playbook: 'rev-c',
    name: 'Install nginx',
    module: 'ansible.builtin.apt',
    args: { name: 'nginx=1.22.1-9', state: 'present' },
    position: 1,
  });
  await tool('add_playbook_task', {
    playbook: 'rev-c',
    section: 'handlers',
    name: 'Restart nginx',
    module: 'ansible.builtin.systemd',
    args: { name: 'nginx', state: 'restarted' },
  });
  await tool('update_playbook_task', { playbook: 'rev-c', task: 'Write the motd', notify: 'Restart nginx' });
  await tool('move_playbook_task', { playbook: 'rev-c', task: 'Write the motd', to: 1 });
  const out = await tool('add_playbook_task', {
    playbook: 'rev-c',
    name: 'Render the site',
    module: 'ansible.builtin.template',
    args: { dest: '/etc/nginx/sites-available/app', mode: '0644' },
    template: { name: 'app.conf.j2', content: 'listen {{ port | default(8080) }};\n' },
  });
  assert.match(out.content, /task 3: Render the site \[ansible\.builtin\.template\]/);
  await tool('remove_playbook_task', { playbook: 'rev-c', task: 2 });
  const g = await person.call('playbooks.get', { playbook: 'rev-c' });
  const yaml = g.revision!.yaml;
  for (const c of ['# Keep this header.', '# the play', '# the motd, as the person wants it'])
    assert.ok(yaml.includes(c), `${c} lost:\n${yaml}`);
  assert.ok(
    yaml.indexOf('# the motd') < yaml.indexOf('Write the motd'),
    'the comment travelled with its task',
  );
  assert.match(yaml, /src: templates\/app\.conf\.j2/);
  assert.deepEqual(
    g.revision!.files.map((f) => f.path),
    ['templates/app.conf.j2'],
  );
  assert.equal(g.revision!.author.door, 'agent');
  assert.equal(g.revision!.origin, 'written');
  const f = await person.call('playbooks.file', {
    playbook: 'rev-c',
    revision: g.revision!.number,
    path: 'templates/app.conf.j2',
  });
  assert.equal(f.content, 'listen {{ port | default(8080) }};\n');
  // The shipped file is part of the revision's hash.
  const h = hashRevision(yaml, new Map([['templates/app.conf.j2', Buffer.from(f.content)]]));
  assert.equal(h.sha256, g.revision!.sha256);
  assert.notEqual(
    h.sha256,
    hashRevision(yaml, new Map([['templates/app.conf.j2', Buffer.from('other')]])).sha256,
  );
  assert.equal((await person.call('playbooks.revisions', { playbook: 'rev-c' })).length, 7);
});

test('names cannot escape the folder a playbook is exported to', async () => {
  for (const bad of [
    '../x',
    'files/../../etc/passwd',
    '/etc/passwd',
    'library/evil.py',
    'filter_plugins/x.py',
    'group_vars/all.yml',
    'files/.ssh/id_rsa',
    'templates/./a',
    'files',
    'files/a\\b',
    'files//a',
  ])
    assert.equal(BundlePath.safeParse(bad).success, false, bad);
  assert.equal(BundlePath.safeParse('files/etc/nginx/sites-available/app').success, true);
  await assert.rejects(
    tool('add_playbook_task', {
      playbook: 'rev-c',
      name: 'x',
      module: 'ansible.builtin.template',
      args: { dest: '/x' },
      template: { name: '../../../../tmp/owned', content: 'x' },
    }),
    (e: FluidError) => e.code === 'VALIDATION',
  );
  const dir = mkdtempSync(join(tmpdir(), 'fluid-export-test-'));
  try {
    for (const path of ['../escape', '/tmp/abs', 'a/../../b'])
      assert.throws(
        () => writeExport(join(dir, 'out'), [{ path, encoding: 'utf8', content: 'x', mode: '0644' }], true),
        (e: FluidError) => e.code === 'VALIDATION',
      );
    assert.deepEqual(
      readdirSync(dir).filter((x) => x !== 'out'),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('export writes the exact bytes, a manifest whose sha256 is the revision’s, vars to fill in (0600)', async () => {
  core.secrets.set('placeholder', 'x');
  const dir = mkdtempSync(join(tmpdir(), 'fluid-export-test-'));
  try {
    const out = await person.call('playbooks.export', { playbook: 'rev-c' });
    writeExport(dir, out.files, false);
    const g = await person.call('playbooks.get', { playbook: 'rev-c' });
    assert.equal(readFileSync(join(dir, 'playbook.yml'), 'utf8'), g.revision!.yaml);
    assert.equal(sha(readFileSync(join(dir, 'MANIFEST.sha256'))), g.revision!.sha256);
    assert.equal(
      readFileSync(join(dir, 'templates/app.conf.j2'), 'utf8'),
      'listen {{ port | default(8080) }};\n',
    );
    assert.match(readFileSync(join(dir, 'VERIFICATION.md'), 'utf8'), /has not been verified/);
    assert.match(readFileSync(join(dir, 'inventory.example.ini'), 'utf8'), /\[production\]/);
    assert.throws(
      () => writeExport(dir, out.files, false),
      (e: FluidError) => e.code === 'CONFLICT',
      'a non-empty folder needs --force',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an agent cannot export the secret values Fluid holds', async () => {
  await person.call('playbooks.create', { name: 'rev-d', yaml: WITH_COMMENTS });
  const agent = connectInProcess(core, { door: 'agent', id: 'session-x' });
  await assert.rejects(
    agent.call('playbooks.export', { playbook: 'rev-d', vaultPassword: 'correct horse battery' }),
    (e: FluidError) => e.code === 'DENIED',
  );
  const mcp = connectInProcess(core, { door: 'mcp', id: 'client' });
  await assert.rejects(
    mcp.call('playbooks.export', { playbook: 'rev-d', vaultPassword: 'correct horse battery' }),
    (e: FluidError) => e.code === 'DENIED',
  );
  const script = connectInProcess(core, { door: 'cli', id: 'no-tty', interactive: false });
  await assert.rejects(
    script.call('playbooks.export', { playbook: 'rev-d', vaultPassword: 'correct horse battery' }),
    (e: FluidError) => e.code === 'DENIED',
  );
});

test('nobody runs commands or touches files in a verification sandbox (it is Fluid’s, not the agent’s)', async () => {
  const host = core.hosts.list()[0]!;
  const id = randomUUID();
  const now = new Date().toISOString();
  core.sandboxes.store.insert({
    id,
    name: 'verify-x',
    host_id: host.id,
    source_name: 'web',
    base_id: null,
    state: 'running',
    domain_name: `fluid-verify-${id}`,
    domain_uuid: randomUUID(),
    dir: `/var/lib/fluid/x/${id}`,
    vcpus: 1,
    memory_mib: 512,
    slot: 7,
    ip: '10.239.0.9',
    mac: '52:54:00:00:00:09',
    ttl_minutes: 60,
    expires_at: now,
    created_at: now,
    updated_at: now,
    created_by_door: VERIFY_ACTOR.door,
    created_by_id: VERIFY_ACTOR.id,
    start_path: 'restore',
    start_path_reason: null,
    timings: '{}',
    host_key_fp: 'SHA256:x',
    egress_allow: '[]',
    error: null,
    task_id: null,
    owner_pid: null,
    owner_instance: null,
  });
  const agent = agentCtx();
  for (const [name, input] of [
    ['run_command', { sandbox_id: id, command: 'echo replaced > /etc/motd' }],
    ['write_file', { sandbox_id: id, path: '/etc/motd', content: 'x' }],
    ['read_file', { sandbox_id: id, path: '/etc/shadow' }],
    ['edit_file', { sandbox_id: id, path: '/etc/motd', old_str: 'a', new_str: 'b' }],
  ] as const) {
    const t = core.tools.get(name)!;
    await assert.rejects(
      t.run(t.input.parse(input), agent),
      (e: FluidError) => e.code === 'DENIED' && /verification/.test(e.message),
      name,
    );
  }
  await assert.rejects(
    person.call('sandboxes.exec', { sandbox: id, command: 'id' }),
    (e: FluidError) => e.code === 'DENIED',
  );
});

test('the replay comparison names each difference item by item, noise and exclusions aside', () => {
  const disk = new Map<string, string>([
    ['/etc/a', 'a\n'],
    ['/etc/b', 'b\n'],
    ['/etc/c', 'c\n'],
  ]);
  const agent = buildTestDiff(
    [
      fileChange(disk, 'file', '/etc/a', 'added'),
      fileChange(disk, 'file', '/etc/b', 'added'),
      fileChange(disk, 'file', '/etc/excluded', 'added', { after: { type: 'dir' } }),
    ],
    ['/etc/excluded'],
  );
  const other = new Map(disk);
  other.set('/etc/b', 'different\n');
  const replay = buildTestDiff([
    fileChange(disk, 'file', '/etc/a', 'added'),
    fileChange(other, 'file', '/etc/b', 'added'),
    fileChange(disk, 'file', '/etc/c', 'added'),
  ]);
  const d = compareReplay(agent, replay);
  assert.deepEqual(d.map((x) => [x.difference, x.key]).sort(), [
    ['different', '/etc/b'],
    ['extra', '/etc/c'],
  ]);
  assert.deepEqual(d.find((x) => x.key === '/etc/b')!.fields, ['after.sha256']);
  // Equal cron entries whose files differ only by the cron module's comments are equivalent.
  const cronA = buildTestDiff([
    {
      ...fileChange(new Map([['/etc/cron.d/x', '* * * * * root true\n']]), 'cron', '/etc/cron.d/x', 'added'),
      user: null,
      entries: { added: ['* * * * * root true'], removed: [] },
    },
  ]);
  const cronB = buildTestDiff([
    {
      ...fileChange(
        new Map([['/etc/cron.d/x', '#Ansible: x\n* * * * * root true\n']]),
        'cron',
        '/etc/cron.d/x',
        'added',
      ),
      user: null,
      entries: { added: ['* * * * *  root true'], removed: [] },
    },
  ]);
  assert.deepEqual(compareReplay(cronA, cronB), []);
  // …but not when an entry differs.
  const cronC = buildTestDiff([
    {
      ...fileChange(new Map([['/etc/cron.d/x', '* * * * * root false\n']]), 'cron', '/etc/cron.d/x', 'added'),
      user: null,
      entries: { added: ['* * * * * root false'], removed: [] },
    },
  ]);
  assert.equal(compareReplay(cronA, cronC).length, 1);
});

test('the replay’s inventory puts the sandbox in every plain group the plays target', () => {
  assert.deepEqual(
    playGroups(
      '- hosts: web:db\n  tasks: []\n- hosts: "all,&prod,!old"\n  tasks: []\n- hosts: "{{ x }}"\n  tasks: []\n',
    ),
    ['web', 'db', 'all', 'prod', 'old'],
  );
  assert.deepEqual(playGroups('hosts: x\n'), []);
});
