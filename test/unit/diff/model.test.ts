/**
 * The TypeScript side of the system diff: the host program's answer is validated and shaped into the
 * contract's Diff (ids, order, counts, hash); two diffs compare item by item; the text rendering; the
 * transport to the host (a real local run of the program); the baseline step's output; the preflight
 * verdict; and who may include or exclude items.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  compareDiffs,
  compareCodePoints,
  DiffItemSchema,
  KIND_ORDER,
  type Diff,
  type DiffItem,
} from '../../../src/shared/contract/diff.ts';
import { FluidError } from '../../../src/shared/errors.ts';
import { buildDiff, itemId, itemsHash, toItems } from '../../../src/core/diff/model.ts';
import { renderDiff } from '../../../src/core/diff/render.ts';
import { collectCommand, runCollect, type HostResult } from '../../../src/core/diff/host.ts';
import { baselineScript, parseBaselineOutput } from '../../../src/core/diff/baseline.ts';
import { diffCheck } from '../../../src/core/diff/preflight.ts';
import { LocalConnection, type ExecResult, type HostConnection } from '../../../src/core/hosts/connection.ts';
import { testCore } from '../../support/core.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';

const meta = (over: Record<string, unknown> = {}) => ({
  type: 'file',
  mode: '0644',
  uid: 0,
  gid: 0,
  user: 'root',
  group: 'root',
  size: 6,
  sha256: 'a'.repeat(64),
  target: null,
  ...over,
});
const fileItem = (path: string, over: Record<string, unknown> = {}) => ({
  kind: 'file',
  key: path,
  path,
  change: 'modified',
  aspects: ['content'],
  before: meta({ sha256: 'b'.repeat(64) }),
  after: meta(),
  content: {
    kind: 'text',
    diff: `--- a${path}\n+++ b${path}\n@@ -1 +1 @@\n-old\n+new\n`,
    added: 1,
    removed: 1,
    truncated: false,
  },
  package: null,
  sensitive: false,
  ...over,
});
const pkg = (name: string) => ({
  kind: 'package',
  key: `dpkg:${name}:amd64`,
  manager: 'dpkg',
  name,
  arch: 'amd64',
  change: 'installed',
  before: null,
  after: { version: '1.0-1' },
});
const answer = (items: Array<Record<string, unknown>>, noise: Array<[string, string]> = []): HostResult => ({
  protocol: 1,
  ok: true,
  method: 'fast',
  consistency: { mode: 'quiesced-layer', detail: 'frozen' },
  items: items as HostResult['items'],
  noise,
  stats: { changedPaths: items.length },
  timings: { total: 12 },
  warnings: [],
  filesystem: { type: 'ext', partition: null, replayed: [] },
});
const shape = (r: HostResult): Diff => ({
  ...buildDiff(r, {
    id: randomUUID(),
    sandboxId: 'sbx',
    from: { kind: 'baseline' },
    to: { kind: 'now' },
    createdAt: new Date(0).toISOString(),
    createdBy: { door: 'test', id: 't' },
  }),
  excluded: [],
  noise: null,
});

describe('shaping the host answer into the contract', () => {
  test('ids depend on kind and key only: stable, distinct, 16 hex digits', () => {
    assert.equal(itemId('file', '/etc/motd'), itemId('file', '/etc/motd'));
    assert.notEqual(itemId('file', '/etc/motd'), itemId('cron', '/etc/motd'));
    assert.notEqual(itemId('file', '/etc/motd'), itemId('file', '/etc/motd2'));
    assert.match(itemId('user', 'deploy'), /^[0-9a-f]{16}$/);
  });

  test('items are ordered by kind, then by key as UTF-8 bytes, whatever order the host used', () => {
    const items = toItems(
      answer([fileItem('/etc/zz'), pkg('tree'), fileItem('/etc/é'), fileItem('/etc/a'), pkg('curl')]).items,
    );
    assert.deepEqual(
      items.map((i) => i.key),
      ['dpkg:curl:amd64', 'dpkg:tree:amd64', '/etc/a', '/etc/zz', '/etc/é'],
    );
    for (const i of items) assert.equal(i.id, itemId(i.kind, i.key));
    assert.ok(
      compareCodePoints('\u{1F600}', '\uFFFF') > 0,
      'astral characters sort after the BMP, as in UTF-8',
    );
    assert.deepEqual(KIND_ORDER.slice(0, 3), ['package', 'group', 'user']);
  });

  test('the hash and counts do not depend on the order the host reported things in', () => {
    const a = shape(
      answer(
        [fileItem('/etc/a'), pkg('tree')],
        [
          ['/var/log/x', 'logs'],
          ['/tmp/y', 'volatile'],
        ],
      ),
    );
    const b = shape(
      answer(
        [pkg('tree'), fileItem('/etc/a')],
        [
          ['/tmp/y', 'volatile'],
          ['/var/log/x', 'logs'],
        ],
      ),
    );
    assert.equal(a.sha256, b.sha256);
    assert.equal(a.sha256, itemsHash(a.items));
    assert.deepEqual(a.counts, {
      items: 2,
      byKind: { package: 1, file: 1 },
      noise: 2,
      noiseByRule: { logs: 1, volatile: 1 },
    });
    assert.equal(a.noiseRules.logs, 'logs and login records');
  });

  test('an item that does not fit the contract is an error naming it, never dropped silently', () => {
    assert.throws(
      () => toItems(answer([{ ...fileItem('/etc/x'), change: 'renamed' }]).items),
      (e: FluidError) => e.code === 'INTERNAL' && /file change of \/etc\/x/.test(e.message),
    );
    // A password hash where the contract says what the password's state is: refused.
    const user = {
      kind: 'user',
      key: 'deploy',
      name: 'deploy',
      change: 'added',
      fields: [],
      before: null,
      after: {
        uid: 1001,
        gid: 1001,
        group: 'deploy',
        gecos: '',
        home: '/home/deploy',
        shell: '/bin/bash',
        groups: [],
        password: '$6$salt$hash',
        minDays: '0',
        maxDays: '99999',
        warnDays: '7',
        inactiveDays: '',
        expires: '',
      },
      passwordChanged: true,
    };
    assert.throws(() => toItems(answer([user]).items), /does not fit the contract/);
    user.after.password = 'set';
    assert.equal(toItems(answer([user]).items)[0]!.kind, 'user');
  });
});

describe('compareDiffs (the replay check)', () => {
  const diff = (items: Array<Record<string, unknown>>) => shape(answer(items));

  test('equal diffs are equal, even when observed differently (diff text, uid numbers with the same names)', () => {
    const a = diff([fileItem('/etc/app.conf'), pkg('tree')]);
    const b = diff([
      pkg('tree'),
      fileItem('/etc/app.conf', {
        content: { kind: 'text', diff: 'other rendering', added: 1, removed: 1, truncated: false },
        after: meta({ uid: 5 }),
      }),
    ]);
    assert.deepEqual(compareDiffs(a, b), { equal: true, onlyInA: [], onlyInB: [], differing: [] });
  });

  test('differences are listed item by item, with the fields that differ', () => {
    const a = diff([fileItem('/etc/app.conf'), pkg('tree'), fileItem('/etc/only-a')]);
    const b = diff([
      fileItem('/etc/app.conf', { after: meta({ sha256: 'c'.repeat(64), mode: '0600' }) }),
      pkg('tree'),
      pkg('curl'),
    ]);
    const r = compareDiffs(a, b);
    assert.equal(r.equal, false);
    assert.deepEqual(
      r.onlyInA.map((i) => i.key),
      ['/etc/only-a'],
    );
    assert.deepEqual(
      r.onlyInB.map((i) => i.key),
      ['dpkg:curl:amd64'],
    );
    assert.equal(r.differing.length, 1);
    assert.equal(r.differing[0]!.key, '/etc/app.conf');
    assert.deepEqual(r.differing[0]!.fields, ['after.mode', 'after.sha256']);
    // Items a person excluded are left out on both sides.
    const ignored = compareDiffs(a, b, {
      ignore: [
        itemId('file', '/etc/only-a'),
        itemId('package', 'dpkg:curl:amd64'),
        itemId('file', '/etc/app.conf'),
      ],
    });
    assert.equal(ignored.equal, true);
  });
});

describe('text rendering', () => {
  test('grouped by kind with counts, text diffs, binary and sensitive markers, exclusions', () => {
    const d = shape(
      answer(
        [
          fileItem('/etc/app.conf'),
          fileItem('/usr/local/bin/tool', { content: { kind: 'binary', sizeBefore: 10, sizeAfter: 20 } }),
          fileItem('/etc/ssl/private/k.key', {
            content: {
              kind: 'hidden',
              reason: 'a sensitive file: compared by size and hash only',
              sizeBefore: 0,
              sizeAfter: 9,
            },
            sensitive: true,
          }),
          pkg('tree'),
          {
            kind: 'unit-state',
            key: 'web.service|/etc/systemd/system/multi-user.target.wants/web.service',
            unit: 'web.service',
            change: 'enabled',
            target: 'multi-user.target',
            link: '/etc/systemd/system/multi-user.target.wants/web.service',
          },
          {
            kind: 'sysctl',
            key: 'vm.swappiness',
            name: 'vm.swappiness',
            before: null,
            after: '10',
            file: '/etc/sysctl.d/60.conf',
          },
        ],
        [['/var/log/syslog', 'logs']],
      ),
    );
    d.excluded = [itemId('package', 'dpkg:tree:amd64')];
    const text = renderDiff(d);
    assert.match(text, /^Changes baseline → now: 6 items; 1 path filtered as noise \(logs 1\)\./);
    assert.ok(text.indexOf('Packages (1)') < text.indexOf('Files (3)'));
    assert.ok(text.indexOf('Files (3)') < text.indexOf('Services enabled, disabled, masked (1)'));
    assert.match(text, /\+ tree:amd64 installed 1\.0-1 \[excluded\]/);
    assert.match(text, /\/usr\/local\/bin\/tool modified \(content\).*\[binary\]/);
    assert.match(text, /\/etc\/ssl\/private\/k\.key .*\[sensitive\]/);
    assert.match(text, /^ {6}-old$/m);
    assert.match(text, /^ {6}\+new$/m);
    assert.match(text, /\+ web\.service enabled \(multi-user\.target\)/);
    assert.match(text, /~ vm\.swappiness = 10/);
    assert.match(text, /--show-noise/);
    d.noise = [{ path: '/var/log/syslog', rule: 'logs' }];
    assert.match(renderDiff(d), /Filtered as noise \(1\)\n {2}logs +\/var\/log\/syslog/);
  });
});

describe('the transport to the host program', () => {
  test('a real local run: the program and the request travel on stdin in one exec', async () => {
    const conn = new LocalConnection('local');
    const r = await runCollect(conn, { op: 'probe' }).catch((e: unknown) => e);
    // probe is not a diff: it answers with facts, which HostAnswer refuses as a diff result
    assert.ok(
      r instanceof FluidError && r.code === 'INTERNAL' && /unexpected shape/.test(r.message),
      String(r),
    );
    const bad = await runCollect(conn, { op: 'nope' }).catch((e: unknown) => e);
    assert.ok(
      bad instanceof FluidError && bad.code === 'VALIDATION' && /unknown operation/.test(bad.message),
    );
    assert.match(
      collectCommand(100, 60),
      /^PY=\/usr\/bin\/python3; .*timeout --kill-after=10 60 "\$PY" -c "import sys;exec\(compile\(sys\.stdin\.buffer\.read\(100\)/,
    );
  });

  test('no answer, or an error answer, becomes a clear error', async () => {
    const fake = (stdout: string, stderr = '', code = 1): HostConnection =>
      ({
        hostId: 'h',
        kind: 'ssh',
        closed: false,
        exec: async (): Promise<ExecResult> => ({
          code,
          signal: null,
          stdout: Buffer.from(stdout),
          stderr: Buffer.from(stderr),
          truncated: false,
          timedOut: false,
          durationMs: 1,
        }),
        spawn: () => {
          throw new Error('unused');
        },
        forwardOut: () => Promise.reject(new Error('unused')),
        close: () => {},
      }) as HostConnection;
    const none = await runCollect(fake('', 'python3: not found', 127), { op: 'diff' }).catch(
      (e: unknown) => e,
    );
    assert.ok(
      none instanceof FluidError && none.code === 'UNAVAILABLE' && /python3: not found/.test(none.message),
    );
    const err = await runCollect(
      fake(
        JSON.stringify({
          protocol: 1,
          ok: false,
          error: { code: 'NOT_FOUND', message: 'Snapshot x was not found' },
        }),
      ),
      { op: 'diff' },
    ).catch((e: unknown) => e);
    assert.ok(
      err instanceof FluidError && err.code === 'NOT_FOUND' && err.message === 'Snapshot x was not found',
    );
  });
});

describe('baseline step and preflight', () => {
  test('the baseline script freezes every file disk inside the sandbox dir and reports the layers', () => {
    const s = baselineScript('qemu:///system', 'fluid-x', '/var/lib/fluid/i/sandboxes/s1');
    assert.match(s, /snapshot-create-as "\$d" --disk-only --atomic --no-metadata --quiesce \$specs/);
    assert.match(s, /--diskspec \$t,file=\$dir\/\$t\.work\.qcow2,driver=qcow2/);
    assert.match(s, /is not in the sandbox's directory/);
    const b = parseBaselineOutput(
      'noise\n@@fluid-baseline@@ quiesced\nvda /d/vda.qcow2\nvdb /d/vdb.qcow2\n',
      '/d',
    );
    assert.deepEqual(b, {
      mode: 'quiesced',
      disks: [
        { target: 'vda', baseline: '/d/vda.qcow2', top: '/d/vda.work.qcow2' },
        { target: 'vdb', baseline: '/d/vdb.qcow2', top: '/d/vdb.work.qcow2' },
      ],
    });
    assert.throws(() => parseBaselineOutput('nothing', '/d'), /printed nothing usable/);
  });

  test('the preflight verdict names what is missing and how to install it', () => {
    const ok =
      'uid=0\nqemu-storage-daemon=yes\nlosetup=yes\nmount=yes\numount=yes\nunshare=yes\nfuse=yes\nloop=yes\npython=3.11';
    assert.equal(diffCheck(ok).status, 'pass');
    const missing = diffCheck(
      ok.replace('qemu-storage-daemon=yes', 'qemu-storage-daemon=no').replace('fuse=yes', 'fuse=no'),
    );
    assert.equal(missing.status, 'warn');
    assert.match(missing.detail, /qemu-storage-daemon, \/dev\/fuse/);
    assert.match(missing.advice!, /qemu-system-common/);
    assert.equal(diffCheck(ok.replace('python=3.11', 'python=3.7')).status, 'warn');
    assert.match(diffCheck(ok.replace('uid=0', 'uid=1000')).detail, /needs root/);
  });
});

describe('who decides what a change carries', () => {
  const core = testCore();
  after(() => core.dispose());
  const sandboxId = randomUUID();
  core.db
    .prepare(
      `INSERT INTO sandboxes (id, name, host_id, source_name, state, domain_name, domain_uuid, dir, vcpus, memory_mib, created_at, updated_at, created_by_door, created_by_id, timings, egress_allow)
       VALUES (?, 'sbx-sel', 'local', 'web', 'running', 'fluid-sbx', ?, '/nonexistent', 1, 512, ?, ?, 'test', 't', '{}', '[]')`,
    )
    .run(sandboxId, randomUUID(), new Date().toISOString(), new Date().toISOString());
  const ids = [itemId('file', '/etc/motd'), itemId('package', 'dpkg:tree:amd64')];

  test('agents, MCP clients and scripts are refused, and nothing changes', async () => {
    for (const actor of [
      { door: 'agent' as const, id: 'session-1' },
      { door: 'mcp' as const, id: 'claude' },
      { door: 'cli' as const, id: 'someone', interactive: false },
    ]) {
      const client = connectInProcess(core, actor);
      await assert.rejects(
        client.call('diff.select', { sandbox: 'sbx-sel', items: ids, included: false }),
        (e: FluidError) => e.code === 'DENIED' && /Only a person decides/.test(e.message),
      );
    }
    assert.deepEqual(core.diff.store.excluded(sandboxId), []);
  });

  test('a person excludes and includes again; choices persist per sandbox and are audited', async () => {
    const person = connectInProcess(core, { door: 'app', id: 'alice' });
    const r = await person.call('diff.select', { sandbox: 'sbx-sel', items: ids, included: false });
    assert.deepEqual(r.excluded, [...ids].sort());
    const again = await person.call('diff.select', { sandbox: sandboxId, items: [ids[0]!], included: true });
    assert.deepEqual(again.excluded, [ids[1]]);
    const audit = core.audit.list({ limit: 10, action: 'diff.exclude' });
    assert.equal(audit.entries[0]!.actor.id, 'alice');
    await assert.rejects(
      person.call('diff.select', { sandbox: 'sbx-sel', items: ['not-an-id'], included: false }),
      (e: FluidError) => e.code === 'VALIDATION',
    );
  });

  test('a sandbox without a baseline cannot be diffed, and says why', async () => {
    const person = connectInProcess(core, { door: 'app', id: 'alice' });
    await assert.rejects(
      person.call('diff.run', { sandbox: 'sbx-sel' }),
      (e: FluidError) => e.code === 'CONFLICT' && /has no baseline/.test(e.message),
    );
    await assert.rejects(
      person.call('diff.get', { sandbox: 'sbx-sel' }),
      (e: FluidError) => e.code === 'NOT_FOUND',
    );
  });

  test('the agent sees diff_sandbox as a read-only tool and has no tool that selects', () => {
    const tools = core.tools.info('read-only');
    const t = tools.find((x) => x.name === 'diff_sandbox');
    assert.ok(t && t.readOnly, 'diff_sandbox is offered in read-only mode');
    assert.ok(!core.tools.info('edit').some((x) => /select|exclude|include/.test(x.name)));
  });
});

test('every item kind of the contract parses (the schema is the one the host output is held to)', () => {
  assert.equal(DiffItemSchema.safeParse({ ...fileItem('/x'), id: itemId('file', '/x') }).success, true);
  const items: DiffItem[] = toItems(answer([fileItem('/x')]).items);
  assert.equal(items.length, 1);
});
