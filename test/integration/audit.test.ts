/**
 * The audit log's signed checkpoints on a real host: the lab host registered over SSH (real sshd, the
 * real `fluid` CLI in its own processes). The copy must land on the host under Fluid's storage dir,
 * byte for byte what is kept beside the database; verify must name a host copy that disagrees; an
 * unreachable host must not stop anything. Nothing here boots a VM.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { requireLab, LAB_DIR, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { tempDir } from '../support/core.ts';
import { deleteRows, removeFile } from '../support/audit.ts';
import type { AuditVerify } from '../../src/shared/contract/audit.ts';

let lab: Lab;
const data = tempDir('fluid-audit-it-');
const run = (args: string[]) => fluid(args, { dataDir: data.dir });
const dbPath = join(data.dir, 'fluid.db');
const localFile = join(data.dir, 'audit-checkpoints.jsonl');
// A storage dir of its own on the host, so that the test removes exactly what it made.
const storageDir = `/var/tmp/fluid-audit-it-${process.pid}-${Date.now()}`;
let installation = '';
let hostFile = '';

/** Run a command on the lab host over plain OpenSSH (not through Fluid), pinned to the lab's host key. */
function onHost(command: string, input?: string): string {
  return execFileSync(
    'ssh',
    [
      '-i',
      lab.keyPath,
      '-p',
      String(lab.sshPort),
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${join(data.dir, 'known_hosts')}`,
      '-o',
      'StrictHostKeyChecking=yes',
      `${lab.sshUser}@${lab.sshHost}`,
      command,
    ],
    { encoding: 'utf8', input },
  );
}

const checkpointsOf = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { checkpoint: number; seq: number; head: string });

before(async () => {
  lab = await requireLab();
  const hostKey = (JSON.parse(readFileSync(`${LAB_DIR}/lab.json`, 'utf8')) as { hostKeyPublic: string })
    .hostKeyPublic;
  writeFileSync(join(data.dir, 'known_hosts'), `[${lab.sshHost}]:${lab.sshPort} ${hostKey}\n`);
  const r = await run([
    'host',
    'add',
    `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`,
    '--key',
    lab.keyPath,
    '--name',
    'lab',
    '--accept-fingerprint',
    lab.hostKeyFingerprint,
    '--storage-dir',
    storageDir,
    '--no-check',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const db = new Database(dbPath, { readonly: true });
  installation = (db.prepare("SELECT value FROM meta WHERE key = 'installation'").get() as { value: string })
    .value;
  db.close();
  hostFile = `${storageDir}/${installation}/audit-checkpoints.jsonl`;
});

after(() => {
  if (lab) onHost(`rm -rf -- '${storageDir}'`);
  data.cleanup();
});

describe('audit checkpoints on the lab host', () => {
  test('each checkpoint lands on the host under the storage dir, owner-only, the same bytes as beside the database', async () => {
    // Adding the host was signed at once; each export cuts one and is itself an audited, signed action.
    for (let i = 0; i < 3; i++) {
      const e = await run(['audit', 'export', '--output', join(data.dir, `export-${i}.jsonl`)]);
      assert.equal(e.code, 0, e.stderr);
    }
    const local = readFileSync(localFile, 'utf8');
    const remote = onHost(`cat -- '${hostFile}'`);
    assert.equal(remote, local, "the host's copy is the file beside the database, line for line");
    assert.ok(checkpointsOf(remote).length >= 4, remote);
    assert.equal(onHost(`stat -c '%a %U' -- '${hostFile}'`).trim(), `600 ${lab.sshUser}`);

    const v = (await run(['audit', 'verify', '--json'])).json<AuditVerify>();
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    const copy = v.copies.find((c) => c.kind === 'host' && c.name === 'lab')!;
    assert.deepEqual(
      [copy.status, copy.path, copy.latest?.n],
      ['ok', hostFile, checkpointsOf(remote).at(-1)!.checkpoint],
    );
    assert.match(v.signingKey!.fingerprint!, /^SHA256:/);
    const text = await run(['audit', 'verify']);
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, /Signing key: SHA256:[A-Za-z0-9+/]{43}/);
    assert.match(text.stdout, /host lab: ok at #\d+/);
  });

  test('a host copy edited on the host is named, with the checkpoint it holds', async () => {
    const original = onHost(`cat -- '${hostFile}'`);
    const lines = original.trim().split('\n');
    const second = JSON.parse(lines[1]!) as Record<string, unknown>;
    second.head = '0'.repeat(64);
    lines[1] = JSON.stringify(second);
    onHost(`cat > '${hostFile}'`, lines.join('\n') + '\n');
    const r = await run(['audit', 'verify']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      /\[signature\] Host lab has checkpoint #2 \(seq \d+, head 000000000000…\) whose signature does not verify: that copy was altered/,
    );
    assert.match(r.stdout, /host lab: disagrees/);
    onHost(`cat > '${hostFile}'`, original);
    assert.equal((await run(['audit', 'verify'])).code, 0);
  });

  test('an unreachable host stops nothing: appends go on, its checkpoints wait and are delivered when it is back', async () => {
    const setPort = (port: number) => {
      const db = new Database(dbPath);
      db.prepare("UPDATE hosts SET port = ? WHERE name = 'lab'").run(port);
      db.close();
    };
    setPort(1); // nothing listens there
    try {
      const e = await run(['audit', 'export', '--output', join(data.dir, 'export-down.jsonl')]);
      assert.equal(e.code, 0, e.stderr);
      const v = (await run(['audit', 'verify', '--json'])).json<AuditVerify>();
      const copy = v.copies.find((c) => c.kind === 'host' && c.name === 'lab')!;
      assert.equal(copy.status, 'unreachable');
      assert.ok(copy.pending >= 1, JSON.stringify(copy));
      assert.ok(v.notes.some((n) => n === 'Not compared (unreachable): lab.'));
    } finally {
      setPort(lab.sshPort);
    }
    // A minute later (the failed attempt is dated back): the next checkpoint goes out with the pending ones.
    const db = new Database(dbPath);
    db.prepare("UPDATE audit_witnesses SET attempted_at = '2000-01-01T00:00:00.000Z'").run();
    db.close();
    assert.equal((await run(['audit', 'export', '--output', join(data.dir, 'export-up.jsonl')])).code, 0);
    assert.equal(onHost(`cat -- '${hostFile}'`), readFileSync(localFile, 'utf8'), 'caught up');
    assert.equal((await run(['audit', 'verify'])).code, 0);
  });

  test('rows removed with the checkpoints beside the database: verify names the checkpoint the host still holds', async () => {
    const held = checkpointsOf(onHost(`cat -- '${hostFile}'`));
    const kept = held[0]!; // checkpoint #1 stays; every entry after it goes, with checkpoints #2..
    const newest = held.at(-1)!;
    assert.ok(newest.seq > kept.seq + 1, JSON.stringify(held));
    deleteRows(dbPath, { fromSeq: kept.seq + 1, checkpointsFrom: 2 });
    removeFile(localFile);
    const r = await run(['audit', 'verify']);
    assert.equal(r.code, 1, r.stdout);
    assert.ok(
      r.stdout.includes(
        `[checkpoint] Host lab has checkpoint #${newest.checkpoint} (seq ${newest.seq}, head ${newest.head.slice(0, 12)}…) that this database does not contain: the log ends at entry ${kept.seq}, so entries ${kept.seq + 1}..${newest.seq} were removed.`,
      ),
      r.stdout,
    );
    assert.match(r.stdout, /\[copy\] The checkpoint file beside the database .* is missing/);
    const v = (await run(['audit', 'verify', '--json'])).json<AuditVerify>();
    assert.equal(v.copies.find((c) => c.kind === 'host' && c.name === 'lab')!.status, 'disagrees');
    // Checked on this machine alone, the shortened log looks whole but for the missing file.
    const local = (await run(['audit', 'verify', '--local', '--json'])).json<AuditVerify>();
    assert.ok(!local.problems.some((p) => /were removed/.test(p.message)), JSON.stringify(local.problems));
  });
});
