/**
 * Onboard the lab host in web mode through the UI, exactly as a user would: a remote host over SSH,
 * its host key checked against lab.json, preflight, sources, then Hosts and Audit.
 * Needs the lab (npm run lab); without it the test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  AuditPage,
  CreateSandboxDialog,
  HostsPage,
  OnboardingPage,
  ROOT,
  openApp,
  readLab,
  startServer,
  waitFor,
  waitForText,
} from './support/index.ts';
import { presentedFingerprint, restoreLabHostKey, rotateLabHostKey } from './support/labSshd.ts';

test('onboard the lab host over SSH, then see it in Hosts and Audit', async (t) => {
  const lab = readLab();
  const app = await openApp(t, { name: 'onboarding-lab' });
  const { page, shell } = app;
  const wizard = new OnboardingPage(page);

  await wizard.waitForStep('Welcome');
  await app.shot('welcome');
  await wizard.continue();

  await wizard.waitForStep('Choose a host');
  await wizard.chooseRemote();
  await app.shot('choose remote');
  await wizard.continue();

  // Connection: first with a user the host refuses, to see the error and the way back.
  await wizard.waitForStep('Connection');
  await wizard.fillConnection({
    address: lab.sshHost,
    port: lab.sshPort,
    user: 'fluid-nobody',
    keyPath: lab.keyPath,
  });
  await app.shot('connection');
  await wizard.continue();

  await wizard.waitForStep('Verify host key');
  const shown = await wizard.fingerprint();
  assert.equal(shown.fingerprint, lab.hostKeyFingerprint, 'the fingerprint shown is the lab host key');
  assert.match(shown.type, /^ssh-/);
  await waitForText(page.locator('pre.cmd'), /ssh-keygen -lf \/etc\/ssh\/ssh_host_\w+_key\.pub/);
  await app.shot('verify host key');
  await wizard.trustHostKey();
  const refused = await wizard.errorText();
  assert.match(refused, /login was refused/);
  assert.match(refused, /AUTH_FAILED/);
  await app.shot('login refused');

  await wizard.card.getByRole('button', { name: 'Back to connection' }).click();
  await wizard.waitForStep('Connection');
  await page.getByLabel('User', { exact: true }).fill(lab.sshUser);
  await wizard.continue();
  await wizard.waitForStep('Verify host key');
  assert.equal((await wizard.fingerprint()).fingerprint, lab.hostKeyFingerprint);
  await wizard.trustHostKey();

  // Preflight: followed live, then every check with its verdict.
  await wizard.waitForStep('Preflight', 30_000);
  const checks = await wizard.waitForChecks(90_000);
  await app.shot('preflight');
  const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
  assert.equal(byId.connect?.status, 'pass', JSON.stringify(byId.connect));
  assert.equal(byId.virsh?.status, 'pass', JSON.stringify(byId.virsh));
  if (lab.virtType === 'qemu') {
    assert.equal(byId['virt-type']?.status, 'warn', JSON.stringify(byId['virt-type']));
    assert.match(byId['virt-type']!.detail, /TCG/);
  }
  await wizard.continue();

  // Sources, with their states.
  await wizard.waitForStep('Sources');
  const sources = await wizard.waitForSources();
  await app.shot('sources');
  const names = sources.map((s) => s.name);
  for (const s of lab.sources) {
    assert.ok(names.includes(s.name), `${s.name} in ${names.join(', ')}`);
    const row = sources.find((r) => r.name === s.name)!;
    assert.ok(row.state, `${s.name} has a state`);
    if (s.state) assert.equal(row.state, s.state, `state of ${s.name}`);
  }
  await waitForText(page.locator('.sources-step'), /never writes to a source/);
  await wizard.continue();

  await wizard.waitForStep('Done');
  await app.shot('done');
  const hostName = `${lab.sshHost}-${lab.sshPort}`;
  await wizard.continue(); // Create your first sandbox

  // The next step is a sandbox: the New sandbox dialog on this host, never a running VM preselected.
  await waitFor('Sandboxes', async () => (await shell.currentSection()) === 'Sandboxes');
  const create = new CreateSandboxDialog(page);
  await create.waitOpen();
  assert.equal(await create.hostLabel(), hostName);
  const prod = lab.sources.find((s) => s.state === 'running');
  const chosen = await create.sourceValue();
  if (prod) assert.notEqual(chosen, prod.name, 'the running production VM is not preselected');
  await app.shot('first sandbox');
  await create.cancel();

  // Hosts: the new host with its pinned key, capacity and VMs.
  await shell.goto('Hosts');
  const hosts = new HostsPage(page);
  await hosts.select(hostName);
  await waitFor('the lab host in the list', async () => (await hosts.hostNames()).includes(hostName));
  assert.equal(await hosts.detailTitle(), hostName);
  assert.equal(await hosts.pinnedFingerprint(), lab.hostKeyFingerprint);
  const item = await hosts.hostItemText(hostName);
  assert.match(item, lab.virtType === 'qemu' ? /TCG/ : /KVM/);
  assert.match(item, /checked/);
  const stats = await hosts.capacityStats();
  assert.match(stats.CPUs ?? '', /^\d+$/);
  assert.ok(Number(stats.CPUs) > 0);
  assert.match(stats.Memory ?? '', /\d+(\.\d)? (GiB|MiB)/);
  assert.match(stats['Running VMs'] ?? '', /^\d+$/);
  const usage = await hosts.usageCaptions();
  assert.ok(
    Object.values(usage).some((c) => /free of \d/.test(c)),
    JSON.stringify(usage),
  );
  const vms = await hosts.vmNames();
  for (const s of lab.sources) assert.ok(vms.includes(s.name), `${s.name} in ${vms.join(', ')}`);
  await app.shot('hosts', { fullPage: true });

  // Audit: the registration and the check, and an intact chain.
  await shell.goto('Audit');
  const audit = new AuditPage(page);
  await audit.waitForAction('host.add');
  await audit.waitForAction('host.check');
  const entry = await audit.openEntry('host.add');
  await waitForText(
    entry.getByLabel('Entry data'),
    new RegExp(lab.hostKeyFingerprint.replace(/[+/]/g, '\\$&')),
  );
  const verify = await audit.verify();
  assert.ok(verify.ok, verify.text);
  assert.match(verify.text, /intact/);
  await app.shot('audit');
  app.assertClean();
});

test('a changed host key is explained, and trusted only deliberately', async (t) => {
  const lab = readLab();
  const dataDir = mkdtempSync(join(tmpdir(), 'fluid-e2e-rekey-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // Register the lab host (CLI door) with the key it presents today.
  const name = 'lab-rekeyed';
  execFileSync(
    process.execPath,
    [
      join(ROOT, 'bin/fluid.js'),
      '--data-dir',
      dataDir,
      '--json',
      'host',
      'add',
      `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`,
      '--key',
      lab.keyPath,
      '--accept-fingerprint',
      lab.hostKeyFingerprint,
      '--name',
      name,
      '--no-check',
    ],
    { cwd: ROOT, stdio: 'pipe' },
  );
  // Then the host really gets a new key, as after a reinstall (or with someone in the middle): the
  // lab sshd is given a fresh one. Every other test pins the original: it comes back afterwards,
  // also when this test fails.
  const oldKey = lab.hostKeyFingerprint;
  t.after(() => restoreLabHostKey(lab));
  const newKey = await rotateLabHostKey(lab);
  assert.notEqual(newKey, oldKey);
  assert.equal(presentedFingerprint(lab), newKey, 'the lab host now presents the new key');

  const server = await startServer({ dataDir });
  // The page closes before the server goes (a server gone first shows up as page errors).
  const app = await openApp(t, { name: 'hostkey-changed', server }).catch(async (err: unknown) => {
    await server.dispose();
    throw err;
  });
  t.after(() => server.dispose());
  const { page, shell } = app;
  // A host exists: the app lands on the overview.
  await waitFor('the overview', async () => (await shell.currentSection()) === 'Overview');
  await shell.goto('Hosts');
  const hosts = new HostsPage(page);
  await hosts.select(name);

  const box = page.getByRole('alert').filter({ hasText: 'has changed' });
  await waitForText(box, /Fluid refuses to connect/, 30_000);
  assert.equal(((await page.getByTestId('presented-fingerprint').textContent()) ?? '').trim(), newKey);
  await waitForText(box, new RegExp(oldKey.replace(/[+/]/g, '\\$&')));
  await app.shot('host key changed', { fullPage: true });

  await box.getByRole('button', { name: /Trust the new key/ }).click();
  const dialog = page.getByRole('dialog', { name: /Trust a new host key/ });
  await dialog.waitFor();
  const input = dialog.getByLabel('Type or paste the new fingerprint to confirm');
  const trust = dialog.getByRole('button', { name: 'Trust the new key' });
  await input.fill('SHA256:not-it');
  assert.equal(await trust.isDisabled(), true);
  await waitForText(dialog, /does not match/);
  // The fingerprint the host had before is not the one being trusted.
  await input.fill(oldKey);
  assert.equal(await trust.isDisabled(), true);
  await input.fill(newKey);
  await app.shot('confirm new key');
  await trust.click();
  await shell.waitForToast(/New host key trusted/);

  // Trusting re-checks the host over SSH with the new key; the warning goes away and it is pinned.
  await waitFor('the mismatch to clear', async () => (await box.count()) === 0, 60_000);
  await hosts.waitForCheckDone();
  assert.equal(await hosts.pinnedFingerprint(), newKey);
  await hosts.capacityStats();
  await app.shot('trusted', { fullPage: true });

  await shell.goto('Audit');
  const audit = new AuditPage(page);
  await audit.waitForAction('host.trust');
  const entry = await audit.openEntry('host.trust');
  await waitForText(entry.getByLabel('Entry data'), new RegExp(oldKey.replace(/[+/]/g, '\\$&')));
  await waitForText(entry.getByLabel('Entry data'), new RegExp(newKey.replace(/[+/]/g, '\\$&')));
  app.assertClean();
});
