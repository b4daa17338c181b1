/** Screenshots kept as artifacts: test-artifacts/e2e/<test>/<NN>-<step>.png */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ROOT } from './server.ts';

export const ARTIFACTS = join(ROOT, 'test-artifacts/e2e');

export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 80) || 'test'
  );
}

export class Screenshots {
  readonly dir: string;
  readonly taken: string[] = [];
  private n = 0;
  private readonly page: Page;

  constructor(page: Page, testName: string) {
    this.page = page;
    this.dir = join(ARTIFACTS, slug(testName));
    // Only this run's screenshots: a renumbered step must not leave an old file behind.
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  /**
   * Save a screenshot for a step; returns its path. `fullPage` grows the viewport to the tallest
   * scrolling pane first (the app scrolls inside panes, not the document), then restores it.
   */
  async shot(step: string, opts: { fullPage?: boolean } = {}): Promise<string> {
    this.n += 1;
    const file = join(this.dir, `${String(this.n).padStart(2, '0')}-${slug(step)}.png`);
    const size = this.page.viewportSize();
    if (opts.fullPage && size) {
      const needed = await this.page.evaluate(() => {
        let extra = 0;
        for (const el of document.querySelectorAll<HTMLElement>('*')) {
          const style = getComputedStyle(el);
          if (!/(auto|scroll)/.test(style.overflowY)) continue;
          extra = Math.max(extra, el.scrollHeight - el.clientHeight);
        }
        return document.documentElement.clientHeight + extra;
      });
      await this.page.setViewportSize({
        width: size.width,
        height: Math.min(Math.max(needed, size.height), 6000),
      });
    }
    try {
      await this.page.screenshot({ path: file, animations: 'disabled' });
    } finally {
      if (opts.fullPage && size) await this.page.setViewportSize(size);
    }
    this.taken.push(file);
    return file;
  }
}
