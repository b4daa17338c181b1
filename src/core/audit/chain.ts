/**
 * The hash chain: each entry's hash covers its own fields and the previous entry's hash, so editing,
 * deleting or reordering a row is caught — unless every hash after it is recomputed too, which is what
 * the signed checkpoints (checkpoint.ts) are for.
 */
import type { AuditEntry, AuditVerify } from '../../shared/contract/audit.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditProblem = AuditVerify['problems'][number];
export type ChainResult = Pick<AuditVerify, 'ok' | 'count' | 'lastSeq' | 'headHash' | 'problems'>;

export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return sha256Hex(
    canonicalJson([
      e.seq,
      e.ts,
      e.actor.door,
      e.actor.id,
      e.action,
      e.target,
      canonicalJson(e.data ?? null),
      e.prevHash,
    ]),
  );
}

/** Verify a sequence of entries (from the database or an exported file). Reports every bad row. */
export function verifyEntries(entries: Iterable<AuditEntry>): ChainResult {
  const problems: AuditProblem[] = [];
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  let lastSeq = 0;
  for (const e of entries) {
    count++;
    if (e.seq !== expectedSeq) {
      problems.push({
        seq: e.seq,
        kind: 'gap',
        message:
          e.seq > expectedSeq
            ? `Entries ${expectedSeq}..${e.seq - 1} are missing before entry ${e.seq}.`
            : `Entry ${e.seq} is out of order (expected ${expectedSeq}).`,
      });
    }
    if (e.prevHash !== prevHash) {
      problems.push({
        seq: e.seq,
        kind: 'chain',
        message: `Entry ${e.seq} does not follow the entry before it: its recorded previous hash does not match${
          e.seq > 1
            ? ` entry ${e.seq - 1}'s hash (entry ${e.seq - 1} was changed, or entries were removed or reordered)`
            : ' the start of the log'
        }.`,
      });
    }
    const recomputed = entryHash(e);
    if (recomputed !== e.hash) {
      problems.push({
        seq: e.seq,
        kind: 'content',
        message: `Entry ${e.seq} (${e.action}) was changed after it was written: its content no longer matches its hash.`,
      });
    }
    prevHash = e.hash;
    expectedSeq = e.seq + 1;
    lastSeq = e.seq;
  }
  return { ok: problems.length === 0, count, lastSeq, headHash: prevHash, problems };
}
