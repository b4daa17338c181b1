import { mkdirSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Paths {
  dataDir: string;
  db: string;
  secrets: string;
  logs: string;
  auditHead: string;
}

/**
 * The user's data dir by platform convention, overridable with FLUID_DATA_DIR. The desktop app,
 * the CLI and web mode all use the same one, so they share state.
 */
export function defaultDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  if (env.FLUID_DATA_DIR) return resolve(env.FLUID_DATA_DIR);
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'Fluid');
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'Fluid');
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'fluid');
}

export function resolvePaths(dataDir: string): Paths {
  return {
    dataDir,
    db: join(dataDir, 'fluid.db'),
    secrets: join(dataDir, 'secrets.json'),
    logs: join(dataDir, 'logs'),
    auditHead: join(dataDir, 'audit-head.json'),
  };
}

/** Create the data dir readable by its owner only (it holds the database, keys and logs). */
export function ensureDataDir(paths: Paths): void {
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(paths.logs, { recursive: true, mode: 0o700 });
  if (process.platform !== 'win32') {
    chmodSync(paths.dataDir, 0o700);
    chmodSync(paths.logs, 0o700);
  }
}
