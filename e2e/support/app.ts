/**
 * One test's app: a fresh backend, Chromium, a page on the web-mode URL, and a guard that fails the
 * test on any console error, page error or CSP violation.
 *
 *   const app = await openApp(t);            // cleanup is registered on t.after
 *   await app.shell.goto('Hosts');
 *   await app.shot('hosts');
 *   app.assertClean();                        // also checked on cleanup
 */
import type { TestContext } from 'node:test';
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { Screenshots, slug } from './artifacts.ts';
import { launchBrowser } from './browser.ts';
import { AppShell } from './pages/AppShell.ts';
import { startServer, type FluidServer } from './server.ts';

export interface OpenAppOptions {
  /** Name of the artifacts folder; defaults to the test's name. */
  name?: string;
  /** Use an existing server instead of starting one (it is not disposed then). */
  server?: FluidServer;
  /** The address to open; defaults to the server's URL (with its #token=…). */
  url?: (server: FluidServer) => string;
  /** Console errors that this test provokes on purpose. */
  allowErrors?: RegExp[];
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
  /** Wait for the shell to be connected (default true). */
  waitConnected?: boolean;
}

export interface App {
  server: FluidServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  shell: AppShell;
  shots: Screenshots;
  /** Problems seen so far: console errors, page errors, CSP violations. */
  readonly problems: string[];
  shot(step: string, opts?: { fullPage?: boolean }): Promise<string>;
  /** Accept errors matching this from now on (e.g. before killing the server on purpose). */
  allowErrors(re: RegExp): void;
  /** Throw if anything unexpected was reported. */
  assertClean(): void;
  close(): Promise<void>;
}

const CSP_PROBE = () => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(
      `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`,
    );
  });
};

export async function openApp(t: TestContext, opts: OpenAppOptions = {}): Promise<App> {
  const ownServer = !opts.server;
  const server = opts.server ?? (await startServer());
  let browser: Browser | null = null;
  try {
    browser = await launchBrowser();
    const context = await browser.newContext({
      viewport: opts.viewport ?? { width: 1360, height: 860 },
      colorScheme: opts.colorScheme ?? 'light',
      acceptDownloads: true,
      reducedMotion: 'reduce',
    });
    await context.addInitScript(CSP_PROBE);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const problems: string[] = [];
    const allowed = [...(opts.allowErrors ?? [])];
    const report = (text: string) => {
      // A stopped server refuses the page's reconnects: expected, not the page's problem (a test's
      // server may stop before its page closes: node:test runs after-hooks in the order they were added).
      if (!server.running && /WebSocket connection to .* failed: .*ERR_CONNECTION_REFUSED/.test(text)) return;
      if (!allowed.some((re) => re.test(text))) problems.push(text);
    };
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') report(`console.error: ${m.text()}`);
    });
    page.on('pageerror', (err) => report(`page error: ${err.message}`));
    const shots = new Screenshots(page, opts.name ?? slug(t.name));
    const shell = new AppShell(page);
    let closed = false;
    const b = browser;
    const app: App = {
      server,
      browser: b,
      context,
      page,
      shell,
      shots,
      problems,
      shot: (step, o) => shots.shot(step, o),
      allowErrors: (re) => void allowed.push(re),
      assertClean: () => {
        if (problems.length)
          throw new Error(`The page reported ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        await b.close().catch(() => {});
        if (ownServer) await server.dispose();
      },
    };
    t.after(async () => {
      const failed = problems.slice();
      await app.close();
      if (failed.length)
        throw new Error(`The page reported ${failed.length} problem(s):\n  ${failed.join('\n  ')}`);
    });
    await page.goto(opts.url ? opts.url(server) : server.url);
    if (opts.waitConnected ?? true) await shell.waitConnected();
    return app;
  } catch (err) {
    await browser?.close().catch(() => {});
    if (ownServer) await server.dispose();
    throw err;
  }
}
