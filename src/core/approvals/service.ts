/**
 * Approvals are data: a persisted request, an event, and a decision by a person (the app's modal, the
 * web UI, an interactive terminal). Waiting code resumes when a decision lands, even one made by another
 * process sharing the database. An agent's door (the built-in agent, MCP, a process without a terminal)
 * can ask but never decide, and approving a high-risk request needs proof of presence (see
 * src/core/presence).
 */
import { randomUUID } from 'node:crypto';
import type { Approval } from '../../shared/contract/approvals.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { AuditLog } from '../store/audit.ts';
import { prepared, type Db } from '../store/db.ts';
import type { EventBus } from '../events.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';
import { purposeOf, type Presence, type PresenceService } from '../presence/service.ts';

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
  decided_via: string | null;
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
  decidedVia: r.decided_via,
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

const decisionPurpose = (a: Approval, decision: 'approve' | 'deny') =>
  purposeOf('approvals.decide', { id: a.id, decision, subjectHash: a.subjectHash });

/** Kinds whose approval always needs presence, whatever the risk they were filed with. */
const PRESENCE_KINDS = new Set(['egress', 'apply', 'settings']);

/** Approving this needs proof that a person is there (denying never does). */
export function needsPresence(a: Pick<Approval, 'risk' | 'kind'>): boolean {
  return a.risk === 'high' || PRESENCE_KINDS.has(a.kind);
}

export class ApprovalService {
  private readonly db: Db;
  private readonly bus: EventBus;
  private readonly audit: AuditLog;
  private readonly clock: Clock;
  private readonly presence: PresenceService;
  private readonly guards = new Map<string, (a: Approval) => void>();

  constructor(db: Db, bus: EventBus, audit: AuditLog, clock: Clock, presence: PresenceService) {
    this.db = db;
    this.bus = bus;
    this.audit = audit;
    this.clock = clock;
    this.presence = presence;
  }

  /**
   * The room that files requests of a kind may refuse to let one be approved (its subject went stale,
   * say): `check` throws to refuse. Checked before presence is asked for, so nobody confirms in vain.
   */
  guard(kind: string, check: (a: Approval) => void): void {
    this.guards.set(kind, check);
  }

  /** What a presence proof for deciding this request must have been made for. */
  purpose(id: string, decision: 'approve' | 'deny'): string {
    return decisionPurpose(this.get(id), decision);
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
    const r = prepared(this.db, 'SELECT * FROM approvals WHERE id = ?').get(id) as Row | undefined;
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

  /**
   * Decide a pending request. Only a person's door decides; approving a high-risk request needs a
   * presence made for exactly this decision (PresenceService.verify, at the door's edge).
   */
  decide(
    id: string,
    decision: 'approve' | 'deny',
    note: string | undefined,
    actor: Actor,
    presence: Presence | null = null,
  ): Approval {
    const a = this.get(id);
    const conflict = () =>
      new FluidError(
        'CONFLICT',
        `This request is already ${a.status}${a.decidedBy ? ` (by ${a.decidedBy.door}:${a.decidedBy.id})` : ''}.`,
      );
    // A person learns at once that someone else was first; anyone else learns only that they may not decide.
    if (a.status !== 'pending' && isPersonDoor(actor)) throw conflict();
    // the room's refusal holds for an unattended decision too (the CLI's --yes, an operator token)
    if (decision === 'approve' && (isPersonDoor(actor) || presence?.method === 'unattended'))
      this.guards.get(a.kind)?.(a);
    const verb = decision === 'approve' ? 'approve' : 'deny';
    const proved = this.presence.demand(
      actor,
      {
        purpose: decisionPurpose(a, decision),
        required: decision === 'approve' && needsPresence(a),
        what: `${verb} "${a.title}"`,
      },
      presence,
    );
    if (a.status !== 'pending') throw conflict();
    const status = decision === 'approve' ? 'approved' : 'denied';
    const via = proved?.method ?? 'door';
    const now = this.clock.now().toISOString();
    const changed = this.db
      .prepare(
        "UPDATE approvals SET status = ?, decided_by_door = ?, decided_by_id = ?, decided_via = ?, decided_at = ?, note = ? WHERE id = ? AND status = 'pending'",
      )
      .run(status, actor.door, actor.id, via, now, note ?? null, id).changes;
    if (!changed) throw new FluidError('CONFLICT', 'This request was decided by someone else a moment ago.');
    const out = this.get(id);
    this.audit.append({
      actor,
      action: 'approval.decide',
      target: id,
      data: {
        decision: status,
        via,
        credential: proved?.credentialId ?? null,
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
      const r = prepared(this.db, 'SELECT * FROM approvals WHERE id = ?').get(a.id) as Row;
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
      const r = prepared(this.db, 'SELECT * FROM approvals WHERE id = ?').get(id) as Row;
      this.bus.emit('approvals.changed', toApproval(r));
    }
  }
}
