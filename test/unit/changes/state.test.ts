/**
 * The target's state: the real read-only state program (target_state.py) run here over files,
 * packages, users, groups and sysctl values; drift named item by item; a state checked against the
 * diff items a change carries. And the Python programs compile and pass pyflakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import {
  baselineOf,
  cronEntry,
  drift,
  mismatches,
  normalizeScope,
  readState,
  STATE_PROGRAM_URL,
} from '../../../src/core/targets/state.ts';
import { PREVIEW_CALLBACK_URL } from '../../../src/core/targets/ansible.ts';
import type { TargetState } from '../../../src/shared/contract/changes.ts';
import type { DiffItem } from '../../../src/shared/contract/diff.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('the state program reads files, packages, users, groups and sysctl, and writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-state-'));
  try {
    writeFileSync(join(dir, 'motd'), 'hello\n');
    chmodSync(join(dir, 'motd'), 0o640);
    symlinkSync('/etc/hostname', join(dir, 'link'));
    const before = statSync(dir).mtimeMs;
    const scope = normalizeScope({
      packages: ['bash', 'not-a-package-here'],
      files: [join(dir, 'motd'), join(dir, 'link'), join(dir, 'absent'), dir],
      units: [],
      users: ['root', 'no-such-user'],
      groups: ['root', 'no-such-group'],
      sysctl: ['kernel.ostype', 'no.such.key'],
    });
    // The local machine stands in for a target: the same program over the same kind of connection.
    const state = await readState(new LocalConnection('local'), 'none', scope);
    assert.deepEqual(state.files[join(dir, 'motd')], {
      type: 'file',
      mode: '0640',
      user: 'root',
      group: 'root',
      size: 6,
      sha256: sha('hello\n'),
      target: null,
    });
    assert.equal(state.files[join(dir, 'link')]!.type, 'symlink');
    assert.equal(state.files[join(dir, 'link')]!.target, '/etc/hostname');
    assert.equal(state.files[join(dir, 'absent')], null);
    assert.equal(state.files[dir]!.type, 'dir');
    assert.match(state.packages.bash!, /^\d/);
    assert.equal(state.packages['not-a-package-here'], null);
    assert.equal(state.users.root!.uid, 0);
    assert.ok(['set', 'locked', 'disabled', 'empty'].includes(state.users.root!.password!));
    assert.match(state.users.root!.passwordDigest!, /^[0-9a-f]{64}$/);
    assert.equal(state.users['no-such-user'], null);
    assert.equal(state.groups.root!.gid, 0);
    assert.equal(state.groups['no-such-group'], null);
    assert.equal(state.sysctl['kernel.ostype'], 'Linux');
    assert.equal(state.sysctl['no.such.key'], null);
    assert.equal(statSync(dir).mtimeMs, before, 'nothing was written where it looked');
    // no hash of a password leaves the machine, only a digest of the shadow field
    const shadow = readFileSync('/etc/shadow', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('root:'))!
      .split(':')[1]!;
    assert.ok(!JSON.stringify(state).includes(shadow) || shadow.length < 2);
    // the same state hashes the same way
    assert.equal(baselineOf(scope, state, []).sha256, baselineOf(scope, structuredClone(state), []).sha256);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const base: TargetState = {
  packages: { tree: null, nginx: '1.22.1-9' },
  files: {
    '/etc/motd': {
      type: 'file',
      mode: '0644',
      user: 'root',
      group: 'root',
      size: 3,
      sha256: sha('a\n'),
      target: null,
    },
    '/etc/cron.d/x': null,
  },
  units: { 'hello.service': { load: 'not-found', active: 'inactive', enabled: '', fragment: null } },
  users: { webops: null },
  groups: { webops: null },
  sysctl: { 'vm.swappiness': '60' },
};

test('drift names each item that moved, and what moved in it', () => {
  assert.deepEqual(drift(base, structuredClone(base)), []);
  const now = structuredClone(base);
  now.files['/etc/motd'] = { ...now.files['/etc/motd']!, sha256: sha('b\n'), mode: '0600' };
  now.packages.nginx = '1.22.1-9+deb12u1';
  now.users.webops = {
    uid: 1001,
    gid: 1001,
    gecos: '',
    home: '/home/webops',
    shell: '/bin/bash',
    groups: [],
    password: 'locked',
    passwordDigest: 'x',
  };
  now.units['hello.service'] = {
    load: 'loaded',
    active: 'active',
    enabled: 'enabled',
    fragment: '/etc/systemd/system/hello.service',
  };
  now.sysctl['vm.swappiness'] = '10';
  const d = drift(base, now);
  assert.deepEqual(
    d.map((x) => `${x.kind} ${x.key} ${x.fields.join(',')}`),
    [
      'package nginx version',
      'file /etc/motd mode,sha256',
      'unit hello.service active,enabled,fragment,load',
      'user webops exists',
      'sysctl vm.swappiness value',
    ],
  );
  assert.match(
    d[1]!.detail,
    /^file \/etc\/motd: file 0644 root:root sha256 .{12}… → file 0600 root:root sha256/,
  );
  assert.match(d[3]!.detail, /user webops was added/);
});

test('a state is checked against the change: versions, hashes, modes, owners, enablement, members', () => {
  const items = [
    {
      id: '1'.repeat(16),
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
      id: '2'.repeat(16),
      key: 'k',
      kind: 'file',
      path: '/etc/motd',
      change: 'modified',
      aspects: ['content'],
      before: null,
      after: {
        type: 'file',
        mode: '0644',
        uid: 0,
        gid: 0,
        user: 'root',
        group: 'root',
        size: 2,
        sha256: sha('b\n'),
        target: null,
      },
      content: null,
      package: null,
      sensitive: false,
    },
    {
      id: '3'.repeat(16),
      key: 'k',
      kind: 'cron',
      path: '/etc/cron.d/x',
      change: 'added',
      aspects: [],
      before: null,
      after: {
        type: 'file',
        mode: '0644',
        uid: 0,
        gid: 0,
        user: 'root',
        group: 'root',
        size: 2,
        sha256: sha('c\n'),
        target: null,
      },
      content: null,
      package: null,
      sensitive: false,
      user: null,
      entries: { added: [], removed: [] },
    },
    {
      id: '4'.repeat(16),
      key: 'k',
      kind: 'unit-state',
      unit: 'hello.service',
      change: 'enabled',
      target: 'multi-user.target',
      link: '/x',
    },
    {
      id: '5'.repeat(16),
      key: 'k',
      kind: 'user',
      name: 'webops',
      change: 'added',
      fields: [],
      before: null,
      after: {
        uid: 1001,
        gid: 1001,
        group: 'webops',
        gecos: '',
        home: '/home/webops',
        shell: '/bin/bash',
        groups: [],
        password: 'locked',
        minDays: '',
        maxDays: '',
        warnDays: '',
        inactiveDays: '',
        expires: '',
      },
      passwordChanged: false,
    },
    {
      id: '6'.repeat(16),
      key: 'k',
      kind: 'sysctl',
      name: 'vm.swappiness',
      before: '60',
      after: '10',
      file: '/etc/sysctl.d/60.conf',
    },
  ] as unknown as DiffItem[];
  const wrong = mismatches(items, base);
  assert.deepEqual(
    wrong.map((w) => `${w.kind} ${w.key} ${w.fields.join(',')}`),
    [
      'package tree version',
      'file /etc/motd sha256',
      'file /etc/cron.d/x exists',
      'unit hello.service enabled',
      'user webops exists',
      'sysctl vm.swappiness value',
    ],
  );
  const good = structuredClone(base);
  good.packages.tree = '2.1.0-1';
  good.files['/etc/motd']!.sha256 = sha('b\n');
  good.files['/etc/cron.d/x'] = {
    type: 'file',
    mode: '0644',
    user: 'root',
    group: 'root',
    size: 2,
    sha256: sha('c\n'),
    target: null,
  };
  good.units['hello.service']!.enabled = 'enabled';
  // uids may differ between machines: names, shells and homes are what must match
  good.users.webops = {
    uid: 1007,
    gid: 1007,
    gecos: '',
    home: '/home/webops',
    shell: '/bin/bash',
    groups: [],
    password: 'locked',
    passwordDigest: 'y',
  };
  good.sysctl['vm.swappiness'] = '10';
  assert.deepEqual(mismatches(items, good), []);
});

test('the Python programs compile and pyflakes finds nothing in them', () => {
  const files = [fileURLToPath(STATE_PROGRAM_URL), fileURLToPath(PREVIEW_CALLBACK_URL)];
  for (const f of files)
    execFileSync('python3', ['-m', 'py_compile', f], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPYCACHEPREFIX: tmpdir() },
    });
  const r = spawnSync('pyflakes3', files, { encoding: 'utf8' });
  assert.ok(!r.error, 'pyflakes3 is installed (apt-get install -y pyflakes3)');
  assert.equal(r.status, 0, `pyflakes3:\n${r.stdout}${r.stderr}`);
});

test('a cron file written by the cron module matches the sandbox’s by its entries, not its bytes', () => {
  const line = '*/15 * * * * root /usr/bin/true # fluid heartbeat';
  // the state program's digests and the checker's agree (whitespace normalised, comments aside)
  const py = execFileSync(
    'python3',
    [
      '-c',
      'import importlib.util,sys,json; s=importlib.util.spec_from_file_location("ts", sys.argv[1]); m=importlib.util.module_from_spec(s); s.loader.exec_module(m); print(json.dumps(m.cron_entries(sys.argv[2].encode())))',
      fileURLToPath(STATE_PROGRAM_URL),
      `#Ansible: fluid-heartbeat\n${line.replace(/ /g, '  ')}\n\n# a comment\n`,
    ],
    { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
  ).toString();
  assert.deepEqual(JSON.parse(py), [cronEntry(line)]);
  const item = {
    id: '7'.repeat(16),
    key: 'k',
    kind: 'cron',
    path: '/etc/cron.d/fluid-heartbeat',
    change: 'added',
    aspects: [],
    before: null,
    after: {
      type: 'file',
      mode: '0644',
      uid: 0,
      gid: 0,
      user: 'root',
      group: 'root',
      size: 50,
      sha256: sha(`${line}\n`),
      target: null,
    },
    content: null,
    package: null,
    sensitive: false,
    user: null,
    entries: { added: [line], removed: [] },
  } as unknown as DiffItem;
  const state = structuredClone(base);
  const file = {
    type: 'file',
    mode: '0644',
    user: 'root',
    group: 'root',
    size: 80,
    sha256: sha('other bytes'),
    target: null,
  };
  state.files['/etc/cron.d/fluid-heartbeat'] = { ...file, entries: [cronEntry(line)] };
  assert.deepEqual(mismatches([item], state), []);
  state.files['/etc/cron.d/fluid-heartbeat'] = { ...file, entries: [cronEntry('0 * * * * root /bin/false')] };
  assert.deepEqual(
    mismatches([item], state).map((m) => m.fields),
    [['entries']],
  );
});
