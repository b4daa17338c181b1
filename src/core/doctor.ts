import { accessSync, constants, existsSync, statSync } from 'node:fs';
import type { z } from 'zod';
import type { DoctorCheckSchema } from '../shared/contract/system.ts';
import type { Paths } from './platform/paths.ts';
import type { SecretStore } from './platform/secrets.ts';
import type { AuditLog } from './store/audit.ts';
import type { Db } from './store/db.ts';
import { schemaVersion } from './store/db.ts';
import { migrations } from './store/migrations.ts';
import { ansibleChecks } from './playbooks/doctor.ts';

type Check = z.infer<typeof DoctorCheckSchema>;

export function runDoctor(deps: { paths: Paths; db: Db; audit: AuditLog; secrets: SecretStore }): {
  ok: boolean;
  checks: Check[];
} {
  const checks: Check[] = [];
  const add = (
    id: string,
    title: string,
    status: Check['status'],
    detail: string,
    advice: string | null = null,
  ) => checks.push({ id, title, status, detail, advice });

  const major = Number(process.versions.node.split('.')[0]);
  add(
    'runtime',
    'Node.js runtime',
    major >= 24 ? 'pass' : 'fail',
    `Node ${process.versions.node} on ${process.platform}/${process.arch}.`,
    major >= 24 ? null : 'Run Fluid through npm scripts or npx, which use the pinned Node 24.',
  );

  try {
    accessSync(deps.paths.dataDir, constants.W_OK);
    const mode = statSync(deps.paths.dataDir).mode & 0o777;
    const private_ = process.platform === 'win32' || (mode & 0o077) === 0;
    add(
      'data-dir',
      'Data directory',
      private_ ? 'pass' : 'warn',
      `${deps.paths.dataDir} (mode ${mode.toString(8)})`,
      private_ ? null : `Restrict it: chmod 700 ${deps.paths.dataDir}`,
    );
  } catch (e) {
    add(
      'data-dir',
      'Data directory',
      'fail',
      `${deps.paths.dataDir} is not writable: ${(e as Error).message}`,
      'Set FLUID_DATA_DIR to a writable directory.',
    );
  }

  const v = schemaVersion(deps.db);
  const latest = migrations.at(-1)!.version;
  add(
    'database',
    'Database',
    v === latest ? 'pass' : 'fail',
    `${deps.paths.db}, schema ${v}/${latest}, ${(deps.db.pragma('journal_mode', { simple: true }) as string).toUpperCase()} journal.`,
  );

  const audit = deps.audit.verify();
  // The signing key's fingerprint, for a person to compare with exports and the hosts' copies.
  const signed = [
    audit.checkpoint
      ? `signed checkpoint #${audit.checkpoint.n} covers entries 1..${audit.checkpoint.seq}`
      : null,
    audit.signingKey?.fingerprint ? `audit signing key ${audit.signingKey.fingerprint}` : null,
  ]
    .filter(Boolean)
    .join('; ');
  add(
    'audit',
    'Audit log chain',
    audit.ok ? 'pass' : 'fail',
    audit.ok
      ? `${audit.count} entries, head ${audit.headHash.slice(0, 16)}…${signed ? `; ${signed}` : ''}`
      : audit.problems.map((p) => p.message).join(' ') + (signed ? ` (${signed})` : ''),
    audit.ok
      ? null
      : 'Run `fluid audit verify` for the rows involved; keep a copy of the database for investigation.',
  );

  secretsCheck(deps, add);
  for (const c of ansibleChecks()) add(c.id, c.title, c.status, c.detail, c.advice);
  return { ok: !checks.some((c) => c.status === 'fail'), checks };
}

type Add = (
  id: string,
  title: string,
  status: Check['status'],
  detail: string,
  advice?: string | null,
) => void;

const HOW_TO_GET_A_KEYCHAIN: Partial<Record<NodeJS.Platform, string>> = {
  linux:
    'To seal them with a keychain: install a Secret Service and its command-line tool (Debian/Ubuntu: apt install libsecret-tools gnome-keyring; KWallet and KeePassXC work too) and run Fluid in your desktop session, or with DBUS_SESSION_BUS_ADDRESS pointing at a session bus where the keyring runs unlocked. Fluid seals the stored values the next time it starts there.',
};

/** Which store holds the secrets, said plainly; a plain-text file is a warning with how to do better. */
function secretsCheck(deps: { paths: Paths; secrets: SecretStore }, add: Add): void {
  let info;
  try {
    info = deps.secrets.describe();
  } catch (e) {
    add('secrets', 'Secret store', 'fail', (e as Error).message);
    return;
  }
  const total = Object.values(info.counts).reduce((a, b) => a + (b ?? 0), 0);
  const where = info.location ?? 'memory';
  let mode: number | null = null;
  if (info.location && existsSync(info.location) && process.platform !== 'win32')
    mode = statSync(info.location).mode & 0o777;
  if (mode !== null && mode & 0o077) {
    add(
      'secrets',
      'Secret store',
      'fail',
      `${where} is mode ${mode.toString(8)}: other users can read it.`,
      `chmod 600 ${where}`,
    );
    return;
  }
  const stored = total ? `${total} secret${total === 1 ? '' : 's'}` : 'nothing stored yet';
  if (info.unreadable.length) {
    add(
      'secrets',
      'Secret store',
      'fail',
      `${info.unreadable.length} of ${total} secrets cannot be opened here: ${info.unreadable
        .map((u) => `${u.name} (${u.reason})`)
        .join('; ')}`,
      null,
    );
    return;
  }
  if (info.backend === 'file') {
    const plain = info.counts.file ?? 0;
    add(
      'secrets',
      'Secret store',
      'warn',
      `No keychain is in use: secrets are kept in plain text in ${where}, readable by your user only (mode 600) and by any process running as you (${plain} stored).${info.keychainProblem ? ` Why: ${info.keychainProblem}` : ''}`,
      HOW_TO_GET_A_KEYCHAIN[process.platform] ??
        'To seal them with the platform keychain, run Fluid in your desktop session; FLUID_SECRET_BACKEND names a backend explicitly.',
    );
    return;
  }
  const plainLeft = info.counts.file ?? 0;
  add(
    'secrets',
    'Secret store',
    plainLeft ? 'warn' : 'pass',
    info.backend === 'memory'
      ? 'In memory (tests).'
      : `Sealed by ${info.label} (${info.backend}): ${stored} in ${where}; the app, the CLI, web mode and MCP read the same store.${plainLeft ? ` ${plainLeft} still in plain text: they are sealed at the next change.` : ''}`,
    null,
  );
}
