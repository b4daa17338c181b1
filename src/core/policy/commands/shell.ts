/** Shell builtins and wrappers that run another command. */
import { has, parseOptions, type OptionSpec } from '../options.ts';
import { allow, refuse, refuseButVersion, requireLiteral, type Rule } from '../rule.ts';
import { deny, literalWord, mayStartWith, runtimeWords, show, type Word } from '../types.ts';
import { plainName } from '../names.ts';
import { envAssignmentProblem, isSafeShellVar } from '../vars.ts';

const listingOnly =
  (what: string, ok: string[]): Rule =>
  (args) => {
    for (const a of args) {
      if (a.value === null || !ok.includes(a.value)) deny(`${what}`);
    }
  };

/** Names given to read/mapfile/wait -p and the like: plain lowercase identifiers. */
const safeVarName = (w: Word, who: string): void => void plainName(w, who, true);

const TEST_INTEGER_OPS = new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge']);

const testRule: Rule = (args, ctx) => {
  const list = ctx.name === '[' ? args.slice(0, -1) : args;
  if (ctx.name === '[' && args.at(-1)?.value !== ']') deny('[ without a closing ]');
  for (const a of list) {
    if (a.value === '-v' || a.value === '-R')
      deny(`test ${a.value} evaluates array subscripts, which can run commands`);
    if (a.value === null && a.multi && a.prefix === '')
      deny(`quote ${a.text}: an unquoted expansion in test could inject -v`);
  }
  // -eq and friends read plain integers (never arithmetic, unlike [[ ]]); a literal operand
  // that is not one is refused rather than trusted to that.
  list.forEach((a, i) => {
    if (!TEST_INTEGER_OPS.has(a.value ?? '')) return;
    for (const side of [list[i - 1], list[i + 1]])
      if (side?.value != null && !/^\s*[-+]?\d+\s*$/.test(side.value))
        deny(`test ${a.value}: ${side.value} is not an integer`);
  });
};

const SET_LETTERS = 'abefhmnuvxBCEHPT';
const SET_O = new Set([
  'allexport',
  'braceexpand',
  'errexit',
  'errtrace',
  'functrace',
  'hashall',
  'monitor',
  'noclobber',
  'noexec',
  'noglob',
  'notify',
  'nounset',
  'physical',
  'pipefail',
  'verbose',
  'xtrace',
]);

const setRule: Rule = (args) => {
  for (let i = 0; i < args.length; i++) {
    const w = args[i]!;
    const v = w.value;
    if (v === null) {
      if (mayStartWith(w) || mayStartWith(w, '+')) deny(`set: ${show(w)} could become an option`);
      return; // positional parameters
    }
    if (v === '--' || v === '-') return;
    if (!/^[-+]/.test(v)) return;
    for (const ch of v.slice(1)) {
      if (ch === 'o') {
        const name = args[i + 1];
        if (!name) return; // set -o lists the options
        const n = requireLiteral(name, 'set', 'option');
        if (!SET_O.has(n)) deny(`set -o ${n} is not allowed`);
        i++;
        continue;
      }
      if (!SET_LETTERS.includes(ch)) deny(`set ${v[0]}${ch} is not allowed`);
    }
  }
};

const SHOPT_OK = new Set([
  'nullglob',
  'dotglob',
  'globstar',
  'nocaseglob',
  'failglob',
  'nocasematch',
  'globasciiranges',
]);

const shoptRule: Rule = (args) => {
  let setting = false;
  for (const a of args) {
    const v = requireLiteral(a, 'shopt', 'argument');
    if (v === '-p' || v === '-q') continue;
    if (v === '-s' || v === '-u') {
      setting = true;
      continue;
    }
    if (v.startsWith('-')) deny(`shopt ${v} is not allowed`);
    if (setting && !SHOPT_OK.has(v)) deny(`shopt ${v} changes how later commands are read`);
  }
};

/** Special parameters that always hold a number: `$?`, `$!`, `$#`, `$$`. */
const NUMERIC_PARAM = /^"?\$([?!#$]|\{[?!#$]\})"?$/;

/**
 * A number argument of a builtin (`shift 2`, `read -t 5`, `wait 123`). bash reads these as
 * plain integers, never as arithmetic, but the policy does not rely on it: a literal must be a
 * number and a computed one one of the special parameters that always are.
 */
function numberArg(w: Word, who: string, pattern = /^[-+]?\d+$/): void {
  if (w.value !== null ? pattern.test(w.value) : NUMERIC_PARAM.test(w.text)) return;
  deny(`${who}: ${show(w)} is not a number`);
}

/** Builtins whose arguments are only numbers: break, continue, exit, return, shift, caller. */
const numbersOnly =
  (max: number): Rule =>
  (args, ctx) => {
    if (args.length > max) deny(`${ctx.name}: too many arguments`);
    for (const w of args) numberArg(w, ctx.name);
  };

/** dirs, pushd, popd: `+N`/`-N` pick a stack entry; pushd also takes a directory. */
const dirStackRule: Rule = (args, ctx) => {
  for (const w of args) {
    const v = w.value;
    if (v === null) {
      if (ctx.name !== 'pushd' || mayStartWith(w) || mayStartWith(w, '+'))
        deny(`${ctx.name}: ${show(w)} is computed at run time`);
      continue;
    }
    if (/^[-+]\d+$/.test(v) || /^-[clpvn]+$/.test(v) || v === '--') continue;
    if (ctx.name === 'pushd' && !/^[-+]/.test(v)) continue;
    deny(`${ctx.name}: ${v} is not a stack entry (+N or -N)`);
  }
};

const READ_SPEC: OptionSpec = { short: 'a:d:i:n:N:p:t:u:ersE' };

const readRule: Rule = (args) => {
  const p = parseOptions(args, READ_SPEC, 'read');
  for (const o of p.options) {
    if (o.name === '-a') safeVarName(o.value!, 'read');
    else if (o.name === '-t') numberArg(o.value!, 'read -t', /^\d+(\.\d+)?$/);
    else if (/^-[nNu]$/.test(o.name)) numberArg(o.value!, `read ${o.name}`);
  }
  for (const w of p.operands) safeVarName(w, 'read');
};

const MAPFILE_SPEC: OptionSpec = {
  short: 'd:n:O:s:tu:c:',
  deny: { '-C': 'mapfile -C runs a callback command' },
};

const mapfileRule: Rule = (args, ctx) => {
  const p = parseOptions(args, MAPFILE_SPEC, ctx.name);
  for (const o of p.options) if (/^-[nOscu]$/.test(o.name)) numberArg(o.value!, `${ctx.name} ${o.name}`);
  for (const w of p.operands) safeVarName(w, ctx.name);
};

/** `wait [-fn] [-p NAME] [id ...]`: ids are read as plain integers or job specs; NAME is a name. */
const WAIT_SPEC: OptionSpec = { short: 'fnp:' };

/** `$!` (the last background pid) is always a number: it cannot turn into an option. */
const LAST_PID = /^"?\$(!|\{!\})"?$/;

const waitRule: Rule = (args) => {
  const words = args.map((w) => (w.value === null && LAST_PID.test(w.text) ? literalWord('1') : w));
  const p = parseOptions(words, WAIT_SPEC, 'wait');
  for (const o of p.options) if (o.name === '-p') safeVarName(o.value!, 'wait -p');
  for (const w of p.operands) numberArg(w, 'wait', /^(\d+|%[%+-]?[\w.-]*)$/);
};

/** `jobs [-lnprs] [jobspec ...]`; `jobs -x command` runs the command. */
const jobsRule: Rule = (args) => {
  const p = parseOptions(args, { short: 'lnprs', deny: { '-x': 'jobs -x runs a command' } }, 'jobs');
  for (const w of p.operands) numberArg(w, 'jobs', /^(\d+|%[%+-]?[\w.-]*)$/);
};

const printfRule: Rule = (args) => {
  let first = args[0];
  if (first?.value === '--') first = args[1];
  if (!first) return;
  if (first.value === null) {
    if (mayStartWith(first)) deny(`printf: the format ${show(first)} is computed and could become -v`);
    return;
  }
  if (first.value === '-v' || first.value.startsWith('-v')) deny('printf -v assigns a variable');
};

/** `time [-p] [--] command`: bash's keyword, and /usr/bin/time when given by path. */
const timeRule: Rule = (args, ctx) => {
  let i = 0;
  while (i < args.length && (args[i]!.value === '-p' || args[i]!.value === '--')) i++;
  const next = args[i];
  if (!next) return;
  if (mayStartWith(next)) deny(`time ${show(next)}: only time -p is allowed`);
  ctx.run(args.slice(i));
};

const commandRule: Rule = (args, ctx) => {
  let i = 0;
  let query = false;
  for (; i < args.length; i++) {
    const v = args[i]!.value;
    if (v === null) {
      if (mayStartWith(args[i]!)) deny(`command: ${show(args[i]!)} could become an option`);
      break;
    }
    if (v === '--') {
      i++;
      break;
    }
    if (!/^-[pvV]+$/.test(v)) break;
    if (/[vV]/.test(v)) query = true;
  }
  if (query || i >= args.length) return;
  ctx.run(args.slice(i));
};

const builtinRule: Rule = (args, ctx) => {
  if (!args.length) return;
  ctx.run(args);
};

const TIMEOUT_SPEC: OptionSpec = {
  short: 'k:s:v',
  long: ['kill-after=', 'signal=', 'preserve-status', 'foreground', 'verbose', 'help', 'version'],
  stopAtOperand: true,
};

const timeoutRule: Rule = (args, ctx) => {
  const p = parseOptions(args, TIMEOUT_SPEC, 'timeout');
  if (has(p, '--help', '--version')) return;
  const rest = args.slice(p.rest);
  if (rest.length < 2) deny('timeout without a command');
  ctx.run(rest.slice(1));
};

const NICE_SPEC: OptionSpec = {
  short: 'n:',
  long: ['adjustment=', 'help', 'version'],
  stopAtOperand: true,
  numericFlags: true,
};

const niceRule: Rule = (args, ctx) => {
  const p = parseOptions(args, NICE_SPEC, 'nice');
  const rest = args.slice(p.rest);
  if (rest.length) ctx.run(rest);
};

const STDBUF_SPEC: OptionSpec = {
  short: 'i:o:e:',
  long: ['input=', 'output=', 'error=', 'help', 'version'],
  stopAtOperand: true,
};

const stdbufRule: Rule = (args, ctx) => {
  const p = parseOptions(args, STDBUF_SPEC, 'stdbuf');
  if (has(p, '--help', '--version')) return;
  const rest = args.slice(p.rest);
  if (!rest.length) deny('stdbuf without a command');
  ctx.run(rest);
};

const ENV_SPEC: OptionSpec = {
  short: 'i0u:C:v',
  long: [
    'ignore-environment',
    'null',
    'unset=',
    'chdir=',
    'debug',
    'help',
    'version',
    'list-signal-handling',
    'default-signal=?',
    'ignore-signal=?',
    'block-signal=?',
  ],
  deny: {
    '-S': 'env -S splits a string into a command line',
    '--split-string': 'env --split-string splits a string into a command line',
    '-P': 'env -P searches another PATH',
    '-a': 'env -a sets the program name',
    '--argv0': 'env --argv0 sets the program name',
  },
  stopAtOperand: true,
};

/** Variables env -u may remove: formatting ones (PATH, HOME and the like stay). */
const isSafeUnset = (name: string): boolean => envAssignmentProblem(name, null) === null && name !== 'PATH';

const envRule: Rule = (args, ctx) => {
  const p = parseOptions(args, ENV_SPEC, 'env');
  // Without PATH, the program is looked up in a built-in path, which older C libraries start with
  // the current directory.
  const clears = args[p.rest]?.value === '-' || has(p, '-i', '--ignore-environment');
  if (clears && !args.slice(p.rest).some((w) => w.value?.startsWith('PATH=')))
    deny('env -i clears PATH, so the command may be found in the current directory (set PATH= too)');
  for (const o of p.options) {
    if (o.name !== '-u' && o.name !== '--unset') continue;
    const name = o.value?.value;
    if (name == null || !isSafeUnset(name))
      deny(`env -u ${o.value ? show(o.value) : ''} removes a variable programs rely on`);
  }
  let i = p.rest;
  for (; i < args.length; i++) {
    const w = args[i]!;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(w.value ?? w.prefix);
    if (!m) {
      if (w.value === null) deny(`env: ${show(w)} is computed at run time and could be a command`);
      break;
    }
    if (w.multi) deny(`env: ${show(w)} may expand to several words`);
    const name = m[1]!;
    let value: Word = w;
    if (w.value !== null) {
      const val = w.value.slice(name.length + 1);
      value = { ...w, value: val, text: val, prefix: val };
    }
    const problem = envAssignmentProblem(name, value);
    if (problem) deny(`env: ${problem}`);
  }
  if (i < args.length) ctx.run(args.slice(i));
};

const XARGS_SPEC: OptionSpec = {
  short: '0a:d:E:e::I:i::L:l::n:P:rs:tx',
  long: [
    'null',
    'arg-file=',
    'delimiter=',
    'eof=?',
    'replace=?',
    'max-lines=?',
    'max-args=',
    'max-procs=',
    'no-run-if-empty',
    'max-chars=',
    'verbose',
    'exit',
    'show-limits',
    'help',
    'version',
  ],
  deny: {
    '-p': 'xargs -p prompts on the terminal',
    '--interactive': 'xargs --interactive prompts on the terminal',
    '-o': 'xargs -o gives the command the terminal',
    '--open-tty': 'xargs --open-tty gives the command the terminal',
    '--process-slot-var': 'xargs --process-slot-var sets environment variables',
  },
  stopAtOperand: true,
};

const xargsRule: Rule = (args, ctx) => {
  const p = parseOptions(args, XARGS_SPEC, 'xargs');
  if (has(p, '--help', '--version', '--show-limits') && p.rest >= args.length) return;
  let replace: string | null = null;
  for (const o of p.options) {
    if (o.name === '-I' || o.name === '-i' || o.name === '--replace') {
      replace = o.value ? requireLiteral(o.value, 'xargs', 'replacement string') : '{}';
    }
  }
  let cmd = args.slice(p.rest);
  if (!cmd.length) cmd = [{ ...runtimeWords('echo'), value: 'echo', prefix: 'echo', multi: false }];
  if (replace !== null) {
    const r = replace;
    cmd = cmd.map((w) => {
      if (w.value === null || !w.value.includes(r)) return w;
      const before = w.value.slice(0, w.value.indexOf(r));
      return { ...w, value: null, prefix: before, multi: false };
    });
    if (cmd[0]!.value === null) deny('xargs: the command name comes from the input');
  } else {
    cmd = [...cmd, runtimeWords('<arguments from stdin>')];
  }
  // xargs gives the command /dev/null as stdin, unless items come from a file (-a).
  ctx.run(cmd, { stdinData: !has(p, '-a', '--arg-file') || ctx.stdinData });
};

const declarationRule: Rule = (args, ctx) => {
  const ok = ctx.name === 'export' || ctx.name === 'readonly' ? ['-p'] : ['-p', '-f', '-F'];
  for (const a of args) {
    const v = a.value;
    if (v === null) deny(`${ctx.name}: ${show(a)} is computed at run time`);
    if (v.startsWith('-')) {
      if (!ok.includes(v)) deny(`${ctx.name} ${v} changes variables`);
      continue;
    }
    if (v.includes('=')) deny(`${ctx.name} ${v} changes variables`);
    plainName(a, ctx.name);
    if (!args.some((x) => x.value === '-p')) deny(`${ctx.name} ${v} changes variables`);
  }
};

export const shellRules: Record<string, Rule> = {
  ':': allow,
  true: allow,
  false: allow,
  echo: allow,
  printf: printfRule,
  test: testRule,
  '[': testRule,
  pwd: allow,
  cd: allow,
  pushd: dirStackRule,
  popd: dirStackRule,
  dirs: dirStackRule,
  exit: numbersOnly(1),
  return: numbersOnly(1),
  break: numbersOnly(1),
  continue: numbersOnly(1),
  shift: numbersOnly(1),
  wait: waitRule,
  times: allow,
  jobs: jobsRule,
  caller: numbersOnly(1),
  help: allow,
  type: allow,
  which: allow,
  whereis: allow,
  hash: listingOnly('hash can change which program a name runs', ['-l', '-t']),
  alias: (args) => {
    for (const a of args) {
      if (a.value === null || a.value.includes('=')) deny('alias definitions are not allowed');
    }
  },
  trap: listingOnly('trap sets commands to run later', ['-p', '-l', '--']),
  set: setRule,
  shopt: shoptRule,
  ulimit: (args) => {
    for (const a of args) {
      if (a.value === null || !/^-[a-zA-Z]+$/.test(a.value)) deny('ulimit with a value changes limits');
    }
  },
  umask: listingOnly('umask with a value changes the file mode mask', ['-S', '-p']),
  read: readRule,
  mapfile: mapfileRule,
  readarray: mapfileRule,
  kill: (args) => {
    const first = args[0]?.value;
    const rest = args.slice(1);
    if (first === '-l' || first === '-L' || first === '--list' || first === '--table') {
      if (rest.every((a) => a.value !== null && /^\w+$/.test(a.value))) return;
    }
    // kill -0 only checks that processes exist; every pid must be a literal number, or a
    // later option could change the signal.
    if (first === '-0' && rest.length && rest.every((a) => a.value !== null && /^\d+$/.test(a.value))) return;
    deny('kill sends signals to processes');
  },
  export: declarationRule,
  declare: declarationRule,
  typeset: declarationRule,
  readonly: declarationRule,
  local: refuse('local only makes sense in functions, which are not allowed'),
  unset: (args) => {
    for (const a of args) {
      const v = requireLiteral(a, 'unset', 'argument');
      if (v === '-v' || v === '-n') continue;
      if (v.startsWith('-')) deny(`unset ${v} is not allowed`);
      plainName(a, 'unset');
      if (!isSafeShellVar(v)) deny(`unset ${v} changes the environment of later commands`);
    }
  },
  let: refuse('let evaluates arithmetic, which can run commands hidden in variables'),
  eval: refuse('eval runs a string as shell code'),
  source: refuse('source runs a file as shell code'),
  '.': refuse('. runs a file as shell code'),
  exec: refuse('exec replaces the shell or opens files'),
  enable: refuse('enable can load builtins from shared libraries'),
  fc: refuse('fc edits and reruns commands'),
  history: (args) => {
    if (args.length === 0 || (args.length === 1 && /^\d+$/.test(args[0]!.value ?? ''))) return;
    deny('history with options can write or clear the history file');
  },
  bind: refuse('bind changes key bindings'),
  complete: refuse('complete registers commands to run'),
  compgen: refuse('compgen can run commands and functions'),
  compopt: refuse('compopt changes completion'),
  coproc: refuse('coproc starts a background process'),
  disown: refuse('disown detaches jobs'),
  suspend: refuse('suspend stops the shell'),
  logout: refuse('logout is for login shells'),
  fg: refuse('fg resumes jobs'),
  bg: refuse('bg resumes jobs in the background'),
  getopts: refuse('getopts sets variables from arguments'),
  time: timeRule,
  command: commandRule,
  builtin: builtinRule,
  timeout: timeoutRule,
  nice: niceRule,
  stdbuf: stdbufRule,
  env: envRule,
  xargs: xargsRule,
  nohup: refuse('nohup detaches a command and may write nohup.out'),
  setsid: refuse('setsid starts a detached session'),
  sudo: refuse('sudo runs commands as another user; commands here run unprivileged on purpose'),
  doas: refuse('doas runs commands as another user'),
  su: refuse('su runs commands as another user'),
  runuser: refuse('runuser runs commands as another user'),
  pkexec: refuse('pkexec runs commands as another user'),
  sg: refuse('sg runs commands as another group'),
  newgrp: refuse('newgrp starts a shell with another group'),
  chroot: refuse('chroot runs commands in another root'),
  unshare: refuse('unshare runs commands in new namespaces'),
  nsenter: refuse('nsenter runs commands in other namespaces'),
  setpriv: refuse('setpriv runs commands with other privileges'),
  capsh: refuse('capsh runs commands with other capabilities'),
  'systemd-run': refuse('systemd-run starts units and commands'),
  flock: refuse('flock runs commands and creates lock files'),
  chrt: refuse('chrt changes scheduling or runs commands'),
  renice: refuse('renice changes process priorities'),
  watch: refuse('watch runs a command repeatedly through sh -c'),
  script: refuse('script writes a typescript file'),
  expect: refuse('expect runs scripts'),
  parallel: refuse('parallel runs commands through a shell'),
  strace: refuseButVersion('strace can tamper with processes and write files', '-V'),
  ltrace: refuse('ltrace runs and traces programs'),
  gdb: refuse('gdb can change running processes'),
  perf: refuse('perf runs programs and writes perf.data'),
  valgrind: refuse('valgrind runs programs'),
  busybox: refuse('busybox applets are not checked individually'),
  toybox: refuse('toybox applets are not checked individually'),
};
