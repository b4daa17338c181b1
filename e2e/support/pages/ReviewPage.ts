/** Changes → the Review page of one change, its live apply, and a target's apply history. */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export class ReviewPage {
  readonly page: Page;
  readonly root: Locator;

  constructor(page: Page) {
    this.page = page;
    this.root = page.getByTestId('review');
  }

  async open(change: string): Promise<void> {
    await this.page.goto(new URL(`#/changes/${encodeURIComponent(change)}`, this.page.url()).toString());
    await this.root.waitFor();
  }

  async status(): Promise<string> {
    return ((await this.root.getByTestId('change-status').textContent()) ?? '').trim();
  }

  async waitStatus(re: RegExp, timeoutMs = 30_000): Promise<string> {
    return waitForText(this.root.getByTestId('change-status'), re, timeoutMs);
  }

  async statusDetail(): Promise<string> {
    return ((await this.root.getByTestId('status-detail').textContent()) ?? '').trim();
  }

  async bundleSha(): Promise<string> {
    return ((await this.root.getByTestId('bundle-sha').textContent()) ?? '').trim();
  }

  async playbookYaml(): Promise<string> {
    return (await this.root.getByTestId('playbook-yaml').textContent()) ?? '';
  }

  /** The verification steps as `id:status`. */
  async verificationSteps(): Promise<string[]> {
    const steps = this.root.getByTestId('verification').locator('[data-step]');
    await steps.first().waitFor();
    return steps.evaluateAll((els) =>
      els.map((e) => `${e.getAttribute('data-step')}:${e.getAttribute('data-status')}`),
    );
  }

  previewTasks(): Locator {
    return this.root.getByTestId('preview-task');
  }

  /** Open each preview task's diff and return the texts. */
  async previewDiffs(): Promise<string[]> {
    const out: string[] = [];
    const tasks = this.previewTasks();
    for (let i = 0; i < (await tasks.count()); i++) {
      const t = tasks.nth(i);
      const btn = t.getByRole('button', { name: 'Show diff' });
      if (await btn.count()) {
        await btn.click();
        out.push((await t.locator('.preview-diff').textContent()) ?? '');
      }
    }
    return out;
  }

  /** The diff's items as `kind key` from the "What the agent changed" section. */
  async diffItems(): Promise<number> {
    const items = this.root.locator('.review-items li');
    await items.first().waitFor();
    return items.count();
  }

  async approve(): Promise<void> {
    await this.root
      .getByTestId('review-approval')
      .getByRole('button', { name: 'Approve', exact: true })
      .click();
  }

  async apply(): Promise<void> {
    await this.root.getByTestId('review-apply').click();
  }

  applyLog(): Locator {
    return this.root.getByTestId('apply-log');
  }

  async applyStatus(): Promise<string> {
    return ((await this.root.getByTestId('apply-status').textContent()) ?? '').trim();
  }

  async waitApplyEnd(timeoutMs: number): Promise<string> {
    return waitFor(
      'the apply to end',
      async () => {
        const s = await this.applyStatus().catch(() => '');
        return ['succeeded', 'failed', 'cancelled', 'refused', 'interrupted'].includes(s) ? s : null;
      },
      timeoutMs,
      500,
    );
  }

  async applySummary(): Promise<string> {
    return ((await this.root.getByTestId('apply-summary').textContent()) ?? '').trim();
  }

  async postCheck(): Promise<string> {
    return waitForText(this.root.getByTestId('post-check'), /./);
  }

  async openTargetHistory(target: string): Promise<Locator> {
    await this.page.goto(
      new URL(`#/changes/targets/${encodeURIComponent(target)}`, this.page.url()).toString(),
    );
    const list = this.page.getByTestId('target-history');
    await list.waitFor();
    return list.locator(':scope > li');
  }
}
