/**
 * The playbook model on the YAML document: edits (add, update, remove, move tasks and handlers; set
 * variables) keep a person's comments, key order and untouched formatting; values are read as
 * Ansible (YAML 1.1) reads them; what Fluid writes reads back as the same values, whatever the
 * strings (a fixed-seed property test); structure problems are reported with positions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlaybookDoc, structureDiagnostics } from '../../../src/core/playbooks/model.ts';
import { diagnose } from '../../../src/core/playbooks/revisions.ts';
import { newDocument, parseYaml, renderYaml } from '../../../src/core/playbooks/yaml.ts';
import { type FluidError } from '../../../src/shared/errors.ts';

const PERSON = `# Written by a person: keep these comments.
- name: Web tier   # the play
  hosts: web
  become: yes
  vars:
    port: 8080 # keep me
  tasks:
    # nginx first
    - name: Install nginx
      ansible.builtin.apt: {name: nginx, state: present}
    - name: Site config
      ansible.builtin.copy:
        dest: /etc/nginx/sites-available/app
        mode: 0644 # octal in 1.1
        content: "listen {{ port }};\\n"
      notify: Reload nginx
  handlers:
    - name: Reload nginx
      ansible.builtin.systemd: {name: nginx, state: reloaded}
`;

test('values are read as Ansible reads them: YAML 1.1 booleans and octal modes', () => {
  const js = parseYaml(PERSON).toJS() as Array<Record<string, unknown>>;
  assert.equal(js[0]!.become, true, '"yes" is a boolean in YAML 1.1');
  const copy = (js[0]!.tasks as Array<Record<string, { mode: number }>>)[1]!['ansible.builtin.copy']!;
  assert.equal(copy.mode, 0o644, '0644 is octal in YAML 1.1');
  const doc = parseYaml('- {hosts: all, tasks: [{name: x, ansible.builtin.file: {path: /x, mode: 644}}]}');
  const diags = diagnose(String(doc));
  assert.ok(
    diags.some((d) => /decimal number 644/.test(d.message)),
    JSON.stringify(diags),
  );
});

test('editing keeps comments, key order and the person’s formatting elsewhere', () => {
  const doc = PlaybookDoc.parse(PERSON);
  doc.add(
    'tasks',
    {
      name: 'Open the firewall',
      module: 'ansible.builtin.lineinfile',
      args: { path: '/etc/x', line: 'allow 8080', mode: '0644', create: true },
    },
    { position: 2 },
  );
  doc.update('tasks', 'Site config', { notify: ['Reload nginx', 'Check the site'] });
  doc.add('handlers', {
    name: 'Check the site',
    module: 'ansible.builtin.uri',
    args: { url: 'http://localhost:8080/' },
  });
  doc.move('tasks', 'Install nginx', 3);
  doc.setVar('workers', 4);
  const out = doc.render();
  for (const c of [
    '# Written by a person: keep these comments.',
    '# the play',
    '# keep me',
    '# nginx first',
    '# octal in 1.1',
  ])
    assert.ok(out.includes(c), `lost ${c}\n${out}`);
  assert.ok(out.includes('become: yes'), 'untouched values keep their spelling');
  assert.ok(
    out.includes('{ name: nginx, state: present }') || out.includes('{name: nginx, state: present}'),
    'flow style kept',
  );
  const names = doc.list('tasks').map((t) => t.name);
  assert.deepEqual(names, ['Open the firewall', 'Site config', 'Install nginx']);
  // The comment above "Install nginx" moved with it.
  assert.ok(out.indexOf('# nginx first') > out.indexOf('Site config'));
  // New strings that YAML 1.1 would misread are quoted.
  assert.match(out, /mode: '0644'/);
  const js = parseYaml(out).toJS() as Array<{ vars: Record<string, unknown>; handlers: unknown[] }>;
  assert.deepEqual(js[0]!.vars, { port: 8080, workers: 4 });
  assert.equal(js[0]!.handlers.length, 2);
  // Key order inside the edited task: name first, then the module, then keywords.
  const site = out.slice(out.indexOf('- name: Site config'));
  assert.ok(site.indexOf('ansible.builtin.copy') < site.indexOf('notify'));
});

test('tasks are addressed by number or exact name; ambiguous or missing ones are clear errors', () => {
  const doc = PlaybookDoc.parse(PERSON);
  doc.add('tasks', { name: 'Install nginx', module: 'ansible.builtin.debug', args: { msg: 'again' } });
  assert.throws(
    () => doc.remove('tasks', 'Install nginx'),
    (e: FluidError) => e.code === 'VALIDATION' && /address one by its number \(1, 3\)/.test(e.message),
  );
  assert.throws(
    () => doc.remove('tasks', 7),
    (e: FluidError) => e.code === 'NOT_FOUND',
  );
  assert.throws(
    () => doc.update('tasks', 'Nope', { name: 'x' }),
    (e: FluidError) => e.code === 'NOT_FOUND' && /Names: /.test(e.message),
  );
  assert.throws(
    () => doc.add('tasks', { name: 'Bad', module: 'rm -rf /' }),
    (e: FluidError) => e.code === 'VALIDATION',
  );
  assert.throws(
    () => doc.add('tasks', { name: 'Bad', module: 'when' }),
    (e: FluidError) => e.code === 'VALIDATION',
  );
  assert.throws(
    () => doc.add('handlers', { name: 'Reload nginx', module: 'ansible.builtin.debug' }),
    (e: FluidError) => e.code === 'CONFLICT',
  );
  assert.equal(doc.remove('tasks', 3).module, 'ansible.builtin.debug');
});

test('an update replaces the module and args in place and removes keywords set to null', () => {
  const doc = PlaybookDoc.parse(PERSON);
  doc.update('tasks', 1, {
    module: 'ansible.builtin.package',
    args: { name: 'nginx', state: 'present' },
    when: 'ansible_os_family == "Debian"',
  });
  doc.update('tasks', 2, { notify: null });
  const [a, b] = doc.list('tasks');
  assert.equal(a!.module, 'ansible.builtin.package');
  assert.equal(a!.keywords.when, 'ansible_os_family == "Debian"');
  assert.equal(b!.keywords.notify, undefined);
  assert.ok(doc.render().includes('# nginx first'));
});

/** A small deterministic generator (no Math.random): the same strings on every run. */
function* strings(seed: number, n: number): Generator<string> {
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), x);
  const atoms = [
    'yes',
    'no',
    'on',
    'off',
    'y',
    'n',
    '0644',
    '0755',
    '1e3',
    '0x1f',
    '12:30',
    '~',
    'null',
    'true',
    '- a',
    ': b',
    '#c',
    '"',
    "'",
    '\\',
    '{',
    '}',
    '[',
    ']',
    '&x',
    '*y',
    '!t',
    '%',
    '@',
    '`',
    '|',
    '>',
    ' ',
    '\t',
    '\n',
    'é',
    '✓',
    'a',
    '0',
    '.inf',
    '-1',
    '+1',
    '0o17',
    '2026-01-01',
  ];
  for (let i = 0; i < n; i++) {
    const len = next() % 6;
    let s = '';
    for (let j = 0; j < len; j++) s += atoms[next() % atoms.length];
    yield s;
  }
}

test('whatever the strings, what Fluid writes reads back as the same values (fixed seed)', () => {
  const values = [...strings(42, 400)];
  const play = [
    { name: 'P', hosts: 'all', vars: Object.fromEntries(values.map((v, i) => [`v${i}`, v])), tasks: [] },
  ];
  const text = renderYaml(newDocument(play));
  const back = parseYaml(text);
  assert.deepEqual(back.errors, []);
  assert.deepEqual(back.toJS(), play);
});

test('structure problems are reported at their line', () => {
  const text =
    '- name: p\n  hosts: all\n  tasks:\n    - name: two modules\n      ansible.builtin.copy: {dest: /x}\n      ansible.builtin.file: {path: /x}\n    - ansible.builtin.debug: {msg: hi}\n';
  const d = structureDiagnostics(text, parseYaml(text));
  const two = d.find((x) => /several modules/.test(x.message))!;
  assert.equal(two.line, 4, 'the task that names two modules');
  assert.ok(d.some((x) => x.severity === 'warning' && /name/.test(x.message) && x.line === 7));
  assert.throws(
    () => PlaybookDoc.parse('hosts: all\n'),
    (e: FluidError) => e.code === 'VALIDATION' && /list of plays/.test(e.message),
  );
  assert.throws(
    () => PlaybookDoc.parse('- name: [unclosed\n'),
    (e: FluidError) => e.code === 'VALIDATION' && /not valid YAML/.test(e.message),
  );
});
