/**
 * Nothing lost on reload, on the lab, with one real sandbox. The lab is registered twice (locally
 * and over SSH): `fluid sandbox create --source fluid-lab-web` places the sandbox without asking and
 * says why, and its cold boot's progress carries what the serial console printed. Then in Chromium: a
 * 15-second loop started in the Run tab keeps streaming after the page reloads (the page attaches
 * again to the run on the backend), finishes with every line once, and the audit log has the command
 * at its start and its end; a terminal survives a reload (same shell, scrollback redrawn); the
 * Console tab shows the serial console and takes keys; a backend that goes away while a command runs
 * shows offline with Run disabled and never a negative duration, and the run is recorded as ended
 * when it comes back. Whatever happens, the sandbox is destroyed and this installation's files leave
 * the host. Needs the lab (npm run lab): without it the test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  ROOT,
  SandboxesPage,
  openApp,
  prepareLabData,
  readLab,
  startServer,
  waitFor,
  type App,
} from './support/index.ts';

/** The CLI without --json, so its progress lines (stderr) are what a person sees. */
function cliText(dataDir: string, args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/fluid.js'), '--data-dir', dataDir, ...args], {
      cwd: ROOT,
      env: { ...process.env, FLUID_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface AuditRow {
  action: string;
  target: string | null;
  data: Record<string, unknown>;
}

test('a run and a terminal outlive a reload; the console shows the boot; placement says why', async (t) => {
  const lab = readLab();
  const started = Date.now();
  const lap = (what: string) => console.log(`# ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const labData = prepareLabData(lab);
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await server?.stop();
    const problems = await labData.cleanup();
    lap('cleaned up');
    if (problems.length) throw new Error(`Cleanup: ${problems.join('; ')}`);
  });

  // Two records of one machine: the local host and the lab over SSH (checked, so each knows).
  // (a check that warns or fails still records the identity; the placement below says if it did not)
  await labData.cli(['host', 'check', 'local']).catch(() => null);
  await labData.cli(['host', 'check', labData.hostName]).catch(() => null);
  const name = `e2e-run-${randomBytes(3).toString('hex')}`;
  const created = await cliText(
    labData.dataDir,
    ['sandbox', 'create', '--source', 'fluid-lab-web', '--name', name, '--start', 'cold', '--ttl', '30'],
    480_000,
  );
  lap('created');
  assert.equal(created.code, 0, `${created.stdout}\n${created.stderr}`);
  // Placed without asking, and why: one machine, counted once.
  const placed = new RegExp(
    `placed on local: has fluid-lab-web, \\d+\\.\\d GiB free \\(${labData.hostName}: the same machine, counted once\\)`,
  );
  assert.match(created.stderr, placed);
  assert.match(created.stdout, /placement: placed on local/);
  // The cold boot's progress carries what the guest's serial console printed meanwhile. The lab's
  // guests boot with `quiet`, so their agent often answers before the console prints a line: the
  // lines are counted here, and the following of the log is checked in test/unit/sandboxes/console.
  const bootLines = created.stderr.split('\n').filter((l) => /Booting \(cold boot requested\): \S/.test(l));
  console.log(
    `# boot lines in the progress: ${bootLines.length}${bootLines.length ? `, e.g. ${bootLines.at(-1)!.trim()}` : ''}`,
  );
  const info = (await labData.cli(['sandbox', 'get', name])) as {
    id: string;
    domainName: string;
    placement: { by: string; reason: string } | null;
  };
  assert.equal(info.placement?.by, 'capacity');
  assert.match(info.domainName, new RegExp(`^fluid-${name}-[0-9a-f]{8}$`), 'fluid-<name>-<short id>');

  // `fluid sandbox exec` prints as before: the command's own streams and exit code.
  const exec = await cliText(
    labData.dataDir,
    ['sandbox', 'exec', name, '--', 'echo out; echo err >&2; exit 3'],
    120_000,
  );
  assert.deepEqual([exec.code, exec.stdout, exec.stderr], [3, 'out\n', 'err\n']);

  server = await startServer({ dataDir: labData.dataDir });
  app = await openApp(t, { name: 'runs-reload', server });
  const { page, shell } = app;
  await shell.goto('Sandboxes');
  const sandboxes = new SandboxesPage(page);
  await sandboxes.select(name);
  await sandboxes.waitForState('running');
  await waitFor('the placement on the page', async () =>
    placed.test((await sandboxes.detail.getByTestId('sandbox-placement').textContent()) ?? ''),
  );

  // ---- Run: a 15-second loop, and a reload in the middle -------------------------------------
  const loop = 'for i in $(seq 1 15); do echo tick-$i; sleep 1; done';
  let panel = await sandboxes.tab('Run');
  await panel.getByLabel(/Command or script/).fill(loop);
  await panel.getByRole('button', { name: 'Run', exact: true }).click();
  const out = () => page.locator('.run-output').getByLabel('Command output');
  await waitFor(
    'tick-3 in the output',
    async () => /tick-3\n/.test((await out().textContent()) ?? ''),
    30_000,
    100,
  );
  const before = (await out().textContent()) ?? '';
  assert.ok(!before.includes('tick-15'), 'still running when the page reloads');
  await app.shot('run before reload');
  await page.reload();
  await shell.waitConnected();
  lap('reloaded');
  panel = await sandboxes.tab('Run');
  // The page found the run on the backend and streams it again, live.
  await waitFor(
    'the run to show again',
    async () => (await page.locator('.run-output').count()) === 1,
    20_000,
  );
  const live = await page.locator('.run-output').getAttribute('data-running');
  const afterReload = (await out().textContent()) ?? '';
  assert.equal(live, 'true', `still running after the reload (output so far: ${afterReload})`);
  await app.shot('run after reload');
  await waitFor(
    'the loop to finish',
    async () => (await page.locator('.run-output').getAttribute('data-running')) === 'false',
    60_000,
    200,
  );
  const text = (await out().textContent()) ?? '';
  for (let i = 1; i <= 15; i++)
    assert.equal(text.split('\n').filter((l) => l === `tick-${i}`).length, 1, `tick-${i} once in:\n${text}`);
  assert.equal(
    ((await page.locator('.run-output').getByTestId('exit-code').textContent()) ?? '').trim(),
    'exit 0',
  );
  const duration = (
    (await page.locator('.run-output').getByTestId('run-duration').textContent()) ?? ''
  ).trim();
  assert.match(duration, /^1[5-9](\.\d)? s$|^[2-5]\d(\.\d)? s$/, `measured by the backend: ${duration}`);
  await app.shot('run finished');
  lap('run');

  // The audit log has the command, at its start and at its end.
  const starts = (await labData.cli([
    'audit',
    'list',
    '--action',
    'sandbox.exec.start',
    '--limit',
    '50',
  ])) as {
    entries: AuditRow[];
  };
  const start = starts.entries.find((e) => e.data.command === loop);
  assert.ok(start, JSON.stringify(starts.entries.map((e) => e.data.command)));
  assert.equal(start.target, info.id);
  const ends = (await labData.cli(['audit', 'list', '--action', 'sandbox.exec', '--limit', '50'])) as {
    entries: AuditRow[];
  };
  const end = ends.entries.find((e) => e.data.run === start.data.run);
  assert.ok(end, 'the end is audited');
  assert.equal(end.data.exitCode, 0);
  assert.equal(end.data.stdoutBytes, text.length);
  // And the history lists it, from any door.
  const runs = (await labData.cli(['sandbox', 'runs', name])) as Array<{
    id: string;
    status: string;
    origin: string;
  }>;
  assert.deepEqual(
    runs.filter((r) => r.id === start.data.run).map((r) => [r.status, r.origin]),
    [['exited', 'run']],
  );

  // ---- Terminal: the shell survives the page ---------------------------------------------------
  await sandboxes.tab('Terminal');
  await sandboxes.waitTerminalOpen(60_000);
  const termId = await sandboxes.terminal.getAttribute('data-terminal');
  assert.ok(termId);
  await sandboxes.typeInTerminal('echo before-$((6*7))\n');
  await waitFor('before-42', async () => (await sandboxes.terminalText()).includes('before-42'), 20_000);
  await page.reload();
  await sandboxes.tab('Terminal');
  await sandboxes.waitTerminalOpen(60_000);
  assert.equal(await sandboxes.terminal.getAttribute('data-terminal'), termId, 'the same shell');
  await waitFor(
    'the scrollback redrawn',
    async () => (await sandboxes.terminalText()).includes('before-42'),
    20_000,
  );
  await sandboxes.typeInTerminal('echo after-$((1+1))\n');
  await waitFor('after-2', async () => (await sandboxes.terminalText()).includes('after-2'), 20_000);
  await app.shot('terminal after reload');
  lap('terminal');

  // ---- Console: the serial console, live, taking keys -------------------------------------------
  await sandboxes.tab('Console');
  const consoleTab = sandboxes.detail.locator('.console-tab');
  await waitFor(
    'the console to open',
    async () => (await consoleTab.getAttribute('data-status')) === 'open',
    30_000,
  );
  const consoleText = async () => (await consoleTab.locator('.xterm-rows').textContent()) ?? '';
  await waitFor('the boot log', async () => /login:|Debian GNU\/Linux/.test(await consoleText()), 20_000);
  const logins = (await consoleText()).split('login:').length;
  await consoleTab.locator('.terminal-box').click();
  await page.keyboard.press('Enter');
  await waitFor(
    'a new login prompt after Enter',
    async () => (await consoleText()).split('login:').length > logins,
    30_000,
    250,
  );
  await app.shot('console');
  const consoleAudit = (await labData.cli(['audit', 'list', '--action', 'sandbox.console'])) as {
    entries: AuditRow[];
  };
  assert.equal(consoleAudit.entries.length, 1);
  lap('console');

  // ---- The backend goes away while a command runs ---------------------------------------------
  panel = await sandboxes.tab('Run');
  await panel.getByLabel(/Command or script/).fill('echo waiting; sleep 120');
  await panel.getByRole('button', { name: 'Run', exact: true }).click();
  await waitFor(
    'the command to start',
    async () => /waiting/.test((await out().textContent()) ?? ''),
    30_000,
  );
  app.allowErrors(/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/);
  await server.stop();
  await waitFor(
    'Run to be disabled while offline',
    async () =>
      (await panel
        .getByRole('button', { name: /Run|Stop/ })
        .first()
        .isDisabled()) === true,
    20_000,
  );
  const offlineDuration = (
    (await page.locator('.run-output').getByTestId('run-duration').textContent()) ?? ''
  ).trim();
  assert.doesNotMatch(offlineDuration, /-/, `no negative duration: ${offlineDuration}`);
  await app.shot('offline during a run');
  await server.restart();
  await waitFor(
    'the run recorded as ended',
    async () =>
      /cancelled|interrupted/.test(
        (await page
          .locator('.run-output')
          .getByTestId('exit-code')
          .textContent()
          .catch(() => '')) ?? '',
      ),
    60_000,
    250,
  );
  const endedDuration = (
    (await page.locator('.run-output').getByTestId('run-duration').textContent()) ?? ''
  ).trim();
  assert.doesNotMatch(endedDuration, /-/);
  await app.shot('after the backend came back');
  lap('offline');
});
