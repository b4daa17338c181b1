/**
 * How long a plain `fluid host list --json` takes, start to exit, the ways the CLI can start:
 *   sources, no cache        the TypeScript sources, type-stripped at every start (how bin/fluid.js ran before)
 *   sources + compile cache  the same with Node's compile cache
 *   bundle + compile cache   out/cli/main.js, what bin/fluid.js runs now when the bundle is fresh
 *   node -e ''               Node's own start: the floor
 * Rounds interleave the variants, so a busy machine slows them alike; ratios matter more than
 * absolute times. The first call of each is a warm-up (migrations, cache fill) and is not counted.
 * Usage: node bench/cli-startup.ts [ROUNDS=15]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const ROUNDS = Number(process.argv[2] ?? process.env.ROUNDS ?? 15);
const ROOT = new URL('..', import.meta.url).pathname;
const NODE = process.execPath;
const TARGET_MS = 150;

const dataDir = mkdtempSync(join(tmpdir(), 'fluid-bench-cli-'));
const baseEnv: NodeJS.ProcessEnv = { ...process.env, FLUID_DATA_DIR: dataDir };
delete baseEnv.FLUID_CLI_SOURCES;
delete baseEnv.FLUID_CLI_REQUIRE_BUNDLE;
delete baseEnv.NODE_DISABLE_COMPILE_CACHE;

const fluid = [join(ROOT, 'bin/fluid.js'), 'host', 'list', '--json'];
const variants: Array<{ name: string; args: string[]; env: NodeJS.ProcessEnv }> = [
  {
    name: 'sources, no cache',
    args: fluid,
    env: { FLUID_CLI_SOURCES: '1', NODE_DISABLE_COMPILE_CACHE: '1' },
  },
  { name: 'sources + compile cache', args: fluid, env: { FLUID_CLI_SOURCES: '1' } },
  { name: 'bundle + compile cache', args: fluid, env: { FLUID_CLI_REQUIRE_BUNDLE: '1' } },
  { name: "node -e ''", args: ['-e', ''], env: {} },
];

function once(v: (typeof variants)[number]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(NODE, v.args, { env: { ...baseEnv, ...v.env }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${v.name} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return ms;
}

// the bundle must be current, or "bundle" would measure the fallback
const check = spawnSync(NODE, [join(ROOT, 'bin/fluid.js'), '--help'], {
  env: { ...baseEnv, FLUID_CLI_REQUIRE_BUNDLE: '1' },
  encoding: 'utf8',
});
if (check.status === 2 && /bundle cannot be used/.test(check.stderr)) {
  console.log(`# ${check.stderr.trim()}\n# building it: npm run -s build:cli`);
  const b = spawnSync('npm', ['run', '-s', 'build:cli'], { cwd: ROOT, stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
}

try {
  for (const v of variants) once(v);
  const times = new Map(variants.map((v) => [v.name, [] as number[]]));
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 ? [...variants].reverse() : variants;
    for (const v of order) times.get(v.name)!.push(once(v));
  }
  const stat = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return {
      median: s[Math.floor(s.length / 2)]!,
      p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]!,
    };
  };
  const before = stat(times.get(variants[0]!.name)!).median;
  console.log(
    `# fluid host list --json, ${ROUNDS} rounds, load average ${loadavg()[0]!.toFixed(1)} (${NODE})`,
  );
  console.log(`${'variant'.padEnd(26)} ${'median'.padStart(9)} ${'p90'.padStart(9)}  vs sources, no cache`);
  for (const v of variants) {
    const s = stat(times.get(v.name)!);
    console.log(
      `${v.name.padEnd(26)} ${s.median.toFixed(0).padStart(6)} ms ${s.p90.toFixed(0).padStart(6)} ms  ${(before / s.median).toFixed(2)}x faster`,
    );
  }
  const now = stat(times.get('bundle + compile cache')!).median;
  console.log(
    `# bundle + compile cache: ${now.toFixed(0)} ms median, ${now < TARGET_MS ? 'under' : 'OVER'} the ${TARGET_MS} ms target` +
      ` (Node alone: ${stat(times.get("node -e ''")!).median.toFixed(0)} ms)`,
  );
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
