/**
 * The Electron door without the Electron binary, checked on what `npm run build` produced:
 * - out/main/index.js runs against a recording stand-in for the `electron` module: the window it opens
 *   is hardened, navigation, new windows, webviews and permission requests are refused, and the page
 *   gets a MessagePort that really serves the core router;
 * - out/preload/index.cjs runs in a sandbox-like context whose `require` knows only electron, and its
 *   syntax tree requires nothing else and exposes nothing;
 * - the sources: the shell stays small, and only src/main and src/preload import electron.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { runInNewContext } from 'node:vm';
import ts from 'typescript';
import { contract } from '../../../src/shared/contract/index.ts';
import { RpcClient } from '../../../src/shared/rpc.ts';
import { portFromMessagePortMain } from '../../../src/main/port.ts';

const root = new URL('../../../', import.meta.url).pathname;
const built = (p: string) => {
  const file = join(root, p);
  assert.ok(existsSync(file), `${p} is missing: run \`npm run build\` first`);
  return file;
};

type Listener = (...args: unknown[]) => unknown;
type PermissionHandler = (wc: unknown, permission: string, cb: (ok: boolean) => void) => void;

/** A tiny EventEmitter that records handlers, so the test can call them as Electron would. */
class Emitter {
  readonly handlers = new Map<string, Listener[]>();
  on(name: string, fn: Listener) {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), fn]);
    return this;
  }
  once(name: string, fn: Listener) {
    return this.on(name, fn);
  }
  emit(name: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(name) ?? []) fn(...args);
  }
  count(name: string) {
    return this.handlers.get(name)?.length ?? 0;
  }
}

/** Electron's MessagePortMain over a Node MessagePort: 'message' events carry `{ data }`. */
class PortMain {
  readonly port: MessagePort;
  constructor(port: MessagePort) {
    this.port = port;
  }
  on(name: string, fn: Listener) {
    if (name === 'message') this.port.on('message', (data: unknown) => fn({ data, ports: [] }));
    else if (name === 'close') this.port.on('close', fn);
    return this;
  }
  postMessage(m: unknown) {
    this.port.postMessage(m);
  }
  start() {
    this.port.start();
  }
  close() {
    this.port.close();
  }
}

class FakeWebContents extends Emitter {
  openHandler: ((d: { url: string }) => { action: string }) | null = null;
  readonly posted: Array<{ channel: string; message: unknown; ports: PortMain[] }> = [];
  setWindowOpenHandler(fn: (d: { url: string }) => { action: string }) {
    this.openHandler = fn;
  }
  postMessage(channel: string, message: unknown, ports: PortMain[] = []) {
    this.posted.push({ channel, message, ports });
  }
}

interface Recorded {
  windows: FakeWindow[];
  /** settles when the first window is created, or fails with the error box the app showed */
  firstWindow: PromiseWithResolvers<void>;
  quit: PromiseWithResolvers<void>;
  opened: string[];
  focused: number;
  permissionHandler: PermissionHandler | null;
}
const seen: Recorded = {
  windows: [],
  firstWindow: Promise.withResolvers<void>(),
  quit: Promise.withResolvers<void>(),
  opened: [],
  focused: 0,
  permissionHandler: null,
};
const ready = Promise.withResolvers<void>();
const app = Object.assign(new Emitter(), {
  requestSingleInstanceLock: () => true,
  whenReady: () => ready.promise,
  quit: () => seen.quit.resolve(),
  exit: (code: number) => seen.firstWindow.reject(new Error(`the app exited with ${code}`)),
});

/** What out/main/index.js gets for `import … from 'electron'`. */
const electron = {
  app,
  dialog: {
    showErrorBox: (title: string, text: string) => seen.firstWindow.reject(new Error(`${title}: ${text}`)),
  },
  safeStorage: {
    isEncryptionAvailable: () => false,
    decryptString: () => {
      throw new Error('not available');
    },
  },
  session: {
    defaultSession: {
      setPermissionRequestHandler: (fn: PermissionHandler) => void (seen.permissionHandler = fn),
    },
  },
  shell: { openExternal: async (url: string) => void seen.opened.push(url) },
  MessageChannelMain: class {
    readonly port1: PortMain;
    readonly port2: PortMain;
    constructor() {
      const { port1, port2 } = new MessageChannel();
      this.port1 = new PortMain(port1);
      this.port2 = new PortMain(port2);
    }
  },
  BrowserWindow: null as unknown,
};

class FakeWindow extends Emitter {
  static getAllWindows = () => seen.windows;
  readonly webContents = new FakeWebContents();
  loaded: string | null = null;
  shown = false;
  readonly options: Record<string, unknown> & { webPreferences: Record<string, unknown> };
  constructor(options: Record<string, unknown> & { webPreferences: Record<string, unknown> }) {
    super();
    this.options = options;
    seen.windows.push(this);
    seen.firstWindow.resolve();
  }
  loadFile(file: string) {
    this.loaded = file;
    return Promise.resolve();
  }
  show() {
    this.shown = true;
  }
  isMinimized = () => false;
  restore() {}
  focus() {
    seen.focused++;
  }
}
electron.BrowserWindow = FakeWindow;

describe('the built main process (out/main/index.js) with a stand-in electron', () => {
  let dataDir: string;
  let win: FakeWindow;

  before(async () => {
    const main = built('out/main/index.js');
    dataDir = mkdtempSync(join(tmpdir(), 'fluid-electron-main-'));
    process.env.FLUID_DATA_DIR = dataDir;
    (globalThis as { __fluidElectron?: unknown }).__fluidElectron = electron;
    const names = ['app', 'BrowserWindow', 'dialog', 'MessageChannelMain', 'safeStorage', 'session', 'shell'];
    const stub = `const e = globalThis.__fluidElectron;\n${names.map((n) => `export const ${n} = e.${n};`).join('\n')}\nexport default e;`;
    registerHooks({
      resolve: (specifier, context, next) =>
        specifier === 'electron'
          ? { url: `data:text/javascript,${encodeURIComponent(stub)}`, shortCircuit: true }
          : next(specifier, context),
    });
    await import(pathToFileURL(main).href);
    ready.resolve();
    await seen.firstWindow.promise; // the window comes once the core is up
    win = seen.windows[0]!;
  });

  after(async () => {
    // before-quit closes the core, then quits
    const prevented: string[] = [];
    electron.app.emit('before-quit', { preventDefault: () => prevented.push('before-quit') });
    await seen.quit.promise;
    rmSync(dataDir, { recursive: true, force: true });
    assert.deepEqual(prevented, ['before-quit'], 'the first quit waits for the core to close');
  });

  test('one window, hardened: isolation, sandbox, no node, web security, no webview, our preload', () => {
    assert.equal(seen.windows.length, 1);
    const prefs = win.options.webPreferences;
    assert.equal(prefs.contextIsolation, true);
    assert.equal(prefs.sandbox, true);
    assert.equal(prefs.nodeIntegration, false);
    assert.equal(prefs.webSecurity, true);
    assert.equal(prefs.webviewTag, false);
    assert.ok(!('nodeIntegrationInWorker' in prefs) || prefs.nodeIntegrationInWorker === false);
    assert.ok(!('allowRunningInsecureContent' in prefs) || prefs.allowRunningInsecureContent === false);
    assert.equal(prefs.preload, join(root, 'out/preload/index.cjs'));
    assert.ok(existsSync(prefs.preload as string), 'the preload the window names was built');
    assert.equal(win.loaded, join(root, 'out/renderer/index.html'));
    assert.ok(existsSync(win.loaded!), 'the page the window loads was built');
  });

  test('navigation away from the app is prevented', () => {
    assert.equal(win.webContents.count('will-navigate'), 1);
    let prevented = 0;
    win.webContents.emit('will-navigate', { preventDefault: () => prevented++ }, 'https://evil.example/');
    assert.equal(prevented, 1);
  });

  test('new windows are denied; only https links go to the browser', () => {
    const open = win.webContents.openHandler!;
    assert.ok(open, 'a window open handler is installed');
    for (const url of [
      'https://docs.example/page',
      'http://plain.example/',
      'file:///etc/passwd',
      'javascript:alert(1)',
    ])
      assert.deepEqual(open({ url }), { action: 'deny' }, url);
    assert.deepEqual(seen.opened, ['https://docs.example/page']);
  });

  test('every permission request is refused', () => {
    assert.ok(seen.permissionHandler, 'a permission handler is installed');
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) {
      const answers: boolean[] = [];
      seen.permissionHandler(null, permission, (ok) => answers.push(ok));
      assert.deepEqual(answers, [false], permission);
    }
  });

  test('webviews are refused in every web contents', () => {
    const contents = new FakeWebContents();
    electron.app.emit('web-contents-created', {}, contents);
    let prevented = 0;
    contents.emit('will-attach-webview', { preventDefault: () => prevented++ }, {}, {});
    assert.equal(prevented, 1);
  });

  test('a second launch focuses the window instead of opening another', () => {
    electron.app.emit('second-instance');
    assert.equal(seen.windows.length, 1);
    assert.equal(seen.focused, 1);
  });

  test('the page gets one MessagePort, and the core router answers on it', async () => {
    win.webContents.emit('did-finish-load');
    const handed = win.webContents.posted.filter((p) => p.channel === 'fluid:port');
    assert.equal(handed.length, 1);
    assert.equal(handed[0]!.ports.length, 1);
    const client = new RpcClient(contract, portFromMessagePortMain(handed[0]!.ports[0]! as never));
    const settings = await client.call('settings.get', {});
    assert.equal(typeof settings, 'object');
    const hosts = await client.call('hosts.list', {});
    assert.ok(Array.isArray(hosts));
    handed[0]!.ports[0]!.close();
  });
});

describe('the built preload (out/preload/index.cjs)', () => {
  const file = () => built('out/preload/index.cjs');

  test('its syntax tree requires only electron, imports nothing and exposes nothing', () => {
    const code = readFileSync(file(), 'utf8');
    const sf = ts.createSourceFile('index.cjs', code, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const required: string[] = [];
    const problems: string[] = [];
    const visit = (n: ts.Node) => {
      if (ts.isCallExpression(n)) {
        const callee = n.expression;
        if (ts.isIdentifier(callee) && callee.text === 'require') {
          const [arg] = n.arguments;
          if (arg && ts.isStringLiteral(arg)) required.push(arg.text);
          else problems.push(`a computed require: ${n.getText()}`);
        }
        if (callee.kind === ts.SyntaxKind.ImportKeyword) problems.push(`a dynamic import: ${n.getText()}`);
      }
      if (ts.isImportDeclaration(n)) problems.push(`an import: ${n.getText()}`);
      if (ts.isPropertyAccessExpression(n) && /^expose(InMainWorld|InIsolatedWorld)$/.test(n.name.text))
        problems.push(`exposes an API: ${n.getText()}`);
      if (
        ts.isIdentifier(n) &&
        ['eval', 'Function', 'process'].includes(n.text) &&
        !ts.isPropertyAccessExpression(n.parent)
      )
        problems.push(`uses ${n.text}`);
      ts.forEachChild(n, visit);
    };
    visit(sf);
    assert.deepEqual(problems, []);
    assert.deepEqual([...new Set(required)], ['electron']);
  });

  test('run sandboxed, it listens on fluid:port only and hands the ports to the page', () => {
    const listeners = new Map<string, Listener>();
    const requested: string[] = [];
    const posted: unknown[][] = [];
    const electronApi = {
      ipcRenderer: {
        on: (channel: string, fn: Listener) => void listeners.set(channel, fn),
      },
      contextBridge: new Proxy(
        {},
        {
          get: (_t, name) => {
            throw new Error(`the preload touched contextBridge.${String(name)}`);
          },
        },
      ),
    };
    const window = {
      location: { origin: 'null' },
      postMessage: (...args: unknown[]) => void posted.push(args),
    };
    runInNewContext(readFileSync(file(), 'utf8'), {
      require: (name: string) => {
        requested.push(name);
        if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`);
        return electronApi;
      },
      window,
      module: { exports: {} },
      exports: {},
    });
    assert.deepEqual(requested, ['electron']);
    assert.deepEqual([...listeners.keys()], ['fluid:port']);
    const ports = [{ fake: 'port' }];
    listeners.get('fluid:port')!({ ports });
    assert.deepEqual(posted, [['fluid:port', '*', ports]], 'a file:// page has origin "null": any target');
    window.location.origin = 'http://127.0.0.1:5173';
    listeners.get('fluid:port')!({ ports });
    assert.deepEqual(
      posted[1],
      ['fluid:port', 'http://127.0.0.1:5173', ports],
      'otherwise its own origin only',
    );
  });
});

describe('the sources', () => {
  const files = (dir: string): string[] =>
    readdirSync(join(root, dir)).flatMap((f) => {
      const p = join(dir, f);
      return statSync(join(root, p)).isDirectory() ? files(p) : [p];
    });

  test('the Electron shell is a few hundred lines at most', () => {
    const lines = [...files('src/main'), ...files('src/preload')].reduce(
      (n, f) => n + readFileSync(join(root, f), 'utf8').split('\n').length,
      0,
    );
    assert.ok(lines < 300, `src/main + src/preload have ${lines} lines`);
  });

  test('only src/main and src/preload import electron (parsed imports, requires and import() calls)', () => {
    const importsElectron = (file: string): boolean => {
      const sf = ts.createSourceFile(
        file,
        readFileSync(join(root, file), 'utf8'),
        ts.ScriptTarget.Latest,
        true,
      );
      let found = false;
      const visit = (n: ts.Node) => {
        const spec =
          ts.isImportDeclaration(n) || ts.isExportDeclaration(n)
            ? n.moduleSpecifier
            : ts.isCallExpression(n) &&
                (n.expression.kind === ts.SyntaxKind.ImportKeyword ||
                  (ts.isIdentifier(n.expression) && n.expression.text === 'require'))
              ? n.arguments[0]
              : undefined;
        if (
          spec &&
          ts.isStringLiteral(spec) &&
          (spec.text === 'electron' || spec.text.startsWith('electron/'))
        )
          found = true;
        ts.forEachChild(n, visit);
      };
      visit(sf);
      return found;
    };
    const sources = files('src').filter((f) => /\.(ts|tsx|mts)$/.test(f));
    assert.ok(importsElectron('src/main/index.ts'), 'the check sees the main process importing electron');
    const offenders = sources.filter(
      (f) => !f.startsWith('src/main/') && !f.startsWith('src/preload/') && importsElectron(f),
    );
    assert.deepEqual(offenders, []);
  });

  test("the built page's Content-Security-Policy allows no inline or eval'd script", () => {
    const html = readFileSync(built('out/renderer/index.html'), 'utf8');
    const metas = [...html.matchAll(/<meta\b([^>]*)>/gis)].map((m) =>
      Object.fromEntries(
        [...m[1]!.matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)].map((a) => [a[1]!.toLowerCase(), a[2]!]),
      ),
    );
    const csp = metas.find((m) => m['http-equiv']?.toLowerCase() === 'content-security-policy')?.content;
    assert.ok(csp, 'the page declares a Content-Security-Policy');
    const directives = new Map(
      csp
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .filter((d) => d[0])
        .map(([name, ...values]) => [name!, values]),
    );
    const scripts = directives.get('script-src') ?? directives.get('default-src');
    assert.ok(scripts, 'script sources are restricted');
    assert.deepEqual(scripts, ["'self'"]);
    assert.deepEqual(directives.get('object-src'), ["'none'"]);
    assert.deepEqual(directives.get('base-uri'), ["'none'"]);
    for (const tag of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi))
      assert.match(tag[1]!, /\bsrc=/, 'no inline script in the page');
  });
});
