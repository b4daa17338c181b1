/**
 * The exported log: one JSON line per entry, and after the entry a checkpoint covers, that checkpoint's
 * line (`{"checkpoint":n,...}`, the same bytes as in every other copy). Each checkpoint carries the
 * public key that signed it, so the file verifies offline with nothing else.
 *
 * What an offline check proves, and what it cannot, is returned in `notes` (and said in the README).
 */
import type { AuditEntry, AuditVerify } from '../../shared/contract/audit.ts';
import { FluidError } from '../../shared/errors.ts';
import type { AuditProblem } from './chain.ts';
import { isCheckpoint, keyFingerprint, parseLine, toLine, type Checkpoint } from './checkpoint.ts';
import { checkAgainstChain, keyInfo } from './verify.ts';

/** Interleave: entry lines in order, each checkpoint right after the entry it covers. */
export function exportLines(entries: Iterable<AuditEntry>, checkpoints: Checkpoint[]): string[] {
  const bySeq = new Map<number, Checkpoint[]>();
  for (const c of checkpoints) bySeq.set(c.seq, [...(bySeq.get(c.seq) ?? []), c]);
  const lines: string[] = [];
  for (const e of entries) {
    lines.push(JSON.stringify(e));
    for (const c of bySeq.get(e.seq) ?? []) lines.push(toLine(c));
    bySeq.delete(e.seq);
  }
  // Checkpoints of entries the log no longer has go at the end: the offline check names them.
  for (const list of bySeq.values()) for (const c of list) lines.push(toLine(c));
  return lines;
}

export function parseExport(content: string): {
  entries: AuditEntry[];
  checkpoints: Checkpoint[];
  problems: AuditProblem[];
} {
  const entries: AuditEntry[] = [];
  const checkpoints: Checkpoint[] = [];
  const problems: AuditProblem[] = [];
  content.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const bad = (why: string) =>
      problems.push({
        seq: -(i + 1),
        kind: 'malformed',
        message: `Line ${i + 1} is not an audit entry (${why}).`,
      });
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      return bad((err as Error).message);
    }
    if (o && typeof o === 'object' && 'checkpoint' in o) {
      const c = parseLine(line);
      if (isCheckpoint(c)) checkpoints.push(c);
      else
        problems.push({
          seq: -(i + 1),
          kind: 'malformed',
          message: `Line ${i + 1} is not a valid checkpoint (${c.error}).`,
        });
      return;
    }
    if (!o || typeof o.seq !== 'number' || typeof o.hash !== 'string' || !o.actor)
      return bad('missing fields');
    entries.push(o as unknown as AuditEntry);
  });
  return { entries, checkpoints, problems };
}

/** Verify an exported file with nothing but its content. */
export function verifyExport(content: string): AuditVerify {
  const parsed = parseExport(content);
  if (!parsed.entries.length && !parsed.checkpoints.length && !parsed.problems.length)
    throw new FluidError('VALIDATION', 'The export is empty.');
  // The export's own key and log: those of its newest checkpoint. Checkpoints by another key are named.
  const newest = parsed.checkpoints.reduce<Checkpoint | null>((a, c) => (!a || c.n > a.n ? c : a), null);
  const self = { name: 'the export', checkpoints: parsed.checkpoints };
  const r = checkAgainstChain(
    parsed.entries,
    [self],
    { log: newest?.log ?? null, key: newest?.key ?? null },
    self,
  );
  const problems = [...parsed.problems, ...r.chain.problems, ...r.problems];
  const notes: string[] = [];
  if (!newest) {
    if (parsed.entries.length)
      problems.push({
        seq: r.chain.lastSeq,
        kind: 'signature',
        message:
          'The export carries no signed checkpoint: its rows could have been rewritten with every hash recomputed, and nothing in it can tell. (Exports from this version of Fluid always carry one.)',
      });
  } else {
    if (r.uncovered > 0 && r.latest?.matchesChain)
      problems.push({
        seq: r.chain.lastSeq - r.uncovered + 1,
        kind: 'checkpoint',
        message: `Entries ${r.chain.lastSeq - r.uncovered + 1}..${r.chain.lastSeq} come after the export's last checkpoint (#${newest.n}): no signature covers them, so they could have been added or changed.`,
      });
    const fp = keyFingerprint(newest.key);
    notes.push(
      `Signed by key ${fp}. If that is the fingerprint \`fluid audit verify\` or \`fluid doctor\` shows on the installation, entries 1..${newest.seq} are exactly what it recorded up to checkpoint #${newest.n}: none removed, added or rewritten. A fingerprint you have not compared proves nothing — anyone can sign a file with a key of their own.`,
      `An offline check cannot prove the export is complete: a copy cut back to an earlier checkpoint verifies too. Compare its newest checkpoint (#${newest.n}, entry ${newest.seq}, ${newest.ts}) with the hosts' copies (\`fluid audit verify\`) or a later export.`,
      'Whoever holds the private key (in the secret store of the installation) could sign a rewritten log; copies kept on the hosts or in earlier exports before such a rewrite would still disagree with it.',
    );
  }
  return {
    ok: problems.length === 0,
    count: r.chain.count,
    lastSeq: r.chain.lastSeq,
    headHash: r.chain.headHash,
    problems,
    checkpoint: r.latest,
    uncovered: r.uncovered,
    signingKey: newest ? keyInfo(newest.key, null) : null,
    copies: [],
    notes,
  };
}
