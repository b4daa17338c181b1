/**
 * The everyday shell, without booting anything: the overview as the landing screen (capacity over
 * time, pending approvals), the header's approvals panel deciding in place, the New sandbox form's
 * errors all at once, onboarding surviving a reload, and the layout at 1400 and 900 px (a collapsible
 * sidebar, no element wider than its box on any main page, screenshots of each).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createCore } from '../src/core/createCore.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import {
  ApprovalsPage,
  CreateSandboxDialog,
  HostsPage,
  OnboardingPage,
  OverviewPage,
  SandboxesPage,
  openApp,
  startServer,
  waitFor,
  waitForText,
  type App,
  type SectionName,
} from './support/index.ts';

/** A data dir whose local host was checked: the app is past its first run. */
async function checkedServer(t: TestContext) {
  const server = await startServer();
  t.after(() => server.dispose());
  const core = createCore({
    dataDir: server.dataDir,
    secrets: new MemorySecretStore(),
    logger: createLogger({ level: 'error' }),
    egress: null,
  });
  t.after(() => core.close());
  const task = core.hosts.check('local', { door: 'test', id: 'e2e' });
  await waitFor('the local preflight', async () => core.tasks.get(task.id).status !== 'running', 60_000);
  return { server, core };
}

test('the overview lands once a host exists: capacity over time, and the approvals panel decides', async (t) => {
  const { server, core } = await checkedServer(t);
  const app = await openApp(t, { name: 'shell-overview', server });
  const { page, shell } = app;
  await waitFor('the overview', async () => (await shell.currentSection()) === 'Overview');
  const overview = new OverviewPage(page);
  // Measured at once when the overview opens, then once a minute (kept for the tab's life).
  const local = await overview.waitSamples('local', 1);
  assert.match(local.chart, /^Capacity of local: One sample: memory in use \d+ % now/);
  assert.match(local.text, /Free memory\s*\d/);
  await waitForText(page.getByRole('region', { name: /Running sandboxes/ }), /No sandbox is running/);
  await app.shot('overview');

  // Requests filed by another process (an MCP client, say): one names a sandbox that no longer
  // exists; the overview and the header's panel list them; the panel decides in place.
  const gone = '00000000-0000-4000-8000-00000000dead';
  const ask = (title: string, sandboxId?: string) =>
    core.approvals.request({
      kind: 'tool',
      title,
      detail: `${title}, asked by an MCP client.`,
      risk: 'medium',
      subject: { title },
      requestedBy: { door: 'mcp', id: 'claude-code' },
      ...(sandboxId ? { sandboxId } : {}),
    });
  const a = ask('restart nginx in web-1', gone);
  const b = ask('read /etc/shadow');
  const approvals = new ApprovalsPage(page);
  await waitFor('both requests counted', async () => (await approvals.pendingCount()) === 2, 20_000);
  await waitForText(overview.approvals, /restart nginx in web-1/);
  // Not the modal: it popped up by itself; "Later" leaves both pending.
  const modal = page.getByRole('dialog', { name: /Approval requested/ });
  if (await modal.count()) await modal.getByRole('button', { name: 'Later' }).click();
  if (await modal.count()) await modal.getByRole('button', { name: 'Later' }).click();

  const panel = await approvals.openPanel();
  const rows = await approvals.panelRows();
  assert.deepEqual(rows.map((r) => r.id).sort(), [a.id, b.id].sort());
  const withSandbox = rows.find((r) => r.id === a.id)!;
  // The sandbox by its id, and said to exist no more.
  assert.equal(withSandbox.sandboxExists, 'false');
  assert.match(withSandbox.text, /00000000/);
  assert.match(withSandbox.text, /no longer exists/);
  await app.shot('approvals panel');
  await approvals.decideInPanel(b.id, 'Deny');
  await waitFor('the denial', async () => core.approvals.get(b.id).status === 'denied', 20_000);
  await waitFor('one left in the panel', async () => (await approvals.panelRows()).length === 1);
  assert.equal(await approvals.pendingCount(), 1);
  await panel.getByRole('link', { name: 'Every request and decision' }).click();
  await waitFor('Audit → Approvals', async () => (await shell.currentSection()) === 'Audit');
  await approvals.table.waitFor();
  const listed = (await approvals.rows()).find((r) => r.id === a.id);
  assert.ok(listed, 'the pending request is listed');
  assert.match(listed.text, /no longer exists/);
  app.assertClean();
});

test('New sandbox: every error at once, the only host chosen, never a running VM preselected', async (t) => {
  const app = await openApp(t, { name: 'shell-new-sandbox' });
  const { page, shell } = app;
  await shell.goto('Sandboxes');
  const sandboxes = new SandboxesPage(page);
  const dialog = await sandboxes.openCreate();
  // One host: it is the one.
  assert.equal(await dialog.hostLabel(), 'local');
  const source = await dialog.sourceValue();
  const options = await dialog.sourceOptions();
  const chosen = options.find((o) => o.startsWith(`${source} `));
  if (source) assert.doesNotMatch(chosen ?? '', / — running /, 'a running VM is never preselected');
  else
    assert.ok(
      options.every((o) => !o.includes(' — shut off ')),
      'nothing shut off to preselect',
    );

  await dialog.root.getByLabel('Name', { exact: true }).fill('Bad Name!');
  await dialog.root.getByLabel('vCPUs', { exact: true }).fill('0');
  await dialog.root.getByLabel('Memory', { exact: true }).fill('100');
  await dialog.root.getByLabel('Time to live', { exact: true }).fill('soon');
  await dialog.root.getByLabel('Egress allowlist').fill('deb.debian.org\nnot a host!');
  await dialog.submit();
  const errors = await dialog.fieldErrors();
  for (const field of ['Name', 'vCPUs', 'Memory', 'Time to live', 'Egress allowlist'])
    assert.ok(errors[field], `${field} has its error at once: ${JSON.stringify(errors)}`);
  assert.match(errors['Egress allowlist']!, /not a host!/);
  assert.match(errors.vCPUs!, /at least 1/);
  assert.match(errors.Memory!, /at least 256/);
  await app.shot('all errors at once');
  await dialog.cancel();
  app.assertClean();
});

test('onboarding preselects this machine when it is ready and the only host', async (t) => {
  const { server } = await checkedServer(t);
  const app = await openApp(t, { name: 'shell-choose-host', server });
  await app.shell.goto('Onboarding');
  const wizard = new OnboardingPage(app.page);
  await wizard.waitForStep('Welcome');
  await wizard.continue();
  await wizard.waitForStep('Choose a host');
  const local = app.page.getByRole('radio', { name: /This machine/ });
  await waitFor('this machine preselected', () => local.isChecked());
  await waitForText(app.page.locator('.choice.selected'), /Ready/);
  await app.shot('this machine preselected');
  app.assertClean();
});

test('onboarding resumes where it was after a reload', async (t) => {
  const app = await openApp(t, { name: 'shell-onboarding-resume' });
  const { page } = app;
  const wizard = new OnboardingPage(page);
  await wizard.waitForStep('Welcome');
  await wizard.continue();
  await wizard.waitForStep('Choose a host');
  await wizard.chooseRemote();
  await wizard.continue();
  await wizard.waitForStep('Connection');
  await wizard.fillConnection({
    address: 'kvm1.example.com',
    port: 2200,
    user: 'ops',
    keyPath: '/root/.ssh/id_x',
  });
  // A reload (or a crash of the window) lands on the same step with what was typed.
  await page.reload();
  await app.shell.waitConnected();
  await wizard.waitForStep('Connection');
  assert.equal(await page.getByLabel('Address', { exact: true }).inputValue(), 'kvm1.example.com');
  assert.equal(await page.getByLabel('Port', { exact: true }).inputValue(), '2200');
  assert.equal(await page.getByLabel('User', { exact: true }).inputValue(), 'ops');
  assert.equal(await page.getByLabel('Private key file').inputValue(), '/root/.ssh/id_x');
  await app.shot('resumed');
  // Back goes where it went before the reload.
  await page.getByRole('button', { name: 'Back' }).click();
  await wizard.waitForStep('Choose a host');
  assert.equal(await page.getByRole('radio', { name: /A remote host over SSH/ }).isChecked(), true);
  app.assertClean();
});

const PAGES: SectionName[] = [
  'Overview',
  'Hosts',
  'Sandboxes',
  'Agent',
  'Playbooks',
  'Changes',
  'Audit',
  'Settings',
];

async function checkLayout(app: App, width: number): Promise<void> {
  const { shell, page } = app;
  for (const section of PAGES) {
    await shell.goto(section);
    await shell.main.locator(':scope *').first().waitFor();
    // Let the section's first data arrive (lists, capacity).
    await page.waitForLoadState('networkidle').catch(() => {});
    await page
      .locator('.spinner')
      .first()
      .waitFor({ state: 'detached', timeout: 10_000 })
      .catch(() => {});
    await app.shot(`${section} ${width}`);
    const over = await shell.overflows();
    assert.deepEqual(over, [], `${section} at ${width} px: ${JSON.stringify(over.slice(0, 5))}`);
  }
}

test('layout at 1400 and 900 px: a collapsible sidebar and no overflow on any main page', async (t) => {
  const { server } = await checkedServer(t);
  const wide = await openApp(t, { name: 'layout-1400', server, viewport: { width: 1400, height: 900 } });
  assert.equal(await wide.shell.navCollapsed(), false, 'wide: the sidebar shows its labels');
  await checkLayout(wide, 1400);
  // Collapsing by hand is kept (in this browser).
  await wide.shell.toggleNav();
  assert.equal(await wide.shell.navCollapsed(), true);
  await wide.shell.goto('Hosts');
  assert.equal(await wide.shell.title(), 'Hosts', 'collapsed links still name their sections');
  await wide.shell.toggleNav();
  await wide.close();

  const narrow = await openApp(t, { name: 'layout-900', server, viewport: { width: 900, height: 860 } });
  assert.equal(await narrow.shell.navCollapsed(), true, 'narrow: the sidebar collapses by itself');
  await checkLayout(narrow, 900);
  // Hosts: the list stacks above the detail, so the detail keeps its width.
  await narrow.shell.goto('Hosts');
  const hosts = new HostsPage(narrow.page);
  const box = await hosts.detail.boundingBox();
  assert.ok(box && box.width > 700, `the host detail is ${box?.width} px wide`);
  // Expanding it by hand still fits.
  await narrow.shell.toggleNav();
  assert.equal(await narrow.shell.navCollapsed(), false);
  await narrow.shell.goto('Overview');
  assert.deepEqual(await narrow.shell.overflows(), []);
  await narrow.shot('expanded at 900');
  narrow.assertClean();
  wide.assertClean();
  // The dialog of the form fits too.
  await narrow.shell.goto('Sandboxes');
  const dialog = await new SandboxesPage(narrow.page).openCreate();
  await dialog.sourceValue();
  assert.deepEqual(await narrow.shell.overflows(), []);
  await narrow.shot('new sandbox at 900');
  await new CreateSandboxDialog(narrow.page).cancel();
});
