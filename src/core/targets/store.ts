/**
 * Rows of the targets room: production machines Fluid applies approved changes to, and the lock that
 * keeps one apply per target at a time.
 *
 * The lock is a row naming the apply that holds it and the process that owns it (pid and instance,
 * as tasks record theirs). A row whose owner process is gone is reclaimed by the next apply that
 * wants the target, so a crash never leaves a target locked for good.
 */
import type { BecomeMethod, TargetCheck } from '../../shared/contract/changes.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Db } from '../store/db.ts';
import { pidAlive } from '../store/tasks.ts';

export const TARGETS_MIGRATION = {
  name: 'production-targets',
  sql: `
    CREATE TABLE targets (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      address TEXT NOT NULL,
      port INTEGER NOT NULL,
      user TEXT NOT NULL,
      become TEXT NOT NULL CHECK (become IN ('sudo','doas','none')),
      -- The credential: the secret-store entry holding the private key, its public key and fingerprint.
      credential TEXT NOT NULL,
      jump_host_id TEXT,
      host_key_type TEXT,
      host_key_fp TEXT,
      source_host_id TEXT,
      source_vm TEXT,
      created_at TEXT NOT NULL,
      created_by_door TEXT NOT NULL,
      created_by_id TEXT NOT NULL,
      last_check TEXT,
      -- The state recorded after the last successful apply (JSON: sha256, takenAt, applyId).
      last_baseline TEXT
    );
    -- One apply per target at a time; a row whose owner process died is reclaimed.
    CREATE TABLE target_locks (
      target_id TEXT PRIMARY KEY,
      apply_id TEXT NOT NULL,
      owner_pid INTEGER NOT NULL,
      owner_instance TEXT NOT NULL,
      acquired_at TEXT NOT NULL
    );
  `,
};

/** The instances (cores) of this process that may hold target locks: open ones only. */
export const LIVE_INSTANCES = new Set<string>();

export interface TargetCredential {
  type: 'key';
  /** The secret-store entry with the private key. */
  secret: string;
  publicKey: string;
  fingerprint: string;
}

export interface TargetRow {
  id: string;
  name: string;
  address: string;
  port: number;
  user: string;
  become: BecomeMethod;
  credential: string;
  jump_host_id: string | null;
  host_key_type: string | null;
  host_key_fp: string | null;
  source_host_id: string | null;
  source_vm: string | null;
  created_at: string;
  created_by_door: string;
  created_by_id: string;
  last_check: string | null;
  last_baseline: string | null;
}

export interface LockRow {
  target_id: string;
  apply_id: string;
  owner_pid: number;
  owner_instance: string;
  acquired_at: string;
}

export class TargetStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  row(ref: string): TargetRow {
    const r = this.maybe(ref);
    if (!r) throw new FluidError('NOT_FOUND', `No target "${ref}". \`fluid target list\` shows them.`);
    return r;
  }

  maybe(ref: string): TargetRow | null {
    return (
      (this.db
        .prepare('SELECT * FROM targets WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1')
        .get(ref, ref, ref) as TargetRow | undefined) ?? null
    );
  }

  list(): TargetRow[] {
    return this.db.prepare('SELECT * FROM targets ORDER BY created_at, name').all() as TargetRow[];
  }

  byAddress(address: string, port: number): TargetRow | null {
    return (
      (this.db.prepare('SELECT * FROM targets WHERE address = ? AND port = ? LIMIT 1').get(address, port) as
        TargetRow | undefined) ?? null
    );
  }

  insert(
    r: Omit<TargetRow, 'last_check' | 'last_baseline' | 'created_by_door' | 'created_by_id'> & {
      actor: Actor;
    },
  ): void {
    try {
      this.db
        .prepare(
          `INSERT INTO targets (id, name, address, port, user, become, credential, jump_host_id, host_key_type, host_key_fp,
             source_host_id, source_vm, created_at, created_by_door, created_by_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          r.id,
          r.name,
          r.address,
          r.port,
          r.user,
          r.become,
          r.credential,
          r.jump_host_id,
          r.host_key_type,
          r.host_key_fp,
          r.source_host_id,
          r.source_vm,
          r.created_at,
          r.actor.door,
          r.actor.id,
        );
    } catch (e) {
      if (/UNIQUE/.test((e as Error).message))
        throw new FluidError('CONFLICT', `A target named "${r.name}" exists. Choose another name.`);
      throw e;
    }
  }

  setHostKey(id: string, type: string, fingerprint: string): void {
    this.db
      .prepare('UPDATE targets SET host_key_type = ?, host_key_fp = ? WHERE id = ?')
      .run(type, fingerprint, id);
  }

  setCheck(id: string, check: TargetCheck): void {
    this.db.prepare('UPDATE targets SET last_check = ? WHERE id = ?').run(JSON.stringify(check), id);
  }

  setBaseline(id: string, b: { sha256: string; takenAt: string; applyId: string }): void {
    this.db.prepare('UPDATE targets SET last_baseline = ? WHERE id = ?').run(JSON.stringify(b), id);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM targets WHERE id = ?').run(id);
  }

  // ---- the apply lock -----------------------------------------------------------------------------

  lock(targetId: string): LockRow | null {
    return (
      (this.db.prepare('SELECT * FROM target_locks WHERE target_id = ?').get(targetId) as
        LockRow | undefined) ?? null
    );
  }

  /**
   * Take the target's lock for an apply, reclaiming it from a process that died. Returns null when it
   * is taken, or the live holder when another apply has it.
   */
  tryLock(
    targetId: string,
    applyId: string,
    owner: { pid: number; instance: string },
    now: string,
    isAlive: (pid: number) => boolean = pidAlive,
  ): { holder: LockRow | null; reclaimed: LockRow | null } {
    return this.db.transaction(() => {
      const held = this.lock(targetId);
      let reclaimed: LockRow | null = null;
      if (held) {
        if (held.apply_id === applyId) return { holder: null, reclaimed: null };
        // An owner in this process is alive while its core is open; another process while it runs.
        const alive =
          held.owner_pid === owner.pid ? LIVE_INSTANCES.has(held.owner_instance) : isAlive(held.owner_pid);
        if (alive) return { holder: held, reclaimed: null };
        this.db
          .prepare('DELETE FROM target_locks WHERE target_id = ? AND apply_id = ?')
          .run(targetId, held.apply_id);
        reclaimed = held;
      }
      this.db
        .prepare(
          'INSERT INTO target_locks (target_id, apply_id, owner_pid, owner_instance, acquired_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(targetId, applyId, owner.pid, owner.instance, now);
      return { holder: null, reclaimed };
    })();
  }

  unlock(targetId: string, applyId: string): void {
    this.db.prepare('DELETE FROM target_locks WHERE target_id = ? AND apply_id = ?').run(targetId, applyId);
  }
}
