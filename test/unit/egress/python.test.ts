/**
 * The egress proxy is a Python program in a real file (src/core/egress/proxy.py): it must compile
 * (Python 3.9 grammar, the oldest the hosts may have), pass pyflakes, and pass its own unittest suite
 * (test_proxy.py, the pure logic: matching, blocked address ranges, routing, refusal messages).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PROXY_SCRIPT_VERSION,
  PROXY_SOURCE_URL,
  proxyScript,
} from '../../../src/core/egress/proxy-script.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const proxyPy = fileURLToPath(PROXY_SOURCE_URL);

function need(cmd: string, install: string): void {
  const r = spawnSync(cmd, ['--version']);
  if (r.error) throw new Error(`${cmd} is required for this test: ${install}`);
}

test('proxy.py compiles (py_compile) and parses with the Python 3.9 grammar', () => {
  need('python3', 'apt-get install -y python3');
  const cache = mkdtempSync(join(tmpdir(), 'fluid-pycache-'));
  try {
    execFileSync('python3', ['-m', 'py_compile', proxyPy], {
      env: { ...process.env, PYTHONPYCACHEPREFIX: cache },
    });
    const out = execFileSync('python3', [
      '-c',
      'import ast,sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3,9)); print("ok")',
      proxyPy,
    ]);
    assert.equal(out.toString().trim(), 'ok');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('pyflakes finds nothing in proxy.py and its tests', () => {
  need('pyflakes3', 'apt-get install -y pyflakes3');
  const r = spawnSync('pyflakes3', [proxyPy, join(here, 'test_proxy.py')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pyflakes3:\n${r.stdout}${r.stderr}`);
});

test("the proxy's unittest suite passes", () => {
  need('python3', 'apt-get install -y python3');
  const r = spawnSync('python3', ['-m', 'unittest', '-v', 'test_proxy'], {
    cwd: here,
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  const ran = /Ran (\d+) tests?/.exec(r.stderr);
  assert.ok(ran && Number(ran[1]) >= 25, `expected the whole suite to run:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /skipped=\d+/, 'no test may skip');
});

test('the source is ASCII, is the file the controller sends, and speaks the version the code expects', () => {
  const src = proxyScript();
  assert.equal(src, readFileSync(proxyPy, 'utf8'));
  assert.ok(
    [...src].every((ch) => ch === '\n' || (ch >= ' ' && ch <= '~')),
    'printable ASCII only (it travels as a length-prefixed byte string; reason phrases must be ASCII)',
  );
  assert.match(src, new RegExp(`^VERSION = ${PROXY_SCRIPT_VERSION}$`, 'm'));
});
