import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { ActorSchema, Id, IsoDate } from './common.ts';
import { PresenceProofSchema } from './presence.ts';

export const ApprovalStatus = z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled']);
export const Risk = z.enum(['low', 'medium', 'high']);

export const ApprovalSchema = z.object({
  id: Id,
  /** What kind of thing is asked: capacity (admission over limits), egress (a destination), tool (an agent tool call), … */
  kind: z.string(),
  title: z.string(),
  detail: z.string(),
  risk: Risk,
  /** The exact thing being approved (tool and arguments, destination, requested resources). */
  subject: z.unknown(),
  /** sha256 of the canonical subject: a decision is bound to exactly this. */
  subjectHash: z.string(),
  requestedBy: ActorSchema,
  sandboxId: z.string().nullable(),
  sessionId: z.string().nullable(),
  status: ApprovalStatus,
  decidedBy: ActorSchema.nullable(),
  /** How the decider proved presence: webauthn, confirm, terminal, unattended, or door (none needed). */
  decidedVia: z.string().nullable(),
  decidedAt: IsoDate.nullable(),
  note: z.string().nullable(),
  createdAt: IsoDate,
  expiresAt: IsoDate.nullable(),
});
export type Approval = z.infer<typeof ApprovalSchema>;

export const approvalsContract = {
  'approvals.list': call(
    z.object({
      status: ApprovalStatus.optional(),
      sandboxId: z.string().optional(),
      sessionId: z.string().optional(),
      limit: z.number().int().min(1).max(500).default(100),
    }),
    z.array(ApprovalSchema),
    'Approval requests, newest first (pending ones are what waits for a human).',
  ),
  'approvals.get': call(z.object({ id: Id }), ApprovalSchema, 'One approval request.'),
  'approvals.decide': call(
    z.object({
      id: Id,
      decision: z.enum(['approve', 'deny']),
      note: z.string().max(2000).optional(),
      presence: PresenceProofSchema.optional(),
    }),
    ApprovalSchema,
    "Approve or deny a pending request. Only a person decides (never an agent's door or a process without a terminal); approving a high-risk request needs presence.",
  ),
  'approvals.changed': event(ApprovalSchema, 'An approval was requested or decided.'),
};
