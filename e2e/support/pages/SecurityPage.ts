/** Settings → Security (enrolled keys) and the in-window confirmation of presence. */
import type { CDPSession, Locator, Page } from 'playwright-core';
import { waitForText } from '../wait.ts';

export class PresenceDialog {
  readonly root: Locator;

  constructor(page: Page) {
    this.root = page.getByRole('dialog', { name: 'Confirm it is you' });
  }

  async what(): Promise<string> {
    return waitForText(this.root.getByTestId('presence-what'), /./);
  }

  async confirm(): Promise<void> {
    await this.root.getByTestId('presence-confirm').click();
    await this.root.waitFor({ state: 'detached' });
  }

  async cancel(): Promise<void> {
    await this.root.getByRole('button', { name: 'Cancel', exact: true }).click();
    await this.root.waitFor({ state: 'detached' });
  }
}

export class SecurityPage {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  async open(): Promise<void> {
    await this.page.goto(new URL('#/settings/security', this.page.url()).toString());
    await this.page.getByRole('heading', { name: 'Passkeys and security keys' }).waitFor();
  }

  keys(): Locator {
    return this.page.getByRole('list', { name: 'Enrolled keys' }).locator('.key-row');
  }

  async addKey(name: string): Promise<void> {
    const form = this.page.getByRole('form', { name: 'Enrol a key' });
    await form.getByLabel('Name of the new key').fill(name);
    await form.getByRole('button', { name: /Add a key/ }).click();
  }
}

/** Chromium's virtual authenticator (DevTools WebAuthn domain): a platform passkey that verifies the user. */
export async function addVirtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}
