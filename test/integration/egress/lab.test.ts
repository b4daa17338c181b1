/**
 * Sandbox egress for real on the lab: real sandboxes (libvirt, TCG), the real proxy on the host,
 * requests made from inside the guests with curl and python, decisions through the core's approvals.
 *
 * - An agent cannot widen its reach: destinations it passes at creation (metadata, the host's
 *   loopback and own address, a mirror) become approval requests and none is reachable.
 * - Names that resolve to loopback or private addresses stay blocked though a person allowlisted
 *   them; a person's exact IP entry opens that address (and carries a warning).
 * - A refused request says why, naming the approval; approving from the CLI (a person on a
 *   terminal) is followed by the request succeeding; a revoked destination is refused next time.
 * - One machine registered as two hosts (local, and over SSH): one proxy serves both.
 *
 * Run under the VM lock: flock /tmp/fluid-vm.lock node --test test/integration/egress/lab.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labHost, requireLab, type Lab } from '../../support/lab.ts';
import { testCore } from '../../support/core.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import type { Sandbox } from '../../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../../src/shared/contract/tasks.ts';
import type { Actor } from '../../../src/shared/rpc.ts';

let lab: Lab;
const core = testCore();
const person: Actor = { door: 'test', id: 'egress-lab' };
const client = connectInProcess(core, person);
const agent: Actor = { door: 'agent', id: 'ses_egress_lab' };
const made: string[] = [];
const PROXY = 'http://10.239.0.1:3128';
const HOSTS_MARK = '# fluid-egress-test';
let hostAddress = '';
let a: Sandbox;
let b: Sandbox;

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

async function exec(sb: Sandbox, command: string) {
  return client.call('sandboxes.exec', { sandbox: sb.id, command, timeoutSeconds: 120 });
}

/** A plain HTTP request from inside the guest through the proxy: status line, headers, body. */
async function httpFrom(sb: Sandbox, url: string) {
  const r = await exec(sb, `curl -sS -i --max-time 60 --noproxy '' -x ${PROXY} '${url}'`);
  const [head = '', ...rest] = r.stdout.split('\r\n\r\n');
  const lines = head.split('\r\n');
  return { status: lines[0] ?? '', head, body: rest.join('\r\n\r\n'), raw: r.stdout + r.stderr };
}

/** CONNECT from inside the guest: the proxy's status line and the first line the tunnel carries. */
async function connectFrom(sb: Sandbox, target: string) {
  const py = [
    'import socket',
    "s = socket.create_connection(('10.239.0.1', 3128), timeout=60)",
    `s.sendall(b'CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n')`,
    "f = s.makefile('rb')",
    "print(f.readline().decode('latin-1').strip())",
    "while f.readline() not in (b'\\r\\n', b''): pass",
    "print(f.readline().decode('latin-1').strip())",
  ].join('\n');
  const r = await exec(sb, `python3 - <<'PY'\n${py}\nPY`);
  const [status = '', first = ''] = r.stdout.split('\n');
  return { status, first, raw: r.stdout + r.stderr };
}

const approvalsFor = async (sb: Sandbox, status: 'pending' | 'approved' = 'pending') =>
  (await client.call('approvals.list', { status, sandboxId: sb.id })).filter((x) => x.kind === 'egress');
const destinationOf = (x: { subject: unknown }) => (x.subject as { destination: string }).destination;

/** Resolves when the sandbox's row changed after its proxy configuration was applied. */
function sandboxChanged(sb: Sandbox): Promise<void> {
  return new Promise((resolve) => {
    const off = core.bus.subscribe('sandboxes.changed', (e) => {
      if (e.sandboxId === sb.id) {
        off();
        resolve();
      }
    });
  });
}

async function onHost(command: string): Promise<string> {
  const conn = await core.hosts.connection('lab');
  const r = await conn.exec(command, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr.toString());
  return r.stdout.toString();
}

const restoreHosts = () =>
  onHost(
    `grep -v '${HOSTS_MARK}$' /etc/hosts > /etc/hosts.fluid-egress-test; cat /etc/hosts.fluid-egress-test > /etc/hosts; rm -f /etc/hosts.fluid-egress-test`,
  );

before(async () => {
  lab = await requireLab();
  await client.call('hosts.add', labHost(lab));
  for (const host of ['lab', 'local']) {
    const check = await finish(await client.call('hosts.check', { host }));
    assert.equal(check.status, 'succeeded', JSON.stringify(check.error));
  }
  // an address of the host itself that is neither loopback nor the sandbox bridge
  hostAddress =
    (await onHost("ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1"))
      .split('\n')
      .find((x) => x && !x.startsWith('10.239.')) ?? '';
  assert.ok(hostAddress, 'the lab host has a global IPv4 address');
  await onHost(
    `printf '127.0.0.1 fluid-egress-loop.test ${HOSTS_MARK}\\n192.168.122.12 fluid-egress-private.test ${HOSTS_MARK}\\n' >> /etc/hosts`,
  );
});

after(async () => {
  await restoreHosts().catch(() => {});
  for (const id of made) await client.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
  for (const host of ['lab', 'local']) await client.call('bases.prune', { host }).catch(() => {});
  await core.dispose();
});

describe('egress on the lab', () => {
  test('create_sandbox from an agent with allow [metadata, loopback, a host address, a mirror] raises approvals, and nothing is reachable', async () => {
    const asked = ['169.254.169.254:80', '127.0.0.1:22', `${hostAddress}:22`, 'deb.debian.org:80'];
    const out = await core.tools.invoke(
      'create_sandbox',
      { source_vm: 'fluid-lab-web', host: 'lab', name: 'egress-agent', allow: asked },
      { actor: agent, sessionId: null, mode: 'edit', signal: new AbortController().signal },
    );
    assert.equal(out.isError, false, out.content);
    a = out.data as Sandbox;
    made.push(a.id);
    assert.deepEqual(a.egressAllow, [], 'the agent widened nothing');
    assert.match(out.content, /egress_awaiting_approval/);
    const pending = await approvalsFor(a);
    assert.deepEqual(pending.map(destinationOf).sort(), [...asked].sort());
    assert.ok(pending.every((x) => x.risk === 'high' && x.requestedBy.door === 'agent'));

    const meta = await httpFrom(a, 'http://169.254.169.254/latest/meta-data/');
    assert.match(
      meta.status,
      /^HTTP\/1\.1 403 Fluid: 169\.254\.169\.254:80 blocked - it is a cloud metadata address/,
      meta.raw,
    );
    for (const target of ['127.0.0.1:22', `${hostAddress}:22`]) {
      const t = await connectFrom(a, target);
      assert.match(t.status, /^HTTP\/1\.1 403 Fluid: .* blocked - it is /, `${target}: ${t.raw}`);
      assert.doesNotMatch(t.first, /SSH-/);
    }
    const mirror = await httpFrom(a, 'http://deb.debian.org/debian/dists/bookworm/Release');
    const mirrorApproval = pending.find((x) => destinationOf(x) === 'deb.debian.org:80')!;
    assert.equal(
      mirror.status,
      `HTTP/1.1 403 Fluid: approval ${mirrorApproval.id} pending for deb.debian.org:80 - a person must approve`,
      mirror.raw,
    );
    assert.match(mirror.body, /a person must approve it in Fluid/);
    assert.equal((await approvalsFor(a)).length, 4, 'the retry reused the pending request');
  });

  test('names that resolve to loopback or a private network stay blocked though a person allowlisted them; an exact IP entry opens the address', async () => {
    for (const d of [
      'localhost:22',
      'fluid-egress-loop.test:22',
      'fluid-egress-private.test:22',
      '192.168.122.12:22',
    ])
      await client.call('sandboxes.egressAllow', { sandbox: a.id, destination: d });
    const loop = await connectFrom(a, 'localhost:22');
    assert.equal(
      loop.status,
      'HTTP/1.1 403 Fluid: localhost:22 blocked - localhost resolves to 127.0.0.1, a loopback address',
      loop.raw,
    );
    const custom = await connectFrom(a, 'fluid-egress-loop.test:22');
    assert.match(
      custom.status,
      /403 Fluid: fluid-egress-loop\.test:22 blocked - fluid-egress-loop\.test resolves to 127\.0\.0\.1, a loopback address/,
      custom.raw,
    );
    const priv = await connectFrom(a, 'fluid-egress-private.test:22');
    assert.match(
      priv.status,
      /403 Fluid: .* resolves to 192\.168\.122\.12, a private network address/,
      priv.raw,
    );
    const exact = await connectFrom(a, '192.168.122.12:22');
    assert.equal(exact.status, 'HTTP/1.1 200 Connection established', exact.raw);
    assert.match(exact.first, /^SSH-2\.0-/, 'the exact address a person allowed is reachable');
    const warnings = (await client.call('sandboxes.get', { sandbox: a.id })).egressWarnings ?? [];
    assert.deepEqual(
      warnings.map((w) => w.destination),
      ['192.168.122.12:22'],
    );
    assert.match(warnings[0]!.warning, /private network address/);
    await client.call('sandboxes.egressRevoke', { sandbox: a.id, destination: '192.168.122.12:22' });
  });

  test('approving an egress destination from the CLI is followed by the request succeeding; a revoked destination is refused on the next request', async () => {
    const approval = (await approvalsFor(a)).find((x) => destinationOf(x) === 'deb.debian.org:80')!;
    // what the CLI does for a person on a terminal: a terminal confirmation made for exactly this decision
    const cli: Actor = { door: 'cli', id: 'alice', interactive: true };
    const presence = await core.presence.verify(cli, core.approvals.purpose(approval.id, 'approve'), {
      kind: 'terminal',
    });
    const applied = sandboxChanged(a);
    const decided = core.approvals.decide(approval.id, 'approve', undefined, cli, presence);
    assert.equal(decided.status, 'approved');
    assert.ok(
      (await client.call('sandboxes.get', { sandbox: a.id })).egressAllow.includes('deb.debian.org:80'),
      'applied when the decision returns',
    );
    await applied;
    const ok = await httpFrom(a, 'http://deb.debian.org/debian/dists/bookworm/Release');
    assert.equal(ok.status, 'HTTP/1.1 200 OK', ok.raw);
    assert.match(ok.body, /^Origin: Debian/m);

    await client.call('sandboxes.egressRevoke', { sandbox: a.id, destination: 'deb.debian.org:80' });
    const again = await httpFrom(a, 'http://deb.debian.org/debian/dists/bookworm/Release');
    assert.match(
      again.status,
      /^HTTP\/1\.1 403 Fluid: approval (\S+) pending for deb\.debian\.org:80 - a person must approve$/,
      again.raw,
    );
    const fresh = /approval (\S+) pending/.exec(again.status)![1];
    assert.notEqual(fresh, approval.id, 'a new request: the old approval does not bring it back');
    assert.equal((await client.call('approvals.get', { id: fresh! })).status, 'pending');
  });

  test('one machine registered as two hosts: one proxy serves the sandboxes of both, each raises its own approvals', async () => {
    const hosts = await client.call('hosts.list', {});
    assert.deepEqual(hosts.find((h) => h.name === 'lab')?.sameMachineAs, ['local']);
    assert.deepEqual(hosts.find((h) => h.name === 'local')?.sameMachineAs, ['lab']);
    // the host checked second learned it was the first one again
    const check = (await client.call('hosts.get', { host: 'local' })).lastCheck;
    const same = check?.checks.find((c) => c.id === 'same-machine');
    assert.equal(same?.status, 'warn');
    assert.match(same?.detail ?? '', /This is the same libvirt as "lab"/);

    const task = await client.call('sandboxes.create', {
      host: 'local',
      source: 'fluid-lab-web',
      name: 'egress-local',
      allow: ['deb.debian.org'],
    });
    made.push(task.target!);
    const t = await finish(task);
    assert.equal(t.status, 'succeeded', JSON.stringify(t.error));
    b = t.result as Sandbox;
    await client.call('sandboxes.egressAllow', { sandbox: a.id, destination: 'deb.debian.org' });

    for (const sb of [a, b]) {
      const ok = await httpFrom(sb, 'http://deb.debian.org/debian/dists/bookworm/Release');
      assert.equal(ok.status, 'HTTP/1.1 200 OK', `${sb.name}: ${ok.raw}`);
      const other = await httpFrom(sb, 'http://registry.npmjs.org/');
      assert.match(
        other.status,
        /^HTTP\/1\.1 403 Fluid: approval \S+ pending for registry\.npmjs\.org:80/,
        `${sb.name}: ${other.raw}`,
      );
      assert.ok(
        (await approvalsFor(sb)).some((x) => destinationOf(x) === 'registry.npmjs.org:80'),
        `${sb.name} raised its own approval`,
      );
      assert.deepEqual((await client.call('sandboxes.get', { sandbox: sb.id })).egressHealth, {
        status: 'ok',
        message: null,
      });
    }
    const doctor = await client.call('system.doctor', {});
    for (const host of ['lab', 'local']) {
      const c = doctor.checks.find((x) => x.id === `egress:${host}`);
      assert.equal(c?.status, 'pass', JSON.stringify(c));
    }
  });
});
