/**
 * Sandbox expiry, in three places, so a sandbox past its time to live goes away even when only the
 * CLI is ever used, and even when no Fluid process runs at all:
 *
 *  1. Long-running doors (the app, web mode, MCP) run the janitor (SandboxService.startJanitor): it
 *     wakes at the next expiry and destroys what is due, audited as the janitor.
 *  2. Every door sweeps at start: the CLI checks with one indexed query whether anything is due and,
 *     only then, starts `fluid sandbox sweep` as a detached process, so the command itself is not
 *     delayed (dueForSweep / claimSweepSpawn here; the spawn is in src/cli/sandboxes.ts).
 *  3. The host enforces expiry on its own: expiry.py (beside this file) is installed under
 *     <storage dir>/<installation>/expiry/ with one entry per sandbox, and a watcher process
 *     destroys a sandbox once its expiry plus a grace period (Settings: sandboxes.hostExpiryGraceMinutes)
 *     has passed. It runs as a transient systemd service where systemd is the init system, otherwise
 *     as a detached process; it exits when no entry is left. It leaves a tombstone that reconcile
 *     turns into an audited `sandbox.expire` and a destroyed row, and it leaves the address
 *     reservation for Fluid to release. After a host reboot the watcher is started again by the next
 *     reconcile of that host (its domains are shut off by the reboot meanwhile).
 */
import { readFileSync } from 'node:fs';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import type { Db } from '../store/db.ts';
import type { HostLayout } from './layout.ts';
import type { SandboxRow } from './store.ts';

export const EXPIRY_SOURCE_URL = new URL('./expiry.py', import.meta.url);
let source: string | null = null;
const program = () => (source ??= readFileSync(EXPIRY_SOURCE_URL, 'utf8'));

export const expiryDir = (layout: HostLayout) => `${layout.root}/expiry`;

/** One sandbox's entry on its host (expiry.py validates it again there). */
export interface ExpiryEntry {
  id: string;
  domain: string;
  uri: string;
  dir: string;
  /** Unix seconds: the sandbox's expiry plus the grace period. */
  at: number;
}

/** What the host's watchdog destroyed on its own (a tombstone). */
export interface HostExpired {
  id: string;
  domain?: string;
  at?: number;
  expiredAt?: number;
  destroyed?: boolean;
}

export interface ArmResult {
  /** How the watcher runs now: started as a systemd service or a detached process, already running, or none needed. */
  watcher: 'systemd' | 'process' | 'running' | 'none';
  entries: number;
  expired: HostExpired[];
  /** Entries the watchdog would not take (e.g. a sandbox directory outside this installation's). */
  refused: Array<{ id: string | null; problem: string }>;
}

export function entryOf(r: SandboxRow, uri: string, graceMinutes: number): ExpiryEntry | null {
  if (!r.expires_at) return null;
  const at = Math.ceil(Date.parse(r.expires_at) / 1000) + Math.max(0, graceMinutes) * 60;
  return { id: r.id, domain: r.domain_name, uri, dir: r.dir, at };
}

/**
 * Install the watchdog and write these entries (one round trip); start the watcher if none runs.
 * With `replace`, entries of sandboxes not listed are dropped (reconcile sends the whole set).
 * Entries of sandboxes the host already expired are not re-armed: their tombstones come back.
 */
export async function armExpiry(
  conn: HostConnection,
  layout: HostLayout,
  entries: ExpiryEntry[],
  opts: { replace?: boolean; signal?: AbortSignal } = {},
): Promise<ArmResult> {
  const d = expiryDir(layout);
  const script = `set -e
command -v python3 >/dev/null || { echo "python3 is not installed on this host: sandboxes expire only while Fluid runs" >&2; exit 3; }
mkdir -p ${shq(d)}; chmod 700 ${shq(d)}
IFS= read -r prog
printf '%s' "$prog" | base64 -d > ${shq(`${d}/.expiry.py.new`)}.$$
mv -f ${shq(`${d}/.expiry.py.new`)}.$$ ${shq(`${d}/expiry.py`)}
exec python3 ${shq(`${d}/expiry.py`)} arm ${shq(layout.root)}${opts.replace ? ' --replace' : ''}`;
  const stdin = `${Buffer.from(program()).toString('base64')}\n${JSON.stringify(entries)}\n`;
  const out = await run(conn, script, {
    stdin,
    signal: opts.signal,
    what: 'Arming the host-side sandbox expiry',
    timeoutMs: 60_000,
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as ArmResult;
}

/** Forget these sandboxes' entries and tombstones; the watchdog tidies up when nothing is left. */
export async function disarmExpiry(conn: HostConnection, layout: HostLayout, ids: string[]): Promise<void> {
  const d = expiryDir(layout);
  await run(
    conn,
    `[ -f ${shq(`${d}/expiry.py`)} ] || { rm -f ${ids.map((id) => shq(`${d}/${id}.json`) + ' ' + shq(`${d}/${id}.expired`)).join(' ')}; exit 0; }
exec python3 ${shq(`${d}/expiry.py`)} disarm ${shq(layout.root)} ${ids.map(shq).join(' ')}`,
    { what: 'Removing the host-side expiry', timeoutMs: 60_000 },
  );
}

// ---- the CLI's sweep at start ---------------------------------------------------------------------

/** States the sweep acts on: live sandboxes, and failed ones whose row is still open. */
export const SWEPT_STATES = ['running', 'stopped', 'failed', 'pooled'] as const;

/** Whether any sandbox is past its expiry (one indexed query: cheap enough for every command). */
export function dueForSweep(db: Db, nowIso: string): boolean {
  return !!db
    .prepare(
      `SELECT 1 FROM sandboxes WHERE expires_at IS NOT NULL AND expires_at <= ? AND state IN (${SWEPT_STATES.map(() => '?').join(', ')}) LIMIT 1`,
    )
    .get(nowIso, ...SWEPT_STATES);
}

/**
 * Claim the right to start a background sweep for `leaseMs` (so a burst of commands starts one
 * sweeper, not one each). Atomic across processes sharing the database.
 */
export function claimSweepSpawn(db: Db, nowMs: number, leaseMs = 60_000): boolean {
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('sandboxes.sweep.spawned', '0')").run();
  const r = db
    .prepare(
      "UPDATE meta SET value = ? WHERE key = 'sandboxes.sweep.spawned' AND CAST(value AS INTEGER) <= ?",
    )
    .run(String(nowMs), nowMs - leaseMs);
  return r.changes === 1;
}

/** A sweep that found nothing to claim says so plainly. */
export function describeSweep(destroyed: string[]): string {
  return destroyed.length
    ? `Destroyed ${destroyed.length} expired sandbox${destroyed.length === 1 ? '' : 'es'}: ${destroyed.join(', ')}.`
    : 'No sandbox is past its time to live.';
}
