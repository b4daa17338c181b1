/**
 * Placement (placement.ts): the machine that has the source and the most memory free, records of one
 * machine counted once, a reason a person can read; the agent's create_sandbox defaults to its
 * session's host and source (no "Which host?" with two hosts); agent-made sandboxes get the shorter
 * session TTL; a session's links to what it made, with names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Host, Vm } from '../../../src/shared/contract/hosts.ts';
import { choosePlacement, gatherFacts, machines } from '../../../src/core/sandboxes/placement.ts';
import { sessionLinks } from '../../../src/core/agent/links.ts';
import { testCore } from '../../support/core.ts';
import type { FluidError } from '../../../src/shared/errors.ts';

function host(name: string, over: Partial<Host> = {}): Host {
  return {
    id: `id-${name}`,
    name,
    kind: 'ssh',
    address: name,
    port: 22,
    user: 'root',
    auth: { type: 'agent' },
    hostKey: null,
    libvirtUri: 'qemu:///system',
    storageDir: '/var/lib/fluid',
    createdAt: `2030-01-0${name.length % 9}T00:00:00Z`,
    lastCheck: null,
    sameMachineAs: [],
    ...over,
  };
}

function vm(name: string, hostId: string, memoryMiB = 1024): Vm {
  return {
    name,
    uuid: randomUUID(),
    state: 'shut off',
    running: false,
    vcpus: 1,
    memoryMiB,
    hasGuestAgent: true,
    fluid: null,
    hostId,
    hostName: hostId,
  } as unknown as Vm;
}

test('the machine with the source and the most free memory wins, and the reason says why', async () => {
  const kvm1 = host('kvm1');
  const kvm2 = host('kvm2');
  const kvm3 = host('kvm3');
  const facts = await gatherFacts([kvm1, kvm2, kvm3], 'web-01', {
    vms: async (id) => (id === 'id-kvm3' ? [vm('db', id)] : [vm('web-01', id, 1024)]),
    freeMemoryMiB: async (id) => ({ 'id-kvm1': 2048, 'id-kvm2': 6246, 'id-kvm3': 50_000 })[id] ?? null,
    pendingMiB: () => 0,
  });
  const { host: chosen, placement } = choosePlacement('web-01', facts);
  assert.equal(chosen.name, 'kvm2');
  assert.equal(placement.by, 'capacity');
  assert.equal(placement.score, 6246 - 1024);
  assert.equal(
    placement.reason,
    'placed on kvm2: has web-01, 6.1 GiB free (kvm1: 2.0 GiB free; kvm3: no web-01)',
  );
  // Memory already promised to sandboxes being created there counts against a machine.
  const busy = await gatherFacts([kvm1, kvm2], 'web-01', {
    vms: async (id) => [vm('web-01', id)],
    freeMemoryMiB: async (id) => (id === 'id-kvm1' ? 4096 : 6246),
    pendingMiB: (ids) => (ids.includes('id-kvm2') ? 4096 : 0),
  });
  assert.equal(choosePlacement('web-01', busy).host.name, 'kvm1');
});

test('records of one machine count once; an unreachable host is named; no source anywhere is a clear error', async () => {
  const local = host('local', { id: 'local', kind: 'local', sameMachineAs: ['lab-ssh'] });
  const twin = host('lab-ssh', { sameMachineAs: ['local'] });
  const far = host('far');
  assert.deepEqual(
    machines([twin, local, far]).map((m) => [m.host.name, m.twins.map((t) => t.name)]),
    [
      ['local', ['lab-ssh']],
      ['far', []],
    ],
  );
  const asked: string[] = [];
  const facts = await gatherFacts([local, twin, far], 'fluid-lab-web', {
    vms: async (id) => {
      asked.push(id);
      if (id === 'id-far') throw new Error('connect ECONNREFUSED');
      return [vm('fluid-lab-web', id)];
    },
    freeMemoryMiB: async () => 8192,
    pendingMiB: () => 0,
  });
  assert.deepEqual(asked.sort(), ['id-far', 'local'], 'the twin is not asked again');
  const { host: chosen, placement } = choosePlacement('fluid-lab-web', facts);
  assert.equal(chosen.name, 'local');
  assert.match(
    placement.reason,
    /^placed on local: has fluid-lab-web, 8\.0 GiB free \(lab-ssh: the same machine, counted once; far: unreachable \(connect ECONNREFUSED\)\)$/,
  );
  assert.deepEqual(
    placement.candidates.map((c) => c.host),
    ['local', 'lab-ssh', 'far'],
  );
  assert.throws(
    () =>
      choosePlacement(
        'nope',
        facts.map((f) => ({ ...f, hasSource: f.error ? null : false })),
      ),
    (e: FluidError) =>
      e.code === 'NOT_FOUND' &&
      /No registered host has a VM "nope" \(local: no nope; far: unreachable/.test(e.message),
  );
});

test("create_sandbox takes the session's host and source, and an agent's sandbox gets the session TTL", async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  // A second host: the old behaviour asked "Which host? 2 hosts are registered".
  core.db
    .prepare(
      `INSERT INTO hosts (id, name, kind, address, port, user, auth, libvirt_uri, created_at)
       VALUES ('h2', 'other', 'ssh', '192.0.2.1', 22, 'root', '{"type":"agent"}', 'qemu:///system', ?)`,
    )
    .run(new Date().toISOString());
  assert.equal(core.hosts.list().length, 2);
  const session = core.agent.store.insert({
    title: 'fix the web server',
    mode: 'edit',
    providerId: 'p',
    model: 'm',
    host: 'local',
    source: 'no-such-vm-here',
    maxSteps: 10,
    maxCostUsd: 1,
    createdBy: { door: 'test', id: 't' },
    owner: { pid: process.pid, instance: 'x' },
  });
  const actor = { door: 'agent' as const, id: session.id };
  const out = await core.tools.invoke(
    'create_sandbox',
    { ttl_minutes: 600 },
    { actor, sessionId: session.id, mode: 'edit', signal: new AbortController().signal },
  );
  assert.equal(out.isError, true);
  assert.doesNotMatch(out.content, /Which host/);
  // It went to the session's host with the session's source (which that host does not have).
  assert.match(out.content, /No VM "no-such-vm-here" on local/);
  const made = core.sandboxes.list({ includeDestroyed: true });
  assert.equal(made.length, 1);
  const sb = made[0]!;
  assert.equal(sb.hostName, 'local');
  assert.equal(sb.sourceName, 'no-such-vm-here');
  assert.equal(sb.placement?.by, 'session');
  assert.equal(sb.placement?.reason, "placed on local: the session's host");
  // Agents' sandboxes live at most the session TTL (60 min by default), whatever they ask.
  assert.equal(sb.ttlMinutes, core.settings.get().sandboxes.sessionTtlMinutes);
  assert.equal(sb.ttlMinutes, 60);
  // The sandbox links back to the session, with its title.
  assert.deepEqual(sb.session, { id: session.id, title: 'fix the web server', status: session.status });

  // The session links to it (and the audit rows about it), with names.
  const links = sessionLinks({ db: core.db, agent: core.agent, sandboxes: core.sandboxes }, session.id);
  assert.deepEqual(
    links.sandboxes.map((s) => [s.id, s.name, s.live]),
    [[sb.id, sb.name, false]],
  );
  const created = links.audit.find((a) => a.action === 'sandbox.create.start');
  assert.ok(created, JSON.stringify(links.audit));
  assert.equal(created.targetName, sb.name);
  assert.equal(created.actor, `agent:${session.id}`);
  assert.ok(links.auditTotal >= 2);

  // Without a session host, with a source no host has: a clear error naming what was checked.
  const s2 = core.agent.store.insert({
    title: 'nowhere',
    mode: 'edit',
    providerId: 'p',
    model: 'm',
    host: null,
    source: null,
    maxSteps: 10,
    maxCostUsd: 1,
    createdBy: { door: 'test', id: 't' },
    owner: { pid: process.pid, instance: 'x' },
  });
  const none = await core.tools.invoke(
    'create_sandbox',
    { source_vm: 'no-such-vm-here' },
    {
      actor: { door: 'agent', id: s2.id },
      sessionId: s2.id,
      mode: 'edit',
      signal: new AbortController().signal,
    },
  );
  assert.equal(none.isError, true);
  assert.match(
    none.content,
    /No registered host has a VM "no-such-vm-here" \(local: no no-such-vm-here; other: unreachable/,
  );
  const noSource = await core.tools.invoke(
    'create_sandbox',
    {},
    {
      actor: { door: 'agent', id: s2.id },
      sessionId: s2.id,
      mode: 'edit',
      signal: new AbortController().signal,
    },
  );
  assert.match(noSource.content, /Which source VM\?/);
});
