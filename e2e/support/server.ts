/**
 * A real Fluid backend in web mode for one test: `node bin/fluid.js serve --port 0 --json` on a fresh
 * data directory. It serves the built renderer (out/renderer); this harness never builds anything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const UI_INDEX = join(ROOT, 'out/renderer/index.html');

export interface ServerInfo {
  url: string;
  origin: string;
  port: number;
  dataDir: string;
  pid: number;
}

export interface FluidServer extends ServerInfo {
  /** The token from the URL fragment. */
  token: string;
  /** Everything the server wrote to stderr (for failure messages). */
  readonly stderr: string;
  /** false from the moment it is asked to stop until a restart has it listening again. */
  readonly running: boolean;
  /** Stop the process (SIGTERM, then SIGKILL). Idempotent. */
  stop(): Promise<void>;
  /** Start it again on the same port, data dir and token (a reconnecting client gets back in). */
  restart(): Promise<void>;
  /** Stop and remove the data directory if this harness created it. */
  dispose(): Promise<void>;
}

export function assertUiBuilt(): void {
  if (!existsSync(UI_INDEX))
    throw new Error(
      `The UI is not built (${UI_INDEX} is missing): run \`npm run build\` before the e2e tests.`,
    );
}

interface Spawned {
  child: ChildProcess;
  info: ServerInfo;
}

function spawnServer(
  dataDir: string,
  port: number,
  token: string | null,
  log: { stderr: string },
  env: NodeJS.ProcessEnv,
): Promise<Spawned> {
  const args = [join(ROOT, 'bin/fluid.js'), 'serve', '--port', String(port), '--json', '--data-dir', dataDir];
  if (token) args.push('--token', token);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, FLUID_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    log.stderr += d;
    if (process.env.FLUID_E2E_VERBOSE) process.stderr.write(`[fluid] ${d}`);
  });
  return new Promise((resolvePromise, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fluid serve did not print its address within 20 s.\n${log.stderr}`));
    }, 20_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      for (const line of buf.split('\n')) {
        const trimmed = line.trim();
        if (!trimmed.startsWith('{')) continue;
        try {
          const info = JSON.parse(trimmed) as ServerInfo;
          if (typeof info.url === 'string') {
            clearTimeout(timer);
            resolvePromise({ child, info });
            return;
          }
        } catch {
          // a partial line: wait for more
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`fluid serve exited (${code ?? signal}) before it was ready.\n${log.stderr}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}

export async function startServer(
  opts: { dataDir?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<FluidServer> {
  assertUiBuilt();
  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'fluid-e2e-'));
  const log = { stderr: '' };
  const env = opts.env ?? {};
  let current: Spawned;
  try {
    current = await spawnServer(dataDir, 0, null, log, env);
  } catch (err) {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const token = new URL(current.info.url).hash.replace(/^#token=/, '');
  let running = true;
  const server: FluidServer = {
    ...current.info,
    token,
    get stderr() {
      return log.stderr;
    },
    get running() {
      return running;
    },
    stop: () => {
      running = false;
      return stopChild(current.child);
    },
    restart: async () => {
      running = false;
      await stopChild(current.child);
      current = await spawnServer(dataDir, server.port, token, log, env);
      server.pid = current.info.pid;
      running = true;
    },
    dispose: async () => {
      running = false;
      await stopChild(current.child);
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}
