/**
 * Settings → API tokens in the browser, against a real `fluid serve` (the HTTP API shares the UI's
 * port): an agent token is created and its secret shown once, and that secret works on /v1/ of the
 * same server; an operator token is a grant and is confirmed in the window first; revoking a token
 * turns its requests into 401 at once. Needs no lab.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PresenceDialog, openApp, waitFor } from './support/index.ts';

test('API tokens: created (the operator one confirmed), shown once, usable on the same port, revoked', async (t) => {
  const app = await openApp(t, { name: 'api-tokens' });
  const { page } = app;
  const api = (secret: string) =>
    fetch(new URL('/v1/sandboxes', app.server.origin), {
      headers: { Authorization: `Bearer ${secret}` },
    }).then((r) => r.status);
  await page.goto(new URL('#/settings/tokens', page.url()).toString());
  await page.getByTestId('no-tokens').waitFor();
  const form = page.getByRole('form', { name: 'Create an API token' });

  await form.getByLabel('Name').fill('ci-agent');
  await form.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.getByTestId('token-secret').textContent())!.trim();
  assert.match(secret, /^fluid_a_/);
  await app.shot('agent-token-created');
  assert.equal(await api(secret), 200, 'the secret works on /v1/ of the same server');
  assert.equal(await api('fluid_a_wrong'), 401);

  // an operator token is a grant: confirmed in the window (no key enrolled), cancel changes nothing
  await form.getByLabel('Name').fill('nightly-ops');
  await form.getByLabel('Scope').selectOption('operator');
  await form.getByRole('button', { name: 'Create token' }).click();
  const confirm = new PresenceDialog(page);
  assert.match(await confirm.what(), /^create the operator token "nightly-ops"/);
  await app.shot('operator-token-confirm');
  await confirm.cancel();
  await page.getByText('Not confirmed; nothing changed.').waitFor();
  await form.getByRole('button', { name: 'Create token' }).click();
  await confirm.confirm();
  await waitFor('the operator secret', async () =>
    /^fluid_o_/.test((await page.getByTestId('token-secret').textContent()) ?? ''),
  );
  const rows = page.getByRole('list', { name: 'API tokens' }).locator('.key-row');
  await waitFor('both tokens listed', async () => (await rows.count()) === 2);

  await page.locator('[data-token="ci-agent"]').getByRole('button', { name: 'Revoke' }).click();
  await waitFor('one token left', async () => (await rows.count()) === 1);
  assert.equal(await api(secret), 401, 'a revoked token is refused at once');
  await app.shot('agent-token-revoked');
  app.assertClean();
});
