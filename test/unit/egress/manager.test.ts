/**
 * The sandbox side of egress (src/core/sandboxes/egress.ts) against a real core (SQLite, approvals,
 * audit, allowlists) and a fake host whose "proxy" the test scripts: every ask becomes (or reuses) a
 * high-risk approval named back to the proxy; an approval is applied once and never consulted again,
 * so a revoked destination needs a new one; a proxy that cannot serve a sandbox is its health problem
 * and a doctor failure, never a silent 403.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { testCore } from '../../support/core.ts';
import { EgressManager } from '../../../src/core/sandboxes/egress.ts';
import type { EgressHooks } from '../../../src/core/sandboxes/service.ts';
import type { HostService } from '../../../src/core/hosts/service.ts';
import type { ControlMessage, DecisionMessage } from '../../../src/core/egress/protocol.ts';
import type { Actor } from '../../../src/shared/rpc.ts';
import { FakeConn, type FakeProc } from './fake-host.ts';

const hooks: EgressHooks = {
  sync: (h) => mgr.sync(h),
  ensure: (h) => mgr.ensure(h),
  guestSetup: () => mgr.guestSetup(),
  health: (r) => mgr.health(r),
  doctor: () => mgr.doctor(),
};
const core = testCore({ egress: hooks });
const conn = new FakeConn();
const mgr = new EgressManager({
  hosts: {
    connection: async () => conn,
    get: (ref: string) => core.hosts.get(ref),
  } as unknown as HostService,
  sandboxes: () => core.sandboxes.store,
  approvals: core.approvals,
  audit: core.audit,
  bus: core.bus,
  log: core.log,
  allow: async (id, destination, actor) =>
    void (await core.sandboxes.setEgress(id, destination, true, actor)),
  pollMs: 3_600_000,
});
after(async () => {
  await mgr.close();
  await core.dispose();
});

const person: Actor = { door: 'test', id: 'person' };
const IP = '10.239.1.2';
const id = randomUUID();
const now = new Date().toISOString();
core.sandboxes.store.insert({
  id,
  name: 'sb-egress',
  host_id: 'local',
  source_name: 'src',
  base_id: null,
  state: 'running',
  domain_name: 'fluid-sb-egress',
  domain_uuid: randomUUID(),
  dir: '/nonexistent',
  vcpus: 1,
  memory_mib: 512,
  slot: 1,
  ip: IP,
  mac: '52:54:00:ef:00:01',
  ttl_minutes: 60,
  expires_at: new Date(Date.now() + 3_600_000).toISOString(),
  created_at: now,
  updated_at: now,
  created_by_door: 'test',
  created_by_id: 'person',
  start_path: null,
  start_path_reason: null,
  timings: '{}',
  host_key_fp: null,
  egress_allow: '[]',
  error: null,
  task_id: null,
  owner_pid: null,
  owner_instance: null,
});
const row = () => core.sandboxes.store.row(id);
const health = () => core.sandboxes.get(id).egressHealth;

let proxy: FakeProc;
/** Acknowledge every config the proxy gets, reporting `served` as what it serves for us. */
function autoAck(p: FakeProc, served: () => string[]) {
  let acked = 0;
  const loop = async () => {
    for (;;) {
      const msgs = await p.waitFor((m) => m.filter((x) => x.type === 'config').length > acked);
      const configs = msgs.filter(
        (x): x is Extract<ControlMessage, { type: 'config' }> => x.type === 'config',
      );
      for (const c of configs.slice(acked)) {
        p.emit({ type: 'routes', served: served(), conflicts: [] });
        p.emit({ type: 'configured', seq: c.seq, clients: served().length });
      }
      acked = configs.length;
    }
  };
  void loop();
}
async function decision(p: FakeProc, askId: string, host: string, port: number): Promise<DecisionMessage> {
  p.emit({ type: 'ask', id: askId, client: IP, sandbox: id, host, port, method: 'CONNECT' });
  const msgs = await p.waitFor((m) => m.some((x) => x.type === 'decision' && x.id === askId));
  return msgs.find((x): x is DecisionMessage => x.type === 'decision' && x.id === askId)!;
}

describe('the egress manager', () => {
  test('a proxy that cannot start is the sandbox health problem, with the reason', async () => {
    conn.onSpawn = (p) =>
      queueMicrotask(() => {
        p.emit({
          type: 'error',
          message:
            'cannot listen on 10.239.0.1:3128: Address already in use, and no Fluid egress proxy answers there (another program holds the port)',
        });
        p.exit(2);
      });
    await assert.rejects(mgr.sync('local'), /another program holds the port/);
    assert.equal(health()?.status, 'problem');
    assert.match(
      health()!.message!,
      /^Sandbox egress does not work: The egress proxy cannot listen on 10\.239\.0\.1:3128/,
    );
  });

  test('once served, healthy; a conflict or an unknown-client refusal is a problem until the proxy serves it again', async () => {
    let served = [IP];
    conn.onSpawn = (p) => {
      proxy = p;
      queueMicrotask(() => p.ready());
      autoAck(p, () => served);
    };
    await mgr.sync('local');
    const config = proxy.messages().findLast((m) => m.type === 'config');
    assert.deepEqual(config && config.type === 'config' && config.sandboxes, { [IP]: id });
    assert.deepEqual(health(), { status: 'ok', message: null });

    proxy.emit({
      type: 'routes',
      served: [],
      conflicts: [{ client: IP, sandbox: id, servedAs: 'their-sandbox' }],
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(health()?.status, 'problem');
    assert.match(health()!.message!, /holds 10\.239\.1\.2 for its sandbox their-sandbox/);

    served = [];
    proxy.emit({
      type: 'event',
      id: 'r1',
      client: IP,
      sandbox: null,
      host: 'example.com',
      port: 443,
      method: 'CONNECT',
      decision: 'deny',
      reason: 'unknown-client',
      bytesUp: 0,
      bytesDown: 0,
    });
    // the manager re-sends its allowlists at once; the proxy still does not serve it
    await proxy.waitFor((m) => m.filter((x) => x.type === 'config').length >= 2);
    await new Promise((r) => setImmediate(r));
    assert.equal(health()?.status, 'problem');
    assert.match(
      health()!.message!,
      /refused a request from this sandbox \(10\.239\.1\.2\) because it did not know the sandbox/,
    );
    const audited = core.audit
      .list({ limit: 20, target: id })
      .entries.find(
        (e) => e.action === 'egress.deny' && (e.data as { reason: string }).reason === 'unknown-client',
      );
    assert.ok(audited, 'audited against the sandbox');

    served = [IP];
    await mgr.sync('local');
    assert.deepEqual(health(), { status: 'ok', message: null });
  });

  test('an ask becomes one high-risk approval, named back to the proxy; applied once approved; a revoked destination needs a new one', async () => {
    const first = await decision(proxy, 'a1', 'example.com', 443);
    assert.equal(first.decision, 'pending');
    const approval = core.approvals.get(first.approval!);
    assert.equal(approval.status, 'pending');
    assert.equal(approval.risk, 'high');
    assert.equal(approval.kind, 'egress');
    assert.deepEqual(approval.subject, { sandboxId: id, destination: 'example.com:443', method: 'CONNECT' });
    assert.equal(
      (await decision(proxy, 'a2', 'example.com', 443)).approval,
      approval.id,
      'a retry reuses it',
    );

    core.approvals.decide(approval.id, 'approve', undefined, person);
    assert.deepEqual(
      JSON.parse(row().egress_allow),
      ['example.com:443'],
      'applied when the decision returns',
    );
    // the proxy may ask once more before its new allowlist arrives: the current allowlist answers
    assert.equal((await decision(proxy, 'a3', 'example.com', 443)).decision, 'allow');

    await core.sandboxes.setEgress(id, 'example.com:443', false, person);
    assert.deepEqual(JSON.parse(row().egress_allow), []);
    const again = await decision(proxy, 'a4', 'example.com', 443);
    assert.equal(again.decision, 'pending', 'the old approval does not bring it back');
    assert.notEqual(again.approval, approval.id);
  });

  test('an exact IP destination is asked for with its warning', async () => {
    const d = await decision(proxy, 'a5', '10.0.0.5', 5432);
    assert.match(
      core.approvals.get(d.approval!).detail,
      /WARNING: 10\.0\.0\.5:5432 is a private network address/,
    );
  });

  test('fluid doctor asks the host which sandboxes its proxy serves', async () => {
    let clients: Record<string, string> = {};
    const prior = conn.onSpawn;
    conn.onSpawn = (p) => {
      if (!p.command.includes("'--probe'")) return prior?.(p);
      queueMicrotask(() => {
        p.emit({
          type: 'status',
          id: 'probe',
          running: true,
          listen: '10.239.0.1:3128',
          pid: 9,
          controllers: 2,
          clients,
        });
        p.exit(0);
      });
    };
    const bad = (await mgr.doctor()).find((c) => c.id === 'egress:local');
    assert.equal(bad?.status, 'fail');
    assert.match(bad!.detail, /sb-egress \(10\.239\.1\.2\): not served/);
    clients = { [IP]: 'someone-elses' };
    const taken = (await mgr.doctor()).find((c) => c.id === 'egress:local');
    assert.match(taken!.detail, /held for another Fluid's sandbox someone-elses/);
    clients = { [IP]: id };
    const ok = (await mgr.doctor()).find((c) => c.id === 'egress:local');
    assert.equal(ok?.status, 'pass');
    assert.match(ok!.detail, /serves all 1 sandbox\b/);
    conn.onSpawn = prior;
  });

  test('a sandbox that is gone withdraws its open egress requests', async () => {
    const pending = core.approvals.list({ status: 'pending', sandboxId: id, limit: 50 });
    assert.ok(pending.length >= 1);
    core.sandboxes.store.update(id, { state: 'destroyed' });
    core.bus.emit('sandboxes.changed', { sandboxId: id, state: 'destroyed' });
    assert.equal(core.approvals.list({ status: 'pending', sandboxId: id, limit: 50 }).length, 0);
  });
});
