/**
 * Shared pieces of the egress integration tests: a real proxy (python3 through LocalConnection) on
 * 127.0.0.1, upstream servers on other loopback ports, and small HTTP-through-proxy clients.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, request, type Agent, type IncomingHttpHeaders, type Server } from 'node:http';
import {
  connect,
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import {
  EgressController,
  type EgressControllerOptions,
  type EgressEvent,
  type EgressRequest,
  type EgressVerdict,
} from '../../../src/core/egress/controller.ts';
import type { EgressDecision } from '../../../src/core/egress/protocol.ts';

type Answer = EgressDecision | EgressVerdict;

/** Fail (never skip) when python3 is missing: the proxy cannot be tested without it. */
export function requirePython(): string {
  try {
    return execFileSync('python3', ['--version']).toString().trim();
  } catch {
    throw new Error('python3 is required for the egress integration tests: apt-get install -y python3');
  }
}

export const CLIENT = '127.0.0.1';
export const SANDBOX = 'sb-test';

export interface TestEgress {
  ctl: EgressController;
  port: number;
  events: EgressEvent[];
  asks: EgressRequest[];
  logs: Array<{ msg: string; fields?: Record<string, unknown> }>;
  /** Answer the next ask(s) with this (default: the decide option, else never answer). */
  answer: (d: Answer | null) => void;
  waitEvent: (pred: (e: EgressEvent) => boolean, ms?: number) => Promise<EgressEvent>;
  /** Resolves once `count` log records with this message exist. */
  waitLog: (msg: string, count: number) => Promise<void>;
  /** Same allowlist for every mapped client; resolves once the proxy applied it. */
  update: (allow: string[], sandboxes?: Record<string, string>) => Promise<void>;
  stop: () => Promise<void>;
}

export async function startEgress(
  o: {
    allow?: string[];
    sandboxes?: Record<string, string>;
    askTimeoutMs?: number;
    allowLoopback?: boolean;
    decide?: EgressControllerOptions['decide'];
    heartbeatMs?: number;
    /** Listen on this port (another proxy may already hold it: then this one joins it). */
    port?: number;
  } = {},
): Promise<TestEgress> {
  requirePython();
  const events: EgressEvent[] = [];
  const asks: EgressRequest[] = [];
  const logs: TestEgress['logs'] = [];
  let answer: Answer | null = null;
  const eventWaiters: Array<() => void> = [];
  const logWaiters: Array<() => void> = [];
  const rec = (msg: string, fields?: Record<string, unknown>) => {
    logs.push({ msg, fields });
    for (const w of logWaiters.splice(0)) w();
    if (process.env.FLUID_TEST_LOG) console.error(msg, fields ?? '');
  };
  const conn = new LocalConnection('local-test');
  const ctl = new EgressController({
    conn,
    listenAddress: '127.0.0.1',
    port: o.port ?? 0,
    allowLoopback: o.allowLoopback ?? true,
    askTimeoutMs: o.askTimeoutMs ?? 10_000,
    heartbeatMs: o.heartbeatMs ?? 1000,
    restartDelayMs: { min: 50, max: 200 },
    decide:
      o.decide ??
      ((req, signal) => {
        asks.push(req);
        return new Promise((resolve) => {
          const tick = () => {
            if (signal.aborted) return resolve('deny');
            if (answer) return resolve(answer);
            setTimeout(tick, 10);
          };
          tick();
        });
      }),
    onEvent: (e) => {
      events.push(e);
      for (const w of eventWaiters.splice(0)) w();
    },
    log: { debug: rec, info: rec, warn: rec, error: rec },
  });
  const sandboxes = o.sandboxes ?? { [CLIENT]: SANDBOX };
  const update = (allow: string[], sb: Record<string, string> = sandboxes) =>
    ctl.update(Object.fromEntries(Object.keys(sb).map((ip) => [ip, allow])), sb);
  void update(o.allow ?? [], sandboxes);
  const { listen } = await ctl.start();
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  const waitEvent = async (pred: (e: EgressEvent) => boolean, ms = 5000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = events.find(pred);
      if (e) return e;
      if (Date.now() > deadline)
        throw new Error(`no matching egress event within ${ms} ms; events: ${JSON.stringify(events)}`);
      await new Promise<void>((r) => {
        eventWaiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  const waitLog = async (msg: string, count: number) => {
    while (logs.filter((l) => l.msg === msg).length < count)
      await new Promise<void>((r) => logWaiters.push(r));
  };
  return {
    ctl,
    port,
    events,
    asks,
    logs,
    waitLog,
    answer: (d) => (answer = d),
    waitEvent,
    update,
    stop: () => ctl.stop(),
  };
}

// ---------------------------------------------------------------- upstreams

/** 1 MiB of fixed pseudo-random bytes, repeated to make large bodies. */
const BLOCK = (() => {
  const b = Buffer.alloc(1 << 20);
  let x = 2463534242;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
})();

export function bigBody(n: number): { chunks: () => Generator<Buffer>; sha: string } {
  const chunks = function* () {
    let left = n;
    while (left > 0) {
      const c = left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
      left -= c.length;
      yield c;
    }
  };
  const h = createHash('sha256');
  for (const c of chunks()) h.update(c);
  return { chunks, sha: h.digest('hex') };
}

export interface Upstream {
  server: Server;
  port: number;
  /** TCP connections accepted so far. */
  connections: number;
  /** Request heads seen. */
  seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
  close: () => Promise<void>;
}

/** An HTTP server with a few routes useful for proxy tests. */
export async function startUpstream(): Promise<Upstream> {
  const up: Upstream = {
    server: null as unknown as Server,
    port: 0,
    connections: 0,
    seen: [],
    close: async () => {},
  };
  const upgraded = new Set<Duplex>();
  const server = createServer((req, res) => {
    up.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://x');
    switch (url.pathname) {
      case '/hello':
        res.setHeader('content-type', 'text/plain');
        res.end('hello from upstream');
        return;
      case '/headers':
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, headers: req.headers }));
        return;
      case '/chunked':
        res.write('one,');
        setTimeout(() => {
          res.write('two,');
          res.end('three');
        }, 10);
        return;
      case '/nocontent':
        res.statusCode = 204;
        res.end();
        return;
      case '/big': {
        const n = Number(url.searchParams.get('n') ?? 1 << 20);
        const body = bigBody(n);
        res.setHeader('content-length', n);
        const it = body.chunks();
        const pump = () => {
          for (;;) {
            const { value, done } = it.next();
            if (done) return res.end();
            if (!res.write(value)) return res.once('drain', pump);
          }
        };
        pump();
        return;
      }
      case '/upload': {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => {
          h.update(c);
          n += c.length;
        });
        req.on('end', () => res.end(JSON.stringify({ n, sha: h.digest('hex') })));
        return;
      }
      default:
        res.statusCode = 404;
        res.end('no such route');
    }
  });
  server.on('upgrade', (req, socket) => {
    up.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    socket.on('data', (c) => socket.write(c));
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', () => up.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.server = server;
  up.port = (server.address() as AddressInfo).port;
  up.close = () =>
    new Promise<void>((r) => {
      for (const s of upgraded) s.destroy();
      server.closeAllConnections();
      server.close(() => r());
    });
  return up;
}

/** A TCP server that echoes bytes and, when the client half-closes, says "bye" and closes. */
export async function startEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<Socket>();
  const server: TcpServer = createTcpServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    s.on('data', (c) => s.write(c));
    s.on('end', () => s.end('bye'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A server that answers every connection with a fixed byte string and then closes. */
export async function startRaw(reply: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createTcpServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(reply));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// ---------------------------------------------------------------- clients

export interface ProxyResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A plain-HTTP request through the proxy (absolute URI). */
export function viaProxy(
  proxyPort: number,
  url: string,
  o: {
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | Iterable<Buffer>;
    agent?: Agent;
    /** The client's own address (another loopback address: another "sandbox"). */
    from?: string;
  } = {},
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: proxyPort,
      localAddress: o.from,
      method: o.method ?? 'GET',
      path: url,
      headers: o.headers,
      agent: o.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    if (o.body === undefined) req.end();
    else if (Buffer.isBuffer(o.body)) req.end(o.body);
    else {
      const it = o.body[Symbol.iterator]();
      const pump = () => {
        for (;;) {
          const { value, done } = it.next();
          if (done) return req.end();
          if (!req.write(value)) return req.once('drain', pump);
        }
      };
      pump();
    }
  });
}

/** CONNECT through the proxy; resolves with the tunnel socket, or the refusal. */
export function connectVia(
  proxyPort: number,
  target: string,
  from?: string,
): Promise<{ status: number; socket: Socket | null; body: string; head: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: proxyPort, host: '127.0.0.1', localAddress: from });
    s.setNoDelay(true);
    let buf = Buffer.alloc(0);
    s.on('error', reject);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(head.split(' ')[1]);
      if (status === 200) {
        s.off('data', onData);
        s.off('error', reject);
        const rest = buf.subarray(end + 4);
        if (rest.length) s.unshift(rest);
        resolve({ status, socket: s, body: '', head });
      } else {
        s.off('data', onData);
        const chunks: Buffer[] = [buf.subarray(end + 4)];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('end', () => resolve({ status, socket: null, body: Buffer.concat(chunks).toString(), head }));
      }
    };
    s.on('data', onData);
  });
}

/** Send raw bytes to the proxy and collect everything until it closes the connection. */
export function rawExchange(
  proxyPort: number,
  data: string | Buffer,
  timeoutMs = 5000,
  from?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: proxyPort, host: '127.0.0.1', localAddress: from });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new Error(
          `the proxy did not close the connection within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString()}`,
        ),
      );
    }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(data);
  });
}

/** Read from a socket until `n` bytes arrived (or it ends). */
export function readN(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) done();
    };
    const done = () => {
      s.off('data', onData);
      s.off('end', done);
      resolve(Buffer.concat(chunks));
    };
    s.on('data', onData);
    s.on('end', done);
  });
}

export function requireCurl(): void {
  try {
    execFileSync('curl', ['--version']);
  } catch {
    throw new Error('curl is required for this test: apt-get install -y curl');
  }
}
