/**
 * awk: allowed when the program provably only reads its input and prints to stdout.
 *
 * A small lexer finds every token; denied are `system`, `getline` (reads commands and files),
 * any single `|` (pipes to and from commands), output redirection inside print/printf, gawk's
 * `@` directives, and the options that load, include, dump or profile to files. Where the
 * lexer cannot tell a regex from a division the same way every awk would, it denies.
 */
import { parseOptions, type OptionSpec } from './options.ts';
import { deny, show, type Word } from './types.ts';

const AWK_OPTIONS: OptionSpec = {
  short: 'bcCNnOPrsStVhF:v:e:W:L::k',
  long: [
    'characters-as-bytes',
    'traditional',
    'copyright',
    'use-lc-numeric',
    'non-decimal-data',
    'optimize',
    'posix',
    're-interval',
    'no-optimize',
    'sandbox',
    'lint-old',
    'lint=?',
    'csv',
    'version',
    'help',
    'usage',
    'field-separator=',
    'assign=',
    'source=',
  ],
  deny: {
    '-f': 'awk -f runs a program file the policy cannot check',
    '--file': 'awk --file runs a program file the policy cannot check',
    '-E': 'awk -E runs a program file the policy cannot check',
    '--exec': 'awk --exec runs a program file the policy cannot check',
    '-i': 'awk -i includes a source file the policy cannot check',
    '--include': 'awk --include includes a source file the policy cannot check',
    '-l': 'awk -l loads an extension library',
    '--load': 'awk --load loads an extension library',
    '-o': 'awk -o writes a pretty-printed program to a file',
    '--pretty-print': 'awk --pretty-print writes to a file',
    '-p': 'awk -p writes a profile file',
    '--profile': 'awk --profile writes a profile file',
    '-d': 'awk -d writes a variable dump file',
    '--dump-variables': 'awk --dump-variables writes a file',
    '-D': 'awk -D starts the interactive debugger',
    '--debug': 'awk --debug starts the interactive debugger',
    '-M': 'awk -M is not needed for reading',
    '-g': 'awk -g is not needed for reading',
    '--gen-pot': 'awk --gen-pot is not needed for reading',
    '-I': 'awk -I traces execution',
    '--trace': 'awk --trace traces execution',
  },
};

const W_OK = new Set([
  'version',
  'posix',
  'traditional',
  'compat',
  're-interval',
  'sandbox',
  'help',
  'usage',
]);

export function checkAwk(args: Word[], who: string): void {
  const p = parseOptions(args, AWK_OPTIONS, who);
  for (const o of p.options) {
    if (o.name === '-W') {
      const v = o.value?.value ?? '';
      if (!W_OK.has(v)) deny(`${who} -W ${v || show(o.value!)} is not a read-only option`);
    }
  }
  const sources = p.options.filter((o) => o.name === '-e' || o.name === '--source').map((o) => o.value!);
  const info = p.options.some((o) =>
    ['-V', '--version', '-h', '--help', '--usage', '-C', '--copyright'].includes(o.name),
  );
  if (!sources.length) {
    const prog = p.operands[0];
    if (!prog) {
      if (info) return;
      deny(`${who} without a program`);
    }
    sources.push(prog);
  }
  for (const s of sources) {
    if (s.value === null) deny(`${who} program ${show(s)} is computed at run time`);
  }
  // Several -e sources form one program: check them together.
  checkAwkProgram(sources.map((s) => s.value!).join('\n'), who);
}

type Kind = 'name' | 'keyword' | 'builtin' | 'number' | 'string' | 'regex' | 'op' | 'nl';

const KEYWORDS = new Set([
  'BEGIN',
  'END',
  'BEGINFILE',
  'ENDFILE',
  'function',
  'func',
  'if',
  'else',
  'while',
  'for',
  'do',
  'break',
  'continue',
  'next',
  'nextfile',
  'exit',
  'return',
  'delete',
  'in',
  'print',
  'printf',
  'getline',
  'switch',
  'case',
  'default',
]);

const BUILTINS = new Set([
  'length',
  'substr',
  'index',
  'split',
  'sub',
  'gsub',
  'gensub',
  'match',
  'sprintf',
  'sin',
  'cos',
  'atan2',
  'exp',
  'log',
  'sqrt',
  'int',
  'rand',
  'srand',
  'tolower',
  'toupper',
  'close',
  'fflush',
  'system',
  'systime',
  'strftime',
  'mktime',
  'asort',
  'asorti',
  'patsplit',
  'isarray',
  'typeof',
  'and',
  'or',
  'xor',
  'lshift',
  'rshift',
  'compl',
  'strtonum',
  'mkbool',
]);

const OPS = [
  '**=',
  '&&',
  '||',
  '==',
  '!=',
  '<=',
  '>=',
  '++',
  '--',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '^=',
  '**',
  '>>',
  '!~',
  '|&',
];

export function checkAwkProgram(prog: string, who = 'awk'): void {
  const s = prog;
  let i = 0;
  let prev: { kind: Kind; text: string } | null = null;
  const stack: string[] = []; // open parentheses and brackets
  // Inside print/printf: the nesting depth at which the statement started, or -1.
  let printDepth = -1;

  const regexAllowed = (): boolean | null => {
    if (!prev) return true;
    if (prev.kind === 'number' || prev.kind === 'string' || prev.kind === 'regex' || prev.kind === 'name')
      return false;
    if (prev.kind === 'keyword' || prev.kind === 'builtin') return null; // depends on the awk: deny
    if (prev.kind === 'op') {
      if (prev.text === ')' || prev.text === ']' || prev.text === '$')
        return prev.text === '$' ? null : false;
      if (prev.text === '++' || prev.text === '--') return null;
    }
    return true;
  };
  const emit = (kind: Kind, text: string) => {
    prev = { kind, text };
  };

  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && s[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '\\' && s[i + 1] === '\r' && s[i + 2] === '\n') {
      i += 3;
      continue;
    }
    if (c === '\n') {
      if (printDepth >= 0 && stack.length <= printDepth) {
        const p = prev as { kind: Kind; text: string } | null;
        if (!(p && p.kind === 'op' && [',', '&&', '||', '{'].includes(p.text))) printDepth = -1;
      }
      emit('nl', '\n');
      i++;
      continue;
    }
    if (c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
      continue;
    }
    if (c === '"') {
      i++;
      for (;;) {
        const d = s[i];
        if (d === undefined) deny(`${who}: unterminated string`);
        if (d === '\\') {
          i += 2;
          continue;
        }
        i++;
        if (d === '"') break;
        if (d === '\n') deny(`${who}: newline inside a string`);
      }
      emit('string', '"');
      continue;
    }
    if (c === '/' && s[i + 1] !== '=') {
      const r = regexAllowed();
      if (r === null) deny(`${who}: cannot tell a regex from a division here; add parentheses`);
      if (r) {
        i++;
        for (;;) {
          const d = s[i];
          if (d === undefined || d === '\n') deny(`${who}: unterminated regex`);
          if (d === '\\') {
            i += 2;
            continue;
          }
          if (d === '[') {
            // A bracket expression: awks differ on whether `/` may end the regex inside it.
            const close = s.indexOf(']', i + 2);
            if (close < 0) deny(`${who}: unterminated bracket expression`);
            if (s.slice(i, close + 1).includes('/'))
              deny(`${who}: '/' inside a bracket expression is ambiguous`);
          }
          i++;
          if (d === '/') break;
        }
        emit('regex', '/');
        continue;
      }
    }
    if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < s.length && /[A-Za-z0-9_]/.test(s[i]!)) i++;
      const word = s.slice(start, i);
      if (word === 'system') deny(`${who} system() runs shell commands`);
      if (word === 'getline') deny(`${who} getline can read from commands and files`);
      if (word === 'print' || word === 'printf') {
        if (printDepth < 0) printDepth = stack.length;
      }
      emit(KEYWORDS.has(word) ? 'keyword' : BUILTINS.has(word) ? 'builtin' : 'name', word);
      continue;
    }
    if (/[0-9.]/.test(c)) {
      const m = /^(0[xX][0-9a-fA-F]+|\d*\.?\d*(?:[eE][+-]?\d+)?)/.exec(s.slice(i))!;
      const len = m[0].length || 1;
      i += len;
      emit('number', m[0] || c);
      continue;
    }
    if (c === '@') deny(`${who}: gawk @ directives and indirect calls are not allowed`);
    const op = OPS.find((o) => s.startsWith(o, i)) ?? c;
    if (!'{}()[];,+-*/%^!><|?:~=$&'.includes(op[0]!))
      deny(`${who}: unexpected character ${JSON.stringify(c)}`);
    if (op === '|' || op === '|&') deny(`${who} pipes run shell commands`);
    if (op === '&') deny(`${who}: unexpected '&'`);
    // In print/printf, `>` is a redirection unless a parenthesis opened since the statement began.
    if ((op === '>' || op === '>>') && printDepth >= 0 && !stack.slice(printDepth).includes('('))
      deny(`${who} print redirection writes to a file`);
    if (op === '(' || op === '[') stack.push(op);
    if (op === ')' || op === ']') {
      if (stack.pop() !== (op === ')' ? '(' : '[')) deny(`${who}: unbalanced parentheses`);
      if (printDepth > stack.length) printDepth = -1;
    }
    if (op === ';' || op === '{' || op === '}') printDepth = -1;
    i += op.length;
    emit('op', op);
  }
  if (stack.length) deny(`${who}: unbalanced parentheses`);
}
