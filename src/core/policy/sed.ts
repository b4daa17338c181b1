/**
 * sed: options and a parser for GNU sed scripts that finds every command, so that `w`, `W`,
 * `e`, `s///w` and `s///e` cannot hide. Anything the parser does not understand is denied.
 */
import { has, parseOptions, type OptionSpec } from './options.ts';
import { deny, show, type Word } from './types.ts';

const SED_OPTIONS: OptionSpec = {
  short: 'nrEsuzbe:l:',
  long: [
    'quiet',
    'silent',
    'regexp-extended',
    'separate',
    'unbuffered',
    'null-data',
    'zero-terminated',
    'binary',
    'posix',
    'debug',
    'sandbox',
    'expression=',
    'line-length=',
    'help',
    'version',
  ],
  deny: {
    '-i': 'sed -i edits files in place',
    '--in-place': 'sed --in-place edits files in place',
    '-c': 'sed -c edits files in place',
    '--copy': 'sed --copy edits files in place',
    '--follow-symlinks': 'sed --follow-symlinks only matters when editing in place',
    '-f': 'sed -f reads its script from a file the policy cannot check',
    '--file': 'sed --file reads its script from a file the policy cannot check',
  },
};

export function checkSed(args: Word[]): void {
  const p = parseOptions(args, SED_OPTIONS, 'sed');
  const scripts = p.options.filter((o) => o.name === '-e' || o.name === '--expression').map((o) => o.value!);
  if (has(p, '--help', '--version')) return;
  if (!scripts.length) {
    const first = p.operands[0];
    if (!first) deny('sed without a script');
    scripts.push(first);
  }
  for (const s of scripts) {
    if (s.value === null) deny(`sed script ${show(s)} is computed at run time`);
  }
  checkSedScript(scripts.map((s) => s.value!).join('\n'));
}

const SIMPLE = new Set(['=', 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z', 'F']);

/** Parse a GNU sed script; deny on w/W/e, s///w, s///e and on anything not understood. */
export function checkSedScript(script: string): void {
  const s = script;
  let i = 0;
  const at = () => s[i];
  const skipBlank = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const endOfCommand = (what: string) => {
    skipBlank();
    const c = at();
    if (c === undefined || c === ';' || c === '\n' || c === '}' || c === '#') return;
    deny(`sed: unexpected ${JSON.stringify(c)} after ${what}`);
  };
  const toLineEnd = (): string => {
    const start = i;
    while (i < s.length && s[i] !== '\n') i++;
    return s.slice(start, i);
  };
  /** A regex delimited by `delim`, bracket expressions honoured as GNU sed does. */
  const regex = (delim: string, what: string): void => {
    for (;;) {
      const c = s[i];
      if (c === undefined || c === '\n') deny(`sed: unterminated ${what}`);
      if (c === delim) {
        i++;
        return;
      }
      if (c === '\\') {
        if (s[i + 1] === undefined) deny(`sed: unterminated ${what}`);
        i += 2;
        continue;
      }
      if (c === '[') {
        i++;
        if (s[i] === '^') i++;
        if (s[i] === ']') i++;
        for (;;) {
          const b = s[i];
          if (b === undefined || b === '\n') deny(`sed: unterminated bracket expression in ${what}`);
          if (b === '\\') deny(`sed: backslash inside a bracket expression is ambiguous (${what})`);
          if (b === '[' && (s[i + 1] === ':' || s[i + 1] === '=' || s[i + 1] === '.')) {
            const close = s.indexOf(s[i + 1]! + ']', i + 2);
            if (close < 0) deny(`sed: unterminated character class in ${what}`);
            i = close + 2;
            continue;
          }
          i++;
          if (b === ']') break;
        }
        continue;
      }
      i++;
    }
  };
  /** The replacement of s///: not a regex, backslash escapes the next character (newline too). */
  const replacement = (delim: string): void => {
    for (;;) {
      const c = s[i];
      if (c === undefined) deny('sed: unterminated s command');
      if (c === delim) {
        i++;
        return;
      }
      if (c === '\n') deny('sed: unterminated s command');
      i += c === '\\' ? 2 : 1;
    }
  };
  const address = (): boolean => {
    const c = at();
    if (c === undefined) return false;
    if (/[0-9]/.test(c)) {
      while (/[0-9]/.test(s[i] ?? '')) i++;
      if (s[i] === '~') {
        i++;
        while (/[0-9]/.test(s[i] ?? '')) i++;
      }
      return true;
    }
    if (c === '$') {
      i++;
      return true;
    }
    if (c === '/' || c === '\\') {
      let delim = '/';
      if (c === '\\') {
        delim = s[i + 1] ?? '';
        if (!delim || delim === '\n' || delim === '\\') deny('sed: bad address delimiter');
        i += 2;
      } else i++;
      regex(delim, 'address');
      while (s[i] === 'I' || s[i] === 'M') i++;
      return true;
    }
    return false;
  };
  const label = (what: string) => {
    skipBlank();
    const start = i;
    while (i < s.length && s[i] !== '\n' && s[i] !== ';') i++;
    const name = s.slice(start, i).trim();
    if (what === ':' && !name) deny('sed: empty label');
    if (/[}#\s]/.test(name)) deny(`sed: ambiguous label ${JSON.stringify(name)}`);
  };

  while (i < s.length) {
    const c = at()!;
    if (c === ' ' || c === '\t' || c === '\n' || c === ';') {
      i++;
      continue;
    }
    if (c === '#') {
      toLineEnd();
      continue;
    }
    if (address()) {
      skipBlank();
      if (at() === ',') {
        i++;
        skipBlank();
        if (at() === '+' || at() === '~') {
          i++;
          if (!/[0-9]/.test(at() ?? '')) deny('sed: bad address');
          while (/[0-9]/.test(s[i] ?? '')) i++;
        } else if (!address()) deny('sed: bad second address');
      }
    }
    skipBlank();
    while (at() === '!') {
      i++;
      skipBlank();
    }
    const cmd = at();
    if (cmd === undefined) deny('sed: missing command');
    i++;
    if (SIMPLE.has(cmd)) {
      endOfCommand(cmd);
      continue;
    }
    switch (cmd) {
      case '{':
      case '}':
        continue;
      case 'l':
      case 'L':
      case 'q':
      case 'Q':
        skipBlank();
        while (/[0-9]/.test(s[i] ?? '')) i++;
        endOfCommand(cmd);
        continue;
      case ':':
      case 'b':
      case 't':
      case 'T':
        label(cmd);
        continue;
      case 'v':
        label(cmd);
        continue;
      case 'a':
      case 'i':
      case 'c': {
        skipBlank();
        if (at() === '\\') {
          i++;
          if (at() === '\n') i++;
        }
        // Text runs to an unescaped newline.
        let text = '';
        for (;;) {
          const t = s[i];
          if (t === undefined || t === '\n') break;
          if (t === '\\') {
            text += s[i + 1] ?? '';
            i += 2;
            continue;
          }
          text += t;
          i++;
        }
        if (text.includes(';')) deny(`sed: text with ';' after ${cmd} is ambiguous between sed versions`);
        continue;
      }
      case 'r':
      case 'R': {
        const file = toLineEnd().trim();
        if (!file) deny(`sed ${cmd} needs a file name`);
        if (/[;}]/.test(file)) deny(`sed: ambiguous file name after ${cmd}: ${file}`);
        continue;
      }
      case 'w':
      case 'W':
        deny(`sed ${cmd} command writes to a file (${cmd}${toLineEnd()})`);
        break;
      case 'e':
        deny('sed e command runs shell commands');
        break;
      case 's': {
        const delim = at();
        if (!delim || delim === '\n' || delim === '\\') deny('sed: bad s command delimiter');
        i++;
        regex(delim, 's command');
        replacement(delim);
        for (;;) {
          const f = at();
          if (f === undefined) break;
          if (f === 'w') deny(`sed s///w writes to a file (w${toLineEnd()})`);
          if (f === 'e') deny('sed s///e runs the pattern space as a shell command');
          if (/[gpiImM0-9]/.test(f)) {
            i++;
            continue;
          }
          break;
        }
        endOfCommand('s command');
        continue;
      }
      case 'y': {
        const delim = at();
        if (!delim || delim === '\n' || delim === '\\') deny('sed: bad y command delimiter');
        i++;
        replacement(delim);
        replacement(delim);
        endOfCommand('y command');
        continue;
      }
      default:
        deny(`sed: unknown command ${JSON.stringify(cmd)}`);
    }
  }
}
