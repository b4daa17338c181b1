/**
 * The review loop on the lab, for real: an agent (a real MCP client of `fluid mcp`, scripted) works in
 * a sandbox of fluid-lab-web and asks for its change to be applied to the production VM
 * fluid-lab-prod, reached through the lab host as a jump with the lab's own target key; the change is
 * verified, fingerprinted and previewed on production in check mode (real ansible-playbook), sealed,
 * approved by a person with presence and applied; production then has the change and a second
 * check-mode run changes nothing. Around it: the agent's doors cannot decide, two applies to one
 * target at once (one waits; one approval runs once), a change made on production after submission
 * (refused as STALE, naming what drifted), a cancelled run (says which tasks ran), an edit after
 * approval (voids it), and the audit log (holds the bundle hash, the preview, the approver, the
 * result; verifies).
 *
 * Production is restored afterwards to what it was (files, packages, unit, users), and the test
 * checks that it is, by Fluid's state program and through the guest agent. Run it under the VM lock:
 *   flock /tmp/fluid-vm.lock node --test test/integration/changes-lab.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createCore } from '../../src/core/createCore.ts';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { createLogger } from '../../src/core/platform/logger.ts';
import { readState } from '../../src/core/targets/state.ts';
import type { Apply, Change, Scope, TargetState } from '../../src/shared/contract/changes.ts';
import type { Sandbox } from '../../src/shared/contract/sandboxes.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';
import { FLUID_BIN, fluid } from '../support/cli.ts';
import { testCore } from '../support/core.ts';
import { labHost, requireLab, type Lab } from '../support/lab.ts';

interface ProdTarget {
  vm: string;
  address: string;
  port: number;
  user: string;
  keyPath: string;
  become: 'sudo';
  hostKeyFingerprint: string;
}

const LABCTL = fileURLToPath(new URL('../../scripts/lab/labctl.py', import.meta.url));
const core = testCore({ secrets: undefined }); // file-backed secrets: the CLI and MCP subprocesses share them
const t = connectInProcess(core, { door: 'test', id: 'changes-lab' });
const person = connectInProcess(core, { door: 'web', id: 'alice' });
const cli = (args: string[]) => fluid(args, { dataDir: core.paths.dataDir, timeoutMs: 300_000 });
const started = Date.now();
const timings: Record<string, number> = {};
const phase = (name: string, since: number) => (timings[name] = Math.round((Date.now() - since) / 100) / 10);
let lab: Lab;
let prod: ProdTarget;
let mcp: Client | null = null;
let other: ReturnType<typeof createCore> | null = null;
const sandboxes: string[] = [];
let sbx: Sandbox;
let change1: Change;

/** What the scenario touches on production, to restore it and prove it restored. */
const TOUCHED: Scope = {
  packages: ['cron'],
  files: [
    '/etc/motd',
    '/etc/systemd/system/fluid-hello.service',
    '/etc/systemd/system/multi-user.target.wants/fluid-hello.service',
    '/etc/cron.d/fluid-heartbeat',
  ],
  units: ['fluid-hello.service'],
  users: ['fluidweb'],
  groups: ['fluidops', 'fluidweb'],
  sysctl: [],
};
let before0: TargetState;
let motd0 = '';

const SCENARIO = `set -e
apt-get update -o Acquire::Languages=none -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cron >/dev/null
printf 'prod-web: changes reach this machine only after a person approves them.\\n' > /etc/motd
cat > /etc/systemd/system/fluid-hello.service <<'EOF'
[Unit]
Description=Fluid review loop test service

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable fluid-hello.service 2>/dev/null
groupadd fluidops
useradd -m -s /bin/bash -G fluidops fluidweb
echo '*/15 * * * * root /usr/bin/true # fluid heartbeat' > /etc/cron.d/fluid-heartbeat`;

const RESTORE = (motdB64: string) => `set -u
systemctl disable fluid-hello.service >/dev/null 2>&1
systemctl stop fluid-hello.service >/dev/null 2>&1
rm -f /etc/systemd/system/fluid-hello.service /etc/systemd/system/multi-user.target.wants/fluid-hello.service /etc/cron.d/fluid-heartbeat
systemctl daemon-reload
id fluidweb >/dev/null 2>&1 && userdel -r fluidweb 2>/dev/null
getent group fluidops >/dev/null && groupdel fluidops
getent group fluidweb >/dev/null && groupdel fluidweb
if dpkg-query -W -f='\${Status}' cron 2>/dev/null | grep -q 'install ok'; then DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq cron >/dev/null 2>&1; fi
printf '%s' '${motdB64}' | base64 -d > /etc/motd
chmod 0644 /etc/motd
echo restored`;

/** A command on production through its guest agent: a channel independent of Fluid's SSH. */
function onProd(script: string): string {
  return execFileSync('python3', [LABCTL, 'ga-exec', prod.vm, '/bin/sh', '-c', script], {
    timeout: 600_000,
  }).toString();
}

async function until(what: string, probe: () => boolean, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const x of t.stream('tasks.watch', { id: task.id })) last = x;
  return last;
}

async function applyAndFollow(client: typeof person, change: string): Promise<{ apply: Apply; log: string }> {
  const { apply } = await client.call('changes.apply', { change });
  let log = '';
  let end: Apply | null = null;
  for await (const e of client.stream('changes.watchApply', { apply: apply.id })) {
    if (e.kind === 'log') log += e.data;
    if (e.kind === 'end') end = e.apply;
  }
  return { apply: end!, log };
}

async function prodState(): Promise<TargetState> {
  const conn = await core.targets.connect('prod-web');
  try {
    return await readState(conn, 'sudo', TOUCHED);
  } finally {
    conn.close();
  }
}

async function submit(title: string): Promise<Change> {
  const r = await t.call('changes.submit', { target: 'prod-web', sandbox: sbx.id, title });
  const done = await finish(r.task);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  return t.call('changes.get', { change: r.change.id });
}

const approve = (c: Change) =>
  person.call('approvals.decide', { id: c.approval!.id, decision: 'approve', presence: { kind: 'confirm' } });

const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

before(async () => {
  lab = await requireLab();
  const p = (lab as Lab & { prodTarget?: ProdTarget }).prodTarget;
  if (!p)
    throw new Error(
      'The lab does not describe fluid-lab-prod as an apply target (lab.json has no prodTarget). Run `bash scripts/lab/lab.sh up` (as root).',
    );
  prod = p;
  await t.call('hosts.add', labHost(lab));
  motd0 = onProd('base64 -w0 /etc/motd').trim();
  // production must start clean: a run that died half way is cleaned up first
  onProd(RESTORE(motd0));
});

after(async () => {
  try {
    if (prod && motd0) {
      assert.equal(onProd(RESTORE(motd0)).trim(), 'restored');
      if (before0) assert.deepEqual(await prodState(), before0, 'production is back to what it was');
    }
  } finally {
    await mcp?.close().catch(() => {});
    await other?.close().catch(() => {});
    for (const id of sandboxes) await t.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
    await core.sandboxes.settleTemplates();
    await t.call('bases.prune', { host: 'lab' }).catch(() => {});
    await core.dispose();
    console.log(
      `changes-lab timings (s): ${JSON.stringify({ ...timings, total: Math.round((Date.now() - started) / 1000) })}`,
    );
  }
});

describe('the review loop, fluid-lab-web sandbox → fluid-lab-prod', () => {
  test('a production target: its host key confirmed on first contact, then pinned; it logs in and becomes root', async () => {
    const t0 = Date.now();
    const probe = await t.call('targets.probe', { address: prod.address, port: prod.port, jump: 'lab' });
    // lab.sh read the key through the guest agent: an independent channel to compare with
    assert.equal(probe.hostKey.fingerprint, prod.hostKeyFingerprint);
    const add = {
      name: 'prod-web',
      address: prod.address,
      user: prod.user,
      credential: { type: 'keyFile' as const, path: prod.keyPath },
      jump: 'lab',
      become: 'sudo' as const,
      sourceVm: { host: 'lab', vm: prod.vm },
    };
    await assert.rejects(
      t.call('targets.add', {
        ...add,
        acceptFingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      }),
      { code: 'HOSTKEY_MISMATCH' },
    );
    assert.deepEqual(await t.call('targets.list', {}), [], 'nothing was added');
    // a process without a terminal (a script, an agent's shell) registers no production target
    const r = await cli([
      'target',
      'add',
      'prod-x',
      `${prod.user}@${prod.address}`,
      '--key',
      prod.keyPath,
      '--jump',
      'lab',
      '--accept-fingerprint',
      prod.hostKeyFingerprint,
      '--json',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /DENIED/);
    const target = await t.call('targets.add', { ...add, acceptFingerprint: probe.hostKey.fingerprint });
    assert.equal(target.hostKey?.fingerprint, prod.hostKeyFingerprint);
    assert.ok(target.lastCheck?.ok, JSON.stringify(target.lastCheck));
    assert.equal(target.lastCheck?.facts.hostname, 'prod-web');
    const list = await cli(['target', 'check', 'prod-web', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(JSON.stringify(list.json()), /sudo -n works without a password/);
    before0 = await prodState();
    assert.equal(before0.users.fluidweb, null, 'production starts without the change');
    phase('target', t0);
  });

  test('the agent works in a sandbox of fluid-lab-web and asks, over MCP, for its change to reach production', async () => {
    let t0 = Date.now();
    const made = await t.call('sandboxes.create', {
      host: 'lab',
      source: 'fluid-lab-web',
      name: 'review-loop',
      allow: ['deb.debian.org'],
    });
    sandboxes.push(made.target!);
    const done = await finish(made);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    sbx = done.result as Sandbox;
    phase('sandbox', t0);

    t0 = Date.now();
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [FLUID_BIN, 'mcp'],
      env: { ...(process.env as Record<string, string>), FLUID_DATA_DIR: core.paths.dataDir },
      stderr: 'pipe',
    });
    mcp = new Client({ name: 'scripted-agent', version: '1.0.0' });
    await mcp.connect(transport);
    const call = async (name: string, args: Record<string, unknown>) => {
      const r = (await mcp!.callTool({ name, arguments: args }, undefined, {
        timeout: 1_800_000,
        resetTimeoutOnProgress: true,
      })) as CallToolResult;
      assert.ok(!r.isError, `${name}: ${text(r)}`);
      return r;
    };
    await call('run_command', { sandbox_id: sbx.id, command: SCENARIO, timeout_seconds: 900 });
    phase('agent work', t0);
    t0 = Date.now();
    const diff = text(await call('diff_sandbox', { sandbox_id: sbx.id, include_content: false }));
    assert.match(diff, /fluid-hello\.service/);
    await call('generate_playbook', { sandbox_id: sbx.id });
    phase('diff+generate', t0);
    // the warm template this sandbox's creation started lets verification restore instead of boot
    await core.sandboxes.settleTemplates();
    t0 = Date.now();
    const asked = await call('request_apply', {
      sandbox_id: sbx.id,
      target: 'prod-web',
      title: 'Motd, a service, an account and a cron job for prod-web',
    });
    phase('request_apply (verify, baseline, preview, seal)', t0);
    const out = asked.structuredContent as { change_id: string; status: string; bundle_sha256: string };
    assert.equal(out.status, 'awaiting-approval', text(asked));
    change1 = await person.call('changes.get', { change: out.change_id });
    const approval = await person.call('approvals.get', { id: change1.approval!.id });
    assert.equal(approval.kind, 'apply');
    assert.equal(approval.subjectHash, change1.sha256, 'the approval names the bundle');
    assert.deepEqual(approval.requestedBy, { door: 'mcp', id: 'scripted-agent' });
    const bundle = await person.call('changes.bundle', { change: change1.id });
    assert.equal(createHash('sha256').update(bundle.json).digest('hex'), change1.sha256);
    assert.equal(change1.verification?.status, 'passed');
    assert.deepEqual(
      change1.verification?.steps.map((s) => s.status),
      ['passed', 'passed', 'passed', 'passed', 'passed'],
    );
    // the baseline covers what the change touches
    assert.ok(bundle.bundle.baseline.scope.files.includes('/etc/motd'));
    assert.ok(bundle.bundle.baseline.scope.users.includes('fluidweb'));
    assert.ok(bundle.bundle.baseline.scope.units.includes('fluid-hello.service'));
    assert.ok(bundle.bundle.baseline.scope.packages.includes('cron'));
    // the preview: what will change on prod-web, read-only
    const p = change1.preview!;
    assert.ok(p.changed >= 4, JSON.stringify(p.tasks.map((x) => [x.task, x.status, x.changed])));
    const motd = p.tasks.find((x) => x.diff?.includes('changes reach this machine'));
    assert.ok(motd, 'the preview shows the new /etc/motd as a diff');
    assert.equal((await prodState()).users.fluidweb, null, 'the preview changed nothing');
    // fluid change show: the diff summary, the playbook hash, verification, the preview
    const show = await cli(['change', 'show', change1.id.slice(0, 8)]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(
      show.stdout,
      new RegExp(`playbook: +\\S+ revision ${change1.playbook.revision}, sha256 ${change1.playbook.sha256}`),
    );
    assert.match(show.stdout, /verification: passed/);
    assert.match(show.stdout, /Production preview \(check mode with --diff on prod-web/);
    const raw = await cli(['change', 'show', change1.id, '--bundle']);
    assert.equal(createHash('sha256').update(raw.stdout).digest('hex'), change1.sha256);
  });

  test("nobody but a person decides: not the agent's MCP door, not a CLI without a terminal", async () => {
    const names = (await mcp!.listTools()).tools.map((x) => x.name);
    assert.ok(names.includes('request_apply'));
    assert.ok(!names.some((n) => /approv|decide|^apply/.test(n)), names.join(', '));
    const id = change1.approval!.id;
    for (const args of [
      ['approval', 'approve', id, '--yes'],
      ['approval', 'approve', id],
      ['apply', change1.id],
    ]) {
      const r = await cli(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, /DENIED|no terminal|Only a person/, args.join(' '));
    }
    const mcpDoor = connectInProcess(core, { door: 'mcp', id: 'scripted-agent' });
    await assert.rejects(
      mcpDoor.call('approvals.decide', { id, decision: 'approve', presence: { kind: 'confirm' } }),
      {
        code: 'DENIED',
      },
    );
    await assert.rejects(person.call('approvals.decide', { id, decision: 'approve' }), { code: 'DENIED' });
    assert.equal((await person.call('approvals.get', { id })).status, 'pending');
    const a = await approve(change1);
    assert.equal(a.decidedVia, 'confirm');
    assert.deepEqual(a.decidedBy, { door: 'web', id: 'alice' });
  });

  test('two applies to one target at once: one waits for the other, and the approval runs once', async () => {
    const t0 = Date.now();
    other = createCore({
      dataDir: core.paths.dataDir,
      logger: createLogger({ level: 'error' }),
      egress: null,
    });
    const otherPerson = connectInProcess(other, { door: 'web', id: 'bob' });
    const first = applyAndFollow(person, change1.id);
    // the first holds the target's lock before the second asks
    await until('the first apply to hold the lock', () => !!core.targets.store.lock(change1.target.id));
    const second = await otherPerson.call('changes.apply', { change: change1.id });
    const seen: string[] = [];
    for await (const e of otherPerson.stream('changes.watchApply', { apply: second.apply.id }))
      if (e.kind !== 'log') seen.push(e.apply.status);
    const a = await first;
    phase('apply + post-check', t0);
    const b = other.changes.applyGet(second.apply.id);
    assert.ok(seen.includes('waiting'), `the second apply waited: ${seen.join(' → ')}`);
    assert.equal(a.apply.status, 'succeeded', `${a.apply.summary}\n${a.log.slice(-3000)}`);
    assert.equal(b.status, 'refused');
    assert.equal(b.refusal?.reason, 'USED', b.summary);
    // exactly the approved bytes ran, with per-task results; production needs nothing more
    assert.match(a.log, new RegExp(`bundle ${change1.sha256}`));
    assert.ok(a.apply.tasks.length >= 5);
    assert.ok(
      a.apply.tasks.every((x) => x.status === 'ok' || x.status === 'changed'),
      JSON.stringify(a.apply.tasks),
    );
    assert.equal(a.apply.postCheck?.changed, 0, JSON.stringify(a.apply.postCheck?.tasks));
    assert.deepEqual(a.apply.postCheck?.mismatches, []);
    assert.equal(a.apply.postCheck?.matches, true);
    assert.deepEqual(a.apply.approvedBy, { door: 'web', id: 'alice' });
    assert.equal(
      (await t.call('targets.get', { target: 'prod-web' })).lastBaseline?.sha256,
      a.apply.baselineAfter?.sha256,
    );
    // production has what the sandbox has, seen through a channel Fluid does not use (the cron
    // module marks its entry with a comment line: entries are compared)
    const seenOnProd = onProd(
      "cat /etc/motd; id -nG fluidweb; getent passwd fluidweb | cut -d: -f7; systemctl is-enabled fluid-hello.service; grep -v '^#' /etc/cron.d/fluid-heartbeat; dpkg-query -W -f='${Version}\\n' cron",
    );
    const inSandbox = (
      await t.call('sandboxes.exec', {
        sandbox: sbx.id,
        command:
          "cat /etc/motd; id -nG fluidweb; getent passwd fluidweb | cut -d: -f7; systemctl is-enabled fluid-hello.service; grep -v '^#' /etc/cron.d/fluid-heartbeat; dpkg-query -W -f='${Version}\\n' cron",
      })
    ).stdout;
    assert.equal(seenOnProd, inSandbox);
    assert.match(
      seenOnProd,
      /changes reach this machine[\s\S]*fluidweb fluidops[\s\S]*\/bin\/bash[\s\S]*enabled/,
    );
    // and the history of the target says so
    const history = await cli(['target', 'history', 'prod-web']);
    assert.match(history.stdout, /succeeded/);
    assert.match(history.stdout, /refused/);
  });

  let change2: Change;
  test('a change made on production after submission: the apply is refused as STALE, naming what drifted', async () => {
    const t0 = Date.now();
    change2 = await submit('Second look at prod-web');
    phase('second submission (verified already: baseline, preview)', t0);
    assert.equal(change2.preview?.changed, 0, 'production already has the change');
    await approve(change2);
    onProd("printf 'edited by hand on production\\n' >> /etc/motd; chmod 0600 /etc/motd");
    const { apply } = await applyAndFollow(person, change2.id);
    assert.equal(apply.status, 'refused');
    assert.equal(apply.refusal?.reason, 'STALE');
    const drifted = apply.refusal!.drift.find((d) => d.key === '/etc/motd');
    assert.ok(drifted, JSON.stringify(apply.refusal));
    assert.deepEqual(drifted.fields, ['mode', 'sha256', 'size']);
    assert.match(apply.summary, /file \/etc\/motd: file 0644 .* → file 0600/);
    assert.equal(apply.tasks.length, 0, 'nothing ran');
    assert.equal((await person.call('changes.get', { change: change2.id })).approval?.usedBy, null);
    onProd(
      "printf 'prod-web: changes reach this machine only after a person approves them.\\n' > /etc/motd; chmod 0644 /etc/motd",
    );
  });

  test('cancel stops the run cleanly and says which tasks ran', async () => {
    const { apply, task } = await person.call('changes.apply', { change: change2.id });
    let cancelled = false;
    for await (const e of person.stream('changes.watchApply', { apply: apply.id })) {
      if (e.kind !== 'log' && !cancelled && e.apply.tasks.length >= 2) {
        cancelled = true;
        await person.call('tasks.cancel', { id: task.id });
      }
    }
    const a = await person.call('changes.applyGet', { apply: apply.id });
    assert.equal(a.status, 'cancelled', a.summary);
    assert.match(a.summary, /Cancelled during the run\. Tasks that ran: "/);
    for (const done of a.tasks) assert.ok(a.summary.includes(`"${done.task}"`), a.summary);
    assert.ok(a.tasks.length < change2.preview!.tasks.length, 'it stopped before the end');
    assert.equal(core.targets.store.lock(change2.target.id), null, 'the lock was released');
  });

  test('editing the playbook after approval voids the approval', async () => {
    const change3 = await submit('Third look at prod-web');
    await approve(change3);
    const pb = await person.call('playbooks.get', { playbook: change3.playbook.id });
    await person.call('playbooks.save', {
      playbook: change3.playbook.id,
      yaml: `${pb.revision!.yaml}# reviewed\n`,
      baseRevision: change3.playbook.revision,
    });
    const c = await person.call('changes.get', { change: change3.id });
    assert.equal(c.status, 'void');
    const { apply } = await applyAndFollow(person, change3.id);
    assert.equal(apply.status, 'refused');
    assert.equal(apply.refusal?.reason, 'VERIFICATION');
    assert.match(apply.summary, /edited after approval/);
  });

  test('the audit log holds the bundle hash, the preview, the approver and the result, and verifies', async () => {
    const entries = (await t.call('audit.list', { limit: 500 })).entries;
    const of = (action: string) => entries.filter((e) => e.action === action && e.target === change1.id);
    const sealed = of('change.sealed')[0]!.data as {
      bundle: string;
      preview: { sha256: string; changed: number };
    };
    assert.equal(sealed.bundle, change1.sha256);
    assert.equal(sealed.preview.sha256, change1.preview!.sha256);
    const decided = entries.find((e) => e.action === 'approval.decide' && e.target === change1.approval!.id)!;
    assert.equal((decided.data as { subjectHash: string }).subjectHash, change1.sha256);
    assert.equal((decided.data as { via: string }).via, 'confirm');
    const applied = of('change.apply').map(
      (e) => e.data as { bundle: string; status: string; approvedBy: unknown },
    );
    assert.ok(applied.some((d) => d.status === 'succeeded' && d.bundle === change1.sha256));
    assert.deepEqual(applied.find((d) => d.status === 'succeeded')!.approvedBy, { door: 'web', id: 'alice' });
    assert.ok(of('change.apply.refuse').some((e) => (e.data as { reason: string }).reason === 'USED'));
    assert.ok(
      entries.some(
        (e) => e.action === 'change.apply.refuse' && (e.data as { reason: string }).reason === 'STALE',
      ),
    );
    const v = await t.call('audit.verify', {});
    assert.ok(v.ok, JSON.stringify(v.problems));
  });
});
