/**
 * Running Ansible on the Fluid machine (the controller), against a sandbox reached the way Fluid
 * reaches every sandbox: through its libvirt host, logged in with a short-lived certificate from
 * Fluid's CA, the sandbox's host key pinned.
 *
 * Each run gets a private (0700) workspace: the revision's playbook and shipped files, vars, an
 * ansible.cfg of Fluid's own (ANSIBLE_CONFIG wins over any ansible.cfg found elsewhere; HOME points
 * into the workspace, ssh runs with -F /dev/null), the JSON events callback (fluid_json.py), and for
 * a replay: the certificate and its key, a known_hosts file holding only the sandbox's key, and a
 * Unix socket that Fluid's process relays to the sandbox's sshd over its own host connection
 * (ssh_relay.py is the ProxyCommand). Host key checking stays on. The workspace is removed when the
 * run ends, whatever happens; secret values exist there only during a replay, in a 0600 file.
 */
import { spawn } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'ssh2';
import { FluidError } from '../../shared/errors.ts';
import type { HostConnection } from '../hosts/connection.ts';
import { fingerprintOf, keyTypeOf } from '../hosts/ssh.ts';
import type { IssuedCertificate } from '../ssh/ca.ts';
import { SECRETS_VARS_FILE } from './safety.ts';
import { secretsYaml } from './secrets.ts';

export const CALLBACK_SOURCE_URL = new URL('./fluid_json.py', import.meta.url);
export const RELAY_SOURCE_URL = new URL('./ssh_relay.py', import.meta.url);

/** The ansible-lint profile verification uses, and why. */
export const LINT_PROFILE = 'production';
export const LINT_PROFILE_WHY =
  'production: the playbook is meant for production, and this profile holds it to everything the others check (syntax and schema, FQCN module names, quoted octal modes, risky permissions and unpinned packages from "safety", commands without changed_when and when-changed instead of handlers from "shared").';

export const INSTALL_ADVICE =
  'Install ansible-core and ansible-lint on this machine (Debian/Ubuntu: sudo apt install ansible-core ansible-lint; Fedora: sudo dnf install ansible-core python3-ansible-lint; macOS: brew install ansible ansible-lint; elsewhere: pipx install ansible-core ansible-lint). Nothing is installed on production or in sandboxes.';

export interface AnsibleTools {
  playbook: string | null;
  lint: string | null;
  coreVersion: string | null;
  lintVersion: string | null;
  /** The Python that runs ansible-playbook (it also runs the relay). */
  python: string | null;
  problems: string[];
}

function which(cmd: string): string | null {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/bin',
    '/usr/local/bin',
    '/opt/homebrew/bin',
  ];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function capture(
  cmd: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv({ HOME: tmpdir() }) });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', () => {
      clearTimeout(t);
      resolve({ code: null, out });
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** Terminal colour codes out of a tool's output. */
export function stripAnsi(s: string): string {
  const esc = String.fromCharCode(27);
  return s
    .split(esc)
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, '')))
    .join('');
}

let cached: { at: number; tools: AnsibleTools } | null = null;

/** Which Ansible tools this machine has, with their versions (cached for a minute). */
export async function detectAnsible(fresh = false): Promise<AnsibleTools> {
  if (!fresh && cached && Date.now() - cached.at < 60_000) return cached.tools;
  const tools: AnsibleTools = {
    playbook: which('ansible-playbook'),
    lint: which('ansible-lint'),
    coreVersion: null,
    lintVersion: null,
    python: null,
    problems: [],
  };
  if (tools.playbook) {
    const v = await capture(tools.playbook, ['--version']);
    tools.coreVersion = /core ([0-9][^\]\s]*)/.exec(v.out)?.[1] ?? null;
    tools.python = /python version = .*\((\/[^)]+)\)/.exec(v.out)?.[1] ?? null;
    if (v.code !== 0) tools.problems.push(`ansible-playbook --version failed: ${v.out.trim().slice(-300)}`);
  }
  if (tools.lint) {
    const v = await capture(tools.lint, ['--version', '--nocolor']);
    tools.lintVersion = /ansible-lint\s+([0-9][0-9.]*)/.exec(stripAnsi(v.out))?.[1] ?? null;
    if (v.code !== 0) tools.problems.push(`ansible-lint --version failed: ${v.out.trim().slice(-300)}`);
  }
  cached = { at: Date.now(), tools };
  return tools;
}

export function requireTools(t: AnsibleTools, need: Array<'playbook' | 'lint'>): void {
  const missing = need
    .filter((n) => !t[n])
    .map((n) => (n === 'playbook' ? 'ansible-playbook (ansible-core)' : 'ansible-lint'));
  if (missing.length)
    throw new FluidError(
      'UNAVAILABLE',
      `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed on this machine. ${INSTALL_ADVICE}`,
    );
}

/** An environment with nothing of the caller's Ansible or SSH settings in it. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    NO_COLOR: '1',
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
  };
}

export interface GuestAccess {
  /** Where Ansible's ssh connects (inside the workspace); the relay joins it to the sandbox. */
  address: string;
  user: string;
  certificate: IssuedCertificate;
  /** `<type> <base64>` of the sandbox's host key, checked against its pinned fingerprint. */
  hostKey: string;
  alias: string;
}

/** A private workspace holding one revision, ready for ansible-playbook and ansible-lint. */
export class Workspace {
  readonly dir: string;
  private disposed = false;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  static create(yaml: string, files: ReadonlyMap<string, Buffer>): Workspace {
    const dir = mkdtempSync(join(tmpdir(), 'fluid-pb-'));
    chmodSync(dir, 0o700);
    const ws = new Workspace(dir);
    try {
      for (const d of ['home', 'tmp', 'local-tmp', 'cp', 'callback_plugins', 'vars', 'ansible-home'])
        mkdirSync(join(dir, d), { mode: 0o700 });
      writeFileSync(join(dir, 'playbook.yml'), yaml, { mode: 0o600 });
      for (const [path, content] of files) {
        // BundlePath keeps these inside the workspace (files/… or templates/…, no "..").
        if (!/^(files|templates)\//.test(path) || path.split('/').includes('..'))
          throw new FluidError('VALIDATION', `Refusing to write ${path}.`);
        mkdirSync(join(dir, dirname(path)), { recursive: true, mode: 0o700 });
        writeFileSync(join(dir, path), content, { mode: 0o600 });
      }
      writeFileSync(join(dir, SECRETS_VARS_FILE), '{}\n', { mode: 0o600 });
      writeFileSync(join(dir, 'callback_plugins', 'fluid_json.py'), readSource(CALLBACK_SOURCE_URL), {
        mode: 0o600,
      });
      writeFileSync(join(dir, 'ssh_relay.py'), readSource(RELAY_SOURCE_URL), { mode: 0o600 });
      writeFileSync(join(dir, 'inventory.ini'), '[sandbox]\ntarget ansible_host=127.0.0.1\n', {
        mode: 0o600,
      });
      ws.writeConfig(null, null);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return ws;
  }

  get playbook(): string {
    return join(this.dir, 'playbook.yml');
  }

  /** Secret values for a replay (0600, removed with the workspace). */
  writeSecrets(values: ReadonlyMap<string, string>): void {
    writeFileSync(join(this.dir, SECRETS_VARS_FILE), secretsYaml(values), { mode: 0o600 });
  }

  /**
   * Point the inventory and ssh at a sandbox (a fresh certificate for each run). The sandbox is the
   * one host, in group "sandbox" and in every plain group name the plays target (`hosts: web`), so
   * the play runs on it as it would on production's hosts of that group.
   */
  target(access: GuestAccess, python: string, groups: readonly string[] = []): void {
    writeFileSync(join(this.dir, 'id'), access.certificate.privateKey, { mode: 0o600 });
    writeFileSync(join(this.dir, 'id-cert.pub'), access.certificate.certificate + '\n', { mode: 0o600 });
    writeFileSync(join(this.dir, 'known_hosts'), `${access.alias} ${access.hostKey}\n`, { mode: 0o600 });
    writeFileSync(
      join(this.dir, 'inventory.ini'),
      `[sandbox]\ntarget ansible_host=${access.alias} ansible_user=${access.user} ansible_ssh_private_key_file=${join(this.dir, 'id')}\n` +
        groups
          .filter(
            (g) => /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(g) && !['all', 'sandbox', 'ungrouped'].includes(g),
          )
          .map((g) => `[${g}]\ntarget\n`)
          .join(''),
      { mode: 0o600 },
    );
    this.writeConfig(access, python);
  }

  private writeConfig(access: GuestAccess | null, python: string | null): void {
    const d = this.dir;
    const ssh = access
      ? [
          '-F /dev/null',
          '-o ControlMaster=auto',
          '-o ControlPersist=120s',
          `-o ControlPath=${d}/cp/master`,
          `-o 'ProxyCommand=${python} ${d}/ssh_relay.py ${d}/guest.sock'`,
          `-o HostKeyAlias=${access.alias}`,
          `-o UserKnownHostsFile=${d}/known_hosts`,
          '-o GlobalKnownHostsFile=/dev/null',
          '-o StrictHostKeyChecking=yes',
          '-o IdentitiesOnly=yes',
          '-o IdentityAgent=none',
          `-o CertificateFile=${d}/id-cert.pub`,
          '-o PasswordAuthentication=no',
          '-o KbdInteractiveAuthentication=no',
          '-o BatchMode=yes',
          '-o ServerAliveInterval=15',
          '-o LogLevel=ERROR',
        ].join(' ')
      : '-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes';
    writeFileSync(
      join(d, 'ansible.cfg'),
      [
        '[defaults]',
        `inventory = ${d}/inventory.ini`,
        'host_key_checking = True',
        'retry_files_enabled = False',
        `callback_plugins = ${d}/callback_plugins`,
        'callbacks_enabled = fluid_json',
        'stdout_callback = default',
        'nocolor = True',
        `local_tmp = ${d}/local-tmp`,
        'interpreter_python = auto_silent',
        'forks = 5',
        'timeout = 60',
        'deprecation_warnings = False',
        'display_skipped_hosts = True',
        '',
        '[ssh_connection]',
        'pipelining = True',
        `ssh_args = ${ssh}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  }

  env(): NodeJS.ProcessEnv {
    return cleanEnv({
      HOME: join(this.dir, 'home'),
      TMPDIR: join(this.dir, 'tmp'),
      ANSIBLE_CONFIG: join(this.dir, 'ansible.cfg'),
      ANSIBLE_HOME: join(this.dir, 'ansible-home'),
      ANSIBLE_LOCAL_TEMP: join(this.dir, 'local-tmp'),
      XDG_CACHE_HOME: join(this.dir, 'home', '.cache'),
      FLUID_ANSIBLE_EVENTS_FD: '3',
    });
  }

  /** Relay connections made to <workspace>/guest.sock to the sandbox's sshd, through its host. */
  async tunnel(host: () => Promise<HostConnection>, address: string, port: number): Promise<void> {
    if (this.server) return;
    const path = join(this.dir, 'guest.sock');
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => client.destroy());
      host()
        .then((h) => h.forwardOut(address, port))
        .then(
          (remote) => {
            if (client.destroyed) {
              remote.destroy();
              return;
            }
            client.pipe(remote).on('error', () => client.destroy());
            remote.pipe(client);
            remote.on('error', () => client.destroy());
            remote.on('close', () => client.destroy());
            client.on('close', () => remote.destroy());
          },
          () => client.destroy(),
        );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    this.server = server;
  }

  /** End ssh's ControlPersist master (it outlives ansible-playbook), then remove everything. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await new Promise<void>((resolve) => {
      const p = spawn(
        'ssh',
        ['-F', '/dev/null', '-O', 'exit', '-o', `ControlPath=${this.dir}/cp/master`, 'target'],
        { stdio: 'ignore' },
      );
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.on('error', () => (clearTimeout(t), resolve()));
      p.on('close', () => (clearTimeout(t), resolve()));
    });
    for (const s of this.sockets) s.destroy();
    this.server?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readSource(url: URL): string {
  try {
    return readFileSync(url, 'utf8');
  } catch (e) {
    throw new FluidError(
      'INTERNAL',
      `${fileURLToPath(url)} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): this Fluid installation is incomplete; reinstall or rebuild it.`,
    );
  }
}

/** The sandbox's host key in full, from a handshake that must present the pinned fingerprint. */
export async function pinnedHostKey(
  host: HostConnection,
  address: string,
  port: number,
  fingerprint: string,
): Promise<string> {
  const sock = await host.forwardOut(address, port);
  return new Promise<string>((resolve, reject) => {
    const client = new Client();
    let key: string | null = null;
    let mismatch: string | null = null;
    const done = () => {
      client.end();
      sock.destroy();
      if (key) resolve(key);
      else
        reject(
          mismatch
            ? new FluidError(
                'HOSTKEY_MISMATCH',
                `The sandbox at ${address} presented ${mismatch}, not the pinned ${fingerprint}. Nothing was run.`,
              )
            : new FluidError('HOST_UNREACHABLE', `Could not read the SSH host key of ${address}.`),
        );
    };
    client.on('error', done);
    client.on('close', done);
    client.connect({
      sock,
      username: 'fluid-hostkey-check',
      readyTimeout: 20_000,
      hostVerifier: (blob: Buffer) => {
        const fp = fingerprintOf(blob);
        if (fp === fingerprint) key = `${keyTypeOf(blob)} ${blob.toString('base64')}`;
        else mismatch = fp;
        return false; // never log in: only the key was wanted
      },
    });
  });
}

// ---- processes ------------------------------------------------------------------------------------

export interface AnsibleEvent {
  event: 'task' | 'result' | 'stats';
  [k: string]: unknown;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  log: string;
  events: AnsibleEvent[];
  durationMs: number;
  timedOut: boolean;
}

const LOG_CAP = 2 * 1024 * 1024;

/**
 * Run a tool in the workspace. Its process group is killed on cancel or timeout (TERM, then KILL);
 * stdout and stderr form the log; JSON events arrive on fd 3.
 */
export function runTool(
  ws: Workspace,
  cmd: string,
  args: string[],
  opts: {
    signal?: AbortSignal;
    timeoutMs: number;
    onEvent?: (e: AnsibleEvent) => void;
    onLog?: (chunk: string) => void;
  },
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new FluidError('CANCELLED', 'Cancelled.'));
    const p = spawn(cmd, args, {
      cwd: ws.dir,
      env: ws.env(),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let log = '';
    let truncated = false;
    const add = (c: Buffer) => {
      const s = c.toString('utf8');
      opts.onLog?.(s);
      if (log.length + s.length > LOG_CAP) {
        if (!truncated) log += '\n[log truncated]\n';
        truncated = true;
        return;
      }
      log += s;
    };
    p.stdout!.on('data', add);
    p.stderr!.on('data', add);
    const events: AnsibleEvent[] = [];
    let partial = '';
    (p.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => {
      partial += c.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          const e = JSON.parse(line) as AnsibleEvent;
          events.push(e);
          opts.onEvent?.(e);
        } catch {
          /* not ours */
        }
      }
    });
    let timedOut = false;
    let killTimer: NodeJS.Timeout | null = null;
    const kill = () => {
      try {
        process.kill(-p.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
      killTimer ??= setTimeout(() => {
        try {
          process.kill(-p.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 3000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    p.on('error', (e) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new FluidError('UNAVAILABLE', `${cmd} could not be started: ${e.message}. ${INSTALL_ADVICE}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) return reject(new FluidError('CANCELLED', 'Cancelled.'));
      resolve({ code, signal, log, events, durationMs: Date.now() - started, timedOut });
    });
  });
}
