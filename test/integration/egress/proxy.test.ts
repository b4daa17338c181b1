/**
 * The egress proxy for real: python3 started through LocalConnection by EgressController, listening
 * on 127.0.0.1 (random port), with upstream servers on other loopback ports. Loopback destinations
 * are allowed here only through the test-only `allowLoopback` option.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { Agent } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import {
  EgressController,
  PYTHON_MISSING_MESSAGE,
  proxyCommand,
  proxyStdinPreamble,
} from '../../../src/core/egress/controller.ts';
import { encodeControl } from '../../../src/core/egress/protocol.ts';
import { PROXY_SOURCE_URL, proxyScript } from '../../../src/core/egress/proxy-script.ts';
import { probeEgressProxy } from '../../../src/core/egress/controller.ts';
import { FluidError } from '../../../src/shared/errors.ts';
import { MATCH_CASES } from '../../unit/egress/match-cases.ts';
import {
  CLIENT,
  SANDBOX,
  bigBody,
  connectVia,
  rawExchange,
  readN,
  requireCurl,
  requirePython,
  startEcho,
  startEgress,
  startRaw,
  startUpstream,
  viaProxy,
  type TestEgress,
  type Upstream,
} from './support.ts';

const run = promisify(execFile);

before(() => {
  requirePython();
});

describe('the proxy source', () => {
  test('python and TypeScript understand every allowlist case the same way', () => {
    const input = MATCH_CASES.map((c) =>
      JSON.stringify({ entries: c.entries, host: c.host, port: c.port }),
    ).join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'fluid-egress-'));
    const file = join(dir, 'fluid-egress.py');
    writeFileSync(file, proxyScript());
    assert.equal(proxyScript(), readFileSync(PROXY_SOURCE_URL, 'utf8'));
    const py = execFileSync('python3', [file, '--match-selftest'], { input })
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { entries: (string | null)[]; host: string | null; allowed: boolean });
    assert.equal(py.length, MATCH_CASES.length);
    MATCH_CASES.forEach((c, i) => {
      assert.deepEqual(
        py[i],
        { entries: c.canonical, host: c.canonicalHost, allowed: c.allowed },
        `case ${i}: ${JSON.stringify(c)}`,
      );
    });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('allowed traffic', () => {
  let eg: TestEgress;
  let up: Upstream;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  before(async () => {
    up = await startUpstream();
    echo = await startEcho();
    eg = await startEgress({
      allow: [`127.0.0.1:${up.port}`, `localhost:${up.port}`, `127.0.0.1:${echo.port}`],
    });
  });
  after(async () => {
    await eg.stop();
    await up.close();
    await echo.close();
  });

  test('a plain HTTP GET returns the upstream body, with Host rewritten and proxy headers dropped', async () => {
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/headers?x=1`, {
      headers: {
        Host: 'evil.example',
        'Proxy-Connection': 'keep-alive',
        'Proxy-Authorization': 'Basic eA==',
        'X-Kept': 'yes',
      },
    });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body.toString()) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/headers?x=1', 'origin-form path upstream');
    assert.equal(seen.headers.host, `127.0.0.1:${up.port}`, 'Host follows the URI (no vhost fronting)');
    assert.equal(seen.headers['proxy-connection'], undefined);
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.equal(seen.headers['x-kept'], 'yes');
    const ev = await eg.waitEvent((e) => e.path === '/headers?x=1');
    assert.equal(ev.decision, 'allow');
    assert.equal(ev.reason, 'allowlist');
    assert.equal(ev.sandboxId, SANDBOX);
    assert.equal(ev.client, CLIENT);
    assert.equal(ev.method, 'GET');
    assert.equal(ev.status, 200);
    assert.ok(ev.bytesUp > 0 && ev.bytesDown > r.body.length, 'bytes counted both ways');
  });

  test('a name on the allowlist matches the requested name', async () => {
    const r = await viaProxy(eg.port, `http://LOCALHOST:${up.port}/hello`);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hello from upstream');
  });

  test('keep-alive: one client connection carries several requests, reusing the upstream connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = up.connections;
    for (let i = 0; i < 5; i++) {
      const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`, { agent });
      assert.equal(r.body.toString(), 'hello from upstream');
    }
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/chunked`, { agent });
    assert.equal(r.body.toString(), 'one,two,three');
    const n = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/nocontent`, { agent });
    assert.equal(n.status, 204);
    const h = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/big?n=5000`, { agent, method: 'HEAD' });
    assert.equal(h.headers['content-length'], '5000');
    assert.equal(h.body.length, 0);
    const last = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`, { agent });
    assert.equal(last.body.toString(), 'hello from upstream');
    assert.equal(up.connections - before, 1, 'one upstream connection for all requests');
    agent.destroy();
  });

  test('pipelined requests (as apt sends them) are answered in order', async () => {
    const req = (p: string, close = false) =>
      `GET http://127.0.0.1:${up.port}${p} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    const out = await rawExchange(
      eg.port,
      req('/hello') + req('/chunked') + req('/nocontent') + req('/hello', true),
    );
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200', '204', '200']);
    assert.equal(out.split('hello from upstream').length - 1, 2);
    assert.match(out, /4\r\none,\r\n/);
  });

  test('request bodies: content-length and chunked uploads arrive intact', async () => {
    const body = bigBody(3 * 1024 * 1024 + 17);
    const a = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/upload`, {
      method: 'POST',
      headers: { 'content-length': String(3 * 1024 * 1024 + 17) },
      body: body.chunks(),
    });
    assert.deepEqual(JSON.parse(a.body.toString()), { n: 3 * 1024 * 1024 + 17, sha: body.sha });
    const b = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/upload`, {
      method: 'POST',
      body: body.chunks(),
    });
    assert.deepEqual(JSON.parse(b.body.toString()), { n: 3 * 1024 * 1024 + 17, sha: body.sha }, 'chunked');
  });

  test('a large download (8 MB) streams through intact', async () => {
    const n = 8 * 1024 * 1024 + 5;
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/big?n=${n}`);
    assert.equal(r.body.length, n);
    assert.equal(
      (await import('node:crypto')).createHash('sha256').update(r.body).digest('hex'),
      bigBody(n).sha,
    );
    const ev = await eg.waitEvent((e) => e.path === `/big?n=${n}`);
    assert.ok(ev.bytesDown > n);
  });

  test('CONNECT tunnels bytes both ways, honours half-close, and reports the bytes', async () => {
    const t = await connectVia(eg.port, `127.0.0.1:${echo.port}`);
    assert.equal(t.status, 200);
    const s = t.socket!;
    s.write('ping');
    assert.equal((await readN(s, 4)).toString(), 'ping');
    const big = bigBody(4 * 1024 * 1024);
    const got = readN(s, 4 * 1024 * 1024);
    for (const c of big.chunks()) s.write(c);
    const back = await got;
    assert.equal(
      (await import('node:crypto'))
        .createHash('sha256')
        .update(back.subarray(0, 4 * 1024 * 1024))
        .digest('hex'),
      big.sha,
    );
    s.end();
    const tail = await readN(s, 3);
    assert.equal(tail.toString().slice(-3), 'bye', 'the far side saw our EOF and could still answer');
    const ev = await eg.waitEvent((e) => e.method === 'CONNECT' && e.port === echo.port);
    assert.equal(ev.decision, 'allow');
    assert.equal(ev.bytesUp, 4 + 4 * 1024 * 1024);
    assert.equal(ev.bytesDown, 4 + 4 * 1024 * 1024 + 3);
  });

  test('an HTTP Upgrade (websocket-style) becomes a two-way stream', async () => {
    const s = connect(eg.port, '127.0.0.1');
    s.write(
      `GET http://127.0.0.1:${up.port}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`,
    );
    const head = (await readN(s, 10)).toString();
    assert.match(head, /^HTTP\/1\.1 101 /);
    const rest = head.includes('\r\n\r\n') ? head.slice(head.indexOf('\r\n\r\n') + 4) : '';
    s.write('marco');
    const got = rest + (await readN(s, 5 - rest.length)).toString();
    assert.equal(got.slice(-5), 'marco');
    s.destroy();
    const seen = up.seen.find((r) => r.url === '/ws')!;
    assert.equal(seen.headers.upgrade, 'echo');
    assert.equal(seen.headers.connection, 'Upgrade');
  });

  test('a close-delimited HTTP/1.0 upstream response reaches the client and ends the connection', async () => {
    const raw = await startRaw('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold-style body');
    await eg.update([`127.0.0.1:${up.port}`, `127.0.0.1:${raw.port}`]);
    const out = await rawExchange(eg.port, `GET http://127.0.0.1:${raw.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.0 200 OK\r\n/);
    assert.match(out, /\r\nConnection: close\r\n/);
    assert.ok(out.endsWith('\r\n\r\nold-style body'));
    await raw.close();
    await eg.update([`127.0.0.1:${up.port}`, `localhost:${up.port}`, `127.0.0.1:${echo.port}`]);
  });

  test('an allowed but refusing destination is a 502 whose status line says so', async () => {
    const closed = await startRaw('');
    const port = closed.port;
    await closed.close();
    await eg.update([
      `127.0.0.1:${port}`,
      `127.0.0.1:${up.port}`,
      `localhost:${up.port}`,
      `127.0.0.1:${echo.port}`,
    ]);
    const out = await rawExchange(eg.port, `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(
      out,
      new RegExp(`^HTTP/1\\.1 502 Fluid: 127\\.0\\.0\\.1:${port} refused the connection\r\n`),
    );
    assert.match(out, /X-Fluid-Egress: upstream-error/);
    const ev = await eg.waitEvent((e) => e.port === port);
    assert.equal(ev.decision, 'allow');
    assert.equal(ev.status, 502);
    assert.equal(ev.failure, 'refused');
    assert.match(ev.error ?? '', /refused the connection/);
    const t = await connectVia(eg.port, `127.0.0.1:${port}`);
    assert.equal(t.status, 502);
    assert.match(t.body, /refused the connection/);
  });

  test('a name that does not resolve is a 502 that names the DNS failure', async () => {
    await eg.update([
      `no-such-host.invalid:80`,
      `127.0.0.1:${up.port}`,
      `localhost:${up.port}`,
      `127.0.0.1:${echo.port}`,
    ]);
    const out = await rawExchange(eg.port, 'GET http://no-such-host.invalid/ HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 50[24] Fluid: DNS lookup of no-such-host\.invalid (failed|timed out)/);
    const ev = await eg.waitEvent((e) => e.host === 'no-such-host.invalid');
    assert.match(ev.failure ?? '', /^dns/);
    await eg.update([`127.0.0.1:${up.port}`, `localhost:${up.port}`, `127.0.0.1:${echo.port}`]);
  });

  test('50 concurrent clients, mixed plain and CONNECT, all served correctly', async () => {
    const jobs = Array.from({ length: 50 }, async (_, i) => {
      if (i % 2) {
        const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/big?n=${100_000 + i}`);
        assert.equal(r.body.length, 100_000 + i);
      } else {
        const t = await connectVia(eg.port, `127.0.0.1:${echo.port}`);
        const msg = `hello ${i}`;
        t.socket!.write(msg);
        assert.equal((await readN(t.socket!, msg.length)).toString(), msg);
        t.socket!.destroy();
      }
    });
    await Promise.all(jobs);
  });

  test('curl -x: allowed plain HTTP and CONNECT (-p) work', async () => {
    requireCurl();
    const a = await run('curl', [
      '-sS',
      '-x',
      `http://127.0.0.1:${eg.port}`,
      `http://127.0.0.1:${up.port}/hello`,
    ]);
    assert.equal(a.stdout, 'hello from upstream');
    const b = await run('curl', [
      '-sS',
      '-p',
      '-x',
      `http://127.0.0.1:${eg.port}`,
      `http://127.0.0.1:${up.port}/hello`,
    ]);
    assert.equal(b.stdout, 'hello from upstream');
  });
});

describe('destinations that are not allowlisted', () => {
  let eg: TestEgress;
  let up: Upstream;
  before(async () => {
    up = await startUpstream();
    eg = await startEgress({ allow: [], askTimeoutMs: 400 });
  });
  after(async () => {
    await eg.stop();
    await up.close();
  });

  test('raise an ask; deny gives 403 with an explanation and a "denied" event', async () => {
    eg.answer('deny');
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(r.status, 403);
    assert.match(
      r.body.toString(),
      /127\.0\.0\.1:\d+ is not on this sandbox's egress allowlist, and the request was denied\./,
    );
    assert.equal(r.headers['x-fluid-egress'], 'denied');
    assert.deepEqual(eg.asks.at(-1), {
      sandboxId: SANDBOX,
      client: CLIENT,
      host: '127.0.0.1',
      port: up.port,
      method: 'GET',
    });
    const ev = await eg.waitEvent((e) => e.reason === 'denied');
    assert.equal(ev.decision, 'deny');
    assert.equal(ev.status, 403);
    assert.ok(ev.askId);
    assert.equal(up.seen.length, 0, 'nothing reached the upstream');
  });

  test('allow lets it through; later requests follow the allowlist Fluid sends', async () => {
    eg.answer('allow');
    const asked = eg.asks.length;
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(r.status, 200);
    assert.equal(eg.asks.length, asked + 1);
    assert.equal((await eg.waitEvent((e) => e.reason === 'approved')).decision, 'allow');
    // Fluid records the approval in the allowlist: no more asks
    await eg.update([`127.0.0.1:${up.port}`]);
    eg.answer(null);
    const again = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(again.status, 200);
    assert.equal(eg.asks.length, asked + 1);
    // revoked: asks again (and nobody answers: timeout)
    await eg.update([]);
    const revoked = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(revoked.status, 403);
    assert.equal(eg.asks.length, asked + 2);
  });

  test('an unanswered ask times out as deny, and says so', async () => {
    eg.answer(null);
    const t = await connectVia(eg.port, `127.0.0.1:${up.port}`);
    assert.equal(t.status, 403);
    assert.match(t.body, /not answered in time\.\nRetry once a person has approved it in Fluid\./);
    const ev = await eg.waitEvent((e) => e.reason === 'timeout' && e.method === 'CONNECT');
    assert.equal(ev.decision, 'deny');
  });

  test('concurrent requests to one destination share one ask; an allowlist update answers it', async () => {
    eg.answer(null);
    const asked = eg.asks.length;
    const reqs = [1, 2, 3].map(() => viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`));
    await new Promise((r) => setTimeout(r, 150));
    await eg.update([`127.0.0.1:${up.port}`]);
    const rs = await Promise.all(reqs);
    assert.deepEqual(
      rs.map((r) => r.status),
      [200, 200, 200],
    );
    assert.equal(eg.asks.length, asked + 1, 'one approval request, not three');
    await eg.update([]);
  });

  test('every request on a kept-alive connection is checked on its own', async () => {
    await eg.update([`127.0.0.1:${up.port}`]);
    eg.answer('deny');
    const other = await startUpstream();
    const req = (port: number) => `GET http://127.0.0.1:${port}/hello HTTP/1.1\r\nHost: x\r\n\r\n`;
    const out = await rawExchange(eg.port, req(up.port) + req(other.port) + req(up.port));
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '403'], 'allowed, then refused and the connection closed');
    assert.equal(other.seen.length, 0);
    await other.close();
    await eg.update([]);
  });

  test('curl -x shows the 403 and its explanation', async () => {
    requireCurl();
    eg.answer('deny');
    const r = await run('curl', [
      '-s',
      '-x',
      `http://127.0.0.1:${eg.port}`,
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:${up.port}/hello`,
    ]);
    assert.match(r.stdout, /is not on this sandbox's egress allowlist, and the request was denied/);
    assert.match(r.stdout, /\n403$/);
    const p = await run('curl', [
      '-sS',
      '-p',
      '-x',
      `http://127.0.0.1:${eg.port}`,
      `http://127.0.0.1:${up.port}/hello`,
    ]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((p as { code: number }).code, 56, 'curl: CONNECT refused');
    assert.match((p as { stderr: string }).stderr, /403/);
  });
});

describe('clients and requests the proxy refuses', () => {
  let eg: TestEgress;
  let up: Upstream;
  before(async () => {
    up = await startUpstream();
    eg = await startEgress({ allow: [], sandboxes: { '10.239.0.77': 'someone-else' } });
  });
  after(async () => {
    await eg.stop();
    await up.close();
  });

  test('an IP that maps to no sandbox is denied without an ask', async () => {
    await eg.update([`127.0.0.1:${up.port}`], { '10.239.0.77': 'someone-else' });
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /has no sandbox at 127\.0\.0\.1/);
    assert.match(r.body.toString(), /problem of the sandbox .*fluid doctor/s);
    const ev = await eg.waitEvent((e) => e.reason === 'unknown-client');
    assert.equal(ev.sandboxId, null);
    assert.equal(eg.asks.length, 0);
    await eg.update([], { [CLIENT]: SANDBOX });
  });

  test('malformed requests get a 400 and the proxy keeps serving', async () => {
    await eg.update([`127.0.0.1:${up.port}`], { [CLIENT]: SANDBOX });
    const cases: Array<[string, RegExp]> = [
      ['garbage\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET /hello HTTP/1.1\r\nHost: x\r\n\r\n', /send absolute URIs/],
      ['GET https://127.0.0.1/ HTTP/1.1\r\n\r\n', /use CONNECT for https/],
      ['GET ftp://x/ HTTP/1.1\r\n\r\n', /only http:\/\/ URIs and CONNECT/],
      ['CONNECT example.com HTTP/1.1\r\n\r\n', /CONNECT needs host:port/],
      ['CONNECT 127.1:443 HTTP/1.1\r\n\r\n', /invalid host/],
      ['GET http://127.0.0.1:1/ HTTP/2.0\r\n\r\n', /^HTTP\/1\.1 505 /],
      [
        `POST http://127.0.0.1:${up.port}/upload HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`,
        /both Transfer-Encoding and Content-Length/,
      ],
      [`GET http://127.0.0.1:${up.port}/ HTTP/1.1\r\nBad Header\r\n\r\n`, /malformed header line/],
      [`GET http://127.0.0.1:${up.port}/ HTTP/1.1\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      ['\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n', /^HTTP\/1\.1 400 /],
    ];
    for (const [req, want] of cases) {
      const out = await rawExchange(eg.port, req);
      assert.match(out, want, JSON.stringify(req.slice(0, 60)));
    }
    // non-ASCII digits (latin-1 superscript two) are not a port
    assert.match(
      await rawExchange(eg.port, Buffer.from('CONNECT example.com:\xb2 HTTP/1.1\r\n\r\n', 'latin1')),
      /CONNECT needs host:port/,
    );
    const bad = eg.events.filter((e) => e.reason === 'bad-request');
    assert.ok(bad.length >= cases.length - 1, 'bad requests are audited too');
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(r.status, 200, 'still serving');
  });

  test('a client that connects and says nothing does not hold the proxy up', async () => {
    const idle = connect(eg.port, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(r.status, 200);
    idle.destroy();
  });
});

describe('addresses that are blocked unless allowlisted by IP', () => {
  let eg: TestEgress;
  let up: Upstream;
  before(async () => {
    up = await startUpstream();
    // the real default: loopback is NOT allowed by name
    eg = await startEgress({ allow: [], allowLoopback: false, askTimeoutMs: 2000 });
  });
  after(async () => {
    await eg.stop();
    await up.close();
  });

  test('a name that resolves to loopback is refused even when allowlisted', async () => {
    await eg.update([`localhost:${up.port}`]);
    const r = await viaProxy(eg.port, `http://localhost:${up.port}/hello`);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /localhost resolves to .* loopback address/);
    const ev = await eg.waitEvent((e) => e.reason === 'blocked' && e.host === 'localhost');
    assert.equal(ev.decision, 'deny');
    assert.equal(up.seen.length, 0);
  });

  test('metadata, link-local and loopback IPs are refused without raising an ask', async () => {
    await eg.update([]);
    for (const target of [
      '169.254.169.254:80',
      '127.0.0.1:22',
      '[::1]:22',
      '0.0.0.0:80',
      '[::ffff:127.0.0.1]:80',
    ]) {
      const t = await connectVia(eg.port, target);
      assert.equal(t.status, 403, target);
      assert.match(t.body, /is blocked: it is /, target);
    }
    assert.equal(eg.asks.length, 0);
  });

  test('an explicit IP allowlist entry opens a loopback address, but never the proxy itself', async () => {
    await eg.update([`127.0.0.1:${up.port}`, `127.0.0.1:${eg.port}`]);
    const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
    assert.equal(r.status, 200);
    const self = await connectVia(eg.port, `127.0.0.1:${eg.port}`);
    assert.equal(self.status, 403);
    assert.match(self.body, /it is the proxy itself/);
  });
});

describe('lifecycle of the real process', () => {
  test('closing stdin makes the proxy exit within a second, and the port closes', async () => {
    requirePython();
    const conn = new LocalConnection('local-test');
    const proc = conn.spawn(
      proxyCommand({
        listenAddress: '127.0.0.1',
        port: 0,
        askTimeoutMs: 1000,
        heartbeatTimeoutMs: 0,
        allowLoopback: true,
      }),
    );
    let out = '';
    const ready = new Promise<string>((resolve, reject) => {
      proc.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /"listen":"127\.0\.0\.1:(\d+)"/.exec(out);
        if (m) resolve(m[1]!);
      });
      void proc.exited.then((c) => reject(new Error(`exited early (${c}): ${out}`)));
    });
    proc.stdin.write(proxyStdinPreamble());
    proc.stdin.write(encodeControl({ type: 'config', allow: {}, sandboxes: {} }));
    const port = Number(await ready);
    const t0 = Date.now();
    proc.stdin.end();
    const code = await Promise.race([
      proc.exited,
      new Promise<string>((r) => setTimeout(() => r('still running'), 1000)),
    ]);
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 1000);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(null);
        });
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });

  test('with a heartbeat, a silent Fluid makes the proxy exit on its own', async () => {
    const conn = new LocalConnection('local-test');
    const proc = conn.spawn(
      proxyCommand({ listenAddress: '127.0.0.1', port: 0, askTimeoutMs: 1000, heartbeatTimeoutMs: 400 }),
    );
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stdin.write(proxyStdinPreamble());
    proc.stdin.write(encodeControl({ type: 'config', allow: {}, sandboxes: {} }));
    const code = await Promise.race([
      proc.exited,
      new Promise<string>((r) => setTimeout(() => r('still running'), 3000)),
    ]);
    assert.equal(code, 3);
    assert.match(out, /no message from Fluid/);
    proc.stdin.end();
  });

  test('the controller restarts a killed proxy on the same port', async () => {
    const up = await startUpstream();
    const eg = await startEgress({ allow: [`127.0.0.1:${up.port}`] });
    try {
      const pid = eg.logs.find((l) => l.msg === 'egress proxy ready')?.fields?.pid as number;
      assert.ok(pid > 0);
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 5000;
      while (eg.logs.filter((l) => l.msg === 'egress proxy ready').length < 2) {
        if (Date.now() > deadline) throw new Error(`not restarted: ${JSON.stringify(eg.logs)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(eg.ctl.running, true);
      assert.equal(eg.ctl.listen, `127.0.0.1:${eg.port}`);
      const r = await viaProxy(eg.port, `http://127.0.0.1:${up.port}/hello`);
      assert.equal(r.status, 200, 'serving again with the same allowlist');
    } finally {
      await eg.stop();
      await up.close();
    }
  });

  test('stop() ends the proxy; nothing listens afterwards', async () => {
    const eg = await startEgress();
    await eg.stop();
    assert.equal(eg.ctl.running, false);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect(eg.port, '127.0.0.1', () => {
          s.destroy();
          resolve(null);
        });
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });

  test('a missing interpreter is UNAVAILABLE with the install hint', async () => {
    const ctl = new EgressController({
      conn: new LocalConnection('local-test'),
      listenAddress: '127.0.0.1',
      port: 0,
      python: 'python3-not-installed-here',
      decide: async () => 'deny',
      onEvent: () => {},
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    await assert.rejects(
      ctl.start(),
      (e: unknown) =>
        e instanceof FluidError && e.code === 'UNAVAILABLE' && e.message === PYTHON_MISSING_MESSAGE,
    );
  });

  test('a port held by another program (not a Fluid proxy) is UNAVAILABLE and says why', async () => {
    const other = await startRaw('HTTP/1.1 200 OK\r\n\r\nnot a proxy');
    try {
      const ctl = new EgressController({
        conn: new LocalConnection('local-test'),
        listenAddress: '127.0.0.1',
        port: other.port,
        decide: async () => 'deny',
        onEvent: () => {},
        log: { debug() {}, info() {}, warn() {}, error() {} },
      });
      await assert.rejects(
        ctl.start(),
        (e: unknown) =>
          e instanceof FluidError &&
          e.code === 'UNAVAILABLE' &&
          /cannot listen on 127\.0\.0\.1:\d+: .*no Fluid egress proxy answers there \(another program holds the port\)/.test(
            e.message,
          ),
      );
      assert.deepEqual(
        await probeEgressProxy(new LocalConnection('local-test'), {
          listenAddress: '127.0.0.1',
          port: other.port,
        }),
        { type: 'status', id: 'probe', running: false, listen: `127.0.0.1:${other.port}`, portInUse: true },
      );
    } finally {
      await other.close();
    }
  });
});

describe('what a refused client is told', () => {
  let eg: TestEgress;
  let up: Upstream;
  const APPROVAL = '1a2b3c4d-5e6f-4a0b-8c9d-0e1f2a3b4c5d';
  before(async () => {
    up = await startUpstream();
    eg = await startEgress({ allow: [] });
  });
  after(async () => {
    await eg.stop();
    await up.close();
  });

  test('a pending approval: the status line and body name the destination and the request; once approved, a retry works', async () => {
    eg.answer({ decision: 'pending', approvalId: APPROVAL });
    const dest = `127.0.0.1:${up.port}`;
    const phrase = `Fluid: approval ${APPROVAL} pending for ${dest} - a person must approve`;
    const plain = await rawExchange(eg.port, `GET http://${dest}/hello HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.ok(plain.startsWith(`HTTP/1.1 403 ${phrase}\r\n`), plain);
    assert.match(plain, new RegExp(`\r\nX-Fluid-Approval: ${APPROVAL}\r\n`));
    assert.match(plain, /\r\nX-Fluid-Egress: pending\r\n/);
    assert.ok(
      plain.includes(`Fluid raised approval request ${APPROVAL} for it; a person must approve it in Fluid.`),
      plain,
    );
    assert.match(plain, /Retry once it is approved\./);
    const tunnel = await connectVia(eg.port, dest);
    assert.equal(tunnel.head.split('\r\n')[0], `HTTP/1.1 403 ${phrase}`);
    const ev = await eg.waitEvent((e) => e.reason === 'pending' && e.method === 'CONNECT');
    assert.equal(ev.approvalId, APPROVAL);
    assert.equal(ev.decision, 'deny');
    assert.equal(up.seen.length, 0);

    // what the guest's tools print
    requireCurl();
    const body = await run('curl', ['-sS', '-x', `http://127.0.0.1:${eg.port}`, `http://${dest}/hello`]);
    assert.match(body.stdout, new RegExp(`approval request ${APPROVAL}`));
    const verbose = await run('curl', [
      '-sS',
      '-v',
      '-p',
      '-x',
      `http://127.0.0.1:${eg.port}`,
      `http://${dest}/hello`,
    ]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((verbose as { code: number }).code, 56);
    assert.ok(
      (verbose as { stderr: string }).stderr.includes(`< HTTP/1.1 403 ${phrase}`),
      (verbose as { stderr: string }).stderr,
    );
    assert.match((verbose as { stderr: string }).stderr, /CONNECT tunnel failed, response 403/);

    // a person approves: Fluid puts it on the allowlist, and the retry goes through
    eg.answer(null);
    await eg.update([dest]);
    const again = await viaProxy(eg.port, `http://${dest}/hello`);
    assert.equal(again.status, 200);
    assert.equal(again.body.toString(), 'hello from upstream');
  });
});

describe('revoking a destination', () => {
  let eg: TestEgress;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  before(async () => {
    echo = await startEcho();
    eg = await startEgress({ allow: [] });
  });
  after(async () => {
    await eg.stop();
    await echo.close();
  });

  test('cuts the open tunnels it allowed, and the next request asks again', async () => {
    const dest = `127.0.0.1:${echo.port}`;
    await eg.update([dest]);
    const t = await connectVia(eg.port, dest);
    assert.equal(t.status, 200);
    t.socket!.write('ping');
    assert.equal((await readN(t.socket!, 4)).toString(), 'ping');
    const closed = new Promise<void>((r) => t.socket!.once('close', () => r()));
    t.socket!.on('error', () => {});
    await eg.update([]);
    await closed;
    const ev = await eg.waitEvent(
      (e) => e.method === 'CONNECT' && e.port === echo.port && e.reason === 'allowlist',
    );
    assert.equal(ev.error, `closed: ${dest} was taken off the allowlist`);
    eg.answer('deny');
    const again = await connectVia(eg.port, dest);
    assert.equal(again.status, 403);
    assert.equal(eg.asks.at(-1)?.port, echo.port, 'asked anew: nothing remembered the old allowance');
  });

  test('a one-off approval is not cut by an unrelated allowlist change', async () => {
    eg.answer('allow');
    const t = await connectVia(eg.port, `127.0.0.1:${echo.port}`);
    assert.equal(t.status, 200);
    await eg.update(['deb.debian.org']);
    t.socket!.write('still');
    assert.equal((await readN(t.socket!, 5)).toString(), 'still');
    t.socket!.destroy();
  });
});

describe('one proxy per bridge, shared by every Fluid that uses it', () => {
  test('a second controller joins, serves its own sandboxes, and takes over when the first stops', async () => {
    const up = await startUpstream();
    const one = await startEgress({ allow: [], sandboxes: { '127.0.0.1': 'sb-one' } });
    const asks: string[] = [];
    const two = await startEgress({
      port: one.port,
      allow: [],
      sandboxes: { '127.0.0.2': 'sb-two' },
      decide: async (req) => {
        asks.push(`${req.sandboxId}>${req.host}:${req.port}`);
        return { decision: 'pending', approvalId: 'ap-two' };
      },
    });
    try {
      assert.equal(two.ctl.shared, true);
      assert.equal(one.ctl.shared, false);
      await one.update([], { '127.0.0.1': 'sb-one' });
      await two.update([`127.0.0.1:${up.port}`], { '127.0.0.2': 'sb-two' });
      assert.deepEqual([...one.ctl.routes!.served], ['127.0.0.1']);
      assert.deepEqual([...two.ctl.routes!.served], ['127.0.0.2']);
      // the second's sandbox reaches what the second allows
      const r = await viaProxy(two.port, `http://127.0.0.1:${up.port}/hello`, { from: '127.0.0.2' });
      assert.equal(r.status, 200);
      assert.equal((await two.waitEvent((e) => e.sandboxId === 'sb-two')).reason, 'allowlist');
      // its other requests are asked of the second, which names its approval
      const denied = await connectVia(two.port, 'example.com:443', '127.0.0.2');
      assert.equal(
        denied.head.split('\r\n')[0],
        'HTTP/1.1 403 Fluid: approval ap-two pending for example.com:443 - a person must approve',
      );
      assert.deepEqual(asks, ['sb-two>example.com:443']);
      assert.equal(one.asks.length, 0);
      // the first's sandbox is not covered by the second's allowlist
      one.answer('deny');
      assert.equal((await viaProxy(one.port, `http://127.0.0.1:${up.port}/hello`)).status, 403);
      // the host can say who is served
      const st = await probeEgressProxy(new LocalConnection('local-test'), {
        listenAddress: '127.0.0.1',
        port: one.port,
      });
      assert.equal(st.running, true);
      assert.equal(st.controllers, 2);
      assert.deepEqual(st.clients, { '127.0.0.1': 'sb-one', '127.0.0.2': 'sb-two' });
      // an address another controller already serves for another sandbox is a conflict, not a takeover
      await two.update([], { '127.0.0.2': 'sb-two', '127.0.0.1': 'sb-imposter' });
      assert.deepEqual(two.ctl.routes!.conflicts, [
        { client: '127.0.0.1', sandbox: 'sb-imposter', servedAs: 'sb-one' },
      ]);
      await two.update([`127.0.0.1:${up.port}`], { '127.0.0.2': 'sb-two' });
      // the first stops: the second starts a proxy of its own on the same address and serves again
      await one.stop();
      await two.waitLog('egress proxy ready', 1);
      assert.equal(two.ctl.shared, false);
      assert.equal(two.ctl.listen, `127.0.0.1:${one.port}`);
      const after = await viaProxy(two.port, `http://127.0.0.1:${up.port}/hello`, { from: '127.0.0.2' });
      assert.equal(after.status, 200);
    } finally {
      await two.stop();
      await one.stop();
      await up.close();
    }
  });
});
