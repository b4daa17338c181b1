/**
 * The Electron shell: app lifecycle, one hardened window and the port bridge to the core router.
 * Secrets use the same store and keychain as the CLI (src/core/platform/secrets.ts), so each reads
 * what the other stored; safeStorage only opens values older versions of the app sealed with it.
 * Everything else lives in src/core.
 */
import { app, BrowserWindow, dialog, MessageChannelMain, safeStorage, session, shell } from 'electron';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { createCore, type Core } from '../core/createCore.ts';
import { defaultDataDir, resolvePaths } from '../core/platform/paths.ts';
import { FileSecretStore, type LegacyOpener } from '../core/platform/secrets.ts';
import { portFromMessagePortMain } from './port.ts';

let core: Core | null = null;

/** Values older versions of the app sealed with safeStorage: opened once, then moved to the shared store. */
const legacySafeStorage: LegacyOpener = {
  decrypt: (sealed) => safeStorage.decryptString(Buffer.from(sealed, 'base64')),
};

function createWindow(c: Core): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 960,
    minHeight: 600,
    title: 'Fluid',
    show: false,
    backgroundColor: '#0f1115',
    webPreferences: {
      preload: join(import.meta.dirname, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
      spellcheck: false,
    },
  });
  // No navigation away from the app, no new windows; http(s) links open in the browser.
  win.webContents.on('will-navigate', (e) => e.preventDefault());
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.once('ready-to-show', () => win.show());
  win.webContents.on('did-finish-load', () => {
    const { port1, port2 } = new MessageChannelMain();
    c.serve(portFromMessagePortMain(port1), { door: 'app', id: safeUser() });
    win.webContents.postMessage('fluid:port', null, [port2]);
  });
  void win.loadFile(join(import.meta.dirname, '../renderer/index.html'));
  return win;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

if (!app.requestSingleInstanceLock()) app.quit();

app.on('web-contents-created', (_e, contents) => {
  contents.on('will-attach-webview', (e) => e.preventDefault());
});

app.whenReady().then(() => {
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  try {
    const paths = resolvePaths(defaultDataDir());
    const secrets = new FileSecretStore(paths.secrets, {
      legacy: safeStorage.isEncryptionAvailable() ? legacySafeStorage : undefined,
    });
    core = createCore({ dataDir: paths.dataDir, secrets });
    try {
      const moved = secrets.migrate();
      if (moved) core.log.info('secrets moved to the shared store', { count: moved, backend: secrets.kind });
    } catch (err) {
      core.log.warn('secrets stay in the older format for now', { err });
    }
  } catch (err) {
    dialog.showErrorBox('Fluid cannot start', (err as Error).message);
    app.exit(1);
    return;
  }
  const c = core;
  c.startBackground();
  createWindow(c);
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow(c);
  });
});

app.on('second-instance', () => {
  const [win] = BrowserWindow.getAllWindows();
  if (win) {
    if (win.isMinimized()) win.restore();
    win.focus();
  }
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

let quitting = false;
app.on('before-quit', (e) => {
  if (quitting || !core) return;
  e.preventDefault();
  quitting = true;
  void core.close().finally(() => app.quit());
});
