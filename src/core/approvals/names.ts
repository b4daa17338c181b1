/**
 * Names beside ids on approval rows: the sandbox's name and whether it still exists (a later
 * sandbox may reuse a name, so the id stays what a row is about), and the asking session's title.
 */
import type { Approval } from '../../shared/contract/approvals.ts';
import type { Db } from '../store/db.ts';

export function withNames(db: Db, list: Approval[]): Approval[] {
  const sb = db.prepare('SELECT name, state FROM sandboxes WHERE id = ?');
  const ses = (() => {
    try {
      return db.prepare('SELECT title FROM agent_sessions WHERE id = ?');
    } catch {
      return null;
    }
  })();
  return list.map((a) => {
    const s = a.sandboxId ? (sb.get(a.sandboxId) as { name: string; state: string } | undefined) : undefined;
    const t = a.sessionId && ses ? (ses.get(a.sessionId) as { title: string } | undefined) : undefined;
    return {
      ...a,
      sandboxName: s?.name ?? null,
      sandboxExists: a.sandboxId ? !!s && s.state !== 'destroyed' : null,
      sessionTitle: t?.title ?? null,
    };
  });
}
