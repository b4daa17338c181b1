/** prepared(): one statement per SQL and database, least recently used dropped, schema changes followed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, prepared, STATEMENT_CACHE_SIZE } from '../../../src/core/store/db.ts';

const fresh = () => openDatabase(':memory:', []);

test('the same SQL on the same database is prepared once', () => {
  const db = fresh();
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const a = prepared(db, 'INSERT INTO t (v) VALUES (?)');
  const b = prepared(db, 'INSERT INTO t (v) VALUES (?)');
  assert.equal(a, b, 'the second call returns the prepared statement');
  a.run('x');
  b.run('y');
  assert.deepEqual(prepared(db, 'SELECT v FROM t ORDER BY id').all(), [{ v: 'x' }, { v: 'y' }]);
  db.close();
});

test('two databases never share a statement', () => {
  const one = fresh();
  const two = fresh();
  for (const db of [one, two]) db.exec('CREATE TABLE t (v TEXT)');
  prepared(one, 'INSERT INTO t VALUES (?)').run('in one');
  assert.notEqual(prepared(one, 'SELECT * FROM t'), prepared(two, 'SELECT * FROM t'));
  assert.deepEqual(prepared(two, 'SELECT * FROM t').all(), [], 'the second database is untouched');
  one.close();
  two.close();
});

test('the cache is bounded: the least recently used statement is dropped and prepared again', () => {
  const db = fresh();
  const first = prepared(db, 'SELECT 0 AS n');
  const kept = prepared(db, 'SELECT 1 AS n');
  for (let i = 2; i < STATEMENT_CACHE_SIZE + 1; i++) {
    prepared(db, `SELECT ${i} AS n`);
    if (i % 50 === 0) assert.equal(prepared(db, 'SELECT 1 AS n'), kept, 'a statement in use stays');
  }
  assert.notEqual(prepared(db, 'SELECT 0 AS n'), first, 'the oldest was dropped');
  assert.deepEqual(prepared(db, 'SELECT 0 AS n').get(), { n: 0 }, 'and works when prepared again');
  db.close();
});

test('a cached statement follows a change of the schema', () => {
  const db = fresh();
  db.exec("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x')");
  assert.deepEqual(prepared(db, 'SELECT * FROM t').get(), { a: 'x' });
  db.exec("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'y'");
  assert.deepEqual(prepared(db, 'SELECT * FROM t').get(), { a: 'x', b: 'y' });
  db.close();
});
