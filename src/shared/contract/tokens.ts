/**
 * API tokens for the HTTP door. A person creates and revokes them; the secret is shown once and kept
 * only as its sha256. A token's scope says what its holder is:
 *  - `agent`: asks for anything an agent may (sandboxes, commands, diffs, playbooks, changes,
 *    approval requests) and decides nothing — no approvals, settings or rules.
 *  - `operator`: a person's automation. Like `fluid approval approve --yes` without a terminal, it
 *    decides only while a person has allowed unattended decisions (approvals.allowUnattendedCli);
 *    creating one is a grant and needs presence.
 */
import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { ActorSchema, IsoDate } from './common.ts';
import { PresenceProofSchema } from './presence.ts';

export const TokenScope = z.enum(['agent', 'operator']);
export type TokenScope = z.infer<typeof TokenScope>;

export const TokenName = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-"');

export const ApiTokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  scope: TokenScope,
  /** The first characters of the secret, to recognise it (the rest is never kept). */
  prefix: z.string(),
  createdAt: IsoDate,
  createdBy: ActorSchema,
  lastUsedAt: IsoDate.nullable(),
  revokedAt: IsoDate.nullable(),
  revokedBy: ActorSchema.nullable(),
});
export type ApiToken = z.infer<typeof ApiTokenSchema>;

export const tokensContract = {
  'tokens.list': call(
    z.object({ includeRevoked: z.boolean().default(false) }),
    z.array(ApiTokenSchema),
    'API tokens, newest first (never their secrets).',
  ),
  'tokens.create': call(
    z.object({ name: TokenName, scope: TokenScope, presence: PresenceProofSchema.optional() }),
    z.object({
      token: ApiTokenSchema,
      /** The secret, shown this once: Fluid keeps only its sha256. */
      secret: z.string(),
    }),
    'Create an API token for the HTTP door. A person only; an operator token is a grant and needs presence.',
  ),
  'tokens.revoke': call(
    z.object({ name: TokenName }),
    ApiTokenSchema,
    'Revoke a token at once (requests with it get 401). A person only.',
  ),
  'tokens.changed': event(z.object({ name: z.string() }), 'A token was created or revoked.'),
};
