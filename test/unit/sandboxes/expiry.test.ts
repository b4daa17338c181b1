/**
 * The host-side expiry watchdog (expiry.py) on this machine, installed and driven through the same
 * functions Fluid uses on a host, with a stand-in `virsh` that keeps domains as files. The lab test
 * (test/integration/expiry.test.ts) runs it against real libvirt and a real VM.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import {
  armExpiry,
  disarmExpiry,
  EXPIRY_SOURCE_URL,
  expiryDir,
  type ExpiryEntry,
} from '../../../src/core/sandboxes/expiry.ts';
import { hostLayout } from '../../../src/core/sandboxes/layout.ts';
import { pidAlive } from '../../../src/core/store/tasks.ts';
import { eventually } from '../../support/eventually.ts';

const work = mkdtempSync(join(tmpdir(), 'fluid-expiry-'));
const fake = join(work, 'libvirt');
mkdirSync(join(fake, 'domains'), { recursive: true });
mkdirSync(join(work, 'bin'));
// virsh -q -c URI CMD DOMAIN…: domains are files holding their XML; every call is logged.
writeFileSync(
  join(work, 'bin', 'virsh'),
  `#!/bin/sh
shift 3
echo "$*" >> ${fake}/calls
f=${fake}/domains/$2
case $1 in
  dumpxml) [ -f "$f" ] && exec cat "$f"; echo "error: failed to get domain '$2'" >&2; exit 1;;
  destroy) [ -f "$f" ] && echo destroyed >> "$f.state"; exit 0;;
  undefine) rm -f "$f" "$f.state"; exit 0;;
esac
exit 1
`,
);
chmodSync(join(work, 'bin', 'virsh'), 0o755);
process.env.PATH = `${join(work, 'bin')}:${process.env.PATH}`;

const installation = randomUUID();
const layout = hostLayout(join(work, 'storage'), installation);
const conn = new LocalConnection('local');
const started: number[] = [];
after(async () => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function sandbox(opts: { labelledFor?: string; at: number }): ExpiryEntry {
  const id = randomUUID();
  const domain = `fluid-t-${id.slice(0, 8)}`;
  const dir = layout.sandbox(id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vda.qcow2'), 'disk');
  writeFileSync(
    join(fake, 'domains', domain),
    `<domain><name>${domain}</name><metadata><fluid:sandbox xmlns:fluid="https://fluid.dev/xmlns/libvirt/1" id="${opts.labelledFor ?? id}" installation="${installation}"/></metadata></domain>`,
  );
  return { id, domain, uri: 'qemu:///system', dir, at: opts.at };
}

const watcherPid = async () => {
  const r = await conn.exec(`python3 ${expiryDir(layout)}/expiry.py status ${layout.root}`);
  assert.equal(r.code, 0, r.stderr.toString());
  return (JSON.parse(r.stdout.toString()) as { watcher: number | null }).watcher;
};

test('expiry.py parses with the Python 3.9 grammar (the oldest a host may have) and pyflakes finds nothing', () => {
  const py = fileURLToPath(EXPIRY_SOURCE_URL);
  const out = execFileSync('python3', [
    '-c',
    'import ast,sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3,9)); print("ok")',
    py,
  ]);
  assert.equal(out.toString().trim(), 'ok');
  const r = spawnSync('pyflakes3', [py], { encoding: 'utf8' });
  assert.ok(!r.error, 'pyflakes3 is required for this test: apt-get install -y pyflakes3');
  assert.equal(r.status, 0, `pyflakes3:\n${r.stdout}${r.stderr}`);
});

test('a due sandbox is destroyed on the host with no Fluid process involved; one not yet due is kept', async () => {
  const now = Math.floor(Date.now() / 1000);
  const due = sandbox({ at: now - 5 });
  const later = sandbox({ at: now + 3600 });
  const armed = await armExpiry(conn, layout, [due, later]);
  assert.equal(armed.watcher, 'process', 'no systemd here: a detached watcher');
  assert.equal(armed.entries, 2);
  const pid = await watcherPid();
  assert.ok(pid && pidAlive(pid), 'the watcher runs on its own');
  started.push(pid);

  const tomb = join(expiryDir(layout), `${due.id}.expired`);
  await eventually('the due sandbox to be expired', () => existsSync(tomb));
  assert.ok(!existsSync(join(fake, 'domains', due.domain)), 'its domain was undefined');
  assert.ok(!existsSync(due.dir), 'its files were removed');
  const t = JSON.parse(readFileSync(tomb, 'utf8')) as { id: string; destroyed: boolean };
  assert.deepEqual([t.id, t.destroyed], [due.id, true]);
  assert.ok(existsSync(join(fake, 'domains', later.domain)), 'the other one is untouched');
  assert.ok(existsSync(later.dir));
  const calls = readFileSync(join(fake, 'calls'), 'utf8');
  assert.match(calls, new RegExp(`destroy ${due.domain}`));
  assert.doesNotMatch(calls, new RegExp(`destroy ${later.domain}`));

  // Arming again while it runs starts no second watcher, and does not re-arm what the host expired.
  const again = await armExpiry(conn, layout, [due, later], { replace: true });
  assert.equal(again.watcher, 'running');
  assert.equal(again.entries, 1);
  assert.deepEqual(
    again.expired.map((x) => x.id),
    [due.id],
  );
  assert.equal(await watcherPid(), pid);

  // Forgetting everything stops the watcher and leaves nothing of the watchdog behind.
  await disarmExpiry(conn, layout, [due.id, later.id]);
  await eventually('the watcher to exit', () => !pidAlive(pid));
  assert.ok(!existsSync(expiryDir(layout)), 'the expiry directory is gone');
});

test('a domain with the entry’s name that is not labelled as that sandbox is left alone', async () => {
  const now = Math.floor(Date.now() / 1000);
  const impostor = sandbox({ at: now - 1, labelledFor: randomUUID() });
  const r = await armExpiry(conn, layout, [impostor]);
  assert.deepEqual([r.watcher, r.entries], ['process', 1]);
  // With its only entry dropped the watcher tidies up and exits: the directory goes with it.
  await eventually('the entry to be dropped', () => !existsSync(expiryDir(layout)));
  assert.ok(existsSync(join(fake, 'domains', impostor.domain)), 'the domain is still defined');
  assert.ok(existsSync(impostor.dir), 'its files are still there');
  assert.doesNotMatch(
    readFileSync(join(fake, 'calls'), 'utf8'),
    new RegExp(`(destroy|undefine) ${impostor.domain}`),
  );
});

test('entries outside this installation’s directory, or not naming a sandbox, are refused one by one', async () => {
  const good = sandbox({ at: Math.floor(Date.now() / 1000) + 3600 });
  const bad = [
    { ...good, id: randomUUID(), dir: '/etc' },
    { ...good, id: '../../etc' },
    { ...good, id: randomUUID(), domain: 'x; rm -rf /' },
  ];
  const r = await armExpiry(conn, layout, [...bad, good]);
  assert.deepEqual(
    r.refused.map((x) => x.problem),
    ["dir is not this installation's directory of that sandbox", 'id is not a sandbox id', 'bad domain name'],
  );
  assert.equal(r.entries, 1, 'the good one is armed');
  const pid = await watcherPid();
  if (pid) started.push(pid);
  await disarmExpiry(conn, layout, [good.id]);
  if (pid) await eventually('the watcher to exit', () => !pidAlive(pid));
  assert.ok(!existsSync(expiryDir(layout)), 'nothing is left');
});
