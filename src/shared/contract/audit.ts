import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { ActorSchema, IsoDate } from './common.ts';

export const AuditEntrySchema = z.object({
  seq: z.number().int().positive(),
  ts: IsoDate,
  actor: ActorSchema,
  action: z.string(),
  target: z.string().nullable(),
  data: z.unknown(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export const AuditProblemSchema = z.object({
  seq: z.number().int(),
  kind: z.enum(['content', 'chain', 'gap', 'malformed']),
  message: z.string(),
});

export const AuditVerifySchema = z.object({
  ok: z.boolean(),
  count: z.number().int(),
  lastSeq: z.number().int(),
  headHash: z.string(),
  problems: z.array(AuditProblemSchema),
});
export type AuditVerify = z.infer<typeof AuditVerifySchema>;

export const auditContract = {
  'audit.list': call(
    z.object({
      limit: z.number().int().min(1).max(1000).default(200),
      beforeSeq: z.number().int().positive().optional(),
      action: z.string().optional(),
      target: z.string().optional(),
    }),
    z.object({ entries: z.array(AuditEntrySchema), total: z.number().int() }),
    'Audit entries, newest first.',
  ),
  'audit.verify': call(
    z.object({}),
    AuditVerifySchema,
    'Recompute the hash chain and report every row that does not match.',
  ),
  'audit.export': call(
    z.object({}),
    z.object({
      format: z.literal('jsonl'),
      content: z.string(),
      count: z.number().int(),
      headHash: z.string(),
    }),
    'The whole log as JSON lines, verifiable offline.',
  ),
  'audit.verifyExport': call(
    z.object({ content: z.string().max(200 * 1024 * 1024) }),
    AuditVerifySchema,
    'Verify an exported log (offline review).',
  ),
  'audit.appended': event(AuditEntrySchema, 'A new audit entry.'),
};
