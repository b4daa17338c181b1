/** The host wizard (onboarding, and "Add host" in Hosts: the same steps). */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export interface CheckRow {
  id: string;
  status: string;
  title: string;
  detail: string;
}

export interface SourceRow {
  name: string;
  state: string;
  text: string;
}

export class OnboardingPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get card(): Locator {
    return this.page.locator('form.wizard-card');
  }

  get continueButton(): Locator {
    return this.card.locator('.wizard-foot button[type="submit"]');
  }

  async stepTitle(): Promise<string> {
    return ((await this.page.locator('.wizard-title').textContent()) ?? '').trim();
  }

  /** The step indicator's labels, in order. */
  async stepNames(): Promise<string[]> {
    return (await this.page.locator('ol.steps .step-name').allTextContents()).map((s) =>
      s.replace(/\s*\(done\)\s*$/, '').trim(),
    );
  }

  async waitForStep(title: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(`the wizard step "${title}"`, async () => (await this.stepTitle()) === title, timeoutMs);
  }

  async continue(): Promise<void> {
    await waitFor('Continue to be enabled', () => this.continueButton.isEnabled());
    await this.continueButton.click();
  }

  async chooseLocal(): Promise<void> {
    await this.page.getByRole('radio', { name: /This machine/ }).check();
  }

  async chooseRemote(): Promise<void> {
    await this.page.getByRole('radio', { name: /A remote host over SSH/ }).check();
  }

  async fillConnection(c: {
    address: string;
    port: number;
    user: string;
    keyPath?: string;
    name?: string;
  }): Promise<void> {
    await this.page.getByLabel('Address', { exact: true }).fill(c.address);
    await this.page.getByLabel('Port', { exact: true }).fill(String(c.port));
    await this.page.getByLabel('User', { exact: true }).fill(c.user);
    if (c.keyPath !== undefined) {
      await this.page.getByRole('radio', { name: 'Key file' }).check();
      await this.page.getByLabel('Private key file').fill(c.keyPath);
    } else {
      await this.page.getByRole('radio', { name: 'SSH agent' }).check();
    }
    if (c.name !== undefined) await this.page.getByLabel('Name (optional)').fill(c.name);
  }

  async fingerprint(): Promise<{ type: string; fingerprint: string }> {
    const fp = this.page.getByTestId('hostkey-fingerprint');
    await fp.waitFor({ timeout: 20_000 });
    return {
      type: ((await this.page.getByTestId('hostkey-type').textContent()) ?? '').trim(),
      fingerprint: ((await fp.textContent()) ?? '').trim(),
    };
  }

  async trustHostKey(): Promise<void> {
    const button = this.card.getByRole('button', { name: 'I trust this host key' });
    await button.click();
  }

  /** Wait for the preflight to finish and return its checks. */
  async waitForChecks(timeoutMs = 60_000): Promise<CheckRow[]> {
    await this.page
      .locator('ul.checks[aria-label="Preflight checks"] li')
      .first()
      .waitFor({ timeout: timeoutMs });
    return this.checks();
  }

  async checks(): Promise<CheckRow[]> {
    return this.page.locator('ul.checks[aria-label="Preflight checks"] li').evaluateAll((els) =>
      els.map((el) => ({
        id: el.getAttribute('data-check') ?? '',
        status: el.getAttribute('data-status') ?? '',
        title: el.querySelector('.check-title')?.textContent?.trim() ?? '',
        detail: el.querySelector('.check-detail')?.textContent?.trim() ?? '',
      })),
    );
  }

  async waitForSources(timeoutMs = 30_000): Promise<SourceRow[]> {
    const rows = this.page.locator('table[aria-label="Source VMs"] tbody tr');
    await waitFor('the source VM list', async () => (await rows.count()) > 0, timeoutMs);
    return rows.evaluateAll((els) =>
      els.map((el) => ({
        name: el.getAttribute('data-vm') ?? '',
        state: el.querySelector('td .badge')?.textContent?.trim() ?? '',
        text: (el.textContent ?? '').replace(/\s+/g, ' ').trim(),
      })),
    );
  }

  async errorText(): Promise<string> {
    return waitForText(this.card.locator('[role="alert"]'), /./);
  }
}
