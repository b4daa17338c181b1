/**
 * The Ansible side of playbooks with real ansible-playbook and ansible-lint (Debian's packages) and
 * a real OpenSSH server, without a VM:
 *  - Fluid's JSON events callback reports each task's result (ok, changed, skipped, failed; no_log
 *    output hidden) from Debian 12's ansible-core;
 *  - a run reaches an sshd the way verification reaches a sandbox: a certificate from Fluid's CA,
 *    the relay (ProxyCommand) through Fluid's own host connection, the pinned host key — and a
 *    different host key is refused, never ignored;
 *  - the generated scenario playbook passes the syntax check and ansible-lint's production profile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalConnection } from '../../src/core/hosts/connection.ts';
import {
  detectAnsible,
  pinnedHostKey,
  runTool,
  Workspace,
  type AnsibleTools,
} from '../../src/core/playbooks/ansible.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { generate } from '../../src/core/playbooks/generate.ts';
import { hashRevision } from '../../src/core/playbooks/revisions.ts';
import { secretEntry } from '../../src/core/playbooks/secrets.ts';
import { taskResults } from '../../src/core/playbooks/verify.ts';
import type { FluidError } from '../../src/shared/errors.ts';
import { testCore, tempDir } from '../support/core.ts';
import { freePort } from '../support/sshd.ts';
import { fakeSandbox, scenario } from '../unit/playbooks/fixtures.ts';

let tools: AnsibleTools;
const core = testCore();
after(() => core.dispose());

before(async () => {
  tools = await detectAnsible(true);
  if (!tools.playbook || !tools.lint)
    throw new Error(
      'These tests need ansible-core and ansible-lint: apt-get install -y ansible-core ansible-lint',
    );
});

test('the JSON events callback reports every task, per host, from Debian’s ansible-core', async () => {
  const out = tempDir('fluid-pb-local-');
  const yaml = `- name: Local
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug: {msg: hello}
    - name: Write a file
      ansible.builtin.copy: {dest: "${out.dir}/a.txt", content: "x\\n", mode: '0644'}
    - name: Never
      ansible.builtin.debug: {msg: never}
      when: false
    - name: Fail quietly
      ansible.builtin.command: /bin/false
      no_log: true
      ignore_errors: true
    - name: Fail loudly
      ansible.builtin.command: /bin/false
      ignore_errors: true
`;
  const ws = Workspace.create(yaml, new Map());
  try {
    writeFileSync(
      join(ws.dir, 'inventory.ini'),
      'local ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n',
    );
    const r = await runTool(ws, tools.playbook!, ['playbook.yml'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.log);
    const results = taskResults(r.events);
    assert.deepEqual(
      results.map((x) => [x.task, x.status, x.changed]),
      [
        ['Say hello', 'ok', false],
        ['Write a file', 'changed', true],
        ['Never', 'skipped', false],
        // A command that ran reports changed even when it fails (Ansible's own reading).
        ['Fail quietly', 'failed', true],
        ['Fail loudly', 'failed', true],
      ],
    );
    assert.equal(results[3]!.message, 'output hidden (no_log)');
    assert.match(results[4]!.message ?? '', /non-zero return code/);
    assert.ok(r.events.some((e) => e.event === 'stats'));
    assert.match(r.log, /PLAY RECAP/, 'the human log is still there');
    // The second run changes nothing: read per task, not from the recap's text.
    const again = taskResults(
      (await runTool(ws, tools.playbook!, ['playbook.yml'], { timeoutMs: 120_000 })).events,
    );
    assert.deepEqual(
      again.filter((x) => x.status !== 'failed').map((x) => [x.task, x.changed]),
      [
        ['Say hello', false],
        ['Write a file', false],
        ['Never', false],
      ],
    );
  } finally {
    await ws.dispose();
    out.cleanup();
  }
});

/** An sshd that trusts Fluid's CA for one principal, as a sandbox's does. */
async function caSshd(caKey: string): Promise<{
  port: number;
  hostKey: string;
  fingerprint: string;
  log: () => string;
  stop: () => Promise<void>;
}> {
  const { dir, cleanup } = tempDir('fluid-pb-sshd-');
  const port = await freePort();
  mkdirSync(join(dir, 'keys'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'keys', 'host')]);
  writeFileSync(join(dir, 'ca.pub'), caKey + '\n');
  writeFileSync(join(dir, 'principals'), 'fluid-pb-test\n');
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'keys', 'host')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `TrustedUserCAKeys ${join(dir, 'ca.pub')}`,
      `AuthorizedPrincipalsFile ${join(dir, 'principals')}`,
      'AuthorizedKeysFile none',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel VERBOSE',
    ].join('\n') + '\n',
  );
  mkdirSync('/run/sshd', { recursive: true });
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/Server listening/.test(log)) {
        clearInterval(t);
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`sshd did not start:\n${log}`));
      }
    }, 20);
  });
  const pub = readFileSync(join(dir, 'keys', 'host.pub'), 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'keys', 'host.pub')])
    .toString()
    .split(/\s+/)[1]!;
  return {
    port,
    hostKey: pub.split(/\s+/).slice(0, 2).join(' '),
    fingerprint: fp,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      cleanup();
    },
  };
}

test('a run logs in with a Fluid certificate through the relay, with the pinned host key; another key is refused', async () => {
  const sshd = await caSshd(core.ca.publicKey());
  const host = new LocalConnection('local-test');
  const target = tempDir('fluid-pb-target-');
  const yaml = `- name: Over SSH
  hosts: all
  gather_facts: false
  tasks:
    - name: Write through SSH
      ansible.builtin.copy: {dest: "${target.dir}/over-ssh.txt", content: "reached\\n", mode: '0644'}
`;
  const ws = Workspace.create(yaml, new Map());
  try {
    // The full host key, read through Fluid's host connection and checked against the fingerprint.
    const key = await pinnedHostKey(host, '127.0.0.1', sshd.port, sshd.fingerprint);
    assert.equal(key, sshd.hostKey);
    await assert.rejects(
      pinnedHostKey(host, '127.0.0.1', sshd.port, 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      (e: FluidError) => e.code === 'HOSTKEY_MISMATCH',
    );

    const certificate = core.ca.issue({
      principals: ['fluid-pb-test'],
      validitySeconds: 120,
      keyId: 'pb-local-test',
      purpose: 'playbook-verify',
    });
    await ws.tunnel(async () => host, '127.0.0.1', sshd.port);
    ws.target(
      { address: '127.0.0.1', user: 'root', certificate, hostKey: key, alias: 'fluid-sandbox-test' },
      tools.python!,
    );
    const cfg = readFileSync(join(ws.dir, 'ansible.cfg'), 'utf8');
    assert.match(cfg, /StrictHostKeyChecking=yes/);
    assert.doesNotMatch(
      cfg,
      /StrictHostKeyChecking=no|host_key_checking = False|UserKnownHostsFile=\/dev\/null/,
    );
    const r = await runTool(ws, tools.playbook!, ['playbook.yml'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.log);
    assert.equal(readFileSync(join(target.dir, 'over-ssh.txt'), 'utf8'), 'reached\n');
    assert.match(sshd.log(), /Accepted publickey for root .*ED25519-CERT .*ID pb-local-test/);
    await ws.dispose();

    // Pinned to another key (what a man in the middle would present): ssh refuses, nothing runs.
    const ws2 = Workspace.create(yaml.replace('over-ssh.txt', 'mitm.txt'), new Map());
    try {
      const other = tempDir('fluid-pb-otherkey-');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(other.dir, 'k')]);
      const wrong = readFileSync(join(other.dir, 'k.pub'), 'utf8').split(/\s+/).slice(0, 2).join(' ');
      other.cleanup();
      await ws2.tunnel(async () => host, '127.0.0.1', sshd.port);
      ws2.target(
        {
          address: '127.0.0.1',
          user: 'root',
          certificate: core.ca.issue({
            principals: ['fluid-pb-test'],
            validitySeconds: 120,
            keyId: 'pb-local-mitm',
            purpose: 'playbook-verify',
          }),
          hostKey: wrong,
          alias: 'fluid-sandbox-test',
        },
        tools.python!,
      );
      const bad = await runTool(ws2, tools.playbook!, ['playbook.yml'], { timeoutMs: 120_000 });
      assert.notEqual(bad.code, 0);
      assert.deepEqual(
        taskResults(bad.events).map((x) => x.status),
        ['unreachable'],
      );
      assert.match(bad.log, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
      assert.throws(() => readFileSync(join(target.dir, 'mitm.txt')), /ENOENT/);
    } finally {
      await ws2.dispose();
    }
  } finally {
    await ws.dispose();
    await sshd.stop();
    target.cleanup();
  }
});

test('the generated scenario playbook passes the syntax check and ansible-lint’s production profile', async () => {
  const s = scenario();
  const g = await generate({
    diff: s.diff,
    sandboxName: 'web-01',
    facts: fakeSandbox(s.disk, { shadow: s.shadow }),
    previous: null,
  });
  const ws = Workspace.create(g.yaml, g.files);
  try {
    const syntax = await runTool(ws, tools.playbook!, ['--syntax-check', 'playbook.yml'], {
      timeoutMs: 120_000,
    });
    assert.equal(syntax.code, 0, syntax.log);
    const lint = await runTool(
      ws,
      tools.lint!,
      ['--offline', '--nocolor', '--profile', 'production', '-f', 'pep8', 'playbook.yml'],
      { timeoutMs: 300_000 },
    );
    assert.equal(lint.code, 0, `${lint.log}\n---\n${g.yaml}`);
    assert.match(lint.log, /Passed with production profile/);
  } finally {
    await ws.dispose();
  }
});

test('a person’s export with a vault password writes the held secrets encrypted with ansible-vault', async () => {
  const yaml = `- name: Db
  hosts: all
  vars_files: [vars/secrets.yml]
  tasks:
    - name: Configure the database client
      ansible.builtin.copy: {dest: /etc/app.ini, content: "password = {{ db_password }}\\n", mode: '0600'}
      no_log: true
`;
  const p = core.playbooks.store.insert({
    name: 'vaulted',
    sandboxId: null,
    sessionId: null,
    actor: { door: 'test', id: 't' },
    now: new Date().toISOString(),
  });
  const h = hashRevision(yaml, new Map());
  core.playbooks.store.addRevision(
    {
      playbookId: p.id,
      yaml,
      yamlSha256: h.yamlSha256,
      sha256: h.sha256,
      files: [],
      secrets: [{ name: 'db_password', description: 'the password in /etc/app.ini (line 1)', held: true }],
      generation: null,
      generatedTasks: [],
      origin: 'generated',
      message: 'test',
      author: { door: 'test', id: 't' },
      createdAt: new Date().toISOString(),
      base: 0,
    },
    h.blobs,
  );
  core.secrets.set(secretEntry(p.id, 'db_password'), 'vault-me-3x4mpl3');
  const person = connectInProcess(core, { door: 'test', id: 'person' });
  const plain = await person.call('playbooks.export', { playbook: 'vaulted' });
  const template = plain.files.find((f) => f.path === 'vars/secrets.yml')!;
  assert.match(template.content, /# the password in \/etc\/app\.ini \(line 1\)\ndb_password: ''/);
  assert.ok(!JSON.stringify(plain).includes('vault-me-3x4mpl3'), 'no value without a vault password');
  const vaulted = await person.call('playbooks.export', {
    playbook: 'vaulted',
    vaultPassword: 'correct horse battery',
  });
  const file = vaulted.files.find((f) => f.path === 'vars/secrets.yml')!;
  assert.equal(file.mode, '0600');
  assert.match(file.content, /^\$ANSIBLE_VAULT;1\.1;AES256/);
  assert.ok(!file.content.includes('vault-me-3x4mpl3'));
  const dir = tempDir('fluid-vault-check-');
  try {
    writeFileSync(join(dir.dir, 'secrets.yml'), file.content);
    writeFileSync(join(dir.dir, 'pw'), 'correct horse battery');
    const view = execFileSync(
      tools.playbook!.replace(/ansible-playbook$/, 'ansible-vault'),
      ['view', '--vault-password-file', join(dir.dir, 'pw'), join(dir.dir, 'secrets.yml')],
      {
        env: { PATH: process.env.PATH, HOME: dir.dir },
      },
    ).toString();
    assert.equal(view.trim(), 'db_password: "vault-me-3x4mpl3"');
  } finally {
    dir.cleanup();
  }
});

test('fluid doctor says ansible-core and ansible-lint are here, with their versions', async () => {
  const person = connectInProcess(core, { door: 'test', id: 'person' });
  const d = await person.call('system.doctor', {});
  const checks = d.checks.filter((c) => c.id === 'ansible-core' || c.id === 'ansible-lint');
  assert.deepEqual(
    checks.map((c) => [c.id, c.status]),
    [
      ['ansible-core', 'pass'],
      ['ansible-lint', 'pass'],
    ],
  );
  assert.match(checks[0]!.detail, new RegExp(`^ansible-core ${tools.coreVersion!.replace(/\./g, '\\.')} `));
  assert.match(checks[1]!.detail, new RegExp(`^ansible-lint ${tools.lintVersion!.replace(/\./g, '\\.')} `));
});
