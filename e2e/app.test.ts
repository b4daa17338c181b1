/**
 * The app shell without the lab: every section, empty states, theme, settings validation, the local
 * host's preflight, a wrong token, audit export and review, and reconnecting after a backend restart.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  AuditPage,
  CreateSandboxDialog,
  HostsPage,
  OnboardingPage,
  SettingsPage,
  openApp,
  waitFor,
  waitForText,
  type SectionName,
} from './support/index.ts';

const SECTIONS: SectionName[] = [
  'Overview',
  'Onboarding',
  'Hosts',
  'Sandboxes',
  'Agent',
  'Playbooks',
  'Audit',
  'Settings',
];

test('first run lands on Onboarding, and every section renders', async (t) => {
  const app = await openApp(t, { name: 'app-sections' });
  const { shell, page } = app;
  // Only the built-in local host exists and it was never checked: start with onboarding.
  await waitFor('the first screen', async () => (await shell.currentSection()) === 'Onboarding');
  assert.equal(await new OnboardingPage(page).stepTitle(), 'Welcome');
  assert.match((await shell.connection.textContent()) ?? '', /web\s*connected/i);

  for (const section of SECTIONS) {
    await shell.goto(section);
    assert.equal(await shell.title(), section);
    assert.equal(await page.title(), `${section} · Fluid`);
    await shell.main.locator(':scope > *').first().waitFor();
    await app.shot(section);
  }

  // Honest empty states: what the section is for, and what to do now.
  for (const [section, title] of [
    ['Sandboxes', 'No sandboxes'],
    ['Agent', 'No agent sessions'],
    ['Playbooks', 'No playbooks yet'],
  ] as const) {
    await shell.goto(section);
    await page.getByRole('heading', { name: title }).waitFor();
    const checklist = page.getByRole('list', { name: 'What to do now' });
    await waitForText(checklist, /Add a host and check it/);
  }
  await shell.goto('Audit');
  await page.getByRole('heading', { name: 'The audit log is empty' }).waitFor();

  // Keyboard: the navigation is a list of links, reachable and usable without a mouse.
  await shell.nav.getByRole('link', { name: 'Hosts', exact: true }).focus();
  await page.keyboard.press('Enter');
  await waitFor('Hosts via the keyboard', async () => (await shell.currentSection()) === 'Hosts');
  const hosts = new HostsPage(page);
  assert.deepEqual(await hosts.hostNames(), ['local']);
  app.assertClean();
});

test('Settings: theme applies live, validation errors show next to the field', async (t) => {
  const app = await openApp(t, { name: 'app-settings' });
  const { shell, page } = app;
  const settings = new SettingsPage(page);
  await shell.goto('Settings');
  assert.equal(await shell.theme(), 'light'); // "system" under a light colour scheme

  await settings.setTheme('Dark');
  await settings.save();
  await waitFor('the dark theme', async () => (await shell.theme()) === 'dark');
  await settings.waitSaved();
  await app.shot('dark theme');

  // Another window on the same backend sees the change through settings.changed.
  const other = await app.context.newPage();
  await other.goto(app.server.url);
  await waitFor(
    'the second window to connect',
    async () => (await other.locator('.conn').getAttribute('data-state')) === 'connected',
  );
  await waitFor(
    'the second window to be dark',
    async () => (await other.evaluate(() => document.documentElement.dataset.theme)) === 'dark',
  );
  await other.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Settings' }).click();
  await other.getByRole('radiogroup', { name: 'Theme' }).getByRole('radio', { name: 'Light' }).check();
  await other.getByRole('button', { name: 'Save', exact: true }).click();
  await waitFor('the first window to follow', async () => (await shell.theme()) === 'light');
  await other.close();

  // A value the backend refuses: the message sits next to the field, nothing is saved.
  await settings.setNumber('hosts.minFreeDiskGiB', '-1');
  await settings.save();
  const error = await settings.fieldError('hosts.minFreeDiskGiB');
  assert.match(error, /at least 0/i);
  const input = settings.field('hosts.minFreeDiskGiB').locator('input');
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  await app.shot('validation error');

  await settings.setNumber('hosts.minFreeDiskGiB', '20');
  await settings.save();
  await settings.waitSaved();
  assert.equal(await input.inputValue(), '20');

  // System info and the doctor.
  await waitForText(
    page.locator('.kv'),
    new RegExp(app.server.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
  );
  await settings.doctor.waitFor();
  assert.ok((await settings.doctor.locator('li').count()) >= 3);
  await app.shot('settings saved');
  app.assertClean();
});

test('onboarding with the local host runs its preflight on this machine', async (t) => {
  const app = await openApp(t, { name: 'app-local-onboarding' });
  const { page, shell } = app;
  const wizard = new OnboardingPage(page);
  await wizard.waitForStep('Welcome');
  await wizard.continue();
  await wizard.waitForStep('Choose a host');
  await wizard.chooseLocal();
  // The local host needs no SSH: no Connection or host key steps.
  const names = await wizard.stepNames();
  assert.ok(!names.includes('Connection') && !names.includes('Verify host key'), names.join(', '));
  await app.shot('choose local');
  await wizard.continue();

  await wizard.waitForStep('Preflight');
  const checks = await wizard.waitForChecks();
  await app.shot('local preflight');
  const ids = checks.map((c) => c.id);
  for (const id of ['connect', 'virsh', 'qemu-img', 'disk', 'memory'])
    assert.ok(ids.includes(id), `check ${id} in ${ids}`);
  for (const c of checks) assert.match(c.status, /^(pass|warn|fail)$/);
  assert.equal(checks.find((c) => c.id === 'connect')?.status, 'pass');
  // Memory in the unit Capacity uses.
  assert.match(
    checks.find((c) => c.id === 'memory')?.detail ?? '',
    /^\d+\.\d GiB available of \d+\.\d GiB\.$/,
  );

  await wizard.continue();
  await wizard.waitForStep('Sources');
  await waitFor(
    'the VM list or its empty state',
    async () =>
      (await page
        .locator('.sources-step table, .sources-step .empty, .sources-step [role="alert"]')
        .count()) > 0,
  );
  await app.shot('local sources');
  await wizard.continue();
  await wizard.waitForStep('Done');
  await app.shot('done');
  // The last step leads to the first sandbox: the New sandbox dialog, on this host.
  await wizard.continue(); // "Create your first sandbox"
  await waitFor('Sandboxes', async () => (await shell.currentSection()) === 'Sandboxes');
  const create = new CreateSandboxDialog(page);
  await create.waitOpen();
  assert.equal(await create.hostLabel(), 'local');
  await app.shot('first sandbox');
  await create.cancel();
  await shell.goto('Hosts');
  const hosts = new HostsPage(page);
  assert.equal(await hosts.detailTitle(), 'local');
  assert.doesNotMatch(await hosts.hostItemText('local'), /never checked/);
  await hosts.capacityStats();
  await app.shot('local host');

  // The task tray remembers the preflight.
  const tray = await shell.openTasks();
  await waitForText(tray, /Preflight of local.*succeeded/);
  await app.shot('task tray');
  await shell.closeTasks();
  app.assertClean();
});

test('a wrong token shows a clear cannot-connect screen', async (t) => {
  const app = await openApp(t, {
    name: 'app-wrong-token',
    url: (s) => `${s.origin}/#token=not-the-token`,
    // The browser itself logs the refused WebSocket handshake.
    allowErrors: [/WebSocket connection to .* failed/],
    waitConnected: false,
    colorScheme: 'dark',
  });
  const { page } = app;
  await page.getByRole('heading', { name: 'Cannot connect to Fluid' }).waitFor();
  const alert = page.getByRole('alert');
  await waitForText(alert, /token is wrong/);
  await waitForText(alert, /#token=/);
  await page.getByRole('button', { name: 'Try again' }).waitFor();
  // The "system" theme follows the browser's dark preference, even before connecting.
  assert.equal(await app.shell.theme(), 'dark');
  await app.shot('cannot connect');
  app.assertClean();
});

test('audit: live entries, verify, export a download, review the file offline', async (t) => {
  const app = await openApp(t, { name: 'app-audit' });
  const { page, shell } = app;
  await shell.goto('Settings');
  const settings = new SettingsPage(page);
  await settings.setNumber('hosts.connectTimeoutSeconds', '20');
  await settings.save();
  await settings.waitSaved();

  await shell.goto('Audit');
  const audit = new AuditPage(page);
  await audit.waitForAction('settings.update');
  // A click on the row opens the entry in a drawer: actor, data, hashes.
  const detail = await audit.openEntry('settings.update');
  await waitForText(detail, /web:browser:/);
  await waitForText(detail.getByLabel('Entry data'), /"connectTimeoutSeconds": 20/);
  await waitForText(detail.getByTestId('entry-hash'), /^[0-9a-f]{64}$/);
  await app.shot('entry drawer');

  const verify = await audit.verify();
  assert.ok(verify.ok, verify.text);
  assert.match(verify.text, /intact, 1 entry/);
  // The decision-like settings change was signed at once; the key's fingerprint is shown to compare.
  assert.match(verify.text, /Signed checkpoint #1 covers entries 1–1\s*signature valid/);
  assert.match(verify.text, /Signing key SHA256:[A-Za-z0-9+/]{43}/);

  const download = await audit.export();
  assert.match(download.suggestedFilename(), /^fluid-audit-.*\.jsonl$/);
  const file = await download.path();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  // The entry, then the signed checkpoint that covers it (the export verifies offline with it).
  assert.equal(lines.length, 2);
  assert.equal((JSON.parse(lines[0]!) as { action: string }).action, 'settings.update');
  assert.match(lines[1]!, /^\{"checkpoint":1,"log":"[^"]+","seq":1,/);
  // Exporting is itself audited, and shows up live.
  await audit.waitForAction('audit.export');

  const review = await audit.reviewFile(file);
  assert.ok(review.ok, review.text);
  assert.match(review.text, /intact, 1 entry/);
  assert.match(review.text, /Signed checkpoint #1 covers entries 1–1/);
  // The file's rows are listed, each checked.
  const fileName = file.split('/').pop()!;
  assert.deepEqual(
    (await audit.reviewRows(fileName)).map((r) => [r.line, r.seq, r.status]),
    [[1, '1', 'ok']],
  );
  await app.shot('audit');

  // A rewritten row and a broken line: the review marks exactly those rows.
  const entry = JSON.parse(lines[0]!) as { data: Record<string, unknown> };
  entry.data = { ...entry.data, rewritten: true };
  const tampered = join(mkdtempSync(join(tmpdir(), 'fluid-e2e-audit-')), 'tampered.jsonl');
  writeFileSync(tampered, [JSON.stringify(entry), lines[1], 'not json at all', ''].join('\n'));
  const bad = await audit.reviewFile(tampered);
  assert.equal(bad.ok, false, bad.text);
  const rows = await audit.reviewRows('tampered.jsonl');
  assert.deepEqual(
    rows.map((r) => [r.line, r.status]),
    [
      [1, 'problem'],
      [3, 'problem'],
    ],
  );
  assert.match(rows[0]!.check, /content/);
  assert.match(rows[1]!.check, /malformed.*Line 3/);
  await app.shot('review marked');

  // Filter by action.
  await audit.filter('audit.export');
  await waitFor('the filter', async () => (await audit.actions()).every((a) => a === 'audit.export'));
  app.assertClean();
});

test('the app reconnects after the backend restarts, and re-hydrates', async (t) => {
  const app = await openApp(t, { name: 'app-reconnect' });
  const { page, shell, server } = app;
  await shell.goto('Hosts');
  app.allowErrors(/WebSocket connection to .* failed/);
  await server.stop();
  await waitFor('the reconnecting state', async () => (await shell.state()) === 'reconnecting');
  // Offline: said plainly, and what needs the backend is disabled (not left to fail on click).
  await waitForText(shell.reconnectBanner, /Offline: the Fluid backend cannot be reached/);
  await waitForText(shell.reconnectBanner, /Actions are disabled/);
  const recheck = page.getByRole('button', { name: 'Re-check' });
  assert.equal(await recheck.isDisabled(), true, 'Re-check is disabled while offline');
  assert.equal(await page.getByRole('link', { name: 'Add host' }).isVisible(), true, 'links stay');
  await app.shot('reconnecting');
  await server.restart();
  await page
    .getByRole('button', { name: 'Retry now' })
    .click()
    .catch(() => {});
  await shell.waitConnected(20_000);
  assert.equal(await shell.reconnectBanner.count(), 0);
  assert.equal(await recheck.isEnabled(), true, 'Re-check is enabled again');
  // Stores were re-hydrated from the new connection: the host list is back and live.
  const hosts = new HostsPage(page);
  assert.deepEqual(await hosts.hostNames(), ['local']);
  await shell.goto('Settings');
  const settings = new SettingsPage(page);
  await settings.setTheme('Dark');
  await settings.save();
  await waitFor('the dark theme after reconnecting', async () => (await shell.theme()) === 'dark');
  await app.shot('reconnected');
  app.assertClean();
});

test('Hosts: "Add host" reuses the wizard and explains bad input and unreachable hosts', async (t) => {
  const app = await openApp(t, { name: 'app-add-host' });
  const { page, shell } = app;
  await shell.goto('Hosts');
  const hosts = new HostsPage(page);

  // Edit: what the contract refuses shows next to the field.
  await hosts.detail.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit local' });
  await edit.getByLabel('Storage directory').fill('var/lib/fluid');
  await edit.getByRole('button', { name: 'Save' }).click();
  await waitForText(edit.locator('.field-error'), /Must start with "\/"/);
  await app.shot('edit validation');
  await edit.getByRole('button', { name: 'Cancel' }).click();

  // The built-in host cannot be removed, and the app says why.
  await hosts.detail.getByRole('button', { name: 'Remove' }).click();
  const dialog = page.getByRole('dialog', { name: 'This machine cannot be removed' });
  await waitForText(dialog, /built in/);
  await app.shot('local cannot be removed');
  await page.keyboard.press('Escape');
  await waitFor(
    'the dialog to close',
    async () => (await dialog.count()) === 0 || !(await dialog.isVisible()),
  );

  await page.getByRole('link', { name: 'Add host' }).click();
  const wizard = new OnboardingPage(page);
  await wizard.waitForStep('Connection');
  assert.deepEqual(await wizard.stepNames(), [
    'Connection',
    'Verify host key',
    'Preflight',
    'Sources',
    'Done',
  ]);

  // Input the contract refuses: messages next to the fields, no request sent.
  await wizard.fillConnection({ address: 'bad host!', port: 70000, user: 'root', keyPath: 'id_ed25519' });
  await wizard.continue();
  const field = (label: string) => page.locator('.field', { has: page.getByLabel(label, { exact: true }) });
  await waitForText(field('Address').locator('.field-error'), /host name or IP address/);
  await waitForText(field('Port').locator('.field-error'), /1 to 65535/);
  await waitForText(field('Private key file').locator('.field-error'), /absolute path/);
  assert.equal(await wizard.stepTitle(), 'Connection');
  await app.shot('invalid connection', { fullPage: true });

  // Continue is never greyed out: an empty form shows every missing field at once.
  await wizard.fillConnection({ address: '', port: 22, user: '', keyPath: '' });
  await wizard.continue();
  await waitForText(field('Address').locator('.field-error'), /Required/);
  await waitForText(field('User').locator('.field-error'), /./);
  await waitForText(field('Private key file').locator('.field-error'), /private key file/);

  // The key file is checked before any host key is shown: a missing one is said on this step.
  await wizard.fillConnection({
    address: '127.0.0.1',
    port: 1,
    user: 'root',
    keyPath: '/nonexistent/id_ed25519',
  });
  await wizard.continue();
  await waitForText(field('Private key file').locator('.field-error'), /Cannot read the key file.*ENOENT/);
  assert.equal(await wizard.stepTitle(), 'Connection');
  // A public key is not a private key.
  const keys = mkdtempSync(join(tmpdir(), 'fluid-e2e-key-'));
  t.after(() => rmSync(keys, { recursive: true, force: true }));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'id_ed25519')]);
  await wizard.fillConnection({
    address: '127.0.0.1',
    port: 1,
    user: 'root',
    keyPath: join(keys, 'id_ed25519.pub'),
  });
  await wizard.continue();
  await waitForText(field('Private key file').locator('.field-error'), /not a private key/);
  await app.shot('key file refused');

  // A usable key, and nothing listens on port 1: the probe fails with a way back.
  await wizard.fillConnection({
    address: '127.0.0.1',
    port: 1,
    user: 'root',
    keyPath: join(keys, 'id_ed25519'),
  });
  await wizard.continue();
  await wizard.waitForStep('Verify host key');
  const error = await wizard.errorText();
  assert.match(error, /HOST_UNREACHABLE/);
  assert.match(error, /No SSH server answered at 127\.0\.0\.1:1/);
  await app.shot('unreachable');
  await wizard.card.getByRole('button', { name: 'Back to connection' }).click();
  await wizard.waitForStep('Connection');
  assert.equal(await page.getByLabel('Port', { exact: true }).inputValue(), '1');
  app.assertClean();
});
