/**
 * The Python SDK's offline tests, run by Debian's python3 (standard library unittest): its models
 * against the OpenAPI document the server serves, and its parsing. The tests that need a server and
 * the lab run from test/integration/http-sdk.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApiDocument } from '../../../scripts/build/openapi.ts';

const PYTHON = '/usr/bin/python3';
const sdk = new URL('../../../sdk/python/', import.meta.url).pathname;

test("Debian's python3 runs the SDK's offline tests: models in step with the OpenAPI document", () => {
  const version = spawnSync(PYTHON, ['-c', 'import sys; print(sys.version_info >= (3, 9))'], {
    encoding: 'utf8',
  });
  assert.equal(version.status, 0, `${PYTHON} is missing: apt-get install python3`);
  assert.equal(version.stdout.trim(), 'True');
  const dir = mkdtempSync(join(tmpdir(), 'fluid-openapi-'));
  try {
    const doc = join(dir, 'openapi.json');
    writeFileSync(doc, JSON.stringify(openApiDocument()));
    const r = spawnSync(PYTHON, ['-m', 'unittest', '-v', 'tests.test_models', 'tests.test_transport'], {
      cwd: sdk,
      encoding: 'utf8',
      env: { ...process.env, FLUID_OPENAPI: doc, PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Ran (\d+) tests/);
    assert.ok(Number(/Ran (\d+) tests/.exec(r.stderr)![1]) >= 5);
    assert.match(r.stderr, /\nOK\n?$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the SDK passes pyflakes and compiles for Python 3.9 syntax (no 3.10+ only constructs)', () => {
  const flakes = spawnSync('pyflakes3', [join(sdk, 'fluid'), join(sdk, 'tests')], { encoding: 'utf8' });
  assert.equal(flakes.status, 0, flakes.stdout + flakes.stderr);
  // the grammar of 3.9: no match statements and no X | Y unions outside postponed annotations
  const r = spawnSync(
    PYTHON,
    [
      '-c',
      `import ast, pathlib, sys
bad = []
for p in pathlib.Path(sys.argv[1]).rglob('*.py'):
    tree = ast.parse(p.read_text(), feature_version=(3, 9))
    src = p.read_text()
    if 'from __future__ import annotations' not in src and '| None' in src: bad.append(str(p))
print('\\n'.join(bad)); sys.exit(1 if bad else 0)`,
      sdk,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
