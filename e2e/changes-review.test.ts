/**
 * The review loop in the browser, on the lab: an agent's change (made in a sandbox of fluid-lab-web,
 * submitted with request_apply through the tool gate: verified, fingerprinted and previewed on
 * fluid-lab-prod) is reviewed on its Review page — the diff, the playbook at its revision, the
 * verification, the production preview with its diff, the bundle's hash — approved with a passkey
 * (Chromium's virtual authenticator through the DevTools protocol; the server verifies the
 * assertion), applied with the log streaming into the page, and listed in the target's history.
 * Production gets exactly one new file, removed again afterwards (and checked).
 * Needs the lab (npm run lab) and the built UI; run under the VM lock.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { createCore } from '../src/core/createCore.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import type { Sandbox } from '../src/shared/contract/sandboxes.ts';
import {
  PresenceDialog,
  SecurityPage,
  addVirtualAuthenticator,
  openApp,
  prepareLabData,
  onLabVm,
  prodTargetOf,
  readLab,
  startServer,
  waitFor,
  type App,
} from './support/index.ts';
import { ReviewPage } from './support/pages/ReviewPage.ts';

const FILE = '/etc/fluid-e2e-release';

test('review a change, approve it with a passkey, apply it and watch the log', async (t) => {
  const lab = readLab();
  const prod = prodTargetOf(lab);
  const onProd = (script: string) => onLabVm(prod.vm, script);
  const started = Date.now();
  const lap = (what: string) => console.log(`# ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  onProd(`rm -f ${FILE}`);
  const labData = prepareLabData(lab);
  const server = await startServer({ dataDir: labData.dataDir });
  // Another process on the same data, as the agent's MCP server would be.
  const agentSide = createCore({
    dataDir: labData.dataDir,
    logger: createLogger({ level: 'error' }),
    egress: null,
  });
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await agentSide.close();
    await server.stop();
    onProd(`rm -f ${FILE}`);
    const left = onProd(`test -e ${FILE} && echo present || echo gone`).trim();
    const problems = await labData.cleanup();
    lap('cleaned up');
    if (left !== 'gone') problems.push(`${FILE} is still on production`);
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });

  // The target (a person registered it) and the agent's work.
  const setup = { door: 'test' as const, id: 'e2e-setup' };
  await agentSide.targets.add(
    {
      name: 'prod-web',
      address: prod.address,
      port: 22,
      user: prod.user,
      credential: { type: 'keyFile', path: prod.keyPath },
      jump: labData.hostName,
      become: 'sudo',
      acceptFingerprint: prod.hostKeyFingerprint,
    },
    setup,
  );
  const made = agentSide.sandboxes.create(
    {
      host: labData.hostName,
      source: 'fluid-lab-web',
      name: 'e2e-review',
      allow: [],
      start: 'auto',
      refreshBase: false,
    },
    setup,
  );
  const done = await agentSide.tasks.wait(made.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const sbx = done.result as Sandbox;
  lap('sandbox');
  const agent = {
    actor: { door: 'agent' as const, id: 'e2e-session' },
    sessionId: 'e2e-session',
    mode: 'edit' as const,
  };
  const tool = async (name: string, args: Record<string, unknown>) => {
    const r = await agentSide.tools.invoke(name, args, { ...agent, signal: AbortSignal.timeout(1_800_000) });
    assert.ok(!r.isError, `${name}: ${r.content}`);
    return r;
  };
  await tool('write_file', { sandbox_id: sbx.id, path: FILE, content: 'release 42\n' });
  await tool('generate_playbook', { sandbox_id: sbx.id });
  const asked = await tool('request_apply', {
    sandbox_id: sbx.id,
    target: 'prod-web',
    title: 'Release marker for prod-web',
  });
  const changeId = (asked.data as { change_id: string }).change_id;
  const change = agentSide.changes.get(changeId);
  assert.equal(change.status, 'awaiting-approval', change.statusDetail);
  lap('submitted (verified, previewed)');

  app = await openApp(t, { name: 'changes-review', server });
  const { page, shell } = app;
  // A passkey, enrolled first (the first key is confirmed in the window).
  await addVirtualAuthenticator(page);
  const security = new SecurityPage(page);
  await security.open();
  await security.addKey('e2e passkey');
  await new PresenceDialog(page).confirm();
  await waitFor('the key listed', async () => (await security.keys().count()) === 1);

  // The list, then the Review page.
  await shell.nav.getByRole('link', { name: 'Changes', exact: true }).click();
  await page.getByRole('link', { name: 'Release marker for prod-web' }).click();
  const review = new ReviewPage(page);
  await review.root.waitFor();
  assert.equal(await review.status(), 'awaiting-approval');
  assert.equal(await review.bundleSha(), change.sha256);
  const bundle = agentSide.changes.bundle(changeId);
  assert.equal(createHash('sha256').update(bundle.json).digest('hex'), await review.bundleSha());
  assert.ok((await review.diffItems()) >= 1);
  assert.match(await review.playbookYaml(), new RegExp(FILE));
  assert.deepEqual(await review.verificationSteps(), [
    'syntax:passed',
    'lint:passed',
    'replay:passed',
    'rediff:passed',
    'idempotence:passed',
  ]);
  const marks = await review
    .previewTasks()
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-changed')));
  assert.ok(marks.includes('true'), 'the preview says the file will change');
  const diffs = await review.previewDiffs();
  assert.ok(
    diffs.some((d) => d.includes('+release 42')),
    diffs.join('\n---\n'),
  );
  await app.shot('review');

  // Approve: the passkey is asked (no window confirmation), the server verifies it.
  await review.approve();
  await review.waitStatus(/^approved$/, 30_000);
  const approval = agentSide.approvals.get(change.approval!.id);
  assert.equal(approval.decidedVia, 'webauthn');
  assert.equal(approval.subjectHash, change.sha256);
  assert.equal(await new PresenceDialog(page).root.count(), 0);
  await app.shot('approved');

  // Apply: the log streams in; production then needs nothing more.
  await review.apply();
  await waitFor(
    'the log to stream',
    async () => /TASK \[/.test((await review.applyLog().textContent()) ?? ''),
    180_000,
    500,
  );
  await app.shot('applying');
  const end = await review.waitApplyEnd(600_000);
  assert.equal(end, 'succeeded', await review.applySummary());
  assert.match(await review.postCheck(), /would change 0 tasks\./);
  await review.waitStatus(/^applied$/);
  await app.shot('applied');
  lap('applied');
  assert.equal(onProd(`cat ${FILE}`), 'release 42\n');

  // The target's history.
  const history = await review.openTargetHistory('prod-web');
  assert.equal(await history.count(), 1);
  assert.equal(await history.first().getAttribute('data-status'), 'succeeded');
  assert.match((await history.first().textContent()) ?? '', /approved by web:.* \(webauthn\)/);
  await app.shot('history');
  app.assertClean();
});
