/**
 * Read-only access to a production VM, for real: `run_source_command` and `read_source_file`
 * through the tool registry against the lab's running fluid-lab-prod (registered over SSH), as
 * the agent in read-only mode.
 *
 * Allowed reads work and run as nobody; a write and a root-only read are refused. Then one attack
 * of each class the policy closes is tried twice: first straight through the runner, past the
 * policy, as nobody (what would happen if the policy let it by: the marker file appears, or the
 * listener on the VM counts a connection), then through the tool, which must refuse it, and the
 * VM is checked as root through the guest agent: no marker, no connection.
 *
 * Only reads the running VM through its guest agent (no sandbox, no VM lock). Everything it puts
 * on the VM lives in one scratch directory under /tmp, removed at the end; the listener stops on
 * its own after a few minutes even if this process dies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { labHost, requireLab, type Lab } from '../../support/lab.ts';
import { testCore } from '../../support/core.ts';
import { connectInProcess } from '../../../src/core/doors/inprocess.ts';
import { SourceAccess } from '../../../src/core/agent/source.ts';
import { guestExec, type GuestExecResult } from '../../../src/core/sandboxes/guest-agent.ts';
import type { HostConnection } from '../../../src/core/hosts/connection.ts';
import type { Actor } from '../../../src/shared/rpc.ts';
import type { Task } from '../../../src/shared/contract/tasks.ts';

const VM = 'fluid-lab-prod';
const PORT = 18000 + Math.floor(Math.random() * 2000);
const DIR = `/tmp/fluid-ro-${randomBytes(6).toString('hex')}`;
const LOG = `${DIR}/connections.log`;
const LISTENER = readFileSync(new URL('./fixtures/conn_listener.py', import.meta.url), 'utf8');

const agent: Actor = { door: 'agent', id: 'ses_source_readonly' };
const core = testCore();
const client = connectInProcess(core, { door: 'test', id: 'source-ro' });
let lab: Lab;
let conn: HostConnection;
let hostId: string;

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** As root on the VM, through the guest agent (the test's own eyes, never the agent's). */
async function root(cmd: string, stdin?: string): Promise<GuestExecResult> {
  return guestExec(conn, lab.libvirtUri, VM, '/bin/sh', ['-c', cmd], { stdin, timeoutMs: 60_000 });
}

const exists = async (path: string) => (await root(`test -e ${shq(path)}`)).exitCode === 0;
const connections = async () => Number((await root(`cat ${LOG} 2>/dev/null | wc -l`)).stdout.trim());

function tool(name: 'run_source_command' | 'read_source_file', input: Record<string, unknown>) {
  return core.tools.invoke(
    name,
    { source_vm: VM, host: 'lab', ...input },
    { actor: agent, sessionId: null, mode: 'read-only', signal: new AbortController().signal },
  );
}

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  return last;
}

before(async () => {
  lab = await requireLab();
  const prod = lab.sources.find((s) => s.name === VM);
  assert.ok(prod, `${VM} is not in the lab (${lab.labDir}/lab.json): run \`npm run lab\``);
  const host = await client.call('hosts.add', labHost(lab));
  hostId = host.id;
  const check = await finish(await client.call('hosts.check', { host: 'lab' }));
  assert.equal(check.status, 'succeeded', JSON.stringify(check.error));
  conn = await core.hosts.connection(hostId);
  const ping = await root('echo ready');
  assert.equal(ping.stdout.trim(), 'ready', `${VM} must be running with its guest agent: ${ping.stderr}`);
  // The scratch directory is writable by everyone, nobody included: an attack that got through
  // the policy could leave its marker here, so the absence of markers means something.
  const setup = await root(
    [
      `mkdir -m 1777 ${DIR}`,
      `cat > ${DIR}/conn_listener.py`,
      `(nohup python3 ${DIR}/conn_listener.py ${PORT} ${LOG} 600 >/dev/null 2>&1 & echo $! > ${DIR}/listener.pid)`,
      // A curl configuration file: one line of it writes the download to a file.
      `printf 'output = "%s"\\n' ${DIR}/c4-curlrc > ${DIR}/curlrc`,
      // The same, where curl finds it by itself when CURL_HOME points there.
      `mkdir ${DIR}/home && printf 'output = "%s"\\n' ${DIR}/c4-curl-home > ${DIR}/home/.curlrc`,
      `chmod -R a+rX ${DIR}`,
      `for i in $(seq 50); do python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' ${PORT} 2>/dev/null && break; sleep 0.1; done`,
      `: > ${LOG}; chmod 666 ${LOG}`,
    ].join(' && '),
    LISTENER,
  );
  assert.equal(setup.exitCode, 0, `setting up ${DIR} on ${VM}: ${setup.stderr}`);
});

after(async () => {
  if (conn) await root(`kill "$(cat ${DIR}/listener.pid)" 2>/dev/null; rm -rf ${DIR}`).catch(() => {});
  await core.dispose();
});

describe(`read-only access to ${VM}`, () => {
  test('allowed reads work, as nobody', async () => {
    const host = await tool('run_source_command', { command: 'cat /etc/hostname; id -u; id -g' });
    assert.equal(host.decision, 'allow', host.content);
    assert.equal(host.isError, false, host.content);
    const [name, uid, gid] = (host.data as { stdout: string }).stdout.trim().split('\n');
    assert.equal(name, lab.sources.find((s) => s.name === VM)!.hostname);
    assert.equal(uid, '65534', 'commands run as nobody');
    assert.equal(gid, '65534');

    const pipeline = await tool('run_source_command', {
      command: "ps -eo comm | grep -c . && ss -ltn | awk 'NR > 1 {print $4}' | sort -u | head",
    });
    assert.equal(pipeline.isError, false, pipeline.content);
    assert.match((pipeline.data as { stdout: string }).stdout, /:22\b/);

    const file = await tool('read_source_file', { path: '/etc/os-release' });
    assert.equal(file.isError, false, file.content);
    assert.match(file.content, /bookworm/);
  });

  test('a write and a root-only read are refused', async () => {
    for (const command of [`touch ${DIR}/w1`, `echo x > ${DIR}/w2`, `cp /etc/hostname ${DIR}/w3`]) {
      const r = await tool('run_source_command', { command });
      assert.equal(r.decision, 'deny', `${command}: ${r.content}`);
      assert.match(r.content, /^Denied: read-only policy: /);
    }
    for (const f of ['w1', 'w2', 'w3']) assert.equal(await exists(`${DIR}/${f}`), false, `${f} was written`);

    const shadow = await tool('read_source_file', { path: '/etc/shadow' });
    assert.equal(shadow.isError, true, shadow.content);
    assert.match(shadow.content, /Permission denied/);
    const cat = await tool('run_source_command', { command: 'cat /etc/shadow' });
    assert.equal(cat.isError, true, cat.content);
    assert.match((cat.data as { stderr: string }).stderr, /Permission denied/);
    assert.doesNotMatch(cat.content, /root:[$!*]/);
  });

  /** One attack of each class: the command, and what it leaves on the VM when it runs. */
  const ATTACKS: Array<{ name: string; command: string; effect: { file: string } | 'connection' }> = [
    {
      name: 'class 1: wait -p with a subscript runs its $(...)',
      command: `cat <(true) >/dev/null; wait -p 'a[$(id > ${DIR}/c1)]' $!`,
      effect: { file: `${DIR}/c1` },
    },
    {
      name: 'class 2: curl --doh-url sends a POST to another URL',
      command: `curl -s -m 5 --doh-url https://127.0.0.1:${PORT}/dns-query http://fluid-test.invalid/`,
      effect: 'connection',
    },
    {
      name: 'class 2: curl --proxy reaches another host',
      command: `curl -s -m 5 -x http://127.0.0.1:${PORT} http://fluid-test.invalid/`,
      effect: 'connection',
    },
    {
      name: 'class 2: curl --trace-ascii writes a file',
      command: `curl -s -m 5 --trace-ascii ${DIR}/c2 http://127.0.0.1:${PORT}/`,
      effect: { file: `${DIR}/c2` },
    },
    {
      name: 'class 3: a computed /dev/tcp target opens a connection',
      command: `h=127.0.0.1; p=${PORT}; cat < /dev/tcp/$h/$p`,
      effect: 'connection',
    },
    {
      name: 'class 4: CURL_HOME names a configuration that writes a file',
      command: `CURL_HOME=${DIR}/home curl -s -m 5 http://127.0.0.1:${PORT}/`,
      effect: { file: `${DIR}/c4-curl-home` },
    },
    {
      name: 'class 4: curl -K reads a configuration that writes a file',
      command: `curl -s -m 5 -K ${DIR}/curlrc http://127.0.0.1:${PORT}/`,
      effect: { file: `${DIR}/c4-curlrc` },
    },
  ];

  for (const a of ATTACKS)
    test(`${a.name}: live past the policy, refused through the tool, nothing on the VM`, async () => {
      const seen = async () =>
        a.effect === 'connection' ? await connections() : Number(await exists(a.effect.file));
      // Past the policy: the runner alone, as nobody. The attack is real on this VM.
      const before0 = await seen();
      await new SourceAccess(core.hosts).run(VM, 'lab', a.command);
      const live = await seen();
      assert.ok(
        live > before0,
        `run past the policy, the attack left no trace: the test would prove nothing`,
      );
      if (a.effect !== 'connection') await root(`rm -f ${shq(a.effect.file)}`);

      // Through the tool: refused before anything reaches the VM.
      const start = await seen();
      const r = await tool('run_source_command', { command: a.command });
      assert.equal(r.decision, 'deny', r.content);
      assert.equal(r.isError, true);
      assert.match(r.content, /^Denied: read-only policy: /);
      assert.equal(await seen(), start, 'the refused command still reached the VM');
      if (a.effect !== 'connection') assert.equal(await exists(a.effect.file), false);
    });

  test('the refusals are in the audit log with the policy reason', async () => {
    const rows = core.audit
      .list({ action: 'tool.call', limit: 500 })
      .entries.filter((r) => r.actor.door === 'agent');
    const denied = rows.filter((r) => (r.data as { decision?: string }).decision === 'deny');
    assert.ok(denied.length >= ATTACKS.length + 3, `${denied.length} denials audited`);
    assert.ok(denied.every((r) => /read-only policy/.test(String((r.data as { reason?: string }).reason))));
  });
});
