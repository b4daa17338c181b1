/**
 * A bash oracle for the policy tests: runs commands in real bash with every external program
 * replaced by a logger (empty PATH + command_not_found_handle), in a scratch directory, and
 * reports what bash actually ran and whether any file appeared.
 *
 * Only run commands the policy allowed (and that a person has read): redirections still work.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OracleRun {
  command: string;
  /** argv of every external program (and logged builtin) bash tried to run. */
  ran: string[][];
}

export interface OracleResult {
  runs: OracleRun[];
  /** Files that appeared in the scratch directory while the commands ran. */
  created: string[];
}

const BASH = '/bin/bash';

export function bashAvailable(): boolean {
  return spawnSync(BASH, ['-c', 'exit 0']).status === 0;
}

/** Builtins routed to the logger too, so their arguments are visible. */
const LOGGED_BUILTINS = [
  'echo',
  'printf',
  'test',
  '[',
  'pwd',
  'type',
  'kill',
  'times',
  'help',
  'ulimit',
  'umask',
];

export function runInBash(commands: string[], opts: { asUser?: string } = {}): OracleResult {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-policy-oracle-'));
  chmodSync(dir, 0o777);
  const log = join(dir, '.log');
  const input = join(dir, '.commands');
  const script = join(dir, '.harness.sh');
  writeFileSync(input, commands.map((c) => c + '\0').join(''));
  writeFileSync(
    script,
    [
      // Each process appends to its own file, so records from a pipeline cannot interleave.
      `command_not_found_handle() { enable printf; printf '%s\\037' "$@" $'\\036' >> "$__log.$BASHPID"; enable -n printf; return 0; }`,
      `cd ${JSON.stringify(join(dir, 'work'))}`,
      `__i=0`,
      `while IFS= read -r -d '' __c; do`,
      `  __i=$((__i + 1)); __log=${JSON.stringify(log)}.$__i`,
      `  ( enable -n ${LOGGED_BUILTINS.join(' ')}; eval "$__c"; wait ) </dev/null >/dev/null 2>&1`,
      `done < ${JSON.stringify(input)}`,
    ].join('\n'),
  );
  const work = join(dir, 'work');
  spawnSync('mkdir', ['-m', '777', work]);
  const argv = opts.asUser
    ? [
        '/usr/bin/setpriv',
        '--reuid',
        opts.asUser,
        '--regid',
        opts.asUser === 'nobody' ? 'nogroup' : opts.asUser,
        '--clear-groups',
        BASH,
        script,
      ]
    : [BASH, script];
  spawnSync(argv[0]!, argv.slice(1), {
    env: { PATH: '/nonexistent', HOME: work, LANG: 'C' },
    timeout: 120_000,
    stdio: 'ignore',
  });
  const created = readdirSync(work);
  const logs = readdirSync(dir).filter((f) => f.startsWith('.log.'));
  const runs = commands.map((command, i) => ({
    command,
    ran: logs
      .filter((f) => f.split('.')[2] === String(i + 1))
      .flatMap((f) =>
        readFileSync(join(dir, f), 'utf8')
          .split('\x1e\x1f')
          .filter(Boolean)
          .map((rec) => rec.split('\x1f').slice(0, -1)),
      ),
  }));
  rmSync(dir, { recursive: true, force: true });
  return { runs, created };
}

/**
 * Run each command in real bash, in a directory of its own, and say which of them created the
 * file `m` there. The payloads of the class tests write that marker (`$(: >m)`), so a marker
 * means bash ran code hidden in the command. Stdin is /dev/null; each run is capped at 10 s.
 */
export function runForMarkers(commands: string[], opts: { asUser?: string } = {}): boolean[] {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-policy-markers-'));
  chmodSync(dir, 0o777);
  const input = join(dir, '.commands');
  const script = join(dir, '.harness.sh');
  writeFileSync(input, commands.map((c) => c + '\0').join(''));
  writeFileSync(
    script,
    [
      `__i=0`,
      `while IFS= read -r -d '' __c; do`,
      `  __i=$((__i + 1)); mkdir -m 777 ${JSON.stringify(dir)}/$__i`,
      `  ( cd ${JSON.stringify(dir)}/$__i && timeout -s KILL 10 ${BASH} -c "$__c" ) </dev/null >/dev/null 2>&1`,
      `done < ${JSON.stringify(input)}`,
    ].join('\n'),
  );
  const argv = opts.asUser
    ? ['/usr/bin/setpriv', '--reuid', opts.asUser, '--regid', 'nogroup', '--clear-groups', BASH, script]
    : [BASH, script];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C' },
    timeout: 600_000,
    stdio: 'ignore',
  });
  if (r.error) throw r.error;
  const made = commands.map((_, i) => existsSync(join(dir, String(i + 1), 'm')));
  rmSync(dir, { recursive: true, force: true });
  return made;
}
