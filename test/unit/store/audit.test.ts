import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { AuditLog, parseJsonl, verifyEntries } from '../../../src/core/store/audit.ts';
import { openDatabase } from '../../../src/core/store/db.ts';
import { tempDir } from '../../support/core.ts';
import { join } from 'node:path';

const actor = { door: 'test' as const, id: 'alice' };

function fixture(n = 5) {
  const { dir, cleanup } = tempDir();
  const dbPath = join(dir, 'fluid.db');
  const db = openDatabase(dbPath);
  const log = new AuditLog(db, { now: () => new Date('2026-01-01T00:00:00Z') }, null, join(dir, 'head.json'));
  for (let i = 1; i <= n; i++)
    log.append({ actor, action: `thing.${i}`, target: `t${i}`, data: { i, nested: { b: 2, a: 1 } } });
  return { dir, dbPath, db, log, cleanup };
}

test('entries chain: each prevHash is the previous hash; verify passes', () => {
  const f = fixture();
  const { entries } = f.log.list({ limit: 100 });
  const asc = [...entries].reverse();
  assert.equal(asc.length, 5);
  assert.equal(asc[0]!.prevHash, '0'.repeat(64));
  for (let i = 1; i < asc.length; i++) assert.equal(asc[i]!.prevHash, asc[i - 1]!.hash);
  const v = f.log.verify();
  assert.equal(v.ok, true);
  assert.equal(v.count, 5);
  assert.equal(v.headHash, asc[4]!.hash);
  f.db.close();
  f.cleanup();
});

test('the database refuses UPDATE and DELETE on the audit log', () => {
  const f = fixture();
  assert.throws(() => f.db.prepare("UPDATE audit_log SET action = 'x' WHERE seq = 2").run(), /append-only/);
  assert.throws(() => f.db.prepare('DELETE FROM audit_log WHERE seq = 2').run(), /append-only/);
  f.db.close();
  f.cleanup();
});

test('an edit made behind our back (triggers dropped, another process) is reported at its exact row', () => {
  const f = fixture(6);
  f.db.close();
  const raw = new Database(f.dbPath);
  raw.exec('DROP TRIGGER audit_log_no_update');
  raw.prepare(`UPDATE audit_log SET data = '{"i":999}' WHERE seq = 3`).run();
  raw.close();
  const db = openDatabase(f.dbPath);
  const log = new AuditLog(db, { now: () => new Date() }, null, join(f.dir, 'head.json'));
  const v = log.verify();
  assert.equal(v.ok, false);
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [[3, 'content']],
  );
  assert.match(v.problems[0]!.message, /Entry 3 \(thing\.3\) was changed/);
  db.close();
  f.cleanup();
});

test('a rewritten row with a recomputed hash breaks the chain at the next row', () => {
  const f = fixture(6);
  f.db.close();
  const raw = new Database(f.dbPath);
  raw.exec('DROP TRIGGER audit_log_no_update');
  raw.prepare(`UPDATE audit_log SET action = 'forged', hash = 'f'||substr(hash,2) WHERE seq = 4`).run();
  raw.close();
  const db = openDatabase(f.dbPath);
  const v = new AuditLog(db, { now: () => new Date() }, null, join(f.dir, 'head.json')).verify();
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [
      [4, 'content'],
      [5, 'chain'],
    ],
  );
  db.close();
  f.cleanup();
});

test('deleted rows are reported as a gap; deleting the newest rows is caught by the head file', () => {
  const f = fixture(6);
  f.db.close();
  const raw = new Database(f.dbPath);
  raw.exec('DROP TRIGGER audit_log_no_delete');
  raw.prepare('DELETE FROM audit_log WHERE seq = 2').run();
  raw.prepare('DELETE FROM audit_log WHERE seq >= 5').run();
  raw.close();
  const db = openDatabase(f.dbPath);
  const v = new AuditLog(db, { now: () => new Date() }, null, join(f.dir, 'head.json')).verify();
  assert.equal(v.ok, false);
  const kinds = v.problems.map((p) => `${p.seq}:${p.kind}`);
  assert.ok(kinds.includes('3:gap'), kinds.join());
  assert.ok(kinds.includes('3:chain'), kinds.join());
  assert.ok(kinds.includes('5:gap'), kinds.join());
  db.close();
  f.cleanup();
});

test('export is verifiable offline; a tampered export line is reported', () => {
  const f = fixture(4);
  const e = f.log.exportJsonl();
  assert.equal(e.count, 4);
  const parsed = parseJsonl(e.content);
  assert.equal(verifyEntries(parsed.entries).ok, true);
  const lines = e.content.trim().split('\n');
  const obj = JSON.parse(lines[1]!);
  obj.actor.id = 'mallory';
  lines[1] = JSON.stringify(obj);
  lines.push('not json');
  const bad = parseJsonl(lines.join('\n'));
  assert.equal(bad.problems[0]!.kind, 'malformed');
  const v = verifyEntries(bad.entries);
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [[2, 'content']],
  );
  f.db.close();
  f.cleanup();
});

test('data is stored canonically: key order does not change the hash', () => {
  const a = fixture(0);
  const b = fixture(0);
  const ea = a.log.append({ actor, action: 'x', data: { z: 1, a: { y: 2, b: 3 } } });
  const eb = b.log.append({ actor, action: 'x', data: { a: { b: 3, y: 2 }, z: 1 } });
  assert.equal(ea.hash, eb.hash);
  a.db.close();
  b.db.close();
  a.cleanup();
  b.cleanup();
});

test('appends from two connections (processes) keep one unbroken chain', () => {
  const f = fixture(0);
  const db2 = openDatabase(f.dbPath);
  const log2 = new AuditLog(db2, { now: () => new Date() }, null, join(f.dir, 'head.json'));
  for (let i = 0; i < 20; i++) (i % 2 ? f.log : log2).append({ actor, action: `a${i}` });
  assert.equal(f.log.verify().ok, true);
  assert.equal(f.log.verify().count, 20);
  assert.equal(JSON.parse(readFileSync(join(f.dir, 'head.json'), 'utf8')).seq, 20);
  db2.close();
  f.db.close();
  writeFileSync(join(f.dir, 'x'), '');
  f.cleanup();
});
