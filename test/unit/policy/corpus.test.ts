import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createShellPolicy, type ShellPolicy } from '../../../src/core/policy/shell.ts';
import { loadCorpus, unseen } from './corpus.ts';
import { bashAvailable, runInBash } from './oracle.ts';
import { generator } from './generate.ts';

let policy: ShellPolicy;
before(async () => {
  policy = await createShellPolicy();
});

const show = (failures: string[]) => `${failures.length} failure(s):\n${failures.join('\n')}`;

describe('corpus', () => {
  test('every line of allow.txt is allowed', () => {
    const cmds = loadCorpus('allow');
    assert.ok(cmds.length >= 500, `allow corpus has ${cmds.length} lines`);
    const failures: string[] = [];
    for (const c of cmds) {
      const r = policy.check(c);
      if (r.decision !== 'allow') failures.push(`  ${JSON.stringify(c)} → ${r.reason}`);
    }
    assert.equal(failures.length, 0, show(failures));
  });

  test('every line of deny.txt is denied', () => {
    const cmds = loadCorpus('deny');
    assert.ok(cmds.length >= 500, `deny corpus has ${cmds.length} lines`);
    const failures: string[] = [];
    for (const c of cmds) {
      const r = policy.check(c);
      if (r.decision !== 'deny') failures.push(`  ${JSON.stringify(c)} → allowed (${r.reason})`);
    }
    assert.equal(failures.length, 0, show(failures));
  });

  test('every denial has a short reason', () => {
    for (const c of loadCorpus('deny')) {
      const r = policy.check(c);
      assert.ok(
        r.reason.length > 5 && r.reason.length < 200,
        `${JSON.stringify(c)} → ${JSON.stringify(r.reason)}`,
      );
    }
  });
});

/**
 * The allowed corpus, run by real bash with every program stubbed out: bash must run nothing the
 * policy did not see, and no file may appear.
 */
describe('bash agrees with the policy', () => {
  before(() => {
    if (!bashAvailable())
      throw new Error('bash is not available: install it (apt-get install -y bash), then rerun.');
  });
  test('the allow corpus runs only what the policy checked', () => {
    const cmds = loadCorpus('allow');
    const asUser = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') ? 'nobody' : undefined;
    const { runs, created } = runInBash(cmds, { asUser });
    assert.deepEqual(created, [], 'files appeared while running the allow corpus');
    const failures: string[] = [];
    for (const r of runs) {
      const missed = unseen(r.ran, policy.check(r.command).commands);
      if (missed.length) failures.push(`  ${JSON.stringify(r.command)}: bash ran ${JSON.stringify(missed)}`);
    }
    assert.equal(failures.length, 0, show(failures));
  });

  test('generated awkward commands that the policy allows run only what it checked', () => {
    const seed = Number(process.env.POLICY_FUZZ_SEED ?? 1);
    const next = generator(seed);
    const allowed = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const c = next();
      if (policy.check(c).decision === 'allow') allowed.add(c);
    }
    const cmds = [...allowed];
    assert.ok(cmds.length > 200, `only ${cmds.length} generated commands were allowed`);
    const asUser = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') ? 'nobody' : undefined;
    const { runs, created } = runInBash(cmds, { asUser });
    assert.deepEqual(created, [], `files appeared (seed ${seed})`);
    const failures: string[] = [];
    for (const r of runs) {
      const missed = unseen(r.ran, policy.check(r.command).commands);
      if (missed.length) failures.push(`  ${JSON.stringify(r.command)}: bash ran ${JSON.stringify(missed)}`);
    }
    assert.equal(failures.length, 0, `seed ${seed}: ${show(failures)}`);
  });
});
