/**
 * Human presence: proof that a person, not a program, made a high-risk decision (approving a
 * production apply, new egress or a destructive call; loosening rules or limits).
 *
 * A guarded call takes an optional `presence` proof. Without an acceptable one it fails with DENIED
 * and `data.presence` (a PresenceRequirement) saying which proofs would do; the door then runs the
 * ceremony and repeats the call with the proof:
 *  - `webauthn`: an assertion from an enrolled passkey or security key, over a challenge bound to the
 *    exact call (`presence.challenge`). Once a key is enrolled, it is the only proof accepted for
 *    high-risk decisions.
 *  - `confirm`: an explicit confirmation in the app window or the web UI (no key enrolled).
 *  - `terminal`: a confirmation typed on an interactive terminal (the CLI; no key enrolled).
 *  - `unattended`: the CLI's `--yes` without a terminal, or an operator-scoped API token, only while
 *    a person has allowed unattended decisions (setting `approvals.allowUnattendedCli`, whose name
 *    predates the tokens: it covers both).
 */
import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { ActorSchema, Id, IsoDate, Ok } from './common.ts';

export const PresenceMethod = z.enum(['webauthn', 'confirm', 'terminal', 'unattended']);
export type PresenceMethod = z.infer<typeof PresenceMethod>;

/** A WebAuthn response as @simplewebauthn/browser returns it (checked by the server). */
const WebAuthnResponse = z.record(z.string(), z.unknown());

export const PresenceProofSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('confirm') }),
  z.object({ kind: z.literal('terminal') }),
  z.object({ kind: z.literal('unattended') }),
  z.object({ kind: z.literal('webauthn'), challengeId: Id, response: WebAuthnResponse }),
]);
export type PresenceProof = z.infer<typeof PresenceProofSchema>;

/** What a guarded call needs (the `data.presence` of its DENIED error). */
export const PresenceRequirementSchema = z.object({
  /** Proofs that would be accepted from this door, best first. Empty: none can be given here. */
  methods: z.array(PresenceMethod),
  /** What is being confirmed, in words: `approve "egress to example.com:443"`. */
  what: z.string(),
});
export type PresenceRequirement = z.infer<typeof PresenceRequirementSchema>;

/** Calls that can require presence; `presence.challenge` binds a WebAuthn challenge to one of them. */
export const GuardedMember = z.enum([
  'approvals.decide',
  'settings.update',
  'sandboxes.egressAllow',
  'presence.registerBegin',
  'presence.remove',
  'tokens.create',
  'providers.save',
]);
export type GuardedMember = z.infer<typeof GuardedMember>;

export const PresenceCredentialSchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: IsoDate,
  createdBy: z.string(),
  lastUsedAt: IsoDate.nullable(),
});
export type PresenceCredential = z.infer<typeof PresenceCredentialSchema>;

export const PresenceStatusSchema = z.object({
  credentials: z.array(PresenceCredentialSchema),
  /** Origins this backend accepts WebAuthn ceremonies from (the web UI's, on `localhost`). */
  origins: z.array(z.string()),
  /** A person allowed `fluid approval approve --yes` without a terminal. */
  unattendedCli: z.boolean(),
  actor: ActorSchema,
});
export type PresenceStatus = z.infer<typeof PresenceStatusSchema>;

const Options = z.record(z.string(), z.unknown());

export const presenceContract = {
  'presence.status': call(
    z.object({}),
    PresenceStatusSchema,
    'Enrolled passkeys and security keys, and how decisions are confirmed.',
  ),
  'presence.challenge': call(
    z.object({ member: GuardedMember, input: z.record(z.string(), z.unknown()) }),
    z.object({ challengeId: Id, options: Options }),
    'A WebAuthn challenge bound to exactly one guarded call (navigator.credentials.get options).',
  ),
  'presence.registerBegin': call(
    z.object({
      name: z.string().trim().min(1).max(80),
      presence: PresenceProofSchema.optional(),
    }),
    z.object({ challengeId: Id, options: Options }),
    'Start enrolling a passkey or security key (navigator.credentials.create options). A person only; once a key exists, adding another needs one.',
  ),
  'presence.registerFinish': call(
    z.object({ challengeId: Id, response: WebAuthnResponse }),
    PresenceCredentialSchema,
    'Finish enrolling: verify the new credential and keep its public key.',
  ),
  'presence.remove': call(
    z.object({ id: z.string().min(1).max(1024), presence: PresenceProofSchema.optional() }),
    Ok,
    'Remove an enrolled key (needs one of the enrolled keys).',
  ),
  'presence.changed': event(z.object({}), 'Enrolled keys changed.'),
};
