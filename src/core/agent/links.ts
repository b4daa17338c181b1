/**
 * A session and what it made, both ways: a session's sandboxes (those whose creator is
 * `agent:<session id>`), their snapshots, the approvals it asked for and its audit rows, with names
 * beside ids; and, when a session has ended, destroying the sandboxes it left (a person is offered
 * this in the session view and at the end of `fluid run`).
 */
import type { SessionLinks } from '../../shared/contract/agent.ts';
import { toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Db } from '../store/db.ts';
import type { SandboxService } from '../sandboxes/service.ts';
import type { AgentService } from './service.ts';

export interface LinkDeps {
  db: Db;
  agent: AgentService;
  sandboxes: SandboxService;
}

interface SandboxLinkRow {
  id: string;
  name: string;
  state: string;
  host_id: string;
  source_name: string;
  expires_at: string | null;
  created_at: string;
}

const GONE = ['destroyed', 'failed'];

function sessionSandboxes(db: Db, sessionId: string): SandboxLinkRow[] {
  return db
    .prepare(
      `SELECT id, name, state, host_id, source_name, expires_at, created_at FROM sandboxes
       WHERE created_by_door = 'agent' AND created_by_id = ? ORDER BY created_at`,
    )
    .all(sessionId) as SandboxLinkRow[];
}

export function sessionLinks(d: LinkDeps, sessionId: string, auditLimit = 100): SessionLinks {
  const session = d.agent.get(sessionId);
  const sbs = sessionSandboxes(d.db, session.id);
  const names = new Map(sbs.map((s) => [s.id, s.name]));
  const hostName = (id: string) => {
    try {
      return d.sandboxes.get(id).hostName;
    } catch {
      return '?';
    }
  };
  const snapshots = (
    d.db
      .prepare(
        `SELECT s.id, s.name, s.sandbox_id, s.created_at, b.name AS sandbox_name FROM snapshots s
         JOIN sandboxes b ON b.id = s.sandbox_id
         WHERE (s.created_by_door = 'agent' AND s.created_by_id = ?) ORDER BY s.created_at`,
      )
      .all(session.id) as Array<{
      id: string;
      name: string;
      sandbox_id: string;
      created_at: string;
      sandbox_name: string;
    }>
  ).map((r) => ({
    id: r.id,
    name: r.name,
    sandboxId: r.sandbox_id,
    sandboxName: r.sandbox_name,
    createdAt: r.created_at,
  }));
  const approvals = (
    d.db
      .prepare(
        `SELECT a.id, a.kind, a.title, a.status, a.risk, a.created_at, a.sandbox_id, b.name AS sandbox_name
         FROM approvals a LEFT JOIN sandboxes b ON b.id = a.sandbox_id
         WHERE a.session_id = ? OR (a.requested_by_door = 'agent' AND a.requested_by_id = ?)
         ORDER BY a.created_at`,
      )
      .all(session.id, session.id) as Array<{
      id: string;
      kind: string;
      title: string;
      status: string;
      risk: string;
      created_at: string;
      sandbox_id: string | null;
      sandbox_name: string | null;
    }>
  ).map((r) => ({
    id: r.id,
    kind: r.kind,
    title: r.title,
    status: r.status,
    risk: r.risk,
    createdAt: r.created_at,
    sandboxId: r.sandbox_id,
    sandboxName: r.sandbox_name,
  }));
  const ids = [session.id, ...sbs.map((s) => s.id)];
  const where = `(actor_door = 'agent' AND actor_id = ?) OR target IN (${ids.map(() => '?').join(',')})`;
  const total = (
    d.db.prepare(`SELECT COUNT(*) AS n FROM audit_log WHERE ${where}`).get(session.id, ...ids) as {
      n: number;
    }
  ).n;
  const audit = (
    d.db
      .prepare(
        `SELECT seq, ts, actor_door, actor_id, action, target FROM audit_log WHERE ${where} ORDER BY seq DESC LIMIT ?`,
      )
      .all(session.id, ...ids, auditLimit) as Array<{
      seq: number;
      ts: string;
      actor_door: string;
      actor_id: string;
      action: string;
      target: string | null;
    }>
  ).map((r) => ({
    seq: r.seq,
    ts: r.ts,
    actor: `${r.actor_door}:${r.actor_id}`,
    action: r.action,
    target: r.target,
    targetName: r.target === session.id ? session.title : r.target ? (names.get(r.target) ?? null) : null,
  }));
  return {
    sandboxes: sbs.map((s) => ({
      id: s.id,
      name: s.name,
      state: s.state,
      hostName: hostName(s.id),
      sourceName: s.source_name,
      expiresAt: s.expires_at,
      createdAt: s.created_at,
      live: !GONE.includes(s.state),
    })),
    snapshots,
    approvals,
    audit,
    auditTotal: total,
  };
}

/** Destroy a session's live sandboxes, but those in `keep` (ids or names); each is audited by destroy. */
export async function destroySessionSandboxes(
  d: LinkDeps,
  sessionId: string,
  keep: string[],
  actor: Actor,
): Promise<{
  destroyed: Array<{ id: string; name: string }>;
  failed: Array<{ id: string; name: string; error: string }>;
  kept: Array<{ id: string; name: string }>;
}> {
  const session = d.agent.get(sessionId);
  const live = sessionSandboxes(d.db, session.id).filter((s) => !GONE.includes(s.state));
  const out = {
    destroyed: [] as Array<{ id: string; name: string }>,
    failed: [] as Array<{ id: string; name: string; error: string }>,
    kept: [] as Array<{ id: string; name: string }>,
  };
  for (const s of live) {
    if (keep.includes(s.id) || keep.includes(s.name)) {
      out.kept.push({ id: s.id, name: s.name });
      continue;
    }
    try {
      await d.sandboxes.destroy(
        s.id,
        actor,
        `the sandboxes of session "${session.title}" were no longer wanted`,
      );
      out.destroyed.push({ id: s.id, name: s.name });
    } catch (err) {
      out.failed.push({ id: s.id, name: s.name, error: toErrorPayload(err).message });
    }
  }
  return out;
}
