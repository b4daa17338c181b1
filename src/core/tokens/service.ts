/**
 * API tokens: created and revoked by a person, shown once, kept as sha256, audited on use.
 *
 * A request's token becomes its Actor: door `http`, id `token:<name>`, and the token's scope. Use is
 * written to the audit log the first time and then at most once per AUDIT_USE_EVERY_MS per token (not
 * per request); the last-use time is kept to the minute.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ApiToken, TokenScope } from '../../shared/contract/tokens.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { EventBus } from '../events.ts';
import { purposeOf, type Presence, type PresenceService } from '../presence/service.ts';

/** A use is audited again after this long (the first use always is). */
export const AUDIT_USE_EVERY_MS = 60 * 60_000;
/** The last-use time is written at most this often. */
const TOUCH_EVERY_MS = 60_000;
/** Secrets look like `fluid_a_<43 chars>`; anything much longer is not one of ours. */
const MAX_SECRET_LENGTH = 200;

interface Row {
  id: string;
  name: string;
  scope: TokenScope;
  token_sha256: string;
  prefix: string;
  created_at: string;
  created_by_door: Actor['door'];
  created_by_id: string;
  last_used_at: string | null;
  last_audited_at: string | null;
  revoked_at: string | null;
  revoked_by_door: Actor['door'] | null;
  revoked_by_id: string | null;
}

const toToken = (r: Row): ApiToken => ({
  id: r.id,
  name: r.name,
  scope: r.scope,
  prefix: r.prefix,
  createdAt: r.created_at,
  createdBy: { door: r.created_by_door, id: r.created_by_id },
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by_door ? { door: r.revoked_by_door, id: r.revoked_by_id ?? '' } : null,
});

export const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** What a presence proof for creating this token must have been made for. */
export const tokenPurpose = (name: string, scope: TokenScope): string =>
  purposeOf('tokens.create', { name, scope });

/** The actor a token's requests act as. */
export const tokenActor = (t: Pick<ApiToken, 'name' | 'scope'>): Actor => ({
  door: 'http',
  id: `token:${t.name}`,
  scope: t.scope,
});

export interface TokenDeps {
  db: Db;
  audit: AuditLog;
  bus: EventBus;
  clock: Clock;
  presence: PresenceService;
}

export interface Authenticated {
  token: ApiToken;
  actor: Actor;
}

export class TokenService {
  private readonly d: TokenDeps;

  constructor(deps: TokenDeps) {
    this.d = deps;
  }

  list(includeRevoked = false): ApiToken[] {
    const rows = this.d.db
      .prepare(
        `SELECT * FROM api_tokens ${includeRevoked ? '' : 'WHERE revoked_at IS NULL'} ORDER BY created_at DESC, rowid DESC`,
      )
      .all() as Row[];
    return rows.map(toToken);
  }

  /** Live tokens (a network bind refuses to start without one). */
  count(): number {
    return (
      this.d.db.prepare('SELECT COUNT(*) AS n FROM api_tokens WHERE revoked_at IS NULL').get() as {
        n: number;
      }
    ).n;
  }

  /**
   * A person creates a token; an operator token is a grant (it can decide while unattended decisions
   * are allowed) and needs presence made for exactly this name and scope.
   */
  create(
    name: string,
    scope: TokenScope,
    actor: Actor,
    presence: Presence | null,
  ): { token: ApiToken; secret: string } {
    if (!isPersonDoor(actor))
      throw new FluidError(
        'DENIED',
        actor.door === 'cli'
          ? 'Only a person creates API tokens: this process has no terminal. Run `fluid token create` on a terminal, or use Settings → API tokens.'
          : `Only a person creates API tokens; the ${actor.door} door (${actor.id}) cannot.`,
      );
    this.d.presence.demand(
      actor,
      {
        purpose: tokenPurpose(name, scope),
        required: scope === 'operator',
        what: `create the operator token "${name}"`,
      },
      presence,
    );
    const live = this.d.db
      .prepare('SELECT id FROM api_tokens WHERE name = ? AND revoked_at IS NULL')
      .get(name) as { id: string } | undefined;
    if (live)
      throw new FluidError(
        'CONFLICT',
        `A token named "${name}" exists. Revoke it first (fluid token revoke ${name}) or choose another name.`,
      );
    const secret = `fluid_${scope === 'agent' ? 'a' : 'o'}_${randomBytes(32).toString('base64url')}`;
    const row: Row = {
      id: randomUUID(),
      name,
      scope,
      token_sha256: sha256Hex(secret),
      prefix: secret.slice(0, 12),
      created_at: this.d.clock.now().toISOString(),
      created_by_door: actor.door,
      created_by_id: actor.id,
      last_used_at: null,
      last_audited_at: null,
      revoked_at: null,
      revoked_by_door: null,
      revoked_by_id: null,
    };
    this.d.db
      .prepare(
        `INSERT INTO api_tokens (id, name, scope, token_sha256, prefix, created_at, created_by_door, created_by_id)
         VALUES (@id, @name, @scope, @token_sha256, @prefix, @created_at, @created_by_door, @created_by_id)`,
      )
      .run(row);
    this.d.audit.append({
      actor,
      action: 'token.create',
      target: row.id,
      data: { name, scope, prefix: row.prefix, via: presence?.method ?? 'door' },
    });
    this.d.bus.emit('tokens.changed', { name });
    return { token: toToken(row), secret };
  }

  /** A person revokes a token; requests with it get 401 from then on. */
  revoke(name: string, actor: Actor): ApiToken {
    if (!isPersonDoor(actor))
      throw new FluidError(
        'DENIED',
        `Only a person revokes API tokens (in the Fluid app, the web UI or on a terminal); the ${actor.door} door (${actor.id}) cannot.`,
      );
    const row = this.d.db
      .prepare('SELECT * FROM api_tokens WHERE name = ? AND revoked_at IS NULL')
      .get(name) as Row | undefined;
    if (!row) throw new FluidError('NOT_FOUND', `No live token named "${name}" (fluid token list).`);
    const now = this.d.clock.now().toISOString();
    this.d.db
      .prepare('UPDATE api_tokens SET revoked_at = ?, revoked_by_door = ?, revoked_by_id = ? WHERE id = ?')
      .run(now, actor.door, actor.id, row.id);
    this.d.audit.append({
      actor,
      action: 'token.revoke',
      target: row.id,
      data: { name, scope: row.scope, prefix: row.prefix },
    });
    this.d.bus.emit('tokens.changed', { name });
    return toToken(this.d.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(row.id) as Row);
  }

  /**
   * The token a request presents, or null (unknown, malformed or revoked). Looked up by its sha256 on
   * every request, so a revocation made by another process applies at once.
   */
  authenticate(secret: string, from: string | null = null): Authenticated | null {
    if (!secret || secret.length > MAX_SECRET_LENGTH) return null;
    const row = this.d.db
      .prepare('SELECT * FROM api_tokens WHERE token_sha256 = ?')
      .get(sha256Hex(secret)) as Row | undefined;
    if (!row || row.revoked_at) return null;
    const now = this.d.clock.now();
    const at = now.toISOString();
    const since = (iso: string | null) => (iso ? now.getTime() - Date.parse(iso) : Infinity);
    const auditDue = since(row.last_audited_at) >= AUDIT_USE_EVERY_MS;
    if (auditDue || since(row.last_used_at) >= TOUCH_EVERY_MS) {
      this.d.db
        .prepare(
          `UPDATE api_tokens SET last_used_at = ?, last_audited_at = CASE WHEN ? THEN ? ELSE last_audited_at END WHERE id = ?`,
        )
        .run(at, auditDue ? 1 : 0, at, row.id);
      row.last_used_at = at;
    }
    const token = toToken(row);
    const actor = tokenActor(token);
    if (auditDue)
      this.d.audit.append({
        actor,
        action: 'token.use',
        target: row.id,
        data: {
          name: row.name,
          scope: row.scope,
          first: row.last_audited_at === null,
          from,
        },
      });
    return { token, actor };
  }
}
