/**
 * `npm test` itself (scripts/test.sh + scripts/summary-reporter.mjs), run for real on fixture test
 * files: a selection that matches nothing fails, files and directories work as filters, the summary
 * counts skipped and todo tests and stays the last line, and a skipped test, a failure or a file that
 * runs no test fails the run. The setup's checks name what is missing and stop before any test.
 * FLUID_SKIP_SETUP/CHECKS/BUILD keep these runs from installing or building anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the last non-empty line of stdout */
  last: string;
}

function runTestScript(env: Record<string, string>): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    FLUID_SKIP_SETUP: '1',
    FLUID_SKIP_CHECKS: '1',
    FLUID_SKIP_BUILD: '1',
    ...env,
  };
  // this file runs under node --test: its marker would make the inner run report to us, not print
  delete childEnv.NODE_TEST_CONTEXT;
  for (const [k, v] of Object.entries(env)) if (v === '') delete childEnv[k];
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(ROOT, 'scripts/test.sh')], { cwd: ROOT, env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = stdout.split('\n').filter((l) => l.trim() !== '');
      resolve({ code, stdout, stderr, last: lines.at(-1) ?? '' });
    });
  });
}

let dir: string;
const file = (name: string) => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fluid-runner-test-'));
  const write = (name: string, body: string) => {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), `import { test, describe } from 'node:test';\n${body}\n`);
  };
  write('pass/one.test.ts', "test('one passes', () => {});");
  write('pass/nested/two.test.ts', "test('two passes', () => {});\ntest('three passes', () => {});");
  write('pass/helper.ts', "throw new Error('a helper is not a test file and must not run');");
  write(
    'skip/skip.test.ts',
    "test('runs', () => {});\ntest('needs root', { skip: 'needs root' }, () => {});",
  );
  write(
    'skip/suite.test.ts',
    "describe('the whole suite', { skip: 'no lab' }, () => { test('x', () => {}); });",
  );
  write('todo/todo.test.ts', "test('runs', () => {});\ntest('later', { todo: 'not written yet' });");
  write('fail/fail.test.ts', "test('runs', () => {});\ntest('breaks', () => { throw new Error('boom'); });");
  write('empty/empty.test.ts', 'export const nothing = 1;');
  // one file that reads the lab's description (the lab lane) and two that do not (the lane beside it)
  write('lanes/lab.test.ts', "const readLab = () => 'lab';\ntest('on the lab', () => { readLab(); });");
  write('lanes/free.test.ts', "test('beside the lab', () => {});");
  write('lanes/free-fail.test.ts', "test('breaks beside the lab', () => { throw new Error('boom'); });");
  write(
    'lanes/lab-fail.test.ts',
    "const readLab = () => 'lab';\ntest('breaks on the lab', () => { readLab(); throw new Error('the host said no\\nline two'); });",
  );
  mkdirSync(join(dir, 'no-tests'));
  writeFileSync(join(dir, 'no-tests/readme.txt'), 'no test files here');
  // a list with a package no machine has, for the setup checks
  writeFileSync(
    join(dir, 'packages.txt'),
    '# fixture\nbash  bash  unit,integration  the shell\n' +
      'fluid-test-no-such-package  /nonexistent/fluid-test-tool  unit,integration  a package nobody has\n',
  );
  // `id -u` answers 1000: the setup's "not root" path, whoever runs this test
  mkdirSync(join(dir, 'bin'));
  writeFileSync(
    join(dir, 'bin/id'),
    '#!/bin/sh\n[ "$1" = -u ] && { echo 1000; exit 0; }\nexec /usr/bin/id "$@"\n',
  );
  chmodSync(join(dir, 'bin/id'), 0o755);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) skipped$/;

describe('FLUID_TEST_ONLY', () => {
  test('a path that does not exist fails at once, naming it, before any setup', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: 'test/unit/does-not-exist',
      FLUID_SKIP_SETUP: '',
      // were the setup to run after all, it only checks (never installs) a list of its own
      FLUID_DEPS_LIST: file('packages.txt'),
      FLUID_DEPS_PROBE_ONLY: '1',
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /'test\/unit\/does-not-exist' matches no test file/);
    assert.doesNotMatch(r.stdout, /== (setup|tests)/);
  });

  test('a directory without test files fails', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('no-tests') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /holds no test file/);
    assert.doesNotMatch(r.stdout, /== tests/);
  });

  test('a file that is not a test file fails', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('pass/helper.ts') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /is not a test file/);
  });

  test('one existing and one missing entry fails too', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: `${file('pass/one.test.ts')} ${file('pass/typo')}` });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pass\/typo' matches no test file/);
  });

  test('a single file runs that file only', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('pass/one.test.ts') });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /== tests: 1 files/);
    assert.equal(r.last, '1 passed, 0 failed, 0 skipped');
    assert.doesNotMatch(r.stdout, /two passes/);
  });

  test('a directory runs its test files, nested ones included, and no other file', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('pass') });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.last, '3 passed, 0 failed, 0 skipped');
    assert.doesNotMatch(r.stdout + r.stderr, /helper is not a test file/);
  });

  test('several space-separated entries run together, each file once', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: `${file('pass/nested')} ${file('pass/one.test.ts')} ${file('pass/nested/two.test.ts')}`,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /== tests: 2 files/);
    assert.equal(r.last, '3 passed, 0 failed, 0 skipped');
  });
});

describe('the summary and the exit code', () => {
  test('a skipped test is counted, named with its reason, and fails the run', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('skip/skip.test.ts') });
    assert.notEqual(r.code, 0);
    assert.equal(r.last, '1 passed, 0 failed, 1 skipped');
    assert.match(r.stdout, /skip\.test\.ts › needs root \(needs root\)/);
  });

  test('a skipped suite counts as skipped', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('skip/suite.test.ts') });
    assert.notEqual(r.code, 0);
    assert.equal(r.last, '0 passed, 0 failed, 1 skipped');
    assert.match(r.stdout, /the whole suite \(no lab\)/);
  });

  test('a todo test counts as skipped and fails the run', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('todo') });
    assert.notEqual(r.code, 0);
    assert.equal(r.last, '1 passed, 0 failed, 1 skipped');
    assert.match(r.stdout, /later \(todo: not written yet\)/);
  });

  test('a failure fails the run and the summary is still the last line', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('fail') });
    assert.notEqual(r.code, 0);
    assert.equal(r.last, '1 passed, 1 failed, 0 skipped');
    assert.match(r.stdout, /Failed:\n.*fail\.test\.ts › breaks/);
  });

  test('a file that runs no test fails the run', async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('empty') });
    assert.notEqual(r.code, 0);
    assert.match(r.last, SUMMARY);
    assert.match(r.stdout, /empty\.test\.ts.*the file ran no test/);
  });

  test('everything together: counts add up across files', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: `${file('pass')} ${file('skip')} ${file('todo')} ${file('fail')}`,
    });
    assert.notEqual(r.code, 0);
    assert.equal(r.last, '6 passed, 1 failed, 3 skipped');
  });
});

describe('two lanes', () => {
  test('lab files and the others run in separate lanes, and one summary line adds them up', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: `${file('lanes/lab.test.ts')} ${file('lanes/free.test.ts')} ${file('lanes/free-fail.test.ts')}`,
    });
    assert.notEqual(r.code, 0, 'a failure in the lane beside the lab fails the run');
    assert.equal(r.last, '2 passed, 1 failed, 0 skipped');
    assert.match(r.stdout, /3 files \(1 on the lab, 2 beside them\)/);
    assert.match(r.stdout, /== the tests beside the lab \(2 files\)[\s\S]*breaks beside the lab/);
  });

  test("the end of the output names every lane's failures with why, just above the summary", async () => {
    const r = await runTestScript({ FLUID_TEST_ONLY: file('lanes') });
    assert.notEqual(r.code, 0);
    assert.equal(r.last, '2 passed, 2 failed, 0 skipped');
    // After both lanes' own logs (the free lane's is printed last), right before the summary line.
    const tail = r.stdout.slice(r.stdout.lastIndexOf('== the lab lane'));
    assert.ok(r.stdout.indexOf('== the tests beside the lab') < r.stdout.lastIndexOf('== the lab lane'));
    assert.match(tail, /line two\n[\s\S]*boom\n\n2 passed, 2 failed, 0 skipped\n$/);
    assert.match(
      tail,
      /== the lab lane\nFailed:\n {2}\S*lab-fail\.test\.ts › breaks on the lab\n {6}the host said no\n {6}line two\n/,
    );
    assert.match(
      tail,
      /== the free lane\nFailed:\n {2}\S*free-fail\.test\.ts › breaks beside the lab\n {6}boom\n/,
    );
    assert.ok(tail.indexOf('== the lab lane') < tail.indexOf('== the free lane'));
  });

  test('a passing run of both lanes exits 0', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: `${file('lanes/lab.test.ts')} ${file('lanes/free.test.ts')}`,
    });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.last, '2 passed, 0 failed, 0 skipped');
  });
});

describe('setup checks', () => {
  test('not root: a selection with lab or root suites names why and what is missing, and runs no test', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: 'test/integration/hosts.test.ts',
      FLUID_SKIP_SETUP: '',
      FLUID_DEPS_LIST: file('packages.txt'),
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Not root: test\/integration and e2e need root/);
    assert.match(r.stderr, /fluid-test-no-such-package +a package nobody has/);
    assert.doesNotMatch(r.stderr, /bash +the shell/, 'only the missing packages are named');
    assert.match(r.stderr, /no test was run/);
    assert.doesNotMatch(r.stdout, /== tests/);
  });

  test('not Debian: the missing packages are named with what they provide, and no test runs', async () => {
    const r = await runTestScript({
      FLUID_TEST_ONLY: file('pass/one.test.ts'),
      FLUID_SKIP_SETUP: '',
      FLUID_DEPS_LIST: file('packages.txt'),
      FLUID_DEPS_PROBE_ONLY: '1',
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fluid-test-no-such-package .*provides \/nonexistent\/fluid-test-tool/);
    assert.match(r.stderr, /not a Debian machine/);
    assert.doesNotMatch(r.stdout, /== tests/);
  });
});
