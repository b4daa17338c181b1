/**
 * Approvals are data: a persisted request, an event, and a decision from any door (the app's modal,
 * the CLI, MCP, HTTP, a test). Waiting code resumes when a decision lands, even one made by another
 * process sharing the database. An agent never decides a request.
 */
import { randomUUID } from 'node:crypto';
import type { Approval } from '../../shared/contract/approvals.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { EventBus } from '../events.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';

interface Row {
  id: string;
  kind: string;
  title: string;
  detail: string;
  risk: Approval['risk'];
  subject: string;
  subject_hash: string;
  requested_by_door: Actor['door'];
  requested_by_id: string;
  sandbox_id: string | null;
  session_id: string | null;
  status: Approval['status'];
  decided_by_door: Actor['door'] | null;
  decided_by_id: string | null;
  decided_at: string | null;
  note: string | null;
  created_at: string;
  expires_at: string | null;
}

const toApproval = (r: Row): Approval => ({
  id: r.id,
  kind: r.kind,
  title: r.title,
  detail: r.detail,
  risk: r.risk,
  subject: JSON.parse(r.subject) as unknown,
  subjectHash: r.subject_hash,
  requestedBy: { door: r.requested_by_door, id: r.requested_by_id },
  sandboxId: r.sandbox_id,
  sessionId: r.session_id,
  status: r.status,
  decidedBy: r.decided_by_door ? { door: r.decided_by_door, id: r.decided_by_id ?? '' } : null,
  decidedAt: r.decided_at,
  note: r.note,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export interface ApprovalRequest {
  kind: string;
  title: string;
  detail: string;
  risk: Approval['risk'];
  subject: unknown;
  requestedBy: Actor;
  sandboxId?: string | null;
  sessionId?: string | null;
  /** Undecided requests expire (and count as denied) after this long. */
  expiresInMs?: number | null;
}

export class ApprovalService {
  private readonly db: Db;
  private readonly bus: EventBus;
  private readonly audit: AuditLog;
  private readonly clock: Clock;

  constructor(db: Db, bus: EventBus, audit: AuditLog, clock: Clock) {
    this.db = db;
    this.bus = bus;
    this.audit = audit;
    this.clock = clock;
  }

  request(req: ApprovalRequest): Approval {
    const id = randomUUID();
    const now = this.clock.now();
    const subject = canonicalJson(req.subject ?? null);
    const expires = req.expiresInMs ? new Date(now.getTime() + req.expiresInMs).toISOString() : null;
    this.db
      .prepare(
        `INSERT INTO approvals (id, kind, title, detail, risk, subject, subject_hash, requested_by_door, requested_by_id, sandbox_id, session_id, status, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
      )
      .run(
        id,
        req.kind,
        req.title,
        req.detail,
        req.risk,
        subject,
        sha256Hex(subject),
        req.requestedBy.door,
        req.requestedBy.id,
        req.sandboxId ?? null,
        req.sessionId ?? null,
        now.toISOString(),
        expires,
      );
    const a = this.get(id);
    this.audit.append({
      actor: req.requestedBy,
      action: 'approval.request',
      target: id,
      data: {
        kind: a.kind,
        title: a.title,
        risk: a.risk,
        subjectHash: a.subjectHash,
        sandboxId: a.sandboxId,
        sessionId: a.sessionId,
      },
    });
    this.bus.emit('approvals.changed', a);
    return a;
  }

  get(id: string): Approval {
    const r = this.db.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No approval request ${id}.`);
    return this.expireIfDue(toApproval(r));
  }

  list(opts: {
    status?: Approval['status'];
    sandboxId?: string;
    sessionId?: string;
    limit: number;
  }): Approval[] {
    this.expireStale();
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of [
      ['status', opts.status],
      ['sandbox_id', opts.sandboxId],
      ['session_id', opts.sessionId],
    ] as const) {
      if (v) {
        where.push(`${col} = ?`);
        args.push(v);
      }
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM approvals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      )
      .all(...args, opts.limit) as Row[];
    return rows.map(toApproval);
  }

  decide(id: string, decision: 'approve' | 'deny', note: string | undefined, actor: Actor): Approval {
    if (actor.door === 'agent')
      throw new FluidError('DENIED', 'An agent cannot decide approval requests; a person must.');
    const a = this.get(id);
    if (a.status !== 'pending')
      throw new FluidError(
        'CONFLICT',
        `This request is already ${a.status}${a.decidedBy ? ` (by ${a.decidedBy.door}:${a.decidedBy.id})` : ''}.`,
      );
    const status = decision === 'approve' ? 'approved' : 'denied';
    const now = this.clock.now().toISOString();
    const changed = this.db
      .prepare(
        "UPDATE approvals SET status = ?, decided_by_door = ?, decided_by_id = ?, decided_at = ?, note = ? WHERE id = ? AND status = 'pending'",
      )
      .run(status, actor.door, actor.id, now, note ?? null, id).changes;
    if (!changed) throw new FluidError('CONFLICT', 'This request was decided by someone else a moment ago.');
    const out = this.get(id);
    this.audit.append({
      actor,
      action: 'approval.decide',
      target: id,
      data: {
        decision: status,
        note: note ?? null,
        kind: out.kind,
        title: out.title,
        subjectHash: out.subjectHash,
        requestedBy: out.requestedBy,
      },
    });
    this.bus.emit('approvals.changed', out);
    return out;
  }

  /** Withdraw a pending request (the operation that asked no longer needs it). */
  cancel(id: string, actor: Actor, reason: string): void {
    const changed = this.db
      .prepare(
        "UPDATE approvals SET status = 'cancelled', note = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
      )
      .run(reason, this.clock.now().toISOString(), id).changes;
    if (changed) {
      this.audit.append({ actor, action: 'approval.cancel', target: id, data: { reason } });
      this.bus.emit('approvals.changed', this.get(id));
    }
  }

  /** Resolve once the request is decided (or expires). Other processes' decisions are seen by polling. */
  async wait(id: string, signal?: AbortSignal): Promise<Approval> {
    let current = this.get(id);
    if (current.status !== 'pending') return current;
    return new Promise<Approval>((resolve, reject) => {
      const finish = (a: Approval) => {
        cleanup();
        resolve(a);
      };
      const un = this.bus.subscribe('approvals.changed', (a) => {
        if (a.id === id && a.status !== 'pending') finish(a);
      });
      const timer = setInterval(() => {
        try {
          current = this.get(id);
          if (current.status !== 'pending') finish(current);
        } catch (e) {
          cleanup();
          reject(e);
        }
      }, 400);
      const onAbort = () => {
        cleanup();
        reject(new FluidError('CANCELLED', 'Stopped waiting for the approval.'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      function cleanup() {
        un();
        clearInterval(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  expireStale(): void {
    const now = this.clock.now().toISOString();
    const rows = this.db
      .prepare(
        "SELECT id FROM approvals WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?",
      )
      .all(now) as Array<{ id: string }>;
    for (const { id } of rows) this.expire(id);
  }

  private expireIfDue(a: Approval): Approval {
    if (a.status === 'pending' && a.expiresAt && a.expiresAt <= this.clock.now().toISOString()) {
      this.expire(a.id);
      const r = this.db.prepare('SELECT * FROM approvals WHERE id = ?').get(a.id) as Row;
      return toApproval(r);
    }
    return a;
  }

  private expire(id: string): void {
    const changed = this.db
      .prepare("UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'")
      .run(this.clock.now().toISOString(), id).changes;
    if (changed) {
      this.audit.append({
        actor: { door: 'system', id: 'expiry' },
        action: 'approval.expire',
        target: id,
        data: {},
      });
      const r = this.db.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Row;
      this.bus.emit('approvals.changed', toApproval(r));
    }
  }
}
