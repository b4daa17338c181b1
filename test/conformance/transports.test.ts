/**
 * One conformance suite, every transport that runs here: the same router and the same frames over
 * in-process ports, the WebSocket door (with its token and Origin checks) and MessagePorts (the
 * Electron door's adapter over a real MessageChannel).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, type MessagePort as NodeMessagePort } from 'node:worker_threads';
import { z } from 'zod';
import { contract, type Contract } from '../../src/shared/contract/index.ts';
import {
  call,
  event,
  memoryPortPair,
  portFromMessagePort,
  RpcClient,
  stream,
  type ContractDef,
  type MessagePortLike,
  type Port,
} from '../../src/shared/rpc.ts';
import { FluidError } from '../../src/shared/errors.ts';
import { connectWebSocket, RPC_PROTOCOL, TOKEN_PROTOCOL_PREFIX } from '../../src/shared/web.ts';
import { serve } from '../../src/core/rpc/server.ts';
import { TypedEventBus } from '../../src/core/events.ts';
import { startWebServer, type WebServer } from '../../src/core/doors/web.ts';
import { portFromMessagePortMain } from '../../src/main/port.ts';
import { testCore } from '../support/core.ts';

// ---- a small contract that exercises the mechanics (cancel, streams, events) deterministically ----
const mech = {
  echo: call(z.object({ value: z.string().max(10) }), z.object({ value: z.string() }), 'echo'),
  sleep: call(z.object({ ms: z.number() }), z.object({ slept: z.number() }), 'sleep until aborted'),
  fail: call(z.object({ code: z.string() }), z.object({}), 'throw'),
  badOutput: call(z.object({}), z.object({ n: z.number() }), 'returns an invalid result'),
  count: stream(z.object({ to: z.number().int().max(1000) }), z.object({ i: z.number() }), 'count'),
  forever: stream(z.object({}), z.object({ i: z.number() }), 'count until cancelled'),
  ping: event(z.object({ n: z.number() }), 'ping'),
} satisfies ContractDef;

interface MechState {
  aborted: string[];
  bus: TypedEventBus<typeof mech>;
}

function mechRouter(state: MechState) {
  return {
    echo: (i: { value: string }) => ({ value: i.value }),
    sleep: (i: { ms: number }, ctx: { signal: AbortSignal }) =>
      new Promise<{ slept: number }>((resolve, reject) => {
        const t = setTimeout(() => resolve({ slept: i.ms }), i.ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          state.aborted.push('sleep');
          reject(new FluidError('CANCELLED', 'sleep cancelled'));
        });
      }),
    fail: (i: { code: string }) => {
      if (i.code === 'boom') throw new Error('secret internals');
      throw new FluidError(i.code as 'CONFLICT', `failed with ${i.code}`, { why: 'test' });
    },
    badOutput: () => ({ n: 'not a number' }) as unknown as { n: number },
    count: async function* (i: { to: number }) {
      for (let n = 1; n <= i.to; n++) yield { i: n };
    },
    forever: async function* (_i: object, ctx: { signal: AbortSignal }) {
      try {
        for (let n = 0; ; n++) {
          yield { i: n };
          await new Promise((r) => setTimeout(r, 5));
          if (ctx.signal.aborted) return;
        }
      } finally {
        state.aborted.push('forever');
      }
    },
  };
}

// ---- transports ---------------------------------------------------------------------------------

interface Transport {
  name: string;
  /** Connect a client to a server-side port handler. */
  pair(onServerPort: (p: Port) => void): Promise<{ client: Port; closeServer?: () => void }>;
}

function nodePortAsElectronMain(p: NodeMessagePort) {
  // Electron's MessagePortMain delivers {data, ports} events via EventEmitter; Node's delivers the data.
  return {
    on(ev: string, cb: (e: unknown) => void) {
      if (ev === 'message') p.on('message', (data) => cb({ data, ports: [] }));
      else p.on(ev, cb as () => void);
      return this;
    },
    postMessage: (m: unknown) => p.postMessage(m),
    start: () => p.start(),
    close: () => p.close(),
  };
}

const memory: Transport = {
  name: 'in-process',
  async pair(onServer) {
    const [c, s] = memoryPortPair();
    onServer(s);
    return { client: c };
  },
};

const messagePort: Transport = {
  name: 'MessagePort (Electron adapter)',
  async pair(onServer) {
    const ch = new MessageChannel();
    onServer(portFromMessagePortMain(nodePortAsElectronMain(ch.port1) as never));
    return { client: portFromMessagePort(ch.port2 as unknown as MessagePortLike) };
  },
};

// The WebSocket transport goes through the real web door (token, Origin, Host checks).
async function wsPairFactory(): Promise<{ transport: Transport; stop: () => Promise<void> }> {
  const core = testCore();
  let handler: ((p: Port) => void) | null = null;
  // Route the door's connections to the test's handler instead of the core router.
  const origServe = core.serve.bind(core);
  (core as { serve: typeof core.serve }).serve = (port, actor) => {
    if (handler) {
      handler(port);
      return { close: () => port.close(), inFlight: 0 };
    }
    return origServe(port, actor);
  };
  const server = await startWebServer({ core, staticDir: null });
  const transport: Transport = {
    name: 'WebSocket (web door)',
    async pair(onServer) {
      handler = onServer;
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/rpc`, [
        RPC_PROTOCOL,
        TOKEN_PROTOCOL_PREFIX + server.token,
      ]);
      await new Promise<void>((ok, fail) => {
        ws.addEventListener('open', () => ok());
        ws.addEventListener('error', () => fail(new Error('ws failed')));
      });
      const { portFromWebSocket } = await import('../../src/shared/rpc.ts');
      return { client: portFromWebSocket(ws as never) };
    },
  };
  return {
    transport,
    stop: async () => {
      await server.close();
      await core.dispose();
    },
  };
}

async function suite(getTransport: () => Transport) {
  const state: MechState = { aborted: [], bus: new TypedEventBus<typeof mech>() };
  const connect = async () => {
    let served: { close(): void } | null = null;
    const { client } = await getTransport().pair((p) => {
      served = serve(mech, mechRouter(state) as never, state.bus, p, {
        actor: { door: 'test', id: 'conformance' },
      });
    });
    return { rpc: new RpcClient(mech, client), closeServer: () => served?.close() };
  };

  test('call returns the handler result', async () => {
    const { rpc } = await connect();
    assert.deepEqual(await rpc.call('echo', { value: 'hi' }), { value: 'hi' });
    rpc.close();
  });

  test('invalid input is rejected by the server with VALIDATION and issue paths', async () => {
    const { rpc } = await connect();
    // Bypass client-side validation by sending a raw frame through a second client whose contract is looser.
    const loose = {
      ...mech,
      echo: call(z.object({ value: z.string() }), z.object({ value: z.string() }), 'loose'),
    };
    const rpc2 = new RpcClient(loose, (rpc as unknown as { port: Port }).port);
    await assert.rejects(rpc2.call('echo', { value: 'far too long for the limit' }), (e: FluidError) => {
      assert.equal(e.code, 'VALIDATION');
      assert.match(e.message, /value/);
      assert.equal((e.data as { issues: Array<{ path: string }> }).issues[0]!.path, 'value');
      return true;
    });
    rpc.close();
  });

  test('client-side validation fails fast with the same code', async () => {
    const { rpc } = await connect();
    await assert.rejects(rpc.call('echo', { value: 'x'.repeat(20) }), { code: 'VALIDATION' });
    rpc.close();
  });

  test('typed errors cross with code, message and data; unknown errors become INTERNAL', async () => {
    const { rpc } = await connect();
    await assert.rejects(rpc.call('fail', { code: 'CONFLICT' }), (e: FluidError) => {
      assert.ok(e instanceof FluidError);
      assert.equal(e.code, 'CONFLICT');
      assert.equal(e.message, 'failed with CONFLICT');
      assert.deepEqual(e.data, { why: 'test' });
      return true;
    });
    await assert.rejects(rpc.call('fail', { code: 'boom' }), { code: 'INTERNAL' });
    await assert.rejects(
      rpc.call('badOutput', {}),
      (e: FluidError) => e.code === 'INTERNAL' && /invalid result/.test(e.message),
    );
    rpc.close();
  });

  test('an unknown member is NOT_FOUND', async () => {
    const { rpc } = await connect();
    const other = { nope: call(z.object({}), z.object({}), 'missing on the server') };
    const rpc2 = new RpcClient(other, (rpc as unknown as { port: Port }).port);
    await assert.rejects(rpc2.call('nope', {}), { code: 'NOT_FOUND' });
    rpc.close();
  });

  test('streams deliver every item in order, then end', async () => {
    const { rpc } = await connect();
    const got: number[] = [];
    for await (const x of rpc.stream('count', { to: 200 })) got.push(x.i);
    assert.deepEqual(
      got,
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    rpc.close();
  });

  test('cancelling a call aborts the handler and rejects with CANCELLED', async () => {
    const { rpc } = await connect();
    const ac = new AbortController();
    const p = rpc.call('sleep', { ms: 10_000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(p, { code: 'CANCELLED' });
    await waitFor(() => state.aborted.includes('sleep'));
    state.aborted.length = 0;
    rpc.close();
  });

  test('breaking out of a stream cancels it on the server', async () => {
    const { rpc } = await connect();
    let n = 0;
    for await (const x of rpc.stream('forever', {})) {
      n = x.i;
      if (n >= 5) break;
    }
    assert.equal(n, 5);
    await waitFor(() => state.aborted.includes('forever'));
    state.aborted.length = 0;
    rpc.close();
  });

  test('events arrive after subscribing and stop after unsubscribing', async () => {
    const { rpc } = await connect();
    const got: number[] = [];
    const un = rpc.on('ping', (p) => got.push(p.n));
    await rpc.call('echo', { value: 'sync' }); // the subscription frame is processed before this call
    state.bus.emit('ping', { n: 1 });
    state.bus.emit('ping', { n: 2 });
    await waitFor(() => got.length === 2);
    un();
    await rpc.call('echo', { value: 'sync' });
    state.bus.emit('ping', { n: 3 });
    await rpc.call('echo', { value: 'sync' });
    assert.deepEqual(got, [1, 2]);
    assert.equal(state.bus.listenerCount('ping'), 0);
    rpc.close();
  });

  test('closing the connection rejects pending calls and aborts server work', async () => {
    const { rpc, closeServer } = await connect();
    const p = rpc.call('sleep', { ms: 10_000 });
    await new Promise((r) => setTimeout(r, 30));
    closeServer();
    await assert.rejects(p, { code: 'UNAVAILABLE' });
    await waitFor(() => state.aborted.includes('sleep'));
    state.aborted.length = 0;
  });
}

async function waitFor(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('transport: in-process', () => suite(() => memory));
describe('transport: MessagePort', () => suite(() => messagePort));
describe('transport: WebSocket', () => {
  let ws: Awaited<ReturnType<typeof wsPairFactory>>;
  before(async () => {
    ws = await wsPairFactory();
  });
  after(async () => ws.stop());
  suite(() => ws.transport);
});

// ---- the real router over every transport --------------------------------------------------------

describe('the real router answers the same over every door', () => {
  const core = testCore();
  let server: WebServer;
  before(async () => {
    server = await startWebServer({ core, staticDir: null });
  });
  after(async () => {
    await server.close();
    await core.dispose();
  });

  const clients: Record<string, () => Promise<RpcClient<Contract>>> = {
    'in-process': async () => {
      const [c, s] = memoryPortPair();
      core.serve(s, { door: 'test', id: 'inproc' });
      return new RpcClient(contract, c);
    },
    MessagePort: async () => {
      const ch = new MessageChannel();
      core.serve(portFromMessagePortMain(nodePortAsElectronMain(ch.port1) as never), {
        door: 'app',
        id: 'electron',
      });
      return new RpcClient(contract, portFromMessagePort(ch.port2 as unknown as MessagePortLike));
    },
    WebSocket: () => connectWebSocket(WebSocket as never, server.origin, server.token),
  };

  for (const [name, make] of Object.entries(clients)) {
    test(`${name}: calls, validation, typed errors and snapshot-then-delta events`, async () => {
      const c = await make();
      const info = await c.call('system.info', {});
      assert.equal(info.dataDir, core.paths.dataDir);
      const hosts = await c.call('hosts.list', {});
      assert.equal(hosts[0]!.id, 'local');
      await assert.rejects(c.call('hosts.get', { host: 'no-such-host' }), { code: 'NOT_FOUND' });
      await assert.rejects(c.call('settings.update', { hosts: { minFreeDiskGiB: -5 } }), (e: FluidError) => {
        assert.equal(e.code, 'VALIDATION');
        assert.equal((e.data as { issues: Array<{ path: string }> }).issues[0]!.path, 'hosts.minFreeDiskGiB');
        return true;
      });
      // snapshot, then deltas
      const seen: number[] = [];
      const un = c.on('settings.changed', (s) => seen.push(s.hosts.minFreeDiskGiB));
      const snap = await c.call('settings.get', {});
      const next = snap.hosts.minFreeDiskGiB + 1;
      await c.call('settings.update', { hosts: { minFreeDiskGiB: next } });
      await waitFor(() => seen.includes(next));
      un();
      // the audit log recorded which door made the change
      const log = await c.call('audit.list', { limit: 1, action: 'settings.update' });
      assert.equal(
        log.entries[0]!.data &&
          (log.entries[0]!.data as { patch: { hosts: { minFreeDiskGiB: number } } }).patch.hosts
            .minFreeDiskGiB,
        next,
      );
      c.close();
    });
  }

  test('each door is named in the audit log', async () => {
    const all = await (
      await clients['in-process']!()
    ).call('audit.list', { limit: 50, action: 'settings.update' });
    const doors = new Set(all.entries.map((e) => e.actor.door));
    assert.deepEqual([...doors].sort(), ['app', 'test', 'web']);
  });
});

// ---- the web door's own protections ------------------------------------------------------------

describe('web door hardening', () => {
  const core = testCore();
  let server: WebServer;
  before(async () => {
    server = await startWebServer({ core, staticDir: null });
  });
  after(async () => {
    await server.close();
    await core.dispose();
  });

  async function upgrade(headers: Record<string, string>, path = '/rpc'): Promise<number> {
    const { request } = await import('node:http');
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: server.port,
        path,
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          ...headers,
        },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', reject);
      req.end();
    });
  }

  const good = () => ({
    'Sec-WebSocket-Protocol': `${RPC_PROTOCOL}, ${TOKEN_PROTOCOL_PREFIX}${server.token}`,
  });

  test('the right token upgrades', async () => {
    assert.equal(await upgrade(good()), 101);
    assert.equal(await upgrade({ ...good(), Origin: server.origin }), 101);
  });
  test('a missing or wrong token is 401', async () => {
    assert.equal(await upgrade({ 'Sec-WebSocket-Protocol': RPC_PROTOCOL }), 401);
    assert.equal(
      await upgrade({ 'Sec-WebSocket-Protocol': `${RPC_PROTOCOL}, ${TOKEN_PROTOCOL_PREFIX}wrong` }),
      401,
    );
  });
  test('a foreign Origin is 403', async () => {
    assert.equal(await upgrade({ ...good(), Origin: 'http://evil.example' }), 403);
    assert.equal(await upgrade({ ...good(), Origin: `http://127.0.0.1:${server.port + 1}` }), 403);
  });
  test('a foreign Host header (DNS rebinding) is refused', async () => {
    assert.equal(await upgrade({ ...good(), Host: `evil.example:${server.port}` }), 421);
  });
  test('other paths do not upgrade', async () => {
    assert.equal(await upgrade(good(), '/other'), 404);
  });
  test('connectWebSocket with a wrong token fails with UNAVAILABLE', async () => {
    await assert.rejects(connectWebSocket(WebSocket as never, server.origin, 'nope'), {
      code: 'UNAVAILABLE',
    });
  });
  test('the API-only server serves no UI and answers health checks', async () => {
    const r = await fetch(`${server.origin}/healthz`);
    assert.equal(r.status, 200);
    assert.equal((await fetch(`${server.origin}/`)).status, 404);
  });
  test('binding to a non-loopback address is refused', async () => {
    await assert.rejects(startWebServer({ core, host: '0.0.0.0', staticDir: null }), /loopback/);
  });
});
