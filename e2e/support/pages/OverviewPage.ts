/** The overview: hosts with their capacity charts, running sandboxes, pending approvals, recent sessions. */
import type { Locator, Page } from 'playwright-core';
import { waitFor } from '../wait.ts';

export interface OverviewHost {
  name: string;
  samples: number;
  chart: string;
  text: string;
}

export class OverviewPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get hosts(): Locator {
    return this.page.getByRole('list', { name: 'Hosts' });
  }

  async hostCards(): Promise<OverviewHost[]> {
    await this.hosts.waitFor();
    return this.hosts.locator('li.overview-host').evaluateAll((els) =>
      els.map((e) => ({
        name: e.getAttribute('data-host') ?? '',
        samples: Number(e.querySelector('.capacity-chart')?.getAttribute('data-samples') ?? '0'),
        chart: e.querySelector('.capacity-svg')?.getAttribute('aria-label') ?? '',
        text: (e.textContent ?? '').replace(/\s+/g, ' ').trim(),
      })),
    );
  }

  /** Wait until a host's chart has at least `n` samples. */
  async waitSamples(host: string, n: number, timeoutMs = 30_000): Promise<OverviewHost> {
    return waitFor(
      `${n} capacity samples of ${host}`,
      async () => (await this.hostCards()).find((h) => h.name === host && h.samples >= n),
      timeoutMs,
    );
  }

  /** Running sandboxes: name → time left as shown. */
  async runningSandboxes(): Promise<Record<string, string>> {
    const table = this.page.getByRole('table', { name: 'Running sandboxes' });
    if (!(await table.count())) return {};
    return Object.fromEntries(
      await table
        .locator('tbody tr')
        .evaluateAll((rows) =>
          rows.map((r) => [
            r.getAttribute('data-sandbox') ?? '',
            (r.querySelector('[data-testid="time-left"]')?.textContent ?? '').trim(),
          ]),
        ),
    );
  }

  get approvals(): Locator {
    return this.page.getByRole('list', { name: 'Pending approvals' });
  }

  get sessions(): Locator {
    return this.page.getByRole('list', { name: 'Recent agent sessions' });
  }
}
