/**
 * Unified diffs of text (revision against revision): Myers' O(ND) line diff, hunks with three lines
 * of context, `--- a/…` / `+++ b/…` headers as `diff -u` prints them.
 */

type Op = { k: ' ' | '-' | '+'; line: string };

function splitLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** The edit script from a to b (Myers, with a linear-space fallback for very large inputs). */
export function diffLines(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  if (max === 0) return [];
  if (n * m > 25_000_000) {
    // Beyond this, a plain "all removed, all added" keeps memory bounded.
    return [...a.map((line) => ({ k: '-' as const, line })), ...b.map((line) => ({ k: '+' as const, line }))];
  }
  const v = new Int32Array(2 * max + 2);
  const trace: Int32Array[] = [];
  let done = false;
  for (let d = 0; d <= max && !done; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (k === -d || (k !== d && v[k - 1 + max]! < v[k + 1 + max]!)) x = v[k + 1 + max]!;
      else x = v[k - 1 + max]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[k + max] = x;
      if (x >= n && y >= m) {
        done = true;
        break;
      }
    }
  }
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0 && (x > 0 || y > 0); d--) {
    const vv = trace[d]!;
    const k = x - y;
    let prevK: number;
    if (k === -d || (k !== d && vv[k - 1 + max]! < vv[k + 1 + max]!)) prevK = k + 1;
    else prevK = k - 1;
    const prevX = vv[prevK + max]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ k: ' ', line: a[--x]! });
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ k: '+', line: b[--y]! });
      else ops.push({ k: '-', line: a[--x]! });
    }
  }
  return ops.reverse();
}

/** `diff -u` of two texts, or '' when equal. */
export function unifiedDiff(
  before: string,
  after: string,
  nameA: string,
  nameB: string,
  context = 3,
): string {
  if (before === after) return '';
  const ops = diffLines(splitLines(before), splitLines(after));
  const out: string[] = [`--- ${nameA}`, `+++ ${nameB}`];
  let i = 0;
  let aLine = 1;
  let bLine = 1;
  const positions: Array<{ a: number; b: number }> = [];
  for (const op of ops) {
    positions.push({ a: aLine, b: bLine });
    if (op.k !== '+') aLine++;
    if (op.k !== '-') bLine++;
  }
  while (i < ops.length) {
    if (ops[i]!.k === ' ') {
      i++;
      continue;
    }
    const start = Math.max(0, i - context);
    let end = i;
    while (end < ops.length) {
      if (ops[end]!.k !== ' ') {
        end++;
        continue;
      }
      let run = 0;
      while (end + run < ops.length && ops[end + run]!.k === ' ') run++;
      if (end + run >= ops.length || run > 2 * context) {
        end = Math.min(ops.length, end + context);
        break;
      }
      end += run;
    }
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((o) => o.k !== '+').length;
    const bCount = hunk.filter((o) => o.k !== '-').length;
    const p = positions[start]!;
    out.push(`@@ -${aCount ? p.a : p.a - 1},${aCount} +${bCount ? p.b : p.b - 1},${bCount} @@`);
    for (const o of hunk) out.push(`${o.k}${o.line}`);
    i = end;
  }
  if (!before.endsWith('\n') && before !== '') out.push('\\ No newline at end of file (before)');
  if (!after.endsWith('\n') && after !== '') out.push('\\ No newline at end of file (after)');
  return out.join('\n') + '\n';
}
