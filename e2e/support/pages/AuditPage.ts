/** Audit: entries, filter, verify, export, review an exported file. */
import type { Download, Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export class AuditPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get table(): Locator {
    return this.page.getByRole('table', { name: 'Audit entries' });
  }

  async actions(): Promise<string[]> {
    return this.table
      .locator('tbody tr')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-action') ?? ''));
  }

  async waitForAction(action: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `an audit entry "${action}"`,
      async () => (await this.actions()).includes(action),
      timeoutMs,
    );
  }

  async filter(action: string): Promise<void> {
    await this.page.getByLabel('Action', { exact: true }).selectOption(action);
  }

  async openEntry(action: string): Promise<Locator> {
    await this.table.locator(`tbody tr[data-action="${action}"] a`).first().click();
    const detail = this.page.locator('article.audit-detail');
    await detail.waitFor();
    return detail;
  }

  async verify(): Promise<{ ok: boolean; text: string }> {
    await this.page.getByRole('button', { name: 'Verify chain' }).click();
    const result = this.page.getByTestId('verify-result').first();
    const text = await waitForText(result, /intact|problem/);
    return { ok: (await result.getAttribute('data-ok')) === 'true', text };
  }

  async export(): Promise<Download> {
    const [download] = await Promise.all([
      this.page.waitForEvent('download'),
      this.page.getByRole('button', { name: 'Export', exact: true }).click(),
    ]);
    return download;
  }

  async reviewFile(path: string): Promise<{ ok: boolean; text: string }> {
    await this.page.getByLabel('Review an exported audit file').setInputFiles(path);
    const result = this.page.getByTestId('verify-result').filter({ hasText: 'Exported file' });
    const text = await waitForText(result, /intact|problem/);
    return { ok: (await result.getAttribute('data-ok')) === 'true', text };
  }
}
