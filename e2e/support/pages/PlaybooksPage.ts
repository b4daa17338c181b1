/** The Playbooks section: the list, a playbook's editor (Monaco), history and verification report. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export interface StepRow {
  id: string;
  status: string;
  text: string;
}

export class PlaybooksPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  row(name: string): Locator {
    return this.page.locator(`[data-testid="playbook-row"][data-name="${name}"]`);
  }

  async open(name: string): Promise<void> {
    await this.row(name).getByRole('link', { name }).click();
    await waitForText(this.page.getByTestId('playbook-title'), new RegExp(`^${name}$`));
  }

  async tab(name: 'Editor' | 'History' | 'Verification'): Promise<void> {
    await this.page
      .getByRole('navigation', { name: 'Playbook views' })
      .getByRole('link', { name, exact: true })
      .click();
  }

  revisionText(): Promise<string> {
    return this.page.getByTestId('playbook-revision').innerText();
  }

  verificationBadge(): Promise<string> {
    return this.page.getByTestId('playbook-verification-badge').innerText();
  }

  // ---- the editor ----------------------------------------------------------------------------------

  get editor(): Locator {
    return this.page.getByTestId('playbook-editor');
  }

  /** Wait until Monaco shows the model (its lines are rendered). */
  async waitEditor(contains: string): Promise<void> {
    await waitFor(
      `the editor to show "${contains}"`,
      async () =>
        (
          await this.editor
            .locator('.view-lines')
            .innerText()
            .catch(() => '')
        )
          .replace(/\u00a0/g, ' ')
          .includes(contains),
      30_000,
    );
  }

  /**
   * Replace one line of the document: go to the line (Ctrl+G), select it, type the new text. Monaco's
   * own keyboard handling is exercised (no API back door); the new text goes in through insertText,
   * which does not trigger auto-indentation or auto-closing.
   */
  async replaceLine(line: number, text: string): Promise<void> {
    await this.editor.locator('.view-lines').click();
    await this.page.keyboard.press('Control+g');
    await this.page.keyboard.insertText(String(line));
    await this.page.keyboard.press('Enter');
    await this.page.keyboard.press('Home');
    await this.page.keyboard.press('Home');
    await this.page.keyboard.press('Shift+End');
    await this.page.keyboard.insertText(text);
  }

  problems(): Locator {
    return this.page.getByTestId('playbook-problems').locator('li');
  }

  async problemTexts(): Promise<string[]> {
    return this.problems().allInnerTexts();
  }

  get saveButton(): Locator {
    return this.page.getByTestId('playbook-save');
  }

  /** Monaco's squiggles in the editor (inline markers). */
  inlineErrors(): Locator {
    return this.editor.locator('.squiggly-error');
  }

  // ---- verification ----------------------------------------------------------------------------------

  async steps(): Promise<StepRow[]> {
    const rows = this.page.getByTestId('verify-step');
    const out: StepRow[] = [];
    for (let i = 0; i < (await rows.count()); i++) {
      const r = rows.nth(i);
      out.push({
        id: (await r.getAttribute('data-step')) ?? '',
        status: (await r.getAttribute('data-status')) ?? '',
        text: await r.innerText(),
      });
    }
    return out;
  }

  stale(): Locator {
    return this.page.getByTestId('verification-stale');
  }

  async openLog(step: string): Promise<string> {
    const row = this.page.locator(`[data-testid="verify-step"][data-step="${step}"]`);
    await row.locator('details.pb-step-log > summary').click();
    return row.getByTestId('verify-step-log').innerText();
  }

  // ---- history --------------------------------------------------------------------------------------

  async revisions(): Promise<string[]> {
    return this.page.getByTestId('revision-row').allInnerTexts();
  }

  diffText(): Promise<string> {
    return this.page.getByTestId('revision-diff').innerText();
  }
}
