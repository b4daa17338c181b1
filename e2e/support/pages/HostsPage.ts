/** Hosts: the list and the selected host's detail. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export class HostsPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get list(): Locator {
    return this.page.getByRole('list', { name: 'Hosts' });
  }

  get detail(): Locator {
    return this.page.locator('article.host-detail');
  }

  async hostNames(): Promise<string[]> {
    return this.list
      .locator('.host-item')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-host') ?? ''));
  }

  async hostItemText(name: string): Promise<string> {
    return ((await this.list.locator(`.host-item[data-host="${name}"]`).textContent()) ?? '').replace(
      /\s+/g,
      ' ',
    );
  }

  async select(name: string): Promise<void> {
    await this.list.locator(`.host-item[data-host="${name}"]`).click();
    await waitFor(`host ${name} to be shown`, async () => (await this.detailTitle()) === name);
  }

  async detailTitle(): Promise<string> {
    return ((await this.detail.locator('#host-title').textContent({ timeout: 2_000 })) ?? '').trim();
  }

  get capacity(): Locator {
    return this.detail.getByTestId('capacity');
  }

  /** Wait for capacity numbers and return them as {label: value}. */
  async capacityStats(timeoutMs = 30_000): Promise<Record<string, string>> {
    await this.capacity.waitFor({ timeout: timeoutMs });
    return this.capacity
      .locator('.stat')
      .evaluateAll((els) =>
        Object.fromEntries(
          els.map((e) => [
            e.querySelector('.stat-label')?.textContent ?? '',
            e.querySelector('.stat-value')?.textContent ?? '',
          ]),
        ),
      );
  }

  async usageCaptions(): Promise<Record<string, string>> {
    return this.capacity
      .locator('.usage')
      .evaluateAll((els) =>
        Object.fromEntries(
          els.map((e) => [
            e.querySelector('.usage-label')?.textContent ?? '',
            e.querySelector('.usage-caption')?.textContent ?? '',
          ]),
        ),
      );
  }

  async vmNames(timeoutMs = 30_000): Promise<string[]> {
    const rows = this.detail.locator('table[aria-label^="VMs on"] tbody tr');
    await waitFor('the VM list', async () => (await rows.count()) > 0, timeoutMs);
    return rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-vm') ?? ''));
  }

  async pinnedFingerprint(): Promise<string> {
    return ((await this.detail.getByTestId('pinned-fingerprint').textContent()) ?? '').trim();
  }

  async recheck(): Promise<void> {
    await this.detail.getByRole('button', { name: /Re-check/ }).click();
  }

  async waitForCheckDone(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      'the re-check to finish',
      async () => (await this.detail.getByRole('button', { name: 'Re-check' }).isEnabled()) === true,
      timeoutMs,
    );
  }

  async readiness(): Promise<string> {
    return waitForText(this.detail.locator('.detail-sub .badge').first(), /./);
  }
}
