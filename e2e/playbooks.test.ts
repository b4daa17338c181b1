/**
 * The Playbooks section in Chromium against a real backend (web mode), with real ansible-playbook
 * and ansible-lint for the first verification steps; no VM: the playbook belongs to no sandbox, so
 * its verification stops at the replay (and says why), which is all this test needs.
 *
 * A playbook is written and verified through the CLI; in the app its report shows each step's
 * status and log. In Monaco, a schema error is shown inline (a squiggle, and in the problem list)
 * and keeps Save disabled; a valid edit saves revision 2, the earlier verification shows as stale,
 * and the history shows the diff between the two revisions.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openApp, ROOT, startServer, waitFor, waitForText } from './support/index.ts';
import { PlaybooksPage } from './support/pages/PlaybooksPage.ts';

const PLAYBOOK = `# Written for the e2e test.
- name: Apply motd
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Write the motd
      ansible.builtin.copy:
        dest: /etc/motd
        content: |
          managed by Fluid
        owner: root
        group: root
        mode: '0644'
`;

function fluid(dataDir: string, args: string[]): string {
  try {
    return execFileSync(process.execPath, [join(ROOT, 'bin/fluid.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, FLUID_DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 180_000,
    });
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    // verify exits 1 when a step fails: that is expected here.
    if (err.status === 1 && args[1] === 'verify') return err.stdout;
    throw new Error(`fluid ${args.join(' ')} exited ${err.status}: ${err.stderr}`, { cause: e });
  }
}

test('playbooks: the verification report, a schema error inline, a saved revision makes the verification stale', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fluid-e2e-pb-'));
  const file = join(dataDir, 'motd.yml');
  writeFileSync(file, PLAYBOOK);
  fluid(dataDir, ['playbook', 'create', 'e2e-motd', '--file', file]);
  const verified = JSON.parse(fluid(dataDir, ['playbook', 'verify', 'e2e-motd', '--json'])) as {
    steps: Array<{ id: string; status: string }>;
  };
  assert.deepEqual(
    verified.steps.map((s) => [s.id, s.status]),
    [
      ['syntax', 'passed'],
      ['lint', 'passed'],
      ['replay', 'failed'],
      ['rediff', 'skipped'],
      ['idempotence', 'skipped'],
    ],
  );

  const server = await startServer({ dataDir });
  t.after(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const app = await openApp(t, { name: 'playbooks', server });
  const { page, shell } = app;
  const pb = new PlaybooksPage(page);

  await shell.goto('Playbooks');
  await pb.row('e2e-motd').waitFor();
  assert.match(await pb.row('e2e-motd').innerText(), /failed/);
  await app.shot('list');
  await pb.open('e2e-motd');
  assert.match(await pb.revisionText(), /^revision 1 of 1/);

  // The report: each step with its status, a summary, and the log behind it.
  await pb.tab('Verification');
  await waitFor('the five steps', async () => (await pb.steps()).length === 5);
  const steps = await pb.steps();
  assert.deepEqual(
    steps.map((s) => [s.id, s.status]),
    verified.steps.map((s) => [s.id, s.status]),
  );
  assert.match(steps[2]!.text, /No sandbox: nothing to replay against/);
  assert.match(await pb.openLog('lint'), /Passed with production profile/);
  assert.match(await pb.openLog('syntax'), /ansible-playbook --syntax-check/);
  assert.equal(await pb.stale().count(), 0, 'not stale before any edit');
  await app.shot('verification report', { fullPage: true });

  // The editor: Monaco with the playbook.
  await pb.tab('Editor');
  await pb.waitEditor('Write the motd');
  assert.equal(await pb.saveButton.isDisabled(), true, 'nothing to save yet');

  // A schema error: a play keyword that does not exist.
  await pb.replaceLine(5, '  gather_fact: false');
  await waitFor(
    'the schema error in the problem list',
    async () => (await pb.problemTexts()).some((p) => /gather_fact/.test(p) && /not allowed/i.test(p)),
    30_000,
  );
  await waitFor('a squiggle under it', async () => (await pb.inlineErrors().count()) > 0, 15_000);
  assert.equal(await pb.saveButton.isDisabled(), true, 'errors keep Save disabled');
  await app.shot('schema error inline');

  // A valid edit: fix the key, change the content.
  await pb.replaceLine(5, '  gather_facts: false');
  await pb.replaceLine(11, '          managed by Fluid, edited in the app');
  await waitFor(
    'no errors left',
    async () => !(await pb.problemTexts()).some((p) => /gather_fact\b/.test(p)),
    30_000,
  );
  await waitFor('Save enabled', async () => !(await pb.saveButton.isDisabled()), 15_000);
  await page.getByLabel('What changed').fill('The motd says it was edited');
  await pb.saveButton.click();
  await waitForText(page.getByTestId('playbook-revision'), /^revision 2 of 2/, 15_000);
  await waitFor('the stale badge', async () => /stale/.test(await pb.verificationBadge()), 15_000);
  await app.shot('saved');

  // The verification is about revision 1 now: stale.
  await pb.tab('Verification');
  await pb.stale().waitFor();
  assert.match(await pb.stale().innerText(), /about revision 1/);
  await app.shot('stale');

  // The history: both revisions and the diff between them.
  await pb.tab('History');
  await waitFor('two revisions', async () => (await pb.revisions()).length === 2);
  assert.match((await pb.revisions())[0]!, /The motd says it was edited/);
  const diff = await pb.diffText();
  assert.match(diff, /^-\s+managed by Fluid$/m);
  assert.match(diff, /^\+\s+managed by Fluid, edited in the app$/m);
  await app.shot('history');

  // The backend agrees: the saved bytes, and the verification marked stale.
  const show = JSON.parse(fluid(dataDir, ['playbook', 'show', 'e2e-motd', '--json'])) as {
    revision: { number: number; yaml: string; author: { door: string } };
    playbook: { verification: { stale: boolean; revision: number } };
  };
  assert.equal(show.revision.number, 2);
  assert.equal(show.revision.author.door, 'web');
  assert.match(show.revision.yaml, /gather_facts: false\n/);
  assert.match(show.revision.yaml, /managed by Fluid, edited in the app\n/);
  assert.ok(show.revision.yaml.startsWith('# Written for the e2e test.\n'), 'the comment survived');
  assert.deepEqual([show.playbook.verification.stale, show.playbook.verification.revision], [true, 1]);
  app.assertClean();
});
