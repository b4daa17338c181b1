/** Sandboxes: the list, the New sandbox dialog, the detail pane and its tabs (Terminal, Run, Files, Snapshots). */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export interface FileEntry {
  name: string;
  type: string;
  size: string;
  mode: string;
  owner: string;
  target: string;
}

export interface SandboxItem {
  name: string;
  state: string;
  text: string;
}

export class CreateSandboxDialog {
  readonly page: Page;
  readonly root: Locator;

  constructor(page: Page) {
    this.page = page;
    this.root = page.getByRole('dialog', { name: /New sandbox|Creating a sandbox|Sandbox creation/ });
  }

  async waitOpen(): Promise<void> {
    await this.root.waitFor();
  }

  async fill(o: {
    host?: string;
    source: string;
    name?: string;
    vcpus?: number;
    memoryMiB?: number;
    ttlMinutes?: number;
    allow?: string[];
    start?: 'Auto' | 'Restore' | 'Cold boot';
  }): Promise<void> {
    if (o.host) await this.root.getByLabel('Host', { exact: true }).selectOption({ label: o.host });
    const source = this.root.getByLabel('Source VM', { exact: true });
    await waitFor(
      `the source ${o.source} to be offered`,
      async () =>
        (await source.locator('option').allTextContents()).some((t) => t.startsWith(`${o.source} `)),
      60_000,
    );
    await source.selectOption(o.source);
    if (o.name !== undefined) await this.root.getByLabel('Name', { exact: true }).fill(o.name);
    if (o.vcpus !== undefined) await this.root.getByLabel('vCPUs', { exact: true }).fill(String(o.vcpus));
    if (o.memoryMiB !== undefined)
      await this.root.getByLabel('Memory', { exact: true }).fill(String(o.memoryMiB));
    if (o.ttlMinutes !== undefined)
      await this.root.getByLabel('Time to live', { exact: true }).fill(String(o.ttlMinutes));
    if (o.allow) await this.root.getByLabel('Egress allowlist').fill(o.allow.join('\n'));
    if (o.start) await this.root.getByRole('radio', { name: o.start }).check();
  }

  /** The chosen host's label ("Fluid chooses (most free capacity)" when Fluid places it). */
  async hostLabel(): Promise<string> {
    const select = this.root.getByLabel('Host', { exact: true });
    await select.waitFor();
    return select.evaluate((el) => {
      const s = el as HTMLSelectElement;
      return (s.selectedOptions[0]?.textContent ?? '').replace(/ \((not ready|not checked)\)$/, '').trim();
    });
  }

  /** The chosen source VM ('' when none is chosen yet), once the list is there. */
  async sourceValue(timeoutMs = 60_000): Promise<string> {
    const source = this.root.getByLabel('Source VM', { exact: true });
    await waitFor('the source list', async () => (await source.count()) > 0, timeoutMs);
    return source.inputValue();
  }

  /** The form's field errors by label. */
  async fieldErrors(): Promise<Record<string, string>> {
    return this.root
      .locator('.field.has-error')
      .evaluateAll((els) =>
        Object.fromEntries(
          els.map((e) => [
            (e.querySelector('.field-label')?.textContent ?? '').trim(),
            (e.querySelector('.field-error')?.textContent ?? '').trim(),
          ]),
        ),
      );
  }

  async cancel(): Promise<void> {
    await this.root.locator('.modal-foot').getByRole('button', { name: 'Cancel' }).click();
    await this.root.waitFor({ state: 'detached' });
  }

  /** Text of the source <option>s ("name — state · 2 vCPU · 512 MiB"). */
  async sourceOptions(): Promise<string[]> {
    return this.root.getByLabel('Source VM', { exact: true }).locator('option').allTextContents();
  }

  async submit(): Promise<void> {
    await this.root.getByRole('button', { name: 'Create sandbox' }).click();
  }

  get progress(): Locator {
    return this.root.locator('.create-progress');
  }

  /** The messages the creation task showed so far. */
  async messages(): Promise<string[]> {
    return this.root.locator('.task-log .task-log-msg').allTextContents();
  }

  async status(): Promise<string | null> {
    return this.progress.getAttribute('data-status', { timeout: 2_000 }).catch(() => null);
  }

  async waitForMessage(re: RegExp, timeoutMs = 120_000): Promise<string> {
    return waitFor(
      `a progress message ${re}`,
      async () => (await this.messages()).find((m) => re.test(m)),
      timeoutMs,
      250,
    );
  }

  async waitEnded(timeoutMs: number): Promise<string> {
    return waitFor(
      'the creation to end',
      async () => {
        if ((await this.root.count()) === 0) return 'succeeded';
        const s = await this.status();
        return s && s !== 'running' ? s : null;
      },
      timeoutMs,
      500,
    );
  }

  async errorText(): Promise<string> {
    return waitForText(this.root.locator('.callout-fail'), /./);
  }

  async close(): Promise<void> {
    await this.root
      .locator('.modal-foot')
      .getByRole('button', { name: /^Close/ })
      .click();
  }
}

export class SandboxesPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get list(): Locator {
    return this.page.getByRole('list', { name: 'Sandboxes' });
  }

  get detail(): Locator {
    return this.page.locator('article.sandbox-detail');
  }

  get emptyState(): Locator {
    return this.page.getByRole('heading', { name: 'No sandboxes' });
  }

  /** Open the New sandbox dialog from the list header or the empty state. */
  async openCreate(): Promise<CreateSandboxDialog> {
    const fromList = this.page.getByRole('button', { name: 'New sandbox' });
    if (await fromList.count()) await fromList.click();
    else await this.page.getByRole('button', { name: 'Create a sandbox from a source VM' }).click();
    const dialog = new CreateSandboxDialog(this.page);
    await dialog.waitOpen();
    return dialog;
  }

  async items(): Promise<SandboxItem[]> {
    if (!(await this.list.count())) return [];
    return this.list.locator('.host-item').evaluateAll((els) =>
      els.map((e) => ({
        name: e.getAttribute('data-sandbox') ?? '',
        state: e.getAttribute('data-state') ?? '',
        text: (e.textContent ?? '').replace(/\s+/g, ' ').trim(),
      })),
    );
  }

  item(name: string): Locator {
    return this.list.locator(`.host-item[data-sandbox="${name}"]`);
  }

  async select(name: string): Promise<void> {
    await this.item(name).click();
    await waitFor(`sandbox ${name} to be shown`, async () => (await this.title()) === name);
  }

  async title(): Promise<string> {
    return ((await this.detail.locator('#sandbox-title').textContent({ timeout: 2_000 })) ?? '').trim();
  }

  async state(): Promise<string | null> {
    return this.detail.getAttribute('data-state', { timeout: 2_000 }).catch(() => null);
  }

  async waitForState(state: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(`the sandbox to be ${state}`, async () => (await this.state()) === state, timeoutMs, 250);
  }

  /** The creation timings chart as {phase: "54.3 s"}. */
  async timings(): Promise<Record<string, string>> {
    const table = this.detail.getByRole('table', { name: 'Creation timings' });
    await table.waitFor();
    return table
      .locator('tbody tr')
      .evaluateAll((rows) =>
        Object.fromEntries(
          rows.map((r) => [
            r.getAttribute('data-phase') ?? '',
            r.querySelectorAll('td')[1]?.textContent ?? '',
          ]),
        ),
      );
  }

  async startPath(): Promise<string> {
    return ((await this.detail.getByTestId('sandbox-start-path').textContent()) ?? '').trim();
  }

  async ip(): Promise<string> {
    return ((await this.detail.getByTestId('sandbox-ip').textContent()) ?? '').trim();
  }

  async tab(name: 'Terminal' | 'Run' | 'Files' | 'Snapshots' | 'Changes' | 'Console'): Promise<Locator> {
    await this.detail.getByRole('tab', { name }).click();
    const panel = this.detail.locator(`[role="tabpanel"]:not([hidden])`);
    await waitFor(
      `the ${name} tab`,
      async () => (await this.detail.getByRole('tab', { name }).getAttribute('aria-selected')) === 'true',
    );
    return panel;
  }

  // ---- Run ----

  async run(
    command: string,
    timeoutMs = 60_000,
  ): Promise<{ exit: string; output: string; duration: string }> {
    const panel = await this.tab('Run');
    const out = panel.locator('.run-output');
    // the run on screen before this one (its output stays until the new run shows)
    const before = (await out.count()) ? await out.getAttribute('data-run') : null;
    await panel.getByLabel(/Command or script/).fill(command);
    await panel.getByRole('button', { name: 'Run', exact: true }).click();
    await waitFor(
      'the command to finish',
      async () =>
        (await out.count()) > 0 &&
        (await out.getAttribute('data-run')) !== before &&
        (await out.getAttribute('data-running')) === 'false',
      timeoutMs,
      200,
    );
    return {
      exit: (
        (await out
          .getByTestId('exit-code')
          .textContent()
          .catch(() => '')) ?? ''
      ).trim(),
      output: (await out.getByLabel('Command output').textContent()) ?? '',
      duration: ((await out.getByTestId('run-duration').textContent()) ?? '').trim(),
    };
  }

  // ---- Terminal ----

  get terminal(): Locator {
    return this.detail.locator('.terminal-tab');
  }

  async waitTerminalOpen(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'the shell to open',
      async () => (await this.terminal.getAttribute('data-status')) === 'open',
      timeoutMs,
    );
  }

  async terminalText(): Promise<string> {
    return (await this.terminal.locator('.xterm-rows').textContent()) ?? '';
  }

  /** Reconnect (or open a new session): the same button. */
  async newTerminalSession(): Promise<void> {
    await this.terminal
      .locator('.terminal-bar')
      .getByRole('button', { name: /Reconnect|New session/ })
      .click();
    await this.waitTerminalOpen();
  }

  async typeInTerminal(text: string): Promise<void> {
    await this.terminal.locator('.terminal-box').click();
    await this.page.keyboard.type(text, { delay: 15 });
  }

  // ---- Files ----

  get files(): Locator {
    return this.detail.locator('.files-tab');
  }

  /** Go to a path with the path field (a directory is listed, a file opens). */
  async goToPath(path: string): Promise<void> {
    const panel = await this.tab('Files');
    await panel.getByRole('textbox', { name: 'Path', exact: true }).fill(path);
    await panel.getByRole('button', { name: 'Go', exact: true }).click();
  }

  /** Wait for the listing of `dir` and return its entries as shown. */
  async listing(dir: string, timeoutMs = 30_000): Promise<FileEntry[]> {
    await waitFor(
      `the listing of ${dir}`,
      async () =>
        (await this.files.getAttribute('data-dir')) === dir &&
        (await this.files.getAttribute('data-loading')) === 'false',
      timeoutMs,
    );
    return this.files
      .getByRole('table', { name: `Contents of ${dir}` })
      .locator('tbody tr[data-type]')
      .evaluateAll((rows) =>
        rows.map((r) => {
          const cells = r.querySelectorAll('td');
          return {
            name: r.getAttribute('data-entry') ?? '',
            type: r.getAttribute('data-type') ?? '',
            size: (cells[1]?.textContent ?? '').trim(),
            mode: (cells[2]?.textContent ?? '').trim(),
            owner: (cells[3]?.textContent ?? '').trim(),
            target: (r.querySelector('.link-target .mono')?.textContent ?? '').trim(),
          };
        }),
      );
  }

  async browse(dir: string): Promise<FileEntry[]> {
    await this.goToPath(dir);
    return this.listing(dir);
  }

  /** Click an entry of the listing on screen (a directory is entered, a file opens). */
  async clickEntry(name: string): Promise<void> {
    await this.files.locator(`tr[data-entry="${name}"] a.entry-name`).click();
  }

  fileView(path: string): Locator {
    return this.files.locator(`section.file-view[data-path="${path}"]`);
  }

  /** Wait for a file to be open and read; its text as the editor shows it, size and encoding. */
  async waitFile(
    path: string,
    timeoutMs = 30_000,
  ): Promise<{ text: string; size: string; encoding: string }> {
    const view = this.fileView(path);
    const error = this.files.locator('.callout-fail');
    await waitFor(
      `${path} to open`,
      async () =>
        ((await view.count()) > 0 && (await view.getAttribute('data-loading')) === 'false') ||
        (await error.count()) > 0,
      timeoutMs,
    );
    if (!(await view.count()) || (await view.locator('.callout-fail').count()))
      return { text: '', size: '', encoding: 'error' };
    const encoding = (await view.getAttribute('data-encoding')) ?? '';
    let text = '';
    if (encoding === 'utf8') {
      const editor = view.locator('.code-editor-wrap');
      // ready, and its lines drawn (an empty file still draws one line)
      await waitFor(
        'the editor',
        async () =>
          (await editor.getAttribute('data-ready')) === 'true' &&
          (await view.locator('.code-editor .view-lines .view-line').count()) > 0,
        timeoutMs,
      );
      text = await this.editorText(view);
    }
    return { text, size: ((await view.getByTestId('file-size').textContent()) ?? '').trim(), encoding };
  }

  /** What Monaco shows (its visible lines; enough for short files). */
  async editorText(view: Locator): Promise<string> {
    return view.locator('.code-editor .view-lines').evaluate((el) =>
      [...el.querySelectorAll('.view-line')]
        .map((l) => ({ top: parseFloat((l as HTMLElement).style.top || '0'), text: l.textContent ?? '' }))
        .sort((a, b) => a.top - b.top)
        .map((l) => l.text.replace(/\u00a0/g, ' '))
        .join('\n'),
    );
  }

  /** Open a path by the path field, as before there was a browser: a file's text, size, encoding. */
  async openFile(path: string): Promise<{ text: string; size: string; encoding: string }> {
    await this.goToPath(path);
    return this.waitFile(path);
  }

  async fileError(): Promise<string> {
    return waitForText(this.detail.locator('[role="tabpanel"]:not([hidden]) .callout-fail'), /./);
  }

  /**
   * Replace the editor's whole content with text, pasted as a person would (typed text would be
   * auto-indented line by line, as in any editor): select all, then a paste event carrying the text.
   */
  async replaceEditorText(view: Locator, text: string): Promise<void> {
    await view.locator('.code-editor .monaco-editor .view-lines').click();
    await this.page.keyboard.press('ControlOrMeta+A');
    await this.page.keyboard.press('Delete');
    await this.page.evaluate((t) => {
      const target = document.activeElement;
      if (!target) throw new Error('nothing has the focus to paste into');
      const data = new DataTransfer();
      data.setData('text/plain', t);
      target.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
      );
    }, text);
  }

  /**
   * Edit a file in Monaco and save it: the open file (Edit), or a new one (New file in its
   * directory). Returns the saved note.
   */
  async writeFile(path: string, content: string, opts: { newFile?: boolean } = {}): Promise<string> {
    const panel = await this.tab('Files');
    const view = this.fileView(path);
    if (opts.newFile) {
      const dir = path.slice(0, path.lastIndexOf('/')) || '/';
      await this.browse(dir);
      await panel.getByRole('button', { name: 'New file' }).click();
      await panel.getByLabel('New file name').fill(path.slice(path.lastIndexOf('/') + 1));
      await panel.getByRole('button', { name: 'Create', exact: true }).click();
      await view.waitFor();
    } else {
      if (!(await view.count())) await this.openFile(path);
      await view.getByRole('button', { name: 'Edit', exact: true }).click();
    }
    await waitFor(
      'the editor',
      async () => (await view.locator('.code-editor-wrap').getAttribute('data-ready')) === 'true',
    );
    await this.replaceEditorText(view, content);
    await view.getByRole('button', { name: 'Save', exact: true }).click();
    return waitForText(view.locator('.saved-note'), /Saved/, 30_000);
  }

  // ---- Snapshots ----

  async createSnapshot(name: string, memory = true): Promise<void> {
    const panel = await this.tab('Snapshots');
    await panel.getByLabel('New snapshot').fill(name);
    const box = panel.getByLabel('Include memory');
    if ((await box.isEnabled()) && (await box.isChecked()) !== memory) await box.setChecked(memory);
    await panel.getByRole('button', { name: 'Take snapshot' }).click();
    await panel.locator(`tr[data-snapshot="${name}"]`).waitFor({ timeout: 60_000 });
  }

  async snapshots(): Promise<Array<{ name: string; kind: string }>> {
    const panel = await this.tab('Snapshots');
    const rows = panel.getByRole('table', { name: 'Snapshots' }).locator('tbody tr');
    return rows.evaluateAll((els) =>
      els.map((e) => ({
        name: e.getAttribute('data-snapshot') ?? '',
        kind: (e.querySelector('.badge')?.textContent ?? '').trim(),
      })),
    );
  }

  /** Restore or delete a snapshot, through its confirmation. */
  async snapshotAction(name: string, action: 'Restore' | 'Delete', timeoutMs = 120_000): Promise<void> {
    const panel = await this.tab('Snapshots');
    const row = panel.locator(`tr[data-snapshot="${name}"]`);
    await row.getByRole('button', { name: action === 'Restore' ? 'Restore' : `Delete ${name}` }).click();
    const dialog = this.page.getByRole('dialog', { name: `${action} “${name}”?` });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: `${action} snapshot` }).click();
    await dialog.waitFor({ state: 'detached', timeout: timeoutMs });
  }

  // ---- Egress ----

  async allowDestination(destination: string): Promise<void> {
    const input = this.detail.getByLabel('Allow a destination');
    await input.fill(destination);
    await input.press('Enter');
  }

  async allowed(): Promise<string[]> {
    const chips = this.detail.getByRole('list', { name: 'Allowed destinations' });
    if (!(await chips.count())) return [];
    return (await chips.locator('.chip .mono').allTextContents()).map((s) => s.trim());
  }

  async egressError(): Promise<string> {
    return waitForText(this.detail.locator('.egress .field-error'), /./);
  }

  // ---- Lifecycle ----

  async stop(name: string, force: boolean): Promise<void> {
    await this.detail.getByRole('button', { name: 'Stop', exact: true }).click();
    const dialog = this.page.getByRole('dialog', { name: `Stop ${name}?` });
    await dialog.waitFor();
    if (force) await dialog.getByLabel(/^Force/).check();
    await dialog.getByRole('button', { name: force ? 'Power off' : 'Shut down' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 180_000 });
  }

  async destroy(name: string): Promise<void> {
    await this.detail.getByRole('button', { name: 'Destroy' }).click();
    const dialog = this.page.getByRole('dialog', { name: `Destroy ${name}?` });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: `Destroy ${name}` }).click();
    await dialog.waitFor({ state: 'detached', timeout: 120_000 });
  }
}
