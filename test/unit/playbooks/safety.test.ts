/**
 * What Fluid agrees to run on this machine. The agent writes tasks and is assumed adversarial: each
 * way a playbook could run code or read files on the controller is tried here and must be refused,
 * with a message naming the construct; ordinary playbooks pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  expressionProblem,
  safetyDiagnostics,
  templateProblems,
} from '../../../src/core/playbooks/safety.ts';
import { parseYaml } from '../../../src/core/playbooks/yaml.ts';

const play = (tasks: string, extra = '') =>
  `- name: P\n  hosts: all\n  become: true\n${extra}  tasks:\n${tasks}`;
const check = (text: string, files: Record<string, string | null> = {}) =>
  safetyDiagnostics(text, parseYaml(text), { files: new Map(Object.entries(files)) }).filter(
    (d) => d.severity === 'error',
  );

const ATTACKS: Array<[string, string, RegExp]> = [
  [
    'a lookup in a module argument',
    play(
      `    - name: x\n      ansible.builtin.copy: {dest: /tmp/x, content: "{{ lookup('pipe', 'id') }}"}\n`,
    ),
    /lookup/,
  ],
  [
    'query()',
    play(`    - name: x\n      ansible.builtin.debug: {msg: "{{ query('file', '/etc/passwd') }}"}\n`),
    /query/,
  ],
  [
    'a Python attribute walk',
    play(
      `    - name: x\n      ansible.builtin.debug: {msg: "{{ ''.__class__.__mro__[1].__subclasses__() }}"}\n`,
    ),
    /__class__|Strings with "__"|attribute/,
  ],
  [
    'an index walk with a dunder string',
    play(`    - name: x\n      ansible.builtin.debug: {msg: "{{ x['__globals__'] }}"}\n`),
    /__/,
  ],
  [
    'a method call',
    play(`    - name: x\n      ansible.builtin.debug: {msg: "{{ d.items() }}"}\n`),
    /Method calls/,
  ],
  [
    'a call of a variable',
    play(`    - name: x\n      ansible.builtin.debug: {msg: "{{ cycler(1) }}"}\n`),
    /cycler|Calling/,
  ],
  [
    'a filter that reads this machine',
    play(`    - name: x\n      ansible.builtin.debug: {msg: "{{ '/etc/*' | fileglob }}"}\n`),
    /filter "fileglob"/,
  ],
  [
    'a test that reads this machine',
    play(
      `    - name: x\n      ansible.builtin.debug: {msg: hi}\n      when: "'/root/.ssh/id_rsa' is exists"\n`,
    ),
    /test "exists"/,
  ],
  [
    'a lookup in when',
    play(`    - name: x\n      ansible.builtin.debug: {msg: hi}\n      when: lookup('env', 'HOME')\n`),
    /lookup/,
  ],
  [
    'include in a template statement',
    play(`    - name: x\n      ansible.builtin.debug: {msg: "{% include '/etc/shadow' %}"}\n`),
    /include/,
  ],
  [
    'delegate_to',
    play(`    - name: x\n      ansible.builtin.command: id\n      delegate_to: localhost\n`),
    /delegate_to.*this machine/,
  ],
  ['local_action', play(`    - name: x\n      local_action: ansible.builtin.command id\n`), /local_action/],
  [
    'connection: local on a task',
    play(`    - name: x\n      ansible.builtin.command: id\n      connection: local\n`),
    /connection/,
  ],
  ['a play with roles', play('', '  roles: [evil]\n'), /roles/],
  ['a play with connection: local', play('', '  connection: local\n'), /connection/],
  [
    'ansible_* connection variables',
    play('', '  vars:\n    ansible_ssh_common_args: "-o ProxyCommand=\'sh -c id\'"\n'),
    /ansible_\*/,
  ],
  [
    'ansible_* through set_fact',
    play(`    - name: x\n      ansible.builtin.set_fact: {ansible_connection: local}\n`),
    /set_fact cannot set ansible_/,
  ],
  ['another vars file', play('', '  vars_files: [/home/me/.fluid/secrets.json]\n'), /only vars file/],
  [
    'a collection module with a controller side',
    play(`    - name: x\n      ansible.posix.synchronize: {src: /, dest: /tmp}\n`),
    /module "ansible\.posix\.synchronize"/,
  ],
  [
    'script (reads a local file)',
    play(`    - name: x\n      ansible.builtin.script: /home/me/run.sh\n`),
    /module "ansible\.builtin\.script"/,
  ],
  [
    'fetch (writes to this machine)',
    play(`    - name: x\n      ansible.builtin.fetch: {src: /etc/shadow, dest: /tmp/}\n`),
    /module "ansible\.builtin\.fetch"/,
  ],
  [
    'include_vars',
    play(`    - name: x\n      ansible.builtin.include_vars: /etc/fluid.yml\n`),
    /include_vars/,
  ],
  ['import_tasks', play(`    - name: x\n      ansible.builtin.import_tasks: /tmp/t.yml\n`), /import_tasks/],
  [
    'copy from an absolute local path',
    play(`    - name: x\n      ansible.builtin.copy: {src: /root/.ssh/id_ed25519, dest: /tmp/k}\n`),
    /reads src on this machine/,
  ],
  [
    'copy from a path that climbs out',
    play(`    - name: x\n      ansible.builtin.copy: {src: files/../../secrets.json, dest: /tmp/k}\n`),
    /reads src on this machine/,
  ],
  [
    'a template that is not shipped',
    play(`    - name: x\n      ansible.builtin.template: {src: /etc/passwd, dest: /tmp/p}\n`),
    /must be a file the revision ships/,
  ],
  [
    'with_fileglob',
    play(
      `    - name: x\n      ansible.builtin.debug: {msg: "{{ item }}"}\n      with_fileglob: ['/root/*']\n`,
    ),
    /with_fileglob.*use loop/,
  ],
  [
    'a Jinja key',
    play(`    - name: x\n      ansible.builtin.debug:\n        "{{ lookup('pipe','id') }}": 1\n`),
    /Keys may not contain Jinja/,
  ],
  [
    'a debugger keyword',
    play(`    - name: x\n      ansible.builtin.debug: {msg: hi}\n      debugger: always\n`),
    /debugger/,
  ],
];

for (const [what, text, re] of ATTACKS)
  test(`refused: ${what}`, () => {
    const errors = check(text);
    assert.ok(errors.length > 0, `not refused:\n${text}`);
    assert.ok(
      errors.some((e) => re.test(e.message)),
      errors.map((e) => e.message).join('\n'),
    );
    assert.ok(errors.every((e) => e.line >= 1 && e.source === 'safety'));
  });

test('a shipped template is checked like any other Jinja', () => {
  const text = play(
    `    - name: x\n      ansible.builtin.template: {src: templates/a.j2, dest: /etc/a, mode: '0644'}\n`,
  );
  assert.deepEqual(
    check(text, { 'templates/a.j2': 'port = {{ port | default(80) }}\n{% if tls %}ssl on;{% endif %}\n' }),
    [],
  );
  const bad = check(text, { 'templates/a.j2': "key = {{ lookup('file', '/etc/fluid/key') }}\n" });
  assert.match(bad[0]!.message, /templates\/a\.j2 line 1: .*lookup/);
});

test('ordinary playbooks pass: variables, filters, tests, conditions, loops, handlers, !unsafe text', () => {
  const text = `- name: Web
  hosts: all
  become: true
  vars_files: [vars/secrets.yml]
  vars:
    port: 8080
  tasks:
    - name: Install
      ansible.builtin.apt: {name: "{{ packages | default(['nginx']) }}", state: present}
      when: ansible_os_family == "Debian" and (port | int) > 1024
      register: installed
    - name: Config
      ansible.builtin.copy:
        dest: /etc/app.conf
        content: "port = {{ port }}\\nkey = {{ app_key }}\\n"
        mode: '0640'
      no_log: true
      notify: Restart app
    - name: Odd name taken literally
      ansible.builtin.file: {path: !unsafe "/srv/{{ weird }}", state: directory, mode: '0755'}
    - name: Users
      ansible.builtin.user: {name: "{{ item.name }}", groups: "{{ item.groups | join(',') }}"}
      loop: "{{ users | default([]) }}"
      loop_control: {label: "{{ item.name }}"}
    - name: Show
      ansible.builtin.debug: {var: installed}
      changed_when: false
      failed_when: installed is failed and not (installed.msg | default('') is search('held'))
  handlers:
    - name: Restart app
      ansible.builtin.systemd: {name: app, state: restarted}
`;
  assert.deepEqual(check(text), []);
});

test('the expression checker: allowed forms and refused ones', () => {
  for (const ok of [
    'x',
    'x.y',
    "x['k']",
    'x[0]',
    'a == 1 and not b',
    "x | default('a') | upper",
    'x is defined',
    'x is not none',
    "(a or b) and c in ['p', 'q']",
    "x ~ '-' ~ y",
    'r.stdout_lines | length > 0',
  ])
    assert.equal(expressionProblem(ok), null, ok);
  for (const bad of [
    'x.__class__',
    'foo()',
    "x['__init__']",
    'x | map("lookup")',
    'range(10)',
    "{'a': 1}",
    'x[1:2]',
    '2 ** 100000',
    '_private',
  ])
    assert.ok(expressionProblem(bad), bad);
  assert.deepEqual(
    templateProblems('{% raw %}{{ lookup("pipe","id") }}{% endraw %}'),
    [],
    'raw blocks are literal',
  );
  assert.equal(templateProblems('{{ unclosed').length, 1);
});
