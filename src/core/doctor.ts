import { accessSync, constants, existsSync, statSync } from 'node:fs';
import type { z } from 'zod';
import type { DoctorCheckSchema } from '../shared/contract/system.ts';
import type { Paths } from './platform/paths.ts';
import type { SecretStore } from './platform/secrets.ts';
import type { AuditLog } from './store/audit.ts';
import type { Db } from './store/db.ts';
import { schemaVersion } from './store/db.ts';
import { migrations } from './store/migrations.ts';

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
  add(
    'audit',
    'Audit log chain',
    audit.ok ? 'pass' : 'fail',
    audit.ok
      ? `${audit.count} entries, head ${audit.headHash.slice(0, 16)}…`
      : audit.problems.map((p) => p.message).join(' '),
    audit.ok
      ? null
      : 'Run `fluid audit verify` for the rows involved; keep a copy of the database for investigation.',
  );

  if (existsSync(deps.paths.secrets) && process.platform !== 'win32') {
    const mode = statSync(deps.paths.secrets).mode & 0o777;
    add(
      'secrets',
      'Secret store',
      mode & 0o077 ? 'fail' : 'pass',
      `${deps.secrets.kind}, ${deps.paths.secrets} mode ${mode.toString(8)}`,
      mode & 0o077 ? `chmod 600 ${deps.paths.secrets}` : null,
    );
  } else {
    add('secrets', 'Secret store', 'pass', `${deps.secrets.kind} (nothing stored yet)`);
  }
  return { ok: !checks.some((c) => c.status === 'fail'), checks };
}
