/**
 * Copies of the checkpoints on every host Fluid manages, like the witnesses of a transparency log:
 * `<storageDir>/<installation id>/audit-checkpoints.jsonl` on the host, owner-only, only ever appended
 * to. Whoever rewrites the log here must also rewrite every host's copy.
 *
 * Delivery never blocks an append: a cut checkpoint schedules a flush in the background, one round
 * trip per host (hosts in parallel), and what a host has confirmed is recorded in audit_witnesses, so
 * an unreachable host is simply behind until the next flush reaches it. On the host, the script refuses
 * to append unless the copy's last line is the checkpoint Fluid last delivered there (under flock), so
 * a copy that was cut short or rewritten is never papered over: the disagreement is audited and shown
 * by verify. The local host gets a copy only once Fluid keeps files there (its directory exists); an SSH
 * host gets its directory created. The file is owner-only (0600); the directory keeps the mode the rest
 * of Fluid's files need (qemu traverses it to reach base copies).
 *
 * The copy outlives everything else of the installation on the host (pruning bases and templates leaves
 * it): removing it would remove the evidence it exists for.
 */
import type { Host } from '../../shared/contract/hosts.ts';
import { toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import { shq, type HostConnection } from '../hosts/connection.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import { hostLayout } from '../sandboxes/layout.ts';
import type { Db } from '../store/db.ts';
import {
  describeCheckpoint,
  isCheckpoint,
  parseCheckpointText,
  parseLine,
  sameCheckpoint,
  toLine,
  type Checkpoint,
} from './checkpoint.ts';
import { CHECKPOINT_FILE, type CheckpointLog } from './checkpoints.ts';

const ACTOR: Actor = { door: 'system', id: 'audit' };
const MARK = 'fluid-audit';
/** How long an unreachable host is left alone before the next delivery attempt. */
const RETRY_MS = 60_000;

export interface WitnessDeps {
  db: Db;
  checkpoints: CheckpointLog;
  installation: string;
  hosts: { list(): Host[]; connection(ref: string): Promise<HostConnection> };
  /** Disagreements found while delivering are audited. */
  audit: { append(input: { actor: Actor; action: string; target?: string | null; data?: unknown }): unknown };
  clock: Clock;
  log?: Logger;
  /** Per host round trip (after connecting). */
  timeoutMs?: number;
}

export interface WitnessState {
  hostId: string;
  delivered: number;
  deliveredAt: string | null;
  attemptedAt: string | null;
  error: string | null;
}

export interface HostCopy {
  host: Host;
  path: string;
  /** copy: read; unused: Fluid keeps nothing on this host; missing: no file; unreachable: see error. */
  status: 'copy' | 'unused' | 'missing' | 'unreachable';
  checkpoints: Checkpoint[];
  malformed: Array<{ line: number; error: string }>;
  error: string | null;
  state: WitnessState;
}

export const hostCheckpointPath = (storageDir: string, installation: string): string =>
  `${hostLayout(storageDir, installation).root}/${CHECKPOINT_FILE}`;

/**
 * Append on the host, in one round trip. stdin: the line Fluid last delivered (empty if none), then the
 * lines to append. Appends only if the copy still ends with that line.
 */
export function appendScript(root: string, create: boolean): string {
  const f = `${root}/${CHECKPOINT_FILE}`;
  return `set -u
root=${shq(root)}; f=${shq(f)}
if [ ! -d "$root" ]; then
  ${create ? 'mkdir -p "$root" || exit 1' : `echo '${MARK} unused'; exit 0`}
fi
if [ ! -e "$f" ]; then (umask 077 && : >> "$f") || exit 1; fi
exec 9>>"$f" || exit 1
if command -v flock >/dev/null 2>&1; then flock -w 20 9 || { echo '${MARK} busy'; exit 0; }; fi
IFS= read -r expect || expect=
last=$(tail -n 1 "$f")
if [ "$last" != "$expect" ]; then printf '${MARK} conflict\\n%s\\n' "$last"; exit 0; fi
n=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  printf '%s\\n' "$line" >&9 || exit 1
  n=$((n + 1))
done
echo "${MARK} appended $n"
`;
}

/** Read the host's copy, in one round trip. */
export function readScript(root: string): string {
  const f = `${root}/${CHECKPOINT_FILE}`;
  return `root=${shq(root)}; f=${shq(f)}
if [ ! -d "$root" ]; then echo '${MARK} unused'; exit 0; fi
if [ ! -e "$f" ]; then echo '${MARK} missing'; exit 0; fi
echo '${MARK} copy'; exec cat -- "$f"
`;
}

export class HostWitness {
  private readonly d: WitnessDeps;
  private running: Promise<void> | null = null;
  /** Hosts found without Fluid's directory (the local host before it is used): not asked again for a while. */
  private readonly unusedUntil = new Map<string, number>();
  private again = false;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(deps: WitnessDeps) {
    this.d = deps;
    this.unsubscribe = deps.checkpoints.onCut(() => this.schedule());
  }

  private get timeoutMs(): number {
    return this.d.timeoutMs ?? 20_000;
  }

  private root(h: Host): string {
    return hostLayout(h.storageDir, this.d.installation).root;
  }

  state(hostId: string): WitnessState {
    const r = this.d.db
      .prepare('SELECT delivered, delivered_at, attempted_at, error FROM audit_witnesses WHERE host_id = ?')
      .get(hostId) as
      | { delivered: number; delivered_at: string | null; attempted_at: string | null; error: string | null }
      | undefined;
    return {
      hostId,
      delivered: r?.delivered ?? 0,
      deliveredAt: r?.delivered_at ?? null,
      attemptedAt: r?.attempted_at ?? null,
      error: r?.error ?? null,
    };
  }

  private record(hostId: string, patch: { delivered?: number; error: string | null }): void {
    const now = this.d.clock.now().toISOString();
    const prev = this.state(hostId);
    const delivered = patch.delivered ?? prev.delivered;
    this.d.db
      .prepare(
        `INSERT INTO audit_witnesses (host_id, delivered, delivered_at, attempted_at, error) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(host_id) DO UPDATE SET delivered = excluded.delivered, delivered_at = excluded.delivered_at,
           attempted_at = excluded.attempted_at, error = excluded.error`,
      )
      .run(hostId, delivered, patch.delivered !== undefined ? now : prev.deliveredAt, now, patch.error);
  }

  /** Deliver pending checkpoints in the background (coalesced: one flush at a time, then once more). */
  schedule(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.flushAll();
      } while (this.again && !this.closed);
    })()
      .catch((err: unknown) => this.d.log?.warn('audit checkpoint delivery failed', { err }))
      .finally(() => {
        this.running = null;
      });
  }

  /** Resolves when the background delivery under way (if any) has finished. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Deliver now and wait, trying every host whatever its recent failures. */
  async flush(): Promise<void> {
    if (this.running) await this.running;
    this.unusedUntil.clear();
    await this.flushAll(true);
  }

  /**
   * A host that could not be reached is tried again only after RETRY_MS (the time of the last attempt
   * is in the database, so this holds across processes): CLI commands do not each wait for it at exit.
   */
  private async flushAll(force = false): Promise<void> {
    const latest = this.d.checkpoints.latest();
    if (!latest) return;
    const now = this.d.clock.now().getTime();
    const due = (h: Host) => {
      const st = this.state(h.id);
      if (st.delivered >= latest.n) return false;
      if (force) return true;
      if ((this.unusedUntil.get(h.id) ?? 0) > Date.now()) return false;
      const failedRecently =
        st.error?.startsWith('unreachable') && st.attemptedAt && now - Date.parse(st.attemptedAt) < RETRY_MS;
      return !failedRecently;
    };
    await Promise.allSettled(
      this.d.hosts
        .list()
        .filter(due)
        .map((h) => this.flushHost(h)),
    );
  }

  private async flushHost(h: Host): Promise<void> {
    for (let attempt = 0; attempt < 3 && !this.closed; attempt++) {
      const st = this.state(h.id);
      let expect = '';
      if (st.delivered > 0) {
        const mine = this.d.checkpoints.get(st.delivered);
        if (!mine) {
          this.fail(
            h,
            `this database no longer holds checkpoint #${st.delivered}, which host ${h.name} was given`,
          );
          return;
        }
        expect = toLine(mine);
      }
      const send = this.d.checkpoints.after(st.delivered);
      if (!send.length) return;
      let out: string;
      try {
        const conn = await this.d.hosts.connection(h.id);
        const r = await conn.exec(appendScript(this.root(h), h.kind === 'ssh'), {
          stdin: [expect, ...send.map(toLine)].join('\n') + '\n',
          timeoutMs: this.timeoutMs,
        });
        if (r.timedOut) throw new Error(`timed out after ${this.timeoutMs} ms`);
        if (r.code !== 0)
          throw new Error(
            `exit ${r.code ?? r.signal}: ${(r.stderr.toString().trim() || r.stdout.toString().trim()).slice(0, 500)}`,
          );
        out = r.stdout.toString();
      } catch (err) {
        if (this.closed) return;
        this.record(h.id, { error: `unreachable: ${toErrorPayload(err).message}` });
        return;
      }
      const [status = '', ...rest] = out.split('\n');
      if (status === `${MARK} unused`) {
        this.unusedUntil.set(h.id, Date.now() + 60_000);
        this.record(h.id, { error: null });
        return;
      }
      if (status.startsWith(`${MARK} appended`)) {
        this.record(h.id, { delivered: send.at(-1)!.n, error: null });
        return;
      }
      if (status === `${MARK} busy`) {
        this.record(h.id, { error: 'the copy stayed locked by another writer' });
        return;
      }
      if (status !== `${MARK} conflict`) {
        this.record(h.id, { error: `unexpected answer: ${out.slice(0, 200)}` });
        return;
      }
      // The copy does not end where we left it.
      const theirs = rest[0] ?? '';
      if (!theirs) {
        this.regressed(h, st.delivered, 0);
        this.record(h.id, { delivered: 0, error: null });
        continue;
      }
      const parsed = parseLine(theirs);
      const mine = isCheckpoint(parsed) ? this.d.checkpoints.get(parsed.n) : null;
      if (isCheckpoint(parsed) && mine && sameCheckpoint(mine, parsed)) {
        // Another process delivered more (fine), or the copy lost its newest lines (audited).
        if (parsed.n < st.delivered) this.regressed(h, st.delivered, parsed.n);
        this.record(h.id, { delivered: parsed.n, error: null });
        continue;
      }
      this.fail(
        h,
        isCheckpoint(parsed)
          ? `host ${h.name}'s copy ends with checkpoint ${describeCheckpoint(parsed)}, which ${mine ? `differs from this database's #${parsed.n}` : 'this database does not hold'}`
          : `host ${h.name}'s copy ends with a line that is not a checkpoint (${parsed.error})`,
      );
      return;
    }
  }

  private regressed(h: Host, had: number, found: number): void {
    this.d.log?.warn('audit: a host copy of the checkpoints lost lines', { host: h.name, had, found });
    this.d.audit.append({
      actor: ACTOR,
      action: 'audit.copy.regressed',
      target: h.id,
      data: { host: h.name, delivered: had, found },
    });
  }

  /** A disagreement: delivery to this host stops until a person looks; audited once. */
  private fail(h: Host, message: string): void {
    const error = `disagrees: ${message}`;
    if (this.state(h.id).error === error) return;
    this.record(h.id, { error });
    this.d.log?.warn('audit: a host copy of the checkpoints disagrees', { host: h.name, message });
    this.d.audit.append({
      actor: ACTOR,
      action: 'audit.copy.conflict',
      target: h.id,
      data: { host: h.name, message },
    });
  }

  /** Read every host's copy (verify), in parallel. */
  async readCopies(): Promise<HostCopy[]> {
    return Promise.all(this.d.hosts.list().map((h) => this.readCopy(h)));
  }

  async readCopy(h: Host): Promise<HostCopy> {
    const root = this.root(h);
    const base = {
      host: h,
      path: `${root}/${CHECKPOINT_FILE}`,
      checkpoints: [] as Checkpoint[],
      malformed: [] as Array<{ line: number; error: string }>,
      error: null,
      state: this.state(h.id),
    };
    try {
      const conn = await this.d.hosts.connection(h.id);
      const r = await conn.exec(readScript(root), {
        timeoutMs: this.timeoutMs,
        maxOutputBytes: 256 * 1024 * 1024,
      });
      if (r.timedOut) throw new Error(`timed out after ${this.timeoutMs} ms`);
      if (r.code !== 0)
        throw new Error(`exit ${r.code ?? r.signal}: ${r.stderr.toString().trim().slice(0, 500)}`);
      const out = r.stdout.toString();
      const nl = out.indexOf('\n');
      const status = nl < 0 ? out : out.slice(0, nl);
      if (status === `${MARK} unused`) return { ...base, status: 'unused' };
      if (status === `${MARK} missing`) return { ...base, status: 'missing' };
      if (status !== `${MARK} copy`) throw new Error(`unexpected answer: ${out.slice(0, 200)}`);
      return { ...base, status: 'copy', ...parseCheckpointText(out.slice(nl + 1)) };
    } catch (err) {
      return { ...base, status: 'unreachable', error: toErrorPayload(err).message };
    }
  }

  /** Stop scheduling; wait for a delivery under way (or one started for the last checkpoint) up to deadlineMs. */
  async close(deadlineMs = 3000): Promise<void> {
    if (this.closed) return;
    const pending = this.running ?? (this.needsDelivery() ? this.flushAll() : null);
    this.closed = true;
    this.unsubscribe();
    if (!pending) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      pending.catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  private needsDelivery(): boolean {
    const latest = this.d.checkpoints.latest();
    return !!latest && this.d.hosts.list().some((h) => this.state(h.id).delivered < latest.n);
  }
}
