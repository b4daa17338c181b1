// A node:test reporter that ends the run with one plain line, the last line of `npm test`:
//   "N passed, N failed, N skipped"
// Skipped counts every test or suite marked skip or todo: it proves nothing, so it fails the run like a
// failure does (the lines above the summary name it and its reason). A run in which no test ran fails
// too, and so does a file that runs no test. Failing means a non-zero exit code; CI reads the summary line.
import { relative } from 'node:path';

const where = (data) => `${data.file ? relative(process.cwd(), data.file) : '?'} › ${data.name}`;
const reason = (value) => (typeof value === 'string' && value ? value : 'no reason given');
/** The first lines of why a test failed (the assertion or error, not the runner's wrapper), indented. */
const why = (error) => {
  const e = error?.cause ?? error;
  const text = String(e?.message ?? e ?? '').trim();
  if (!text) return '';
  const lines = text.split('\n');
  const kept = lines.slice(0, 8).map((l) => `      ${l.slice(0, 300)}`);
  if (lines.length > kept.length)
    kept.push(`      … ${lines.length - kept.length} more lines (the test's own output above has them all)`);
  return `\n${kept.join('\n')}`;
};

export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  const failures = [];
  const skips = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data;
    const isSuite = data.details?.type === 'suite';
    if (
      (data.skip !== undefined && data.skip !== false) ||
      (data.todo !== undefined && data.todo !== false)
    ) {
      // a skipped suite reports once for all of its (unrun) tests
      skips.push(
        `${where(data)} (${data.todo !== undefined && data.todo !== false ? 'todo: ' + reason(data.todo) : reason(data.skip)})`,
      );
      continue;
    }
    // a file that ran no test is reported as one passing test named after the file
    const fileItself =
      data.nesting === 0 && data.file && [data.file, relative(process.cwd(), data.file)].includes(data.name);
    if (event.type === 'test:pass' && fileItself) {
      failed++;
      failures.push(`${where(data)}: the file ran no test (it defines none, or exited before running them)`);
      continue;
    }
    // Count leaf tests only (suites report too); a failed suite hook counts as a failure.
    if (event.type === 'test:pass' && !isSuite) passed++;
    if (event.type === 'test:fail' && (!isSuite || data.details?.error?.failureType === 'hookFailed')) {
      failed++;
      failures.push(where(data) + why(data.details?.error));
    }
  }
  let out = '';
  if (failures.length) out += `\nFailed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`;
  if (skips.length)
    out +=
      `\nSkipped (a skipped test proves nothing, so it fails the run; make it run or fail with instructions):\n` +
      `${skips.map((s) => `  ${s}`).join('\n')}\n`;
  if (passed + failed + skips.length === 0) out += '\nNo test ran.\n';
  if (failed || skips.length || passed + failed + skips.length === 0) process.exitCode = 1;
  yield `${out}\n${passed} passed, ${failed} failed, ${skips.length} skipped\n`;
}
