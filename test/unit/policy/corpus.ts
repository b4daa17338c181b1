/** Loading the policy corpus files and comparing the policy's view with what bash ran. */
import { readFileSync } from 'node:fs';
import type { CheckedCommand } from '../../../src/core/policy/shell.ts';

const CORPUS_DIR = new URL('./corpus/', import.meta.url);

/** A line that is a whole JSON string is decoded; other lines are taken as they are. */
export function decodeLine(line: string): string {
  if (line.length > 1 && line.startsWith('"') && line.endsWith('"')) {
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === 'string') return v;
    } catch {
      // not JSON: a command that starts and ends with a double quote
    }
  }
  return line;
}

export function loadCorpus(name: 'allow' | 'deny'): string[] {
  return readFileSync(new URL(`${name}.txt`, CORPUS_DIR), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('# ') && l !== '#')
    .map(decodeLine);
}

const base = (s: string) => s.slice(s.lastIndexOf('/') + 1);

/**
 * Executed argvs that the policy did not see: a program bash ran that is not among the checked
 * commands (by name, and word for word when the policy knew every word).
 */
export function unseen(ran: string[][], checked: CheckedCommand[]): string[][] {
  return ran.filter((argv) => {
    const name = base(argv[0] ?? '');
    const candidates = checked.filter((c) => base(c.argv[0] ?? '') === name);
    if (!candidates.length) return true;
    return !candidates.some(
      (c) =>
        c.dynamic.some(Boolean) ||
        (c.argv.length === argv.length &&
          c.argv.every((w, i) => (i === 0 ? base(w) === name : w === argv[i]))),
    );
  });
}
