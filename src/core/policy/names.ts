/**
 * Variable names handed to bash builtins.
 *
 * Wherever bash takes a variable NAME it also accepts `name[subscript]`, and it evaluates an
 * indexed-array subscript as arithmetic, which expands `$(...)`: `wait -p 'a[$(id>/tmp/x)]' $!`,
 * `unset 'a[$(...)]'`, `declare 'a[$(...)]=1'`, `b=([x]=1)` with x='a[$(...)]', `{a[$(...)]}>f`
 * all run a command hidden in quotes. So every place where bash reads a name gets one check: a
 * plain identifier written literally (`plainName`), and bash's arithmetic contexts are refused
 * unless every operand is a literal number (see words.ts and shell.ts).
 *
 * `BASH_BUILTINS` is the audit behind this: every builtin and reserved word of bash 5.2, with
 * how it reads its arguments. The policy tests check it against the installed bash (nothing
 * missing), run the "numbers"/"text" builtins in real bash with subscript payloads (nothing may
 * run), and deny every generated variant of the "names" ones.
 */
import { deny, show, type Word } from './types.ts';
import { isSafeShellVar } from './vars.ts';

/** A shell identifier: what bash calls a name, without any subscript. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The literal identifier in `w`, for a place where bash reads a variable name. With `sets`, the
 * name must also be one a read-only command may assign (a lowercase shell variable, see vars.ts).
 */
export function plainName(w: Word, who: string, sets = false): string {
  if (w.value === null)
    deny(
      `${who}: the variable name ${show(w)} is computed at run time (bash would evaluate a subscript in it)`,
    );
  if (!IDENTIFIER.test(w.value))
    deny(
      `${who}: ${w.value} is not a plain variable name${w.value.includes('[') ? ' (bash evaluates array subscripts as arithmetic, which can run commands)' : ''}`,
    );
  if (sets && !isSafeShellVar(w.value))
    deny(`${who} would set ${w.value}; only lowercase shell variables may be set`);
  return w.value;
}

/**
 * How a builtin reads its arguments:
 * - `names`: some arguments are variable names (or arithmetic); each such place is listed in
 *   `where` and checked with `plainName`, refused, or limited to literal numbers;
 * - `numbers`: numeric arguments that bash parses as plain integers, never as arithmetic;
 * - `code`: runs commands or code (refused, or limited to forms that do not);
 * - `text`: arguments are paths, patterns, option or command names, never evaluated.
 */
export type BuiltinArgs = { reads: 'names' | 'numbers' | 'code' | 'text'; where: string };

export const BASH_BUILTINS: Record<string, BuiltinArgs> = {
  // Builtins that take variable names.
  read: { reads: 'names', where: 'NAME operands and -a NAME: plain lowercase identifiers' },
  mapfile: { reads: 'names', where: 'the ARRAY operand: a plain lowercase identifier; -C refused' },
  readarray: { reads: 'names', where: 'as mapfile' },
  printf: { reads: 'names', where: '-v NAME: refused' },
  wait: { reads: 'names', where: '-p NAME: a plain lowercase identifier' },
  getopts: { reads: 'names', where: 'the NAME operand: getopts is refused' },
  declare: { reads: 'names', where: 'only -p/-f/-F with plain identifiers (listing)' },
  typeset: { reads: 'names', where: 'as declare' },
  local: { reads: 'names', where: 'refused (functions are)' },
  export: { reads: 'names', where: 'plain names of formatting variables, and -p' },
  readonly: { reads: 'names', where: 'only -p with plain identifiers' },
  unset: { reads: 'names', where: 'plain lowercase identifiers (-v, -n)' },
  let: { reads: 'names', where: 'arithmetic: refused' },
  test: { reads: 'names', where: '-v and -R take names: refused (-eq and the like read plain integers)' },
  '[': { reads: 'names', where: 'as test' },
  // Builtins whose numbers bash reads as plain integers (legal_number / strtoimax).
  break: { reads: 'numbers', where: 'N' },
  continue: { reads: 'numbers', where: 'N' },
  exit: { reads: 'numbers', where: 'N' },
  return: { reads: 'numbers', where: 'N' },
  shift: { reads: 'numbers', where: 'N' },
  caller: { reads: 'numbers', where: 'EXPR is a frame number' },
  dirs: { reads: 'numbers', where: '+N / -N' },
  pushd: { reads: 'numbers', where: '+N / -N, or a directory' },
  popd: { reads: 'numbers', where: '+N / -N' },
  ulimit: { reads: 'numbers', where: 'limits (values refused: they change limits)' },
  umask: { reads: 'numbers', where: 'an octal mode (values refused)' },
  kill: { reads: 'numbers', where: 'signals and pids (only -l and -0)' },
  history: { reads: 'numbers', where: 'a count' },
  times: { reads: 'numbers', where: 'no arguments' },
  // Builtins that run commands or code.
  eval: { reads: 'code', where: 'refused' },
  source: { reads: 'code', where: 'refused' },
  '.': { reads: 'code', where: 'refused' },
  exec: { reads: 'code', where: 'refused' },
  command: { reads: 'code', where: 'the command is checked by the policy' },
  builtin: { reads: 'code', where: 'the builtin is checked by the policy' },
  trap: { reads: 'code', where: 'only -p and -l (listing)' },
  bind: { reads: 'code', where: 'refused (bind -x runs commands)' },
  complete: { reads: 'code', where: 'refused (-C, -F run commands)' },
  compgen: { reads: 'code', where: 'refused (-C, -F run commands)' },
  compopt: { reads: 'code', where: 'refused' },
  enable: { reads: 'code', where: 'refused (-f loads a shared object)' },
  fc: { reads: 'code', where: 'refused (reruns commands)' },
  jobs: { reads: 'code', where: '-x runs a command: refused; jobspecs are text' },
  fg: { reads: 'code', where: 'refused' },
  bg: { reads: 'code', where: 'refused' },
  disown: { reads: 'code', where: 'refused' },
  suspend: { reads: 'code', where: 'refused' },
  logout: { reads: 'code', where: 'refused' },
  // Builtins whose arguments are never evaluated.
  ':': { reads: 'text', where: 'ignored' },
  true: { reads: 'text', where: 'ignored' },
  false: { reads: 'text', where: 'ignored' },
  echo: { reads: 'text', where: 'printed' },
  pwd: { reads: 'text', where: '-L / -P' },
  cd: { reads: 'text', where: 'a directory' },
  alias: { reads: 'text', where: 'alias names (definitions refused)' },
  unalias: { reads: 'text', where: 'refused' },
  hash: { reads: 'text', where: 'only -l / -t' },
  help: { reads: 'text', where: 'patterns' },
  type: { reads: 'text', where: 'command names' },
  set: { reads: 'text', where: 'listed options only' },
  shopt: { reads: 'text', where: 'listed options only' },
};

/**
 * Reserved words. `for NAME`, `select NAME`, `coproc NAME`, `[[ -v NAME ]]`, `((...))` and the
 * `{NAME}>file` redirection take names too.
 */
export const BASH_KEYWORDS: Record<string, BuiltinArgs> = {
  for: { reads: 'names', where: 'for NAME: a plain lowercase identifier; for ((...)) refused' },
  select: { reads: 'names', where: 'refused (interactive)' },
  coproc: { reads: 'names', where: 'refused' },
  '[[': { reads: 'names', where: '-v/-R refused; -eq and friends only between literal numbers' },
  ']]': { reads: 'text', where: 'closes [[' },
  time: { reads: 'code', where: 'the timed command is checked' },
  function: { reads: 'code', where: 'refused' },
  if: { reads: 'text', where: 'syntax' },
  then: { reads: 'text', where: 'syntax' },
  else: { reads: 'text', where: 'syntax' },
  elif: { reads: 'text', where: 'syntax' },
  fi: { reads: 'text', where: 'syntax' },
  case: { reads: 'text', where: 'syntax' },
  esac: { reads: 'text', where: 'syntax' },
  while: { reads: 'text', where: 'syntax' },
  until: { reads: 'text', where: 'syntax' },
  do: { reads: 'text', where: 'syntax' },
  done: { reads: 'text', where: 'syntax' },
  in: { reads: 'text', where: 'syntax' },
  '{': { reads: 'text', where: 'syntax; {NAME}> redirections refused' },
  '}': { reads: 'text', where: 'syntax' },
  '!': { reads: 'text', where: 'syntax' },
};
