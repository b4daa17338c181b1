/** The frame around every view: navigation, connection state, task tray, toasts. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export type SectionName = 'Onboarding' | 'Hosts' | 'Sandboxes' | 'Agent' | 'Playbooks' | 'Audit' | 'Settings';

export class AppShell {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get nav(): Locator {
    return this.page.getByRole('navigation', { name: 'Sections' });
  }

  get connection(): Locator {
    return this.page.locator('.conn');
  }

  get main(): Locator {
    return this.page.locator('main#main');
  }

  async waitConnected(timeoutMs = 15_000): Promise<void> {
    await waitFor(
      'the app to connect',
      async () => (await this.connection.getAttribute('data-state')) === 'connected',
      timeoutMs,
    );
  }

  async state(): Promise<string | null> {
    return this.connection.getAttribute('data-state', { timeout: 2_000 }).catch(() => null);
  }

  async goto(section: SectionName): Promise<void> {
    await this.nav.getByRole('link', { name: section, exact: true }).click();
    await waitFor(`the ${section} section`, async () => (await this.currentSection()) === section);
  }

  async currentSection(): Promise<string | null> {
    return this.nav
      .locator('a[aria-current="page"]')
      .textContent({ timeout: 2_000 })
      .catch(() => null);
  }

  async title(): Promise<string> {
    return (await this.page.locator('.header-title').textContent()) ?? '';
  }

  get toasts(): Locator {
    return this.page.getByLabel('Notifications');
  }

  /** Wait for a toast whose text matches. */
  async waitForToast(re: RegExp): Promise<string> {
    return waitForText(this.toasts.locator('.toast').filter({ hasText: re }), re);
  }

  get reconnectBanner(): Locator {
    return this.page.locator('.banner');
  }

  async openTasks(): Promise<Locator> {
    const button = this.page.locator('.tray-button');
    if ((await button.getAttribute('aria-expanded')) !== 'true') await button.click();
    const panel = this.page.getByRole('region', { name: 'Tasks' });
    await panel.waitFor();
    return panel;
  }

  async closeTasks(): Promise<void> {
    await this.page.keyboard.press('Escape');
  }

  async theme(): Promise<string | null> {
    return this.page.evaluate(() => document.documentElement.dataset.theme ?? null);
  }
}
