/**
 * What a change touches (the baseline's scope) and the rule that keeps the production preview
 * read-only, on playbooks written the way Fluid generates them and the way people write them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertCheckModeSafe,
  mergeScopes,
  playsOf,
  scopeOfDiff,
  scopeOfPlaybook,
} from '../../../src/core/changes/scope.ts';
import { playMatches } from '../../../src/core/targets/ansible.ts';
import { previewYaml, stablePaths } from '../../../src/core/changes/run.ts';
import type { DiffItem } from '../../../src/shared/contract/diff.ts';

const PLAYBOOK = `
- name: Apply web
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Install nginx and tree
      ansible.builtin.apt:
        name: ['nginx=1.22.1-9', tree]
        state: present
    - name: Site config
      ansible.builtin.copy:
        src: files/etc/nginx/sites-available/app
        dest: /etc/nginx/sites-available/app
        mode: '0644'
    - name: Users
      ansible.builtin.user:
        name: '{{ item }}'
        shell: /bin/bash
      loop: [webops, deploy]
    - name: A group
      group: name=webops state=present
    - name: Heartbeat
      ansible.builtin.cron:
        name: heartbeat
        minute: '*/5'
        job: /usr/bin/true
        cron_file: fluid-heartbeat
        user: root
    - name: Crontab of webops
      ansible.builtin.cron:
        name: tick
        job: /usr/bin/true
        user: webops
    - name: Enable hello
      ansible.builtin.systemd:
        name: hello-web
        enabled: true
    - block:
        - name: Sysctl file
          ansible.builtin.lineinfile:
            path: /etc/sysctl.d/60-web.conf
            line: vm.swappiness = 10
            create: true
            mode: '0644'
    - name: Run a script
      ansible.builtin.command: /usr/local/bin/migrate
    - name: A marker
      ansible.builtin.command:
        cmd: touch /var/lib/app/ready
        creates: /var/lib/app/ready
    - name: A templated path
      ansible.builtin.file:
        path: '{{ app_root }}/cache'
        state: directory
        mode: '0755'
  handlers:
    - name: Reload nginx
      ansible.builtin.service:
        name: nginx.service
        state: reloaded
`;

test('the playbook names what it touches; what it cannot name is listed as unscoped', () => {
  const { scope, unscoped } = scopeOfPlaybook(PLAYBOOK);
  const s = mergeScopes(scope);
  assert.deepEqual(s.packages, ['nginx', 'tree']);
  assert.deepEqual(s.files, [
    '/etc/cron.d/fluid-heartbeat',
    '/etc/nginx/sites-available/app',
    '/etc/sysctl.d/60-web.conf',
    '/var/lib/app/ready',
    '/var/spool/cron/crontabs/webops',
  ]);
  assert.deepEqual(s.users, ['deploy', 'webops']);
  assert.deepEqual(s.groups, ['webops']);
  assert.deepEqual(s.units, ['hello-web.service', 'nginx.service']);
  assert.equal(unscoped.length, 2, unscoped.join('\n'));
  assert.match(unscoped.join('\n'), /"Run a script" \(command\): what a command changes cannot be named/);
  assert.match(unscoped.join('\n'), /"A templated path" \(file\): its path comes from a variable/);
});

test("the diff's items make up the rest of the scope; excluded items are not part of the change", () => {
  const items = [
    {
      id: 'a'.repeat(16),
      key: 'k',
      kind: 'package',
      manager: 'dpkg',
      name: 'tree',
      arch: 'amd64',
      change: 'installed',
      before: null,
      after: { version: '2.1.0-1' },
    },
    {
      id: 'b'.repeat(16),
      key: 'k',
      kind: 'user',
      name: 'webops',
      change: 'added',
      fields: [],
      before: null,
      after: null,
      passwordChanged: false,
    },
    {
      id: 'c'.repeat(16),
      key: 'k',
      kind: 'unit-state',
      unit: 'hello-web.service',
      change: 'enabled',
      target: 'multi-user.target',
      link: '/x',
    },
    {
      id: 'd'.repeat(16),
      key: 'k',
      kind: 'sysctl',
      name: 'vm.swappiness',
      before: '60',
      after: '10',
      file: '/etc/sysctl.d/60-web.conf',
    },
    {
      id: 'e'.repeat(16),
      key: 'k',
      kind: 'file',
      path: '/etc/motd',
      change: 'modified',
      aspects: ['content'],
      before: null,
      after: null,
      content: null,
      package: null,
      sensitive: false,
    },
  ] as unknown as DiffItem[];
  const s = mergeScopes(scopeOfDiff(items, ['e'.repeat(16)]));
  assert.deepEqual(s.packages, ['tree']);
  assert.deepEqual(s.users, ['webops']);
  assert.deepEqual(s.units, ['hello-web.service']);
  assert.deepEqual(s.sysctl, ['vm.swappiness']);
  assert.deepEqual(s.files, ['/etc/sysctl.d/60-web.conf'], 'the excluded /etc/motd is left out');
});

test('names the state program could misread are dropped from a scope', () => {
  const s = mergeScopes({
    packages: ['ok-pkg', 'Bad Pkg', '-rf'],
    files: ['/etc/ok', 'relative', '/etc/../shadow', '/x\0y'],
    units: ['a.service', 'no-suffix', 'x;rm.service'],
    users: ['ok', 'a b'],
    groups: ['g'],
    sysctl: ['vm.swappiness', '../../etc', 'a/b'],
  });
  assert.deepEqual(s, {
    packages: ['ok-pkg'],
    files: ['/etc/ok'],
    units: ['a.service'],
    users: ['ok'],
    groups: ['g'],
    sysctl: ['vm.swappiness'],
  });
});

test('check_mode anywhere (play, task, block, handler) is refused: the preview must not run anything for real', () => {
  assert.doesNotThrow(() => assertCheckModeSafe(playsOf(PLAYBOOK)));
  const cases = [
    `- hosts: all\n  check_mode: false\n  tasks: []\n`,
    `- hosts: all\n  tasks:\n    - name: x\n      ansible.builtin.command: id\n      check_mode: false\n`,
    `- hosts: all\n  tasks:\n    - block:\n        - name: y\n          ansible.builtin.command: id\n          check_mode: no\n`,
    `- hosts: all\n  handlers:\n    - name: h\n      ansible.builtin.command: id\n      check_mode: false\n`,
    `- hosts: all\n  pre_tasks:\n    - name: p\n      ansible.builtin.command: id\n      check_mode: true\n`,
  ];
  for (const y of cases)
    assert.throws(
      () => assertCheckModeSafe(playsOf(y)),
      (e: { code: string; message: string }) =>
        e.code === 'VALIDATION' && /check_mode is set/.test(e.message),
      y,
    );
});

test('plays must run on the slice: hosts all, production or the target’s name', () => {
  assert.ok(playMatches('all', 'prod-web'));
  assert.ok(playMatches('production', 'prod-web'));
  assert.ok(playMatches(['prod-web'], 'prod-web'));
  assert.ok(!playMatches('webservers', 'prod-web'));
  assert.ok(!playMatches('all:!prod-web', 'prod-web'));
  assert.ok(!playMatches(undefined, 'prod-web'));
});

test("the preview's reading of the playbook only adds ignore_errors to each play", () => {
  const y = previewYaml(PLAYBOOK);
  const before = playsOf(PLAYBOOK);
  const after = playsOf(y);
  assert.equal(after.length, before.length);
  assert.equal(after[0]!.ignore_errors, true);
  const { ignore_errors: _i, ...rest } = after[0]!;
  assert.deepEqual(rest, before[0]);
});

test("a preview's diff does not name the run's temporary files (the same preview hashes the same)", () => {
  const d = [
    '--- before: /etc/motd',
    '+++ after: /tmp/fluid-pb-RjbuzZ/local-tmp/ansible-local-5031_afi507c/tmpms3k1s_i',
    '@@ -1 +1 @@',
    '-old',
    '+new',
  ].join('\n');
  assert.equal(
    stablePaths(d),
    ['--- before: /etc/motd', '+++ after', '@@ -1 +1 @@', '-old', '+new'].join('\n'),
  );
});
