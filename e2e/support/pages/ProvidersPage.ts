/** Settings → Providers (add, edit, test, delete model providers) and Settings → Agent (limits, approval rules). */
import type { Locator, Page } from 'playwright-core';
import { waitFor, waitForText } from '../wait.ts';
import { PresenceDialog } from './SecurityPage.ts';

export type SettingsTab = 'General' | 'Providers' | 'Agent';

export async function openSettingsTab(page: Page, tab: SettingsTab): Promise<void> {
  const nav = page.getByRole('navigation', { name: 'Settings views' });
  await nav.getByRole('link', { name: tab, exact: true }).click();
  await waitFor(
    `the ${tab} settings`,
    async () => (await nav.locator('a[aria-current="page"]').textContent({ timeout: 1_000 }))?.trim() === tab,
  );
}

export interface ProviderForm {
  preset?: 'Anthropic' | 'OpenAI' | 'OpenRouter' | 'Ollama' | 'vLLM';
  kind?: 'anthropic' | 'openai';
  label?: string;
  baseUrl?: string;
  model?: string;
  apiKey?: string;
  removeKey?: boolean;
  contextTokens?: number;
  inputPerMTok?: number;
  outputPerMTok?: number;
  isDefault?: boolean;
  /** The prices are below what the model costs now: the person confirms them in the window. */
  confirmPrice?: boolean;
}

export interface TestOutcome {
  ok: boolean;
  text: string;
  models: string[];
}

export class ProvidersPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  async open(): Promise<void> {
    await openSettingsTab(this.page, 'Providers');
  }

  get list(): Locator {
    return this.page.getByRole('list', { name: 'Providers' });
  }

  item(label: string): Locator {
    return this.page.locator(`li.provider[aria-label="${label}"]`);
  }

  get dialog(): Locator {
    return this.page.getByRole('dialog', { name: /^(Add a model provider|Edit )/ });
  }

  async fill(o: ProviderForm): Promise<void> {
    const d = this.dialog;
    if (o.preset)
      await d.getByRole('group', { name: 'Presets' }).getByRole('button', { name: o.preset }).click();
    if (o.kind)
      await d
        .getByRole('radiogroup', { name: 'Kind' })
        .getByRole('radio', { name: o.kind === 'anthropic' ? /^Anthropic/ : /^OpenAI-compatible/ })
        .check();
    if (o.label !== undefined) await d.getByLabel('Label', { exact: true }).fill(o.label);
    if (o.model !== undefined) await d.getByLabel('Model', { exact: true }).fill(o.model);
    if (o.baseUrl !== undefined) await d.getByLabel('Base URL', { exact: true }).fill(o.baseUrl);
    if (o.removeKey) await d.getByLabel('Remove the stored key').check();
    if (o.apiKey !== undefined) await d.getByLabel('API key', { exact: true }).fill(o.apiKey);
    if (o.contextTokens !== undefined) await d.getByLabel('Context window').fill(String(o.contextTokens));
    if (o.inputPerMTok !== undefined) await d.getByLabel('Input price').fill(String(o.inputPerMTok));
    if (o.outputPerMTok !== undefined) await d.getByLabel('Output price').fill(String(o.outputPerMTok));
    if (o.isDefault !== undefined) await d.getByLabel('Default for new sessions').setChecked(o.isDefault);
  }

  async add(o: ProviderForm): Promise<string | null> {
    await this.page.getByRole('button', { name: 'Add provider' }).first().click();
    await this.dialog.waitFor();
    await this.fill(o);
    await this.dialog.locator('.modal-foot').getByRole('button', { name: 'Add provider' }).click();
    const confirmed = await this.confirmPrice(o);
    await this.dialog.waitFor({ state: 'detached' });
    if (o.label) await this.item(o.label).waitFor();
    return confirmed;
  }

  /** What the person was asked to confirm (null when the form asked nothing). */
  private async confirmPrice(o: ProviderForm): Promise<string | null> {
    if (!o.confirmPrice) return null;
    const presence = new PresenceDialog(this.page);
    const what = await presence.what();
    await presence.confirm();
    return what;
  }

  async edit(label: string, o: ProviderForm): Promise<string | null> {
    await this.item(label).getByRole('button', { name: 'Edit' }).click();
    await this.dialog.waitFor();
    await this.fill(o);
    await this.dialog.locator('.modal-foot').getByRole('button', { name: 'Save' }).click();
    const confirmed = await this.confirmPrice(o);
    await this.dialog.waitFor({ state: 'detached' });
    return confirmed;
  }

  async remove(label: string): Promise<void> {
    await this.item(label)
      .getByRole('button', { name: `Delete ${label}` })
      .click();
    const confirm = this.page.getByRole('dialog', { name: `Delete ${label}?` });
    await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
    await confirm.waitFor({ state: 'detached' });
    await this.item(label).waitFor({ state: 'detached' });
  }

  async test(label: string, timeoutMs = 30_000): Promise<TestOutcome> {
    const item = this.item(label);
    await item.getByRole('button', { name: 'Test' }).click();
    const out = item.getByTestId('provider-test').or(item.locator('.callout-fail'));
    await out.first().waitFor({ timeout: timeoutMs });
    const ok =
      (await item
        .getByTestId('provider-test')
        .getAttribute('data-ok')
        .catch(() => null)) === 'true';
    return {
      ok,
      text: ((await out.first().textContent()) ?? '').replace(/\s+/g, ' ').trim(),
      models: ok ? await item.getByRole('list', { name: 'Models' }).locator('li').allTextContents() : [],
    };
  }

  /** The badges of a provider ("default", "key stored", …). */
  async badges(label: string): Promise<string[]> {
    return (await this.item(label).locator('.provider-name .badge').allTextContents()).map((t) => t.trim());
  }

  async waitForBadge(label: string, re: RegExp): Promise<void> {
    await waitFor(`the ${re} badge on ${label}`, async () =>
      (await this.badges(label)).some((b) => re.test(b)),
    );
  }
}

export interface RuleForm {
  tool: string;
  /** name → regular expression */
  args?: Record<string, string>;
  mode?: 'edit' | 'read-only';
  decision: 'allow' | 'ask' | 'deny';
}

export class AgentSettingsPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  async open(): Promise<void> {
    await openSettingsTab(this.page, 'Agent');
    await this.page.getByRole('form', { name: 'Agent settings' }).waitFor();
  }

  field(path: string): Locator {
    return this.page.locator(`[data-field="${path}"]`);
  }

  async setNumber(path: string, value: string): Promise<void> {
    await this.field(path).locator('input').fill(value);
  }

  async addRule(r: RuleForm): Promise<void> {
    await this.page.getByRole('button', { name: 'Add rule' }).click();
    const n = await this.page.locator('.rules-table tbody tr').count();
    await this.page.getByLabel(`Rule ${n}: tool`).fill(r.tool);
    if (r.args)
      await this.page.getByLabel(`Rule ${n}: argument patterns`).fill(
        Object.entries(r.args)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n'),
      );
    if (r.mode) await this.page.getByLabel(`Rule ${n}: mode`).selectOption(r.mode);
    await this.page.getByLabel(`Rule ${n}: decision`).selectOption(r.decision);
  }

  async ruleError(n: number): Promise<string> {
    return waitForText(this.page.locator(`.rules-table tr[data-rule="${n}"] .field-error`), /./);
  }

  async save(): Promise<void> {
    await this.page.getByRole('button', { name: 'Save', exact: true }).click();
  }

  async waitSaved(): Promise<void> {
    await waitForText(this.page.locator('.form-actions .muted'), /No changes/);
  }
}
