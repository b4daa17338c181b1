/**
 * EgressController against a fake host: the fake "proxy" is scripted by the test through the
 * process's stdin/stdout, so this checks the controller's side of the protocol and its lifecycle.
 * Time is a fake clock (node:test mock timers) wherever it matters; waits are on events.
 */
import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { FakeConn } from './fake-host.ts';
import {
  EgressController,
  PYTHON_MISSING_MESSAGE,
  proxyCommand,
  type EgressControllerOptions,
  type EgressEvent,
  type EgressRequest,
} from '../../../src/core/egress/controller.ts';
import { proxyScript } from '../../../src/core/egress/proxy-script.ts';
import { FluidError } from '../../../src/shared/errors.ts';

/** Let every queued stream event, microtask and immediate run (no clock involved). */
async function flush(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A fake clock for setTimeout/setInterval/Date; `tick` advances it and lets the effects run. */
function fakeClock() {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  return {
    async tick(ms: number): Promise<void> {
      mock.timers.tick(ms);
      await flush();
    },
  };
}

afterEach(() => mock.timers.reset());

const quietLog = { debug() {}, info() {}, warn() {}, error() {} };

function setup(over: Partial<EgressControllerOptions> = {}) {
  const conn = new FakeConn();
  const asked: EgressRequest[] = [];
  const signals: AbortSignal[] = [];
  const events: EgressEvent[] = [];
  const closes: string[] = [];
  const ctl = new EgressController({
    conn,
    listenAddress: '10.239.0.1',
    port: 3128,
    decide: async (req, signal) => {
      asked.push(req);
      signals.push(signal);
      return 'allow';
    },
    onEvent: (e) => events.push(e),
    onClose: (r) => closes.push(r),
    log: quietLog,
    heartbeatMs: 0,
    restartDelayMs: { min: 10, max: 40 },
    ...over,
  });
  return { conn, ctl, asked, signals, events, closes };
}

async function started(over: Partial<EgressControllerOptions> = {}) {
  const s = setup(over);
  s.conn.onSpawn = (p) => queueMicrotask(() => p.ready());
  await s.ctl.start();
  const p = s.conn.procs[0]!;
  return { ...s, p };
}

describe('EgressController', () => {
  test('start sends the script, then the config, and resolves once the proxy is ready', async () => {
    const { ctl, conn } = setup();
    ctl.update({ '10.239.0.5': ['deb.debian.org'] }, { '10.239.0.5': 'sb1' });
    const starting = ctl.start();
    const p = await conn.nthSpawn(1);
    await p.waitFor((m) => m.length >= 1);
    const { script, declared, messages } = p.parsed();
    assert.equal(script, proxyScript());
    assert.equal(declared, Buffer.byteLength(proxyScript()));
    assert.deepEqual(messages[0], {
      type: 'config',
      seq: 1,
      allow: { '10.239.0.5': ['deb.debian.org'] },
      sandboxes: { '10.239.0.5': 'sb1' },
    });
    assert.equal(ctl.running, false);
    p.ready();
    assert.deepEqual(await starting, { listen: '10.239.0.1:3128' });
    assert.equal(ctl.running, true);
    assert.equal(ctl.listen, '10.239.0.1:3128');
    assert.match(p.command, /command -v python3/);
    assert.match(p.command, /'--listen' '10\.239\.0\.1' '--port' '3128'/);
    assert.doesNotMatch(p.command, /allow-loopback/);
    assert.deepEqual(await ctl.start(), { listen: '10.239.0.1:3128' }, 'start is idempotent');
    assert.equal(conn.procs.length, 1);
    await ctl.stop();
  });

  test('python3 missing on the host: UNAVAILABLE with the install hint', async () => {
    const { ctl, conn } = setup();
    conn.onSpawn = (p) =>
      queueMicrotask(() => {
        p.stderr.write('fluid-egress: python3 not found\n');
        p.exit(127);
      });
    await assert.rejects(
      ctl.start(),
      (e: unknown) =>
        e instanceof FluidError && e.code === 'UNAVAILABLE' && e.message === PYTHON_MISSING_MESSAGE,
    );
    assert.equal(ctl.running, false);
    assert.equal(ctl.state, 'stopped');
  });

  test('python older than 3.9 and a port in use are UNAVAILABLE with the reason', async () => {
    const a = setup();
    a.conn.onSpawn = (p) =>
      queueMicrotask(() => {
        p.stderr.write('fluid-egress: Python 3.9 or newer is required, found 3.6\n');
        p.exit(1);
      });
    await assert.rejects(
      a.ctl.start(),
      (e: unknown) => e instanceof FluidError && e.code === 'UNAVAILABLE' && /3\.6/.test(e.message),
    );
    const b = setup();
    b.conn.onSpawn = (p) =>
      queueMicrotask(() => {
        p.emit({ type: 'error', message: 'cannot listen on 10.239.0.1:3128: Address already in use' });
        p.exit(2);
      });
    await assert.rejects(
      b.ctl.start(),
      (e: unknown) =>
        e instanceof FluidError && e.code === 'UNAVAILABLE' && /Address already in use/.test(e.message),
    );
  });

  test('a proxy that never gets ready times out and is killed', async () => {
    const clock = fakeClock();
    const { ctl, conn } = setup({ startTimeoutMs: 100 });
    const starting = assert.rejects(
      ctl.start(),
      (e: unknown) => e instanceof FluidError && e.code === 'TIMEOUT',
    );
    await conn.nthSpawn(1);
    await clock.tick(99);
    assert.equal(conn.procs[0]!.killed, false, 'not before the start timeout');
    await clock.tick(1);
    await starting;
    assert.equal(conn.procs[0]!.killed, true);
    await clock.tick(60_000);
    assert.equal(conn.procs.length, 1, 'a failed start is not restarted behind the caller');
    assert.equal(ctl.state, 'stopped');
  });

  test('update sends a full replacement config, dropping invalid entries', async () => {
    const { ctl, p } = await started();
    ctl.update({ '10.239.0.5': ['pypi.org', 'not a host', '*.example.com:8443'] }, { '10.239.0.5': 'sb1' });
    const msgs = await p.waitFor((m) => m.length >= 2);
    assert.deepEqual(msgs[1], {
      type: 'config',
      seq: 2,
      allow: { '10.239.0.5': ['pypi.org', '*.example.com:8443'] },
      sandboxes: { '10.239.0.5': 'sb1' },
    });
    await ctl.stop();
  });

  test('update resolves once the proxy acknowledges it (or at once when no proxy runs)', async () => {
    const idle = setup();
    await idle.ctl.update({}, {});
    const { ctl, p } = await started();
    let done = false;
    const pending = ctl.update({}, { '10.239.0.5': 'sb1' }).then(() => (done = true));
    const later = ctl.update({}, { '10.239.0.5': 'sb2' });
    await p.waitFor((m) => m.length >= 3);
    await flush();
    assert.equal(done, false, 'not before the acknowledgement');
    p.emit({ type: 'configured', seq: 3, clients: 1 });
    await pending;
    await later;
    const third = ctl.update({}, {});
    p.exit(1);
    await third;
    await ctl.stop();
  });

  test('an ask goes to decide with the sandbox id, and its answer goes back', async () => {
    const { ctl, p, asked } = await started();
    ctl.update({}, { '10.239.0.5': 'sb1' });
    p.emit({
      type: 'ask',
      id: 'a1',
      client: '10.239.0.5',
      sandbox: 'sb1',
      host: 'pypi.org',
      port: 443,
      method: 'CONNECT',
    });
    const msgs = await p.waitFor((m) => m.some((x) => x.type === 'decision'));
    assert.deepEqual(asked, [
      { sandboxId: 'sb1', client: '10.239.0.5', host: 'pypi.org', port: 443, method: 'CONNECT' },
    ]);
    assert.deepEqual(
      msgs.find((x) => x.type === 'decision'),
      { type: 'decision', id: 'a1', decision: 'allow' },
    );
    await ctl.stop();
  });

  test('decide failing or answering nonsense counts as deny; an unmapped client is denied without asking', async () => {
    let n = 0;
    const { ctl, p, asked } = await started({
      decide: async (req) => {
        asked.push(req);
        if (++n === 1) throw new Error('approvals store down');
        return 'maybe' as 'allow';
      },
    });
    ctl.update({}, { '10.239.0.5': 'sb1' });
    p.emit({ type: 'ask', id: 'a1', client: '10.239.0.5', host: 'x.org', port: 443, method: 'CONNECT' });
    p.emit({ type: 'ask', id: 'a2', client: '10.239.0.5', host: 'y.org', port: 443, method: 'CONNECT' });
    p.emit({ type: 'ask', id: 'a3', client: '10.239.0.99', host: 'z.org', port: 443, method: 'CONNECT' });
    const msgs = await p.waitFor((m) => m.filter((x) => x.type === 'decision').length === 3);
    const decisions = msgs.filter((x) => x.type === 'decision');
    assert.deepEqual(decisions.map((d) => d.type === 'decision' && `${d.id}:${d.decision}`).sort(), [
      'a1:deny',
      'a2:deny',
      'a3:deny',
    ]);
    assert.equal(asked.length, 2, 'the unmapped client never reached decide');
    await ctl.stop();
  });

  test('events reach onEvent with the sandbox id; a timed-out ask aborts its decide signal', async () => {
    let release!: () => void;
    let asked!: () => void;
    const decideCalled = new Promise<void>((r) => (asked = r));
    const { ctl, p, events, signals } = await started({
      decide: (_req, signal) => {
        signals.push(signal);
        asked();
        return new Promise((r) => (release = () => r('allow')));
      },
    });
    ctl.update({}, { '10.239.0.5': 'sb1' });
    p.emit({
      type: 'ask',
      id: 'a7',
      client: '10.239.0.5',
      sandbox: 'sb1',
      host: 'x.org',
      port: 80,
      method: 'GET',
    });
    await decideCalled;
    assert.equal(signals.length, 1);
    p.emit({
      type: 'event',
      id: 'r1',
      client: '10.239.0.5',
      sandbox: 'sb1',
      host: 'x.org',
      port: 80,
      method: 'GET',
      decision: 'deny',
      reason: 'timeout',
      askId: 'a7',
      status: 403,
      path: '/',
      bytesUp: 0,
      bytesDown: 0,
      durationMs: 60000,
    });
    p.emit({
      type: 'event',
      client: '10.239.0.77',
      sandbox: null,
      host: 'y.org',
      port: 443,
      method: 'CONNECT',
      decision: 'deny',
      reason: 'unknown-client',
      bytesUp: 0,
      bytesDown: 0,
    });
    await flush();
    assert.equal(signals[0]!.aborted, true);
    assert.deepEqual(events[0], {
      sandboxId: 'sb1',
      client: '10.239.0.5',
      host: 'x.org',
      port: 80,
      method: 'GET',
      decision: 'deny',
      reason: 'timeout',
      bytesUp: 0,
      bytesDown: 0,
      durationMs: 60000,
      status: 403,
      path: '/',
      askId: 'a7',
      requestId: 'r1',
    });
    assert.equal(events[1]!.sandboxId, null);
    release();
    await flush();
    assert.equal(
      p.messages().some((m) => m.type === 'decision'),
      false,
      'no decision is sent for an ask the proxy gave up on',
    );
    await ctl.stop();
  });

  test('a proxy that dies is restarted with backoff and gets the current config again', async () => {
    const clock = fakeClock();
    let asked!: () => void;
    const decideCalled = new Promise<void>((r) => (asked = r));
    const { ctl, conn, p, signals } = await started({
      decide: (_r, signal) => {
        signals.push(signal);
        asked();
        return new Promise(() => {});
      },
    });
    ctl.update({ '10.239.0.5': ['deb.debian.org'] }, { '10.239.0.5': 'sb1' });
    p.emit({ type: 'ask', id: 'a1', client: '10.239.0.5', host: 'x.org', port: 443, method: 'CONNECT' });
    await decideCalled;
    p.exit(1);
    await flush();
    assert.equal(ctl.state, 'restarting');
    await clock.tick(9);
    assert.equal(conn.procs.length, 1, 'not before the first backoff (10 ms)');
    await clock.tick(1);
    const p2 = await conn.nthSpawn(2);
    assert.equal(signals[0]!.aborted, true, 'pending asks of the dead proxy are abandoned');
    const msgs = await p2.waitFor((m) => m.length >= 1);
    assert.deepEqual(msgs[0], {
      type: 'config',
      seq: 3,
      allow: { '10.239.0.5': ['deb.debian.org'] },
      sandboxes: { '10.239.0.5': 'sb1' },
    });
    await flush();
    assert.equal(ctl.running, true);
    // a restart that fails (python gone) is retried with a longer backoff, not fatal
    conn.onSpawn = (q) => queueMicrotask(() => q.exit(127));
    p2.exit(1);
    await flush();
    await clock.tick(20); // second attempt: 20 ms
    await conn.nthSpawn(3);
    await clock.tick(40); // third: 40 ms (the cap)
    await conn.nthSpawn(4);
    assert.equal(ctl.state, 'restarting');
    conn.onSpawn = (q) => queueMicrotask(() => q.ready());
    await clock.tick(40);
    await conn.nthSpawn(5);
    await flush();
    assert.equal(ctl.running, true);
    await ctl.stop();
    const count = conn.procs.length;
    await clock.tick(60_000);
    assert.equal(conn.procs.length, count, 'no restart after stop');
  });

  test('the connection going away closes the controller instead of restarting', async () => {
    const clock = fakeClock();
    const { ctl, conn, p, closes } = await started();
    conn.close();
    p.exit(null);
    await clock.tick(60_000);
    assert.equal(ctl.state, 'closed');
    assert.equal(conn.procs.length, 1);
    assert.equal(closes.length, 1);
    await assert.rejects(
      ctl.start(),
      (e: unknown) => e instanceof FluidError && e.code === 'HOST_UNREACHABLE',
    );
  });

  test('stop sends shutdown, closes stdin and waits for the exit', async () => {
    // the clock never moves: stop can only return because the proxy exited, not by its 3 s fallback
    fakeClock();
    const { ctl, p } = await started();
    await ctl.stop();
    assert.ok(p.messages().some((m) => m.type === 'shutdown'));
    assert.equal(p.stdinEnded, true);
    assert.equal(ctl.running, false);
    assert.equal(ctl.state, 'stopped');
  });

  test('heartbeat pings are sent while running', async () => {
    const clock = fakeClock();
    const { ctl, p } = await started({ heartbeatMs: 20 });
    const pings = () => p.messages().filter((x) => x.type === 'ping').length;
    await clock.tick(19);
    assert.equal(pings(), 0);
    await clock.tick(1);
    assert.equal(pings(), 1);
    await clock.tick(20);
    assert.equal(pings(), 2);
    assert.match(p.command, /'--heartbeat-timeout' '0\.09'/);
    await ctl.stop();
  });

  test('a pending verdict goes back with the approval id; nonsense ids and notes are dropped or capped', async () => {
    const verdicts = [
      { decision: 'pending' as const, approvalId: '1a2b3c4d-0000-4000-8000-000000000001' },
      { decision: 'deny' as const, approvalId: 'x\r\nInjected: 1', note: 'n'.repeat(900) },
    ];
    const { ctl, p } = await started({ decide: async () => verdicts.shift()! });
    ctl.update({}, { '10.239.0.5': 'sb1' });
    p.emit({ type: 'ask', id: 'a1', client: '10.239.0.5', host: 'x.org', port: 443, method: 'CONNECT' });
    p.emit({ type: 'ask', id: 'a2', client: '10.239.0.5', host: 'y.org', port: 443, method: 'CONNECT' });
    const msgs = await p.waitFor((m) => m.filter((x) => x.type === 'decision').length === 2);
    const [d1, d2] = msgs.filter((x) => x.type === 'decision');
    assert.deepEqual(d1, {
      type: 'decision',
      id: 'a1',
      decision: 'pending',
      approval: '1a2b3c4d-0000-4000-8000-000000000001',
    });
    assert.deepEqual(d2, { type: 'decision', id: 'a2', decision: 'deny', note: 'n'.repeat(500) });
    await ctl.stop();
  });

  test('routes: what the proxy serves for this controller, and a joined (shared) proxy', async () => {
    const seen: unknown[] = [];
    const s = setup({ onRoutes: (r) => seen.push({ served: [...r.served], conflicts: r.conflicts }) });
    s.conn.onSpawn = (p) =>
      queueMicrotask(() =>
        p.emit({
          type: 'ready',
          listen: '10.239.0.1:3128',
          pid: 7,
          version: 2,
          python: '3.11.2',
          shared: true,
        }),
      );
    await s.ctl.start();
    assert.equal(s.ctl.shared, true);
    assert.equal(s.ctl.routes, null);
    const p = s.conn.procs[0]!;
    const conflicts = [{ client: '10.239.1.3', sandbox: 'sb3', servedAs: 'theirs' }];
    p.emit({ type: 'routes', served: ['10.239.1.2'], conflicts });
    await flush();
    assert.deepEqual([...s.ctl.routes!.served], ['10.239.1.2']);
    assert.deepEqual(s.ctl.routes!.conflicts, conflicts);
    assert.deepEqual(seen, [{ served: ['10.239.1.2'], conflicts }]);
    p.exit(1);
    await flush();
    assert.equal(s.ctl.routes, null, 'forgotten with the process');
    await s.ctl.stop();
  });

  test('a proxy for this bridge that this process may not join is UNAVAILABLE with its reason', async () => {
    const { ctl, conn } = setup();
    conn.onSpawn = (p) =>
      queueMicrotask(() => {
        p.emit({
          type: 'error',
          message:
            'the egress proxy on 10.239.0.1:3128 runs as uid 0 and refuses a Fluid running as uid 1000; connect to this host as the same user',
        });
        p.exit(5);
      });
    await assert.rejects(
      ctl.start(),
      (e: unknown) =>
        e instanceof FluidError &&
        e.code === 'UNAVAILABLE' &&
        e.message.startsWith('The egress proxy on 10.239.0.1:3128 runs as uid 0'),
    );
  });

  test('a random port (0) is pinned to the one obtained, so restarts keep the same address', async () => {
    const { ctl, conn } = setup({ port: 0 });
    conn.onSpawn = (q) => queueMicrotask(() => q.ready('127.0.0.1:45678'));
    await ctl.start();
    conn.procs[0]!.exit(1);
    const p2 = await conn.nthSpawn(2);
    assert.match(p2.command, /'--port' '45678'/);
    await ctl.stop();
  });
});

describe('proxyCommand', () => {
  test('is valid sh, quotes every argument, and refuses odd interpreters', () => {
    const cmd = proxyCommand({
      listenAddress: "10.0.0.1'; rm -rf /",
      port: 3128,
      askTimeoutMs: 1500,
      heartbeatTimeoutMs: 0,
      allowLoopback: true,
    });
    execFileSync('sh', ['-n', '-c', cmd]);
    execFileSync('bash', ['-n', '-c', cmd]);
    assert.match(cmd, /'--ask-timeout' '1\.5'/);
    assert.match(cmd, /'--allow-loopback'/);
    assert.ok(cmd.includes(`'10.0.0.1'\\''; rm -rf /'`));
    assert.throws(() =>
      proxyCommand({ listenAddress: 'x', port: 1, askTimeoutMs: 1, heartbeatTimeoutMs: 0, python: 'py; id' }),
    );
  });

  test('private networks for names and the probe are flags of their own', () => {
    const base = { listenAddress: '10.239.0.1', port: 3128, askTimeoutMs: 1000, heartbeatTimeoutMs: 0 };
    assert.doesNotMatch(proxyCommand(base), /allow-private|probe/);
    assert.match(proxyCommand({ ...base, allowPrivate: true }), /'--allow-private'/);
    assert.match(proxyCommand({ ...base, probe: true }), /'--probe'/);
  });
});
