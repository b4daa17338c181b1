/**
 * From tree-sitter word nodes to `Word`s: quote removal, and an honest account of what the
 * shell will compute at run time (expansions, globs, braces, tildes).
 *
 * tree-sitter-bash is used only to find where expansions are. Literal stretches are decoded
 * here, and any `$` or backquote that would still expand in them (which means the grammar
 * missed an expansion bash would perform) is denied rather than trusted.
 */
import type { SNode } from './ast.ts';
import { deny, type Word } from './types.ts';

export interface WordHost {
  readonly src: string;
  /** Check the statements inside `$(...)`, backquotes or `<(...)` with the same policy. */
  substitution(node: SNode): void;
  /** What a variable is known to hold at a position: one Word per possible value, or null. */
  binding(name: string, at: number): Word[] | null;
}

/** One resolution pass: which value each multi-valued variable takes, and whether to check nesting. */
interface Pass {
  choices: Map<string, number>;
  first: boolean;
}

/** Per character of the literal value: 'a' active (unquoted), 'q' quoted or escaped, 'd' dynamic. */
interface Acc {
  value: string;
  meta: string;
  /** Some piece expands and is then split into words (unquoted $x, $(...)). */
  splits: boolean;
  /** Some quoted piece may still produce several words ("$@", "${a[@]}"). */
  quotedMulti: boolean;
}

const EXPANDS_AFTER_DOLLAR = /[A-Za-z_0-9{([@*#?$!-]/;
const GLOB_ACTIVE = /[*?]/;

const SAFE_EXPANSION_OPS = new Set([
  ':-',
  '-',
  ':+',
  '+',
  ':?',
  '?',
  '#',
  '##',
  '%',
  '%%',
  '/',
  '//',
  '/#',
  '/%',
  '^',
  '^^',
  ',',
  ',,',
]);

function textOf(host: WordHost, n: SNode): string {
  return host.src.slice(n.start, n.end);
}

/** Literal text that bash reads unquoted: backslash escapes one character, `\<newline>` vanishes. */
function pushUnquoted(acc: Acc, raw: string): void {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\') {
      const next = raw[i + 1];
      if (next === undefined) {
        acc.value += '\\';
        acc.meta += 'q';
      } else if (next === '\n') i++;
      else {
        acc.value += next;
        acc.meta += 'q';
        i++;
      }
      continue;
    }
    if (c === '`') deny('backquote command substitution the parser could not place');
    if (c === '$' && i + 1 < raw.length && EXPANDS_AFTER_DOLLAR.test(raw[i + 1]!))
      deny(`an expansion in ${JSON.stringify(raw)} the parser could not place`);
    if (c === '\n') deny('a newline inside a word');
    if (c === "'" || c === '"') deny('a quote the parser read as part of a word');
    acc.value += c;
    acc.meta += 'a';
  }
}

/** Literal text inside double quotes: only \$ \` \" \\ and \<newline> are escapes. */
function pushDoubleQuoted(acc: Acc, raw: string): void {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\') {
      const next = raw[i + 1];
      if (next === '\n') {
        i++;
        continue;
      }
      if (next === '$' || next === '`' || next === '"' || next === '\\') {
        acc.value += next;
        acc.meta += 'q';
        i++;
        continue;
      }
      acc.value += '\\';
      acc.meta += 'q';
      continue;
    }
    if (c === '`') deny('backquote command substitution the parser could not place');
    if (c === '$' && i + 1 < raw.length && EXPANDS_AFTER_DOLLAR.test(raw[i + 1]!))
      deny(`an expansion in "${raw}" the parser could not place`);
    if (c === '"') deny('a double quote the parser read as part of a string');
    acc.value += c;
    acc.meta += 'q';
  }
}

function pushDynamic(acc: Acc, quoted: boolean, multi = false): void {
  acc.value += '\u0000';
  acc.meta += 'd';
  if (!quoted) acc.splits = true;
  else if (multi) acc.quotedMulti = true;
}

/** Where bash ends a `$'...'` string: at the first quote not escaped by a backslash. */
function ansiCEnd(t: string): number {
  for (let i = 2; i < t.length; i++) {
    if (t[i] === '\\') i++;
    else if (t[i] === "'") return i + 1;
  }
  return -1;
}

/** $'...': decode the plain escapes; anything fancier is treated as computed. */
function decodeAnsiC(body: string): string | null {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    switch (n) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
      case "'":
      case '"':
        out += n;
        break;
      default:
        return null;
    }
  }
  return out;
}

/** Validate `${...}` and check what nests in it. Returns true when it may yield several words even quoted. */
function checkExpansion(host: WordHost, node: SNode, pass: Pass): boolean {
  const kids = node.children;
  let multi = false;
  let sawName = false;
  let substring = false;
  for (let i = 0; i < kids.length; i++) {
    const k = kids[i]!;
    if (!k.named) {
      const t = k.type;
      if (t === '${' || t === '}') continue;
      if (!sawName) {
        if (t === '!') deny('${!name} indirect expansion can evaluate arbitrary text');
        if (t === '#') continue; // ${#x}: length
        deny(`unsupported expansion ${textOf(host, node)}`);
      }
      if (t === '@') deny(`\${name@...} transformations can run commands (${textOf(host, node)})`);
      if (t === '=' || t === ':=') deny(`${textOf(host, node)} assigns a variable`);
      if (t === ':') {
        substring = true;
        continue;
      }
      if (!SAFE_EXPANSION_OPS.has(t)) deny(`unsupported expansion operator ${t} in ${textOf(host, node)}`);
      continue;
    }
    if (!sawName) {
      if (k.type === 'variable_name' || k.type === 'special_variable_name') {
        if (textOf(host, k) === '@') multi = true;
        sawName = true;
        continue;
      }
      if (k.type === 'subscript') {
        const index = k.children.find((c) => c.field === 'index');
        const it = index ? textOf(host, index) : '';
        if (!/^([@*]|\d+)$/.test(it))
          deny(`array index ${it} is evaluated as arithmetic, which can run commands`);
        if (/^[@]$/.test(it)) multi = true;
        sawName = true;
        continue;
      }
      deny(`unsupported expansion ${textOf(host, node)}`);
    }
    if (substring) {
      if (k.type !== 'number' || k.children.length || !/^-?\d+$/.test(textOf(host, k)))
        deny(`substring offsets in ${textOf(host, node)} are evaluated as arithmetic`);
      continue;
    }
    // Operand of an operator: a word, pattern or replacement. Check what nests in it.
    operand(host, k, pass);
  }
  if (!sawName) deny(`unsupported expansion ${textOf(host, node)}`);
  return multi;
}

/** Words inside ${x:-word}, patterns and the like: only their nested substitutions matter. */
function operand(host: WordHost, n: SNode, pass: Pass): void {
  if (n.type === 'regex' || n.type === 'extglob_pattern') {
    const t = textOf(host, n);
    if (/`|\$[({[]/.test(t)) deny(`an expansion in the pattern ${t} the parser could not place`);
    return;
  }
  pushPiece(host, emptyAcc(), n, false, pass);
}

const emptyAcc = (): Acc => ({ value: '', meta: '', splits: false, quotedMulti: false });

/** The variable a plain `$name` or `${name}` reads, or null for anything fancier. */
function plainVariable(host: WordHost, n: SNode): string | null {
  const named = n.children.filter((c) => c.named);
  if (named.length !== 1 || named[0]!.type !== 'variable_name') return null;
  if (n.type === 'expansion' && n.children.some((c) => !c.named && c.type !== '${' && c.type !== '}'))
    return null;
  return textOf(host, named[0]!);
}

const PLAIN_VALUE = /^[^\s*?[\]\\]+$/;

/**
 * Inline a variable whose value is known; returns false when it must stay dynamic. Unquoted,
 * only a value without blanks or glob characters, and only while IFS is untouched (a changed
 * IFS could split `a_-i` into `a` and `-i`).
 */
function pushKnown(host: WordHost, acc: Acc, w: Word, quoted: boolean): boolean {
  if (w.value !== null) {
    if (!quoted && (!PLAIN_VALUE.test(w.value) || host.src.includes('IFS'))) return false;
    acc.value += w.value;
    acc.meta += 'q'.repeat(w.value.length);
    return true;
  }
  if (!quoted) return false;
  acc.value += w.prefix + '\u0000';
  acc.meta += 'q'.repeat(w.prefix.length) + 'd';
  return true;
}

const ARITH_OK = new Set([
  'arithmetic_expansion',
  'binary_expression',
  'unary_expression',
  'parenthesized_expression',
  'ternary_expression',
  'number',
]);

function checkArithmetic(host: WordHost, node: SNode): void {
  const text = textOf(host, node);
  if (text.startsWith('$[')) deny(`$[...] arithmetic is not supported (${text})`);
  const visit = (n: SNode): void => {
    if (n.named) {
      if (!ARITH_OK.has(n.type) || (n.type === 'number' && n.children.length))
        deny(`arithmetic on variables can run commands hidden in their values (${text})`);
    } else if (/=/.test(n.type) && !/^(==|!=|<=|>=)$/.test(n.type)) {
      deny(`arithmetic assignment in ${text}`);
    }
    for (const c of n.children) visit(c);
  };
  visit(node);
}

function pushPiece(host: WordHost, acc: Acc, n: SNode, quoted: boolean, pass: Pass): void {
  switch (n.type) {
    case 'word':
      if (quoted) deny(`unexpected word inside quotes: ${textOf(host, n)}`);
      pushUnquoted(acc, textOf(host, n));
      return;
    case 'raw_string': {
      const t = textOf(host, n);
      const body = t.slice(1, -1);
      if (t.length < 2 || !t.endsWith("'") || body.includes("'"))
        deny('a single-quoted string the parser misread');
      acc.value += body;
      acc.meta += 'q'.repeat(body.length);
      return;
    }
    case 'ansi_c_string': {
      const t = textOf(host, n);
      if (ansiCEnd(t) !== t.length) deny("a $'...' string the parser misread");
      const decoded = decodeAnsiC(t.slice(2, -1));
      if (decoded === null) pushDynamic(acc, true);
      else {
        acc.value += decoded;
        acc.meta += 'q'.repeat(decoded.length);
      }
      return;
    }
    case 'string':
      pushString(host, acc, n, pass);
      return;
    case 'translated_string':
      for (const c of n.children) if (c.named) pushString(host, emptyAcc(), c, pass);
      pushDynamic(acc, true);
      return;
    case 'concatenation':
      for (const c of n.children) {
        if (c.named) pushPiece(host, acc, c, quoted, pass);
        else {
          if (c.type !== '$') deny(`unsupported syntax ${c.type} in a word`);
          acc.value += '$';
          acc.meta += 'a';
        }
      }
      return;
    case 'simple_expansion':
    case 'expansion': {
      const multi = n.type === 'expansion' ? checkExpansion(host, n, pass) : textOf(host, n) === '$@';
      const name = plainVariable(host, n);
      const known = name === null ? null : host.binding(name, n.start);
      if (known) {
        const pick = known.length === 1 ? known[0] : known[pass.choices.get(name!) ?? -1];
        if (pick && pushKnown(host, acc, pick, quoted)) return;
      }
      pushDynamic(acc, quoted, multi);
      return;
    }
    case 'command_substitution': {
      const t = textOf(host, n);
      if (t.startsWith('`') && t.slice(1, -1).includes('\\'))
        deny('backslashes inside backquotes are ambiguous; use $(...)');
      if (pass.first) host.substitution(n);
      pushDynamic(acc, quoted);
      return;
    }
    case 'process_substitution': {
      const t = textOf(host, n);
      if (!t.startsWith('<(')) deny(`output process substitution ${t.slice(0, 40)} feeds a command`);
      if (pass.first) host.substitution(n);
      // Expands to one path such as /dev/fd/63.
      acc.value += '/dev/fd/\u0000';
      acc.meta += 'qqqqqqqqd';
      return;
    }
    case 'arithmetic_expansion':
      checkArithmetic(host, n);
      acc.value += '\u0000';
      acc.meta += 'd';
      return;
    case 'number':
      if (n.children.length) deny(`unsupported number syntax ${textOf(host, n)}`);
      pushUnquoted(acc, textOf(host, n));
      return;
    case 'brace_expression':
      // {1..5}: expands to several words.
      acc.value += '{\u0000}';
      acc.meta += 'ada';
      acc.quotedMulti = true;
      return;
    case 'extglob_pattern':
      pushUnquoted(acc, textOf(host, n));
      return;
    default:
      deny(`unsupported syntax (${n.type}) in a word`);
  }
}

function pushString(host: WordHost, acc: Acc, n: SNode, pass: Pass): void {
  let pos = n.start + 1;
  const close = n.end - 1;
  for (const c of n.children) {
    if (!c.named) continue;
    if (c.type === 'string_content') continue; // covered by the raw stretch
    pushDoubleQuoted(acc, host.src.slice(pos, c.start));
    if (acc.value.endsWith('$') && acc.meta.endsWith('a')) deny('ambiguous $ before an expansion');
    pushPiece(host, acc, c, true, pass);
    pos = c.end;
  }
  pushDoubleQuoted(acc, host.src.slice(pos, close));
}

/** Variables used directly in this word (not inside substitutions) that have several known values. */
function multiValued(host: WordHost, node: SNode, out: Set<string>): void {
  if (node.type === 'command_substitution' || node.type === 'process_substitution') return;
  if (node.type === 'simple_expansion' || node.type === 'expansion') {
    const name = plainVariable(host, node);
    const known = name === null ? null : host.binding(name, node.start);
    if (known && known.length > 1) out.add(name!);
  }
  for (const c of node.children) multiValued(host, c, out);
}

const MAX_PASSES = 64;

/** Resolve one word node to a Word, checking every substitution nested in it. */
export function resolveWord(host: WordHost, node: SNode): Word {
  // A word that starts with # after a blank is a comment for bash.
  if (host.src[node.start] === '#' && (node.start === 0 || /[\s;&|()<>]/.test(host.src[node.start - 1]!)))
    deny('bash reads this # as the start of a comment');
  const vars = new Set<string>();
  multiValued(host, node, vars);
  const names = [...vars];
  const sizes = names.map((n) => host.binding(n, node.start)?.length ?? 1);
  const total = sizes.reduce((a, b) => a * b, 1);
  if (!names.length || total > MAX_PASSES)
    return resolveOnce(host, node, { choices: new Map(), first: true });
  const results: Word[] = [];
  for (let k = 0; k < total; k++) {
    const choices = new Map<string, number>();
    let rest = k;
    names.forEach((n, i) => {
      choices.set(n, rest % sizes[i]!);
      rest = Math.floor(rest / sizes[i]!);
    });
    results.push(resolveOnce(host, node, { choices, first: k === 0 }));
  }
  return merge(results);
}

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

function merge(ws: Word[]): Word {
  const first = ws[0]!;
  if (ws.every((w) => w.value !== null)) {
    const values = [...new Set(ws.map((w) => w.value!))];
    if (values.length === 1) return first;
    return {
      ...first,
      value: null,
      prefix: values.reduce(commonPrefix),
      multi: false,
      tilde: false,
      alts: values,
    };
  }
  return {
    ...first,
    value: null,
    prefix: ws.map((w) => w.value ?? w.prefix).reduce(commonPrefix),
    multi: ws.some((w) => w.multi),
    tilde: ws.every((w) => w.tilde),
  };
}

function resolveOnce(host: WordHost, node: SNode, pass: Pass): Word {
  const acc = emptyAcc();
  pushPiece(host, acc, node, false, pass);
  const { value, meta } = acc;
  const text = textOf(host, node);

  // `$` left active right before another piece would have combined with it in bash.
  for (let i = 0; i + 1 < meta.length; i++) {
    if (value[i] !== '$' || meta[i] !== 'a') continue;
    if (meta[i + 1] !== 'a' || EXPANDS_AFTER_DOLLAR.test(value[i + 1]!))
      deny(`ambiguous $ in ${JSON.stringify(text)}`);
  }

  let cut = meta.indexOf('d');
  if (cut < 0) cut = meta.length;
  let globbed = false;
  for (let i = 0; i < meta.length; i++) {
    if (meta[i] !== 'a') continue;
    const c = value[i]!;
    if (GLOB_ACTIVE.test(c) || (c === '[' && value.indexOf(']', i + 1) > i)) {
      globbed = true;
      cut = Math.min(cut, i);
      break;
    }
  }
  // Brace expansion: an active { ... } holding an active comma or `..`.
  let braced = false;
  for (let i = 0; i < meta.length && !braced; i++) {
    if (meta[i] !== 'a' || value[i] !== '{') continue;
    for (let j = i + 1; j < meta.length; j++) {
      if (meta[j] !== 'a') continue;
      if (value[j] === '}') break;
      if (value[j] === ',' || (value[j] === '.' && value[j + 1] === '.' && meta[j + 1] === 'a')) {
        braced = true;
        cut = Math.min(cut, i);
        break;
      }
    }
  }
  // bash also expands `~` after `=` or `:` in arguments that look like assignments (a=~/x).
  for (let i = 1; i < meta.length; i++) {
    if (
      meta[i] === 'a' &&
      value[i] === '~' &&
      meta[i - 1] === 'a' &&
      (value[i - 1] === '=' || value[i - 1] === ':')
    ) {
      cut = Math.min(cut, i);
      break;
    }
  }
  const tilde = meta[0] === 'a' && value[0] === '~';
  const dynamic = cut < meta.length || tilde;
  const multi = acc.splits || acc.quotedMulti || globbed || braced;
  if (!dynamic && !multi) {
    return { text, value, prefix: value, multi: false, tilde: false, start: node.start, end: node.end };
  }
  const safePrefix = acc.splits ? '' : tilde ? '' : value.slice(0, cut);
  return {
    text,
    value: null,
    prefix: safePrefix,
    multi,
    tilde: tilde && !acc.splits,
    start: node.start,
    end: node.end,
  };
}
