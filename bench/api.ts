/**
 * The HTTP door under load: 200 concurrent API clients (each its own keep-alive connection, one agent
 * token) doing a mix of calls against one server — reads, command runs in one lab sandbox, approval
 * requests — with throughput and p50/p99 latency side by side with the same calls through the
 * in-process client (the door's own overhead is the difference). Any error fails the run.
 *
 *   flock /tmp/fluid-vm.lock node bench/api.ts [--clients 200] [--ops 15]
 *
 * The HTTP clients run in a worker thread (node:http, one keep-alive connection each), so the server's
 * event loop is not also the clients' (the in-process client necessarily shares the core's). Each side runs twice, alternating; the second
 * pass is reported (the first warms connections and the guest). Needs the lab (npm run lab); traffic
 * stays on loopback; the run is bounded (clients × ops calls per pass) and cleans up its sandbox,
 * base copy and requests.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Sandbox } from '../src/shared/contract/sandboxes.ts';
import type { Task } from '../src/shared/contract/tasks.ts';

type Kind = 'read' | 'exec' | 'ask';
interface Sample {
  kind: Kind;
  ms: number;
}
interface PassResult {
  samples: Sample[];
  errors: string[];
  wallMs: number;
}
interface Job {
  clients: number;
  ops: number;
  sandbox: string;
  url?: string;
  secret?: string;
}

/** The mix, per client: a fixed sequence, so both sides run exactly the same calls. */
const plan = (client: number, ops: number): Kind[] =>
  Array.from({ length: ops }, (_, i) => {
    const k = (client * 7 + i) % 10;
    return k < 6 ? 'read' : k < 9 ? 'exec' : 'ask';
  });

/** Every client runs its sequence; the calls of all clients overlap. */
async function pass(job: Job, call: (kind: Kind, i: number) => Promise<unknown>): Promise<PassResult> {
  const samples: Sample[] = [];
  const errors: string[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.clients }, async (_, c) => {
      let i = 0;
      for (const kind of plan(c, job.ops)) {
        const s = performance.now();
        try {
          await call(kind, c * job.ops + i++);
          samples.push({ kind, ms: performance.now() - s });
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    }),
  );
  return { samples, errors, wallMs: performance.now() - t0 };
}

const checkExec = (r: { exitCode: number | null; stdout: string }) => {
  if (r.exitCode !== 0 || r.stdout !== 'ok\n') throw new Error(`exec: ${JSON.stringify(r)}`);
};

if (!isMainThread) {
  // ---- the HTTP clients (a worker thread) ----------------------------------------------------------
  const job = workerData as Job;
  // node:http with a keep-alive agent and no socket cap: one connection per client (undici's fetch
  // queued some requests for seconds under 200 concurrent clients, which measured the client)
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const target = new URL(job.url!);
  const http = (method: string, path: string, body?: unknown) =>
    new Promise<string>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path,
          method,
          agent,
          headers: {
            Authorization: `Bearer ${job.secret}`,
            ...(data === undefined
              ? {}
              : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () =>
            (res.statusCode ?? 0) < 400
              ? resolve(text)
              : reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  parentPort!.on('message', (m: 'go') => {
    if (m !== 'go') return;
    void pass(job, (kind, i) =>
      kind === 'read'
        ? i % 2
          ? http('GET', `/v1/sandboxes/${job.sandbox}`)
          : http('GET', '/v1/approvals?limit=20')
        : kind === 'exec'
          ? http('POST', `/v1/sandboxes/${job.sandbox}/exec`, { command: 'echo ok' }).then((t) =>
              checkExec(JSON.parse(t) as { exitCode: number; stdout: string }),
            )
          : http('POST', '/v1/approvals', { title: `bench ${i}`, risk: 'low', timeoutSeconds: 60 }),
    ).then((r) => parentPort!.postMessage(r));
  });
} else {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, ops: { type: 'string' } } });
  const CLIENTS = Number(values.clients ?? 200);
  const OPS = Number(values.ops ?? 15);
  const { createCore } = await import('../src/core/createCore.ts');
  const { connectInProcess } = await import('../src/core/doors/inprocess.ts');
  const { startHttpApiServer } = await import('../src/core/doors/http/server.ts');
  const { MemorySecretStore } = await import('../src/core/platform/secrets.ts');
  const { createLogger } = await import('../src/core/platform/logger.ts');

  const person = { door: 'test' as const, id: 'bench' };
  const lab = JSON.parse(readFileSync('/var/tmp/fluid-lab/lab.json', 'utf8')) as {
    sshHost: string;
    sshPort: number;
    sshUser: string;
    keyPath: string;
    hostKeyFingerprint: string;
    libvirtUri: string;
  };
  const dir = mkdtempSync(join(tmpdir(), 'fluid-bench-api-'));
  const core = createCore({
    dataDir: dir,
    secrets: new MemorySecretStore(),
    logger: createLogger({ level: 'error' }),
    egress: null,
  });
  const admin = connectInProcess(core, person);
  let sandbox: Sandbox | null = null;
  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
  };
  try {
    process.stderr.write('setting up: lab host, an agent token, its sandbox…\n');
    await admin.call('hosts.add', {
      name: 'lab',
      address: lab.sshHost,
      port: lab.sshPort,
      user: lab.sshUser,
      auth: { type: 'key', keyPath: lab.keyPath },
      acceptFingerprint: lab.hostKeyFingerprint,
      libvirtUri: lab.libvirtUri,
    });
    const watch = async (task: Task) => {
      let last = task;
      for await (const t of admin.stream('tasks.watch', { id: task.id })) last = t;
      return last;
    };
    await watch(await admin.call('hosts.check', { host: 'lab' }));
    // the same actor on both sides: an agent token's, which owns the sandbox (agents work only in theirs)
    const { secret, token } = core.tokens.create('bench', 'agent', person, null);
    const actor = { door: 'http' as const, id: `token:${token.name}`, scope: 'agent' as const };
    const inproc = connectInProcess(core, actor);
    const created = await watch(
      await inproc.call('sandboxes.create', { host: 'lab', source: 'fluid-lab-web', name: 'bench-api' }),
    );
    if (created.status !== 'succeeded') throw new Error(`sandbox: ${JSON.stringify(created.error)}`);
    sandbox = created.result as Sandbox;
    const sb = sandbox.id;
    const server = await startHttpApiServer({ core });
    const job: Job = { clients: CLIENTS, ops: OPS, sandbox: sb, url: server.url, secret };
    const worker = new Worker(new URL(import.meta.url), { workerData: job });

    const sides: Record<string, () => Promise<PassResult>> = {
      'in-process': () =>
        pass(job, (kind, i) =>
          kind === 'read'
            ? i % 2
              ? inproc.call('sandboxes.get', { sandbox: sb })
              : inproc.call('approvals.list', { limit: 20 })
            : kind === 'exec'
              ? inproc.call('sandboxes.exec', { sandbox: sb, command: 'echo ok' }).then(checkExec)
              : inproc.call('approvals.request', { title: `bench ${i}`, risk: 'low', timeoutSeconds: 60 }),
        ),
      http: () =>
        new Promise<PassResult>((resolve) => {
          worker.once('message', (r: PassResult) => resolve(r));
          worker.postMessage('go');
        }),
    };
    const results: Record<string, PassResult> = {};
    for (const side of ['in-process', 'http', 'in-process', 'http']) {
      results[side] = await sides[side]!();
      process.stderr.write(
        `${side}: ${results[side].samples.length} calls, ${results[side].errors.length} errors, ${(results[side].wallMs / 1000).toFixed(1)} s\n`,
      );
    }
    await worker.terminate();

    const row = (side: string, kind?: Kind) => {
      const r = results[side]!;
      const ms = r.samples.filter((s) => !kind || s.kind === kind).map((s) => s.ms);
      return {
        calls: ms.length,
        perSec: kind ? null : (ms.length / r.wallMs) * 1000,
        p50: pct(ms, 50),
        p99: pct(ms, 99),
      };
    };
    const fmt = (n: number | null, d = 1) => (n === null ? '-' : n.toFixed(d));
    console.log(
      `\nHTTP API under load: ${CLIENTS} concurrent clients × ${OPS} calls (60% reads, 30% commands in one lab sandbox, 10% approval requests)\n`,
    );
    console.log('mix    side         calls   calls/s    p50 ms    p99 ms  errors');
    for (const kind of [undefined, 'read', 'exec', 'ask'] as const) {
      for (const side of ['in-process', 'http']) {
        const r = row(side, kind);
        console.log(
          `${(kind ?? 'all').padEnd(6)} ${side.padEnd(11)} ${String(r.calls).padStart(6)} ${fmt(r.perSec).padStart(9)} ${fmt(r.p50).padStart(9)} ${fmt(r.p99).padStart(9)}  ${kind ? '' : results[side]!.errors.length}`,
        );
      }
      const a = row('in-process', kind);
      const b = row('http', kind);
      console.log(
        `${''.padEnd(6)} http/in-proc ${''.padStart(5)} ${a.perSec && b.perSec ? fmt(b.perSec / a.perSec, 2).padStart(9) : '-'.padStart(9)} ${fmt(b.p50 / a.p50, 2).padStart(9)} ${fmt(b.p99 / a.p99, 2).padStart(9)}`,
      );
    }
    const errors = [...results['in-process']!.errors, ...results.http!.errors];
    console.log(
      `\n${errors.length} errors${errors.length ? `: ${[...new Set(errors)].slice(0, 5).join(' | ')}` : ''}`,
    );
    await server.close();
    inproc.close();
    if (errors.length) process.exitCode = 1;
  } finally {
    for (const a of core.approvals.list({ status: 'pending', limit: 500 }))
      core.approvals.cancel(a.id, person, 'benchmark over');
    if (sandbox) await admin.call('sandboxes.destroy', { sandbox: sandbox.id }).catch(() => {});
    await admin.call('bases.prune', { host: 'lab' }).catch(() => {});
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
