/**
 * The diff's host program ships with the app: the Electron main bundle (built by electron-vite with
 * the project's own main config) must carry collect.py beside the chunk that reads it, so that
 * `collectScript()` works from the bundle exactly as it does from the source tree (the CLI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'electron-vite';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const source = readFileSync(join(root, 'src/core/diff/collect.py'), 'utf8');

test('a bundle built with the main config reads collect.py next to its chunk', async () => {
  mkdirSync(join(root, 'test-artifacts'), { recursive: true });
  const dir = mkdtempSync(join(root, 'test-artifacts', 'diff-bundle-'));
  try {
    const rel = (p: string) => `./${relative(dir, join(root, p))}`;
    // the entry reaches the program the way the app does: through the diff room's index
    writeFileSync(
      join(dir, 'entry.ts'),
      `import { collectScript } from ${JSON.stringify(rel('src/core/diff/index.ts'))};\nexport const read = () => collectScript();\n`,
    );
    writeFileSync(
      join(dir, 'electron.vite.config.ts'),
      `import config from ${JSON.stringify(rel('electron.vite.config.ts'))};\n` +
        `const main = (config as { main: { build: object } }).main;\n` +
        `export default { main: { ...main, build: { ...main.build, outDir: ${JSON.stringify(join(dir, 'out'))},` +
        ` rollupOptions: { input: { index: ${JSON.stringify(join(dir, 'entry.ts'))} } } } } };\n`,
    );
    await build({ configFile: join(dir, 'electron.vite.config.ts'), logLevel: 'error' });
    const files = readdirSync(join(dir, 'out'), { recursive: true }).map(String);
    const reader = files.find(
      (f) =>
        f.endsWith('.js') &&
        readFileSync(join(dir, 'out', f), 'utf8').includes('"./collect.py", import.meta.url'),
    );
    assert.ok(reader, `no chunk reads collect.py: ${files.join(', ')}`);
    const beside = join(dir, 'out', reader, '..', 'collect.py');
    assert.ok(existsSync(beside), `collect.py is not beside ${reader}: ${files.join(', ')}`);
    const mod = (await import(pathToFileURL(join(dir, 'out', 'index.js')).href)) as { read: () => string };
    assert.equal(mod.read(), source, 'the bundle reads the shipped collect.py');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
