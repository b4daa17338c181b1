/**
 * The Changes tab on a real sandbox of the lab: the sandbox is made and changed through the CLI (a
 * config file, a unit, a user, a cron job, a binary, a private key, a log line), then the person opens
 * the tab in Chromium: changes grouped by kind with counts, a text diff with syntax highlighting,
 * binary and sensitive markers (the key's content is never on the page), an exclusion that core keeps
 * (the CLI sees it; a reload keeps it), the noise on request, and "Read again" after a new change.
 * Needs the lab (npm run lab); without it the test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  SandboxesPage,
  openApp,
  prepareLabData,
  readLab,
  startServer,
  waitFor,
  type App,
} from './support/index.ts';
import { ChangesPage } from './support/pages/ChangesPage.ts';

const CHANGES = `set -e
mkdir -p /etc/nginx/conf.d
cat > /etc/nginx/conf.d/site.conf <<'EOF'
server {
    listen 8080;
    server_name example.internal;
    location / { return 200 "ok"; }
    # <img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>
}
EOF
cat > /etc/systemd/system/report.service <<'EOF'
[Unit]
Description=Nightly report

[Service]
Type=oneshot
ExecStart=/usr/local/bin/report
EOF
head -c 4096 /dev/urandom > /usr/local/bin/report; chmod 755 /usr/local/bin/report
mkdir -p /etc/ssl/private; printf -- '-----BEGIN PRIVATE KEY-----\\nTOPSECRETKEYMATERIAL\\n-----END PRIVATE KEY-----\\n' > /etc/ssl/private/site.key
chmod 600 /etc/ssl/private/site.key
echo '15 3 * * * root /usr/local/bin/report' > /etc/cron.d/report
useradd -m -s /bin/bash reporter
echo "report started" >> /var/log/report.log`;

test('the Changes tab: grouped changes, highlighted diffs, markers, exclusions kept in core, noise on request', async (t) => {
  const lab = readLab();
  const labData = prepareLabData(lab);
  const name = `e2e-chg-${randomBytes(3).toString('hex')}`;
  const server = await startServer({ dataDir: labData.dataDir });
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await server.stop();
    const problems = await labData.cleanup();
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });

  await labData.cli(
    [
      'sandbox',
      'create',
      '--source',
      'fluid-lab-web',
      '--host',
      labData.hostName,
      '--name',
      name,
      '--start',
      'cold',
      '--json',
    ],
    {
      timeoutMs: 600_000,
    },
  );
  await labData.cli(['sandbox', 'exec', name, '--json', '--', CHANGES], { timeoutMs: 300_000 });

  app = await openApp(t, { name: 'changes-lab', server });
  const { page, shell } = app;
  await shell.goto('Sandboxes');
  const sandboxes = new SandboxesPage(page);
  await sandboxes.select(name);
  await sandboxes.waitForState('running');
  const changes = new ChangesPage(page);
  await changes.open();
  await app.shot('changes', { fullPage: true });

  // Grouped by kind, with counts, in the contract's order.
  const groups = await changes.groups();
  const count = (kind: string) => groups.find((g) => g.kind === kind)?.count ?? 0;
  assert.deepEqual(
    groups.map((g) => g.kind),
    ['group', 'user', 'file', 'unit', 'cron'],
    JSON.stringify(groups),
  );
  assert.equal(count('user'), 1);
  assert.equal(count('unit'), 1);
  assert.equal(count('cron'), 1);
  const files = await changes.itemTitles('file');
  for (const p of ['/etc/nginx/conf.d/site.conf', '/usr/local/bin/report', '/etc/ssl/private/site.key'])
    assert.ok(files.includes(p), `${p} in ${files.join(', ')}`);
  assert.ok(!files.some((f) => f.startsWith('/var/log')), 'logs are noise, not changes');
  assert.match(await changes.summaryText(), /\d+ changes from baseline to now \(\d+ included\)/);

  // A text diff with syntax highlighting (nginx), line numbers and added-line marks.
  const site = await changes.diffOf('file', '/etc/nginx/conf.d/site.conf');
  assert.equal(await site.getAttribute('data-language'), 'nginx');
  assert.ok((await site.locator('tr.diff-add').count()) >= 5);
  assert.ok(
    (await site.locator('[class^="hljs-"], [class*=" hljs-"]').count()) > 0,
    'tokens are highlighted',
  );
  assert.match((await site.textContent()) ?? '', /server_name example\.internal;/);
  // The guest's content is text on the page, never markup (highlighting escapes it).
  assert.equal(await site.locator('img, script').count(), 0);
  assert.match((await site.textContent()) ?? '', /<img src=x onerror=/);
  assert.notEqual(await page.title(), 'pwned');
  const unit = await changes.diffOf('unit', '/etc/systemd/system/report.service');
  assert.equal(await unit.getAttribute('data-language'), 'ini');

  // Binary and sensitive markers; the key's content never reaches the page.
  assert.match((await changes.item('file', '/usr/local/bin/report').textContent()) ?? '', /binary/);
  assert.match((await changes.item('file', '/etc/ssl/private/site.key').textContent()) ?? '', /sensitive/);
  assert.doesNotMatch((await page.content()) ?? '', /TOPSECRETKEYMATERIAL/);
  await app.shot('diffs and markers', { fullPage: true });

  // Exclude the cron job: core keeps it (the CLI sees it), and a reload shows it still excluded.
  await changes.setIncluded('cron', '/etc/cron.d/report', false);
  const seen = (await labData.cli(['diff', name, '--last', '--json'])) as {
    excluded: string[];
    items: Array<{ id: string; key: string }>;
  };
  const cronId = seen.items.find((i) => i.key === '/etc/cron.d/report')!.id;
  assert.deepEqual(seen.excluded, [cronId]);
  await page.reload();
  await changes.open();
  assert.equal(await changes.isIncluded('cron', '/etc/cron.d/report'), false);
  assert.equal(await changes.isIncluded('unit', '/etc/systemd/system/report.service'), true);
  await app.shot('excluded', { fullPage: true });

  // The noise, on request, by rule.
  const noise = await changes.showNoise();
  assert.ok((noise.logs ?? 0) >= 1, `the log line is filtered as a log: ${JSON.stringify(noise)}`);
  assert.ok((noise.skel ?? 0) >= 1, `the new user's skeleton files are filtered: ${JSON.stringify(noise)}`);
  await app.shot('noise', { fullPage: true });

  // A new change, read again; the exclusion still stands for the item it names.
  await labData.cli(['sandbox', 'exec', name, '--json', '--', 'echo "Authorised use only." > /etc/motd']);
  await changes.readAgain();
  await waitFor('the new change', async () => (await changes.itemTitles('file')).includes('/etc/motd'));
  assert.equal(await changes.isIncluded('cron', '/etc/cron.d/report'), false);
  await app.shot('read again', { fullPage: true });
  app.assertClean();
});
