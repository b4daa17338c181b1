/**
 * Every `fluid …` command the README shows is a real command with options it accepts: each one is
 * handed to the CLI's own entry point (src/cli/main.ts `main`) with `--help`, which resolves the
 * command, parses its options strictly (an unknown option or a missing value is exit 2) and prints its
 * usage without touching any state. Commands that parse their own arguments (serve, mcp, policy
 * check) print their usage for --help before parsing: their options are checked against that usage.
 * The lines come from README.md itself, so a new or changed line is checked without editing this test.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commands, main } from '../../../src/cli/main.ts';

const README = new URL('../../../README.md', import.meta.url);

/**
 * Shell words of one line: quotes, backslashes, comments; `&&`, `|`, `;`, `<` and `>` as their own
 * words; a placeholder such as `<approval id>` as one word.
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur: string | null = null;
  let i = 0;
  const push = () => {
    if (cur !== null) words.push(cur);
    cur = null;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < line.length) j++;
        s += line[j];
        j++;
      }
      if (j >= line.length) throw new Error(`unterminated " in: ${line}`);
      cur = (cur ?? '') + s;
      i = j + 1;
    } else if (c === '\\' && i + 1 < line.length) {
      cur = (cur ?? '') + line[i + 1];
      i += 2;
    } else if (/\s/.test(c)) {
      push();
      i++;
    } else if (cur === null && /^<[^<>\s][^<>]*>/.test(line.slice(i))) {
      // a placeholder such as <id> or <approval id>: one word, not a redirection
      const end = line.indexOf('>', i);
      words.push(line.slice(i, end + 1));
      i = end + 1;
    } else if (c === '#' && cur === null) {
      break; // a comment
    } else if (line.startsWith('&&', i) || line.startsWith('||', i)) {
      push();
      words.push(line.slice(i, i + 2));
      i += 2;
    } else if (c === '|' || c === ';' || c === '<' || c === '>') {
      push();
      words.push(c);
      i++;
    } else {
      cur = (cur ?? '') + c;
      i++;
    }
  }
  push();
  return words;
}

/** The argument lists of the `fluid` invocations on one shell line (`npx fluid …` or `fluid …`). */
function fluidInvocations(line: string): string[][] {
  const out: string[][] = [];
  let seg: string[] = [];
  const flush = () => {
    const w = seg[0] === 'npx' ? seg.slice(1) : seg;
    if (w[0] === 'fluid') out.push(w.slice(1));
    seg = [];
  };
  const words = shellWords(line);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '&&' || w === '||' || w === '|' || w === ';') flush();
    else if (w === '<' || w === '>')
      i++; // a redirection and its file
    else seg.push(w);
  }
  flush();
  return out;
}

/** The shell lines of README.md's ```sh blocks that run fluid. */
function readmeFluidLines(): Array<{ line: string; no: number }> {
  const lines = readFileSync(README, 'utf8').split('\n');
  const out: Array<{ line: string; no: number }> = [];
  let inSh = false;
  lines.forEach((l, i) => {
    if (/^```/.test(l)) {
      inSh = !inSh && /^```(sh|bash|shell|console)\s*$/.test(l);
      return;
    }
    if (inSh && /^\s*(npx\s+)?fluid\s/.test(l)) out.push({ line: l.trim(), no: i + 1 });
  });
  return out;
}

/** `fluid <args> --help` through the CLI's entry point, its output captured. */
async function helpOf(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  const grab = (chunk: unknown) => {
    out += String(chunk);
    return true;
  };
  process.stdout.write = grab as typeof process.stdout.write;
  process.stderr.write = grab as typeof process.stderr.write;
  try {
    // --help first: after a `--` it would be a positional of the command
    return { code: await main(['--help', ...args]), out };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

/** The command a list of arguments names, as main() resolves it (the longest known prefix of words). */
function commandName(args: string[]): string | null {
  const words = args.filter((a) => !a.startsWith('-')).slice(0, 2);
  if (words.length === 2 && commands[`${words[0]} ${words[1]}`]) return `${words[0]} ${words[1]}`;
  return words[0] && commands[words[0]] ? words[0] : null;
}

/** Checks one invocation; returns what is wrong with it, or null. */
async function problemWith(args: string[]): Promise<string | null> {
  const name = commandName(args);
  if (!name) return `no such command: fluid ${args.slice(0, 2).join(' ')}`;
  const r = await helpOf(args);
  if (r.code !== 0) return `fluid ${args.join(' ')} --help exited ${r.code}: ${r.out.trim()}`;
  if (!r.out.startsWith(`fluid ${name}`)) return `--help printed no usage of "fluid ${name}": ${r.out}`;
  if (commands[name]!.raw) {
    // raw commands parse their own options: each option used must be in the usage they print
    const dashdash = args.indexOf('--');
    for (const a of dashdash < 0 ? args : args.slice(0, dashdash)) {
      const opt = /^(--[a-z][a-z0-9-]*)/.exec(a)?.[1];
      if (opt && opt !== '--json' && opt !== '--data-dir' && !commands[name]!.usage.includes(opt))
        return `fluid ${name} has no option ${opt} (usage: ${commands[name]!.usage})`;
    }
  }
  return null;
}

let lines: Array<{ line: string; no: number }>;
before(() => {
  process.env.FLUID_DATA_DIR = mkdtempSync(join(tmpdir(), 'fluid-readme-'));
  lines = readmeFluidLines();
});

describe("the README's fluid commands", () => {
  test('the usage block is found and holds the fluid run demo', () => {
    const all = lines.flatMap((l) => fluidInvocations(l.line));
    assert.ok(all.length >= 20, `only ${all.length} fluid commands found in README.md`);
    assert.ok(
      all.some((a) => a[0] === 'run' && a.includes('--source')),
      'the README shows `fluid run "…" --source …`',
    );
  });

  test('every one is a real command with options it accepts', async () => {
    const problems: string[] = [];
    for (const { line, no } of lines)
      for (const args of fluidInvocations(line)) {
        const p = await problemWith(args);
        if (p) problems.push(`README.md:${no}: ${line}\n    ${p}`);
      }
    assert.deepEqual(problems, []);
  });

  test('the check can fail: an unknown command, an unknown option, a missing value, a raw command', async () => {
    assert.match((await problemWith(['sandbox', 'fly', 'x']))!, /no such command/);
    assert.match((await problemWith(['flyaway']))!, /no such command/);
    assert.match((await problemWith(['sandbox', 'create', '--sauce', 'web-01']))!, /exited 2.*--sauce/s);
    assert.match((await problemWith(['sandbox', 'create', '--source']))!, /exited 2/);
    assert.match((await problemWith(['serve', '--colour']))!, /no option --colour/);
    assert.equal(await problemWith(['sandbox', 'create', '--source', 'fluid-lab-web', '--allow', 'x']), null);
  });

  test('shell words: quotes, comments, && and redirections', () => {
    assert.deepEqual(
      fluidInvocations(
        `npx fluid approval list --status pending && npx fluid approval approve <id> --note "mirror is fine"   # x`,
      ),
      [
        ['approval', 'list', '--status', 'pending'],
        ['approval', 'approve', '<id>', '--note', 'mirror is fine'],
      ],
    );
    assert.deepEqual(
      fluidInvocations(`npx fluid change show <change> --diffs && fluid approval approve <approval id>`),
      [
        ['change', 'show', '<change>', '--diffs'],
        ['approval', 'approve', '<approval id>'],
      ],
    );
    assert.deepEqual(fluidInvocations(`npx fluid provider add c --key-stdin < key.txt`), [
      ['provider', 'add', 'c', '--key-stdin'],
    ]);
    assert.deepEqual(
      fluidInvocations(`npx fluid sandbox exec s -- 'apt-get update && apt-get install -y nginx'`),
      [['sandbox', 'exec', 's', '--', 'apt-get update && apt-get install -y nginx']],
    );
  });
});
