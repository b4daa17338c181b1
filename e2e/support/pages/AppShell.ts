/** The frame around every view: navigation, connection state, task tray, toasts. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export type SectionName =
  | 'Overview'
  | 'Onboarding'
  | 'Hosts'
  | 'Sandboxes'
  | 'Agent'
  | 'Playbooks'
  | 'Changes'
  | 'Audit'
  | 'Settings';

/** An element wider than the box it sits in (what a narrow window must not have). */
export interface Overflow {
  element: string;
  container: string;
  scrollWidth: number;
  clientWidth: number;
}

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

  /** Is the sidebar collapsed to icons? */
  async navCollapsed(): Promise<boolean> {
    return (await this.nav.getAttribute('data-collapsed')) === 'true';
  }

  async toggleNav(): Promise<void> {
    await this.nav.getByRole('button', { name: /(Collapse|Expand) the sidebar/ }).click();
  }

  /**
   * Horizontal overflow: every element of the header and the page whose content is wider than its own
   * box (scrollWidth > clientWidth), so that it sticks out or scrolls sideways. Not counted: text cut
   * on purpose (overflow hidden, with an ellipsis), and what is meant to scroll sideways (code, logs,
   * terminals, Monaco). One pixel of rounding is tolerated.
   */
  async overflows(): Promise<Overflow[]> {
    return this.page.evaluate(() => {
      const name = (el: Element) =>
        `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${[...el.classList]
          .slice(0, 3)
          .map((c) => `.${c}`)
          .join('')}`;
      const WIDE_OK = 'pre, .xterm, .monaco-editor, .code-editor, .terminal-box, .json, .cmd, .hex';
      const out: Overflow[] = [];
      const root = document.scrollingElement ?? document.documentElement;
      if (root.scrollWidth > window.innerWidth + 1)
        out.push({
          element: 'document',
          container: 'window',
          scrollWidth: root.scrollWidth,
          clientWidth: window.innerWidth,
        });
      for (const el of document.querySelectorAll('header *, main, main *')) {
        const he = el as HTMLElement;
        if (!he.offsetParent || he.closest(WIDE_OK)) continue;
        const style = getComputedStyle(he);
        if (style.display === 'inline' || style.display === 'contents') continue;
        if (style.overflowX === 'hidden' || style.overflowX === 'clip') continue;
        if (he.scrollWidth > he.clientWidth + 1)
          out.push({
            element: name(he),
            container: name(he.parentElement ?? he),
            scrollWidth: he.scrollWidth,
            clientWidth: he.clientWidth,
          });
      }
      return out;
    });
  }

  async theme(): Promise<string | null> {
    return this.page.evaluate(() => document.documentElement.dataset.theme ?? null);
  }
}
