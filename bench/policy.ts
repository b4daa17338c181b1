/**
 * How fast the read-only shell policy answers, three ways side by side:
 *   in process              createShellPolicy().check() over the corpus, for SECONDS
 *   fluid policy check --jsonl   one CLI process, every corpus line streamed through it
 *   one CLI per command     `fluid policy check -- CMD` for each of PER_COMMAND commands
 * and the ratios between them. The unit tests check what the policy decides, never how fast.
 * Usage: node bench/policy.ts [SECONDS=2] [PER_COMMAND=10]
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createShellPolicy } from '../src/core/policy/shell.ts';
import { loadCorpus } from '../test/unit/policy/corpus.ts';

const SECONDS = Number(process.argv[2] ?? 2);
const PER_COMMAND = Number(process.argv[3] ?? 10);
const FLUID = fileURLToPath(new URL('../bin/fluid.js', import.meta.url));

const corpus = [...loadCorpus('allow'), ...loadCorpus('deny')];

// In process.
const policy = await createShellPolicy();
let n = 0;
const t0 = performance.now();
while (performance.now() - t0 < SECONDS * 1000)
  for (const c of corpus) {
    policy.check(c);
    n++;
  }
const inProcess = n / ((performance.now() - t0) / 1000);

// One CLI process, --jsonl.
const lines = corpus.map((c) => JSON.stringify(c)).join('\n') + '\n';
const t1 = performance.now();
const child = spawn(process.execPath, [FLUID, 'policy', 'check', '--jsonl'], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
let out = 0;
child.stdout.on('data', (b: Buffer) => (out += b.toString().split('\n').length - 1));
child.stdin.end(lines);
await new Promise((r) => child.on('close', r));
const jsonl = out / ((performance.now() - t1) / 1000);
if (out !== corpus.length) throw new Error(`--jsonl answered ${out} of ${corpus.length} lines`);

// One CLI process per command.
const t2 = performance.now();
for (const c of corpus.slice(0, PER_COMMAND)) {
  const r = spawnSync(process.execPath, [FLUID, 'policy', 'check', '--', c], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`fluid policy check exited ${r.status}: ${r.stderr}`);
}
const perProcess = PER_COMMAND / ((performance.now() - t2) / 1000);

const row = (name: string, perSecond: number) =>
  console.log(`${name.padEnd(34)} ${perSecond.toFixed(1).padStart(9)} checks/s`);
console.log(`corpus: ${corpus.length} commands`);
row('in process', inProcess);
row('fluid policy check --jsonl', jsonl);
row('one fluid policy check per command', perProcess);
console.log(`in process / --jsonl: ${(inProcess / jsonl).toFixed(1)}x`);
console.log(`--jsonl / one process per command: ${(jsonl / perProcess).toFixed(1)}x`);
