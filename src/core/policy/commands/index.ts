/** The read-only command table: every program the policy knows, and how it is checked. */
import { refuse, type Rule } from '../rule.ts';
import { daemonRules } from './daemons.ts';
import { fileRules } from './files.ts';
import { httpRules } from './http.ts';
import { shellRules } from './shell.ts';
import { systemRules } from './system.ts';
import { toolRules } from './tools.ts';

const RULES = new Map<string, Rule>(
  Object.entries({
    ...fileRules,
    ...systemRules,
    ...toolRules,
    ...httpRules,
    ...daemonRules,
    ...shellRules,
  }),
);

const PATTERNS: Array<[RegExp, string]> = [
  [/^python\d+(\.\d+)*$/, 'python3'],
  [/^pypy\d*(\.\d+)*$/, 'python3'],
  [/^pip\d+(\.\d+)*$/, 'pip'],
  [/^perl\d+(\.\d+)*$/, 'perl'],
  [/^ruby\d+(\.\d+)*$/, 'ruby'],
  [/^php\d+(\.\d+)*$/, 'php'],
  [/^php-fpm\d*(\.\d+)*$/, 'php-fpm'],
  [/^lua\d+(\.\d+)*$/, 'lua'],
  [/^node\d+$/, 'node'],
  [/^gcc-\d+$/, 'gcc'],
];

const mkfs = refuse('mkfs formats a device');

/** The rule for a command name (a basename), or null when the name is unknown. */
export function lookupRule(name: string): Rule | null {
  const direct = RULES.get(name);
  if (direct) return direct;
  for (const [re, target] of PATTERNS) if (re.test(name)) return RULES.get(target) ?? null;
  if (/^mkfs\./.test(name) || /^mke2fs/.test(name)) return mkfs;
  return null;
}

export const knownCommands = (): string[] => [...RULES.keys()].sort();
