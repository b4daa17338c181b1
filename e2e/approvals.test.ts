/**
 * Capacity approvals, end to end on the lab host (no VM boots): with at most 1 committed vCPU, a
 * 2-vCPU sandbox asks a person first. The modal shows why; Deny with a note ends the creation with
 * DENIED; the Approvals list and the audit log record who decided.
 * Needs the lab (npm run lab); without it the test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ApprovalModal,
  ApprovalsPage,
  AuditPage,
  PresenceDialog,
  SandboxesPage,
  SettingsPage,
  openApp,
  prepareLabData,
  readLab,
  startServer,
  waitFor,
  waitForText,
  type App,
} from './support/index.ts';

test('a sandbox over the capacity limit waits for a person, who denies it', async (t) => {
  const lab = readLab();
  const labData = prepareLabData(lab);
  const server = await startServer({ dataDir: labData.dataDir });
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await server.stop();
    const problems = await labData.cleanup();
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });
  app = await openApp(t, { name: 'approvals-lab', server });
  const { page, shell } = app;

  // At most 1 committed vCPU per host, through the Settings view.
  await shell.goto('Settings');
  const settings = new SettingsPage(page);
  await settings.setNumber('sandboxes.maxCommittedVcpus', '1');
  await settings.save();
  await settings.waitSaved();

  const approvals = new ApprovalsPage(page);
  assert.equal(await approvals.pendingCount(), 0);

  // A 2-vCPU sandbox (the source's own size) from fluid-lab-web.
  await shell.goto('Sandboxes');
  const sandboxes = new SandboxesPage(page);
  await sandboxes.emptyState.waitFor();
  const dialog = await sandboxes.openCreate();
  await dialog.fill({ host: labData.hostName, source: 'fluid-lab-web', name: 'e2e-over-limit' });
  const options = await dialog.sourceOptions();
  assert.ok(
    options.some((o) => /^fluid-lab-web — shut off · 2 vCPU · 512 MiB/.test(o)),
    options.join(' | '),
  );
  await dialog.submit();

  // The request pops up by itself, with the reasons and exactly what is asked.
  const modal = new ApprovalModal(page);
  await modal.waitOpen(60_000);
  assert.equal(await modal.kind(), 'capacity');
  assert.match(await modal.title(), /Create a 2 vCPU \/ 512 MiB sandbox from fluid-lab-web on lab/);
  assert.match(await modal.detail(), /0 \+ 2 vCPUs exceeds the limit of 1/);
  assert.equal(await modal.risk(), 'medium risk');
  const subject = (await modal.subject()) as { vcpus: number; source: string; limits: { vcpus: number } };
  assert.equal(subject.vcpus, 2);
  assert.equal(subject.source, 'fluid-lab-web');
  assert.equal(subject.limits.vcpus, 1);
  assert.match(await modal.askedBy(), /^web:/);
  assert.equal(await approvals.pendingCount(), 1);
  await waitForText(dialog.progress, /Waiting for approval/);
  await app.shot('approval requested');

  await modal.decide('Deny', 'too big for the lab');
  await modal.waitClosed();

  // The creation ends DENIED, saying who denied it and why.
  assert.equal(await dialog.waitEnded(30_000), 'failed');
  const err = await dialog.errorText();
  assert.match(err, /DENIED/);
  assert.match(err, /denied by web:[^:]+:[^:]+: too big for the lab/);
  await app.shot('creation denied');
  await waitFor('no pending approvals', async () => (await approvals.pendingCount()) === 0);
  await dialog.close();

  // The sandbox row stays as failed, with the reason.
  await waitFor('the failed sandbox', async () => (await sandboxes.state()) === 'failed');
  await waitForText(sandboxes.detail.locator('.callout-fail'), /DENIED/);
  await app.shot('failed sandbox');

  // Audit → Approvals: denied, by the web user.
  await shell.goto('Audit');
  await approvals.open();
  const row = await approvals.waitForStatus('denied');
  assert.match(row.decidedBy, /^web:/);
  assert.match(row.text, /capacity/);
  const detail = await approvals.select(row.id);
  await waitForText(detail, /too big for the lab/);
  await app.shot('approvals list');

  // The audit log has the request and the decision.
  await page.getByRole('navigation', { name: 'Audit views' }).getByRole('link', { name: 'Log' }).click();
  const audit = new AuditPage(page);
  await audit.waitForAction('approval.request');
  await audit.waitForAction('approval.decide');
  const entry = await audit.openEntry('approval.decide');
  await waitForText(entry.getByLabel('Entry data'), /"decision": "denied"/);
  await app.shot('audit');

  // Decided elsewhere while the modal is open: it says so, and by whom.
  await shell.goto('Sandboxes');
  const again = await sandboxes.openCreate();
  await again.fill({ host: labData.hostName, source: 'fluid-lab-web', name: 'e2e-decided-elsewhere' });
  await again.submit();
  await modal.waitOpen(60_000);
  const waiting = (await labData.cli(['approval', 'list', '--status', 'pending'])) as Array<{ id: string }>;
  assert.equal(waiting.length, 1);
  // a person at a terminal (a script without one is refused: only a person decides)
  const denied = await labData.cliOnTerminal([
    'approval',
    'deny',
    waiting[0]!.id,
    '--yes',
    '--note',
    'from the CLI',
  ]);
  assert.equal(denied.code, 0, denied.out);
  await waitForText(modal.root.locator('.callout'), /Already denied/);
  await waitForText(modal.root.locator('.callout'), /Decided by cli:/);
  await app.shot('decided elsewhere');
  await modal.close();
  await modal.waitClosed();
  assert.equal(await again.waitEnded(30_000), 'failed');
  assert.match(await again.errorText(), /denied by cli:[^:]+: from the CLI/);
  await again.close();

  // Back to no limit: lifting a limit loosens the rules, so the person confirms it is them.
  await shell.goto('Settings');
  await settings.setNumber('sandboxes.maxCommittedVcpus', '');
  await settings.save();
  const confirm = new PresenceDialog(page);
  assert.match(await confirm.what(), /maxCommittedVcpus|limit|settings/i);
  await confirm.confirm();
  await settings.waitSaved();
  const saved = (await labData.cli(['settings', 'get'])) as {
    sandboxes: { maxCommittedVcpus: number | null };
  };
  assert.equal(saved.sandboxes.maxCommittedVcpus, null);
  app.assertClean();
});
