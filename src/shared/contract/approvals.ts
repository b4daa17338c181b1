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
  /** The sandbox's name (a later sandbox may take the same name: the id is what counts). Set by list and get. */
  sandboxName: z.string().nullable().optional(),
  /** Whether that sandbox still exists (not destroyed). Set by list and get. */
  sandboxExists: z.boolean().nullable().optional(),
  sessionId: z.string().nullable(),
  /** The asking session's title. Set by list and get. */
  sessionTitle: z.string().nullable().optional(),
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

/** What an agent asks a person (approvals.request, approvals.ask). */
const AskInput = z.object({
  title: z.string().trim().min(1).max(200),
  detail: z.string().max(20_000).default(''),
  risk: Risk.default('medium'),
  /** What exactly the answer is about (a plan, a command, a file); the decision is bound to its hash. */
  subject: z.unknown().optional(),
  sandboxId: z.string().max(128).optional(),
  /** Undecided requests expire (count as denied) after this long. */
  timeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .default(3600),
});

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
  'approvals.request': call(
    AskInput,
    ApprovalSchema,
    'Ask a person a question or for a go-ahead (an approval request of kind "ask"); returns at once. Any door may ask.',
  ),
  'approvals.ask': call(
    AskInput,
    ApprovalSchema,
    'Ask a person and wait for the decision (or the expiry): the blocking "ask a person" call. Stopping the call withdraws the request.',
  ),
  'approvals.changed': event(ApprovalSchema, 'An approval was requested or decided.'),
};
