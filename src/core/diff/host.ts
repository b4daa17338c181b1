/**
 * Talking to the host-side program (collect.py): its source ships beside this module and is read
 * relative to import.meta.url (the build copies it next to the bundle), sent over the command's own
 * stdin together with the request — one round trip, nothing left on the host's disk — and run as
 * root in a mount namespace of its own. Its answer is validated here before anything uses it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { FluidError, isErrorCode } from '../../shared/errors.ts';
import type { HostConnection } from '../hosts/connection.ts';
import noiseRules from './noise-rules.json' with { type: 'json' };

/** Where the host program's source is read from (next to this module, in the tree and in the bundle). */
export const COLLECT_SOURCE_URL = new URL('./collect.py', import.meta.url);
export const COLLECT_PROTOCOL = 1;

let cached: string | null = null;

export function collectScript(): string {
  if (cached !== null) return cached;
  try {
    cached = readFileSync(COLLECT_SOURCE_URL, 'utf8');
  } catch (e) {
    throw new FluidError(
      'INTERNAL',
      `The diff's host program ${fileURLToPath(COLLECT_SOURCE_URL)} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): this Fluid installation is incomplete; reinstall or rebuild it.`,
    );
  }
  return cached;
}

export interface NoiseRule {
  id: string;
  reason: string;
  paths?: string[];
  check?: string;
}
export const NOISE_RULES = noiseRules as { version: number; rules: NoiseRule[]; sensitive: string[] };

/** Rule ids → why (including the collectors' "summarized" bucket). */
export function noiseReasons(): Record<string, string> {
  const out: Record<string, string> = {
    summarized: 'expressed as typed changes (users and groups, sysctl, kernel modules)',
  };
  for (const r of NOISE_RULES.rules) out[r.id] = r.reason;
  return out;
}

export type ViewSpec =
  | { kind: 'baseline' }
  | { kind: 'image'; image: string; snapshot?: string | null; label?: string }
  | { kind: 'snapshot'; name: string; uri: string; domain: string; image: string }
  /** The disk now: a running sandbox is read through a quiesced short-lived layer, a stopped one as is. */
  | {
      kind: 'live';
      uri: string;
      domain: string;
      disk: string;
      image: string;
      otherDisks: string[];
      running: boolean;
      /** The lock snapshot steps take (snapshots.ts): held while the short-lived layer exists. */
      snapshotLock: string;
    };

export interface DiffRequest {
  workdir: string;
  tmpdir: string;
  lock: string;
  disk: string;
  baseline: string;
  index: string;
  from: ViewSpec;
  to: ViewSpec;
  method: 'auto' | 'fast' | 'walk';
  limits?: { textBytes?: number; diffLines?: number };
}

// ---- what comes back ----------------------------------------------------------------------------

const Meta = z.object({
  type: z.enum(['file', 'dir', 'symlink', 'fifo', 'socket', 'char', 'block']),
  mode: z.string(),
  uid: z.number(),
  gid: z.number(),
  user: z.string().nullable(),
  group: z.string().nullable(),
  size: z.number(),
  sha256: z.string().nullable(),
  target: z.string().nullable(),
});

/** Items as the host sends them: the contract's items without their ids (core assigns those). */
export const HostItem = z.looseObject({ kind: z.string(), key: z.string() });

export const HostAnswer = z.discriminatedUnion('ok', [
  z.object({
    protocol: z.literal(COLLECT_PROTOCOL),
    ok: z.literal(true),
    method: z.enum(['fast', 'walk']),
    consistency: z.object({ mode: z.string(), detail: z.string() }),
    items: z.array(HostItem),
    noise: z.array(z.tuple([z.string(), z.string()])),
    stats: z.record(z.string(), z.union([z.number(), z.string()])),
    timings: z.record(z.string(), z.number()),
    warnings: z.array(z.string()),
    filesystem: z.object({
      type: z.string(),
      partition: z.number().nullable(),
      replayed: z.array(z.string()),
    }),
  }),
  z.object({
    protocol: z.number(),
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
]);
export type HostResult = Extract<z.infer<typeof HostAnswer>, { ok: true }>;
export { Meta as HostMeta };

/**
 * The command that runs the program on the host: the program text and the request both arrive on
 * stdin (the program reads exactly its own length first). `timeout` bounds it even if Fluid goes away.
 */
export function collectCommand(scriptBytes: number, timeoutSeconds: number): string {
  const py = `import sys;exec(compile(sys.stdin.buffer.read(${scriptBytes}),'fluid-diff','exec'))`;
  return `PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3; exec timeout --kill-after=10 ${timeoutSeconds} "$PY" -c "${py}"`;
}

export async function runCollect(
  conn: HostConnection,
  request: Record<string, unknown>,
  opts: { signal?: AbortSignal; timeoutSeconds?: number } = {},
): Promise<HostResult> {
  const script = Buffer.from(collectScript(), 'utf8');
  const body = Buffer.from(
    JSON.stringify({ protocol: COLLECT_PROTOCOL, rules: NOISE_RULES, ...request }),
    'utf8',
  );
  const timeout = opts.timeoutSeconds ?? 900;
  const r = await conn.exec(collectCommand(script.length, timeout), {
    stdin: Buffer.concat([script, body]),
    signal: opts.signal,
    timeoutMs: (timeout + 30) * 1000,
    maxOutputBytes: 512 * 1024 * 1024,
  });
  const out = r.stdout.toString('utf8').trim();
  if (r.timedOut) throw new FluidError('TIMEOUT', `Reading the disk took longer than ${timeout} s.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(out.split('\n').at(-1) ?? '');
  } catch {
    const err = r.stderr.toString('utf8').trim() || out;
    throw new FluidError(
      'UNAVAILABLE',
      `The diff's host program did not answer (exit ${r.code ?? r.signal}): ${err.slice(-1500) || 'no output'}. Is python3 (3.9+) installed on the host?`,
    );
  }
  const a = HostAnswer.safeParse(parsed);
  if (!a.success)
    throw new FluidError(
      'INTERNAL',
      `The diff's host program answered in an unexpected shape: ${a.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  if (!a.data.ok) {
    const code = isErrorCode(a.data.error.code) ? a.data.error.code : 'INTERNAL';
    throw new FluidError(code, a.data.error.message);
  }
  return a.data;
}
