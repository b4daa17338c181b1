/**
 * Playbooks the agent writes as it works: one play, ordered tasks of `module: params`. Stored in the
 * database and rendered to YAML on demand (nothing is written to disk, so a name can never escape a
 * directory). The change-review pipeline generates and verifies playbooks from diffs; these are the
 * agent's own notes of intent.
 */
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import { FluidError } from '../../shared/errors.ts';
import type { Db } from '../store/db.ts';

export interface PlaybookTask {
  id: string;
  position: number;
  name: string;
  module: string;
  params: Record<string, unknown>;
}

export interface Playbook {
  id: string;
  name: string;
  hosts: string;
  become: boolean;
  sessionId: string | null;
  createdAt: string;
  updatedAt: string;
  tasks: PlaybookTask[];
}

export const PLAYBOOK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MODULE_NAME = /^[a-z0-9_]+(\.[a-z0-9_]+){0,2}$/;

export class PlaybookStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  create(name: string, hosts: string, become: boolean, sessionId: string | null): Playbook {
    if (!PLAYBOOK_NAME.test(name))
      throw new FluidError('VALIDATION', 'A playbook name is 1-64 letters, digits, ".", "-" or "_".');
    const now = new Date().toISOString();
    try {
      this.db
        .prepare(
          'INSERT INTO playbooks (id, name, hosts, become, session_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(randomUUID(), name, hosts, become ? 1 : 0, sessionId, now, now);
    } catch (e) {
      if (/UNIQUE/.test((e as Error).message))
        throw new FluidError(
          'CONFLICT',
          `A playbook named "${name}" exists; add tasks to it or choose another name.`,
        );
      throw e;
    }
    return this.get(name);
  }

  get(ref: string): Playbook {
    const r = this.db.prepare('SELECT * FROM playbooks WHERE id = ? OR name = ?').get(ref, ref) as
      | {
          id: string;
          name: string;
          hosts: string;
          become: number;
          session_id: string | null;
          created_at: string;
          updated_at: string;
        }
      | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No playbook "${ref}".`);
    const tasks = (
      this.db
        .prepare('SELECT * FROM playbook_tasks WHERE playbook_id = ? ORDER BY position')
        .all(r.id) as Array<{ id: string; position: number; name: string; module: string; params: string }>
    ).map((t) => ({
      id: t.id,
      position: t.position,
      name: t.name,
      module: t.module,
      params: JSON.parse(t.params) as Record<string, unknown>,
    }));
    return {
      id: r.id,
      name: r.name,
      hosts: r.hosts,
      become: !!r.become,
      sessionId: r.session_id,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      tasks,
    };
  }

  list(): Array<Omit<Playbook, 'tasks'> & { taskCount: number }> {
    const rows = this.db
      .prepare(
        'SELECT p.*, (SELECT COUNT(*) FROM playbook_tasks t WHERE t.playbook_id = p.id) AS n FROM playbooks p ORDER BY updated_at DESC',
      )
      .all() as Array<{
      id: string;
      name: string;
      hosts: string;
      become: number;
      session_id: string | null;
      created_at: string;
      updated_at: string;
      n: number;
    }>;
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      hosts: r.hosts,
      become: !!r.become,
      sessionId: r.session_id,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      taskCount: r.n,
    }));
  }

  addTask(ref: string, name: string, module: string, params: Record<string, unknown>): Playbook {
    if (!MODULE_NAME.test(module))
      throw new FluidError(
        'VALIDATION',
        `"${module}" is not an Ansible module name (e.g. ansible.builtin.apt).`,
      );
    const p = this.get(ref);
    const now = new Date().toISOString();
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO playbook_tasks (id, playbook_id, position, name, module, params, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(randomUUID(), p.id, p.tasks.length + 1, name, module, JSON.stringify(params), now);
      this.db.prepare('UPDATE playbooks SET updated_at = ? WHERE id = ?').run(now, p.id);
    })();
    return this.get(p.id);
  }

  yaml(ref: string): string {
    const p = this.get(ref);
    const play: Record<string, unknown> = { name: p.name, hosts: p.hosts };
    if (p.become) play.become = true;
    play.tasks = p.tasks.map((t) => ({
      name: t.name,
      [t.module]: Object.keys(t.params).length ? t.params : null,
    }));
    return stringify([play], { lineWidth: 0 });
  }
}
