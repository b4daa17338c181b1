#!/usr/bin/env node
// The `fluid` command, on the pinned Node 24. It runs the CLI bundle (out/cli/main.js, made by
// `npm run build`) when the bundle is not older than any file it was built from
// (out/cli/inputs.json), and otherwise the TypeScript sources directly (type stripping), so a
// checkout without a build, or with edits since, still works. Node's compile cache keeps the
// compiled code between calls.
//   env: FLUID_CLI_SOURCES=1         run the sources even when the bundle is fresh
//        FLUID_CLI_REQUIRE_BUNDLE=1  fail (exit 2) instead of falling back to the sources
import module from 'node:module';
import { readFileSync, statSync } from 'node:fs';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `fluid needs Node 24 or newer (this is ${process.version}).\n` +
      'Run it from the checkout with `npx fluid …` or `npm run fluid -- …`, which use the pinned Node.\n',
  );
  process.exit(2);
}
module.enableCompileCache?.();

const root = new URL('../', import.meta.url);
const BUNDLE = new URL('out/cli/main.js', root);

/** Why the bundle cannot be used, or null when it is at least as new as all of its inputs. */
function staleBundle() {
  let built;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    return 'there is no bundle (npm run build makes it)';
  }
  let inputs;
  try {
    ({ inputs } = JSON.parse(readFileSync(new URL('out/cli/inputs.json', root), 'utf8')));
  } catch {
    return 'out/cli/inputs.json is missing or unreadable';
  }
  for (const file of inputs) {
    let mtime;
    try {
      mtime = statSync(new URL(file, root)).mtimeMs;
    } catch {
      return `${file} is gone`;
    }
    if (mtime > built) return `${file} changed after the build`;
  }
  return null;
}

let entry = '../src/cli/main.ts';
if (process.env.FLUID_CLI_SOURCES !== '1') {
  const stale = staleBundle();
  if (!stale) entry = '../out/cli/main.js';
  else if (process.env.FLUID_CLI_REQUIRE_BUNDLE === '1') {
    process.stderr.write(`fluid: the CLI bundle cannot be used: ${stale}. Run \`npm run build\`.\n`);
    process.exit(2);
  }
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
