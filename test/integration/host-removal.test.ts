/**
 * Removing a host cleans what this installation keeps there, on the lab, through the real CLI: the
 * lab over SSH with a storage dir of its own gets a real base copy of fluid-lab-web; `fluid doctor`
 * lists another installation's directory (naming its audit checkpoint copy) and never touches it;
 * `fluid host remove --keep-files` leaves the files and doctor then names them as left behind; after
 * registering the host again they show as owned by no host record; `fluid host remove` deletes this
 * installation's directory and only that. A record that shares the machine and the storage dir
 * with the local host removes none of the shared files. Needs the lab (npm run lab): fails without it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { requireLab, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { tempDir } from '../support/core.ts';

let lab: Lab;
const data = tempDir('fluid-hostrm-it-');
// A storage dir of its own on the lab host (this same machine), so nothing else lives there.
const storage = `/var/tmp/fluid-hostrm-${randomBytes(4).toString('hex')}`;
const other = randomUUID();
const run = (args: string[], timeoutMs = 180_000) => fluid(args, { dataDir: data.dir, timeoutMs });

function installation(): string {
  const db = new Database(join(data.dir, 'fluid.db'), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'installation'").get() as { value: string }).value;
  } finally {
    db.close();
  }
}

before(async () => {
  lab = await requireLab();
});
after(() => {
  rmSync(storage, { recursive: true, force: true });
  // The witness copy of the audit checkpoints under the default storage dir (the local host's).
  if (existsSync(join(data.dir, 'fluid.db')))
    rmSync(`/var/lib/fluid/${installation()}`, { recursive: true, force: true });
  data.cleanup();
});

const addLab = (name: string, extra: string[] = []) =>
  run([
    'host',
    'add',
    `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`,
    '--key',
    lab.keyPath,
    '--accept-fingerprint',
    lab.hostKeyFingerprint,
    '--name',
    name,
    '--json',
    ...extra,
  ]);

interface Check {
  id: string;
  status: string;
  detail: string;
  advice: string | null;
  title: string;
}
const doctor = async () =>
  (await run(['doctor', '--json'])).json<{ system: { checks: Check[] } }>().system.checks;

test('removing a host deletes what this installation keeps there, and only that', async () => {
  const add = await addLab('labx', ['--storage-dir', storage]);
  assert.equal(add.code, 0, add.stderr);
  const inst = installation();

  // A real base copy on the host (a consistent copy of the shut-off web VM).
  const refresh = await run(['base', 'refresh', 'fluid-lab-web', '--host', 'labx', '--json'], 300_000);
  assert.equal(refresh.code, 0, refresh.stderr);
  const baseDirs = readdirSync(`${storage}/${inst}/bases`);
  assert.equal(baseDirs.length, 1);

  // Another installation's files beside ours (say, a second data dir on another machine).
  mkdirSync(`${storage}/${other}/bases/x`, { recursive: true });
  writeFileSync(`${storage}/${other}/bases/x/vda.qcow2`, Buffer.alloc(4096, 1));
  writeFileSync(`${storage}/${other}/audit-checkpoints.jsonl`, '{"n":1}\n');

  let checks = await doctor();
  const files = checks.find((c) => c.id === 'host-files:labx');
  assert.ok(files, JSON.stringify(checks.map((c) => c.id)));
  assert.equal(files.status, 'pass', files.detail);
  assert.match(files.detail, new RegExp(`This installation \\(${inst}\\): \\d+ MiB`));
  assert.match(files.detail, new RegExp(`${other}: .* audit checkpoint copy`));

  // Keep the files: the host goes, they stay, and doctor remembers them.
  const kept = await run(['host', 'remove', 'labx', '--keep-files', '--json']);
  assert.equal(kept.code, 0, kept.stderr);
  const keptOut = kept.json<{ kept: { paths: string[]; bytes: number } | null; cleaned: unknown }>();
  assert.equal(keptOut.cleaned, null);
  assert.deepEqual(keptOut.kept?.paths, [`${storage}/${inst}`]);
  assert.ok(keptOut.kept!.bytes > 100 * 1024 ** 2, `the base copy is counted: ${keptOut.kept!.bytes}`);
  assert.ok(existsSync(`${storage}/${inst}/bases/${baseDirs[0]}`));
  checks = await doctor();
  const left = checks.find((c) => c.id.startsWith('host-files-removed:'));
  assert.ok(left, JSON.stringify(checks.map((c) => c.id)));
  assert.equal(left.status, 'warn');
  assert.match(left.detail, new RegExp(`keeping \\d+ MiB: ${storage}/${inst}`));

  // Registered again: the old base copy is owned by no host record now.
  assert.equal((await addLab('labx', ['--storage-dir', storage])).code, 0);
  checks = await doctor();
  const orphan = checks.find((c) => c.id === 'host-files:labx')!;
  assert.equal(orphan.status, 'warn', orphan.detail);
  assert.match(
    orphan.detail,
    new RegExp(`Not owned by any registered host record: ${storage}/${inst}/bases/${baseDirs[0]} \\(base`),
  );
  assert.ok(!checks.some((c) => c.id.startsWith('host-files-removed:')), 'the host is registered again');

  // Remove, cleaning (the default without a terminal): this installation's directory goes, nothing else.
  const removed = await run(['host', 'remove', 'labx', '--json']);
  assert.equal(removed.code, 0, removed.stderr);
  const out = removed.json<{ cleaned: { paths: string[]; bytes: number } | null }>();
  assert.deepEqual(out.cleaned?.paths, [`${storage}/${inst}`]);
  assert.ok(out.cleaned!.bytes > 100 * 1024 ** 2);
  assert.ok(!existsSync(`${storage}/${inst}`));
  assert.ok(existsSync(`${storage}/${other}/audit-checkpoints.jsonl`), "another installation's files stay");
  assert.ok(existsSync(`${storage}/${other}/bases/x/vda.qcow2`));
  const audit = (await run(['audit', 'list', '--action', 'host.clean', '--json'])).json<{
    entries: Array<{ data: { clean: boolean; cleaned: { bytes: number } | null } }>;
  }>();
  assert.deepEqual(
    audit.entries.map((e) => e.data.clean),
    [true, false],
  );
});

test('a second record of the local machine with the same storage dir leaves the shared files alone', async () => {
  const inst = installation();
  await run(['host', 'remove', 'labx', '--json']); // left by a failed first test, if it failed
  // The local host's storage dir holds this installation's witness copy of the audit checkpoints.
  assert.equal((await run(['host', 'check', 'local', '--json'])).code, 0);
  const add = await addLab('lab-twin');
  assert.equal(add.code, 0, add.stderr);
  const hosts = (await run(['host', 'list', '--json'])).json<
    Array<{ name: string; sameMachineAs?: string[] }>
  >();
  assert.deepEqual(hosts.find((h) => h.name === 'lab-twin')?.sameMachineAs, ['local']);
  mkdirSync(`/var/lib/fluid/${inst}`, { recursive: true });
  writeFileSync(`/var/lib/fluid/${inst}/marker`, 'shared with the local host record');
  const removed = await run(['host', 'remove', 'lab-twin', '--json']);
  assert.equal(removed.code, 0, removed.stderr);
  const out = removed.json<{ cleaned: { paths: string[] } | null; note: string | null }>();
  assert.deepEqual(out.cleaned?.paths, []);
  assert.match(out.note ?? '', /shares \/var\/lib\/fluid with local \(the same machine\)/);
  assert.ok(existsSync(`/var/lib/fluid/${inst}/marker`));
});
