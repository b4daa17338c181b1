/**
 * The demo, as the README gives it, end to end on the lab: the README's own `fluid run "nginx on
 * prod-web returns 502…" --source fluid-lab-prod --host lab` line, run by the real CLI with the
 * shipped scenario (src/core/agent/scripted/examples/fix-nginx.yaml) served by the scripted model. The agent finds
 * the fault read-only on production (fluid-lab-prod: nginx proxies to a port where nothing listens),
 * reproduces and fixes it in a sandbox cloned from production, confirms the page answers 200 there,
 * generates the playbook from the sandbox's diff (reloading nginx), verifies it, and submits the
 * change to the production target; the session ends with the change waiting for a person.
 * Checked afterwards: every scripted step matched the real tools' answers, the change is sealed and
 * pending approval with nothing applied, and production is exactly as before (its site file, its
 * 502), read through the guest agent, a channel independent of Fluid.
 *
 * Run it under the VM lock:  flock /tmp/fluid-vm.lock node --test test/integration/demo-lab.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectInProcess } from '../../src/core/doors/inprocess.ts';
import { startScriptedModelServer, type ScriptedModelServer } from '../../src/core/agent/scripted/server.ts';
import type { Task } from '../../src/shared/contract/tasks.ts';
import { fluid } from '../support/cli.ts';
import { testCore } from '../support/core.ts';
import { labHost, requireLab, type Lab } from '../support/lab.ts';

const LABCTL = fileURLToPath(new URL('../../scripts/lab/labctl.py', import.meta.url));
const SCENARIO = fileURLToPath(
  new URL('../../src/core/agent/scripted/examples/fix-nginx.yaml', import.meta.url),
);
const README = new URL('../../README.md', import.meta.url);
const PROD = 'fluid-lab-prod';
const SITE = '/etc/nginx/sites-available/shop';

interface DemoLab extends Lab {
  demo?: { url: string; site: string };
  sources: Array<Lab['sources'][number] & { demo?: string | null }>;
  prodTarget?: {
    vm: string;
    address: string;
    port: number;
    user: string;
    keyPath: string;
    hostKeyFingerprint: string;
  };
}

let lab: DemoLab;
let server: ScriptedModelServer;
// file-backed secrets: the `fluid run` subprocess must see the provider key and the CA
const core = testCore({ secrets: undefined });
const t = connectInProcess(core, { door: 'test', id: 'demo-lab' });
const timings: Record<string, number> = {};

/** A command on production through its guest agent (as root, outside Fluid). */
function onProd(script: string): string {
  return execFileSync('/usr/bin/python3', [LABCTL, 'ga-exec', PROD, '/bin/sh', '-c', script], {
    timeout: 120_000,
  }).toString();
}

/** What production's web service looks like: the site's hash and what port 80 answers. */
const prodWeb = () =>
  onProd(
    `sha256sum ${SITE}; systemctl is-active nginx shop; curl -sS -o /dev/null -w 'GET / -> %{http_code}\\n' http://127.0.0.1/`,
  );

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const x of t.stream('tasks.watch', { id: task.id })) last = x;
  return last;
}

/** The README's demo line, `npx fluid run "…" --source fluid-lab-prod …`, as the CLI's arguments. */
function readmeRunLine(): string[] {
  const line = readFileSync(README, 'utf8')
    .split('\n')
    .find((l) => /^npx fluid run ".*" --source fluid-lab-prod\b/.test(l));
  assert.ok(line, 'README.md shows the demo: npx fluid run "…" --source fluid-lab-prod');
  const m = /^npx fluid run "([^"]+)" ([^#"']*?)\s*$/.exec(line)!;
  assert.ok(m, `one quoted task and plain options: ${line}`);
  return ['run', m[1]!, ...m[2]!.split(/\s+/)];
}

let before0 = '';

before(async () => {
  lab = (await requireLab()) as DemoLab;
  const prodSrc = lab.sources.find((s) => s.name === PROD);
  if (!lab.prodTarget || prodSrc?.demo !== 'fault' || !lab.demo)
    throw new Error(
      'The lab has no demo service with its fault on fluid-lab-prod, or no apply target (lab.json: sources[].demo, demo, prodTarget). Run `bash scripts/lab/lab.sh up` (as root).',
    );
  before0 = prodWeb();
  assert.match(
    before0,
    /^[0-9a-f]{64} {2}\/etc\/nginx\/sites-available\/shop\nactive\nactive\nGET \/ -> 502\n$/,
    'production has the fault (both units active, 502)',
  );
  assert.match(onProd(`grep -c 'server 127.0.0.1:8001;' ${SITE}`), /^1\n$/);

  server = await startScriptedModelServer({ scenario: SCENARIO });
  await t.call('hosts.add', labHost(lab));
  const check = await finish(await t.call('hosts.check', { host: 'lab' }));
  assert.equal(check.status, 'succeeded', JSON.stringify(check.error));
  await t.call('providers.save', {
    id: 'scripted',
    kind: 'anthropic',
    label: 'Scripted model',
    baseUrl: server.anthropicBaseUrl,
    model: 'scripted-model',
    apiKey: 'sk-ant-scripted-demo-key-0000000000000',
    isDefault: true,
    inputPerMTok: 0,
    outputPerMTok: 0,
  });
  // The person registers production (as the README's lab section does with `fluid target add`).
  const p = lab.prodTarget;
  const probe = await t.call('targets.probe', { address: p.address, port: p.port, jump: 'lab' });
  assert.equal(probe.hostKey.fingerprint, p.hostKeyFingerprint);
  await t.call('targets.add', {
    name: 'prod-web',
    address: p.address,
    user: p.user,
    credential: { type: 'keyFile', path: p.keyPath },
    jump: 'lab',
    become: 'sudo',
    sourceVm: { host: 'lab', vm: PROD },
    acceptFingerprint: probe.hostKey.fingerprint,
  });
});

after(async () => {
  try {
    for (const s of await t.call('sandboxes.list', {}).catch(() => []))
      if (s.state !== 'destroyed') await t.call('sandboxes.destroy', { sandbox: s.id }).catch(() => {});
    await core.sandboxes.settleTemplates();
    await t.call('bases.prune', { host: 'lab' }).catch(() => {});
  } finally {
    await server?.close();
    await core.dispose();
    console.log(`demo-lab timings (s): ${JSON.stringify(timings)}`);
  }
});

describe('the demo on the lab', () => {
  test(
    "the README's `fluid run` line finds the 502 on production, fixes it in a sandbox and submits the change for review",
    { timeout: 50 * 60_000 },
    async () => {
      const t0 = Date.now();
      const args = [...readmeRunLine(), '--provider', 'scripted', '--no-prompt'];
      const r = await fluid(args, { dataDir: core.paths.dataDir, timeoutMs: 45 * 60_000 });
      timings.run = Math.round((Date.now() - t0) / 1000);
      const out = `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\nmismatches:\n${JSON.stringify(server.mismatches, null, 2)}`;
      assert.equal(r.code, 0, out);
      assert.deepEqual(server.mismatches, [], out);
      assert.equal(server.state().remaining, 0, `steps left:\n${out}`);

      // What the agent found is what the lab has: the session's source, the app's port, the wrong one.
      const v = server.vars;
      assert.equal(v.vm, PROD);
      assert.equal(v.port, '8000');
      assert.equal(v.badport, '8001');
      assert.equal(v.target, 'prod-web');
      assert.match(r.stdout, /Change \S+ to prod-web waits for a person's approval; nothing was applied/);

      // The sandbox is a clone of production, and the fix is in it: 200 there.
      const sbx = await t.call('sandboxes.get', { sandbox: v.sbx! });
      assert.equal(sbx.sourceName, PROD);
      const inSbx = await t.call('sandboxes.exec', {
        sandbox: sbx.id,
        command: `grep -c 'server 127.0.0.1:8000;' ${SITE}; curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1/`,
      });
      assert.equal(inSbx.stdout, '1\n200', JSON.stringify(inSbx));

      // The change: sealed, verified, previewed on production, waiting for a person; never applied.
      const change = await t.call('changes.get', { change: v.change! });
      assert.equal(change.status, 'awaiting-approval', JSON.stringify(change, null, 2));
      assert.equal(change.target.name, 'prod-web');
      assert.equal(change.verification?.status, 'passed');
      assert.ok(change.preview, 'previewed on production in check mode');
      assert.deepEqual(change.applies, []);
      assert.equal(change.approval?.status, 'pending');
      const pb = await t.call('playbooks.get', { playbook: v.playbook! });
      const yaml = pb.revision?.yaml ?? '';
      assert.match(yaml, /sites-available\/shop/);
      assert.match(yaml, /notify:\s*(- )?Reload nginx/);
      assert.match(yaml, /handlers:[\s\S]*Reload nginx[\s\S]*state: reloaded/);

      // Production is exactly as it was: same site file, still 502.
      assert.equal(prodWeb(), before0);
    },
  );
});
