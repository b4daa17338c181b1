/**
 * An exported audit file's rows for offline review, with what the verification found marked on each:
 * the file is parsed here the way the backend parses it (one JSON line per entry; checkpoint lines
 * are not rows), and each problem lands on its row (by seq, or by line number for a line that is not
 * an entry). Pure: unit-tested on its own.
 */
import type { AuditVerify } from '../../../../shared/contract/audit.ts';

export interface ReviewRow {
  /** 1-based line in the file. */
  line: number;
  seq: number | null;
  ts: string | null;
  actor: string | null;
  action: string | null;
  target: string | null;
  /** Problems of this row (kind and message). */
  problems: Array<{ kind: string; message: string }>;
  /** After the file's last signed checkpoint: nothing vouches for it. */
  unsigned: boolean;
}

export interface Review {
  rows: ReviewRow[];
  /** Problems that belong to no row (a key, a checkpoint of rows the file lacks). */
  general: Array<{ kind: string; message: string }>;
  checkpoints: number;
}

const ROW_KINDS = new Set(['content', 'chain', 'gap', 'malformed']);

export function reviewRows(content: string, result: AuditVerify): Review {
  const rows: ReviewRow[] = [];
  const bySeq = new Map<number, ReviewRow>();
  const byLine = new Map<number, ReviewRow>();
  let checkpoints = 0;
  content.split('\n').forEach((text, i) => {
    if (!text.trim()) return;
    const line = i + 1;
    let o: Record<string, unknown> | null;
    try {
      const v = JSON.parse(text) as unknown;
      o = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      o = null;
    }
    if (o && 'checkpoint' in o) {
      checkpoints++;
      return;
    }
    const actor = o?.actor as { door?: unknown; id?: unknown } | undefined;
    const row: ReviewRow = {
      line,
      seq: typeof o?.seq === 'number' ? o.seq : null,
      ts: typeof o?.ts === 'string' ? o.ts : null,
      actor: actor && typeof actor.door === 'string' ? `${actor.door}:${String(actor.id ?? '')}` : null,
      action: typeof o?.action === 'string' ? o.action : null,
      target: typeof o?.target === 'string' ? o.target : null,
      problems: [],
      unsigned: false,
    };
    rows.push(row);
    byLine.set(line, row);
    if (row.seq !== null && !bySeq.has(row.seq)) bySeq.set(row.seq, row);
  });

  const general: Review['general'] = [];
  // Entries after the newest checkpoint are not covered by a signature.
  const signedUpTo = result.checkpoint?.seq ?? (result.count ? 0 : null);
  for (const r of rows) if (r.seq !== null && signedUpTo !== null && r.seq > signedUpTo) r.unsigned = true;
  for (const p of result.problems) {
    // The backend numbers a line that is not an entry by -(line).
    const row = p.seq < 0 ? byLine.get(-p.seq) : ROW_KINDS.has(p.kind) ? bySeq.get(p.seq) : undefined;
    if (row) row.problems.push({ kind: p.kind, message: p.message });
    else general.push({ kind: p.kind, message: p.message });
  }
  return { rows, general, checkpoints };
}
