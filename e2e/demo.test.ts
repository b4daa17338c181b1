/**
 * The shipped demo from the Agent view, on the lab, with nothing to edit: the empty Agent view offers
 * it and says what it needs until the lab's production VM is registered as a target; then "Run the
 * demo" asks the person to confirm the scripted model's $0 price, starts the session, and the scripted
 * agent finds the 502 on production read-only, fixes it in a sandbox cloned from it, verifies the
 * playbook and submits the change, which waits for a person. Production is left exactly as it was
 * (checked through the guest agent, outside Fluid).
 * Needs the lab (npm run lab) and the built UI; run under the VM lock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCore } from '../src/core/createCore.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import {
  AgentPage,
  PresenceDialog,
  openApp,
  prepareLabData,
  onLabVm,
  prodTargetOf,
  readLab,
  startServer,
  waitFor,
  type App,
} from './support/index.ts';

const PROD = 'fluid-lab-prod';
const SITE = '/etc/nginx/sites-available/shop';

test('the demo runs from the Agent view and leaves its change waiting for a person', async (t) => {
  const lab = readLab();
  const prod = prodTargetOf(lab);
  const onProd = (script: string) => onLabVm(PROD, script);
  const prodWeb = () =>
    onProd(
      `sha256sum ${SITE}; systemctl is-active nginx shop; curl -sS -o /dev/null -w 'GET / -> %{http_code}\\n' http://127.0.0.1/`,
    );
  const before = prodWeb();
  assert.match(before, /\nactive\nactive\nGET \/ -> 502\n$/, 'production has the fault');

  const labData = prepareLabData(lab);
  const server = await startServer({ dataDir: labData.dataDir });
  const side = createCore({
    dataDir: labData.dataDir,
    logger: createLogger({ level: 'error' }),
    egress: null,
  });
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await side.close();
    await server.stop();
    const problems = await labData.cleanup();
    if (prodWeb() !== before) problems.push('production changed');
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });

  app = await openApp(t, { name: 'demo', server });
  const { page, shell } = app;
  await shell.goto('Agent');
  const agent = new AgentPage(page);
  await agent.emptyState.waitFor();
  const card = page.getByRole('region', { name: 'Demo' });
  // Without the production target, it says what to do and cannot start.
  assert.match(await card.getByTestId('demo-missing').innerText(), /fluid target add prod-web/);
  assert.equal(await card.getByRole('button', { name: 'Run the demo' }).isDisabled(), true);
  await app.shot('demo needs the lab');

  // The person registers production (as the README's lab section does with `fluid target add`).
  await side.targets.add(
    {
      name: 'prod-web',
      address: prod.address,
      port: 22,
      user: prod.user,
      credential: { type: 'keyFile', path: prod.keyPath },
      jump: labData.hostName,
      become: 'sudo',
      acceptFingerprint: prod.hostKeyFingerprint,
      sourceVm: { host: labData.hostName, vm: PROD },
    },
    { door: 'test', id: 'e2e-setup' },
  );
  await page.reload();
  await agent.emptyState.waitFor();
  await waitFor('the demo ready', async () => (await card.getByTestId('demo-missing').count()) === 0);
  await card.getByRole('button', { name: 'Run the demo' }).click();
  // The scripted model's price of $0 is the person's to confirm, like any price.
  const presence = new PresenceDialog(page);
  assert.match(await presence.what(), /price of model "scripted-model" on provider demo to \$0 in/);
  await presence.confirm();
  await agent.view.waitFor();
  const sessionId = (await agent.view.getAttribute('data-session')) ?? '';
  await app.shot('demo started');

  const status = await agent.waitStatus(/^(done|failed|stopped|idle)$/, 40 * 60_000);
  const replies = await agent.replies();
  assert.equal(status, 'done', `${await agent.lastError().catch(() => '')}\n${replies.join('\n')}`);
  assert.match(replies.at(-1) ?? '', /waits for a person's approval/);
  await app.shot('demo done');

  // Its change: verified, waiting for a person, never applied; production is as it was.
  const session = side.agent.get(sessionId);
  assert.deepEqual([session.providerId, session.source], ['demo', PROD]);
  const changes = side.changes.list({ target: 'prod-web', limit: 10 });
  assert.equal(changes.length, 1, JSON.stringify(changes, null, 2));
  assert.equal(changes[0]!.status, 'awaiting-approval');
  assert.deepEqual(changes[0]!.applies, []);
  assert.equal(prodWeb(), before);
});
