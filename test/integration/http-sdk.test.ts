/**
 * The Python SDK against a real Fluid HTTP server on the lab, run by Debian's python3 (unittest):
 *  - the original product's documented example (create a sandbox on the lab, run a command, destroy);
 *  - a scripted agent with an agent-scoped token: sandbox, commands, file, snapshot and restore, the
 *    blocking ask (answered here as a person would, in the app), the diff, and a change submitted for
 *    review — and refused when it tries to decide or apply.
 * Every response the server gives during the run is checked against its OpenAPI document.
 * Needs the lab (npm run lab); VM work: run under flock /tmp/fluid-vm.lock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { labHost, requireLab, type Lab } from '../support/lab.ts';
import { apiFixture, type ApiFixture } from '../unit/http/support.ts';

const PYTHON = '/usr/bin/python3';
const sdk = new URL('../../sdk/python/', import.meta.url).pathname;
const person = { door: 'test' as const, id: 'person' };

type LabWithTarget = Lab & {
  prodTarget: { address: string; port: number; user: string; keyPath: string; hostKeyFingerprint: string };
};
let lab: LabWithTarget;
let f: ApiFixture;
let agentToken: string;
let otherToken: string;
let target: string | null = null;
let unsubscribe = () => {};
const asked: string[] = [];

before(async () => {
  lab = (await requireLab()) as LabWithTarget;
  f = await apiFixture({ core: { secrets: undefined } });
  const c = f.core;
  await c.hosts.add(labHost(lab), person);
  assert.equal((await c.tasks.wait(c.hosts.check('lab', person).id)).status, 'succeeded');
  agentToken = c.tokens.create('sdk-agent', 'agent', person, null).secret;
  otherToken = c.tokens.create('other-agent', 'agent', person, null).secret;
  // the production target a change is submitted for (a person registers it)
  const t = lab.prodTarget;
  await f.core.router['targets.add'](
    {
      name: 'lab-prod',
      address: t.address,
      port: t.port,
      user: t.user,
      credential: { type: 'keyFile', path: t.keyPath },
      jump: 'lab',
      become: 'sudo',
      acceptFingerprint: t.hostKeyFingerprint,
    },
    { actor: person, signal: new AbortController().signal },
  );
  target = 'lab-prod';
  // a person answers what the agent asks (the Fluid app would show them the request)
  unsubscribe = c.bus.subscribe('approvals.changed', (a) => {
    if (a.status === 'pending' && a.kind === 'ask' && a.title.startsWith('May I')) {
      asked.push(a.title);
      c.approvals.decide(a.id, 'approve', 'yes, keep it there', person);
    }
  });
});

after(async () => {
  unsubscribe();
  if (f) {
    for (const s of f.core.sandboxes.list({ includeDestroyed: false }))
      await Promise.resolve(f.core.sandboxes.destroy(s.id, person)).catch(() => {});
    await Promise.resolve(f.core.sandboxes.pruneBases('lab', person)).catch(() => {});
    await f.close();
  }
});

function python(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, {
      cwd: sdk,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      out += d;
      if (process.env.FLUID_TEST_LOG) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

test("the original product's Python example creates a sandbox on the lab, runs a command and destroys it", async () => {
  const r = await python(['-m', 'unittest', '-v', 'tests.test_original_example'], {
    FLUID_URL: f.url,
    FLUID_TOKEN: agentToken,
    FLUID_SOURCE_VM: 'fluid-lab-web',
    // this machine is registered twice (local, and lab over SSH): say which
    FLUID_HOST: 'lab',
  });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Ran 1 test/);
  assert.equal(f.core.sandboxes.list({ includeDestroyed: false }).length, 0, 'nothing left running');
});

test('a scripted agent on the Python SDK: sandbox, commands, snapshot, ask, diff, change submitted', async () => {
  const r = await python(['-m', 'unittest', '-v', 'tests.test_agent'], {
    FLUID_URL: f.url,
    FLUID_TOKEN: agentToken,
    FLUID_TOKEN_NAME: 'sdk-agent',
    FLUID_OTHER_TOKEN: otherToken,
    FLUID_SOURCE_VM: 'fluid-lab-web',
    FLUID_HOST: 'lab',
    FLUID_TARGET: target ?? '',
  });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Ran 5 tests/);
  assert.deepEqual(asked, ['May I keep the app config in /opt/app?']);
  const change = f.core.approvals.list({ limit: 100 }).find((a) => a.kind === 'apply');
  assert.ok(change, 'the submitted change waits for a person');
  assert.equal(change.status, 'pending');
  assert.deepEqual(change.requestedBy, { door: 'http', id: 'token:sdk-agent' });
  assert.deepEqual(f.conformance.problems, [], 'every response matched the OpenAPI document');
});
