/** Small waiting helpers (playwright-core has no `expect`): poll until true, fail with a clear message. */
import type { Locator } from 'playwright-core';

export async function waitFor<T>(
  what: string,
  probe: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Wait until the locator's text matches. Returns the text. */
export async function waitForText(locator: Locator, re: RegExp, timeoutMs = 15_000): Promise<string> {
  let seen = '';
  try {
    return await waitFor(
      `text ${re}`,
      async () => {
        seen = ((await locator.first().textContent({ timeout: 1_000 })) ?? '').replace(/\s+/g, ' ').trim();
        return re.test(seen) ? seen : null;
      },
      timeoutMs,
    );
  } catch {
    throw new Error(`Timed out waiting for text ${re}; last seen: ${JSON.stringify(seen.slice(0, 500))}`);
  }
}
