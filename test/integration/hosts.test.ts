/**
 * Host onboarding against the lab: a real sshd, a real libvirt. Driven through the real `fluid` CLI.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { requireLab, type Lab } from '../support/lab.ts';
import { fluid } from '../support/cli.ts';
import { tempDir } from '../support/core.ts';
import { startSshd, type TestSshd } from '../support/sshd.ts';
import type { Host, Preflight, Vm } from '../../src/shared/contract/hosts.ts';

let lab: Lab;
const data = tempDir('fluid-hosts-it-');
const run = (args: string[], stdin?: string) => fluid(args, { dataDir: data.dir, stdin });

before(async () => {
  lab = await requireLab();
});
after(() => {
  // The copy of the audit checkpoints this installation left on the lab host (this same machine).
  const dbFile = join(data.dir, 'fluid.db');
  if (existsSync(dbFile)) {
    const db = new Database(dbFile, { readonly: true });
    const row = db.prepare("SELECT value FROM meta WHERE key = 'installation'").get() as
      { value: string } | undefined;
    db.close();
    if (row) rmSync(`/var/lib/fluid/${row.value}`, { recursive: true, force: true });
  }
  data.cleanup();
});

describe('adding the lab host over SSH', () => {
  const target = () => `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`;

  test('without confirmation it shows the fingerprint and adds nothing', async () => {
    const r = await run(['host', 'add', target(), '--key', lab.keyPath, '--name', 'lab']);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(lab.hostKeyFingerprint), 'fingerprint shown');
    assert.match(r.stderr, /--accept-fingerprint/);
    const hosts = (await run(['host', 'list', '--json'])).json<Host[]>();
    assert.deepEqual(
      hosts.map((h) => h.name),
      ['local'],
    );
  });

  test('answering no at the prompt adds nothing', async () => {
    const r = await run(['host', 'add', target(), '--key', lab.keyPath, '--name', 'lab'], 'n\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /DENIED/);
    assert.equal((await run(['host', 'list', '--json'])).json<Host[]>().length, 1);
  });

  test('a fingerprint that does not match what the host presents is refused', async () => {
    const r = await run([
      'host',
      'add',
      target(),
      '--key',
      lab.keyPath,
      '--accept-fingerprint',
      'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      '--json',
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'HOSTKEY_MISMATCH');
  });

  test('a wrong key is AUTH_FAILED and adds nothing', async () => {
    const k = tempDir();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(k.dir, 'id')]);
    const r = await run([
      'host',
      'add',
      target(),
      '--key',
      join(k.dir, 'id'),
      '--accept-fingerprint',
      lab.hostKeyFingerprint,
      '--json',
    ]);
    k.cleanup();
    assert.equal(r.code, 1);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'AUTH_FAILED');
    assert.equal((await run(['host', 'list', '--json'])).json<Host[]>().length, 1);
  });

  test('confirmed by the prompt: added, logged in, preflight passes with the virt type detected', async () => {
    const r = await run(['host', 'add', target(), '--key', lab.keyPath, '--name', 'lab', '--json'], 'y\n');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.json<{ host: Host; preflight: Preflight }>();
    assert.equal(out.host.hostKey!.fingerprint, lab.hostKeyFingerprint);
    assert.equal(out.preflight.ok, true, JSON.stringify(out.preflight.checks, null, 1));
    assert.equal(out.preflight.facts.virtType, lab.virtType);
    const virsh = out.preflight.checks.find((c) => c.id === 'virsh')!;
    assert.equal(virsh.status, 'pass');
  });

  test('source list --json lists the lab source VMs with their state', async () => {
    const r = await run(['source', 'list', '--host', 'lab', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { vms } = r.json<{ vms: Vm[] }>();
    for (const s of lab.sources) {
      const vm = vms.find((v) => v.name === s.name);
      assert.ok(vm, `${s.name} listed`);
      assert.ok(['running', 'shut off'].includes(vm.state), vm.state);
      assert.equal(vm.hostName, 'lab');
      assert.ok(vm.disks.some((d) => d.source === s.disk));
    }
    const virshStates = execFileSync('virsh', [
      '-c',
      lab.libvirtUri,
      'list',
      '--all',
      '--name',
      '--state-running',
    ]).toString();
    for (const vm of vms.filter((v) => lab.sources.some((s) => s.name === v.name))) {
      assert.equal(vm.running, virshStates.split('\n').includes(vm.name), `${vm.name} state matches virsh`);
    }
  });

  test('capacity reports what the host has', async () => {
    const r = await run(['host', 'capacity', 'lab', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const c = r.json<{ cpus: number; memoryMiB: number; diskFreeBytes: number; virtType: string }>();
    assert.ok(c.cpus >= 1 && c.memoryMiB > 0 && c.diskFreeBytes > 0);
    assert.equal(c.virtType, lab.virtType);
  });

  test('the audit log records the addition and the check, by the CLI door', async () => {
    const r = await run(['audit', 'list', '--json']);
    const actions = r.json<{ entries: Array<{ action: string; actor: { door: string } }> }>().entries;
    assert.ok(actions.some((e) => e.action === 'host.add' && e.actor.door === 'cli'));
    assert.ok(actions.some((e) => e.action === 'host.check'));
  });
});

describe('a host whose key changes is refused on every call', () => {
  let sshd: TestSshd;
  before(async () => {
    sshd = await startSshd(execFileSync('ssh-keygen', ['-y', '-f', lab.keyPath]).toString());
  });
  after(async () => sshd.stop());

  test('after rotation: check, vms, capacity and sources fail with HOSTKEY_MISMATCH until trusted again', async () => {
    const fp = sshd.fingerprint();
    const add = await run([
      'host',
      'add',
      `root@127.0.0.1:${sshd.port}`,
      '--key',
      lab.keyPath,
      '--name',
      'rotating',
      '--accept-fingerprint',
      fp,
      '--json',
    ]);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    await sshd.rotateHostKey();
    const newFp = sshd.fingerprint();
    assert.notEqual(newFp, fp);
    for (const args of [
      ['host', 'check', 'rotating', '--json'],
      ['host', 'vms', 'rotating', '--json'],
      ['host', 'capacity', 'rotating', '--json'],
      ['source', 'list', '--host', 'rotating', '--json'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 1, args.join(' '));
      const err = r.json<{
        error: { code: string; message: string; data: { presented: string; trusted: string } };
      }>().error;
      assert.equal(err.code, 'HOSTKEY_MISMATCH', args.join(' '));
      assert.equal(err.data.presented, newFp);
      assert.equal(err.data.trusted, fp);
    }
    // All hosts: the others still answer, the changed one is reported
    const all = (await run(['source', 'list', '--json'])).json<{
      errors: Array<{ hostName: string; code: string }>;
    }>();
    assert.deepEqual(
      all.errors.map((e) => [e.hostName, e.code]),
      [['rotating', 'HOSTKEY_MISMATCH']],
    );
    // Trusting anything but the presented key changes nothing
    const wrong = await run(['host', 'trust', 'rotating', '--accept-fingerprint', fp, '--json']);
    assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'HOSTKEY_MISMATCH');
    const ok = await run(['host', 'trust', 'rotating', '--accept-fingerprint', newFp, '--json']);
    assert.equal(ok.code, 0, ok.stdout);
    const check = await run(['host', 'check', 'rotating', '--json']);
    assert.equal(check.code, 0, check.stdout);
  });

  test('an unreachable host is HOST_UNREACHABLE with advice', async () => {
    const r = await run(['host', 'add', 'root@127.0.0.1:1', '--key', lab.keyPath, '--json']);
    assert.equal(r.code, 1);
    const e = r.json<{ error: { code: string; message: string } }>().error;
    assert.equal(e.code, 'HOST_UNREACHABLE');
    assert.match(e.message, /sshd running/);
  });
});

describe('audit verify through the CLI', () => {
  test('reports the exact row edited behind its back, and exits non-zero', async () => {
    const before = await run(['audit', 'verify', '--json']);
    assert.equal(before.code, 0, before.stdout);
    const list = (await run(['audit', 'list', '--json', '--limit', '500'])).json<{
      entries: Array<{ seq: number; action: string }>;
    }>();
    const victim = list.entries.find((e) => e.action === 'host.add')!;
    const db = new Database(join(data.dir, 'fluid.db'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare(`UPDATE audit_log SET data = json_set(data, '$.user', 'mallory') WHERE seq = ?`).run(
      victim.seq,
    );
    db.close();
    const after = await run(['audit', 'verify']);
    assert.equal(after.code, 1);
    assert.match(after.stdout, new RegExp(`row ${victim.seq} \\[content\\]`));
    const j = (await run(['audit', 'verify', '--json'])).json<{
      ok: boolean;
      problems: Array<{ seq: number; kind: string }>;
    }>();
    assert.deepEqual(
      j.problems.map((p) => [p.seq, p.kind]),
      [[victim.seq, 'content']],
    );
  });
});
