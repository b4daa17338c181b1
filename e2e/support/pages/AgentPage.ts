/** Agent: the session list, the New session form, the session view (transcript, tool cards, composer, meter). */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';

export interface NewSession {
  task: string;
  title?: string;
  provider?: string;
  model?: string;
  host?: string;
  source?: string;
  mode?: 'Edit' | 'Read-only';
  maxSteps?: number;
  maxCostUsd?: number;
}

export interface Meter {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  contextTokens: number;
  steps: number;
  text: string;
}

export interface SessionItem {
  id: string;
  status: string;
  text: string;
}

/** One tool call in the transcript. */
export class ToolCard {
  readonly page: Page;
  readonly root: Locator;

  constructor(page: Page, root: Locator) {
    this.page = page;
    this.root = root;
  }

  async status(): Promise<string | null> {
    return this.root.getAttribute('data-status', { timeout: 2_000 }).catch(() => null);
  }

  async waitStatus(status: string, timeoutMs = 30_000): Promise<void> {
    let last: string | null = null;
    try {
      await waitFor(`the ${status} status`, async () => (last = await this.status()) === status, timeoutMs);
    } catch {
      throw new Error(`Timed out waiting for the tool call to be ${status}; it is ${last ?? 'not there'}`);
    }
  }

  async summary(): Promise<string> {
    return ((await this.root.getByTestId('tool-summary').textContent()) ?? '').trim();
  }

  /** Show the arguments; returns their list. */
  async expand(): Promise<Locator> {
    const toggle = this.root.locator('.tool-toggle');
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
    const args = this.root.getByLabel('Arguments');
    await args.or(this.root.locator('.tool-args-none')).first().waitFor();
    return args;
  }

  get approval(): Locator {
    return this.root.getByRole('group', { name: /^Approval for / });
  }

  async decide(decision: 'Approve' | 'Deny'): Promise<void> {
    await this.approval.getByRole('button', { name: decision, exact: true }).click();
  }

  async output(): Promise<string> {
    return (await this.root.getByLabel('Output', { exact: true }).textContent()) ?? '';
  }

  async decision(): Promise<string> {
    return waitForText(this.root.getByTestId('tool-decision'), /./);
  }

  /** "Show full output": the full text fetched with agent.toolOutput. */
  async fullOutput(): Promise<string> {
    await this.root.getByRole('button', { name: 'Show full output' }).click();
    const full = this.root.getByLabel('Full output');
    await full.waitFor();
    return (await full.textContent()) ?? '';
  }
}

export class AgentPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  get emptyState(): Locator {
    return this.page.getByRole('heading', { name: 'No agent sessions' });
  }

  get form(): Locator {
    return this.page.getByRole('form', { name: 'New agent session' });
  }

  get list(): Locator {
    return this.page.getByRole('list', { name: 'Agent sessions' });
  }

  get view(): Locator {
    return this.page.locator('.session-view');
  }

  get transcript(): Locator {
    return this.page.getByRole('log', { name: 'Transcript' });
  }

  get composer(): Locator {
    return this.page.getByLabel('Message to the agent');
  }

  async openNew(): Promise<void> {
    await this.page.getByRole('link', { name: 'New session' }).first().click();
    await this.form.waitFor();
  }

  /** Fill the New session form and start it; returns the new session's id. */
  async start(o: NewSession): Promise<string> {
    if (!(await this.form.isVisible())) await this.openNew();
    const f = this.form;
    await f.getByLabel('Task', { exact: true }).fill(o.task);
    if (o.title) await f.getByLabel('Title (optional)').fill(o.title);
    if (o.provider) await f.getByLabel('Provider', { exact: true }).selectOption({ label: o.provider });
    if (o.model) await f.getByLabel('Model', { exact: true }).fill(o.model);
    if (o.host) await f.getByLabel('Host', { exact: true }).selectOption({ label: o.host });
    if (o.source) await f.getByLabel('Source VM', { exact: true }).selectOption(o.source);
    if (o.mode)
      await f.getByRole('radiogroup', { name: 'Mode' }).getByRole('radio', { name: o.mode }).check();
    if (o.maxSteps !== undefined) await f.getByLabel('Max steps').fill(String(o.maxSteps));
    if (o.maxCostUsd !== undefined) await f.getByLabel('Max cost').fill(String(o.maxCostUsd));
    await f.getByRole('button', { name: 'Start session' }).click();
    await this.view.waitFor();
    return (await this.view.getAttribute('data-session')) ?? '';
  }

  async sessions(): Promise<SessionItem[]> {
    return this.list.locator('a[data-session]').evaluateAll((els) =>
      els.map((e) => ({
        id: e.getAttribute('data-session') ?? '',
        status: e.getAttribute('data-status') ?? '',
        text: (e.textContent ?? '').replace(/\s+/g, ' ').trim(),
      })),
    );
  }

  async status(): Promise<string | null> {
    return this.view
      .locator('.session-head [data-testid="session-status"]')
      .getAttribute('data-status', { timeout: 2_000 })
      .catch(() => null);
  }

  async waitStatus(status: string | RegExp, timeoutMs = 30_000): Promise<string> {
    const re = typeof status === 'string' ? new RegExp(`^${status}$`) : status;
    let last: string | null = null;
    try {
      return await waitFor(
        `the session to be ${String(status)}`,
        async () => {
          last = await this.status();
          return last && re.test(last) ? last : null;
        },
        timeoutMs,
      );
    } catch {
      throw new Error(
        `Timed out waiting for the session to be ${String(status)}; it is ${last ?? 'not shown'}`,
      );
    }
  }

  async mode(): Promise<string | null> {
    return this.view
      .locator('.session-head [data-testid="mode-chip"]')
      .getAttribute('data-mode', { timeout: 2_000 })
      .catch(() => null);
  }

  async meter(): Promise<Meter> {
    const m = this.view.getByRole('group', { name: 'Usage' });
    const num = async (testId: string, attr: string) =>
      Number((await m.getByTestId(testId).getAttribute(attr)) ?? 'NaN');
    return {
      inputTokens: await num('meter-tokens', 'data-input'),
      outputTokens: await num('meter-tokens', 'data-output'),
      costUsd: await num('meter-cost', 'data-cost'),
      contextTokens: await num('meter-context', 'data-context'),
      steps: await num('meter-steps', 'data-steps'),
      text: ((await m.textContent()) ?? '').replace(/\s+/g, ' ').trim(),
    };
  }

  /** The n-th (0-based) call of a tool in the transcript. */
  toolCard(name: string, nth = 0): ToolCard {
    return new ToolCard(this.page, this.transcript.locator(`article[data-tool="${name}"]`).nth(nth));
  }

  async toolCards(): Promise<{ name: string; status: string }[]> {
    return this.transcript.locator('article[data-tool]').evaluateAll((els) =>
      els.map((e) => ({
        name: e.getAttribute('data-tool') ?? '',
        status: e.getAttribute('data-status') ?? '',
      })),
    );
  }

  /** The agent's finished replies, in order. */
  async replies(): Promise<string[]> {
    return (await this.transcript.locator('.msg-assistant:not(.streaming) .msg-text').allTextContents()).map(
      (t) => t.trim(),
    );
  }

  async waitForReply(re: RegExp, timeoutMs = 30_000): Promise<string> {
    return waitFor(`a reply ${re}`, async () => (await this.replies()).find((r) => re.test(r)), timeoutMs);
  }

  /** What the users sent (task first). */
  async userMessages(): Promise<string[]> {
    return (await this.transcript.locator('.msg-user .msg-text').allTextContents()).map((t) => t.trim());
  }

  get partial(): Locator {
    return this.transcript.getByTestId('partial-reply');
  }

  get retryNotices(): Locator {
    return this.transcript.getByTestId('retry-notice');
  }

  /** Type a follow-up and press Enter. */
  async send(text: string): Promise<void> {
    await this.composer.fill(text);
    await this.composer.press('Enter');
    await waitFor('the composer to clear', async () => (await this.composer.inputValue()) === '');
  }

  /** Shift+Tab in the composer. */
  async toggleModeWithKeyboard(): Promise<void> {
    await this.composer.focus();
    await this.page.keyboard.press('Shift+Tab');
  }

  async waitMode(mode: 'edit' | 'read-only'): Promise<void> {
    await waitFor(`the ${mode} mode`, async () => (await this.mode()) === mode);
  }

  async stop(): Promise<void> {
    await this.view.getByRole('button', { name: 'Stop', exact: true }).click();
  }

  async lastError(): Promise<string> {
    return waitForText(this.view.getByTestId('session-error'), /./);
  }

  /** Whether the transcript follows new output (false once the reader scrolled up). */
  async following(): Promise<boolean> {
    return (await this.transcript.getAttribute('data-following')) === 'true';
  }
}
