/**
 * Human presence in the browser: a high-risk request (new egress, asked by an MCP client) is approved
 * only after an explicit confirmation in the window; once a passkey is enrolled (Chromium's virtual
 * authenticator through the DevTools protocol), the passkey is asked instead and the window's
 * confirmation no longer exists; loosening a setting needs it too. The server verifies every
 * assertion for real. Needs no lab.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCore } from '../src/core/createCore.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import {
  ApprovalModal,
  PresenceDialog,
  SecurityPage,
  addVirtualAuthenticator,
  openApp,
  waitFor,
} from './support/index.ts';

test('high-risk decisions: confirmed in the window, then only with the enrolled passkey', async (t) => {
  const app = await openApp(t, { name: 'presence' });
  const { page } = app;
  assert.match(
    page.url(),
    /^http:\/\/localhost:\d+\//,
    'the printed URL names localhost (WebAuthn needs it)',
  );
  // Another process on the same data dir files requests, as an MCP server would.
  const other = createCore({
    dataDir: app.server.dataDir,
    secrets: new MemorySecretStore(),
    logger: createLogger({ level: 'error' }),
    egress: null,
  });
  t.after(() => other.close());
  const ask = (destination: string) =>
    other.approvals.request({
      kind: 'egress',
      title: `egress to ${destination}`,
      detail: `A sandbox asks to reach ${destination}.`,
      risk: 'high',
      subject: { destination },
      requestedBy: { door: 'mcp', id: 'claude-code' },
    });
  const modal = new ApprovalModal(page);
  const confirm = new PresenceDialog(page);

  // 1. No key: Approve asks for an explicit confirmation that names the request; Cancel changes nothing.
  const a = ask('example.com:443');
  await modal.waitOpen();
  await modal.decide('Approve');
  assert.equal(await confirm.what(), 'approve "egress to example.com:443"');
  await app.shot('confirm-in-window');
  await confirm.cancel();
  assert.equal(other.approvals.get(a.id).status, 'pending');
  await modal.decide('Approve');
  await confirm.confirm();
  await waitFor('the request approved', () => other.approvals.get(a.id).status === 'approved');
  assert.equal(other.approvals.get(a.id).decidedVia, 'confirm');
  await modal.waitClosed();

  // 2. Enrol a passkey; the first key is itself confirmed in the window.
  await addVirtualAuthenticator(page);
  const security = new SecurityPage(page);
  await security.open();
  await page.getByTestId('no-keys').waitFor();
  await security.addKey('e2e passkey');
  assert.equal(await confirm.what(), 'enrol the key "e2e passkey"');
  await confirm.confirm();
  await waitFor('the key listed', async () => (await security.keys().count()) === 1);
  assert.match((await security.keys().first().textContent()) ?? '', /e2e passkey/);
  await app.shot('key-enrolled');

  // 3. With a key, Approve asks the key (no window confirmation), and the audit names it.
  const b = ask('169.254.169.254:80');
  await modal.waitOpen();
  await modal.decide('Approve');
  await waitFor('approved with the key', () => other.approvals.get(b.id).status === 'approved');
  assert.equal(other.approvals.get(b.id).decidedVia, 'webauthn');
  assert.equal(await confirm.root.count(), 0);
  const decided = other.audit.list({ limit: 1, action: 'approval.decide' }).entries[0]!;
  assert.equal((decided.data as { via: string }).via, 'webauthn');
  await modal.waitClosed();

  // 4. Loosening a setting (unattended CLI decisions) needs the key too.
  await security.open();
  await page.locator('[data-field="approvals.allowUnattendedCli"] input').check();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitFor('the setting saved', () => other.settings.get().approvals.allowUnattendedCli);
  const saved = other.audit.list({ limit: 1, action: 'settings.update' }).entries[0]!;
  assert.equal((saved.data as { via: string }).via, 'webauthn');
  assert.deepEqual((saved.data as { loosened: string[] }).loosened, ['approvals.allowUnattendedCli']);
  await app.shot('unattended-allowed-with-key');
  app.assertClean();
});
