/**
 * Human presence: who may decide, and how a person proves they are there.
 *
 * Two steps, so that the services that guard a change stay synchronous:
 *  1. `verify(actor, purpose, proof)` (async, at the door's edge: the router) turns a proof the client
 *     sent into a `Presence` — checking that the proof fits the door and, for WebAuthn, the assertion
 *     over a single-use challenge that was bound to this exact purpose.
 *  2. `demand(actor, need, presence)` (sync, inside the guarding service) decides whether the actor may
 *     act at all (a person's door) and whether the presence satisfies the need. A refusal carries
 *     `data.presence` (which proofs would do) so the door can run the ceremony and try again.
 *
 * A purpose is the sha256 of the canonical call (`purposeOf`): a proof made for approving one request
 * can never approve another, nor deny it, nor change a setting.
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type {
  PresenceCredential,
  PresenceMethod,
  PresenceProof,
  PresenceRequirement,
  PresenceStatus,
} from '../../shared/contract/presence.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { SettingsService } from '../store/settings.ts';
import type { EventBus } from '../events.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';

/** A verified proof of presence, made only by PresenceService.verify. */
export interface Presence {
  readonly method: PresenceMethod;
  /** The purpose it was made for (see purposeOf). */
  readonly purpose: string;
  /** The enrolled key that signed (webauthn). */
  readonly credentialId: string | null;
  readonly actor: Actor;
}

export interface PresenceNeed {
  /** purposeOf(the call): a presence made for anything else does not count. */
  purpose: string;
  /** Whether a proof is needed at all (high risk, loosening policy); a person's door is needed anyway. */
  required: boolean;
  /** In words, for the prompt: `approve "egress to example.com:443"`. */
  what: string;
  /**
   * A CLI process without a terminal (a script) may do this when no proof is required — changing a
   * setting that loosens nothing, say. Agents' doors never may.
   */
  scripts?: boolean;
}

/** The purpose of a guarded call: its member and the fields that make it what it is. */
export function purposeOf(member: string, fields: Record<string, unknown>): string {
  return sha256Hex(canonicalJson({ member, ...fields }));
}

interface CredentialRow {
  id: string;
  name: string;
  public_key: string;
  counter: number;
  transports: string;
  created_by: string;
  created_at: string;
  last_used_at: string | null;
}

interface Challenge {
  kind: 'authenticate' | 'register';
  challenge: string;
  purpose: string;
  actor: Actor;
  expiresAt: number;
  name?: string;
}

/** How long a person has to complete a ceremony. */
const CHALLENGE_TTL_MS = 3 * 60_000;

const who = (a: Actor) => `${a.door}:${a.id}`;
/** An HTTP request made with an operator-scoped API token (a person's automation). */
const isOperatorToken = (a: Actor) => a.door === 'http' && a.scope === 'operator';
const sameActor = (a: Actor, b: Actor) => a.door === b.door && a.id === b.id;

export interface PresenceDeps {
  db: Db;
  audit: AuditLog;
  bus: EventBus;
  settings: SettingsService;
  clock: Clock;
}

export class PresenceService {
  private readonly d: PresenceDeps;
  private readonly challenges = new Map<string, Challenge>();
  private readonly origins = new Set<string>();

  constructor(deps: PresenceDeps) {
    this.d = deps;
  }

  /**
   * A door that serves the UI registers its origins: WebAuthn ceremonies are accepted from them only.
   * Browsers refuse IP addresses as relying-party ids, so only named origins (`localhost`) qualify.
   */
  addOrigin(origin: string): void {
    const host = new URL(origin).hostname.replace(/^\[|\]$/g, '');
    if (!isIP(host)) this.origins.add(origin);
  }

  removeOrigin(origin: string): void {
    this.origins.delete(origin);
  }

  status(actor: Actor): PresenceStatus {
    return {
      credentials: this.credentials(),
      origins: [...this.origins],
      unattendedCli: this.d.settings.get().approvals.allowUnattendedCli,
      actor,
    };
  }

  credentials(): PresenceCredential[] {
    return (
      this.d.db.prepare('SELECT * FROM presence_credentials ORDER BY created_at').all() as CredentialRow[]
    ).map((r) => ({
      id: r.id,
      name: r.name,
      createdAt: r.created_at,
      createdBy: r.created_by,
      lastUsedAt: r.last_used_at,
    }));
  }

  private enrolled(): number {
    return (this.d.db.prepare('SELECT COUNT(*) AS n FROM presence_credentials').get() as { n: number }).n;
  }

  /** The proofs this actor could give for a required presence, best first. */
  private methodsFor(actor: Actor): PresenceMethod[] {
    const unattended = this.d.settings.get().approvals.allowUnattendedCli;
    const keys = this.enrolled() > 0;
    if (actor.door === 'app' || actor.door === 'web') return keys ? ['webauthn'] : ['confirm'];
    if (actor.door === 'cli') {
      const out: PresenceMethod[] = [];
      if (!keys && actor.interactive) out.push('terminal');
      if (unattended) out.push('unattended');
      return out;
    }
    // an operator token is a person's automation: it decides as the CLI's --yes does, never otherwise
    if (actor.door === 'http' && actor.scope === 'operator') return unattended ? ['unattended'] : [];
    return [];
  }

  /**
   * May this actor act as a person, and is the need satisfied? Throws DENIED otherwise, with
   * `data.presence` when a proof would help.
   */
  demand(actor: Actor, need: PresenceNeed, presence: Presence | null): Presence | null {
    const unattended = presence?.method === 'unattended';
    const script = actor.door === 'cli' && !need.required && need.scripts === true;
    if (!isPersonDoor(actor) && !unattended && !script) {
      throw new FluidError(
        'DENIED',
        actor.door === 'cli'
          ? `Only a person can ${need.what}: this process has no terminal. Run it on a terminal, or decide in the Fluid app or web UI.`
          : isOperatorToken(actor)
            ? `Only a person can ${need.what}. An operator token acts for one only with an unattended proof ("presence": {"kind": "unattended"}), while a person allows unattended decisions (Settings → Security).`
            : `Only a person can ${need.what}; the ${actor.door} door (${actor.id}) can ask, never decide.`,
      );
    }
    if (presence && (presence.purpose !== need.purpose || !sameActor(presence.actor, actor))) {
      throw new FluidError('DENIED', `That confirmation was given for something else; ${need.what} again.`);
    }
    if (!need.required || actor.door === 'test') return presence;
    const methods = this.methodsFor(actor);
    if (presence && methods.includes(presence.method)) return presence;
    const requirement: PresenceRequirement = { methods, what: need.what };
    let why: string;
    if (!methods.length)
      why =
        this.enrolled() > 0
          ? `A security key is enrolled: ${need.what} in the Fluid app or web UI, where the key is asked.`
          : `${need.what[0]!.toUpperCase()}${need.what.slice(1)} needs a person's confirmation, which this door cannot give.`;
    else if (methods[0] === 'webauthn' && this.enrolled() > 0)
      why = `${need.what[0]!.toUpperCase()}${need.what.slice(1)} needs your security key.`;
    else why = `${need.what[0]!.toUpperCase()}${need.what.slice(1)} needs your explicit confirmation.`;
    throw new FluidError('DENIED', why, { presence: requirement });
  }

  /** Turn a client's proof into a Presence (null when none was sent). */
  async verify(actor: Actor, purpose: string, proof: PresenceProof | undefined): Promise<Presence | null> {
    if (!proof) return null;
    const made = (method: PresenceMethod, credentialId: string | null = null): Presence =>
      Object.freeze({ method, purpose, credentialId, actor });
    switch (proof.kind) {
      case 'confirm':
        if (actor.door !== 'app' && actor.door !== 'web' && actor.door !== 'test')
          throw new FluidError(
            'DENIED',
            'An in-window confirmation can only come from the app or the web UI.',
          );
        return made('confirm');
      case 'terminal':
        if (!(actor.door === 'cli' && actor.interactive) && actor.door !== 'test')
          throw new FluidError('DENIED', 'A terminal confirmation needs an interactive terminal.');
        return made('terminal');
      case 'unattended':
        if (actor.door !== 'cli' && actor.door !== 'test' && !isOperatorToken(actor))
          throw new FluidError(
            'DENIED',
            'Unattended decisions exist only for the CLI (--yes) and operator API tokens.',
          );
        if (!this.d.settings.get().approvals.allowUnattendedCli)
          throw new FluidError(
            'DENIED',
            'Unattended CLI decisions are off (the CLI’s --yes and operator API tokens). A person can allow them in Settings → Security (approvals.allowUnattendedCli).',
          );
        return made('unattended');
      case 'webauthn':
        return made('webauthn', await this.verifyAssertion(actor, purpose, proof));
    }
  }

  /** navigator.credentials.get options for one guarded call. */
  async challenge(
    actor: Actor,
    purpose: string,
  ): Promise<{ challengeId: string; options: Record<string, unknown> }> {
    if (!isPersonDoor(actor)) throw new FluidError('DENIED', 'Only a person can confirm.');
    const rows = this.d.db.prepare('SELECT id, transports FROM presence_credentials').all() as Array<
      Pick<CredentialRow, 'id' | 'transports'>
    >;
    if (!rows.length) throw new FluidError('NOT_FOUND', 'No passkey or security key is enrolled.');
    const rpID = this.rpId();
    const { generateAuthenticationOptions } = await import('@simplewebauthn/server');
    const options = await generateAuthenticationOptions({
      rpID,
      userVerification: 'required',
      allowCredentials: rows.map((r) => ({
        id: r.id,
        transports: JSON.parse(r.transports) as never,
      })),
      timeout: CHALLENGE_TTL_MS,
    });
    const challengeId = this.keep({ kind: 'authenticate', challenge: options.challenge, purpose, actor });
    return { challengeId, options: options as unknown as Record<string, unknown> };
  }

  /** Start enrolling a key: a person, and once a key exists, presence with one of them. */
  async registerBegin(
    actor: Actor,
    name: string,
    presence: Presence | null,
  ): Promise<{ challengeId: string; options: Record<string, unknown> }> {
    const purpose = purposeOf('presence.registerBegin', { name });
    this.demand(actor, { purpose, required: true, what: `enrol the key "${name}"` }, presence);
    if (actor.door !== 'app' && actor.door !== 'web' && actor.door !== 'test')
      throw new FluidError('DENIED', 'Keys are enrolled in the Fluid app or web UI (Settings → Security).');
    const rpID = this.rpId();
    const { generateRegistrationOptions } = await import('@simplewebauthn/server');
    const existing = this.d.db.prepare('SELECT id FROM presence_credentials').all() as Array<{ id: string }>;
    const options = await generateRegistrationOptions({
      rpName: 'Fluid',
      rpID,
      userName: actor.id || 'fluid',
      userDisplayName: `Fluid (${actor.id})`,
      attestationType: 'none',
      excludeCredentials: existing.map((r) => ({ id: r.id })),
      authenticatorSelection: { userVerification: 'required', residentKey: 'preferred' },
      timeout: CHALLENGE_TTL_MS,
    });
    const challengeId = this.keep({ kind: 'register', challenge: options.challenge, purpose, actor, name });
    return { challengeId, options: options as unknown as Record<string, unknown> };
  }

  async registerFinish(
    actor: Actor,
    challengeId: string,
    response: Record<string, unknown>,
  ): Promise<PresenceCredential> {
    const c = this.take(challengeId, 'register', actor);
    const { verifyRegistrationResponse } = await import('@simplewebauthn/server');
    let out;
    try {
      out = await verifyRegistrationResponse({
        response: response as never,
        expectedChallenge: c.challenge,
        expectedOrigin: [...this.origins],
        expectedRPID: this.rpIds(),
        requireUserVerification: true,
      });
    } catch (err) {
      throw new FluidError('DENIED', `The key's answer did not verify: ${(err as Error).message}`);
    }
    if (!out.verified) throw new FluidError('DENIED', 'The key did not prove user verification.');
    const cred = out.registrationInfo.credential;
    const now = this.d.clock.now().toISOString();
    this.d.db
      .prepare(
        'INSERT INTO presence_credentials (id, name, public_key, counter, transports, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        cred.id,
        c.name ?? 'key',
        Buffer.from(cred.publicKey).toString('base64url'),
        cred.counter,
        JSON.stringify(cred.transports ?? []),
        who(actor),
        now,
      );
    this.d.audit.append({
      actor,
      action: 'presence.enrol',
      target: cred.id,
      data: { name: c.name ?? 'key', origin: out.registrationInfo.origin },
    });
    this.d.bus.emit('presence.changed', {});
    return this.credentials().find((k) => k.id === cred.id)!;
  }

  remove(actor: Actor, id: string, presence: Presence | null): void {
    const row = this.d.db.prepare('SELECT name FROM presence_credentials WHERE id = ?').get(id) as
      { name: string } | undefined;
    if (!row) throw new FluidError('NOT_FOUND', 'No such key is enrolled.');
    this.demand(
      actor,
      { purpose: purposeOf('presence.remove', { id }), required: true, what: `remove the key "${row.name}"` },
      presence,
    );
    this.d.db.prepare('DELETE FROM presence_credentials WHERE id = ?').run(id);
    this.d.audit.append({
      actor,
      action: 'presence.remove',
      target: id,
      data: { name: row.name, via: presence?.method ?? 'test' },
    });
    this.d.bus.emit('presence.changed', {});
  }

  // ---- internals -----------------------------------------------------------------------------------

  private rpIds(): string[] {
    return [...new Set([...this.origins].map((o) => new URL(o).hostname))];
  }

  private rpId(): string {
    const ids = this.rpIds();
    if (!ids.length)
      throw new FluidError(
        'UNAVAILABLE',
        'Security keys need the web UI opened on http://localhost:<port> (browsers refuse WebAuthn on an IP address or a file:// page).',
      );
    return ids[0]!;
  }

  private keep(c: Omit<Challenge, 'expiresAt'>): string {
    const now = this.d.clock.now().getTime();
    for (const [id, old] of this.challenges) if (old.expiresAt <= now) this.challenges.delete(id);
    const id = randomUUID();
    this.challenges.set(id, { ...c, expiresAt: now + CHALLENGE_TTL_MS });
    return id;
  }

  /** A challenge is used once, by the actor it was made for, before it expires. */
  private take(id: string, kind: Challenge['kind'], actor: Actor): Challenge {
    const c = this.challenges.get(id);
    this.challenges.delete(id);
    if (!c || c.kind !== kind || c.expiresAt <= this.d.clock.now().getTime())
      throw new FluidError('DENIED', 'That confirmation has expired or was already used; try again.');
    if (!sameActor(c.actor, actor))
      throw new FluidError('DENIED', 'That confirmation was started by someone else.');
    return c;
  }

  private async verifyAssertion(
    actor: Actor,
    purpose: string,
    proof: Extract<PresenceProof, { kind: 'webauthn' }>,
  ): Promise<string> {
    const c = this.take(proof.challengeId, 'authenticate', actor);
    if (c.purpose !== purpose)
      throw new FluidError('DENIED', 'That security-key confirmation was made for something else.');
    const credId = typeof proof.response.id === 'string' ? proof.response.id : '';
    const row = this.d.db.prepare('SELECT * FROM presence_credentials WHERE id = ?').get(credId) as
      CredentialRow | undefined;
    if (!row) throw new FluidError('DENIED', 'That key is not enrolled.');
    const { verifyAuthenticationResponse } = await import('@simplewebauthn/server');
    let out;
    try {
      out = await verifyAuthenticationResponse({
        response: proof.response as never,
        expectedChallenge: c.challenge,
        expectedOrigin: [...this.origins],
        expectedRPID: this.rpIds(),
        credential: {
          id: row.id,
          publicKey: new Uint8Array(Buffer.from(row.public_key, 'base64url')),
          counter: row.counter,
          transports: JSON.parse(row.transports) as never,
        },
        requireUserVerification: true,
      });
    } catch (err) {
      throw new FluidError('DENIED', `The key's answer did not verify: ${(err as Error).message}`);
    }
    if (!out.verified) throw new FluidError('DENIED', 'The key did not verify.');
    this.d.db
      .prepare('UPDATE presence_credentials SET counter = ?, last_used_at = ? WHERE id = ?')
      .run(out.authenticationInfo.newCounter, this.d.clock.now().toISOString(), row.id);
    return row.id;
  }
}
