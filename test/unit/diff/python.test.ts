/**
 * The diff's host program is a Python program in a real file (src/core/diff/collect.py): it must
 * compile with the Python 3.9 grammar (the oldest the hosts may have), pass pyflakes, and pass its
 * own unittest suite (test_collect.py: tree comparison, fast walk vs full walk, noise rules,
 * collectors, parsers, partition tables, ext superblocks — on fixture trees).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COLLECT_PROTOCOL, COLLECT_SOURCE_URL, collectScript } from '../../../src/core/diff/host.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const collectPy = fileURLToPath(COLLECT_SOURCE_URL);

function need(cmd: string, install: string): void {
  const r = spawnSync(cmd, ['--version']);
  if (r.error) throw new Error(`${cmd} is required for this test: ${install}`);
}

test('collect.py compiles (py_compile) and parses with the Python 3.9 grammar', () => {
  need('python3', 'apt-get install -y python3');
  const cache = mkdtempSync(join(tmpdir(), 'fluid-pycache-'));
  try {
    execFileSync('python3', ['-m', 'py_compile', collectPy], {
      env: { ...process.env, PYTHONPYCACHEPREFIX: cache },
    });
    const out = execFileSync('python3', [
      '-c',
      'import ast,sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3,9)); print("ok")',
      collectPy,
    ]);
    assert.equal(out.toString().trim(), 'ok');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('pyflakes finds nothing in collect.py and its tests', () => {
  need('pyflakes3', 'apt-get install -y pyflakes3');
  const r = spawnSync('pyflakes3', [collectPy, join(here, 'test_collect.py')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pyflakes3:\n${r.stdout}${r.stderr}`);
});

test("collect.py's unittest suite passes, every test of it", () => {
  need('python3', 'apt-get install -y python3');
  const r = spawnSync('python3', ['-W', 'error::ResourceWarning', '-m', 'unittest', '-v', 'test_collect'], {
    cwd: here,
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  const ran = /Ran (\d+) tests?/.exec(r.stderr);
  assert.ok(ran && Number(ran[1]) >= 19, `expected the whole suite to run:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /skipped=\d+/, 'no test may skip');
});

test('the program the host receives is the file, and speaks the protocol the code expects', () => {
  const src = collectScript();
  assert.equal(src, readFileSync(collectPy, 'utf8'));
  assert.match(src, new RegExp(`^PROTOCOL = ${COLLECT_PROTOCOL}$`, 'm'));
  assert.ok(
    [...src].every((ch) => ch === '\n' || (ch >= ' ' && ch <= '~')),
    'printable ASCII only (it travels as a length-prefixed byte string)',
  );
});
