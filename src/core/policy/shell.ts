/**
 * The read-only shell command policy: may this command run on a SOURCE or PRODUCTION VM?
 *
 * Design
 * ------
 * The command is parsed with tree-sitter-bash and every part of it must be understood:
 *
 * - Syntax is allowlisted node by node. A parse error, a missing node, an unknown node type or
 *   an unknown token denies. tree-sitter-bash does not always read a command the way bash does,
 *   so the policy checks the places where they were found to disagree (by running bash on
 *   generated commands, see test/unit/policy): every non-blank character must belong to a node
 *   (the grammar can drop a word), quoted strings must end where bash ends them (`$'\\'`),
 *   words that touch are one word (`"-"\i` is `-i`), escaped blanks and line continuations
 *   must not sit between words, `#` starts a comment wherever bash says so, `[`/`[[`/`{` need
 *   blanks to be keywords, `[ a > b ]` and `[ a || b ]` hold shell operators, heredoc bodies
 *   end where bash ends them, `{fd}>` is a redirection, and a `$` or backquote left in text the
 *   grammar called literal is refused. Control characters are refused outright.
 * - Every simple command is checked: in pipelines, lists, subshells, groups, if/while/until/
 *   for/case bodies, `$(...)`, backquotes and `<(...)`. A substitution is checked with the same
 *   policy; its output is a run-time word (below), so it can never become a command name.
 * - Words are resolved with quote removal (`'r''m'` is rm, `l\s` is ls, `$'\t'`). A word the
 *   shell computes at run time (parameters, substitutions, globs, braces, tildes) keeps its
 *   known literal prefix and a flag saying whether it may split into several words. The command
 *   name must be literal. Per-command rules decide where computed words are harmless: anywhere
 *   for plain readers (cat, grep, ls), never where they could become an option for programs
 *   with dangerous options (sed, find, sort, git...). A variable set once to literal values (a
 *   `for` list, a top-level `x=literal`) and never touched elsewhere is known by its values.
 * - Each program has a rule. Readers whose every option is harmless are allowed outright;
 *   others are parsed like getopt_long (permutation, clusters, abbreviations, `--`) with their
 *   dangerous options denied; tools with subcommands allow only read-only subcommands. sed
 *   scripts and awk programs are parsed: no w/W/e, s///w, s///e; no system(), getline, pipes or
 *   print redirection. find expressions are classified predicate by predicate.
 * - Wrappers are unwrapped and the wrapped command is checked with the whole policy: timeout,
 *   nice, stdbuf, env (only formatting variables), time, command, builtin, xargs (its input
 *   becomes run-time words appended to, or substituted into, the command) and find -exec.
 * - Redirections: only to /dev/null, fd duplication and closing (2>&1, >&2, 1>&-), and input
 *   (`<` file, here-strings, heredocs). Unquoted heredoc bodies may hold only plain `$name`
 *   expansions: a command substitution in one is denied.
 * - Variables: only lowercase shell variables may be set (PATH, LD_*, BASH_ENV, PAGER, GIT_*
 *   are all upper case; IFS is allowed because unquoted expansions count as arbitrary anyway);
 *   a command's environment may get formatting variables (LC_*, TZ, ...) and PAGER=cat.
 *   Contexts where bash evaluates variable contents as code are denied: arithmetic on
 *   variables, `[[ -eq ]]` on non-literals, `${!x}`, `${x@P}`, array indexes, `test -v`.
 *
 * Service clients keep only their reading side: curl/wget GET and HEAD over http(s) printing to
 * stdout, redis-cli read commands, one read-only SQL statement through mysql -e / psql -c (see
 * sql.ts), status verbs of mysqladmin, fail2ban-client, btrfs and the like. Pagers (less, more)
 * behave like cat without a terminal; their start-up commands, logs and key files are denied.
 *
 * Deliberately denied: function definitions, aliases, eval, source, exec, trap, background
 * jobs (`&`), `((...))`, coproc, sudo/su (commands run unprivileged on purpose), shells and
 * interpreters with code (`bash -c`, `python -c`, ...), other network clients (ssh, nc beyond a
 * port check, ftp), editors (vi: they run commands and write files), ldd (it can execute the
 * inspected program), and anything not on the list.
 *
 * Commands run via a non-interactive `bash -c` as an unprivileged user on the target; this
 * policy is the first gate, not the only one.
 */
import { loadBashParser, type BashParser, type SNode } from './ast.ts';
import { lookupRule } from './commands/index.ts';
import { plainName } from './names.ts';
import type { RuleContext } from './rule.ts';
import {
  deny,
  Deny,
  literalWord,
  mayStartWith,
  show,
  type CheckedCommand,
  type PolicyDecision,
  type PolicyMode,
  type ShellPolicy,
  type Word,
} from './types.ts';
import { envAssignmentProblem, isSafeShellVar, shellAssignmentProblem } from './vars.ts';
import { resolveWord, type WordHost } from './words.ts';

export type { CheckedCommand, PolicyDecision, PolicyMode, ShellPolicy } from './types.ts';
export { POLICY_MODES } from './types.ts';

const MAX_LENGTH = 64 * 1024;
/** Builtins that set variables named at run time or filled from input: variable tracking stops. */
const SETS_BY_NAME = new RegExp(
  [
    '(?:^|[^A-Za-z0-9_])(read|mapfile|readarray|getopts|declare|typeset|local|export|readonly|unset|let|eval|source)(?![A-Za-z0-9_-])',
    '(?:^|[^A-Za-z0-9_])printf\\s+-v',
    '(?:^|[^A-Za-z0-9_])wait(\\s+-[A-Za-z]+)*\\s+-[A-Za-z]*p',
  ].join('|'),
);
const CONTINUED = 'a command the parser continued onto the next line';
const AFTER_COMMENT = 'a command that continues after a comment';
const MAX_DEPTH = 64;

const BLOCK_TOKENS = new Set([
  ';',
  '&&',
  '||',
  '|',
  '|&',
  '(',
  ')',
  '{',
  '}',
  'do',
  'done',
  'if',
  'then',
  'fi',
  'elif',
  'else',
  'while',
  'until',
  'for',
  'in',
  'case',
  'esac',
  '!',
  '\n',
]);

const CASE_TOKENS = new Set([';;', ';&', ';;&', ')', '(', '|']);

const BLOCKS = new Set([
  'program',
  'list',
  'pipeline',
  'subshell',
  'do_group',
  'else_clause',
  'elif_clause',
  'if_statement',
  'negated_command',
  'while_statement',
]);

const SYSTEM_BIN = /^\/(usr\/)?(local\/)?s?bin\/[^/]+$/;
const OUTPUT_OPS = new Set(['>', '>>', '>|', '&>', '&>>']);
const ARITH_TEST_OPS = new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge']);
const TEST_LEAF_TOKENS = new Set(['!', '=', '==', '!=', '-a', '-o']);
const DOUBLE_TEST_TOKENS = new Set([
  '[[',
  ']]',
  '!',
  '&&',
  '||',
  '(',
  ')',
  '==',
  '=',
  '!=',
  '=~',
  '<',
  '>',
  '-a',
  '-o',
]);

interface CommandInfo {
  stdinData: boolean;
}

class Analyzer implements WordHost {
  readonly src: string;
  readonly commands: CheckedCommand[] = [];
  private depth = 0;
  private nested = 0;
  /** Set while walking a pipeline when the previous stage prints nothing (echo, true). */
  private emptyPipeInput = false;
  /** Variables whose values are known in a span of the source (see `track`). */
  private readonly bindings: Array<{ name: string; from: number; to: number; values: Word[] }> = [];

  constructor(src: string) {
    this.src = src;
  }

  binding(name: string, at: number): Word[] | null {
    for (const b of this.bindings) if (b.name === name && b.from <= at && at < b.to) return b.values;
    return null;
  }

  /**
   * Remember what a variable holds from `from` to `to`. Only when its name appears exactly once in
   * the whole command other than as a plain `$name` read (`${name...}` and option clusters such
   * as `read -ax` or `wait -px` count) and no builtin that can set a variable from a computed name or from
   * input is present: that one place is this definition, so nothing else can change it.
   */
  private track(name: string, from: number, to: number, values: Word[]): void {
    if (!values.length || values.length > 32) return;
    if (SETS_BY_NAME.test(this.src)) return;
    // Standalone (not part of a longer name), or glued to an option cluster (`-ax`); `$name` is a read.
    const mentions = new RegExp(
      `(?<=^|[\\s;&|(){}\`'"\\\\=]|\\$\\{#?|(?:^|\\s)-[A-Za-z]*)${name}(?![A-Za-z0-9_])`,
      'g',
    );
    if ((this.src.match(mentions) ?? []).length !== 1) return;
    this.bindings.push({ name, from, to, values: values.map((v) => ({ ...v, multi: false })) });
  }

  private text(n: SNode): string {
    return this.src.slice(n.start, n.end);
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) deny('the command is nested too deeply');
  }

  substitution(node: SNode): void {
    this.enter();
    this.nested++;
    const saved = this.emptyPipeInput;
    this.emptyPipeInput = false;
    for (const c of node.children) {
      if (!c.named) {
        if (c.type === '$(' || c.type === ')' || c.type === '`' || c.type === '<(' || c.type === '>(')
          continue;
        this.token(c);
        continue;
      }
      if (c.type === 'file_redirect')
        this.redirect(c); // $(< file)
      else this.statement(c);
    }
    this.emptyPipeInput = saved;
    this.nested--;
    this.depth--;
  }

  private token(c: SNode): void {
    if (BLOCK_TOKENS.has(c.type)) return;
    if (c.type === '&') deny('`&` runs a command in the background');
    if (c.type === 'select') deny('select loops are interactive');
    if (c.type === '((' || c.type === '))') deny('arithmetic commands (( )) are not allowed');
    deny(`unsupported shell syntax ${JSON.stringify(c.type)}`);
  }

  private block(n: SNode): void {
    if (n.type !== 'pipeline') {
      // Direct children of the script run unconditionally, one after the other.
      const top = n.type === 'program';
      for (const c of n.children) {
        if (!c.named) this.token(c);
        else this.statement(c, top);
      }
      return;
    }
    // A stage's stdin is harmless when the previous stage prints nothing (for s_client).
    const outer = this.emptyPipeInput;
    let prev: SNode | null = null;
    for (const c of n.children) {
      if (!c.named) {
        this.token(c);
        continue;
      }
      this.emptyPipeInput = prev === null ? outer : this.printsNothing(prev);
      this.statement(c);
      if (c.type !== 'comment') prev = c;
    }
    this.emptyPipeInput = outer;
  }

  /** `echo`, `echo Q`, `true`, `:`, `printf ''`: stages that send (almost) nothing down a pipe. */
  private printsNothing(n: SNode): boolean {
    if (n.type !== 'command') return false;
    const name = n.children.find((c) => c.field === 'name');
    const args = n.children.filter((c) => c.field === 'argument').map((c) => this.text(c));
    const cmd = name ? this.text(name) : '';
    if (cmd === 'true' || cmd === ':') return args.length === 0;
    if (cmd === 'echo')
      return args.length === 0 || (args.length === 1 && /^(-n|Q|"Q"|'Q'|""|'')$/.test(args[0]!));
    if (cmd === 'printf') return args.length === 1 && /^(""|'')$/.test(args[0]!);
    return false;
  }

  statement(n: SNode, top = false): void {
    this.enter();
    try {
      if (n.missing) deny('incomplete command');
      if (BLOCKS.has(n.type)) return this.block(n);
      switch (n.type) {
        case 'comment':
          return this.comment(n);
        case 'compound_statement': {
          if (n.children[0]?.type !== '{') deny('arithmetic commands (( )) are not allowed');
          // `{` and `}` are reserved words for bash only as separate words in command position.
          const close = n.children.at(-1)!;
          const beforeClose = this.src.slice(n.children[0]!.end, close.start).replace(/[ \t]+$/, '');
          if (!/\s/.test(this.src[n.children[0]!.end] ?? '') || !/[;&\n]$/.test(beforeClose))
            deny(`${JSON.stringify(this.text(n).slice(0, 20))} is not a group for bash`);
          return this.block(n);
        }
        case 'for_statement':
          return this.forStatement(n);
        case 'case_statement':
          return this.caseStatement(n);
        case 'redirected_statement':
          return this.redirected(n);
        case 'command':
          return this.command(n, null);
        case 'variable_assignment':
          return this.assignment(n, 'shell', top);
        case 'variable_assignments':
          for (const c of n.children) {
            if (c.type === 'variable_assignment') this.assignment(c, 'shell', top);
            else if (c.type === 'comment') this.comment(c);
            else deny(`unsupported syntax ${c.type}`);
          }
          return;
        case 'declaration_command':
          return this.declaration(n);
        case 'unset_command':
          return this.unset(n);
        case 'test_command':
          return this.test(n);
        case 'function_definition':
          return deny('function definitions are not allowed');
        case 'c_style_for_statement':
          return deny('arithmetic for loops are not allowed');
        case 'ERROR':
          return deny(`syntax error near ${JSON.stringify(this.text(n).slice(0, 30))}`);
        default:
          return deny(`unsupported shell syntax (${n.type})`);
      }
    } finally {
      this.depth--;
    }
  }

  private comment(n: SNode): void {
    const prev = this.src[n.start - 1];
    if (prev !== undefined && !/[\s;&|()]/.test(prev)) deny('a # inside a word is not a comment for bash');
    // A bash comment always runs to the end of the line, even inside $( ).
    const eol = this.src.indexOf('\n', n.start);
    if (n.end !== (eol < 0 ? this.src.length : eol)) deny('a comment that ends before the end of its line');
  }

  private forStatement(n: SNode): void {
    if (n.children[0]?.type === 'select') deny('select loops are interactive');
    let variable = '';
    const values: Word[] = [];
    let hasIn = false;
    const valueNodes = joinAdjacent(n.children.filter((c) => c.field === 'value'));
    for (const c of n.children) {
      if (c.field === 'variable') {
        variable = this.text(c);
        if (!isSafeShellVar(variable)) deny(`for ${variable}: only lowercase loop variables may be set`);
      } else if (c.field === 'value') {
        if (values.length === 0) for (const v of valueNodes) values.push(resolveWord(this, v));
      } else if (c.field === 'body') {
        // Each iteration the variable holds one word of the list (a glob match, or one literal).
        const fixed = values.every((w) => w.value !== null || !w.multi || w.prefix !== '');
        if (hasIn && fixed) this.track(variable, c.start, c.end, values);
        this.statement(c);
      } else if (!c.named) {
        if (c.type === 'in') hasIn = true;
        this.token(c);
      } else if (c.type === 'comment') this.comment(c);
      else deny(`unsupported syntax in for (${c.type})`);
    }
  }

  private caseStatement(n: SNode): void {
    for (const v of joinAdjacent(n.children.filter((c) => c.field === 'value'))) resolveWord(this, v);
    for (const c of n.children) {
      if (c.field === 'value') continue;
      else if (c.type === 'case_item') {
        const patterns = c.children.filter((k) => k.field === 'value');
        for (let i = 1; i < patterns.length; i++)
          if (patterns[i - 1]!.end === patterns[i]!.start) deny('ambiguous case pattern');
        for (const k of c.children) {
          if (k.field === 'value') resolveWord(this, k);
          else if (!k.named) {
            if (!CASE_TOKENS.has(k.type)) this.token(k);
          } else this.statement(k);
        }
      } else if (!c.named) this.token(c);
      else if (c.type === 'comment') this.comment(c);
      else deny(`unsupported syntax in case (${c.type})`);
    }
  }

  private redirected(n: SNode): void {
    const body = n.children.find((c) => c.field === 'body');
    const redirects = n.children.filter((c) => c !== body);
    let stdinData = false;
    const heredocArgs: SNode[] = [];
    for (const r of redirects) {
      if (!r.named) this.token(r);
      else if (r.type === 'comment') this.comment(r);
      else {
        if (this.redirect(r)) stdinData = true;
        if (r.type === 'heredoc_redirect')
          heredocArgs.push(...r.children.filter((k) => k.field === 'argument'));
      }
    }
    if (!body) return;
    if (body.type === 'command') this.command(body, { stdinData, heredocArgs, redirects });
    else {
      if (heredocArgs.length) deny('arguments after a heredoc on a compound command');
      this.statement(body);
    }
  }

  /** Check one redirection. Returns true when it makes stdin harmless data (< /dev/null). */
  private redirect(r: SNode): boolean {
    switch (r.type) {
      case 'file_redirect':
        return this.fileRedirect(r);
      case 'herestring_redirect': {
        const words: SNode[] = [];
        for (const c of r.children) {
          if (c.field === 'descriptor') this.descriptor(c);
          else if (c.named) words.push(c);
          else if (c.type !== '<<<') deny(`unsupported redirection ${c.type}`);
        }
        for (const w of joinAdjacent(words)) resolveWord(this, w);
        return false;
      }
      case 'heredoc_redirect':
        this.heredoc(r);
        return false;
      default:
        return deny(`unsupported redirection (${r.type})`);
    }
  }

  private descriptor(c: SNode): void {
    if (!/^\d+$/.test(this.text(c))) deny(`unsupported file descriptor ${this.text(c)}`);
  }

  private fileRedirect(r: SNode): boolean {
    let op: string | null = null;
    const dests: SNode[] = [];
    for (const c of r.children) {
      if (c.field === 'descriptor') this.descriptor(c);
      else if (c.field === 'destination') dests.push(c);
      else if (!c.named) op = c.type;
      else deny(`unsupported redirection syntax (${c.type})`);
    }
    if (op === '>&-' || op === '<&-') {
      if (dests.length) deny('unexpected word after a descriptor close');
      return false;
    }
    const dest = joinAdjacent(dests);
    if (dest.length !== 1 || op === null) deny(`unsupported redirection ${this.text(r)}`);
    const w = resolveWord(this, dest[0]!);
    const target = w.value;
    if (op === '>&' || op === '<&') {
      if (target !== null && /^(\d+|-)$/.test(target)) return false;
      if (op === '<&') deny(`unsupported redirection ${this.text(r)}`);
      if (target === '/dev/null') return false;
      deny(`redirection to ${show(w)} writes a file`);
    }
    if (op === '<') {
      socketTarget(w);
      return target === '/dev/null';
    }
    if (OUTPUT_OPS.has(op)) {
      if (target === '/dev/null') return false;
      deny(`redirection to ${show(w)} writes a file`);
    }
    return deny(`unsupported redirection ${op}`);
  }

  private heredoc(r: SNode): void {
    let start: SNode | null = null;
    let body: SNode | null = null;
    let end: SNode | null = null;
    let dash = false;
    for (const c of r.children) {
      if (c.type === 'heredoc_start') start = c;
      else if (c.type === 'heredoc_body') body = c;
      else if (c.type === 'heredoc_end') end = c;
      else if (c.field === 'descriptor') this.descriptor(c);
      else if (c.field === 'argument')
        continue; // belongs to the command; checked there
      else if (c.field === 'redirect') this.redirect(c);
      else if (!c.named) {
        if (c.type === '<<-') dash = true;
        else if (c.type !== '<<') this.token(c);
      } else this.statement(c);
    }
    if (!start || !end) deny('incomplete heredoc');
    const bodyAt = body ? body.start : end.start;
    for (const c of r.children) {
      if (c.field === 'argument' && c.end > bodyAt) deny('a heredoc body the parser read as arguments');
    }
    const raw = this.text(start);
    const quoted = /['"\\]/.test(raw);
    const delimiter = raw.replace(/['"\\]/g, '');
    const endText = this.text(end);
    if (endText !== delimiter) deny('heredoc end does not match its delimiter');
    const lineStart = this.src.lastIndexOf('\n', end.start - 1) + 1;
    const lead = this.src.slice(lineStart, end.start);
    if (lead !== '' && !(dash && /^\t+$/.test(lead))) deny('heredoc end is not at the start of a line');
    const bodyStart = body ? body.start : lineStart;
    const text = this.src.slice(bodyStart, lineStart);
    const lines = text.split('\n');
    for (const line of lines.slice(0, -1)) {
      const l = dash ? line.replace(/^\t+/, '') : line;
      if (l === delimiter) deny('heredoc body holds its own delimiter; bash would end it earlier');
    }
    if (!quoted) this.heredocExpansions(text);
  }

  /** Unquoted heredoc bodies: only plain $name / ${name} expansions are allowed. */
  private heredocExpansions(body: string): void {
    const s = body.replace(/(^|[^\\])((?:\\\\)*)\\\n/g, '$1$2');
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c === '\\') {
        i++;
        continue;
      }
      if (c === '`') deny('command substitution in a heredoc body');
      if (c !== '$') continue;
      const rest = s.slice(i + 1);
      if (rest.startsWith('(')) deny('command substitution in a heredoc body');
      if (rest.startsWith('[')) deny('arithmetic in a heredoc body');
      if (rest.startsWith('{')) {
        if (!/^\{#?[A-Za-z_][A-Za-z0-9_]*\}/.test(rest) && !/^\{[0-9@*#?$!-]\}/.test(rest))
          deny('only plain ${name} expansions are allowed in a heredoc body');
      }
    }
  }

  private command(
    n: SNode,
    info: { stdinData: boolean; heredocArgs: SNode[]; redirects: SNode[] } | null,
  ): void {
    let nameNode: SNode | null = null;
    const argNodes: SNode[] = [];
    const assigns: SNode[] = [];
    let stdinData = info?.stdinData ?? false;
    for (const c of n.children) {
      if (c.field === 'name') nameNode = c;
      else if (c.field === 'argument') argNodes.push(c);
      else if (c.type === 'variable_assignment') assigns.push(c);
      else if (
        c.type === 'file_redirect' ||
        c.type === 'herestring_redirect' ||
        c.type === 'heredoc_redirect'
      ) {
        if (this.redirect(c)) stdinData = true;
        if (c.type === 'heredoc_redirect') argNodes.push(...c.children.filter((k) => k.field === 'argument'));
      } else if (c.type === 'comment') this.comment(c);
      else if (!c.named) this.token(c);
      else deny(`unsupported syntax in a command (${c.type})`);
    }
    if (info) argNodes.push(...info.heredocArgs);
    // A word glued to the end of a redirection belongs to the redirection's word in bash.
    const redirectEnds = new Set(
      [...n.children, ...(info?.redirects ?? [])].filter((c) => /_redirect$/.test(c.type)).map((c) => c.end),
    );
    for (const a of argNodes) if (redirectEnds.has(a.start)) deny('a word glued to a redirection');
    if (this.emptyPipeInput) stdinData = true;
    if (!nameNode) {
      for (const a of assigns) this.assignment(a, 'shell');
      return;
    }
    for (const a of assigns) this.assignment(a, 'env');
    const nameChild = nameNode.children.filter((c) => c.named);
    if (nameChild.length !== 1) deny('unsupported command name');
    const [first, ...rest] = joinAdjacent([nameChild[0]!, ...argNodes.sort((x, y) => x.start - y.start)]);
    const words = [resolveWord(this, first!)];
    for (const a of rest) {
      const w = resolveWord(this, a);
      // `{name}>file` and `{a[sub]}>file`: bash assigns a new descriptor to the name, and
      // evaluates a subscript in it. Any `{...}` word glued to a redirection is refused.
      const raw = w.value ?? w.text;
      if (raw.startsWith('{') && raw.endsWith('}') && /[<>&]/.test(this.src[a.end] ?? ''))
        deny(`${show(w)} before a redirection opens a named file descriptor`);
      words.push(w);
    }
    this.record(words, this.text(n));
    this.checkArgv(words, { stdinData });
  }

  private record(words: Word[], text: string): void {
    this.commands.push({
      argv: words.map((w) => w.value ?? w.text),
      dynamic: words.map((w) => w.value === null),
      text,
      nested: this.nested > 0,
    });
  }

  private checkArgv(words: Word[], info: CommandInfo): void {
    const first = words[0]!;
    if (first.value === null) deny(`the command name ${first.text} is computed at run time`);
    let name = first.value;
    if (!name) deny('empty command name');
    if (/^\/etc\/(rc\.d\/)?init\.d\/[A-Za-z0-9._@-]+$/.test(name)) {
      if (words.length === 2 && words[1]!.value === 'status') return;
      deny(`${name}: init scripts may only be asked for their status`);
    }
    if (name.includes('/')) {
      if (!SYSTEM_BIN.test(name)) deny(`${name}: programs may only run from the system bin directories`);
      name = name.slice(name.lastIndexOf('/') + 1);
    }
    const rule = lookupRule(name);
    if (!rule) deny(`${name} is not on the read-only command list`);
    const ctx: RuleContext = {
      name,
      stdinData: info.stdinData,
      run: (argv, opts) => this.wrapped(argv, opts?.stdinData ?? info.stdinData),
    };
    rule(words.slice(1), ctx);
  }

  private wrapped(argv: Word[], stdinData: boolean): void {
    this.enter();
    this.nested++;
    if (!argv.length) deny('missing command');
    this.record(argv, argv.map((w) => w.value ?? w.text).join(' '));
    this.checkArgv(argv, { stdinData });
    this.nested--;
    this.depth--;
  }

  private assignment(n: SNode, kind: 'shell' | 'env', top = false): void {
    let name = '';
    let value: Word | null = null;
    for (const c of n.children) {
      if (c.field === 'name') {
        if (c.type !== 'variable_name') deny(`assigning ${this.text(c)} evaluates an array index`);
        name = this.text(c);
      } else if (c.field === 'value') {
        if (c.type === 'array') {
          for (const e of joinAdjacent(c.children.filter((e) => e.named))) {
            // `[subscript]=value`: bash evaluates the subscript as arithmetic (`[x]=1` with
            // x='a[$(...)]' runs a command); only literal numbers.
            const t = this.text(e);
            if (t.startsWith('[') && !/^\[\d+\]\+?=/.test(t))
              deny(
                `the array subscript in ${t.slice(0, 30)} is evaluated as arithmetic, which can run commands`,
              );
            resolveWord(this, e);
          }
          value = { ...literalWord(''), value: null, text: this.text(c) };
        } else value = resolveWord(this, c);
      } else if (!c.named) {
        if (c.type !== '=' && c.type !== '+=') deny(`unsupported assignment ${this.text(n)}`);
      } else deny(`unsupported assignment ${this.text(n)}`);
    }
    value ??= literalWord('');
    const problem = kind === 'env' ? envAssignmentProblem(name, value) : shellAssignmentProblem(name, value);
    if (problem) deny(problem);
    if (top && value.value !== null) this.track(name, n.end, this.src.length, [value]);
  }

  private declaration(n: SNode): void {
    const keyword = n.children.find((c) => !c.named)?.type ?? '';
    if (keyword === 'local') deny('local only makes sense in functions, which are not allowed');
    const options: string[] = [];
    const names: string[] = [];
    const assigns: SNode[] = [];
    for (const c of joinAdjacent(n.children.filter((k) => k.named && k.type !== 'comment'))) {
      if (c.type === 'variable_assignment') assigns.push(c);
      else if (c.type === 'variable_name') names.push(this.text(c));
      else if (c.type === 'comment') this.comment(c);
      else {
        const w = resolveWord(this, c);
        if (w.value === null) deny(`${keyword}: ${w.text} is computed at run time`);
        if (w.value.startsWith('-')) options.push(w.value);
        else if (keyword === 'export' && w.value.includes('=')) names.push(w.value);
        else names.push(plainName(w, keyword));
      }
    }
    if (keyword === 'export') {
      for (const o of options) if (!/^-[pn]+$/.test(o)) deny(`export ${o} is not allowed`);
      for (const nm of names) {
        const problem = envAssignmentProblem(nm, null);
        if (problem) deny(`export ${nm}: ${problem}`);
      }
      for (const a of assigns) this.assignment(a, 'env');
      return;
    }
    if (assigns.length) deny(`${keyword} changes variables`);
    const listing =
      options.length > 0 &&
      options.every((o) => /^-[pfF]+$/.test(o) && (keyword !== 'readonly' || o === '-p'));
    if (!listing && (options.length || names.length))
      deny(`${keyword} changes variables (only ${keyword} -p lists them)`);
  }

  private unset(n: SNode): void {
    for (const c of joinAdjacent(n.children.filter((k) => k.named && k.type !== 'comment'))) {
      const w = c.type === 'variable_name' ? literalWord(this.text(c)) : resolveWord(this, c);
      if (w.value === null) deny(`unset: ${w.text} is computed at run time`);
      if (w.value === '-v' || w.value === '-n') continue;
      if (w.value.startsWith('-')) deny(`unset ${w.value} is not allowed`);
      plainName(w, 'unset');
      if (!isSafeShellVar(w.value)) deny(`unset ${w.value} changes the environment of later commands`);
    }
  }

  private test(n: SNode): void {
    const open = n.children[0]?.type;
    // `[` and `[[` are words: bash needs blanks around them (`[ab]` is a glob, not a test).
    const first = n.children[0];
    const last = n.children.at(-1);
    if (
      !first ||
      !last ||
      !/\s/.test(this.src[first.end] ?? '') ||
      !/\s/.test(this.src[last.start - 1] ?? '')
    )
      deny(
        `${JSON.stringify(this.text(n).slice(0, 20))} is not a test for bash (blanks are needed inside the brackets)`,
      );
    if (open === '[[') return this.doubleTest(n);
    if (open !== '[') deny('unsupported test syntax');
    // Single brackets are the `[` command: flatten back to words and check them as such.
    const leaves: SNode[] = [];
    const flatten = (k: SNode): void => {
      if (!k.named) {
        if (k.type === '[' || k.type === ']') return;
        if (TEST_LEAF_TOKENS.has(k.type)) {
          leaves.push(k);
          return;
        }
        deny(`inside [ ], ${k.type} is a shell operator, not a test argument`);
      }
      if (k.type === 'binary_expression' || k.type === 'unary_expression') {
        for (const c of k.children) flatten(c);
        return;
      }
      if (k.type === 'parenthesized_expression') deny('( inside [ ] must be quoted');
      if (k.type === 'comment') deny('a comment inside [ ]');
      leaves.push(k);
    };
    for (const c of n.children.slice(1)) flatten(c);
    if (n.children.at(-1)?.type !== ']') deny('[ without a closing ]');
    const words: Word[] = [literalWord('[')];
    for (const k of joinAdjacent(leaves)) {
      if (!k.named || k.type === 'test_operator') words.push(literalWord(this.text(k)));
      else if (k.type === 'regex') {
        const t = this.text(k);
        if (/[`$\\'"]/.test(t)) deny(`unsupported word in a test: ${t}`);
        words.push(literalWord(t));
      } else words.push(resolveWord(this, k));
    }
    words.push(literalWord(']'));
    this.record(words, this.text(n));
    this.checkArgv(words, { stdinData: false });
  }

  private doubleTest(n: SNode): void {
    const visit = (k: SNode): void => {
      if (!k.named) {
        if (!DOUBLE_TEST_TOKENS.has(k.type)) deny(`unsupported syntax in [[ ]]: ${k.type}`);
        return;
      }
      switch (k.type) {
        case 'binary_expression': {
          const op = k.children.find((c) => c.field === 'operator');
          const opText = op ? this.text(op) : '';
          if (ARITH_TEST_OPS.has(opText)) {
            for (const side of k.children.filter((c) => c.field === 'left' || c.field === 'right')) {
              const w = resolveWord(this, side);
              if (w.value === null || !/^-?\d+$/.test(w.value))
                deny(
                  `[[ ${opText} ]] evaluates ${side.type === 'word' ? 'variable names' : show(w)} as arithmetic, which can run commands (use [ ] or compare strings)`,
                );
            }
            return;
          }
          for (const c of k.children) if (c !== op || op.type === 'test_operator') visit(c);
          return;
        }
        case 'unary_expression':
        case 'parenthesized_expression':
          for (const c of k.children) visit(c);
          return;
        case 'test_operator': {
          const t = this.text(k);
          if (t === '-v' || t === '-R') deny(`[[ ${t} ]] evaluates array subscripts, which can run commands`);
          return;
        }
        case 'regex': {
          const t = this.text(k);
          if (/`|\$[({[]/.test(t)) deny(`an expansion in the pattern ${t} the parser could not place`);
          return;
        }
        case 'comment':
          return this.comment(k);
        default:
          resolveWord(this, k);
      }
    };
    for (const c of n.children) visit(c);
  }
}

/**
 * bash opens a network connection for a redirection to `/dev/tcp/HOST/PORT` or
 * `/dev/udp/HOST/PORT`, matching the expanded target as text. So a target is refused when it is
 * such a path, when it is computed and could expand to one (`/dev/tcp/$h/$p`, `$f`, `"$(...)"`,
 * `/dev/{tcp,x}/...`, globs), and when it starts with a tilde form that expands to a directory
 * the command chose (`~+` is $PWD, `~-` $OLDPWD, `~1` the directory stack: `cd /dev; < ~+/tcp/...`).
 * Paths with a `tcp/` or `udp/` component are refused too (`cd /dev; < tcp/h/p`, `//dev/tcp/...`):
 * bash does not open those as sockets today, but nothing reads there.
 */
function socketTarget(w: Word): void {
  const why = `${show(w)}: a redirection to /dev/tcp or /dev/udp opens a network connection`;
  if (/(^|\/)(tcp|udp)\//.test(w.value ?? w.text)) deny(`redirection from ${why}`);
  if (w.value !== null) return;
  if (w.tilde) {
    if (!/^~([A-Za-z_][A-Za-z0-9_.-]*)?(\/|$)/.test(w.text))
      deny(
        `redirection from ${show(w)}: ~+, ~- and ~N expand to a directory the command chose (it may be /dev)`,
      );
    return;
  }
  if (mayStartWith(w, '/dev/tcp/') || mayStartWith(w, '/dev/udp/') || /(^|\/)(tcp|udp)\//.test(w.prefix))
    deny(
      `the redirection target ${show(w)} is computed and could name /dev/tcp or /dev/udp (a network connection)`,
    );
}

/**
 * tree-sitter-bash sometimes splits one bash word into two nodes (`"-"\i` is one word, `-i`, to
 * bash). Nodes that touch are joined back into one word here.
 */
function joinAdjacent(nodes: SNode[]): SNode[] {
  const out: SNode[] = [];
  for (const n of nodes) {
    const last = out.at(-1);
    if (last && last.end === n.start) {
      if (!last.named || !n.named) deny('ambiguous word boundary');
      out[out.length - 1] = {
        type: 'concatenation',
        named: true,
        field: last.field,
        start: last.start,
        end: n.end,
        missing: false,
        children: [last, n],
      };
    } else out.push(n);
  }
  return out;
}

const QUOTED_CONTEXT =
  /^(raw_string|string|string_content|heredoc_body|heredoc_content|comment|translated_string|ansi_c_string)$/;
const WORD_CONTEXT = /^(word|concatenation|number|regex|extglob_pattern)$/;

/**
 * Backslashes before a newline, space or tab where tree-sitter and bash disagree: bash joins
 * words across `\<newline>` and keeps `\ ` as a blank inside a word, while tree-sitter may treat
 * both as whitespace between words.
 */
function checkEscapedBlanks(src: string, root: SNode): void {
  const re = /\\[\n \t]/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let k = m.index;
    let slashes = 0;
    while (k > 0 && src[k - 1] === '\\') {
      k--;
      slashes++;
    }
    if (slashes % 2 === 1) continue; // an escaped backslash, then a blank
    const inside = innermost(root, m.index);
    if (inside && QUOTED_CONTEXT.test(inside)) continue;
    if (src[m.index + 1] === '\n') {
      // Only `word \` (a blank or an operator before the backslash): glued to a word, bash joins
      // the next line onto it (`awk\<newline> 2>x 'prog'` runs awk on 'prog', not on "2").
      const before = src[m.index - 1] ?? ' ';
      let escapes = 0;
      for (let j = m.index - 2; j >= 0 && src[j] === '\\'; j--) escapes++;
      if (!/[\s|&;()]/.test(before) || escapes % 2 === 1) deny('a line continuation glued to a word');
      continue;
    }
    if (!inside || !WORD_CONTEXT.test(inside)) deny('an escaped blank outside a word');
  }
}

/** Nodes whose text between children is literal content rather than separators. */
const GAP_EXEMPT = new Set([
  'string',
  'raw_string',
  'ansi_c_string',
  'translated_string',
  'heredoc_body',
  'heredoc_content',
  'heredoc_start',
  'heredoc_end',
  'word',
  'regex',
  'comment',
  'extglob_pattern',
  'string_content',
  'number',
  'expansion',
  'arithmetic_expansion',
  'simple_expansion',
  'variable_name',
  'special_variable_name',
  'test_operator',
  'file_descriptor',
  'brace_expression',
]);

/** Nodes that are (parts of) one simple command. */
const ENDS_AT_COMMENT = new Set([
  'command',
  'redirected_statement',
  'file_redirect',
  'heredoc_redirect',
  'herestring_redirect',
  'test_command',
  'declaration_command',
  'unset_command',
  'variable_assignments',
  'variable_assignment',
  'concatenation',
]);

/**
 * Every character outside literal content must belong to some node: tree-sitter-bash can drop a
 * word it did not understand (`ls - 2>&-` loses the `-`) and bash would still pass it on.
 */
function checkCoverage(src: string, root: SNode): void {
  const blank = (from: number, to: number) => {
    const gap = src.slice(from, to);
    if (gap && !/^(?:[ \t\n]|\\\n)*$/.test(gap))
      deny(`the parser skipped ${JSON.stringify(gap.trim().slice(0, 20))}`);
  };
  blank(0, root.start);
  blank(root.end, src.length);
  const visit = (n: SNode): void => {
    if (!n.children.length) return;
    if (ENDS_AT_COMMENT.has(n.type)) {
      // A comment ends the command at its newline: nothing of the command may follow it.
      const at = n.children.findIndex((c) => c.type === 'comment');
      if (
        at >= 0 &&
        n.children.slice(at + 1).some((c) => !/^(comment|heredoc_body|heredoc_end)$/.test(c.type))
      )
        deny(AFTER_COMMENT);
    }
    if (GAP_EXEMPT.has(n.type)) {
      for (const c of n.children) visit(c);
      return;
    }
    // Inside one simple command, a newline (not escaped) between its parts would have ended it.
    const oneLine = ENDS_AT_COMMENT.has(n.type) && n.type !== 'heredoc_redirect';
    let pos = n.start;
    for (const c of n.children) {
      if (n.type === 'heredoc_redirect' && (c.type === 'heredoc_body' || c.type === 'heredoc_end')) {
        pos = c.end;
        continue;
      }
      blank(pos, c.start);
      if (oneLine && /(^|[^\\])\n/.test(src.slice(pos, c.start)) && c.type !== 'comment') deny(CONTINUED);
      visit(c);
      pos = Math.max(pos, c.end);
    }
    blank(pos, n.end);
  };
  visit(root);
}

function innermost(root: SNode, pos: number): string | null {
  let node: SNode | null = null;
  let cur: SNode | undefined = root;
  while (cur) {
    node = cur;
    cur = cur.children.find((c) => c.start <= pos && pos < c.end);
  }
  return node === root ? null : (node?.type ?? null);
}

function firstError(root: SNode): SNode | null {
  if (root.type === 'ERROR' || root.missing) return root;
  for (const c of root.children) {
    const e = firstError(c);
    if (e) return e;
  }
  return null;
}

function summarize(commands: CheckedCommand[]): string {
  const names = [...new Set(commands.map((c) => c.argv[0]).filter((n): n is string => !!n))];
  if (!names.length) return 'only shell syntax, no programs';
  const shown = names.slice(0, 6).join(', ');
  return `read-only: ${shown}${names.length > 6 ? `, and ${names.length - 6} more` : ''}`;
}

export function checkWithParser(
  parser: BashParser,
  command: string,
  mode: PolicyMode = 'read-only',
): PolicyDecision {
  const whole = checkOnce(parser, command, mode);
  if (whole.decision === 'deny' && (whole.reason === CONTINUED || whole.reason === AFTER_COMMENT))
    return checkByLines(parser, command, mode) ?? whole;
  return whole;
}

/**
 * tree-sitter-bash sometimes carries a pipeline's last command onto the next line (`a | b | c`,
 * newline, `d 2>&1` becomes `c d` with the redirect), or on past a comment. bash ends the command at that newline, so
 * the script is checked again cut at newlines into the smallest pieces that each parse on their
 * own; every piece must pass. A piece is never cut after a line ending in a backslash, an
 * incomplete construct (open quote, `|`, `&&`, `do`...) fails to parse and keeps growing, and
 * scripts with heredocs (whose bodies are data, not commands) are not cut at all.
 */
function checkByLines(parser: BashParser, command: string, mode: PolicyMode): PolicyDecision | null {
  if (/(?<!<)<<(?!<)/.test(command)) return null;
  const pieces: string[] = [];
  let cur: string | null = null;
  for (const line of command.split('\n')) {
    cur = cur === null ? line : `${cur}\n${line}`;
    if (/(?:^|[^\\])(?:\\\\)*\\$/.test(cur)) continue;
    if (parser.parse(cur).hasError) continue;
    pieces.push(cur);
    cur = null;
  }
  if (cur !== null || pieces.length < 2) return null;
  const commands: CheckedCommand[] = [];
  for (const piece of pieces) {
    if (!piece.trim() || /^\s*#[^\n]*$/.test(piece)) continue;
    const r = checkOnce(parser, piece, mode);
    commands.push(...r.commands);
    if (r.decision === 'deny') return { decision: 'deny', reason: r.reason, commands };
  }
  return { decision: 'allow', reason: summarize(commands), commands };
}

function checkOnce(parser: BashParser, command: string, mode: PolicyMode): PolicyDecision {
  const commands: CheckedCommand[] = [];
  try {
    if (mode !== 'read-only') deny(`unknown policy mode ${String(mode)}`);
    if (typeof command !== 'string') deny('the command is not a string');
    if (command.length > MAX_LENGTH) deny('the command is too long to check');
    if (!command.trim()) deny('empty command');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(command)) deny('control characters are not allowed');
    const { root, hasError } = parser.parse(command);
    if (hasError) {
      const e = firstError(root);
      const near = e ? command.slice(e.start, Math.min(e.end, e.start + 30)) : '';
      deny(
        e?.missing
          ? `syntax error: missing ${e.type}`
          : `syntax error${near ? ` near ${JSON.stringify(near)}` : ''}`,
      );
    }
    checkEscapedBlanks(command, root);
    checkCoverage(command, root);
    const a = new Analyzer(command);
    try {
      a.statement(root);
    } finally {
      commands.push(...a.commands);
    }
    return { decision: 'allow', reason: summarize(commands), commands };
  } catch (err) {
    if (err instanceof Deny) return { decision: 'deny', reason: err.reason, commands };
    const msg =
      err instanceof RangeError
        ? 'the command is nested too deeply'
        : `could not check the command (${(err as Error).message})`;
    return { decision: 'deny', reason: msg, commands };
  }
}

/** Load tree-sitter-bash once and return a synchronous checker. */
export async function createShellPolicy(): Promise<ShellPolicy> {
  const parser = await loadBashParser();
  return {
    check: (command: string, mode: PolicyMode = 'read-only') => checkWithParser(parser, command, mode),
  };
}
