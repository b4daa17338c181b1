import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { FluidError } from '../../shared/errors.ts';
import { migrations as allMigrations, type Migration } from './migrations.ts';

export type Db = Database.Database;

/** How many distinct statements one database keeps prepared (the least recently used go first). */
export const STATEMENT_CACHE_SIZE = 256;

const statementCache = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * A prepared statement for this SQL, prepared once per database and kept (preparing parses and plans
 * the SQL: on hot paths that costs more than running it). For plain run/get/all only: a statement
 * that is switched with pluck(), raw(), expand() or iterated must be prepared by its caller, since
 * the cached one is shared. SQLite re-prepares it by itself after a schema change.
 */
export function prepared(db: Db, sql: string): Database.Statement {
  let cache = statementCache.get(db);
  if (!cache) statementCache.set(db, (cache = new Map()));
  let st = cache.get(sql);
  if (st) {
    // Most recently used last: the first key is the one to drop.
    cache.delete(sql);
    cache.set(sql, st);
    return st;
  }
  st = db.prepare(sql);
  cache.set(sql, st);
  if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return st;
}

/** Open (and migrate) the SQLite database: WAL, foreign keys, a busy timeout for other processes. */
export function openDatabase(file: string, migrations: Migration[] = allMigrations): Db {
  const fresh = file !== ':memory:' && !existsSync(file);
  const db = new Database(file);
  if (fresh && process.platform !== 'win32') chmodSync(file, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, migrations);
  return db;
}

export function schemaVersion(db: Db): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

export function migrate(db: Db, migrations: Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`migrations must be numbered 1..n without gaps (found ${m.version})`);
  });
  const current = schemaVersion(db);
  const latest = sorted.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new FluidError(
      'CONFLICT',
      `This database has schema version ${current}, newer than this build of Fluid understands (${latest}). Update Fluid, or point FLUID_DATA_DIR at another directory.`,
    );
  }
  for (const m of sorted) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    }).immediate();
  }
}
