/**
 * The HTTP door under load: 200 concurrent API clients (each its own keep-alive connection and
 * agent token) doing a mix of calls against one server — reads, command runs in one lab sandbox,
 * approval requests — with throughput and p50/p99 latency side by side with the same calls through
 * the in-process client (the door's own overhead is the difference). Any error fails the run.
 *
 *   flock /tmp/fluid-vm.lock node bench/api.ts [--clients 200] [--ops 15]
 *
 * Needs the lab (npm run lab). Traffic stays on loopback; the run is bounded (clients × ops calls per
 * side) and cleans up its sandbox, base copy and requests.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore } from '../src/core/createCore.ts';
import { connectInProcess } from '../src/core/doors/inprocess.ts';
import { startHttpApiServer } from '../src/core/doors/http/server.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import type { Task } from '../src/shared/contract/tasks.ts';
import type { Sandbox } from '../src/shared/contract/sandboxes.ts';

const { values } = parseArgs({ options: { clients: { type: 'string' }, ops: { type: 'string' } } });
const CLIENTS = Number(values.clients ?? 200);
const OPS = Number(values.ops ?? 15);
const person = { door: 'test' as const, id: 'bench' };

type Kind = 'read' | 'exec' | 'ask';
/** The mix, per client: a fixed sequence, so both sides run exactly the same calls. */
const plan = (client: number): Kind[] =>
  Array.from({ length: OPS }, (_, i) => {
    const k = (client * 7 + i) % 10;
    return k < 6 ? 'read' : k < 9 ? 'exec' : 'ask';
  });

interface Sample {
  kind: Kind;
  ms: number;
}

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
let sandbox: Sandbox | null = null;
const admin = connectInProcess(core, person);

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of admin.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

try {
  process.stderr.write('setting up: lab host, one sandbox…\n');
  await admin.call('hosts.add', {
    name: 'lab',
    address: lab.sshHost,
    port: lab.sshPort,
    user: lab.sshUser,
    auth: { type: 'key', keyPath: lab.keyPath },
    acceptFingerprint: lab.hostKeyFingerprint,
    libvirtUri: lab.libvirtUri,
  });
  await finish(await admin.call('hosts.check', { host: 'lab' }));
  const created = await finish(
    await admin.call('sandboxes.create', { host: 'lab', source: 'fluid-lab-web', name: 'bench-api' }),
  );
  if (created.status !== 'succeeded') throw new Error(`sandbox: ${JSON.stringify(created.error)}`);
  sandbox = created.result as Sandbox;
  const sb = sandbox.id;

  // the same actor on both sides: an agent token's
  const { secret, token } = core.tokens.create('bench', 'agent', person, null);
  const actor = { door: 'http' as const, id: `token:${token.name}`, scope: 'agent' as const };
  const inproc = connectInProcess(core, actor);
  const server = await startHttpApiServer({ core });
  const http = async (method: string, path: string, body?: unknown) => {
    // Node's fetch keeps connections alive and opens one per concurrent request (no per-origin cap)
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${secret}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 200)}`);
    return text;
  };

  const sides: Record<string, (kind: Kind, i: number) => Promise<unknown>> = {
    'in-process': (kind, i) =>
      kind === 'read'
        ? i % 2
          ? inproc.call('sandboxes.get', { sandbox: sb })
          : inproc.call('approvals.list', { limit: 20 })
        : kind === 'exec'
          ? inproc.call('sandboxes.exec', { sandbox: sb, command: 'echo ok' }).then((r) => {
              if (r.exitCode !== 0 || r.stdout !== 'ok\n') throw new Error(`exec: ${JSON.stringify(r)}`);
            })
          : inproc.call('approvals.request', { title: `bench ${i}`, risk: 'low', timeoutSeconds: 60 }),
    http: (kind, i) =>
      kind === 'read'
        ? i % 2
          ? http('GET', `/v1/sandboxes/${sb}`)
          : http('GET', '/v1/approvals?limit=20')
        : kind === 'exec'
          ? http('POST', `/v1/sandboxes/${sb}/exec`, { command: 'echo ok' }).then((t) => {
              const r = JSON.parse(t) as { exitCode: number; stdout: string };
              if (r.exitCode !== 0 || r.stdout !== 'ok\n') throw new Error(`exec: ${t}`);
            })
          : http('POST', '/v1/approvals', { title: `bench ${i}`, risk: 'low', timeoutSeconds: 60 }),
  };

  const results: Record<string, { samples: Sample[]; errors: string[]; wallMs: number }> = {};
  for (const side of ['in-process', 'http', 'in-process', 'http']) {
    // each side twice, alternating: the first pass warms connections and the guest's caches
    const samples: Sample[] = [];
    const errors: string[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        let i = 0;
        for (const kind of plan(c)) {
          const s = performance.now();
          try {
            await sides[side]!(kind, c * OPS + i++);
            samples.push({ kind, ms: performance.now() - s });
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
      }),
    );
    results[side] = { samples, errors, wallMs: performance.now() - t0 };
    process.stderr.write(`${side}: ${samples.length} calls, ${errors.length} errors\n`);
  }

  const row = (label: string, side: string, kind?: Kind) => {
    const r = results[side]!;
    const ms = r.samples.filter((s) => !kind || s.kind === kind).map((s) => s.ms);
    return {
      label,
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
  console.log('mix        side        calls   calls/s   p50 ms   p99 ms   errors');
  for (const kind of [undefined, 'read', 'exec', 'ask'] as const) {
    for (const side of ['in-process', 'http']) {
      const r = row(kind ?? 'all', side, kind);
      console.log(
        `${r.label.padEnd(10)} ${side.padEnd(11)} ${String(r.calls).padStart(5)} ${fmt(r.perSec).padStart(9)} ${fmt(r.p50).padStart(8)} ${fmt(r.p99).padStart(8)}   ${kind ? '' : results[side]!.errors.length}`,
      );
    }
    const a = row('', 'in-process', kind);
    const b = row('', 'http', kind);
    console.log(
      `${''.padEnd(10)} ratio       ${''.padStart(5)} ${a.perSec && b.perSec ? fmt(b.perSec / a.perSec, 2).padStart(9) : '-'.padStart(9)} ${fmt(b.p50 / a.p50, 2).padStart(8)} ${fmt(b.p99 / a.p99, 2).padStart(8)}`,
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
