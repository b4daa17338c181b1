/**
 * SSH into sandboxes. A guest's sshd is reached through its libvirt host (`HostConnection.forwardOut`:
 * an SSH jump for remote hosts, a plain TCP socket for the local one) and logged into with a fresh
 * short-lived certificate from Fluid's CA for every new connection. One connection per guest is
 * pooled and reused; it reconnects on the next call after a drop. Host keys are verified against the
 * fingerprint recorded at the sandbox's first boot (or a trust-on-first-use callback).
 *
 * Operations: exec (see runner.ts for how scripts, timeouts and caps work), binary-safe file read,
 * atomic write and unique-match edit as root (files.ts), and interactive PTY shells on their own
 * connections (their certificates carry permit-pty; exec connections' do not).
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { cancelled, FluidError } from '../../shared/errors.ts';
import type { HostConnection } from '../hosts/connection.ts';
import { fingerprintOf, keyTypeOf, type HostKeyInfo } from '../hosts/ssh.ts';
import type { IssuedCertificate, SshCa } from './ca.ts';
import {
  applyEdit,
  DEFAULT_MAX_FILE_BYTES,
  FILE_EXIT,
  listDirScript,
  parseListing,
  readScript,
  type DirListing,
  sha256Hex,
  validatePath,
  writeScript,
} from './files.ts';
import {
  DEFAULT_KILL_GRACE_MS,
  HeadTailBuffer,
  runnerCommand,
  type RunnerKind,
  TIMEOUT_SIGNAL,
} from './runner.ts';
import { certificateKey } from './ssh2-cert.ts';

export type HostKeyPolicy =
  /** The fingerprint(s) recorded from a trusted channel; anything else is HOSTKEY_MISMATCH. */
  | { fingerprint: string | readonly string[] }
  /** Asked once with the presented key; true pins it for this GuestSsh. */
  | { trustOnFirstUse: (key: HostKeyInfo) => boolean | Promise<boolean> };

export interface GuestTarget {
  /** Pool key, e.g. the sandbox id. */
  key: string;
  /** The libvirt host that is the jump, or a function returning its current connection. */
  host: HostConnection | (() => HostConnection | Promise<HostConnection>);
  address: string;
  port?: number;
  /** Login user on the guest. */
  user: string;
  /** Certificate principal; defaults to the user. */
  principal?: string;
  hostKey: HostKeyPolicy;
  sandboxId?: string;
  /** source-address critical option for the certificates (the address the guest sees us from). */
  sourceAddress?: string;
  /**
   * Log in as this user (normally root, with the same principal) for root commands, on a second
   * connection, instead of a `sudo` per command on the login user's: sudo is the costliest process a
   * command starts on a small guest. A guest that refuses that login gets sudo again, for the life
   * of this session.
   */
  rootUser?: string;
}

export interface GuestSshOptions {
  ca: SshCa;
  /** Lifetime of each login certificate. A logged-in connection outlives it. Default 120 s. */
  certValiditySeconds?: number;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Concurrent channels per connection (OpenSSH's MaxSessions defaults to 10). Default 8. */
  maxChannels?: number;
  /** Close a pooled connection unused this long. 0 keeps it. Default 5 minutes. */
  idleTimeoutMs?: number;
  /** After the exit status, wait this long without output for the channel to close. Default 500 ms. */
  exitGraceMs?: number;
  /** How commands run on the guest (runner.ts): 'inline' in the login shell (default) or 'classic'. */
  runner?: RunnerKind;
  /**
   * Keep one runner started ahead on each connection (see Spare). Default true; the inline runner
   * only.
   */
  spare?: boolean;
}

export interface GuestExecOptions {
  /** Default 5 minutes; 0 for none. The remote process group is killed when it runs out. */
  timeoutMs?: number;
  /** Per stream; the head and tail are kept around a visible marker. Default 1 MiB. */
  maxOutputBytes?: number;
  stdin?: string | Buffer;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Run as root through `sudo -n`. */
  root?: boolean;
  /** Time between TERM and KILL when a timeout or a cancel kills the process group. Default 2 s. */
  killGraceMs?: number;
}

export interface GuestExecResult {
  exitCode: number | null;
  /** e.g. 'SIGKILL' when the script's shell was killed by a signal. */
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface ReadFileOptions {
  /** Default 16 MiB. Larger files are an error that says their size. */
  maxBytes?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WriteFileOptions {
  /** Octal, e.g. '0644'. Default: keep the existing file's mode, 0644 for a new file. */
  mode?: string;
  /** user or user:group. Default: keep the existing owner, root for a new file. */
  owner?: string;
  /** Create missing parent directories. Default false, so that a typo in a path fails. */
  createDirs?: boolean;
  /** Default 16 MiB. */
  maxBytes?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface EditFileOptions {
  maxBytes?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ShellOptions {
  cols?: number;
  rows?: number;
  term?: string;
}

export interface ShellExit {
  exitCode: number | null;
  signal: string | null;
}

/** An interactive PTY session, for terminals in the UI. */
export interface GuestShell {
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  /** Output (the PTY merges stdout and stderr). Output before the first listener is buffered. */
  onData(listener: (chunk: Buffer) => void): () => void;
  onExit(listener: (exit: ShellExit) => void): () => void;
  close(): void;
  readonly closed: boolean;
}

export interface GuestSshStats {
  /** Connections opened so far (exec connections; shells have their own). */
  connects: number;
  connected: boolean;
  /** Serial of the certificate the current exec connection logged in with. */
  serial: number | null;
  inFlight: number;
  shells: number;
  /** Root commands over a login as target.rootUser: not configured, not yet used, connected, refused. */
  rootLogin: 'off' | 'idle' | 'connected' | 'refused';
  /** Commands that ran on a runner started ahead (see Spare), on this session's connections. */
  spareRuns: number;
}

/** How long a finished command's channel may take to close before its slot is reused anyway. */
const CHANNEL_CLOSE_WAIT_MS = 2_000;
/** After a connection is closed, how long its socket may wait for the far end before it is destroyed. */
export const SOCKET_CLOSE_GRACE_MS = 2_000;
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
const FILE_TIMEOUT_MS = 120_000;
/** Beyond the remote timeout and kill grace, how long the client waits before giving up on its own. */
const BACKSTOP_SLACK_MS = 5_000;
const EXIT_WAIT_MAX_MS = 5_000;
const SHELL_BUFFER_MAX = 1024 * 1024;
const DIAG_CAP = 64 * 1024;

class Semaphore {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiters.push(r));
    return this.releaser();
  }
  /** A slot if one is free now and nobody waits for one; null otherwise. */
  tryAcquire(): (() => void) | null {
    if (this.free === 0) return null;
    this.free--;
    return this.releaser();
  }
  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/**
 * A runner started ahead of the command that will use it: an exec channel whose login shell already
 * runs RUNNER_COMMAND and waits on stdin for its header. Every inline command has the same command
 * line (runner.ts), so the next command writes its header and script to the spare and skips what
 * dominates a round trip on a small guest: sshd's session process and the login shell's exec. The
 * command keeps a channel of its own, so its streams, exit status, signals and cancel work exactly
 * as on a fresh channel. A spare holds one of the connection's channel slots; a command takes it
 * before waiting for a slot, so a spare never makes a command wait. A spare whose connection ends
 * reads EOF and exits without running anything (runner.ts, step 1).
 */
interface Spare {
  /** The channel once sshd accepted the exec; null if it did not. */
  channel: Promise<ClientChannel | null>;
  /** Closed (or refused) before a command took it. */
  gone: boolean;
  taken: boolean;
  release: () => void;
}

interface Live {
  client: Client;
  cert: IssuedCertificate;
  closed: boolean;
  sem: Semaphore;
  spare: Spare | null;
  closeListeners: Set<() => void>;
  /** Mark closed at once (so no new work is put on it) and end the connection. */
  close(): void;
}

interface RawOptions {
  timeoutMs: number;
  killGraceMs: number;
  root: boolean;
  stdin?: string | Buffer;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  stdout: HeadTailBuffer;
  stderr: HeadTailBuffer;
}

interface RawResult {
  exitCode: number | null;
  signal: string | null;
  stdout: HeadTailBuffer;
  stderr: HeadTailBuffer;
  timedOut: boolean;
  durationMs: number;
}

const SUDO_REFUSED =
  /^sudo: (a password is required|a terminal is required|.*is not in the sudoers file|.*may not run sudo|.*not allowed to execute)/m;

export class GuestSsh {
  private currentTarget: GuestTarget;
  private readonly opts: Required<Omit<GuestSshOptions, 'ca'>> & { ca: SshCa };
  private live: Live | null = null;
  private connecting: Promise<Live> | null = null;
  private pinned: string[] | null;
  private connects = 0;
  private inFlight = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly shells = new Set<GuestShellSession>();
  private disposed = false;
  /** Held for a VM that will be paused (see hold). */
  private held = false;
  /** The session that logs in as target.rootUser (root commands); null until the first one. */
  private rootSession: GuestSsh | null = null;
  /** The guest refused the root login: root commands use sudo on the login user's connection. */
  private rootRefused = false;
  private spareRuns = 0;

  constructor(target: GuestTarget, opts: GuestSshOptions) {
    if (!target.address) throw new FluidError('VALIDATION', 'The guest address is empty.');
    if (!target.user) throw new FluidError('VALIDATION', 'The guest user is empty.');
    this.currentTarget = target;
    this.opts = {
      ca: opts.ca,
      certValiditySeconds: opts.certValiditySeconds ?? 120,
      connectTimeoutMs: opts.connectTimeoutMs ?? 20_000,
      keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 15_000,
      maxChannels: opts.maxChannels ?? 8,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5 * 60_000,
      exitGraceMs: opts.exitGraceMs ?? 500,
      runner: opts.runner ?? 'inline',
      spare: opts.spare ?? true,
    };
    const hk = target.hostKey;
    this.pinned = 'fingerprint' in hk ? [hk.fingerprint].flat() : null;
    if (this.pinned && !this.pinned.every((f) => f.startsWith('SHA256:')))
      throw new FluidError('VALIDATION', 'Host key fingerprints look like SHA256:<base64>.');
  }

  get target(): GuestTarget {
    return this.currentTarget;
  }

  /**
   * Use another connection to the same libvirt host for future logins (after the host connection
   * was re-established). A live guest connection keeps running on the old one until it drops.
   */
  useHost(host: GuestTarget['host']): void {
    this.currentTarget = { ...this.currentTarget, host };
    this.rootSession?.useHost(host);
  }

  get stats(): GuestSshStats {
    return {
      connects: this.connects,
      connected: !!this.live && !this.live.closed,
      serial: this.live && !this.live.closed ? this.live.cert.serial : null,
      inFlight: this.inFlight,
      shells: this.shells.size,
      rootLogin: !this.currentTarget.rootUser
        ? 'off'
        : this.rootRefused
          ? 'refused'
          : this.rootSession?.stats.connected
            ? 'connected'
            : 'idle',
      spareRuns: this.spareRuns + (this.rootSession?.stats.spareRuns ?? 0),
    };
  }

  /**
   * Keep the connection for a guest that is about to be paused (a warm pool member): a connection
   * opened while held sends no keepalives and is never closed for being idle, so it is still there
   * when the guest resumes, hours later. Releasing lets the idle close apply again; that connection
   * keeps going without keepalives until it closes, and the next one has them.
   */
  hold(on: boolean): void {
    if (this.held === on) return;
    this.held = on;
    if (on && this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (!on) this.armIdle();
    this.rootSession?.hold(on);
  }

  /** The host key fingerprint(s) trusted now (after a trust-on-first-use, the accepted one). */
  get trustedFingerprints(): readonly string[] | null {
    return this.pinned;
  }

  private describe(): string {
    const t = this.target;
    return `${t.user}@${t.address}:${t.port ?? 22}${t.sandboxId ? ` (sandbox ${t.sandboxId})` : ''}`;
  }

  // ---- connections -------------------------------------------------------------------------

  private async connection(): Promise<Live> {
    if (this.disposed)
      throw new FluidError('UNAVAILABLE', `The SSH session to ${this.describe()} is closed.`);
    if (this.live && !this.live.closed) return this.live;
    if (!this.connecting) {
      this.connecting = this.open('guest-exec', false)
        .then((live) => {
          this.connects++;
          this.live = live;
          if (this.disposed) live.close();
          return live;
        })
        .finally(() => {
          this.connecting = null;
        });
    }
    return this.connecting;
  }

  private async open(purpose: string, permitPty: boolean): Promise<Live> {
    const t = this.target;
    const port = t.port ?? 22;
    const host = typeof t.host === 'function' ? await t.host() : t.host;
    if (host.closed)
      throw new FluidError(
        'HOST_UNREACHABLE',
        `The connection to host ${host.hostId} is closed, so ${this.describe()} cannot be reached through it.`,
      );
    let sock: Duplex;
    try {
      sock = await host.forwardOut(t.address, port);
    } catch (e) {
      if (e instanceof FluidError) throw e;
      throw new FluidError(
        'HOST_UNREACHABLE',
        `Host ${host.hostId} could not open a connection to ${t.address}:${port}: ${(e as Error).message}`,
      );
    }
    // Nagle's algorithm costs ~40 ms per small round trip: a direct socket gets TCP_NODELAY here. A
    // forwarded channel has no socket of its own: the jump connection's socket has TCP_NODELAY, and
    // OpenSSH's sshd sets it on the socket it opens towards the guest (checked with strace).
    const maybeSocket = sock as Partial<Socket>;
    if (typeof maybeSocket.setNoDelay === 'function') maybeSocket.setNoDelay(true);
    const principal = t.principal ?? t.user;

    return new Promise<Live>((resolve, reject) => {
      const client = new Client();
      let hostKeyError: FluidError | null = null;
      let cert: IssuedCertificate | null = null;
      let settled = false;
      const markClosed = () => {
        if (live.closed) return;
        live.closed = true;
        for (const l of [...live.closeListeners]) l();
      };
      const live: Live = {
        client,
        cert: null as unknown as IssuedCertificate,
        closed: false,
        sem: new Semaphore(this.opts.maxChannels),
        spare: null,
        closeListeners: new Set(),
        close: () => {
          markClosed();
          client.end();
          // A guest that went away never answers the FIN on a direct socket, which would then stay
          // open (and keep the process alive) through the kernel's retransmissions, for minutes.
          const t = setTimeout(() => sock.destroy(), SOCKET_CLOSE_GRACE_MS);
          t.unref();
          sock.once('close', () => clearTimeout(t));
        },
      };
      const fail = (err: FluidError) => {
        if (settled) return;
        settled = true;
        markClosed();
        client.end();
        sock.destroy();
        reject(err);
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        live.cert = cert!;
        resolve(live);
      });
      client.on('error', (e: Error & { level?: string }) => {
        if (settled) {
          markClosed();
          return;
        }
        if (hostKeyError) return fail(hostKeyError);
        if (e instanceof FluidError) return fail(e);
        if (e.level === 'client-authentication') return fail(this.authFailed(cert, principal));
        if (e.level === 'client-timeout')
          return fail(
            new FluidError(
              'HOST_UNREACHABLE',
              `The SSH handshake with ${this.describe()} timed out after ${this.opts.connectTimeoutMs} ms. Is sshd running in the sandbox?`,
            ),
          );
        fail(new FluidError('HOST_UNREACHABLE', `SSH to ${this.describe()} failed: ${e.message}`));
      });
      client.on('close', () => {
        markClosed();
        if (!settled)
          fail(
            hostKeyError ??
              new FluidError(
                'HOST_UNREACHABLE',
                `${this.describe()} closed the connection during the SSH handshake.`,
              ),
          );
      });
      sock.on('error', () => markClosed());
      // The far end stopped sending: a guest that went away under a forwarded connection (rebooted,
      // restored, destroyed) leaves the host's stream ended but not closed. ssh2 reports that as
      // 'end' only, and stops its keepalives, so nothing else would ever notice.
      client.on('end', () => {
        if (!settled)
          return fail(
            hostKeyError ??
              new FluidError(
                'HOST_UNREACHABLE',
                `${this.describe()} closed the connection during the SSH handshake.`,
              ),
          );
        live.close();
        sock.destroy();
      });

      const config: ConnectConfig = {
        sock,
        username: t.user,
        readyTimeout: this.opts.connectTimeoutMs,
        // A held connection outlives a pause: keepalives unanswered for a while would end it.
        keepaliveInterval: this.held ? 0 : this.opts.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void): void => {
          const seen: HostKeyInfo = { type: keyTypeOf(key), fingerprint: fingerprintOf(key) };
          if (this.pinned) {
            const ok = this.pinned.includes(seen.fingerprint);
            if (!ok) hostKeyError = this.mismatch(seen);
            verify(ok);
            return;
          }
          const hk = this.target.hostKey as {
            trustOnFirstUse: (k: HostKeyInfo) => boolean | Promise<boolean>;
          };
          Promise.resolve()
            .then(() => hk.trustOnFirstUse(seen))
            .then(
              (ok) => {
                if (ok) this.pinned = [seen.fingerprint];
                else
                  hostKeyError = new FluidError(
                    'DENIED',
                    `The host key of ${this.describe()} (${seen.fingerprint}, ${seen.type}) was not accepted, so Fluid did not connect.`,
                    { presented: seen.fingerprint },
                  );
                verify(!!ok);
              },
              (e: unknown) => {
                hostKeyError =
                  e instanceof FluidError
                    ? e
                    : new FluidError('INTERNAL', `Checking the host key failed: ${(e as Error).message}`);
                verify(false);
              },
            );
        },
        // Called after the host key is verified, so no certificate is issued for a refused host.
        authHandler: (_methodsLeft, _partial, next) => {
          if (cert) return next(false as never);
          try {
            cert = this.opts.ca.issue({
              principals: [principal],
              validitySeconds: this.opts.certValiditySeconds,
              keyId: `fluid:${t.sandboxId ?? t.key}:${purpose}:${t.user}`,
              purpose,
              sandboxId: t.sandboxId,
              sourceAddress: t.sourceAddress,
              permitPty,
            });
            next({
              type: 'publickey',
              username: t.user,
              key: certificateKey(cert.privateKey, cert.certificate),
            });
          } catch (e) {
            fail(
              e instanceof FluidError
                ? e
                : new FluidError('INTERNAL', `Could not issue an SSH certificate: ${(e as Error).message}`),
            );
            next(false as never);
          }
        },
      };
      client.connect(config);
    });
  }

  private mismatch(seen: HostKeyInfo): FluidError {
    return new FluidError(
      'HOSTKEY_MISMATCH',
      `The SSH host key of ${this.describe()} is not the one recorded for it: it presented ${seen.fingerprint} (${seen.type}), but ${this.pinned!.join(' or ')} is trusted. Something else may be answering at that address (a reused IP, or a man in the middle). Fluid refused to connect; check the sandbox's console before trusting a new key.`,
      { presented: seen.fingerprint, trusted: this.pinned, keyType: seen.type },
    );
  }

  private authFailed(cert: IssuedCertificate | null, principal: string): FluidError {
    const t = this.target;
    const certInfo = cert
      ? ` with certificate serial ${cert.serial} (principal ${principal}, valid ${cert.validAfter.toISOString()} to ${cert.validBefore.toISOString()})`
      : '';
    return new FluidError(
      'AUTH_FAILED',
      `${this.describe()} refused Fluid's login${certInfo}. Check that the guest's sshd trusts the Fluid CA (TrustedUserCAKeys with ${this.opts.ca.fingerprint()}), that user ${t.user} accepts principal ${principal} (AuthorizedPrincipalsFile), and that the guest's clock is right.`,
      { serial: cert?.serial ?? null, principal },
    );
  }

  // ---- idle tracking -----------------------------------------------------------------------

  private begin(): void {
    this.inFlight++;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }

  private end(): void {
    this.inFlight--;
    this.armIdle();
  }

  private armIdle(): void {
    if (this.inFlight === 0 && this.opts.idleTimeoutMs > 0 && !this.held && !this.idleTimer) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        if (this.inFlight === 0 && this.live && !this.live.closed) this.live.close();
      }, this.opts.idleTimeoutMs);
      this.idleTimer.unref();
    }
  }

  // ---- exec --------------------------------------------------------------------------------

  private async runRaw(script: string | Buffer, o: RawOptions): Promise<RawResult> {
    if (o.root) {
      const viaRoot = await this.onRootLogin((r) => r.runRaw(script, { ...o, root: false }));
      if (viaRoot) return viaRoot.value;
    }
    const cmd = runnerCommand(script, {
      timeoutMs: o.timeoutMs,
      killGraceMs: o.killGraceMs,
      root: o.root,
      runner: this.opts.runner,
    });
    if (o.signal?.aborted) throw cancelled('The command');
    this.begin();
    let spareDied = false;
    try {
      for (let attempt = 0; ; attempt++) {
        const live = await this.connection();
        const spare = cmd.spare && !spareDied ? await this.takeSpare(live) : null;
        const release = spare ? spare.release : await live.sem.acquire();
        if (o.signal?.aborted) {
          // An unused spare closes: its runner reads EOF and runs nothing.
          spare?.channel.close();
          release();
          throw cancelled('The command');
        }
        let channel: ClientChannel;
        try {
          channel =
            spare?.channel ??
            (await new Promise<ClientChannel>((resolve, reject) => {
              try {
                live.client.exec(cmd.command, (err, ch) => (err ? reject(err) : resolve(ch)));
              } catch (e) {
                reject(e as Error);
              }
            }));
        } catch (e) {
          release();
          // The connection died before the command started: nothing ran, so one retry is safe.
          if (attempt === 0 && (live.closed || /not connected/i.test((e as Error).message))) {
            live.close();
            continue;
          }
          // sshd refused the session (MaxSessions, counting sessions it has not finished closing):
          // nothing ran, so wait a moment and try again.
          if (attempt < 5 && /prohibited|open failed/i.test((e as Error).message)) {
            await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
            continue;
          }
          throw new FluidError(
            'HOST_UNREACHABLE',
            `Could not start a command on ${this.describe()}: ${(e as Error).message}`,
          );
        }
        // The channel's slot is free again only when sshd has closed the session too; releasing
        // earlier lets a burst of commands exceed sshd's MaxSessions.
        let closed = false;
        channel.once('close', () => (closed = true));
        try {
          // The command's header and script go out first (drive writes them at once), then the
          // request for the next command's spare, so that one is ready for a command right after.
          const running = this.drive(channel, live, cmd.preamble, o);
          if (cmd.spare) this.startSpare(live, cmd.command);
          const r = await running;
          if (spare && GuestSsh.diedWaiting(r)) {
            // Killed while it waited (by something in the guest), before it read anything.
            spareDied = true;
            continue;
          }
          if (spare) this.spareRuns++;
          return r;
        } finally {
          // A slot freed with no spare on the connection (every slot was in use) starts one.
          const free = () => {
            release();
            if (cmd.spare) this.startSpare(live, cmd.command);
          };
          if (closed) free();
          else {
            const t = setTimeout(free, CHANNEL_CLOSE_WAIT_MS);
            channel.once('close', () => {
              clearTimeout(t);
              free();
            });
          }
        }
      }
    } finally {
      this.end();
    }
  }

  /**
   * The runner died of TERM, HUP or INT without a byte of output: it sets traps for those before it
   * starts the script (runner.ts), so it died before it ran anything, and running the command again
   * is safe. A KILL could have come at any time and is reported as it is.
   */
  private static diedWaiting(r: RawResult): boolean {
    return (
      r.exitCode === null &&
      !r.timedOut &&
      /^SIG(TERM|HUP|INT)$/.test(r.signal ?? '') &&
      r.stdout.total === 0 &&
      r.stderr.total === 0
    );
  }

  /** The connection's spare, if it is (or becomes) a live channel; it is the caller's from now on. */
  private async takeSpare(live: Live): Promise<{ channel: ClientChannel; release: () => void } | null> {
    const spare = live.spare;
    if (!spare || spare.gone || live.closed) return null;
    live.spare = null;
    spare.taken = true;
    const channel = await spare.channel;
    if (channel && !spare.gone && !live.closed) return { channel, release: spare.release };
    spare.release();
    return null;
  }

  /**
   * Start a spare on the connection unless it has one or every channel slot is in use. Called for
   * commands whose line is RUNNER_COMMAND only (runnerCommand's `spare`), never the classic runner.
   */
  private startSpare(live: Live, command: string): void {
    if (!this.opts.spare || live.spare || live.closed || this.disposed) return;
    const release = live.sem.tryAcquire();
    if (!release) return;
    const spare: Spare = { channel: Promise.resolve(null), gone: false, taken: false, release };
    const gone = () => {
      if (spare.gone) return;
      spare.gone = true;
      if (live.spare === spare) live.spare = null;
      if (!spare.taken) release();
    };
    spare.channel = new Promise<ClientChannel | null>((resolve) => {
      try {
        live.client.exec(command, (err, ch) => {
          if (err) {
            gone();
            return resolve(null);
          }
          ch.once('close', gone);
          ch.on('error', () => {
            /* surfaces as close */
          });
          resolve(ch);
        });
      } catch {
        gone();
        resolve(null);
      }
    });
    live.spare = spare;
  }

  private drive(channel: ClientChannel, live: Live, preamble: Buffer, o: RawOptions): Promise<RawResult> {
    return new Promise<RawResult>((resolve, reject) => {
      const started = performance.now();
      let exit: { code: number | null; signal: string | null } | null = null;
      let done = false;
      let gaveUp = false;
      let aborted = false;
      const timers = new Set<NodeJS.Timeout>();
      const later = (ms: number, fn: () => void) => {
        const t = setTimeout(() => {
          timers.delete(t);
          fn();
        }, ms);
        timers.add(t);
        return t;
      };
      let quiet: NodeJS.Timeout | null = null;

      const finish = (err?: FluidError) => {
        if (done) return;
        done = true;
        for (const t of timers) clearTimeout(t);
        o.signal?.removeEventListener('abort', onAbort);
        live.closeListeners.delete(onConnectionClosed);
        try {
          channel.close();
        } catch {
          /* already closed */
        }
        if (err) return reject(err);
        if (aborted) return reject(cancelled('The command'));
        if (!exit && !gaveUp)
          return reject(
            new FluidError(
              'HOST_UNREACHABLE',
              `The command on ${this.describe()} ended without an exit status (sshd or the connection went away). It may or may not have completed.`,
            ),
          );
        const timedOut = gaveUp || exit?.signal === `SIG${TIMEOUT_SIGNAL}`;
        resolve({
          exitCode: timedOut ? null : (exit?.code ?? null),
          signal: timedOut ? null : (exit?.signal ?? null),
          stdout: o.stdout,
          stderr: o.stderr,
          timedOut,
          durationMs: Math.round(performance.now() - started),
        });
      };
      const bumpQuiet = () => {
        if (!exit) return;
        if (quiet) {
          clearTimeout(quiet);
          timers.delete(quiet);
        }
        quiet = later(this.opts.exitGraceMs, () => finish());
      };

      channel.on('data', (c: Buffer) => {
        o.stdout.push(c);
        o.onStdout?.(c);
        bumpQuiet();
      });
      channel.stderr.on('data', (c: Buffer) => {
        o.stderr.push(c);
        o.onStderr?.(c);
        bumpQuiet();
      });
      channel.on('exit', (code: number | null, signal?: string) => {
        exit = { code: code ?? null, signal: signal ?? null };
        // Background processes may hold stdout open: stop waiting once output goes quiet.
        bumpQuiet();
        later(EXIT_WAIT_MAX_MS, () => finish());
      });
      channel.on('close', () => finish());
      channel.on('error', () => {
        /* surfaces as close */
      });

      const onConnectionClosed = () => {
        if (!exit)
          finish(
            new FluidError(
              'HOST_UNREACHABLE',
              `The connection to ${this.describe()} dropped while a command was running. It may or may not have completed.`,
            ),
          );
        else finish();
      };
      live.closeListeners.add(onConnectionClosed);
      if (live.closed) onConnectionClosed();

      // The remote runner enforces the timeout; this only covers a guest that stopped answering.
      if (o.timeoutMs > 0)
        later(o.timeoutMs + o.killGraceMs + BACKSTOP_SLACK_MS, () => {
          gaveUp = true;
          signalChannel(channel, 'KILL');
          finish();
        });

      const onAbort = () => {
        if (aborted || done) return;
        aborted = true;
        // sshd delivers it to the session's process group; the runner (directly, or relayed by
        // sudo) traps TERM, kills the script's process group, then exits.
        signalChannel(channel, 'TERM');
        later(o.killGraceMs + 2_000, () => finish());
      };
      o.signal?.addEventListener('abort', onAbort, { once: true });

      channel.write(preamble);
      if (o.stdin !== undefined && o.stdin.length) channel.write(o.stdin);
      channel.end();
    });
  }

  private static checkRunner(r: RawResult, root: boolean, who: string): void {
    if (r.exitCode === 125 && /fluid-exec: the script arrived incomplete/.test(r.stderr.toText()))
      throw new FluidError(
        'HOST_UNREACHABLE',
        `The script did not arrive complete on ${who}; it was not run.`,
      );
    if (root && r.exitCode === 1 && SUDO_REFUSED.test(r.stderr.toText()) && r.stdout.total === 0)
      throw new FluidError(
        'DENIED',
        `The login user on ${who} cannot use sudo without a password: ${r.stderr.toText().trim().slice(0, 300)}. Give it passwordless sudo in the sandbox image (e.g. /etc/sudoers.d/fluid: "<user> ALL=(ALL) NOPASSWD:ALL").`,
      );
  }

  /**
   * Run a bash script exactly as written (multi-line, heredocs, quotes, $VARS), with a timeout that
   * kills its process tree and capped output.
   */
  async exec(script: string, opts: GuestExecOptions = {}): Promise<GuestExecResult> {
    const cap = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    const r = await this.runRaw(script, {
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      killGraceMs: opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      root: !!opts.root,
      stdin: opts.stdin,
      signal: opts.signal,
      onStdout: opts.onStdout,
      onStderr: opts.onStderr,
      stdout: new HeadTailBuffer(cap),
      stderr: new HeadTailBuffer(cap),
    });
    GuestSsh.checkRunner(r, !!opts.root, this.describe());
    return {
      exitCode: r.exitCode,
      signal: r.signal,
      stdout: r.stdout.toText(),
      stderr: r.stderr.toText(),
      truncated: r.stdout.truncated || r.stderr.truncated,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
    };
  }

  /**
   * Log in and start the connection's spare runner without running anything, so that the next
   * command finds both ready: a create's first login, where the spare starts while the host records
   * the baseline. `root` logs in the way a root command would (as the target's root user, or the
   * login user when the guest refuses root).
   */
  async prepare(opts: { root?: boolean } = {}): Promise<void> {
    if (opts.root && (await this.onRootLogin((r) => r.prepare()))) return;
    const live = await this.connection();
    const cmd = runnerCommand('', { root: opts.root, runner: this.opts.runner });
    if (cmd.spare) this.startSpare(live, cmd.command);
  }

  private async runFileScript(
    script: string,
    what: string,
    o: { stdin?: Buffer; stdoutCap: number; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<RawResult> {
    const timeoutMs = o.timeoutMs ?? FILE_TIMEOUT_MS;
    const r = await this.runRaw(script, {
      timeoutMs,
      killGraceMs: DEFAULT_KILL_GRACE_MS,
      root: true,
      stdin: o.stdin,
      signal: o.signal,
      stdout: new HeadTailBuffer(o.stdoutCap, 1),
      stderr: new HeadTailBuffer(DIAG_CAP, 1),
    });
    GuestSsh.checkRunner(r, true, this.describe());
    if (r.timedOut)
      throw new FluidError('TIMEOUT', `${what} on ${this.describe()} timed out after ${timeoutMs} ms.`);
    return r;
  }

  private fileError(r: RawResult, what: string, path: string): FluidError {
    const msg = r.stderr.toText().trim().slice(0, 2000);
    switch (r.exitCode) {
      case FILE_EXIT.notFound:
        return new FluidError('NOT_FOUND', `${path} does not exist on ${this.describe()}.`);
      case FILE_EXIT.isDirectory:
        return new FluidError('VALIDATION', `${path} is a directory on ${this.describe()}.`);
      case FILE_EXIT.noParent:
        return new FluidError(
          'NOT_FOUND',
          `${msg} on ${this.describe()}. Check the path, or pass createDirs to create it.`,
        );
      case FILE_EXIT.changed:
        return new FluidError(
          'CONFLICT',
          `${path} changed on ${this.describe()} between reading and writing it; nothing was written. Read it again and retry.`,
        );
      default:
        return new FluidError(
          'INTERNAL',
          `${what} ${path} on ${this.describe()} failed (exit ${r.exitCode ?? r.signal}): ${msg || 'no error output'}`,
        );
    }
  }

  /** The file's bytes, read as root. Larger than maxBytes is an error that says the size. */
  async readFile(path: string, opts: ReadFileOptions = {}): Promise<Buffer> {
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
    const r = await this.runFileScript(readScript(path, maxBytes), `Reading ${path}`, {
      stdoutCap: maxBytes + 1,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
    if (r.exitCode !== 0) throw this.fileError(r, 'Reading', path);
    if (r.stdout.total > maxBytes) {
      const size = Number(/size=(\d+)/.exec(r.stderr.toText())?.[1] ?? 0);
      throw new FluidError(
        'VALIDATION',
        `${path} is ${size > maxBytes ? `${size} bytes` : 'larger than that'}, more than the ${maxBytes}-byte limit. Read parts of it with exec (head -c, tail -c, sed -n) or raise maxBytes.`,
        { size: size > maxBytes ? size : null, maxBytes },
      );
    }
    return r.stdout.toBuffer();
  }

  /**
   * The first `maxBytes` of a file and its whole size: a preview of a file too large to read whole.
   * A multibyte UTF-8 character cut at the end is left out, so text stays text.
   */
  async readHead(
    path: string,
    maxBytes: number,
    opts: Omit<ReadFileOptions, 'maxBytes'> = {},
  ): Promise<{ data: Buffer; size: number; truncated: boolean }> {
    const r = await this.runFileScript(readScript(path, maxBytes), `Reading ${path}`, {
      stdoutCap: maxBytes + 1,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
    // head -c stops early and the file's reader may see SIGPIPE: only the script's own codes matter.
    if (r.exitCode !== 0) throw this.fileError(r, 'Reading', path);
    const size = Number(/size=(\d+)/.exec(r.stderr.toText())?.[1] ?? r.stdout.total);
    const all = r.stdout.toBuffer();
    if (all.length <= maxBytes) return { data: all, size: Math.max(size, all.length), truncated: false };
    let data = all.subarray(0, maxBytes);
    // Drop a partial UTF-8 sequence at the end (at most 3 bytes: a lead byte and its continuations).
    for (let back = 1; back <= 3 && back <= data.length; back++) {
      const b = data[data.length - back]!;
      if ((b & 0xc0) === 0x80) continue;
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
      if (need > back) data = data.subarray(0, data.length - back);
      break;
    }
    return { data, size, truncated: true };
  }

  /** One level of a directory as root: names (any bytes), types, sizes, modes, owners, link targets. */
  async listDir(
    path: string,
    opts: { maxEntries?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<DirListing> {
    const maxEntries = opts.maxEntries ?? 5000;
    // A record is ~60 bytes plus the name and link target; leave room for long names.
    const cap = Math.min(64 * 1024 * 1024, 1024 + maxEntries * 8600);
    const r = await this.runFileScript(listDirScript(path), `Listing ${path}`, {
      stdoutCap: cap,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
    if (r.exitCode === FILE_EXIT.notDirectory)
      throw new FluidError('VALIDATION', `${path} is not a directory on ${this.describe()}.`, {
        notDirectory: true,
      });
    if (r.exitCode === FILE_EXIT.noFindPrintf)
      throw new FluidError(
        'UNAVAILABLE',
        `Cannot list ${path} on ${this.describe()}: ${r.stderr.toText().trim()}. Use the terminal (ls -la).`,
      );
    if (r.exitCode !== 0) throw this.fileError(r, 'Listing', path);
    return parseListing(r.stdout.toBuffer(), maxEntries);
  }

  /** Replace a file atomically as root (temp file in the same directory, then rename). */
  async writeFile(path: string, data: Buffer | string, opts: WriteFileOptions = {}): Promise<void> {
    return this.write(path, data, opts);
  }

  private async write(
    path: string,
    data: Buffer | string,
    opts: WriteFileOptions & { expectSha256?: string },
  ): Promise<void> {
    validatePath(path);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
    if (buf.length > maxBytes)
      throw new FluidError(
        'VALIDATION',
        `The content is ${buf.length} bytes, more than the ${maxBytes}-byte limit for writing ${path}.`,
      );
    const script = writeScript(path, buf.length, opts);
    const r = await this.runFileScript(script, `Writing ${path}`, {
      stdin: buf,
      stdoutCap: DIAG_CAP,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
    if (r.exitCode !== 0) throw this.fileError(r, 'Writing', path);
  }

  /**
   * Replace the only occurrence of oldStr. None is NOT_FOUND; several is CONFLICT with the count,
   * so the caller adds context. The file keeps its owner and mode; a concurrent change is CONFLICT.
   */
  async editFile(
    path: string,
    oldStr: string,
    newStr: string,
    opts: EditFileOptions = {},
  ): Promise<{ line: number }> {
    const before = await this.readFile(path, opts);
    const { content, line } = applyEdit(path, before, oldStr, newStr);
    await this.write(path, content, {
      maxBytes: Math.max(opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES, content.length),
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      expectSha256: sha256Hex(before),
    });
    return { line };
  }

  // ---- shell -------------------------------------------------------------------------------

  /** An interactive login shell on a PTY, on its own connection (certificate with permit-pty). */
  async shell(opts: ShellOptions = {}): Promise<GuestShell> {
    if (this.disposed)
      throw new FluidError('UNAVAILABLE', `The SSH session to ${this.describe()} is closed.`);
    const cols = opts.cols ?? 80;
    const rows = opts.rows ?? 24;
    validateSize(cols, rows);
    const live = await this.open('guest-shell', true);
    let channel: ClientChannel;
    try {
      channel = await new Promise<ClientChannel>((resolve, reject) =>
        live.client.shell({ term: opts.term ?? 'xterm-256color', cols, rows }, (err, ch) =>
          err ? reject(err) : resolve(ch),
        ),
      );
    } catch (e) {
      live.close();
      throw new FluidError(
        'HOST_UNREACHABLE',
        `Could not start a shell on ${this.describe()}: ${(e as Error).message}`,
      );
    }
    const session = new GuestShellSession(channel, live, () => this.shells.delete(session));
    this.shells.add(session);
    return session;
  }

  /** The session for root commands (target.rootUser), made on first use. */
  /**
   * `work` on the root login (target.rootUser) for a root command; null when there is none or the
   * guest refuses it. A refusal at login (nothing ran) is remembered: root commands then use sudo on
   * the login user's connection.
   */
  private async onRootLogin<T>(work: (root: GuestSsh) => Promise<T>): Promise<{ value: T } | null> {
    if (!this.currentTarget.rootUser || this.rootRefused) return null;
    try {
      return { value: await work(this.asRoot()) };
    } catch (e) {
      if (!(e instanceof FluidError && e.code === 'AUTH_FAILED')) throw e;
      this.rootRefused = true;
      this.rootSession?.close();
      this.rootSession = null;
      return null;
    }
  }

  private asRoot(): GuestSsh {
    if (this.disposed)
      throw new FluidError('UNAVAILABLE', `The SSH session to ${this.describe()} is closed.`);
    if (!this.rootSession) {
      const t = this.currentTarget;
      this.rootSession = new GuestSsh(
        {
          ...t,
          user: t.rootUser!,
          principal: t.principal ?? t.user,
          rootUser: undefined,
          // The same sshd: the key this session trusts now (after a trust-on-first-use, the accepted one).
          hostKey: this.pinned ? { fingerprint: this.pinned } : t.hostKey,
        },
        this.opts,
      );
      if (this.held) this.rootSession.hold(true);
    }
    return this.rootSession;
  }

  /** Disconnect everything; later calls fail. */
  close(): void {
    this.disposed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.live?.close();
    this.rootSession?.close();
    for (const s of [...this.shells]) s.close();
  }

  /** Drop the pooled connections now (e.g. after a guest reboot); the next call reconnects. */
  disconnect(): void {
    this.live?.close();
    this.rootSession?.disconnect();
  }
}

/**
 * Send a signal request on a session channel. ssh2's `channel.signal()` silently does nothing once
 * our side has sent EOF, which exec does right after the script and stdin; the request is still
 * valid in SSH, so it goes through ssh2's protocol object directly (ssh2 is pinned, see ssh2-cert.ts).
 */
function signalChannel(channel: ClientChannel, name: string): boolean {
  const c = channel as unknown as {
    type?: string;
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
  };
  const proto = c._client?._protocol;
  const out = c.outgoing;
  if (
    c.type !== 'session' ||
    !out ||
    (out.state !== 'open' && out.state !== 'eof') ||
    typeof proto?.signal !== 'function'
  )
    return false;
  try {
    proto.signal(out.id, name);
    return true;
  } catch {
    return false;
  }
}

function validateSize(cols: number, rows: number): void {
  if (
    !Number.isInteger(cols) ||
    !Number.isInteger(rows) ||
    cols < 1 ||
    rows < 1 ||
    cols > 1000 ||
    rows > 1000
  )
    throw new FluidError('VALIDATION', `Invalid terminal size ${cols}x${rows}.`);
}

class GuestShellSession implements GuestShell {
  private readonly channel: ClientChannel;
  private readonly live: Live;
  private readonly dataListeners = new Set<(chunk: Buffer) => void>();
  private readonly exitListeners = new Set<(exit: ShellExit) => void>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private exit: ShellExit | null = null;
  private isClosed = false;

  constructor(channel: ClientChannel, live: Live, onGone: () => void) {
    this.channel = channel;
    this.live = live;
    const onData = (c: Buffer) => {
      if (this.dataListeners.size) for (const l of this.dataListeners) l(c);
      else if (this.pendingBytes < SHELL_BUFFER_MAX) {
        this.pending.push(c);
        this.pendingBytes += c.length;
      }
    };
    channel.on('data', onData);
    channel.stderr.on('data', onData);
    let status: ShellExit = { exitCode: null, signal: null };
    channel.on('exit', (code: number | null, signal?: string) => {
      status = { exitCode: code ?? null, signal: signal ?? null };
    });
    channel.on('error', () => {});
    const gone = () => {
      if (this.exit) return;
      this.isClosed = true;
      this.exit = status;
      live.close();
      onGone();
      for (const l of this.exitListeners) l(status);
    };
    channel.on('close', gone);
    live.closeListeners.add(gone);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  write(data: string | Buffer): void {
    if (this.isClosed) throw new FluidError('UNAVAILABLE', 'The shell has ended.');
    this.channel.write(data);
  }

  resize(cols: number, rows: number): void {
    validateSize(cols, rows);
    if (!this.isClosed) this.channel.setWindow(rows, cols, 0, 0);
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    this.dataListeners.add(listener);
    if (this.pending.length) {
      const buffered = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      listener(buffered);
    }
    return () => this.dataListeners.delete(listener);
  }

  onExit(listener: (exit: ShellExit) => void): () => void {
    if (this.exit) {
      const e = this.exit;
      queueMicrotask(() => listener(e));
      return () => {};
    }
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  close(): void {
    if (this.isClosed) return;
    try {
      this.channel.close();
    } catch {
      /* ignore */
    }
    this.live.close();
  }
}

/** One pooled GuestSsh per key (e.g. sandbox id). */
export class GuestSshPool {
  private readonly opts: GuestSshOptions;
  private readonly guests = new Map<string, GuestSsh>();

  constructor(opts: GuestSshOptions) {
    this.opts = opts;
  }

  /** The session for target.key, created on first use; replaced if the target changed. */
  get(target: GuestTarget): GuestSsh {
    const existing = this.guests.get(target.key);
    if (existing && sameTarget(existing.target, target)) {
      if (existing.target.host !== target.host) existing.useHost(target.host);
      return existing;
    }
    existing?.close();
    const g = new GuestSsh(target, this.opts);
    this.guests.set(target.key, g);
    return g;
  }

  has(key: string): boolean {
    return this.guests.has(key);
  }

  get size(): number {
    return this.guests.size;
  }

  close(key: string): void {
    this.guests.get(key)?.close();
    this.guests.delete(key);
  }

  closeAll(): void {
    for (const g of this.guests.values()) g.close();
    this.guests.clear();
  }
}

function sameTarget(a: GuestTarget, b: GuestTarget): boolean {
  const fp = (t: GuestTarget) =>
    'fingerprint' in t.hostKey ? [t.hostKey.fingerprint].flat().join(',') : 'tofu';
  // A function resolves the current host connection each time; objects are the same host when their
  // ids match (a re-established host connection is a new object).
  const hostOf = (t: GuestTarget) => (typeof t.host === 'function' ? 'resolver' : `id:${t.host.hostId}`);
  return (
    hostOf(a) === hostOf(b) &&
    a.address === b.address &&
    (a.port ?? 22) === (b.port ?? 22) &&
    a.user === b.user &&
    (a.principal ?? a.user) === (b.principal ?? b.user) &&
    a.sourceAddress === b.sourceAddress &&
    fp(a) === fp(b)
  );
}
