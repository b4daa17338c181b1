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
  /**
   * content/chain/gap/malformed: rows of the chain. checkpoint: a signed checkpoint the chain does not
   * match (rows removed or rewritten). signature: a checkpoint whose signature, key or log is wrong, or
   * no usable signing key. copy: a copy of the checkpoints (the file beside the database, a host's copy)
   * that disagrees with the database or lost checkpoints.
   */
  kind: z.enum(['content', 'chain', 'gap', 'malformed', 'checkpoint', 'signature', 'copy']),
  message: z.string(),
});

/** A signed checkpoint of the chain: (log, number, entries covered, head hash, time), ed25519. */
export const AuditCheckpointSchema = z.object({
  n: z.number().int().positive(),
  log: z.string(),
  seq: z.number().int().nonnegative(),
  head: z.string(),
  ts: z.string(),
  key: z.string(),
  sig: z.string(),
});
export type AuditCheckpoint = z.infer<typeof AuditCheckpointSchema>;

export const AuditCheckpointStatusSchema = z.object({
  n: z.number().int(),
  seq: z.number().int(),
  head: z.string(),
  ts: z.string(),
  /** valid: signed by the expected key; invalid: the signature does not verify; foreign: another key or log. */
  signature: z.enum(['valid', 'invalid', 'foreign']),
  /** The chain holds entry `seq` with hash `head`. */
  matchesChain: z.boolean(),
});

/** The signing key, for a person to compare with the fingerprint `fluid doctor` shows elsewhere. */
export const AuditKeySchema = z.object({
  fingerprint: z.string().nullable(),
  /** `ssh-ed25519 AAAA… fluid-audit` (ssh-keygen -lf shows the same fingerprint). */
  publicKey: z.string().nullable(),
  /** Why checkpoints cannot be signed (or checked), or null. */
  problem: z.string().nullable(),
});

/** A copy of the checkpoints: the file beside the database, or a host's copy. */
export const AuditCopySchema = z.object({
  kind: z.enum(['file', 'host']),
  name: z.string(),
  path: z.string(),
  /**
   * ok: holds every checkpoint the database holds, identical. behind: a matching prefix, the rest not
   * delivered yet. disagrees: see problems. missing: no copy where one should be. unreachable: could
   * not be read. unused: a host Fluid has put nothing on (no copy expected).
   */
  status: z.enum(['ok', 'behind', 'disagrees', 'missing', 'unreachable', 'unused']),
  latest: z.object({ n: z.number().int(), seq: z.number().int(), head: z.string() }).nullable(),
  /** Checkpoints the database holds that this copy does not yet. */
  pending: z.number().int(),
  detail: z.string(),
});

export const AuditVerifySchema = z.object({
  ok: z.boolean(),
  count: z.number().int(),
  lastSeq: z.number().int(),
  headHash: z.string(),
  problems: z.array(AuditProblemSchema),
  /** The newest checkpoint of the log (of the export, offline), checked. */
  checkpoint: AuditCheckpointStatusSchema.nullable().default(null),
  /** Entries after that checkpoint: not signed yet. */
  uncovered: z.number().int().default(0),
  signingKey: AuditKeySchema.nullable().default(null),
  copies: z.array(AuditCopySchema).default([]),
  /** What this verification can and cannot prove. */
  notes: z.array(z.string()).default([]),
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
    z.object({
      /** Also read every host's copy of the checkpoints (one round trip per host, in parallel). */
      hosts: z.boolean().default(true),
    }),
    AuditVerifySchema,
    "Recompute the hash chain, check the signed checkpoints against it, and compare the checkpoint file and the hosts' copies with the database; names every disagreement.",
  ),
  'audit.export': call(
    z.object({}),
    z.object({
      format: z.literal('jsonl'),
      content: z.string(),
      count: z.number().int(),
      headHash: z.string(),
    }),
    'The whole log as JSON lines with its signed checkpoints, verifiable offline.',
  ),
  'audit.verifyExport': call(
    z.object({ content: z.string().max(200 * 1024 * 1024) }),
    AuditVerifySchema,
    "Verify an exported log offline: its chain, and its checkpoints' signatures with the key they carry.",
  ),
  'audit.appended': event(AuditEntrySchema, 'A new audit entry.'),
};
