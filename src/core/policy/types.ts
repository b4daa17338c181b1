/** Shared types of the shell command policy. */

export type PolicyMode = 'read-only';

export const POLICY_MODES: readonly PolicyMode[] = ['read-only'];

export interface CheckedCommand {
  /** Words after quote removal; a word the shell computes at run time is shown as written. */
  argv: string[];
  /** Which argv entries are computed at run time (expansions, globs, substitutions). */
  dynamic: boolean[];
  /** The command's source text. */
  text: string;
  /** True when the command runs inside a substitution or under a wrapper such as `timeout`. */
  nested: boolean;
}

export interface PolicyDecision {
  decision: 'allow' | 'deny';
  /** Short and human: why it is allowed, or the first thing that makes it unsafe. */
  reason: string;
  /** Every simple command found, in source order, up to the first denial. */
  commands: CheckedCommand[];
}

export interface ShellPolicy {
  check(command: string, mode?: PolicyMode): PolicyDecision;
}

/**
 * Thrown inside the analyzer to stop at the first unsafe construct. Not an Error: denials are
 * the common case and capturing a stack trace for each would dominate the cost of a check.
 */
export class Deny {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

export function deny(reason: string): never {
  throw new Deny(reason);
}

/**
 * One shell word as the policy sees it.
 * `value` is set only when the word is fully literal and stays exactly one word at run time.
 */
export interface Word {
  /** Source text. */
  text: string;
  /** The literal value after quote removal, or null when the shell computes it. */
  value: string | null;
  /** A literal prefix every resulting word is known to start with ('' when unknown). */
  prefix: string;
  /** The word may expand to zero or several words (splitting, globs, braces, "$@"). */
  multi: boolean;
  /** Starts with a tilde expansion: the result is a path (or the literal ~word), never an option. */
  tilde: boolean;
  /** When the word is one of a few known literals (a loop variable over literal words). */
  alts?: string[];
  /** Where the word sits in the source, for follow-up checks; -1 for synthetic words. */
  start: number;
  end: number;
}

export const literalWord = (value: string): Word => ({
  text: value,
  value,
  prefix: value,
  multi: false,
  tilde: false,
  start: -1,
  end: -1,
});

/** A synthetic word standing for arguments that arrive at run time (xargs input and the like). */
export const runtimeWords = (text: string): Word => ({
  text,
  value: null,
  prefix: '',
  multi: true,
  tilde: false,
  start: -1,
  end: -1,
});

/** Could this word be (or expand to) something starting with `lead` (by default an option dash)? */
export function mayStartWith(w: Word, lead = '-'): boolean {
  if (w.value !== null) return w.value.startsWith(lead);
  if (w.alts) return w.alts.some((a) => a.startsWith(lead));
  if (w.tilde) return false;
  if (w.prefix === '') return true;
  return w.prefix.startsWith(lead) || lead.startsWith(w.prefix);
}

export const show = (w: Word): string => w.value ?? w.text;
