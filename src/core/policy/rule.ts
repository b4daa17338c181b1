/** Building blocks for per-command rules. */
import { posix } from 'node:path';
import { parseOptions, type OptionSpec, type ParsedArgs } from './options.ts';
import { deny, show, type Word } from './types.ts';

export interface RuleContext {
  /** The command's name (basename when it was given as /usr/bin/name). */
  name: string;
  /**
   * Check a command line run by a wrapper (timeout, env, xargs...) with the whole policy. Its
   * stdin is the wrapper's unless `stdinData` says otherwise (xargs gives it /dev/null).
   */
  run(argv: Word[], opts?: { stdinData?: boolean }): void;
  /** This command's stdin is explicitly `< /dev/null` (or a here-string). */
  stdinData: boolean;
}

export type Rule = (args: Word[], ctx: RuleContext) => void;

/** Harmless whatever the arguments. */
export const allow: Rule = () => {};

export const refuse =
  (reason: string): Rule =>
  () =>
    deny(reason);

/** Clients refused for what they can do, except asking for their version (`--version` or `flags`). */
export const refuseButVersion =
  (reason: string, ...flags: string[]): Rule =>
  (args) => {
    if (args.length === 1 && args[0]!.value !== null && ['--version', ...flags].includes(args[0]!.value))
      return;
    deny(reason);
  };

/** Options per spec, then an optional further check. */
export function opts(spec: OptionSpec, then?: (p: ParsedArgs, ctx: RuleContext, args: Word[]) => void): Rule {
  return (args, ctx) => {
    const p = parseOptions(args, spec, ctx.name);
    then?.(p, ctx, args);
  };
}

/** A reader whose every option is harmless, except the ones in `deniedOptions`. */
export function reader(deniedOptions: Record<string, string> = {}, short = '', long: string[] = []): Rule {
  const spec: OptionSpec = { permissive: true, deny: deniedOptions, short, long };
  return opts(spec);
}

/** At most `n` operands, counting a word that may expand to several as too many. */
export function maxOperands(p: ParsedArgs, n: number, who: string, why: string): void {
  const count = p.operands.length;
  const multi = p.operands.some((w) => w.multi);
  if (count > n || (multi && count >= 1 && n < Infinity && (count > n - 1 || multi)))
    if (count > n || multi) deny(`${who} ${why}`);
}

export function noOperands(p: ParsedArgs, who: string, why: string): void {
  if (p.operands.length) deny(`${who} ${why}`);
}

/** The first operand as a literal, denying computed ones. */
export function literalVerb(w: Word | undefined, who: string): string | null {
  if (!w) return null;
  if (w.value === null) deny(`${who}: the subcommand ${show(w)} is computed at run time`);
  return w.value;
}

export function requireLiteral(w: Word, who: string, what: string): string {
  if (w.value === null) deny(`${who}: ${what} ${show(w)} is computed at run time`);
  return w.value;
}

/**
 * Tools of the form `tool [options] verb [args]` whose options may appear anywhere (getopt_long
 * with permutation, as in the systemd tools). `options` must list every option with its arity:
 * an option that is unknown here could swallow the verb, so it is denied.
 */
export function verbTool(cfg: {
  options: OptionSpec;
  /** Allowed verbs; a function may check the verb's arguments. */
  verbs: Record<string, true | ((rest: Word[], p: ParsedArgs, ctx: RuleContext) => void)>;
  /** Without a verb the tool only reads (systemctl lists units). */
  noVerb?: boolean;
  /** Why other verbs are denied, e.g. 'changes the service manager'. */
  denied: string;
}): Rule {
  return (args, ctx) => {
    const p = parseOptions(args, cfg.options, ctx.name);
    if (p.options.some((o) => o.name === '--help' || o.name === '--version' || o.name === '-h')) return;
    const verb = literalVerb(p.operands[0], ctx.name);
    if (verb === null) {
      if (cfg.noVerb) return;
      deny(`${ctx.name} without a subcommand`);
    }
    const check = cfg.verbs[verb];
    if (!check) deny(`${ctx.name} ${verb} ${cfg.denied}`);
    if (check !== true) check(p.operands.slice(1), p, ctx);
  };
}

/**
 * A configuration file given on the command line. A file that configures a program is code (nginx
 * load_module, haproxy lua-load, Apache LoadModule, BIND plugins, unbound python modules,
 * logrotate scripts, mysql pager, kubectl exec plugins...), so only the program's own
 * configuration, the files it would load when the service restarts, may be named: an absolute
 * path that stays inside one of `dirs` (after `..` is resolved). stdin, pipes, /dev/fd and /proc
 * paths, relative paths and files anywhere else are refused.
 */
export function configFile(w: Word | undefined, who: string, opt: string, dirs: readonly string[]): string {
  const v = w ? requireLiteral(w, who, `the file of ${opt}`) : '';
  const path = v.startsWith('/') ? posix.normalize(v) : '';
  if (
    !path ||
    !dirs.some((d) => path === d.replace(/\/$/, '') || path.startsWith(d.endsWith('/') ? d : `${d}/`))
  )
    deny(
      `${who} ${opt} ${v || '(missing)'}: a configuration file can load code or run commands; only ${who}'s own (${dirs.join(', ')})`,
    );
  return path;
}
