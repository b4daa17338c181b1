/**
 * How a command runs on a guest. The script never passes through a layer of shell quoting: sshd
 * gets a fixed command (the runner below), and everything else travels on the channel's stdin: a
 * header line (`<script bytes> <timeout seconds|0> <grace tenths>`), the script, then the caller's
 * stdin. The command line being the same for every command is what lets a connection start the
 * runner ahead of the command that will use it (guest.ts, "spare"). The runner:
 *
 * 1. reads the header, then exactly <length> bytes of script from stdin (bash's `read` takes a pipe
 *    a byte at a time, and `read -N` in the C locale takes exactly that many bytes, leaving the
 *    rest) and refuses to run anything if stdin ends early, so a cut connection never runs a
 *    truncated script (`rm -rf /tmp/x` cut to `rm -rf /`);
 * 2. runs it from a file, `. /dev/fd/9` with fd 9 fed from memory (a here-string; a pipe from a
 *    subshell for scripts over 32 KiB), so the script is not visible in `ps`, there is no argument
 *    length limit, errors name the script's lines, and the rest of stdin is the script's own stdin;
 * 3. starts it in a subshell in its own process group (job control on for that one `&`); with a
 *    deadline, a timer subshell (in a process group of its own, so that a signal to the session
 *    does not end it) signals the runner (USR1) when it passes, and the runner signals the whole
 *    group TERM, then KILL after a grace period. Should the runner itself be gone (killed with the
 *    session), the timer kills the group at the deadline. The runner's own stderr goes to
 *    /dev/null (the script gets the real one), so bash's job notices never reach the output;
 * 4. on timeout, kills itself with SIGALRM after cleaning up. sshd reports that as exit-signal ALRM,
 *    which the client maps to `timedOut` (a script that exits 124 or 137 on its own stays that exit
 *    code). On TERM/HUP/INT (a cancel from the client) it kills the group the same way.
 *
 * Every process costs a fork and an exec, and an exec of bash or a coreutils binary is the expensive
 * part of a round trip in an emulated guest (60 ms or more each under TCG, a fork a fraction of it). So the runner is
 * the login shell itself (sshd's `bash -c`; another login shell hands it to bash), the script runs in
 * a forked subshell of it, and the timer is a forked subshell too: a command costs sshd's one exec of
 * the login shell, like a bare `ssh host true`. The script's subshell starts clean: the runner's
 * variables, functions and traps are gone, and its positional parameters are empty; `$0` is the
 * login shell's name and `BASH_SOURCE` is /dev/fd/9.
 *
 * Background processes a script leaves behind are not killed on normal exit (`nohup srv &` keeps
 * running); if they keep stdout open, the client stops waiting shortly after the exit status.
 *
 * `CLASSIC_RUNNER` is the previous way (bash + timeout(1) + bash per command, the numbers on the
 * command line), kept for comparison in bench/ssh-exec.ts and as a fallback (`runner: 'classic'`).
 */
import { FluidError } from '../../shared/errors.ts';

/** Whether the script's process group leader ($p) still runs (both runners wait on it after a kill). */
const ALIVE = `alive() {
  local f l
  for f in /proc/[0-9]*/stat; do
    read -r l 2>/dev/null <"$f" || continue
    set -- \${l##*) }
    [ "$3" = "$p" ] && [ "$1" != Z ] && return 0
  done
  return 1
}`;

/**
 * The runner: reads the header and the script from stdin and runs it (steps 1-4 above). Ends with
 * the script's exit code, or on timeout with SIGALRM. No single quotes: it travels quoted in them.
 */
export const RUNNER = `me=$$ to=0 cx=0 n= t= k= s= p= tp= rc=0
fin() { if [ "$2" = 1 ]; then trap - ALRM; kill -ALRM $$; fi; exit "$1"; }
exec 8>&2 2>/dev/null
IFS=" " read -r n t k || { echo "fluid-exec: the script arrived incomplete" >&8; fin 125 0; }
case "$k" in ""|*[!0-9]*) n=x;; esac
case "$t" in ""|*[!0-9.]*) n=x;; esac
case "$n" in ""|*[!0-9]*) n=x;; esac
[ "$n" = x ] && { echo "fluid-exec: the header is malformed" >&8; fin 125 0; }
if [ "$n" -gt 0 ] && ! LC_ALL=C IFS= read -r -N "$n" s; then echo "fluid-exec: the script arrived incomplete" >&8; fin 125 0; fi
${ALIVE}
trap "cx=1" TERM HUP INT
trap "to=1" USR1
if [ "$n" -le 32768 ]; then exec 9<<<"$s"; else exec 9< <(printf %s "$s"); fi
set -m
(trap - TERM HUP INT USR1; set +m; exec 2>&8 8>&- 4>&-; unset -v n t k me to cx s p tp rc R; unset -f alive fin; set --; . /dev/fd/9) &
p=$!
set +m
exec 9<&-
if [ "$t" != 0 ]; then
  set -m
  (exec </dev/null >/dev/null 8>&- 4>&-; read -t "$t" <> <(:)
   while read -r l </proc/self/stat && set -- \${l##*) } && [ "$2" = "$me" ]; do kill -USR1 "$me"; read -t 1 <> <(:); done
   alive || exit; kill -TERM -- -"$p"; kill -CONT -- -"$p"; read -t "$((k / 10)).$((k % 10))" <> <(:); kill -KILL -- -"$p") &
  tp=$!
  set +m
fi
[ "$to$cx" = 00 ] && wait "$p"
rc=$?
[ -n "$tp" ] && kill "$tp"
if [ "$to$cx" != 00 ]; then
  kill -TERM -- -"$p"; kill -CONT -- -"$p"
  exec 7<> <(:)
  i=0
  while [ "$i" -lt "$k" ] && alive; do read -t 0.1 -u 7; i=$((i + 1)); done
  kill -KILL -- -"$p"
  i=0
  while [ "$i" -lt 20 ] && alive; do read -t 0.05 -u 7; i=$((i + 1)); done
  fin 143 "$to"
fi
fin "$rc" 0`;

/**
 * The previous runner: `bash -c CLASSIC_RUNNER fluid-exec <len> <timeout> <grace>` after an exec of
 * bash, with timeout(1) and a second bash per command. Same contract as RUNNER; three execs more.
 */
export const CLASSIC_RUNNER = `n=$1 t=$2 k=$3 to=0 cx=0 s=
exec 8>&2 2>/dev/null
if [ "$n" -gt 0 ] && ! LC_ALL=C IFS= read -r -N "$n" s; then echo "fluid-exec: the script arrived incomplete" >&8; exit 125; fi
${ALIVE}
trap "cx=1" TERM HUP INT
set -m
if [ "$t" = 0 ]; then set -- bash; else set -- timeout -k "$((k / 10)).$((k % 10))" -s TERM "$t" bash; fi
if [ "$n" -le 32768 ]; then "$@" /dev/fd/9 9<<<"$s" 2>&8 8>&- & else "$@" /dev/fd/9 9< <(printf %s "$s") 2>&8 8>&- & fi
p=$!
set +m
SECONDS=0
wait "$p"; rc=$?
if [ "$t" != 0 ] && { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && [ "$SECONDS" -ge "\${t%.*}" ]; then to=1; fi
if [ "$to$cx" != 00 ]; then
  kill -TERM -- -"$p" 2>/dev/null; kill -CONT -- -"$p" 2>/dev/null
  i=0
  while [ "$i" -lt "$k" ] && alive; do sleep 0.1; i=$((i + 1)); done
  kill -KILL -- -"$p" 2>/dev/null
  i=0
  while [ "$i" -lt 20 ] && alive; do sleep 0.05; i=$((i + 1)); done
  if [ "$to" = 1 ]; then trap - ALRM; kill -ALRM $$; fi
  exit 143
fi
exit "$rc"`;

/** The signal the runner dies of when the script ran out of time. */
export const TIMEOUT_SIGNAL = 'ALRM';

if (RUNNER.includes("'") || CLASSIC_RUNNER.includes("'"))
  throw new Error('The runners must not contain single quotes');

/**
 * The login shell runs the runner itself when it is bash (not in POSIX mode); any other login shell
 * hands it to bash. The same text for every command.
 */
export const RUNNER_COMMAND = `R='${RUNNER}'; if [ -n "$BASH_VERSION" ] && ! shopt -qo posix; then eval "$R"; else exec bash -c "$R" fluid-exec; fi`;
/** As root through sudo, which starts bash. */
const SUDO_RUNNER_COMMAND = `R='${RUNNER}'; exec sudo -n -- bash -c "$R" fluid-exec`;

export interface RunnerCommand {
  /** The command line for the exec request (fixed text; the classic runner adds numbers). */
  command: string;
  /** What to write to the channel before the caller's stdin. */
  preamble: Buffer;
  /** The command may run on a runner started ahead (the command line is RUNNER_COMMAND). */
  spare: boolean;
}

/** 'inline': RUNNER in the login shell (the default); 'classic': CLASSIC_RUNNER. */
export type RunnerKind = 'inline' | 'classic';

export interface RunnerOptions {
  /** Remote timeout; 0 or undefined for none. */
  timeoutMs?: number;
  /** Time between TERM and KILL for the process group. */
  killGraceMs?: number;
  /** Run as root through `sudo -n`. */
  root?: boolean;
  runner?: RunnerKind;
}

export const DEFAULT_KILL_GRACE_MS = 2000;

export function runnerCommand(script: string | Buffer, opts: RunnerOptions = {}): RunnerCommand {
  const preamble = typeof script === 'string' ? Buffer.from(script, 'utf8') : script;
  if (preamble.includes(0))
    throw new FluidError('VALIDATION', 'The script contains a NUL byte; bash cannot run it.');
  const timeoutMs = opts.timeoutMs ?? 0;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0)
    throw new FluidError('VALIDATION', 'timeoutMs must be a positive number of milliseconds.');
  const seconds = timeoutMs > 0 ? Math.max(0.001, timeoutMs / 1000).toFixed(3) : '0';
  const tenths = Math.max(1, Math.ceil((opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS) / 100));
  const numbers = `${preamble.length} ${seconds} ${tenths}`;
  if (opts.runner === 'classic') {
    const prefix = opts.root ? 'exec sudo -n -- bash -c' : 'exec bash -c';
    return { command: `${prefix} '${CLASSIC_RUNNER}' fluid-exec ${numbers}`, preamble, spare: false };
  }
  return {
    command: opts.root ? SUDO_RUNNER_COMMAND : RUNNER_COMMAND,
    preamble: Buffer.concat([Buffer.from(`${numbers}\n`), preamble]),
    spare: !opts.root,
  };
}

/**
 * Keeps the first and last bytes of a stream within a cap and counts what falls in between, so that
 * both the start of the output and the final error survive truncation.
 */
export class HeadTailBuffer {
  private readonly headCap: number;
  private readonly tailCap: number;
  private readonly head: Buffer[] = [];
  private headLen = 0;
  private tail: Buffer[] = [];
  private tailLen = 0;
  /** Total bytes seen. */
  total = 0;

  constructor(cap: number, headShare = 0.5) {
    if (!Number.isInteger(cap) || cap < 0)
      throw new FluidError('VALIDATION', 'An output cap is a byte count.');
    this.headCap = Math.ceil(cap * headShare);
    this.tailCap = cap - this.headCap;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    let rest = chunk;
    if (this.headLen < this.headCap) {
      const take = Math.min(this.headCap - this.headLen, rest.length);
      this.head.push(rest.subarray(0, take));
      this.headLen += take;
      rest = rest.subarray(take);
    }
    if (!rest.length || this.tailCap === 0) return;
    this.tail.push(rest);
    this.tailLen += rest.length;
    // Drop whole chunks from the front while the rest still fills the tail, then trim one.
    while (this.tailLen - this.tail[0]!.length >= this.tailCap) this.tailLen -= this.tail.shift()!.length;
    if (this.tailLen > this.tailCap * 2) {
      const joined = Buffer.concat(this.tail).subarray(this.tailLen - this.tailCap);
      this.tail = [joined];
      this.tailLen = joined.length;
    }
  }

  /** Bytes not kept. */
  get dropped(): number {
    return this.total - this.headLen - Math.min(this.tailLen, this.tailCap);
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  keptHead(): Buffer {
    return Buffer.concat(this.head);
  }

  keptTail(): Buffer {
    const t = Buffer.concat(this.tail);
    return t.length > this.tailCap ? t.subarray(t.length - this.tailCap) : t;
  }

  /** Everything kept, as bytes (no marker). */
  toBuffer(): Buffer {
    return Buffer.concat([this.keptHead(), this.keptTail()]);
  }

  /** Text with a visible marker where bytes were dropped. */
  toText(): string {
    const dropped = this.dropped;
    if (dropped === 0) return this.toBuffer().toString('utf8');
    return `${this.keptHead().toString('utf8')}${truncationMarker(dropped)}${this.keptTail().toString('utf8')}`;
  }
}

export function truncationMarker(bytes: number): string {
  return `\n…[truncated ${bytes} bytes]…\n`;
}
