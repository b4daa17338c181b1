/**
 * The Electron door without the Electron binary: the shell stays thin and hardened, and the built
 * preload can run sandboxed (it requires nothing but electron and exposes nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const files = (dir: string): string[] =>
  readdirSync(join(root, dir)).flatMap((f) => {
    const p = join(dir, f);
    return statSync(join(root, p)).isDirectory() ? files(p) : [p];
  });

test('the Electron shell is a few hundred lines at most', () => {
  const lines =
    files('src/main').reduce((n, f) => n + readFileSync(join(root, f), 'utf8').split('\n').length, 0) +
    files('src/preload').reduce((n, f) => n + readFileSync(join(root, f), 'utf8').split('\n').length, 0);
  assert.ok(lines < 300, `src/main + src/preload have ${lines} lines`);
});

test('no electron import outside src/main and src/preload', () => {
  const offenders = files('src')
    .filter((f) => /\.(ts|tsx)$/.test(f) && !f.startsWith('src/main/') && !f.startsWith('src/preload/'))
    .filter((f) =>
      /from ['"]electron['"]|require\(['"]electron['"]\)/.test(readFileSync(join(root, f), 'utf8')),
    );
  assert.deepEqual(offenders, []);
});

test('the window is hardened: isolation, sandbox, no node, navigation and new windows denied', () => {
  const main = readFileSync(join(root, 'src/main/index.ts'), 'utf8');
  for (const needle of [
    'contextIsolation: true',
    'sandbox: true',
    'nodeIntegration: false',
    'webviewTag: false',
    "'will-navigate'",
    'setWindowOpenHandler',
    "action: 'deny'",
    'setPermissionRequestHandler',
  ]) {
    assert.ok(main.includes(needle), `src/main/index.ts lacks ${needle}`);
  }
  const html = readFileSync(join(root, 'src/renderer/index.html'), 'utf8');
  assert.match(html, /Content-Security-Policy/);
  assert.doesNotMatch(html, /script-src[^;]*unsafe-(inline|eval)/);
});

test('the built preload requires only electron and exposes nothing', () => {
  const file = join(root, 'out/preload/index.cjs');
  assert.ok(existsSync(file), 'out/preload/index.cjs is missing: run `npm run build` first');
  const code = readFileSync(file, 'utf8');
  const requires = [...code.matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(requires)], ['electron']);
  assert.doesNotMatch(code, /exposeInMainWorld|exposeInIsolatedWorld/);
  assert.match(code, /fluid:port/);
});
