/**
 * find: every word of the expression is classified; only tests, options and the printing
 * actions are allowed. -delete, -exec, -execdir, -ok, -okdir, -fprint, -fprint0, -fprintf
 * and -fls are denied, and so is anything unknown.
 */
import type { RuleContext } from './rule.ts';
import { deny, mayStartWith, show, type Word } from './types.ts';

/** Tests and options with the number of arguments they take. */
const ARITY: Record<string, number> = {
  // tests
  '-name': 1,
  '-iname': 1,
  '-path': 1,
  '-ipath': 1,
  '-wholename': 1,
  '-iwholename': 1,
  '-regex': 1,
  '-iregex': 1,
  '-lname': 1,
  '-ilname': 1,
  '-type': 1,
  '-xtype': 1,
  '-size': 1,
  '-mtime': 1,
  '-mmin': 1,
  '-atime': 1,
  '-amin': 1,
  '-ctime': 1,
  '-cmin': 1,
  '-used': 1,
  '-newer': 1,
  '-anewer': 1,
  '-cnewer': 1,
  '-user': 1,
  '-group': 1,
  '-uid': 1,
  '-gid': 1,
  '-perm': 1,
  '-links': 1,
  '-inum': 1,
  '-samefile': 1,
  '-fstype': 1,
  '-context': 1,
  '-nouser': 0,
  '-nogroup': 0,
  '-empty': 0,
  '-readable': 0,
  '-writable': 0,
  '-executable': 0,
  '-true': 0,
  '-false': 0,
  // options
  '-maxdepth': 1,
  '-mindepth': 1,
  '-regextype': 1,
  '-files0-from': 1,
  '-depth': 0,
  '-d': 0,
  '-xdev': 0,
  '-mount': 0,
  '-follow': 0,
  '-noleaf': 0,
  '-ignore_readdir_race': 0,
  '-noignore_readdir_race': 0,
  '-daystart': 0,
  '-warn': 0,
  '-nowarn': 0,
  '-xautofs': 0,
  '-help': 0,
  '--help': 0,
  '-version': 0,
  '--version': 0,
  // actions that only print to stdout
  '-print': 0,
  '-print0': 0,
  '-printf': 1,
  '-ls': 0,
  '-prune': 0,
  '-quit': 0,
  // operators
  '-not': 0,
  '-a': 0,
  '-and': 0,
  '-o': 0,
  '-or': 0,
};

const DENIED: Record<string, string> = {
  '-delete': 'find -delete deletes files',
  '-ok': 'find -ok prompts on the terminal before running commands',
  '-okdir': 'find -okdir prompts on the terminal before running commands',
  '-fprint': 'find -fprint writes to a file',
  '-fprint0': 'find -fprint0 writes to a file',
  '-fprintf': 'find -fprintf writes to a file',
  '-fls': 'find -fls writes to a file',
};

const OPERATORS = new Set(['(', ')', '!', ',']);

const commonPrefix = (a: string, b: string) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
};

/**
 * `-exec cmd args... ;` and `-exec cmd args... {} +` run cmd directly (no shell): the command is
 * checked with the whole policy, each `{}` standing for a path found (which starts like the
 * starting points, so never with a dash).
 */
function execCommand(args: Word[], at: number, dir: boolean, starts: Word[], ctx: RuleContext): number {
  let end = at + 1;
  let plus = false;
  for (; end < args.length; end++) {
    const v = args[end]!.value;
    if (v === ';') break;
    if (v === '+' && args[end - 1]?.value === '{}') {
      plus = true;
      break;
    }
    if (v === null && (mayStartWith(args[end]!, ';') || mayStartWith(args[end]!, '+')))
      deny(`find: ${show(args[end]!)} is computed at run time and could end -exec`);
  }
  if (end >= args.length) deny('find -exec without a terminating ; or +');
  let pathPrefix = './';
  if (!dir) {
    const fixed = starts.map((w) => w.value ?? w.prefix);
    pathPrefix = starts.length === 0 ? '.' : fixed.reduce(commonPrefix);
  }
  const argv = args.slice(at + 1, end).map((w): Word => {
    if (w.value === null || !w.value.includes('{}')) return w;
    const before = w.value.slice(0, w.value.indexOf('{}'));
    return {
      ...w,
      value: null,
      prefix: before || pathPrefix,
      multi: plus && w.value === '{}',
      alts: undefined,
    };
  });
  if (!argv.length) deny('find -exec without a command');
  ctx.run(argv);
  return end;
}

export function checkFind(args: Word[], ctx: RuleContext): void {
  let i = 0;
  // Leading options: -H -L -P -D debugopts -Olevel
  for (; i < args.length; i++) {
    const w = args[i]!;
    const v = w.value;
    if (v === null) {
      if (mayStartWith(w) || w.multi)
        deny(`find: ${show(w)} is computed at run time and could become an expression`);
      break;
    }
    if (v === '-H' || v === '-L' || v === '-P' || /^-O\d*$/.test(v)) continue;
    if (v === '-D') {
      i++;
      continue;
    }
    break;
  }
  // Starting points: until the first word that starts an expression.
  const starts: Word[] = [];
  for (; i < args.length; i++) {
    const w = args[i]!;
    const v = w.value;
    if (v === null) {
      if (mayStartWith(w) || mayStartWith(w, '(') || mayStartWith(w, '!') || (w.multi && w.prefix === ''))
        deny(`find: starting point ${show(w)} is computed at run time and could become an expression`);
      starts.push(w);
      continue;
    }
    if (v.startsWith('-') || OPERATORS.has(v)) break;
    starts.push(w);
  }
  // The expression.
  for (; i < args.length; i++) {
    const w = args[i]!;
    const v = w.value;
    if (v === null) {
      if (mayStartWith(w) || (w.multi && w.prefix === ''))
        deny(`find: ${show(w)} is computed at run time and could become an action`);
      continue; // a stray operand: find itself rejects it
    }
    if (OPERATORS.has(v)) continue;
    if (v === '-exec' || v === '-execdir') {
      i = execCommand(args, i, v === '-execdir', starts, ctx);
      continue;
    }
    const reason = DENIED[v];
    if (reason) deny(reason);
    let arity = ARITY[v];
    if (arity === undefined && /^-newer[aBcmt][aBcmt]$/.test(v)) arity = 1;
    if (arity === undefined) {
      if (v.startsWith('-')) deny(`find: unknown or unsafe predicate ${v}`);
      continue;
    }
    for (let k = 0; k < arity; k++) {
      const a = args[++i];
      if (!a) deny(`find: ${v} is missing its argument`);
      if (a.multi && a.prefix === '')
        deny(`find: the argument of ${v} (${show(a)}) may expand to several words`);
    }
  }
}
