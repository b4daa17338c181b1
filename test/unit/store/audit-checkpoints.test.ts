/**
 * Signed checkpoints of the audit chain: signing and checking, when they are cut, the copies beside the
 * database and on a host (the host here is this machine through the real LocalConnection and the real
 * host script, with its storage dir in a temp dir), and the attacks they exist for, done for real on the
 * SQLite file and on exported files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Host } from '../../../src/shared/contract/hosts.ts';
import { AuditLog, entryHash, GENESIS_HASH } from '../../../src/core/store/audit.ts';
import { openDatabase } from '../../../src/core/store/db.ts';
import { migrations } from '../../../src/core/store/migrations.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import { FluidError } from '../../../src/shared/errors.ts';
import { LocalConnection, type HostConnection } from '../../../src/core/hosts/connection.ts';
import {
  checkpointMessage,
  keyFingerprint,
  parseLine,
  rawPublicKey,
  signatureValid,
  signCheckpoint,
  sshPublicKeyLine,
  toLine,
  type Checkpoint,
} from '../../../src/core/audit/checkpoint.ts';
import { CHECKPOINT_FILE, CheckpointLog, isImportantAction } from '../../../src/core/audit/checkpoints.ts';
import { AUDIT_KEY_META, AUDIT_KEY_SECRET, AuditSigner } from '../../../src/core/audit/signer.ts';
import { HostWitness, hostCheckpointPath } from '../../../src/core/audit/witness.ts';
import { verifyExport } from '../../../src/core/audit/export.ts';
import { canonicalJson } from '../../../src/core/util/canonical.ts';
import { deleteRows, removeFile, rewriteAndRecompute, tempDir } from '../../support/audit.ts';

const actor = { door: 'test' as const, id: 'alice' };
const INSTALLATION = '2b1f0c4e-aaaa-4bbb-8ccc-123456789abc';

class FakeClock {
  t = Date.parse('2026-03-01T10:00:00Z');
  now = () => new Date(this.t);
}

function hostRow(storageDir: string, over: Partial<Host> = {}): Host {
  return {
    id: 'h-kvm1',
    name: 'kvm1',
    kind: 'ssh',
    address: '192.0.2.10',
    port: 22,
    user: 'root',
    auth: { type: 'local' },
    hostKey: null,
    libvirtUri: 'qemu:///system',
    storageDir,
    createdAt: '2026-01-01T00:00:00.000Z',
    lastCheck: null,
    ...over,
  };
}

/** A data dir with a log, its checkpoints and (optionally) a host whose storage dir is a temp dir. */
function setup(opts: { policy?: { everyEntries: number; everyMs: number }; host?: boolean } = {}) {
  const { dir, cleanup } = tempDir();
  const storage = join(dir, 'host-storage');
  const clock = new FakeClock();
  const secrets = new MemorySecretStore();
  let reachable = true;
  const conn = new LocalConnection('h-kvm1');
  const hostList = opts.host === false ? [] : [hostRow(storage)];
  const hosts = {
    list: () => hostList,
    connection: async (_ref: string): Promise<HostConnection> => {
      if (!reachable)
        throw new FluidError('HOST_UNREACHABLE', 'Cannot reach 192.0.2.10:22: connect ETIMEDOUT');
      return conn;
    },
  };
  const open = () => {
    const db = openDatabase(join(dir, 'fluid.db'));
    const log = new AuditLog(db, clock, null, null);
    const checkpoints = new CheckpointLog({
      db,
      clock,
      signer: new AuditSigner(secrets, db),
      installation: INSTALLATION,
      file: join(dir, CHECKPOINT_FILE),
      policy: opts.policy,
    });
    const witness = new HostWitness({
      db,
      checkpoints,
      installation: INSTALLATION,
      hosts,
      audit: log,
      clock,
    });
    log.attach(checkpoints, witness);
    return { db, log, checkpoints, witness };
  };
  return {
    dir,
    dbPath: join(dir, 'fluid.db'),
    storage,
    hostFile: hostCheckpointPath(storage, INSTALLATION),
    clock,
    secrets,
    open,
    setReachable: (r: boolean) => void (reachable = r),
    cleanup,
  };
}

function appendN(log: AuditLog, n: number, action = 'thing') {
  for (let i = 0; i < n; i++) log.append({ actor, action, target: `t${i}`, data: { i } });
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);

// --- signing ----------------------------------------------------------------------------------------

test('a checkpoint verifies with its key; changing any signed field, the key or the signature breaks it', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pub = rawPublicKey(privateKey);
  const body = { n: 3, log: INSTALLATION, seq: 120, head: 'ab'.repeat(32), ts: '2026-03-01T10:00:00.000Z' };
  const c = signCheckpoint(body, privateKey, pub);
  assert.equal(signatureValid(c), true);
  assert.equal(
    checkpointMessage(c).toString(),
    `fluid audit checkpoint v1\nlog ${INSTALLATION}\ncheckpoint 3\nsize 120\nhead ${'ab'.repeat(32)}\ntime 2026-03-01T10:00:00.000Z\n`,
  );
  for (const change of [
    { n: 4 },
    { log: 'another-log' },
    { seq: 119 },
    { head: 'cd'.repeat(32) },
    { ts: '2026-03-01T10:00:01.000Z' },
    { key: rawPublicKey(generateKeyPairSync('ed25519').privateKey) },
    { sig: Buffer.alloc(64, 1).toString('base64') },
  ])
    assert.equal(signatureValid({ ...c, ...change }), false, JSON.stringify(change));
  // One line, parsed back to the same checkpoint.
  const parsed = parseLine(toLine(c));
  assert.deepEqual(parsed, c);
  assert.deepEqual(parseLine('{"checkpoint":0}'), { error: 'no checkpoint number' });
});

test("the key's fingerprint is the one ssh-keygen shows for the same public key", () => {
  const { dir, cleanup } = tempDir();
  const pub = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
  writeFileSync(join(dir, 'audit.pub'), sshPublicKeyLine(pub) + '\n');
  const out = execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'audit.pub')], { encoding: 'utf8' });
  assert.equal(out.split(' ')[1], keyFingerprint(pub));
  cleanup();
});

// --- when checkpoints are cut -----------------------------------------------------------------------

test('checkpoints are cut every N entries, after T of quiet (fake clock), at once after important actions, and at close', () => {
  const s = setup({ policy: { everyEntries: 4, everyMs: 60_000 }, host: false });
  const { db, log, checkpoints } = s.open();
  appendN(log, 3);
  assert.equal(checkpoints.latest(), null, 'three entries: not due yet');
  appendN(log, 1);
  assert.equal(checkpoints.latest()!.seq, 4, 'the fourth entry made one due');
  appendN(log, 1);
  s.clock.t += 59_999;
  appendN(log, 1);
  assert.equal(checkpoints.latest()!.seq, 4);
  s.clock.t += 1;
  appendN(log, 1);
  assert.equal(checkpoints.latest()!.seq, 7, 'a minute after the last checkpoint');
  log.append({ actor, action: 'approval.decide', target: 'ap-1', data: { decision: 'approved' } });
  assert.equal(checkpoints.latest()!.seq, 8, 'an approval decision is signed at once');
  assert.equal(isImportantAction('host.add') && isImportantAction('change.apply'), true);
  assert.equal(isImportantAction('sandbox.exec'), false);
  appendN(log, 2);
  void log.close();
  assert.deepEqual(
    checkpoints.all().map((c) => c.seq),
    [4, 7, 8, 10],
  );
  assert.deepEqual(
    lines(join(s.dir, CHECKPOINT_FILE)).map((l) => (JSON.parse(l) as { seq: number }).seq),
    [4, 7, 8, 10],
  );
  db.close();
  s.cleanup();
});

test('an append that cuts no checkpoint writes no file: nothing beside the database changes per entry', () => {
  const s = setup({ host: false });
  const { db, log } = s.open();
  const before = readdirSync(s.dir).sort();
  appendN(log, 20);
  assert.deepEqual(readdirSync(s.dir).sort(), before, 'no head file, no checkpoint file yet');
  log.append({ actor, action: 'settings.update', data: {} });
  assert.deepEqual(readdirSync(s.dir).sort(), [...before, CHECKPOINT_FILE].sort());
  assert.equal(statSync(join(s.dir, CHECKPOINT_FILE)).mode & 0o777, 0o600);
  db.close();
  s.cleanup();
});

test('a log written before checkpoints existed is checkpointed once, as it is, at the next start', () => {
  const s = setup({ host: false });
  // A database from the build before checkpoints: the migrations up to theirs.
  const since = migrations.find((m) => m.name === 'audit-checkpoints')!.version;
  const old = openDatabase(
    s.dbPath,
    migrations.filter((m) => m.version < since),
  );
  appendN(new AuditLog(old, s.clock, null, null), 10);
  old.close();
  const { db, checkpoints, log } = s.open();
  assert.deepEqual(
    checkpoints.all().map((c) => [c.n, c.seq]),
    [[1, 10]],
  );
  assert.equal(log.verify().ok, true);
  db.close();
  s.cleanup();
});

// --- the key ------------------------------------------------------------------------------------------

test('a key that went missing from the secret store is reported, never silently replaced', () => {
  const s = setup({ host: false });
  const first = s.open();
  first.log.append({ actor, action: 'settings.update', data: {} });
  const fp = keyFingerprint(first.checkpoints.latest()!.key);
  first.db.close();
  s.secrets.delete(AUDIT_KEY_SECRET);
  const { db, log, checkpoints } = s.open();
  log.append({ actor, action: 'settings.update', data: {} });
  assert.equal(checkpoints.all().length, 1, 'nothing signed with a new key');
  assert.equal(s.secrets.get(AUDIT_KEY_SECRET), null, 'no key created');
  const v = log.verify();
  assert.equal(v.ok, false);
  assert.equal(v.signingKey!.fingerprint, fp, 'the recorded key is still the one shown');
  assert.match(
    v.signingKey!.problem!,
    new RegExp(`audit signing key ${fp.replace(/[+/]/g, '\\$&')} is not in the secret store`),
  );
  assert.ok(v.problems.some((p) => p.kind === 'signature'));
  db.close();
  s.cleanup();
});

test('a replaced key is refused, and checkpoints signed by another key are named with both fingerprints', () => {
  const s = setup({ host: false });
  const first = s.open();
  first.log.append({ actor, action: 'settings.update', data: {} });
  first.db.close();
  const { privateKey } = generateKeyPairSync('ed25519');
  s.secrets.set(AUDIT_KEY_SECRET, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  const { db, log } = s.open();
  const v = log.verify();
  assert.match(v.signingKey!.problem!, /the key was replaced/);
  // The same database with its recorded key made to match the new one: the old checkpoint is foreign.
  db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(rawPublicKey(privateKey), AUDIT_KEY_META);
  const again = s.open();
  const w = again.log.verify();
  const p = w.problems.find((x) => x.kind === 'signature')!;
  assert.match(p.message, /is signed by key SHA256:.+, not this log's key SHA256:/);
  again.db.close();
  db.close();
  s.cleanup();
});

// --- (a) rows removed together with the checkpoints beside the database -----------------------------

test('rows deleted with the checkpoint file and the database checkpoints: the host copy names it', async () => {
  const s = setup({ policy: { everyEntries: 8, everyMs: 3_600_000 } });
  const { db, log, witness } = s.open();
  appendN(log, 24);
  await witness.flush();
  assert.deepEqual(
    lines(s.hostFile).map((l) => (JSON.parse(l) as { seq: number }).seq),
    [8, 16, 24],
    'the host holds every checkpoint',
  );
  assert.equal(statSync(s.hostFile).mode & 0o777, 0o600);
  assert.equal((await log.verifyWithHosts()).ok, true);
  db.close();

  // Everything on this machine: the newest rows, the checkpoints that cover them, the file beside the DB.
  deleteRows(s.dbPath, { fromSeq: 13, checkpointsFrom: 2 });
  removeFile(join(s.dir, CHECKPOINT_FILE));
  const after = s.open();
  const local = after.log.verify();
  // The file's deletion is seen here (the DB still has #1); what was removed with it is seen on the host.
  assert.ok(!local.problems.some((p) => /entries 13\.\.24/.test(p.message)), 'not visible locally');
  const v = await after.log.verifyWithHosts();
  assert.equal(v.ok, false);
  const named = v.problems.filter((p) => p.message.startsWith('Host kvm1 has checkpoint'));
  assert.deepEqual(
    named.map((p) => p.message.replace(/head [0-9a-f]{12}…/, 'head H')),
    [
      'Host kvm1 has checkpoint #2 (seq 16, head H) that this database does not contain: the log ends at entry 12, so entries 13..16 were removed.',
      'Host kvm1 has checkpoint #3 (seq 24, head H) that this database does not contain: the log ends at entry 12, so entries 13..24 were removed.',
    ],
  );
  assert.equal(v.copies.find((c) => c.kind === 'host')!.status, 'disagrees');
  after.db.close();
  s.cleanup();
});

test('and if new entries were appended after the deletion, the renumbered checkpoints are refused by the host', async () => {
  const s = setup({ policy: { everyEntries: 8, everyMs: 3_600_000 } });
  const first = s.open();
  appendN(first.log, 16);
  await first.witness.flush();
  first.db.close();
  deleteRows(s.dbPath, { fromSeq: 9, checkpointsFrom: 2 });
  removeFile(join(s.dir, CHECKPOINT_FILE));
  const { db, log, witness, checkpoints } = s.open();
  appendN(log, 8, 'innocent'); // a new #2 over different entries 9..16
  db.prepare('DELETE FROM audit_witnesses').run(); // and forget what the host was given
  await witness.flush();
  assert.equal(lines(s.hostFile).length, 2, "the host's copy was not extended with the new #2");
  assert.match(
    witness.state('h-kvm1').error!,
    /disagrees: host kvm1's copy ends with checkpoint #2 .* which differs from this database's #2/,
  );
  const audited = log.list({ limit: 10, action: 'audit.copy.conflict' }).entries;
  assert.equal(audited.length, 1, 'the disagreement is in the log itself');
  const v = await log.verifyWithHosts();
  assert.ok(
    v.problems.some(
      (p) =>
        p.kind === 'checkpoint' &&
        /^Host kvm1 has checkpoint #2 \(seq 16, .*, which differs from this database's #2 \(seq 16, .*\): the log's entry 16 has hash/.test(
          p.message,
        ),
    ),
    JSON.stringify(v.problems, null, 1),
  );
  assert.equal(checkpoints.latest()!.n >= 2, true);
  db.close();
  s.cleanup();
});

// --- (b) a row rewritten and the whole chain recomputed --------------------------------------------

test('a rewritten row with the whole chain recomputed is caught by the signature, even with the checkpoints re-signed locally', async () => {
  const s = setup({ policy: { everyEntries: 5, everyMs: 3_600_000 } });
  const first = s.open();
  appendN(first.log, 10);
  await first.witness.flush();
  const signed = first.checkpoints.all();
  first.db.close();

  rewriteAndRecompute(s.dbPath, 3, (e) => {
    e.action = 'forged';
    e.data = { i: 2, innocent: true };
  });
  // 1. The database's own signed checkpoints see it.
  let o = s.open();
  let v = o.log.verify();
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [
      [5, 'checkpoint'],
      [10, 'checkpoint'],
    ],
  );
  o.db.close();

  // 2. Someone edits the checkpoints' heads to the recomputed ones: the signatures no longer verify.
  const raw = new Database(s.dbPath);
  raw.exec('DROP TRIGGER audit_checkpoints_no_update');
  const heads = new Map(
    (
      raw.prepare('SELECT seq, hash FROM audit_log WHERE seq IN (5, 10)').all() as Array<{
        seq: number;
        hash: string;
      }>
    ).map((r) => [r.seq, r.hash]),
  );
  for (const c of signed)
    raw.prepare('UPDATE audit_checkpoints SET head = ? WHERE n = ?').run(heads.get(c.seq), c.n);
  raw.close();
  o = s.open();
  v = o.log.verify();
  assert.ok(
    v.problems.some(
      (p) =>
        p.kind === 'signature' &&
        /^This database has checkpoint #1 .* whose signature does not verify/.test(p.message),
    ),
  );
  o.db.close();

  // 3. Someone who read the private key re-signs them and rewrites the file beside the database: this
  //    machine is consistent again, but the host's copy was signed before the rewrite.
  const pem = s.secrets.get(AUDIT_KEY_SECRET)!;
  const { createPrivateKey } = await import('node:crypto');
  const key = createPrivateKey(pem);
  const forged: Checkpoint[] = signed.map((c) =>
    signCheckpoint({ ...c, head: heads.get(c.seq)! }, key, rawPublicKey(key)),
  );
  const raw2 = new Database(s.dbPath);
  raw2.exec('DROP TRIGGER IF EXISTS audit_checkpoints_no_update');
  for (const c of forged)
    raw2.prepare('UPDATE audit_checkpoints SET head = ?, sig = ? WHERE n = ?').run(c.head, c.sig, c.n);
  raw2.close();
  writeFileSync(join(s.dir, CHECKPOINT_FILE), forged.map((c) => toLine(c) + '\n').join(''));
  o = s.open();
  assert.equal(o.log.verify().ok, true, 'nothing on this machine can tell any more');
  v = await o.log.verifyWithHosts();
  assert.equal(v.ok, false);
  const msgs = v.problems.map((p) => p.message);
  assert.ok(
    msgs.some((m) =>
      /^Host kvm1 has checkpoint #1 \(seq 5, .*\), which differs from this database's #1 .*: the log's entry 5 has hash .*, so entries up to 5 were rewritten/.test(
        m,
      ),
    ),
    msgs.join('\n'),
  );
  o.db.close();
  s.cleanup();
});

// --- the host copy --------------------------------------------------------------------------------------

test('an unreachable host never blocks appends: its checkpoints wait, and arrive when it is back', async () => {
  const s = setup({ policy: { everyEntries: 4, everyMs: 3_600_000 } });
  const { db, log, witness } = s.open();
  s.setReachable(false);
  appendN(log, 12); // three checkpoints cut while the host is down
  await witness.flush();
  assert.equal(existsSync(s.hostFile), false);
  const st = witness.state('h-kvm1');
  assert.equal(st.delivered, 0);
  assert.match(st.error!, /unreachable: Cannot reach 192\.0\.2\.10:22/);
  let v = await log.verifyWithHosts();
  const copy = v.copies.find((c) => c.kind === 'host')!;
  assert.deepEqual([copy.status, copy.pending], ['unreachable', 3]);
  assert.ok(v.notes.some((n) => /Not compared \(unreachable\): kvm1/.test(n)));
  s.setReachable(true);
  // For a minute after a failed attempt, background delivery (and a CLI's exit) leaves the host alone.
  appendN(log, 4);
  await witness.settled();
  assert.equal(existsSync(s.hostFile), false);
  s.clock.t += 60_000;
  appendN(log, 4);
  await witness.settled();
  assert.equal(lines(s.hostFile).length, 5);
  assert.equal(witness.state('h-kvm1').delivered, 5);
  v = await log.verifyWithHosts();
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.equal(v.copies.find((c) => c.kind === 'host')!.status, 'ok');
  db.close();
  s.cleanup();
});

test('a host copy that lost its newest lines is audited and filled again; one that was altered is named', async () => {
  const s = setup({ policy: { everyEntries: 4, everyMs: 3_600_000 } });
  const { db, log, witness, checkpoints } = s.open();
  appendN(log, 12);
  await witness.flush();
  const full = lines(s.hostFile);
  writeFileSync(s.hostFile, full.slice(0, 1).join('\n') + '\n');
  let v = await log.verifyWithHosts();
  assert.ok(
    v.problems.some(
      (p) =>
        p.message === "Host kvm1's copy ends at #1, but #2..#3 were delivered to it: the copy was cut short.",
    ),
    JSON.stringify(v.problems),
  );
  appendN(log, 4); // the next checkpoint is delivered: the lost lines go back first, and it is audited
  await witness.flush();
  assert.deepEqual(lines(s.hostFile), checkpoints.all().map(toLine));
  assert.ok(checkpoints.all().length >= 4);
  const regressed = log.list({ limit: 5, action: 'audit.copy.regressed' }).entries;
  assert.deepEqual(regressed[0]!.data, { host: 'kvm1', delivered: 3, found: 1 });
  await witness.flush();

  // Altered: a line's head changed on the host.
  const now = lines(s.hostFile);
  const c2 = JSON.parse(now[1]!) as Record<string, unknown>;
  c2.head = 'f'.repeat(64);
  now[1] = JSON.stringify(c2);
  writeFileSync(s.hostFile, now.join('\n') + '\n');
  v = await log.verifyWithHosts();
  assert.ok(
    v.problems.some(
      (p) =>
        p.kind === 'signature' &&
        /^Host kvm1 has checkpoint #2 \(seq 8, head ffffffffffff…\) whose signature does not verify/.test(
          p.message,
        ),
    ),
    JSON.stringify(v.problems),
  );
  assert.equal(v.copies.find((c) => c.kind === 'host')!.status, 'disagrees');

  // Deleted altogether.
  rmSync(join(s.storage, INSTALLATION), { recursive: true });
  v = await log.verifyWithHosts();
  assert.ok(
    v.problems.some((p) =>
      /^Host kvm1 has no copy at .*, though checkpoints #1\.\.#\d+ were delivered to it/.test(p.message),
    ),
  );
  db.close();
  s.cleanup();
});

test('the local host gets a copy only once Fluid keeps files there', async () => {
  const s = setup({ host: false });
  const local = hostRow(s.storage, { id: 'local', name: 'local', kind: 'local' });
  const { db, log, checkpoints } = s.open();
  const witness = new HostWitness({
    db,
    checkpoints,
    installation: INSTALLATION,
    hosts: { list: () => [local], connection: async () => new LocalConnection('local') },
    audit: log,
    clock: s.clock,
  });
  log.append({ actor, action: 'settings.update', data: {} });
  await witness.flush();
  assert.equal(existsSync(join(s.storage, INSTALLATION)), false, 'no directory made on the local machine');
  mkdirSync(join(s.storage, INSTALLATION), { recursive: true });
  await witness.flush();
  assert.equal(lines(s.hostFile).length, 1);
  db.close();
  s.cleanup();
});

// --- (c) exports, offline ---------------------------------------------------------------------------------

function exportOf(n: number, everyEntries = 5) {
  const s = setup({ policy: { everyEntries, everyMs: 3_600_000 }, host: false });
  const { db, log } = s.open();
  appendN(log, n);
  const e = log.exportJsonl();
  const fp = log.verify().signingKey!.fingerprint;
  db.close();
  s.cleanup();
  return { lines: e.content.trim().split('\n'), fp };
}

/** Rewrite entry `seq` in exported lines and recompute every hash after it (entry lines only). */
function recomputeExport(ls: string[], seq: number, edit: (e: Record<string, unknown>) => void): string[] {
  let prev = GENESIS_HASH;
  return ls.map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    if ('checkpoint' in o) return l;
    if ((o.seq as number) === seq) edit(o);
    if ((o.seq as number) >= seq) {
      o.prevHash = prev;
      o.data = JSON.parse(canonicalJson(o.data));
      o.hash = entryHash(o as never);
    }
    prev = o.hash as string;
    return JSON.stringify(o);
  });
}

test('an export verifies offline with the key it carries, and says what that can and cannot prove', () => {
  const { lines: ls, fp } = exportOf(12);
  const v = verifyExport(ls.join('\n'));
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.equal(v.signingKey!.fingerprint, fp);
  assert.deepEqual([v.checkpoint!.n, v.checkpoint!.seq, v.uncovered], [3, 12, 0]);
  assert.match(v.notes.join(' '), /cannot prove the export is complete/);
  assert.match(v.notes.join(' '), new RegExp(`Signed by key ${fp!.replace(/[+/]/g, '\\$&')}`));
});

test('an export with a row rewritten and the chain recomputed fails offline; editing the checkpoint breaks its signature', () => {
  const { lines: ls } = exportOf(12);
  const forged = recomputeExport(ls, 3, (e) => void (e.action = 'forged'));
  let v = verifyExport(forged.join('\n'));
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [
      [5, 'checkpoint'],
      [10, 'checkpoint'],
      [12, 'checkpoint'],
    ],
  );
  assert.match(
    v.problems[0]!.message,
    /^The export has checkpoint #1 \(seq 5, .*\): the log's entry 5 has hash .*, so entries up to 5 were rewritten/,
  );
  // Point the checkpoints at the recomputed hashes: the signatures fail.
  const hashes = new Map(
    forged
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((o) => !('checkpoint' in o))
      .map((o) => [o.seq, o.hash]),
  );
  const patched = forged.map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    if (!('checkpoint' in o)) return l;
    o.head = hashes.get(o.seq);
    return JSON.stringify(o);
  });
  v = verifyExport(patched.join('\n'));
  assert.deepEqual(
    v.problems.map((p) => p.kind),
    ['signature', 'signature', 'signature'],
  );
  // Re-signed with a key of the forger's own: it verifies, but under another fingerprint than the installation's.
  const { privateKey } = generateKeyPairSync('ed25519');
  const resigned = patched.map((l) => {
    const p = parseLine(l);
    return 'error' in p ? l : toLine(signCheckpoint(p, privateKey, rawPublicKey(privateKey)));
  });
  v = verifyExport(resigned.join('\n'));
  assert.equal(v.ok, true);
  assert.notEqual(v.signingKey!.fingerprint, exportOf(1).fp);
  assert.equal(v.signingKey!.fingerprint, keyFingerprint(rawPublicKey(privateKey)));
});

test('an export with rows deleted and checkpoint lines removed fails offline, except when cut back exactly to an earlier checkpoint', () => {
  const { lines: ls } = exportOf(12);
  const isCp = (l: string) => l.startsWith('{"checkpoint":');
  const entryLines = ls.filter((l) => !isCp(l));
  // Newest rows removed, their checkpoint kept.
  let v = verifyExport(ls.filter((l) => isCp(l) || (JSON.parse(l) as { seq: number }).seq <= 9).join('\n'));
  assert.ok(
    v.problems.some(
      (p) => p.kind === 'checkpoint' && /ends at entry 9, so entries 10\.\.12 were removed/.test(p.message),
    ),
  );
  // Newest rows and their checkpoints removed: the rows left after the last checkpoint are unsigned.
  v = verifyExport(ls.slice(0, ls.indexOf(ls.find((l) => /"seq":8,/.test(l) && !isCp(l))!) + 1).join('\n'));
  assert.deepEqual(
    v.problems.map((p) => [p.seq, p.kind]),
    [[6, 'checkpoint']],
  );
  assert.match(v.problems[0]!.message, /Entries 6\.\.8 come after the export's last checkpoint \(#1\)/);
  // Rows from the middle removed, every hash recomputed, every checkpoint line removed.
  const shortened = entryLines
    .filter((l) => (JSON.parse(l) as { seq: number }).seq !== 4)
    .map((l) => {
      const o = JSON.parse(l) as Record<string, unknown>;
      if ((o.seq as number) > 4) o.seq = (o.seq as number) - 1;
      return JSON.stringify(o);
    });
  v = verifyExport(recomputeExport(shortened, 1, () => {}).join('\n'));
  assert.deepEqual(
    v.problems.map((p) => p.kind),
    ['signature'],
  );
  assert.match(v.problems[0]!.message, /carries no signed checkpoint/);
  // Cut back exactly to checkpoint #2: indistinguishable offline from an export made then (said in notes).
  v = verifyExport(ls.slice(0, ls.findIndex((l) => l.startsWith('{"checkpoint":2,')) + 1).join('\n'));
  assert.equal(v.ok, true);
  assert.equal(v.checkpoint!.n, 2);
  assert.match(v.notes.join(' '), /a copy cut back to an earlier checkpoint verifies too/);
});
