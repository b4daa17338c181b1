import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, parseJsonl, verifyEntries } from '../../../src/core/store/audit.ts';
import { openDatabase } from '../../../src/core/store/db.ts';
import { AuditSigner } from '../../../src/core/audit/signer.ts';
import { CHECKPOINT_FILE, CheckpointLog } from '../../../src/core/audit/checkpoints.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import { deleteRows, removeFile, rewriteAndRecompute, tempDir } from '../../support/audit.ts';

const actor = { door: 'test' as const, id: 'alice' };
const clock = { now: () => new Date('2026-01-01T00:00:00Z') };

/** A log with signed checkpoints, as createCore builds it (the same key for every connection). */
function open(dir: string, secrets: MemorySecretStore) {
  const db = openDatabase(join(dir, 'fluid.db'));
  const log = new AuditLog(db, clock, null, join(dir, 'head.json'));
  const checkpoints = new CheckpointLog({
    db,
    clock,
    signer: new AuditSigner(secrets, db),
    installation: 'install-1',
    file: join(dir, CHECKPOINT_FILE),
  });
  log.attach(checkpoints);
  return { db, log, checkpoints };
}

function fixture(n = 5) {
  const { dir, cleanup } = tempDir();
  const secrets = new MemorySecretStore();
  const o = open(dir, secrets);
  for (let i = 1; i <= n; i++)
    o.log.append({ actor, action: `thing.${i}`, target: `t${i}`, data: { i, nested: { b: 2, a: 1 } } });
  return {
    dir,
    dbPath: join(dir, 'fluid.db'),
    secrets,
    ...o,
    reopen: () => open(dir, secrets),
    cleanup,
  };
}

test('entries chain: each prevHash is the previous hash; verify passes', () => {
  const f = fixture();
  const { entries } = f.log.list({ limit: 100 });
  const asc = [...entries].reverse();
  assert.equal(asc.length, 5);
  assert.equal(asc[0]!.prevHash, '0'.repeat(64));
  for (let i = 1; i < asc.length; i++) assert.equal(asc[i]!.prevHash, asc[i - 1]!.hash);
  f.checkpoints.cutNow();
  const v = f.log.verify();
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.equal(v.count, 5);
  assert.equal(v.headHash, asc[4]!.hash);
  assert.deepEqual(v.checkpoint && [v.checkpoint.n, v.checkpoint.seq, v.checkpoint.signature], [
    1,
    5,
    'valid',
  ]);
  assert.equal(v.checkpoint!.matchesChain, true);
  assert.match(v.signingKey!.fingerprint!, /^SHA256:[A-Za-z0-9+/]{43}$/);
  f.db.close();
  f.cleanup();
});

test('the database refuses UPDATE and DELETE on the audit log and its checkpoints', () => {
  const f = fixture();
  f.checkpoints.cutNow();
  assert.throws(() => f.db.prepare("UPDATE audit_log SET action = 'x' WHERE seq = 2").run(), /append-only/);
  assert.throws(() => f.db.prepare('DELETE FROM audit_log WHERE seq = 2').run(), /append-only/);
  assert.throws(() => f.db.prepare("UPDATE audit_checkpoints SET head = 'x'").run(), /append-only/);
  assert.throws(() => f.db.prepare('DELETE FROM audit_checkpoints').run(), /append-only/);
  f.db.close();
  f.cleanup();
});

test('an edit made behind our back (triggers dropped, another process) is reported at its exact row', () => {
  const f = fixture(6);
  f.checkpoints.cutNow();
  f.db.close();
  const raw = new Database(f.dbPath);
  raw.exec('DROP TRIGGER audit_log_no_update');
  raw.prepare(`UPDATE audit_log SET data = '{"i":999}' WHERE seq = 3`).run();
  raw.close();
  const { db, log } = f.reopen();
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

test('a rewritten row with every hash after it recomputed: the chain alone passes, the signed checkpoint does not', () => {
  const f = fixture(6);
  f.checkpoints.cutNow(); // signed: entries 1..6
  const signedHead = f.log.verify().headHash;
  f.db.close();
  const newHead = rewriteAndRecompute(f.dbPath, 4, (e) => {
    e.action = 'forged';
    e.data = { i: 4, note: 'nothing to see' };
  });
  assert.notEqual(newHead, signedHead);
  const { db, log } = f.reopen();
  // The recomputation is real: the unkeyed chain is consistent again, row by row.
  const asc = [...log.list({ limit: 100 }).entries].reverse();
  assert.equal(asc[3]!.action, 'forged');
  assert.equal(verifyEntries(asc).ok, true, 'the chain alone cannot see a full recomputation');
  // The checkpoint signed before the rewrite does.
  const v = log.verify();
  assert.equal(v.ok, false);
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [[6, 'checkpoint']],
  );
  assert.match(
    v.problems[0]!.message,
    /^This database and the checkpoint file beside the database have checkpoint #1 \(seq 6, head [0-9a-f]{12}…\): the log's entry 6 has hash [0-9a-f]{12}…, so entries up to 6 were rewritten/,
  );
  assert.equal(v.checkpoint!.matchesChain, false);
  db.close();
  f.cleanup();
});

test('deleted rows are reported as a gap; deleting the newest rows is caught by the signed checkpoint', () => {
  const f = fixture(6);
  f.checkpoints.cutNow();
  f.db.close();
  deleteRows(f.dbPath, { seqs: [2], fromSeq: 5 });
  const { db, log } = f.reopen();
  const v = log.verify();
  assert.equal(v.ok, false);
  const kinds = v.problems.map((p) => `${p.seq}:${p.kind}`);
  assert.ok(kinds.includes('3:gap'), kinds.join());
  assert.ok(kinds.includes('3:chain'), kinds.join());
  assert.ok(kinds.includes('6:checkpoint'), kinds.join());
  assert.match(
    v.problems.find((p) => p.kind === 'checkpoint')!.message,
    /log ends at entry 4, so entries 5\.\.6 were removed/,
  );
  db.close();
  f.cleanup();
});

test('the head file an earlier version left beside the database still anchors the entry it names', () => {
  const f = fixture(4);
  const head = f.log.verify().headHash;
  // Written by an earlier version (it rewrote this file on every append); now only read.
  writeFileSync(join(f.dir, 'head.json'), JSON.stringify({ seq: 4, hash: head }));
  f.log.append({ actor, action: 'later' });
  assert.equal(f.log.verify().ok, true);
  f.db.close();
  rewriteAndRecompute(f.dbPath, 4, (e) => void (e.action = 'forged'));
  const { db, log } = f.reopen();
  const v = log.verify();
  assert.ok(
    v.problems.some(
      (p) => p.seq === 4 && p.kind === 'content' && /an earlier version recorded/.test(p.message),
    ),
    JSON.stringify(v.problems),
  );
  db.close();
  f.cleanup();
});

test('export is verifiable offline; a tampered export line is reported', () => {
  const f = fixture(4);
  const e = f.log.exportJsonl();
  assert.equal(e.count, 4);
  const parsed = parseJsonl(e.content);
  assert.equal(parsed.entries.length, 4);
  assert.equal(verifyEntries(parsed.entries).ok, true);
  const lines = e.content.trim().split('\n');
  assert.equal(lines.length, 5, 'four entries and the checkpoint cut for the export');
  assert.match(lines[4]!, /^\{"checkpoint":1,"log":"install-1","seq":4,/);
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

test('appends from two connections (processes) keep one unbroken chain and one numbering of checkpoints', () => {
  const f = fixture(0);
  const other = f.reopen();
  for (let i = 0; i < 200; i++) (i % 2 ? f.log : other.log).append({ actor, action: `a${i}` });
  other.checkpoints.cutNow();
  const v = f.log.verify();
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.equal(v.count, 200);
  // 64 and 128 and 192 by count, then the last 8 on demand: cut by whichever connection made them due.
  assert.deepEqual(
    f.checkpoints.all().map((c) => [c.n, c.seq]),
    [
      [1, 64],
      [2, 128],
      [3, 192],
      [4, 200],
    ],
  );
  const file = readFileSync(join(f.dir, CHECKPOINT_FILE), 'utf8').trim().split('\n');
  assert.deepEqual(
    file.map((l) => (JSON.parse(l) as { checkpoint: number }).checkpoint),
    [1, 2, 3, 4],
  );
  other.db.close();
  f.db.close();
  f.cleanup();
});

test('removing the checkpoint file beside the database is named', () => {
  const f = fixture(3);
  f.checkpoints.cutNow();
  removeFile(join(f.dir, CHECKPOINT_FILE));
  const v = f.log.verify();
  assert.equal(v.ok, false);
  assert.equal(v.copies.find((c) => c.kind === 'file')!.status, 'missing');
  assert.match(
    v.problems[0]!.message,
    /checkpoint file beside the database .* is missing, but this database holds 1 checkpoint: it was deleted/,
  );
  f.db.close();
  f.cleanup();
});
