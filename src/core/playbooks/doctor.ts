/**
 * `fluid doctor` (and onboarding, through system.doctor): whether this machine can verify playbooks.
 * Verification runs ansible-playbook and ansible-lint here; nothing is installed on production or in
 * sandboxes, so a missing tool is named with how to install it.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { INSTALL_ADVICE, LINT_PROFILE, stripAnsi } from './ansible.ts';

export interface AnsibleCheck {
  id: string;
  title: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  advice: string | null;
}

const SEARCH = () => [
  ...(process.env.PATH ?? '').split(delimiter),
  '/usr/bin',
  '/usr/local/bin',
  '/opt/homebrew/bin',
];

function find(cmd: string, dirs: readonly string[]): string | null {
  for (const d of dirs) {
    if (!d) continue;
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return join(d, cmd);
    } catch {
      /* next */
    }
  }
  return null;
}

function version(path: string, args: string[], re: RegExp): string | null {
  const r = spawnSync(path, args, {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      NO_COLOR: '1',
      LANG: 'C.UTF-8',
    },
  });
  return re.exec(stripAnsi(`${r.stdout ?? ''}${r.stderr ?? ''}`))?.[1] ?? null;
}

/** `dirs`: where to look for the tools (default: PATH and the usual places). */
export function ansibleChecks(dirs: readonly string[] = SEARCH()): AnsibleCheck[] {
  const out: AnsibleCheck[] = [];
  const playbook = find('ansible-playbook', dirs);
  const core = playbook ? version(playbook, ['--version'], /core ([0-9][^\]\s]*)/) : null;
  out.push(
    playbook && core
      ? {
          id: 'ansible-core',
          title: 'ansible-core (playbook verification)',
          status: 'pass',
          detail: `ansible-core ${core} (${playbook}).`,
          advice: null,
        }
      : {
          id: 'ansible-core',
          title: 'ansible-core (playbook verification)',
          status: 'warn',
          detail: playbook
            ? `${playbook} does not answer --version.`
            : 'ansible-playbook is not installed: playbooks cannot be verified here.',
          advice: INSTALL_ADVICE,
        },
  );
  const lint = find('ansible-lint', dirs);
  const lv = lint ? version(lint, ['--version', '--nocolor'], /ansible-lint\s+([0-9][0-9.]*)/) : null;
  out.push(
    lint && lv
      ? {
          id: 'ansible-lint',
          title: 'ansible-lint (playbook verification)',
          status: 'pass',
          detail: `ansible-lint ${lv} (${lint}); verification uses the ${LINT_PROFILE} profile.`,
          advice: null,
        }
      : {
          id: 'ansible-lint',
          title: 'ansible-lint (playbook verification)',
          status: 'warn',
          detail: lint
            ? `${lint} does not answer --version.`
            : 'ansible-lint is not installed: the lint step of verification fails.',
          advice: INSTALL_ADVICE,
        },
  );
  return out;
}
