/**
 * A sandbox's everyday work on the lab, with one real sandbox: the Files tab browses /etc (types,
 * modes, owners, link targets; a typed directory is listed, not an error), opens files in Monaco with
 * highlighting by type, edits and saves one (checked with the CLI), refuses to overwrite a change made
 * meanwhile unless asked, previews a large file read-only, downloads and uploads (bytes checked); the
 * agent-free parts around it: an exact-IP egress entry's warning, the host's VM rows (a new sandbox
 * from a VM, its base), the overview with the sandbox's time left, an audit entry's drawer naming the
 * sandbox; and the sandbox detail at 900 px without overflow and with a wide terminal.
 * The sandbox is destroyed afterwards, whatever happens, and this installation's files leave the host.
 * Needs the lab (npm run lab): without it the test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  AuditPage,
  CreateSandboxDialog,
  HostsPage,
  OverviewPage,
  holdRpcAnswers,
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

interface ExecOut {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

test('files of a lab sandbox: browse /etc, edit in Monaco, large files, download and upload', async (t) => {
  const lab = readLab();
  const started = Date.now();
  const lap = (what: string) => console.log(`# ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const labData = prepareLabData(lab);
  const server = await startServer({ dataDir: labData.dataDir });
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await server.stop();
    const problems = await labData.cleanup();
    lap('cleaned up');
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });
  const exec = async (sandbox: string, command: string) =>
    (await labData.cli(['sandbox', 'exec', sandbox, '--', command])) as ExecOut;

  // This machine checked too: two ready host records of one machine (the lab is this machine).
  await labData.cli(['host', 'check', 'local']);
  app = await openApp(t, { name: 'files-lab', server, viewport: { width: 1400, height: 900 } });
  const { page, shell } = app;
  const name = `e2e-files-${randomBytes(3).toString('hex')}`;

  // A sandbox of fluid-lab-web, created in the New sandbox dialog.
  await shell.goto('Sandboxes');
  const sandboxes = new SandboxesPage(page);
  const dialog = await sandboxes.openCreate();
  // Two ready hosts: Fluid places the sandbox unless one is chosen (never "the newest" by default).
  assert.equal(await dialog.hostLabel(), 'Fluid chooses (most free capacity)');
  await waitFor('the sources of both hosts', async () =>
    (await dialog.sourceOptions()).some((o) => /^fluid-lab-web — .* · on (local, lab|lab, local)$/.test(o)),
  );
  await dialog.fill({ host: labData.hostName, source: 'fluid-lab-web', name, ttlMinutes: 30 });
  await dialog.submit();
  const outcome = await dialog.waitEnded(300_000);
  assert.equal(outcome, 'succeeded', outcome === 'succeeded' ? '' : await dialog.errorText());
  await waitFor('the new sandbox', async () => (await sandboxes.title()) === name, 15_000);
  await sandboxes.waitForState('running');
  lap('created');

  // ---- Files: /etc as a directory listing ----
  const etc = await sandboxes.browse('/etc');
  const by = Object.fromEntries(etc.map((e) => [e.name, e]));
  assert.equal(by.hostname?.type, 'file');
  assert.equal(by.hostname?.mode, '-rw-r--r--');
  assert.equal(by.hostname?.owner, 'root:root');
  assert.match(by.hostname?.size ?? '', /^\d+ B$/);
  assert.equal(by.ssh?.type, 'dir');
  assert.match(by.ssh?.mode ?? '', /^drwx/);
  const link = etc.find((e) => e.type === 'symlink');
  assert.ok(link, `a symbolic link in /etc: ${etc.map((e) => `${e.name}:${e.type}`).join(' ')}`);
  assert.ok(link.target, `${link.name} shows its target`);
  // Directories first, then files.
  const firstFile = etc.findIndex((e) => e.type !== 'dir');
  assert.ok(
    etc.slice(firstFile).every((e) => e.type !== 'dir'),
    'directories come first',
  );
  await app.shot('etc');

  // Into a directory by click, and a file by click: Monaco with the file's language.
  await sandboxes.clickEntry('ssh');
  const ssh = await sandboxes.listing('/etc/ssh');
  assert.ok(
    ssh.some((e) => e.name === 'sshd_config'),
    ssh.map((e) => e.name).join(' '),
  );
  await sandboxes.clickEntry('sshd_config');
  const sshd = await sandboxes.waitFile('/etc/ssh/sshd_config');
  assert.equal(sshd.encoding, 'utf8');
  const view = sandboxes.fileView('/etc/ssh/sshd_config');
  assert.equal(await view.locator('.code-editor-wrap').getAttribute('data-language'), 'shell');
  // Highlighted: comments and words are told apart by Monaco's token classes.
  const tokens = await view
    .locator('.view-lines span[class^="mtk"]')
    .evaluateAll((els) => [...new Set(els.map((e) => e.className))].length);
  assert.ok(tokens >= 2, `several token kinds in sshd_config (${tokens})`);
  assert.match(page.url(), /#\/sandboxes\/[^/]+\/files\/%2Fetc%2Fssh%2Fsshd_config$/);
  await app.shot('sshd_config');

  // A typed directory is browsed, not an error; a missing path is said, with a way up.
  await sandboxes.goToPath('/etc/ssh');
  await sandboxes.listing('/etc/ssh');
  const missing = await sandboxes.openFile('/etc/no-such-e2e-file');
  assert.equal(missing.encoding, 'error');
  assert.match(await sandboxes.fileError(), /NOT_FOUND/);

  // ---- Edit in Monaco and save; the CLI reads back exactly that ----
  const motd = `Managed by the e2e test ${name}\n  indented line\tand a tab\nthe end\n`;
  const saved = await sandboxes.writeFile('/etc/motd', motd);
  assert.match(saved, /Saved \d+ B to \/etc\/motd/);
  assert.equal((await exec(name, 'cat /etc/motd')).stdout, motd);
  // The file kept its owner and mode.
  assert.equal((await exec(name, 'stat -c "%U:%G %a" /etc/motd')).stdout.trim(), 'root:root 644');
  await app.shot('motd saved');

  // Someone changes it meanwhile (an agent, a command): Save does not overwrite it blindly.
  const motdView = sandboxes.fileView('/etc/motd');
  await motdView.getByRole('button', { name: 'Edit', exact: true }).click();
  await sandboxes.replaceEditorText(motdView, 'my edit\n');
  await exec(name, 'echo changed-meanwhile > /etc/motd');
  await motdView.getByRole('button', { name: 'Save', exact: true }).click();
  const conflict = motdView.locator('.callout-warn').filter({ hasText: 'changed in the sandbox' });
  await conflict.waitFor();
  assert.equal((await exec(name, 'cat /etc/motd')).stdout, 'changed-meanwhile\n');
  await app.shot('changed meanwhile');
  await conflict.getByRole('button', { name: 'Overwrite' }).click();
  await waitForText(motdView.locator('.saved-note'), /Saved/);
  assert.equal((await exec(name, 'cat /etc/motd')).stdout, 'my edit\n');

  // A new file, created from the browser.
  await sandboxes.writeFile('/root/notes.yml', 'key: value\nlist:\n  - a\n', { newFile: true });
  assert.equal((await exec(name, 'cat /root/notes.yml')).stdout, 'key: value\nlist:\n  - a\n');
  const notes = await sandboxes.listing('/root');
  assert.ok(notes.some((e) => e.name === 'notes.yml' && e.type === 'file'));
  lap('edited');

  // ---- A large file: a read-only preview of its head, and a note ----
  await exec(name, 'yes "a line of a large log file" | head -c 3145728 > /root/big.log');
  const big = await sandboxes.openFile('/root/big.log');
  assert.equal(big.encoding, 'utf8');
  const bigView = sandboxes.fileView('/root/big.log');
  assert.equal(await bigView.getAttribute('data-truncated'), 'true');
  await waitForText(bigView.locator('.callout-info'), /Showing the first 256 KiB of 3 MiB/);
  assert.equal(await bigView.getByRole('button', { name: 'Edit', exact: true }).isDisabled(), true);
  await app.shot('large file');

  // ---- Download and upload: bytes in, bytes out ----
  await sandboxes.openFile('/etc/hostname');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    sandboxes.fileView('/etc/hostname').getByRole('button', { name: 'Download' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'hostname');
  assert.equal(readFileSync(await download.path(), 'utf8'), `${name}\n`);
  await sandboxes.browse('/root');
  const payload = randomBytes(200_000);
  await sandboxes.files
    .getByLabel('Upload files to /root')
    .setInputFiles({ name: 'upload.bin', mimeType: 'application/octet-stream', buffer: payload });
  await shell.waitForToast(/Uploaded/);
  const sum = (await exec(name, 'sha256sum /root/upload.bin')).stdout.split(' ')[0];
  assert.equal(sum, createHash('sha256').update(payload).digest('hex'));
  await waitFor('upload.bin listed', async () =>
    (await sandboxes.listing('/root')).some((e) => e.name === 'upload.bin'),
  );
  // A binary file shows as a hex preview.
  await sandboxes.clickEntry('upload.bin');
  const bin = await sandboxes.waitFile('/root/upload.bin');
  assert.equal(bin.encoding, 'base64');
  await waitForText(
    sandboxes.fileView('/root/upload.bin').getByLabel('Hex preview'),
    new RegExp(
      `^00000000 ${[...payload.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`,
    ),
  );
  lap('files');

  // ---- Run: a command that ran and exited 3 is an answer, not an error ----
  const inactive = await sandboxes.run('systemctl is-active no-such-e2e-unit.service');
  assert.equal(inactive.exit, 'exit 3');
  const badge = sandboxes.detail.locator('.run-output [data-testid="exit-code"]').first();
  assert.equal(await badge.evaluate((e) => e.closest('.badge')?.classList.contains('badge-neutral')), true);

  // ---- Egress: an exact IP entry opens an address no name reaches, and says so ----
  await sandboxes.allowDestination('10.1.2.3');
  const confirm = new PresenceDialog(page);
  await confirm.confirm();
  await waitFor('the IP entry', async () => (await sandboxes.allowed()).includes('10.1.2.3'));
  const warning = sandboxes.detail.getByTestId('egress-warnings');
  await waitForText(warning, /10\.1\.2\.3/);
  assert.equal(
    await sandboxes.detail.locator('.chip[data-warning="true"]').filter({ hasText: '10.1.2.3' }).count(),
    1,
  );
  assert.equal(await sandboxes.detail.getByTestId('egress-problem').count(), 0, 'the proxy serves it');
  await app.shot('egress warning');

  // ---- The host's VM rows: a new sandbox from a VM, and its base ----
  // Both host records list the same VMs. Switching from one to the other shows nothing of the first
  // while the second's list is on its way (its "New sandbox" would create on the wrong host).
  const vmAnswers = await holdRpcAnswers(page, 'hosts.vms');
  await page.reload();
  await shell.goto('Hosts');
  const hosts = new HostsPage(page);
  const vmRows = hosts.detail.locator('tr[data-vm]');
  await hosts.select('local');
  await waitFor('the VMs of local', async () => (await vmRows.count()) > 0);
  vmAnswers.hold();
  await hosts.select(labData.hostName);
  await waitFor('the VM list of the lab host to be asked for', async () => vmAnswers.waiting > 0);
  assert.equal(await vmRows.count(), 0, 'no VM row of local is shown under the lab host');
  await hosts.detail.getByRole('status', { name: 'Listing VMs' }).waitFor();
  vmAnswers.release();
  await waitFor('the VMs of the lab host', async () => (await vmRows.count()) > 0);
  // One machine registered twice is said, naming the other record.
  await waitForText(hosts.detail.getByTestId('same-machine'), /same libvirt on the same machine as local/);
  const web = hosts.detail.locator('tr[data-vm="fluid-lab-web"]');
  await web.getByRole('link', { name: 'Open the base of fluid-lab-web' }).click();
  await waitFor('the base images', async () => page.url().includes('#/sandboxes/bases/'));
  const baseRow = page.locator('tr[data-base="fluid-lab-web"]');
  assert.equal(await baseRow.getAttribute('aria-current'), 'true');
  // Its actions are one even column of buttons.
  const widths = await baseRow
    .locator('.base-actions .btn')
    .evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().width)));
  assert.equal(widths.length, 2);
  assert.equal(widths[0], widths[1], `equal buttons: ${widths.join(', ')}`);
  await app.shot('base');
  await shell.goto('Hosts');
  await hosts.select(labData.hostName);
  await hosts.detail
    .locator('tr[data-vm="fluid-lab-prod"]')
    .getByRole('button', { name: 'New sandbox from fluid-lab-prod' })
    .click();
  const fromVm = new CreateSandboxDialog(page);
  await fromVm.waitOpen();
  assert.equal(await fromVm.hostLabel(), labData.hostName);
  assert.equal(await fromVm.sourceValue(), 'fluid-lab-prod');
  // Chosen on purpose, and said: it runs, and Fluid leaves it running, untouched.
  await waitForText(fromVm.root.locator('.callout-info'), /fluid-lab-prod is running/);
  await app.shot('new sandbox from a VM');
  await fromVm.cancel();

  // ---- Overview: the sandbox and its time left; the lab host's capacity ----
  await shell.goto('Overview');
  const overview = new OverviewPage(page);
  await waitFor('the sandbox on the overview', async () => name in (await overview.runningSandboxes()));
  assert.match((await overview.runningSandboxes())[name]!, /^(2\d|30) min|^\d+ min \d+ s$/);
  const card = await overview.waitSamples(labData.hostName, 1);
  assert.match(card.chart, /memory in use \d+ %/);
  await app.shot('overview');

  // ---- Audit: the write, opened by its row, names the sandbox ----
  await shell.goto('Audit');
  const audit = new AuditPage(page);
  await audit.waitForAction('sandbox.write');
  await audit.openEntry('sandbox.write');
  const concerns = await audit.concerns();
  assert.match(concerns.Sandbox ?? '', new RegExp(`^${name} [0-9a-f-]{36}$`));
  await app.shot('audit drawer');
  await audit.closeEntry();

  // ---- 900 px: the detail and its Files and Terminal tabs fit; the terminal stays wide ----
  await page.setViewportSize({ width: 900, height: 860 });
  await shell.goto('Sandboxes');
  await sandboxes.select(name);
  assert.equal(await shell.navCollapsed(), true);
  await sandboxes.browse('/etc');
  await sandboxes.clickEntry('hostname');
  await sandboxes.waitFile('/etc/hostname');
  await app.shot('files 900');
  assert.deepEqual(await shell.overflows(), [], 'Files at 900 px');
  await sandboxes.tab('Terminal');
  await sandboxes.waitTerminalOpen();
  const size = await waitFor('the terminal size', async () => {
    const m = /(\d+)×(\d+)/.exec((await sandboxes.terminal.locator('.terminal-bar').textContent()) ?? '');
    return m ? Number(m[1]) : null;
  });
  assert.ok(size >= 80, `the terminal has ${size} columns at 900 px`);
  assert.deepEqual(await shell.overflows(), [], 'Terminal at 900 px');
  await app.shot('terminal 900');
  lap('done');
  app.assertClean();
});
