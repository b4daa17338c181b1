/** The Changes tab of a sandbox: summary, groups by kind, items, text diffs, include/exclude, noise. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export interface ChangeGroup {
  kind: string;
  title: string;
  count: number;
}

export class ChangesPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get detail(): Locator {
    return this.page.locator('article.sandbox-detail');
  }

  get panel(): Locator {
    return this.detail.locator('#panel-changes');
  }

  get summary(): Locator {
    return this.panel.getByTestId('changes-summary');
  }

  /** Open the tab and wait until a diff is shown (the first visit reads one). */
  async open(timeoutMs = 180_000): Promise<void> {
    await this.detail.getByRole('tab', { name: 'Changes' }).click();
    await waitFor(
      'the Changes tab',
      async () =>
        (await this.detail.getByRole('tab', { name: 'Changes' }).getAttribute('aria-selected')) === 'true',
    );
    await waitForText(this.summary, /changes? from baseline to now/, timeoutMs);
  }

  async summaryText(): Promise<string> {
    return ((await this.summary.textContent()) ?? '').replace(/\s+/g, ' ').trim();
  }

  async groups(): Promise<ChangeGroup[]> {
    return this.panel.locator('section.change-group').evaluateAll((els) =>
      els.map((e) => {
        const h = e.querySelector('h3');
        const text = (h?.textContent ?? '').replace(/\s+/g, ' ').trim();
        const m = /^(.*?)\s*(\d+)$/.exec(text);
        return { kind: e.getAttribute('data-kind') ?? '', title: m?.[1] ?? text, count: Number(m?.[2] ?? 0) };
      }),
    );
  }

  /** The row of an item, by its title (a path, a package, a user…) within a kind. */
  item(kind: string, title: string): Locator {
    return this.panel
      .locator(`section.change-group[data-kind="${kind}"] li.change-item`)
      .filter({ has: this.page.locator('.change-title', { hasText: title }) })
      .first();
  }

  async itemTitles(kind: string): Promise<string[]> {
    return this.panel
      .locator(`section.change-group[data-kind="${kind}"] .change-title`)
      .evaluateAll((els) => els.map((e) => (e.textContent ?? '').trim()));
  }

  /** The text diff of an item (opened when it is not yet). */
  async diffOf(kind: string, title: string): Promise<Locator> {
    const row = this.item(kind, title);
    const view = row.locator('.diff-view');
    if (!(await view.count())) await row.getByRole('button', { name: /Show diff/ }).click();
    await view.waitFor();
    return view;
  }

  async setIncluded(kind: string, title: string, included: boolean): Promise<void> {
    const box = this.item(kind, title).getByRole('checkbox');
    if ((await box.isChecked()) !== included) await box.click();
    await waitFor(`${title} to be ${included ? 'included' : 'excluded'}`, async () => {
      const cls = (await this.item(kind, title).getAttribute('class')) ?? '';
      return cls.includes('excluded') !== included;
    });
  }

  async isIncluded(kind: string, title: string): Promise<boolean> {
    return this.item(kind, title).getByRole('checkbox').isChecked();
  }

  async readAgain(timeoutMs = 180_000): Promise<void> {
    const before = await this.summaryText();
    await this.panel.getByRole('button', { name: /Read again/ }).click();
    await waitFor(
      'a new diff',
      async () => {
        const busy = await this.panel.getByRole('button', { name: /Reading/ }).count();
        return !busy && (await this.summaryText()) !== before ? true : null;
      },
      timeoutMs,
      250,
    );
  }

  /** Show the filtered paths; returns {rule: count} as listed. */
  async showNoise(): Promise<Record<string, number>> {
    await this.panel.getByRole('button', { name: /Show the .* filtered as noise/ }).click();
    const list = this.panel.getByLabel('Paths filtered as noise');
    await list.waitFor();
    return list
      .locator('details.noise-rule')
      .evaluateAll((els) =>
        Object.fromEntries(
          els.map((e) => [e.getAttribute('data-rule') ?? '', e.querySelectorAll('li').length]),
        ),
      );
  }
}
