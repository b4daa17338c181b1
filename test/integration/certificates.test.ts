/**
 * Sandbox certificates on the lab: each sandbox's sshd accepts only its own principal, and only from
 * the address Fluid connects from (the sandbox network's gateway on the host). A certificate issued
 * for sandbox A is refused by sandbox B, and refused by A itself from any other address.
 *
 * Two sandboxes: A boots cold, B is restored from the warm template A's base leaves behind, so both
 * ways a clone gets its identity are covered. Logins are tried with OpenSSH's own client on the lab
 * host (the jump Fluid uses), so nothing of Fluid's SSH stack is between the certificate and sshd.
 * Creating sandboxes boots VMs: run under the VM lock (flock /tmp/fluid-vm.lock).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labHost, requireLab } from '../support/lab.ts';
import { testCore } from '../support/core.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { sandboxLogin, sandboxPrincipal, FLUID_USER } from '../../src/core/sandboxes/identity.ts';
import { BRIDGE, GATEWAY } from '../../src/core/sandboxes/network.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';
import type { HostConnection } from '../../src/core/hosts/connection.ts';

const core = testCore({ egress: null });
const client = connectInProcess(core, { door: 'test', id: 'certificates-it' });
const made: string[] = [];
/** An address on the sandbox bridge that is not Fluid's: "somewhere else" on the same network. */
const ELSEWHERE = '10.239.0.77';
let a: Sandbox;
let b: Sandbox;
let conn: HostConnection;
let hostId = '';
let addedAddress = false;

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

async function create(input: Parameters<typeof client.call<'sandboxes.create'>>[1]): Promise<Sandbox> {
  const task = await client.call('sandboxes.create', input);
  made.push(task.target!);
  const t = await finish(task);
  assert.equal(t.status, 'succeeded', `create failed: ${JSON.stringify(t.error)}`);
  return t.result as Sandbox;
}

async function onHost(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await conn.exec(script, { timeoutMs: 120_000 });
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Log into `ip` as Fluid's user (or `user`) with OpenSSH on the host, with this key and certificate. */
async function login(
  ip: string,
  cert: { privateKey: string; certificate: string },
  bind?: string,
  user = FLUID_USER,
): Promise<{ ok: boolean; out: string }> {
  const r = await onHost(`set -u
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
printf '%s' '${b64(cert.privateKey)}' | base64 -d > "$d/id"; chmod 600 "$d/id"
printf '%s' '${b64(cert.certificate)}' | base64 -d > "$d/id-cert.pub"
ssh -F /dev/null -i "$d/id" -o CertificateFile="$d/id-cert.pub" -o IdentitiesOnly=yes -o BatchMode=yes \\
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=30 -o LogLevel=ERROR \\
  ${bind ? `-b ${bind}` : ''} ${user}@${ip} 'echo "logged-in $(hostname)"' 2>&1
echo "rc=$?"`);
  const out = r.stdout + r.stderr;
  return { ok: /rc=0\s*$/.test(out) && /logged-in /.test(out), out };
}

function certFor(sandboxId: string, o: { principal?: string; sourceAddress?: string | null } = {}) {
  const login = sandboxLogin(sandboxId, GATEWAY);
  return core.ca.issue({
    principals: [o.principal ?? login.principal],
    validitySeconds: 120,
    keyId: `it-cert:${sandboxId}`,
    purpose: 'test',
    sandboxId,
    ...(o.sourceAddress === null ? {} : { sourceAddress: o.sourceAddress ?? login.sourceAddress }),
  });
}

before(async () => {
  const lab = await requireLab();
  await client.call('hosts.add', labHost(lab));
  hostId = core.hosts.get('lab').id;
  conn = await core.hosts.connection(hostId);
  // A leaves a warm template behind, so that B is a restored clone.
  core.sandboxes.backgroundTemplates = true;
  a = await create({ host: 'lab', source: 'fluid-lab-web', name: 'it-cert-a', start: 'auto' });
  await core.sandboxes.settleTemplates();
  b = await create({ host: 'lab', source: 'fluid-lab-web', name: 'it-cert-b', start: 'restore' });
  assert.equal(a.startPath, 'cold');
  assert.equal(b.startPath, 'restore', 'B comes from the warm template');
  const add = await onHost(`ip addr add ${ELSEWHERE}/32 dev ${BRIDGE}`);
  assert.equal(add.code, 0, add.stderr);
  addedAddress = true;
});

after(async () => {
  if (addedAddress) await onHost(`ip addr del ${ELSEWHERE}/32 dev ${BRIDGE}`).catch(() => {});
  for (const id of made) await client.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
  await core.sandboxes.settleTemplates();
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  await core.dispose();
});

describe('a principal per sandbox, valid from one place', () => {
  test("each sandbox's sshd names only its own principal, from the gateway; Fluid's own logins work", async () => {
    for (const s of [a, b]) {
      const r = await client.call('sandboxes.exec', {
        sandbox: s.id,
        command: 'cat /etc/ssh/fluid/principals_fluid',
      });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, `from="${GATEWAY}" ${sandboxPrincipal(s.id)}\n`);
    }
    const issued = core.db
      .prepare('SELECT principals, source_address, sandbox_id FROM ssh_certificates ORDER BY serial DESC')
      .all() as Array<{ principals: string; source_address: string | null; sandbox_id: string }>;
    assert.ok(issued.length >= 2);
    for (const row of issued) {
      assert.deepEqual(JSON.parse(row.principals), [sandboxPrincipal(row.sandbox_id)]);
      assert.equal(row.source_address, `${GATEWAY}/32`);
    }
  });

  test("A's certificate opens A from the gateway, and nothing else", async () => {
    const forA = certFor(a.id);
    const ok = await login(a.ip!, forA);
    assert.ok(ok.ok, ok.out);
    assert.match(ok.out, /logged-in it-cert-a/);

    const atB = await login(b.ip!, forA);
    assert.equal(atB.ok, false, atB.out);
    assert.match(atB.out, /Permission denied/, 'B answered and refused the certificate');

    const fromElsewhere = await login(a.ip!, forA, ELSEWHERE);
    assert.equal(fromElsewhere.ok, false, fromElsewhere.out);
    assert.match(fromElsewhere.out, /Permission denied/, 'A answered and refused the certificate');
  });

  test('root commands log in as root with the same principal, with no sudo each', async () => {
    // The command names from the script's shell up to init: sudo would show up there.
    const ancestry =
      'id -u; p=$$; while [ "$p" -gt 1 ]; do read -r c < /proc/$p/comm; echo "$c"; set -- $(sed "s/.*) //" /proc/$p/stat); p=$2; done';
    for (const s of [a, b]) {
      const r = await client.call('sandboxes.exec', { sandbox: s.id, command: ancestry });
      assert.equal(r.exitCode, 0, r.stderr);
      const [uid, ...names] = r.stdout.trim().split('\n');
      assert.equal(uid, '0');
      assert.ok(names.includes('sshd') && !names.includes('sudo'), names.join(' < '));
      const p = await client.call('sandboxes.exec', {
        sandbox: s.id,
        command: 'cat /etc/ssh/fluid/principals_root',
      });
      assert.equal(p.stdout, `from="${GATEWAY}" ${sandboxPrincipal(s.id)}\n`);
    }
  });

  test('root on a sandbox opens with its own certificate from the gateway alone', async () => {
    const forA = certFor(a.id);
    const ok = await login(a.ip!, forA, undefined, 'root');
    assert.ok(ok.ok, ok.out);
    for (const [what, r] of [
      ['B with A’s certificate', await login(b.ip!, forA, undefined, 'root')],
      ['A from elsewhere', await login(a.ip!, forA, ELSEWHERE, 'root')],
      [
        'A from elsewhere, without source-address',
        await login(a.ip!, certFor(a.id, { sourceAddress: null }), ELSEWHERE, 'root'),
      ],
      [
        'A with the shared principal',
        await login(a.ip!, certFor(a.id, { principal: FLUID_USER }), undefined, 'root'),
      ],
    ] as const) {
      assert.equal(r.ok, false, `${what}: ${r.out}`);
      assert.match(r.out, /Permission denied/, what);
    }
  });

  test('the guest refuses other addresses even for a certificate without source-address', async () => {
    const unscoped = certFor(b.id, { sourceAddress: null });
    const fromGateway = await login(b.ip!, unscoped);
    assert.ok(fromGateway.ok, fromGateway.out);
    const fromElsewhere = await login(b.ip!, unscoped, ELSEWHERE);
    assert.equal(fromElsewhere.ok, false, fromElsewhere.out);
    assert.match(fromElsewhere.out, /Permission denied/);
  });

  test('a sandbox whose principals file still says the shared principal gets its own back at the next start', async () => {
    // What a sandbox made by an earlier version has: the shared principal, from anywhere.
    const set = await client.call('sandboxes.exec', {
      sandbox: b.id,
      command: "printf 'fluid\\n' > /etc/ssh/fluid/principals_fluid && sync",
    });
    assert.equal(set.exitCode, 0, set.stderr);
    assert.equal((await login(b.ip!, certFor(b.id))).ok, false, 'its own principal is refused now');
    await client.call('sandboxes.stop', { sandbox: b.id, force: true });
    const started = await finish(await client.call('sandboxes.start', { sandbox: b.id }));
    assert.equal(started.status, 'succeeded', JSON.stringify(started.error));
    const r = await client.call('sandboxes.exec', {
      sandbox: b.id,
      command: 'cat /etc/ssh/fluid/principals_fluid',
    });
    assert.equal(r.stdout, `from="${GATEWAY}" ${sandboxPrincipal(b.id)}\n`);
    const shared = await login(b.ip!, certFor(b.id, { principal: FLUID_USER }));
    assert.equal(shared.ok, false, shared.out);
  });

  test("the old shared principal 'fluid' opens neither sandbox", async () => {
    for (const s of [a, b]) {
      const shared = certFor(s.id, { principal: FLUID_USER });
      const r = await login(s.ip!, shared);
      assert.equal(r.ok, false, r.out);
      assert.match(r.out, /Permission denied/);
    }
  });
});
