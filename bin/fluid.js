#!/usr/bin/env node
// The `fluid` command. Runs the TypeScript sources directly on the pinned Node 24 (type stripping).
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `fluid needs Node 24 or newer (this is ${process.version}).\n` +
      'Run it from the checkout with `npx fluid …` or `npm run fluid -- …`, which use the pinned Node.\n',
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
