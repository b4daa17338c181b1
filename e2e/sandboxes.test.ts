/**
 * One sandbox from the lab, through the UI: create it from fluid-lab-web in the New sandbox dialog
 * (following the progress), land on its detail, run a command, type in its terminal, read and write
 * files, allow a destination, take a snapshot, destroy it. One sandbox for the whole file; whatever
 * happens, it is destroyed through the CLI afterwards and this installation's files leave the host.
 * Needs the lab (npm run lab); without it the test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  AuditPage,
  PresenceDialog,
  SandboxesPage,
  openApp,
  prepareLabData,
  readLab,
  startServer,
  waitFor,
  waitForText,
  type App,
} from './support/index.ts';

test('a sandbox of the lab: create, run, terminal, files, snapshot, destroy', async (t) => {
  const lab = readLab();
  const started = Date.now();
  const lap = (what: string) => console.log(`# ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const labData = prepareLabData(lab);
  const server = await startServer({ dataDir: labData.dataDir });
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await server.stop(); // a creation in flight is interrupted, so the CLI may destroy what it made
    const problems = await labData.cleanup();
    lap('cleaned up');
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });
  app = await openApp(t, { name: 'sandboxes-lab', server });
  const { page, shell } = app;
  const name = `e2e-${randomBytes(3).toString('hex')}`;

  await shell.goto('Sandboxes');
  const sandboxes = new SandboxesPage(page);
  await sandboxes.emptyState.waitFor();
  await app.shot('empty');

  // Create: the dialog, then its live progress.
  const dialog = await sandboxes.openCreate();
  await dialog.fill({
    host: labData.hostName,
    source: 'fluid-lab-web',
    name,
    ttlMinutes: 30,
    start: 'Cold boot',
  });
  await app.shot('create dialog');
  await dialog.submit();
  await dialog.waitForMessage(/Copying fluid-lab-web's disk|Booting/, 120_000);
  await app.shot('create progress');
  lap('creating');
  const outcome = await dialog.waitEnded(240_000);
  assert.equal(outcome, 'succeeded', outcome === 'succeeded' ? '' : await dialog.errorText());
  lap('created');

  // The detail: running, with its identity, start path and timings.
  await waitFor('the new sandbox', async () => (await sandboxes.title()) === name, 15_000);
  await sandboxes.waitForState('running');
  const ip = await sandboxes.ip();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.match(await sandboxes.startPath(), /^cold · \d+(\.\d)? s$/);
  const timings = await sandboxes.timings();
  for (const phase of ['inspect', 'base', 'define', 'boot', 'identity', 'ssh'])
    assert.match(timings[phase] ?? '', /\d/, `phase ${phase} in ${JSON.stringify(timings)}`);
  await waitForText(sandboxes.detail.getByTestId('sandbox-hostkey'), /^SHA256:/);
  const item = (await sandboxes.items()).find((i) => i.name === name);
  assert.ok(item, 'the sandbox is listed');
  assert.equal(item.state, 'running');
  assert.ok(item.text.includes(ip), item.text);
  assert.match(item.text, /cold · \d/);
  assert.match(item.text, /2\d min|30 min/); // time left of a 30-minute sandbox
  await app.shot('detail', { fullPage: true });

  // Run: the sandbox's own hostname.
  const run = await sandboxes.run('hostname');
  assert.equal(run.exit, 'exit 0');
  assert.equal(run.output.trim(), name);
  const failing = await sandboxes.run('echo to-stderr >&2; exit 3');
  assert.equal(failing.exit, 'exit 3');
  assert.match(failing.output, /to-stderr/);
  await app.shot('run');
  lap('run');

  // Terminal: keys go in, output comes back.
  await sandboxes.tab('Terminal');
  await sandboxes.waitTerminalOpen();
  await sandboxes.typeInTerminal('echo e2e-$((6*7))\n');
  await waitFor(
    'e2e-42 in the terminal',
    async () => (await sandboxes.terminalText()).includes('e2e-42'),
    20_000,
  );
  await app.shot('terminal');
  lap('terminal');

  // Files: read /etc/hostname; a missing file; write one and read it back.
  const hostname = await sandboxes.openFile('/etc/hostname');
  assert.equal(hostname.encoding, 'utf8');
  assert.equal(hostname.text.trim(), name);
  assert.equal(hostname.size, `${name.length + 1} B`);
  await app.shot('files read');
  const missing = await sandboxes.openFile('/nonexistent/e2e');
  assert.equal(missing.encoding, 'error');
  assert.match(await sandboxes.fileError(), /NOT_FOUND/);
  const content = `written by the e2e test\nsandbox ${name}\n`;
  const saved = await sandboxes.writeFile('/root/e2e.txt', content, { newFile: true });
  assert.match(saved, /Saved \d+ B to \/root\/e2e\.txt/);
  await waitFor(
    'the saved file read back in the editor',
    async () => (await sandboxes.openFile('/root/e2e.txt')).text === content,
  );
  const cat = await sandboxes.run('cat /root/e2e.txt');
  assert.equal(cat.output, content);
  const binary = await sandboxes.openFile('/bin/true');
  assert.equal(binary.encoding, 'base64');
  await waitForText(sandboxes.detail.getByLabel('Hex preview'), /^00000000 7f 45 4c 46/);
  await app.shot('files binary');
  lap('files');

  // Egress: a bad destination is refused with a reason, a good one is listed and can be removed.
  await sandboxes.allowDestination('not a host!');
  assert.match(await sandboxes.egressError(), /host/i);
  await sandboxes.allowDestination('deb.debian.org');
  // new egress is a person's decision: confirmed in the window (no passkey enrolled here)
  await new PresenceDialog(page).confirm();
  await waitFor('the destination to be allowed', async () =>
    (await sandboxes.allowed()).includes('deb.debian.org'),
  );
  await sandboxes.detail.getByRole('button', { name: 'Remove deb.debian.org' }).click();
  await waitFor(
    'the destination to be removed',
    async () => !(await sandboxes.allowed()).includes('deb.debian.org'),
  );

  // Snapshots: take one, change something, roll back (the terminal reconnects), delete it.
  await sandboxes.createSnapshot('e2e-snap', true);
  const snaps = await sandboxes.snapshots();
  assert.deepEqual(snaps, [{ name: 'e2e-snap', kind: 'disk+memory' }]);
  await app.shot('snapshots');
  assert.equal((await sandboxes.run('touch /root/after-snap')).exit, 'exit 0');
  // (the dialog closes only once the restore succeeded; its toast lasts 5 s, too short to wait for
  // on a loaded machine: the rollback itself is checked in the terminal below)
  await sandboxes.snapshotAction('e2e-snap', 'Restore');
  await sandboxes.waitForState('running');
  await sandboxes.tab('Terminal');
  await sandboxes.newTerminalSession();
  await sandboxes.typeInTerminal('test -e /root/after-snap || echo rolled-back-$((40+2))\n');
  await waitFor(
    'the rollback to show in the terminal',
    async () => (await sandboxes.terminalText()).includes('rolled-back-42'),
    30_000,
  );
  await app.shot('restored');
  await sandboxes.snapshotAction('e2e-snap', 'Delete');
  await waitFor('no snapshots', async () => (await sandboxes.snapshots()).length === 0);
  lap('snapshots');

  // Stop (power off), then destroy, confirmed by name.
  await sandboxes.stop(name, true);
  await sandboxes.waitForState('stopped', 60_000);
  await sandboxes.detail.getByRole('button', { name: 'Start' }).waitFor();
  await app.shot('stopped');
  await sandboxes.destroy(name);
  await shell.waitForToast(/Sandbox destroyed/);
  await sandboxes.waitForState('destroyed', 60_000);
  await app.shot('destroyed');
  lap('destroyed');
  const left = (await labData.cli(['sandbox', 'list'])) as Array<{ name: string }>;
  assert.ok(!left.some((s) => s.name === name), 'the CLI does not list it any more');

  // Audit: what was done to it.
  await shell.goto('Audit');
  const audit = new AuditPage(page);
  for (const action of ['sandbox.create', 'sandbox.write', 'snapshot.create', 'sandbox.destroy'])
    await audit.waitForAction(action);
  app.assertClean();
});
