/** Sandbox and snapshot rows. */
import type { Sandbox, SandboxState, Snapshot } from '../../shared/contract/sandboxes.ts';
import { FluidError, type ErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Db } from '../store/db.ts';

export interface SandboxRow {
  id: string;
  name: string;
  host_id: string;
  source_name: string;
  base_id: string | null;
  state: SandboxState;
  domain_name: string;
  domain_uuid: string;
  dir: string;
  vcpus: number;
  memory_mib: number;
  slot: number | null;
  ip: string | null;
  mac: string | null;
  ttl_minutes: number | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  created_by_door: Actor['door'];
  created_by_id: string;
  start_path: 'restore' | 'cold' | 'pool' | null;
  start_path_reason: string | null;
  timings: string;
  host_key_fp: string | null;
  egress_allow: string;
  error: string | null;
  task_id: string | null;
  owner_pid: number | null;
  owner_instance: string | null;
  /** JSON of the Placement when Fluid chose the host (placement.ts). */
  placement?: string | null;
}

export const LIVE_STATES: SandboxState[] = [
  'creating',
  'starting',
  'running',
  'stopping',
  'stopped',
  'destroying',
  'pooled',
];

/** Rows of the warm pool's members (pool.ts) that no ref reaches: made by the pool, not yet handed out. */
const NOT_A_MEMBER = "NOT (created_by_door = 'system' AND created_by_id = 'warm-pool')";

export class SandboxStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  /** A sandbox by id or name, as every door names one (warm pool members are not sandboxes yet). */
  row(ref: string): SandboxRow {
    const r = this.db
      .prepare(
        `SELECT * FROM sandboxes WHERE (id = ? OR (name = ? AND state != 'destroyed')) AND ${NOT_A_MEMBER} ORDER BY id = ? DESC, created_at DESC LIMIT 1`,
      )
      .get(ref, ref, ref) as SandboxRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No sandbox "${ref}". See \`fluid sandbox list\`.`);
    return r;
  }

  /** Any row by its id (the service's own work, pool members included). */
  byId(id: string): SandboxRow {
    const r = this.maybe(id);
    if (!r) throw new FluidError('NOT_FOUND', `No sandbox ${id}.`);
    return r;
  }

  maybe(id: string): SandboxRow | null {
    return (
      (this.db.prepare('SELECT * FROM sandboxes WHERE id = ?').get(id) as SandboxRow | undefined) ?? null
    );
  }

  list(opts: { hostId?: string; includeDestroyed?: boolean } = {}): SandboxRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.hostId) {
      where.push('host_id = ?');
      args.push(opts.hostId);
    }
    if (!opts.includeDestroyed) where.push("state != 'destroyed'");
    return this.db
      .prepare(
        `SELECT * FROM sandboxes ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC`,
      )
      .all(...args) as SandboxRow[];
  }

  insert(r: SandboxRow): void {
    const keys = Object.keys(r);
    try {
      this.db
        .prepare(`INSERT INTO sandboxes (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`)
        .run(...keys.map((k) => r[k as keyof SandboxRow]));
    } catch (e) {
      if (/UNIQUE constraint failed: sandboxes.name/.test((e as Error).message))
        throw new FluidError('CONFLICT', `A sandbox named "${r.name}" already exists. Choose another name.`);
      throw e;
    }
  }

  update(id: string, fields: Partial<SandboxRow>): void {
    const keys = Object.keys(fields).filter((k) => k !== 'id');
    if (!keys.length) return;
    this.db
      .prepare(`UPDATE sandboxes SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?`)
      .run(...keys.map((k) => fields[k as keyof SandboxRow]), new Date().toISOString(), id);
  }

  /**
   * Change a row only if it is still in one of `from` (atomic across processes sharing the
   * database); returns whether this call made the change.
   */
  claim(id: string, from: SandboxState[], fields: Partial<SandboxRow>): boolean {
    const keys = Object.keys(fields).filter((k) => k !== 'id');
    const r = this.db
      .prepare(
        `UPDATE sandboxes SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ? AND state IN (${from.map(() => '?').join(', ')})`,
      )
      .run(...keys.map((k) => fields[k as keyof SandboxRow]), new Date().toISOString(), id, ...from);
    return r.changes === 1;
  }

  snapshots(sandboxId: string): Snapshot[] {
    const rows = this.db
      .prepare('SELECT * FROM snapshots WHERE sandbox_id = ? ORDER BY created_at')
      .all(sandboxId) as Array<{
      id: string;
      sandbox_id: string;
      name: string;
      kind: Snapshot['kind'];
      created_at: string;
      created_by_door: Actor['door'];
      created_by_id: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      sandboxId: r.sandbox_id,
      name: r.name,
      kind: r.kind,
      createdAt: r.created_at,
      createdBy: { door: r.created_by_door, id: r.created_by_id },
    }));
  }

  snapshot(sandboxId: string, ref: string): Snapshot {
    const s = this.snapshots(sandboxId).find((x) => x.id === ref || x.name === ref);
    if (!s) throw new FluidError('NOT_FOUND', `No snapshot "${ref}" of this sandbox.`);
    return s;
  }

  /** Insert a snapshot row (the name is taken from here on); `detail` is what snapshots.ts records. */
  addSnapshot(s: Snapshot, detail = '{}'): void {
    try {
      this.db
        .prepare(
          'INSERT INTO snapshots (id, sandbox_id, name, kind, detail, created_at, created_by_door, created_by_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(s.id, s.sandboxId, s.name, s.kind, detail, s.createdAt, s.createdBy.door, s.createdBy.id);
    } catch (e) {
      if (/UNIQUE/.test((e as Error).message))
        throw new FluidError('CONFLICT', `This sandbox already has a snapshot named "${s.name}".`);
      throw e;
    }
  }

  setSnapshot(id: string, kind: Snapshot['kind'], detail: string): void {
    this.db.prepare('UPDATE snapshots SET kind = ?, detail = ? WHERE id = ?').run(kind, detail, id);
  }

  /** The `detail` of each of a sandbox's snapshots, by snapshot id. */
  snapshotDetails(sandboxId: string): Map<string, string> {
    const rows = this.db
      .prepare('SELECT id, detail FROM snapshots WHERE sandbox_id = ?')
      .all(sandboxId) as Array<{
      id: string;
      detail: string;
    }>;
    return new Map(rows.map((r) => [r.id, r.detail]));
  }

  deleteSnapshot(id: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }
}

export function toSandbox(r: SandboxRow, hostName: string, baseFingerprint: string | null): Sandbox {
  return {
    id: r.id,
    name: r.name,
    hostId: r.host_id,
    hostName,
    sourceName: r.source_name,
    baseId: r.base_id,
    baseFingerprint,
    state: r.state,
    domainName: r.domain_name,
    vcpus: r.vcpus,
    memoryMiB: r.memory_mib,
    ip: r.ip,
    mac: r.mac,
    ttlMinutes: r.ttl_minutes,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    createdBy: { door: r.created_by_door, id: r.created_by_id },
    startPath: r.start_path,
    startPathReason: r.start_path_reason,
    timings: JSON.parse(r.timings) as Record<string, number>,
    hostKeyFingerprint: r.host_key_fp,
    egressAllow: JSON.parse(r.egress_allow) as string[],
    error: r.error ? (JSON.parse(r.error) as ErrorPayload) : null,
    taskId: r.task_id,
  };
}
