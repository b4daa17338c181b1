/**
 * Every Python program Fluid runs (and every scenario file it serves, like the demo's) ships with the app: the Electron main bundle (built by electron-vite
 * with the project's own main config) must carry each `.py` file beside the chunk that refers to it, so
 * that `new URL('./x.py', import.meta.url)` finds the same bytes from the bundle as from the source
 * tree. The programs are found by reading the sources, so a new one is checked without editing this.
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
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'electron-vite';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** `export const NAME = new URL('./x.py', import.meta.url)` (or `./dir/x.yaml`) in src/core: module, constant, file. */
function shippedPrograms(): { module: string; name: string; file: string }[] {
  const found: { module: string; name: string; file: string }[] = [];
  const files = readdirSync(join(root, 'src/core'), { recursive: true }).map(String);
  for (const f of files.filter((f) => f.endsWith('.ts')).sort()) {
    const text = readFileSync(join(root, 'src/core', f), 'utf8');
    for (const m of text.matchAll(
      /export const (\w+) = new URL\('\.\/((?:[\w-]+\/)*[\w-]+\.(?:py|yaml))', import\.meta\.url\)/g,
    )) {
      found.push({ module: `src/core/${f}`, name: m[1]!, file: join(dirname(`src/core/${f}`), m[2]!) });
    }
  }
  return found;
}

test('a bundle built with the main config carries every Python program beside the chunk that reads it', async () => {
  const programs = shippedPrograms();
  // the ones known today must be among them (the scan itself must not silently find nothing)
  for (const known of [
    'collect.py',
    'proxy.py',
    'expiry.py',
    'fluid_json.py',
    'target_state.py',
    'examples/fix-nginx.yaml',
  ])
    assert.ok(
      programs.some((p) => p.file.endsWith(`/${known}`)),
      `${known} not found: ${JSON.stringify(programs)}`,
    );
  mkdirSync(join(root, 'test-artifacts'), { recursive: true });
  const dir = mkdtempSync(join(root, 'test-artifacts', 'python-bundle-'));
  try {
    const rel = (p: string) => `./${relative(dir, join(root, p))}`;
    const entry = programs
      .map((p, i) => `import { ${p.name} as p${i} } from ${JSON.stringify(rel(p.module))};`)
      .concat(`export const urls = [${programs.map((_, i) => `p${i}.href`).join(', ')}];`)
      .join('\n');
    writeFileSync(join(dir, 'entry.ts'), `${entry}\n`);
    writeFileSync(
      join(dir, 'electron.vite.config.ts'),
      `import config from ${JSON.stringify(rel('electron.vite.config.ts'))};\n` +
        `const main = (config as { main: { build: object } }).main;\n` +
        `export default { main: { ...main, build: { ...main.build, outDir: ${JSON.stringify(join(dir, 'out'))},` +
        ` rollupOptions: { input: { index: ${JSON.stringify(join(dir, 'entry.ts'))} } } } } };\n`,
    );
    await build({ configFile: join(dir, 'electron.vite.config.ts'), logLevel: 'error' });
    const mod = (await import(pathToFileURL(join(dir, 'out', 'index.js')).href)) as { urls: string[] };
    assert.equal(mod.urls.length, programs.length);
    programs.forEach((p, i) => {
      const shipped = fileURLToPath(mod.urls[i]!);
      assert.ok(shipped.startsWith(join(dir, 'out')), `${p.name} points outside the bundle: ${shipped}`);
      assert.ok(existsSync(shipped), `${p.file} is not in the bundle at ${shipped}`);
      assert.equal(
        readFileSync(shipped, 'utf8'),
        readFileSync(join(root, p.file), 'utf8'),
        `the bundle's ${p.file} differs from the source`,
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
