import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, schemaVersion } from '../../../src/core/store/db.ts';
import { migrations } from '../../../src/core/store/migrations.ts';
import { tempDir } from '../../support/core.ts';

test('a new database is migrated to the latest version, WAL, owner-only', () => {
  const { dir, cleanup } = tempDir();
  const db = openDatabase(join(dir, 'a.db'));
  assert.equal(schemaVersion(db), migrations.at(-1)!.version);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(statSync(join(dir, 'a.db')).mode & 0o777, 0o600);
  db.close();
  cleanup();
});

test('migrations apply once, in order, and only the new ones', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'b.db');
  const m1 = [{ version: 1, name: 'one', sql: 'CREATE TABLE t (a INTEGER)' }];
  openDatabase(file, m1).close();
  const db = openDatabase(file, [...m1, { version: 2, name: 'two', sql: 'ALTER TABLE t ADD COLUMN b TEXT' }]);
  assert.equal(schemaVersion(db), 2);
  assert.deepEqual(
    (db.prepare('PRAGMA table_info(t)').all() as Array<{ name: string }>).map((c) => c.name),
    ['a', 'b'],
  );
  db.close();
  cleanup();
});

test('a failing migration rolls back and leaves the version unchanged', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'c.db');
  openDatabase(file, [{ version: 1, name: 'one', sql: 'CREATE TABLE t (a INTEGER)' }]).close();
  assert.throws(() =>
    openDatabase(file, [
      { version: 1, name: 'one', sql: 'CREATE TABLE t (a INTEGER)' },
      { version: 2, name: 'bad', sql: 'CREATE TABLE u (x); THIS IS NOT SQL' },
    ]),
  );
  const db = openDatabase(file, [{ version: 1, name: 'one', sql: 'CREATE TABLE t (a INTEGER)' }]);
  assert.equal(schemaVersion(db), 1);
  assert.equal(
    (db.prepare("SELECT COUNT(*) n FROM sqlite_master WHERE name = 'u'").get() as { n: number }).n,
    0,
  );
  db.close();
  cleanup();
});

test('a database from a newer Fluid is refused with advice', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'd.db');
  openDatabase(file, [
    { version: 1, name: 'one', sql: 'SELECT 1' },
    { version: 2, name: 'two', sql: 'SELECT 1' },
  ]).close();
  assert.throws(
    () => openDatabase(file, [{ version: 1, name: 'one', sql: 'SELECT 1' }]),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFLICT');
      assert.match(e.message, /newer than this build/);
      return true;
    },
  );
  cleanup();
});

test('gaps in migration numbers are a programming error', () => {
  assert.throws(() => openDatabase(':memory:', [{ version: 2, name: 'x', sql: 'SELECT 1' }]), /without gaps/);
});
