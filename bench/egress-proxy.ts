/**
 * Throughput of the egress proxy: a 50 MB download direct from a local upstream vs through the proxy
 * (plain HTTP forwarding, and a CONNECT tunnel). The upstream runs in its own process and the client
 * counts raw bytes, so all three paths pay the same client cost; everything is on loopback, so the
 * difference is the proxy's own cost. Run: node bench/egress-proxy.ts [MB] [rounds]
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { startEgress } from '../test/integration/egress/support.ts';

const MB = Number(process.argv[2] ?? 50);
const ROUNDS = Number(process.argv[3] ?? 7);
const N = MB * 1024 * 1024;

const UPSTREAM = `
const http = require('node:http');
const block = Buffer.alloc(1 << 20, 7);
const s = http.createServer((req, res) => {
  let left = Number(new URL(req.url, 'http://x').searchParams.get('n'));
  res.setHeader('content-length', left);
  const pump = () => {
    while (left > 0) {
      const c = left >= block.length ? block : block.subarray(0, left);
      left -= c.length;
      if (!res.write(c)) return res.once('drain', pump);
    }
    res.end();
  };
  pump();
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;

/** Send `head` (after an optional CONNECT), count every byte that comes back until the server closes. */
function fetchRaw(port: number, head: string, connectTo?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let n = 0;
    let tunnel = !connectTo;
    let pre = Buffer.alloc(0);
    s.on('error', reject);
    if (connectTo) s.write(`CONNECT ${connectTo} HTTP/1.1\r\nHost: ${connectTo}\r\n\r\n`);
    else s.write(head);
    s.on('data', (c: Buffer) => {
      if (tunnel) {
        n += c.length;
        return;
      }
      pre = Buffer.concat([pre, c]);
      const end = pre.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!pre.subarray(0, 12).toString().includes(' 200')) return reject(new Error(pre.toString()));
      tunnel = true;
      s.write(head);
    });
    s.on('end', () => resolve(n));
  });
}

async function once(f: () => Promise<number>): Promise<number> {
  const t0 = process.hrtime.bigint();
  const n = await f();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (n < N) throw new Error(`got ${n} bytes, wanted at least ${N}`);
  return N / 1024 / 1024 / s;
}

/** Interleave the paths round by round (after one warm-up each) so drift hits all of them alike. */
async function measure(paths: Record<string, () => Promise<number>>): Promise<Record<string, number>> {
  const rates: Record<string, number[]> = {};
  for (const f of Object.values(paths)) await once(f);
  for (let i = 0; i < ROUNDS; i++)
    for (const [label, f] of Object.entries(paths)) (rates[label] ??= []).push(await once(f));
  const medians: Record<string, number> = {};
  for (const [label, rs] of Object.entries(rates)) {
    const sorted = [...rs].sort((a, b) => a - b);
    medians[label] = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `${label.padEnd(22)} median ${medians[label].toFixed(0).padStart(5)} MB/s   (runs: ${rs.map((r) => r.toFixed(0)).join(', ')})`,
    );
  }
  return medians;
}

const child = spawn(process.execPath, ['-e', UPSTREAM], { stdio: ['ignore', 'pipe', 'inherit'] });
const upPort = await new Promise<number>((resolve) =>
  child.stdout!.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))),
);
const eg = await startEgress({ allow: [`127.0.0.1:${upPort}`] });
const target = `127.0.0.1:${upPort}`;
const path = `/big?n=${N}`;
try {
  const python = eg.logs.find((l) => l.msg === 'egress proxy ready')?.fields?.python;
  console.log(`egress proxy throughput: ${MB} MB over loopback, ${ROUNDS} rounds, python ${python}`);
  const m = await measure({
    direct: () => fetchRaw(upPort, `GET ${path} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`),
    'proxy, plain HTTP': () =>
      fetchRaw(
        eg.port,
        `GET http://${target}${path} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
      ),
    'proxy, CONNECT tunnel': () =>
      fetchRaw(eg.port, `GET ${path} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`, target),
  });
  const direct = m.direct!;
  const plain = m['proxy, plain HTTP']!;
  const tunnel = m['proxy, CONNECT tunnel']!;
  console.log(
    `ratio proxy/direct: plain HTTP ${(plain / direct).toFixed(2)}, CONNECT ${(tunnel / direct).toFixed(2)}`,
  );
} finally {
  await eg.stop();
  child.kill();
}
