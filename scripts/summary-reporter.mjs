// A node:test reporter that ends the run with one plain line: "N passed, N failed".
export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  const failures = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    // Count leaf tests only (suites report too); a failed suite hook counts as a failure.
    const isSuite = event.data.details?.type === 'suite';
    if (event.type === 'test:pass' && !isSuite && !event.data.skip && !event.data.todo) passed++;
    if (event.type === 'test:fail' && (!isSuite || event.data.details?.error?.failureType === 'hookFailed')) {
      failed++;
      failures.push(`${event.data.file ?? ''} › ${event.data.name}`);
    }
  }
  if (failures.length) yield `\nFailed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`;
  yield `\n${passed} passed, ${failed} failed\n`;
}
