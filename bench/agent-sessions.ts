/**
 * Many agent sessions in one process: N scripted sessions run at once in one core (real AgentService,
 * real ToolRegistry gate with its policy, approvals lookup, audit chain and checkpoints, the session
 * store in SQLite, redaction, and every session watched through the contract's agent.watch stream),
 * against the scripted model server in a separate process speaking the real Anthropic wire format.
 * Each session makes `--calls` tool calls (one per model turn) to a trivial in-process tool, then ends.
 * The sessions are started and watched from a worker thread over a MessagePort, as the app's window
 * does over Electron's, so the core's thread pays for what it serves and not for the watchers.
 *
 *   node bench/agent-sessions.ts [--sessions 50,200,1000] [--calls 10] [--base DIR] [--runs 1]
 *                                [--cpu-prof PREFIX]
 *
 * Prints, per session count and build: completed/failed, model turns per second, CPU per model turn
 * (process.threadCpuUsage of the core's thread, and process.cpuUsage of the whole process, over the
 * run / turns), dispatch p50/p99 (from the model's reply persisted to the tool running: the loop, the
 * gate and the event loop's queueing) and event-loop delay p99/max of the core's thread
 * (perf_hooks.monitorEventLoopDelay). With --base DIR (a checkout of an earlier commit, e.g.
 * `git worktree add /tmp/base <commit>` with node_modules linked), the same run is made against that
 * build's core, alternating with this one, and the ratios are printed. Every run is a child process
 * of its own (one build, one size) after a warm-up of 4 sessions; no VM, host or network beyond
 * loopback is used. Ends with whether this build meets the goal (every session completes, at most
 * 2 ms of CPU per model turn, event-loop p99 under 100 ms at 200 sessions; the worst run counts).
 * Exits 1 when a session of this build failed or its audit chain does not verify.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import {
  MessageChannel,
  type MessagePort,
  Worker,
  isMainThread,
  parentPort,
  workerData,
} from 'node:worker_threads';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const TERMINAL = ['done', 'stopped', 'failed', 'idle'];
const DONE_MARK = 'ALL STEPS DONE';

interface Result {
  build: string;
  sessions: number;
  completed: number;
  failed: number;
  failures: string[];
  turns: number;
  wallMs: number;
  /** CPU of the core's thread (where the sessions run). */
  cpuMs: number;
  /** CPU of the whole process (the watchers' thread and V8's helper threads included). */
  processCpuMs: number;
  dispatch: number[];
  loopP99Ms: number;
  loopMaxMs: number;
  watchEvents: number;
  auditOk: boolean;
}

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '50,200,1000' },
    calls: { type: 'string', default: '10' },
    base: { type: 'string' },
    runs: { type: 'string', default: '1' },
    child: { type: 'boolean', default: false },
    root: { type: 'string' },
    url: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'timeout-s': { type: 'string', default: '900' },
  },
});

const calls = Number(values.calls);

// ---------------------------------------------------------------------------------------------------
// One run: one build's core, N sessions

async function child(): Promise<void> {
  const root = resolve(values.root ?? ROOT);
  const n = Number(values.sessions);
  const url = values.url!;
  const mod = (p: string) => import(pathToFileURL(join(root, p)).href);
  const { createCore } = await mod('src/core/createCore.ts');
  const { MemorySecretStore } = await mod('src/core/platform/secrets.ts');
  const { createLogger } = await mod('src/core/platform/logger.ts');
  const { portFromMessagePort } = await mod('src/shared/rpc.ts');
  const { z } = await import('zod');

  const dir = mkdtempSync(join(tmpdir(), 'fluid-bench-sessions-'));
  const core = createCore({
    dataDir: dir,
    secrets: new MemorySecretStore(),
    logger: createLogger({ level: 'error', stderr: true }),
  });
  // The people watching: a worker thread on a MessagePort, as the app's window is on Electron's (the
  // frames are structured-cloned across; the core's thread pays for validating and sending them).
  const { port1, port2 } = new MessageChannel();
  core.serve(portFromMessagePort(port1 as never), { door: 'test', id: 'bench' });
  const watchers = new Worker(fileURLToPath(import.meta.url), {
    workerData: { root, calls, timeoutS: Number(values['timeout-s']), port: port2 },
    transferList: [port2],
  });
  const ask = (msg: { n: number; from: number }) =>
    new Promise<WatchReport>((res, rej) => {
      watchers.once('message', res);
      watchers.once('error', rej);
      watchers.postMessage(msg);
    });

  // The tool: trivial and in-process, registered through the real gate (mode, validation, policy,
  // audit, redaction). It counts its calls per session and says when the script is finished.
  const count = new Map<string, number>();
  const lastReply = new Map<string, number>();
  const dispatch: number[] = [];
  core.tools.register({
    name: 'bench_step',
    description: 'Record one step of the benchmark task.',
    input: z.object({ note: z.string().max(200) }),
    readOnly: true,
    risk: 'low',
    summarize: (i: { note: string }) => `bench_step ${i.note}`,
    run: async (_i: { note: string }, ctx: { sessionId: string | null }) => {
      const id = ctx.sessionId ?? '';
      const t0 = lastReply.get(id);
      if (t0 !== undefined) dispatch.push(performance.now() - t0);
      const k = (count.get(id) ?? 0) + 1;
      count.set(id, k);
      return { content: k >= calls ? `step ${k}: ${DONE_MARK}` : `step ${k} of ${calls} recorded` };
    },
  });
  // The reply persisted (the loop's own event, synchronous): the start of a dispatch.
  const agent = core.agent as unknown as {
    emit(id: string, ev: { type: string; message?: { role: string } }): void;
  };
  const emit = agent.emit.bind(agent);
  agent.emit = (id, ev) => {
    if (ev.type === 'message' && ev.message?.role === 'assistant') lastReply.set(id, performance.now());
    emit(id, ev);
  };

  await core.agent.saveProvider(
    {
      id: 'scripted',
      kind: 'anthropic',
      label: 'Scripted model',
      baseUrl: url,
      model: 'scripted-model',
      apiKey: 'sk-ant-bench-0123456789abcdef',
      isDefault: true,
      inputPerMTok: 0,
      outputPerMTok: 0,
    },
    { door: 'test', id: 'bench' },
  );

  // Warm up (module loading, JIT, the provider's client) outside the measured window.
  await ask({ n: 4, from: -4 });
  dispatch.length = 0;
  count.clear();
  lastReply.clear();

  const eld = monitorEventLoopDelay({ resolution: 10 });
  let profiling: { stop(): Promise<void> } | null = null;
  if (values['cpu-prof']) profiling = await startProfile(values['cpu-prof']);
  eld.enable();
  const cpu0 = process.cpuUsage();
  const thread0 = process.threadCpuUsage();
  const t0 = performance.now();
  const report = await ask({ n, from: 0 });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const thread = process.threadCpuUsage(thread0);
  eld.disable();
  await profiling?.stop();
  const audit = core.audit.verify() as { ok: boolean };
  // Every session's tool ran exactly `calls` times (the gate neither lost nor repeated a call).
  const wrongCounts = [...count.values()].filter((k) => k !== calls).length + (n - count.size);
  if (wrongCounts) report.failures.push(`${wrongCounts} sessions did not make exactly ${calls} tool calls`);
  const result: Result = {
    build: root,
    sessions: n,
    completed: Math.max(0, report.outcomes.filter((o) => o.ok).length - wrongCounts),
    failed: report.outcomes.filter((o) => !o.ok).length + wrongCounts,
    failures: report.failures,
    turns: report.outcomes.reduce((s, o) => s + o.turns, 0),
    wallMs,
    cpuMs: (thread.user + thread.system) / 1000,
    processCpuMs: (cpu.user + cpu.system) / 1000,
    dispatch: summarize(dispatch),
    loopP99Ms: eld.percentile(99) / 1e6,
    loopMaxMs: eld.max / 1e6,
    watchEvents: report.watchEvents,
    auditOk: audit.ok,
  };
  await watchers.terminate();
  await core.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

interface WatchReport {
  outcomes: Array<{ ok: boolean; turns: number }>;
  failures: string[];
  watchEvents: number;
}

/** The worker: starts sessions over the contract and watches each until it ends. */
async function watcher(): Promise<void> {
  const {
    root,
    calls: perSession,
    timeoutS,
    port,
  } = workerData as {
    root: string;
    calls: number;
    timeoutS: number;
    port: MessagePort;
  };
  const mod = (p: string) => import(pathToFileURL(join(root, p)).href);
  const { RpcClient, portFromMessagePort } = await mod('src/shared/rpc.ts');
  const { contract } = await mod('src/shared/contract/index.ts');
  const client = new RpcClient(contract, portFromMessagePort(port as never));
  const deadline = AbortSignal.timeout(timeoutS * 1000);
  parentPort!.on('message', (msg: { n: number; from: number }) => {
    void (async () => {
      let watchEvents = 0;
      const failures: string[] = [];
      // Sessions start one after another (each create answered before the next is sent, as people or
      // scripts start them), then run concurrently.
      const watch = async (i: number, id: string): Promise<{ ok: boolean; turns: number }> => {
        let last: { status: string; steps: number; lastError: unknown } | null = null;
        try {
          const events = client.stream(
            'agent.watch',
            { sessionId: id },
            { signal: deadline },
          ) as AsyncIterable<{
            type: string;
            session?: { status: string; steps: number; lastError: unknown };
          }>;
          for await (const ev of events) {
            watchEvents++;
            if ((ev.type === 'status' || ev.type === 'snapshot') && ev.session) {
              last = ev.session;
              if (TERMINAL.includes(ev.session.status)) break;
            }
          }
        } catch (err) {
          failures.push(`session ${i}: ${(err as Error).message}`);
          return { ok: false, turns: last?.steps ?? 0 };
        }
        const ok = last?.status === 'done' && last.steps === perSession + 1;
        if (!ok && failures.length < 5)
          failures.push(
            `session ${i}: ${last?.status} after ${last?.steps} turns: ${JSON.stringify(last?.lastError)}`,
          );
        return { ok, turns: last?.steps ?? 0 };
      };
      const running: Array<Promise<{ ok: boolean; turns: number }>> = [];
      for (let k = 0; k < msg.n; k++) {
        const i = msg.from + k;
        try {
          const s = (await client.call('agent.sessions.create', {
            task: `Benchmark task ${i}: call bench_step until it says it is done.`,
            maxSteps: perSession + 5,
          })) as { id: string };
          running.push(watch(i, s.id));
        } catch (err) {
          failures.push(`session ${i}: not created: ${(err as Error).message}`);
          running.push(Promise.resolve({ ok: false, turns: 0 }));
        }
      }
      const outcomes = await Promise.all(running);
      parentPort!.postMessage({ outcomes, failures, watchEvents } satisfies WatchReport);
    })();
  });
}

function summarize(xs: number[]): number[] {
  const s = [...xs].sort((p, q) => p - q);
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN);
  return [at(0.5), at(0.99)];
}

async function startProfile(file: string): Promise<{ stop(): Promise<void> }> {
  const { Session } = await import('node:inspector/promises');
  const s = new Session();
  s.connect();
  await s.post('Profiler.enable');
  await s.post('Profiler.setSamplingInterval', { interval: 500 });
  await s.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await s.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      s.disconnect();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The driver: the model server, then each size with each build, alternating

async function parent(): Promise<void> {
  const sizes = String(values.sessions)
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((s) => Number.isInteger(s) && s > 0);
  if (!sizes.length || !Number.isInteger(calls) || calls < 1)
    throw new Error('--sessions takes a list of positive integers, --calls a positive integer');
  const builds = [...(values.base ? [resolve(values.base)] : []), ROOT];
  const scenarioDir = mkdtempSync(join(tmpdir(), 'fluid-bench-model-'));
  const scenario = join(scenarioDir, 'sessions.json');
  writeFileSync(
    scenario,
    JSON.stringify({
      name: 'bench-sessions',
      fallbacks: [
        { match: { lastToolResult: DONE_MARK }, text: 'All steps are recorded. Finished.' },
        {
          text: 'Recording the next step.',
          toolCalls: [{ name: 'bench_step', input: { note: 'next' } }],
        },
      ],
    }),
  );
  const model = spawn(process.execPath, [join(ROOT, 'scripts/scripted-model.ts'), '--scenario', scenario], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: model.stdout }).once('line', res);
    model.once('exit', (code) => rej(new Error(`the scripted model server exited (${code})`)));
  });
  const server = JSON.parse(line) as { url: string; anthropicBaseUrl: string };
  const results: Result[] = [];
  try {
    console.log(
      `agent sessions in one process: ${calls} tool calls each (${calls + 1} model turns), model server pid ${model.pid}`,
    );
    for (const n of sizes) {
      for (let r = 0; r < Number(values.runs); r++) {
        for (const build of builds) {
          await fetch(`${server.url}/_scripted/reset`, { method: 'POST' });
          const res = await runChild(build, n, server.anthropicBaseUrl);
          results.push(res);
          print(res);
        }
      }
    }
    console.log('');
    console.log(header());
    for (const r of results) print(r, true);
    if (values.base) {
      console.log('\nratios (this build vs base; >1 is better for turns/s, <1 for the others):');
      for (const n of sizes) {
        const pick = (b: string) => results.filter((r) => r.sessions === n && r.build === b);
        const mean = (xs: Result[], f: (r: Result) => number) => xs.reduce((s, r) => s + f(r), 0) / xs.length;
        const base = pick(builds[0]!);
        const cur = pick(ROOT);
        const ratio = (f: (r: Result) => number) => (mean(cur, f) / mean(base, f)).toFixed(2);
        console.log(
          `  ${String(n).padStart(5)} sessions: turns/s ×${ratio(tps)}  cpu/turn ×${ratio(cpuPerTurn)} (process ×${ratio(procCpuPerTurn)})  dispatch p99 ×${ratio((r) => r.dispatch[1]!)}  loop p99 ×${ratio((r) => r.loopP99Ms)}`,
        );
      }
    }
    console.log(
      `\ngoal (this build): every session completes, CPU per model turn <= ${GOAL_CPU_MS} ms, event-loop p99 < ${GOAL_LOOP_P99_MS} ms at ${GOAL_LOOP_AT} sessions`,
    );
    for (const n of sizes) {
      const cur = results.filter((r) => r.sessions === n && r.build === ROOT);
      const worstCpu = Math.max(...cur.map(cpuPerTurn));
      const worstLoop = Math.max(...cur.map((r) => r.loopP99Ms));
      const failed = cur.reduce((k, r) => k + r.failed, 0);
      const checks = [
        failed === 0 ? 'all complete' : `${failed} FAILED`,
        `cpu/turn ${worstCpu.toFixed(2)} ms ${worstCpu <= GOAL_CPU_MS ? 'met' : 'NOT MET'}`,
        ...(n === GOAL_LOOP_AT
          ? [`loop p99 ${worstLoop.toFixed(0)} ms ${worstLoop < GOAL_LOOP_P99_MS ? 'met' : 'NOT MET'}`]
          : []),
      ];
      console.log(
        `  ${String(n).padStart(5)} sessions (worst of ${cur.length} run(s)): ${checks.join(', ')}`,
      );
    }
  } finally {
    model.kill('SIGTERM');
    rmSync(scenarioDir, { recursive: true, force: true });
  }
  const bad = results.filter((r) => r.build === ROOT && (r.failed > 0 || !r.auditOk));
  if (bad.length) process.exitCode = 1;
}

/** What a process should sustain: CPU of the core's thread per model turn, its event-loop delay. */
const GOAL_CPU_MS = 2;
const GOAL_LOOP_P99_MS = 100;
const GOAL_LOOP_AT = 200;

const tps = (r: Result) => r.turns / (r.wallMs / 1000);
const cpuPerTurn = (r: Result) => r.cpuMs / Math.max(1, r.turns);
const procCpuPerTurn = (r: Result) => r.processCpuMs / Math.max(1, r.turns);

function header(): string {
  return 'build     sessions  completed  failed  turns/s  cpu/turn ms (thread/process)  dispatch p50/p99 ms  loop p99/max ms  audit';
}

function print(r: Result, row = false): void {
  const name = r.build === ROOT ? 'this' : 'base';
  const cpu = `${cpuPerTurn(r).toFixed(2)} / ${procCpuPerTurn(r).toFixed(2)}`;
  const line = [
    name.padEnd(8),
    String(r.sessions).padStart(9),
    String(r.completed).padStart(10),
    String(r.failed).padStart(7),
    tps(r).toFixed(0).padStart(8),
    cpu.padStart(30),
    `${r.dispatch[0]!.toFixed(1)}/${r.dispatch[1]!.toFixed(1)}`.padStart(20),
    `${r.loopP99Ms.toFixed(0)}/${r.loopMaxMs.toFixed(0)}`.padStart(16),
    ` ${r.auditOk ? 'ok' : 'BAD'}`,
  ].join(' ');
  if (row) console.log(line);
  else {
    console.log(`${line}   (${(r.wallMs / 1000).toFixed(1)} s, ${r.watchEvents} watch events)`);
    for (const f of r.failures) console.log(`    ${f}`);
  }
}

function runChild(build: string, n: number, url: string): Promise<Result> {
  return new Promise((res, rej) => {
    const args = [
      ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []),
      fileURLToPath(import.meta.url),
      '--child',
      '--root',
      build,
      '--sessions',
      String(n),
      '--calls',
      String(calls),
      '--url',
      url,
      '--timeout-s',
      String(values['timeout-s']),
      ...(values['cpu-prof']
        ? ['--cpu-prof', `${values['cpu-prof']}-${build === ROOT ? 'this' : 'base'}-${n}.cpuprofile`]
        : []),
    ];
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => {
      const last = out.trim().split('\n').at(-1);
      try {
        res(JSON.parse(last ?? '') as Result);
      } catch {
        rej(
          new Error(`the run (${build}, ${n} sessions) exited ${code} without a result: ${out.slice(-500)}`),
        );
      }
    });
  });
}

if (!isMainThread) await watcher();
else if (values.child) await child();
else await parent();
