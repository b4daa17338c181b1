/** Approvals: the modal that asks for a decision, the header indicator, and the list under Audit. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export class ApprovalModal {
  readonly page: Page;
  readonly root: Locator;

  constructor(page: Page) {
    this.page = page;
    this.root = page.getByRole('dialog', { name: /Approval requested/ });
  }

  async waitOpen(timeoutMs = 60_000): Promise<void> {
    await this.root.waitFor({ timeout: timeoutMs });
  }

  async title(): Promise<string> {
    return ((await this.root.locator('.approval-title').textContent()) ?? '').trim();
  }

  async detail(): Promise<string> {
    return ((await this.root.getByTestId('approval-detail').textContent()) ?? '').trim();
  }

  async risk(): Promise<string> {
    return ((await this.root.getByTestId('approval-risk').textContent()) ?? '').trim();
  }

  async kind(): Promise<string> {
    return ((await this.root.locator('.approval-tags .badge').first().textContent()) ?? '').trim();
  }

  async subject(): Promise<unknown> {
    return JSON.parse((await this.root.getByLabel('Subject').textContent()) ?? 'null') as unknown;
  }

  async askedBy(): Promise<string> {
    return ((await this.root.locator('dt:text-is("Asked by") + dd').textContent()) ?? '').trim();
  }

  async decide(decision: 'Approve' | 'Deny', note?: string): Promise<void> {
    if (note) await this.root.getByLabel('Note (optional)').fill(note);
    await this.root.getByRole('button', { name: decision, exact: true }).click();
  }

  /** The footer's Close (a request that is no longer pending), or Later (one that still is). */
  async close(): Promise<void> {
    await this.root
      .locator('.modal-foot')
      .getByRole('button', { name: /^(Close|Later)$/ })
      .click();
  }

  async waitClosed(timeoutMs = 15_000): Promise<void> {
    await this.root.waitFor({ state: 'detached', timeout: timeoutMs });
  }

  async errorText(): Promise<string> {
    return waitForText(this.root.locator('.callout-fail'), /./);
  }
}

export interface ApprovalRow {
  id: string;
  status: string;
  text: string;
  decidedBy: string;
}

export class ApprovalsPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get indicator(): Locator {
    return this.page.locator('.approvals-button');
  }

  async pendingCount(): Promise<number> {
    return Number((await this.indicator.getAttribute('data-pending')) ?? '0');
  }

  /** The header's panel of pending requests (opened by the indicator). */
  get panel(): Locator {
    return this.page.getByRole('region', { name: 'Approval requests waiting for you' });
  }

  async openPanel(): Promise<Locator> {
    if ((await this.indicator.getAttribute('aria-expanded')) !== 'true') await this.indicator.click();
    await this.panel.waitFor();
    return this.panel;
  }

  async panelRows(): Promise<Array<{ id: string; text: string; sandboxExists: string | null }>> {
    return this.panel.locator('li.approval-row').evaluateAll((els) =>
      els.map((e) => ({
        id: e.getAttribute('data-approval') ?? '',
        text: (e.textContent ?? '').replace(/\s+/g, ' ').trim(),
        sandboxExists: e.querySelector('.sandbox-ref')?.getAttribute('data-exists') ?? null,
      })),
    );
  }

  /** Approve or deny one request right in the panel (presence, if asked, is the caller's). */
  async decideInPanel(id: string, decision: 'Approve' | 'Deny'): Promise<void> {
    await this.panel
      .locator(`li.approval-row[data-approval="${id}"]`)
      .getByRole('button', { name: decision, exact: true })
      .click();
  }

  /** Audit → Approvals. */
  async open(): Promise<void> {
    await this.page
      .getByRole('navigation', { name: 'Audit views' })
      .getByRole('link', { name: /Approvals/ })
      .click();
    await this.table.waitFor();
  }

  get table(): Locator {
    return this.page.getByRole('table', { name: 'Approval requests' });
  }

  async rows(): Promise<ApprovalRow[]> {
    return this.table.locator('tbody tr').evaluateAll((els) =>
      els.map((e) => ({
        id: e.getAttribute('data-approval') ?? '',
        status: e.getAttribute('data-status') ?? '',
        text: (e.textContent ?? '').replace(/\s+/g, ' ').trim(),
        decidedBy: (e.querySelector('[data-testid="decided-by"]')?.textContent ?? '').trim(),
      })),
    );
  }

  async waitForStatus(status: string, timeoutMs = 15_000): Promise<ApprovalRow> {
    return waitFor(
      `an approval ${status}`,
      async () => (await this.rows()).find((r) => r.status === status),
      timeoutMs,
    );
  }

  async select(id: string): Promise<Locator> {
    // the row's own link (the row also links its sandbox)
    await this.table.locator(`tr[data-approval="${id}"] a[href="#/audit/approvals/${id}"]`).click();
    const detail = this.page.getByRole('article', { name: 'Approval request' });
    await detail.waitFor();
    return detail;
  }
}
