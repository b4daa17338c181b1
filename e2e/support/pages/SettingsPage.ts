/** Settings: the generated form, system info and doctor. */
import type { Locator, Page } from 'playwright-core';
import { waitForText } from '../wait.ts';

export class SettingsPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  field(path: string): Locator {
    return this.page.locator(`[data-field="${path}"]`);
  }

  async setTheme(label: 'System' | 'Light' | 'Dark'): Promise<void> {
    await this.page.getByRole('radiogroup', { name: 'Theme' }).getByRole('radio', { name: label }).check();
  }

  async setNumber(path: string, value: string): Promise<void> {
    await this.field(path).locator('input').fill(value);
  }

  async save(): Promise<void> {
    await this.page.getByRole('button', { name: 'Save', exact: true }).click();
  }

  async fieldError(path: string): Promise<string> {
    return waitForText(this.field(path).locator('.field-error'), /./);
  }

  async waitSaved(): Promise<void> {
    await waitForText(this.page.locator('.form-actions .muted'), /No changes/);
  }

  get doctor(): Locator {
    return this.page.getByRole('list', { name: 'Doctor checks' });
  }
}
