/**
 * Property: any composition (pipes, lists, subshells, groups, if/for/while, substitutions) of
 * allowed commands is allowed, and putting one denied command anywhere in it denies the whole.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createShellPolicy, type ShellPolicy } from '../../../src/core/policy/shell.ts';
import { loadCorpus } from './corpus.ts';

let policy: ShellPolicy;
let allowPool: string[];
let denyPool: string[];

/** Lines that compose as single statements: no newlines, heredocs, comments or trailing `;`. */
const composable = (c: string) => !/[\n\r#]|<<(?!<)|;\s*$|^\s*!/.test(c);

before(async () => {
  policy = await createShellPolicy();
  // Lines whose verdict depends on their place (a variable known from a top-level assignment,
  // openssl s_client's stdin) are left out: composition moves them.
  allowPool = loadCorpus('allow').filter(
    (c) =>
      composable(c) &&
      !/s_client/.test(c) &&
      policy.check(`( ${c} )`).decision === 'allow' &&
      policy.check(`ls && ${c}`).decision === 'allow',
  );
  // Denials that hold wherever the command goes: not syntax errors (which a composition could
  // repair) and not those that depend on stdin (openssl s_client after `echo |`).
  denyPool = loadCorpus('deny').filter((c) => {
    if (!composable(c) || /s_client/.test(c)) return false;
    const reason = policy.check(c).reason;
    const control = [...c].some((ch) => ch.charCodeAt(0) < 0x20 && ch !== '\t');
    return !/^(syntax error|incomplete|ambiguous word boundary|empty)/.test(reason) && !control;
  });
});

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function composer(rand: () => number) {
  const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)]!;
  const compose = (items: string[]): string => {
    if (items.length === 1) {
      const x = items[0]!;
      switch (Math.floor(rand() * 8)) {
        case 0:
          return `( ${x} )`;
        case 1:
          return `{ ${x}; }`;
        case 2:
          return `if true; then ${x}; fi`;
        case 3:
          return `for i in 1 2; do ${x}; done`;
        case 4:
          return `echo "$( ${x} )"`;
        case 5:
          return `while false; do ${x}; done`;
        default:
          return x;
      }
    }
    const cut = 1 + Math.floor(rand() * (items.length - 1));
    const op = pick([' ; ', ' && ', ' || ', ' | ', '\n', ' |& ', ';\n']);
    return `${compose(items.slice(0, cut))}${op}${compose(items.slice(cut))}`;
  };
  return { pick, compose };
}

describe('compositions', () => {
  test('of allowed commands are allowed', () => {
    const seed = Number(process.env.POLICY_FUZZ_SEED ?? 1);
    const rand = rng(seed);
    const { pick, compose } = composer(rand);
    const failures: string[] = [];
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 4);
      const items = [...new Set(Array.from({ length: n }, () => pick(allowPool)))];
      const cmd = compose(items);
      const r = policy.check(cmd);
      if (r.decision !== 'allow') failures.push(`  ${JSON.stringify(cmd)} → ${r.reason}`);
    }
    assert.equal(failures.length, 0, `seed ${seed}:\n${failures.slice(0, 20).join('\n')}`);
  });

  test('with one denied command anywhere are denied', () => {
    const seed = Number(process.env.POLICY_FUZZ_SEED ?? 1);
    const rand = rng(seed + 1);
    const { pick, compose } = composer(rand);
    const failures: string[] = [];
    for (let trial = 0; trial < 400; trial++) {
      const n = Math.floor(rand() * 4);
      const items = [...new Set(Array.from({ length: n }, () => pick(allowPool)))];
      items.splice(Math.floor(rand() * (items.length + 1)), 0, pick(denyPool));
      const cmd = compose(items);
      const r = policy.check(cmd);
      if (r.decision !== 'deny') failures.push(`  ${JSON.stringify(cmd)} → allowed (${r.reason})`);
    }
    assert.equal(failures.length, 0, `seed ${seed}:\n${failures.slice(0, 20).join('\n')}`);
  });

  test('every denied command is denied inside every construct', () => {
    const wrappers = [
      (x: string) => `ls; ${x}`,
      (x: string) => `${x}; ls`,
      (x: string) => `ls && ${x}`,
      (x: string) => `ls || ${x}`,
      (x: string) => `cat /etc/hosts | ${x}`,
      (x: string) => `( ${x} )`,
      (x: string) => `{ ${x}; }`,
      (x: string) => `if ls; then ${x}; fi`,
      (x: string) => `for i in 1; do ${x}; done`,
      (x: string) => `while false; do ${x}; done`,
      (x: string) => `case a in a) ${x};; esac`,
      (x: string) => `echo "$(${x})"`,
      (x: string) => `echo \`${x}\``,
      (x: string) => `cat <(${x})`,
      (x: string) => `timeout 5 ${x}`,
    ];
    const failures: string[] = [];
    for (const d of denyPool) {
      for (const wrap of wrappers) {
        const cmd = wrap(d);
        const r = policy.check(cmd);
        if (r.decision !== 'deny') failures.push(`  ${JSON.stringify(cmd)} → allowed (${r.reason})`);
      }
    }
    assert.equal(failures.length, 0, failures.slice(0, 30).join('\n'));
  });
});
