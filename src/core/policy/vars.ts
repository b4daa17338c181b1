/**
 * Which variables a read-only command may set.
 *
 * Shell variables: lowercase names only. Every variable bash or common programs treat as special
 * (PATH, IFS, LD_PRELOAD, BASH_ENV, PAGER, GIT_*, PS4, ...) is uppercase, and an uppercase name
 * that is already exported would change what later commands run. The lowercase proxy variables
 * and package-manager settings (npm_config_*) are the exceptions that prove the rule and are refused.
 *
 * Environment variables for one command (`LC_ALL=C sort`, `env TZ=UTC date`): a short list of
 * names that only change formatting, and pagers only when set to `cat` or nothing. Variables that
 * name configuration files count as code (TERMINFO, WGETRC, KUBECONFIG, PSQLRC, MYSQL_HOME,
 * GIT_CONFIG*, OPENSSL_CONF...): none of them is allowed, and locale and terminal names may not
 * be paths.
 */
import { show, type Word } from './types.ts';

const LOWERCASE_ENV = new Set([
  'http_proxy',
  'https_proxy',
  'ftp_proxy',
  'no_proxy',
  'all_proxy',
  'rsync_proxy',
]);

/** Lowercase environment variables that configure programs (npm_config_git runs a program...). */
const LOWERCASE_CONFIG = /^(npm|yarn|pnpm|bun|corepack)_/;

export function isSafeShellVar(name: string): boolean {
  return /^[a-z_][a-z0-9_]*$/.test(name) && !LOWERCASE_ENV.has(name) && !LOWERCASE_CONFIG.test(name);
}

const FORMAT_ENV = new Set([
  'LANG',
  'LANGUAGE',
  'TZ',
  'COLUMNS',
  'LINES',
  'TERM',
  'NO_COLOR',
  'SYSTEMD_COLORS',
  'SYSTEMD_URLIFY',
  'SYSTEMD_LOG_COLOR',
  'TIME_STYLE',
  'QUOTING_STYLE',
  'BLOCK_SIZE',
  'DF_BLOCK_SIZE',
  'DU_BLOCK_SIZE',
  'LS_BLOCK_SIZE',
  'GREP_COLOR',
  'GREP_COLORS',
  'LS_COLORS',
]);

const PAGERS = new Set(['PAGER', 'SYSTEMD_PAGER', 'GIT_PAGER', 'MANPAGER', 'BAT_PAGER']);

/** PATH made only of the system bin directories. */
const SYSTEM_PATH = /^(\/(usr\/)?(local\/)?s?bin:?)+$/;

/** Why `name=value` may not go into a command's environment, or null when it may. */
export function envAssignmentProblem(name: string, value: Word | null): string | null {
  if (LOWERCASE_CONFIG.test(name))
    return `setting ${name} configures a package manager, which can make it run programs`;
  if (isSafeShellVar(name)) return null;
  if (FORMAT_ENV.has(name) || /^LC_[A-Z]+$/.test(name)) {
    // A locale or terminal given as a path names files to load (LC_ALL=/some/dir, TERM=../x).
    if (
      /^(LANG|LANGUAGE|LC_[A-Z]+|TERM)$/.test(name) &&
      value &&
      (value.value === null || value.value.includes('/'))
    )
      return `${name}=${show(value)}: only a locale or terminal name, not a path`;
    return null;
  }
  // IFS only changes how unquoted expansions split, and those are treated as arbitrary anyway;
  // programs started by bash ignore an inherited IFS.
  if (name === 'IFS') return null;
  if (name === 'PATH' && value?.value != null && SYSTEM_PATH.test(value.value)) return null;
  if (PAGERS.has(name)) {
    const v = value?.value;
    if (v === '' || v === 'cat' || value === null) return null;
    return `${name}=${value ? show(value) : ''} sets a program to run (only ${name}=cat is allowed)`;
  }
  return `setting ${name} can change what programs run or load`;
}

/** Why a plain shell assignment `name=value` (no command) is unsafe, or null. */
export function shellAssignmentProblem(name: string, value: Word | null): string | null {
  if (isSafeShellVar(name)) return null;
  const env = envAssignmentProblem(name, value);
  return env === null ? null : `setting ${name} can change what later commands run or load`;
}
