/**
 * No unit test depends on how fast this machine is: no measured durations compared with a number,
 * no time measurement at all, no real sleep awaited before checking that something happened (or did
 * not). Unit tests use a fake clock (node:test `mock.timers`, the core's Clock) or wait for the event
 * itself; speed claims live in bench/, where competing approaches run side by side.
 * A timeout that only turns a hang into a readable failure (a deadline that rejects) is fine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const SELF = 'test/unit/suite/no-wall-clock.test.ts';

const TIME_NAME = String.raw`(?:elapsed\w*|took\w*|waited\w*|duration\w*|ms|millis\w*|seconds|secs|\w*[pP]erSec(?:ond)?|latency\w*|rtt)`;
const CMP = String.raw`\s*[<>]=?\s*`;
const NUM = String.raw`[\d_.]+(?:\s*\*\s*[\d_.]+)*`;

/** Each rule: why it is a wall-clock dependence, and a pattern on one (comment-free) line. */
const RULES: Array<{ why: string; re: RegExp }> = [
  {
    why: 'measures time (performance.now / hrtime)',
    re: /\bperformance\.now\s*\(|\bprocess\.hrtime\b|\bperformance\.mark\s*\(/,
  },
  {
    why: 'measures an elapsed time (Date.now() minus a start)',
    // a start kept in a variable; `Date.now() - 60_000` or `- ONE_HOUR` is a point in time, not a measurement
    re: /\bDate\.now\(\)\s*-\s*[a-z_$][\w.$]*(?!\w*\()|new Date\(\)\.getTime\(\)\s*-\s*[a-z_$]/,
  },
  {
    why: 'compares a duration or a rate with a number',
    re: new RegExp(
      String.raw`\bassert\w*(?:\.\w+)*\s*\([^;]*\b${TIME_NAME}${CMP}${NUM}|\bassert\w*(?:\.\w+)*\s*\([^;]*\b${NUM}${CMP}[\w.]*\b${TIME_NAME}\b`,
    ),
  },
  {
    why: 'awaits a real sleep (then checks what happened, or that nothing did)',
    re: /\bawait\s+new\s+Promise\s*(?:<[^>]*>)?\s*\(\s*\(?\s*\w*\s*\)?\s*=>\s*\{?\s*setTimeout\s*\(|\bawait\s+(?:sleep|delay|wait|pause)\s*\(\s*[\d_]|\bawait\s+(?:setTimeout|setTimeoutP|scheduler\.wait)\s*\(\s*[\d_]/,
  },
];

interface Finding {
  where: string;
  why: string;
  line: string;
}

/** Lines without comments (// … and block comments); string contents are kept. */
function codeLines(source: string): string[] {
  const out: string[] = [];
  let inBlock = false;
  for (const raw of source.split('\n')) {
    let line = raw;
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end < 0) {
        out.push('');
        continue;
      }
      line = line.slice(end + 2);
      inBlock = false;
    }
    line = line.replace(/\/\*.*?\*\//g, '');
    const open = line.indexOf('/*');
    if (open >= 0 && !/['"`][^'"`]*\/\*/.test(line)) {
      line = line.slice(0, open);
      inBlock = true;
    }
    out.push(line.replace(/(^|[^:'"`\\])\/\/.*$/, '$1'));
  }
  return out;
}

export function findWallClock(file: string, source: string): Finding[] {
  const findings: Finding[] = [];
  codeLines(source).forEach((line, i) => {
    for (const rule of RULES)
      if (rule.re.test(line)) findings.push({ where: `${file}:${i + 1}`, why: rule.why, line: line.trim() });
  });
  return findings;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|mts|js|mjs|tsx)$/.test(f) ? [p] : [];
  });
}

test('the wall-clock check catches the forms it is meant to', () => {
  const bad = [
    'assert.ok(took < 200, `cancel took ${took} ms`);',
    'assert.ok(perSecond > 500, `only ${perSecond}`);',
    'assert.ok(Date.now() - t0 < 1500);',
    'const elapsed = Date.now() - t0;',
    'const took = Date.now() - started.at;',
    'assert.ok(elapsed >= 950, `waited ${elapsed} ms`);',
    'assert.ok(r.ms >= 500 && r.ms < 4000, `took ${r.ms} ms`);',
    'assert.ok(seconds < 2.5);',
    'assert.ok(5_000 > elapsedMs);',
    'assert.ok(checksPerSecond > 1000);',
    'const t0 = performance.now();',
    'const [s] = process.hrtime();',
    'await new Promise((r) => setTimeout(r, 200));',
    'await new Promise<void>((resolve) => setTimeout(resolve, 50));',
    'while (!done) await new Promise((r) => setTimeout(r, 10));',
    'await sleep(100);',
    'await setTimeout(20);',
  ];
  for (const line of bad) assert.notDeepEqual(findWallClock('x.ts', line), [], `not caught: ${line}`);
  const fine = [
    "t.mock.timers.enable({ apis: ['setTimeout'] });",
    't.mock.timers.tick(999);',
    'const timer = setTimeout(() => reject(new Error("never happened")), 30_000);',
    'const deadline = Date.now() + 5000;',
    'expires_at: new Date(Date.now() - 60_000).toISOString(),',
    'const past = Date.now() - ONE_DAY_MS;',
    'const left = deadline - Date.now();',
    "test('x', { timeout: 60_000 }, async () => {});",
    'assert.equal(r.retries[0].delayMs, 1000);',
    'assert.ok(e.delayMs >= 2 && e.delayMs <= 20); // an announced delay, not a measured one',
    '// await new Promise((r) => setTimeout(r, 200));',
    ' * took < 200 in a comment',
    'await new Promise((r) => setImmediate(r));',
    'assert.equal(items.length, 3);',
  ];
  for (const line of fine) assert.deepEqual(findWallClock('x.ts', line), [], `flagged: ${line}`);
});

test('no unit test depends on wall-clock time', () => {
  const findings = files(join(ROOT, 'test/unit'))
    .map((f) => relative(ROOT, f))
    .filter((f) => f !== SELF)
    .flatMap((f) => findWallClock(f, readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(
    findings.map((f) => `${f.where}: ${f.why}: ${f.line}`),
    [],
    'use a fake clock (node:test mock.timers, the core Clock) or wait for the event; speed claims go in bench/',
  );
});
