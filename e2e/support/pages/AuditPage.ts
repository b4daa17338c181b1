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

  /** Open the newest entry of an action by clicking its row (not its number): the drawer. */
  async openEntry(action: string): Promise<Locator> {
    const row = this.table.locator(`tbody tr[data-action="${action}"]`).first();
    const seq = await row.getAttribute('data-seq');
    await row.locator('td').nth(1).click();
    const detail = this.drawer.locator(`article.audit-detail[data-seq="${seq}"]`);
    await detail.waitFor();
    return detail;
  }

  get drawer(): Locator {
    return this.page.getByRole('complementary', { name: /^Audit entry / });
  }

  async closeEntry(): Promise<void> {
    await this.drawer.getByRole('button', { name: 'Close the entry' }).click();
    await this.drawer.waitFor({ state: 'detached' });
  }

  /** What the open entry concerns: label → text ("Sandbox" → "web-1 1a2b…"). */
  async concerns(): Promise<Record<string, string>> {
    const refs = this.drawer.getByLabel('What this entry concerns');
    if (!(await refs.count())) return {};
    return refs.evaluate((dl) => {
      const out: Record<string, string> = {};
      for (const dt of dl.querySelectorAll('dt'))
        out[(dt.textContent ?? '').trim()] = (dt.nextElementSibling?.textContent ?? '')
          .replace(/\s+/g, ' ')
          .trim();
      return out;
    });
  }

  /** The rows of a reviewed export: line, seq, status (ok, problem, unsigned) and the marks' text. */
  async reviewRows(
    name: string,
  ): Promise<Array<{ line: number; seq: string; status: string; check: string }>> {
    const table = this.page.getByRole('table', { name: `Rows of the exported file ${name}` });
    await table.waitFor();
    return table.locator('tbody tr').evaluateAll((rows) =>
      rows.map((r) => ({
        line: Number(r.getAttribute('data-line')),
        seq: r.getAttribute('data-seq') ?? '',
        status: r.getAttribute('data-status') ?? '',
        check: (r.querySelector('.review-check')?.textContent ?? '').replace(/\s+/g, ' ').trim(),
      })),
    );
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
