/**
 * Runs the egress proxy on a host and speaks its control protocol.
 *
 * The proxy (python3, standard library) is started through `HostConnection.spawn`; its source goes
 * down the process's own stdin (a length line, then the script), followed by control messages. So
 * nothing is installed on the host, and the proxy dies with the connection: when stdin closes it exits.
 *
 * The controller sends the allowlists (`update`), forwards `ask`s to `decide` and the answers back,
 * hands every `event` to `onEvent` (for the audit log), pings the proxy so a half-dead connection
 * cannot leave it running, and restarts it with backoff if it dies while Fluid is up. It gives up
 * (state `closed`) when the connection itself is gone.
 */
import type { HostConnection, HostProcess } from '../hosts/connection.ts';
import { shq } from '../hosts/connection.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { tryParseDestination } from './destinations.ts';
import {
  encodeControl,
  parseProxyMessage,
  type AskMessage,
  type ControlMessage,
  type EgressDecision,
  type EgressReason,
  type EventDecision,
  type EventMessage,
  type ProxyMessage,
  type RoutesMessage,
  type StatusMessage,
} from './protocol.ts';
import { proxyScript } from './proxy-script.ts';

export type { EgressDecision, EgressReason, EventDecision, StatusMessage } from './protocol.ts';

/** `decide`'s full answer: the decision, and the approval request the refused client is told about. */
export interface EgressVerdict {
  decision: EgressDecision;
  approvalId?: string;
  note?: string;
}

/** A destination the proxy does not know: someone (a human, a policy) must decide. */
export interface EgressRequest {
  sandboxId: string;
  /** The sandbox's IP address as the proxy sees it. */
  client: string;
  host: string;
  port: number;
  /** CONNECT for tunnels (https), or the plain HTTP method. */
  method: string;
}

/** One decision the proxy made (or a request it refused), for the audit log. */
export interface EgressEvent {
  sandboxId: string | null;
  client: string;
  host: string;
  port: number;
  method: string;
  decision: EventDecision;
  reason: EgressReason;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  status?: number;
  path?: string;
  askId?: string;
  error?: string;
  /** What failed upstream: dns, dns-timeout, refused, timeout, unreachable, connect. */
  failure?: string;
  /** The approval request the client was told about. */
  approvalId?: string;
  /** Proxy request id (unique within one proxy process). */
  requestId?: string;
}

/** What the running proxy serves for this controller (see RoutesMessage). */
export interface EgressRoutes {
  served: ReadonlySet<string>;
  conflicts: RoutesMessage['conflicts'];
}

export type EgressLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export type EgressState = 'idle' | 'starting' | 'running' | 'restarting' | 'stopped' | 'closed';

export interface EgressControllerOptions {
  conn: HostConnection;
  /** Address to listen on: the sandbox bridge's gateway IP (e.g. 10.239.0.1). */
  listenAddress: string;
  /** TCP port (e.g. 3128). 0 picks a free one (tests); restarts then keep the port first obtained. */
  port: number;
  /**
   * Called for each `ask`. `signal` aborts when the proxy stops waiting for this answer (it timed
   * out and denied, the allowlist now covers it, the sandbox went away, the proxy restarted or stopped).
   * An approval may outlive the signal: approving it later should add the destination to the allowlist.
   * Answer `pending` (with the approval's id) to refuse the request now and tell the client that a
   * person must approve. A throw or rejection counts as deny.
   */
  decide: (req: EgressRequest, signal: AbortSignal) => Promise<EgressDecision | EgressVerdict>;
  onEvent: (e: EgressEvent) => void;
  /** Called when the set of addresses the proxy serves for this controller changes. */
  onRoutes?: (r: EgressRoutes) => void;
  log: EgressLog;
  /** Called once when the controller gives up because the host connection is gone. */
  onClose?: (reason: string) => void;
  /** How long the proxy waits for `decide` before denying. Default 60 s. */
  askTimeoutMs?: number;
  /** Ping interval; the proxy exits when it hears nothing for 4.5 intervals. 0 disables. Default 10 s. */
  heartbeatMs?: number;
  /** How long start() waits for the proxy to listen. Default 20 s. */
  startTimeoutMs?: number;
  /** Restart backoff: first delay and cap. Default 500 ms … 30 s. */
  restartDelayMs?: { min: number; max: number };
  /** Interpreter on the host. Default python3. */
  python?: string;
  /** TESTS ONLY: let names and IPs on loopback through (a sandbox must never reach the host's loopback). */
  allowLoopback?: boolean;
  /**
   * Let allowlisted names resolve to private networks (RFC 1918, 100.64/10, fc00::/7). Off by default:
   * then only an exact IP entry opens a private address.
   */
  allowPrivate?: boolean;
}

export const PYTHON_MISSING_MESSAGE =
  'python3 is required on the host for sandbox egress; install it (apt install python3)';

/** Short Python program that reads the real script from stdin (a length line, then the source). */
const BOOTSTRAP =
  'import sys;v=sys.version_info;v>=(3,9) or sys.exit("fluid-egress: Python 3.9 or newer is required, found %d.%d"%v[:2]);' +
  'n=int(sys.stdin.buffer.readline());exec(compile(sys.stdin.buffer.read(n),"fluid-egress.py","exec"),{"__name__":"__main__"})';

export interface ProxyCommandOptions {
  listenAddress: string;
  port: number;
  askTimeoutMs: number;
  heartbeatTimeoutMs: number;
  python?: string;
  allowLoopback?: boolean;
  allowPrivate?: boolean;
  /** Print the status of the proxy serving this address and exit (see probeEgressProxy). */
  probe?: boolean;
}

/** The shell command that starts the proxy; feed `proxyStdinPreamble()` to its stdin first. */
export function proxyCommand(o: ProxyCommandOptions): string {
  const py = o.python ?? 'python3';
  if (!/^[A-Za-z0-9_./-]+$/.test(py))
    throw new FluidError('VALIDATION', `Invalid python interpreter "${py}".`);
  const args = [
    '--listen',
    o.listenAddress,
    '--port',
    String(o.port),
    '--ask-timeout',
    String(o.askTimeoutMs / 1000),
    '--heartbeat-timeout',
    String(o.heartbeatTimeoutMs / 1000),
  ];
  if (o.allowLoopback) args.push('--allow-loopback');
  if (o.allowPrivate) args.push('--allow-private');
  if (o.probe) args.push('--probe');
  return (
    `command -v ${py} >/dev/null 2>&1 || { echo 'fluid-egress: ${py} not found' >&2; exit 127; }; ` +
    `exec ${py} -u -c ${shq(BOOTSTRAP)} ${args.map(shq).join(' ')}`
  );
}

/** What the bootstrap expects on stdin before the control messages. */
export function proxyStdinPreamble(): string {
  const src = proxyScript();
  return `${Buffer.byteLength(src)}\n${src}`;
}

/** Keep only valid allowlist entries; report the others. */
function cleanAllow(allowByIp: Record<string, readonly string[]>, log: EgressLog): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [ip, entries] of Object.entries(allowByIp)) {
    out[ip] = entries.filter((e) => {
      if (tryParseDestination(e)) return true;
      log.warn('egress: ignoring an invalid allowlist entry', { client: ip, entry: e });
      return false;
    });
  }
  return out;
}

class Tail {
  private text = '';
  private readonly cap: number;
  constructor(cap: number) {
    this.cap = cap;
  }
  push(s: string): void {
    this.text = (this.text + s).slice(-this.cap);
  }
  toString(): string {
    return this.text;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

export class EgressController {
  private readonly o: EgressControllerOptions;
  private readonly askTimeoutMs: number;
  private readonly heartbeatMs: number;
  private state_: EgressState = 'idle';
  private proc: HostProcess | null = null;
  private generation = 0;
  private port: number;
  private listen_: string | null = null;
  private shared_ = false;
  private routes_: EgressRoutes | null = null;
  private allow: Record<string, string[]> = {};
  private sandboxes: Record<string, string> = {};
  private readonly asks = new Map<string, AbortController>();
  private startPromise: Promise<{ listen: string }> | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private restartAttempt = 0;
  private upSince = 0;
  private closedNotified = false;
  private configSeq = 0;
  private configWaiters: Array<{ seq: number; resolve: () => void; timer: NodeJS.Timeout }> = [];

  constructor(opts: EgressControllerOptions) {
    this.o = opts;
    this.port = opts.port;
    this.askTimeoutMs = opts.askTimeoutMs ?? 60_000;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
  }

  /** True while a proxy process is up and listening. */
  get running(): boolean {
    return this.state_ === 'running';
  }

  get state(): EgressState {
    return this.state_;
  }

  /** ip:port the proxy listens on (null until it is ready). */
  get listen(): string | null {
    return this.listen_;
  }

  /** True when this controller joined a proxy that another Fluid process runs for the same bridge. */
  get shared(): boolean {
    return this.shared_;
  }

  /**
   * Which sandbox addresses the running proxy serves for this controller, and which it cannot (another
   * controller claims them for another sandbox). Null until the proxy reported it.
   */
  get routes(): EgressRoutes | null {
    return this.routes_;
  }

  /** Start the proxy and wait until it listens. Idempotent while running. */
  start(): Promise<{ listen: string }> {
    if (this.state_ === 'running' && this.listen_) return Promise.resolve({ listen: this.listen_ });
    if (this.startPromise) return this.startPromise;
    if (this.state_ === 'closed' || this.o.conn.closed)
      return Promise.reject(new FluidError('HOST_UNREACHABLE', 'The host connection is closed.'));
    this.clearRestart();
    this.state_ = 'starting';
    this.startPromise = this.launch()
      .then((listen) => ({ listen }))
      .catch((err: unknown) => {
        if (this.state_ === 'starting') this.state_ = this.o.conn.closed ? 'closed' : 'stopped';
        throw err;
      })
      .finally(() => {
        this.startPromise = null;
      });
    return this.startPromise;
  }

  /**
   * Replace the allowlists (client IP → entries) and the client IP → sandbox map. Resolves once the
   * running proxy has applied it (at once when none runs: the next start sends it). Never rejects.
   */
  update(allowByIp: Record<string, readonly string[]>, sandboxByIp: Record<string, string>): Promise<void> {
    this.allow = cleanAllow(allowByIp, this.o.log);
    this.sandboxes = { ...sandboxByIp };
    if (!this.proc) return Promise.resolve();
    const seq = this.sendConfig();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.o.log.warn('egress: the proxy did not acknowledge a config update in time');
        this.settleConfig(seq, true);
      }, 10_000);
      timer.unref?.();
      this.configWaiters.push({ seq, resolve, timer });
    });
  }

  /** Stop the proxy (no restart). Safe to call at any time. */
  async stop(): Promise<void> {
    if (this.state_ !== 'closed') this.state_ = 'stopped';
    this.generation++;
    this.clearRestart();
    this.clearPing();
    this.abortAsks();
    this.settleConfig(Infinity);
    const p = this.proc;
    this.proc = null;
    this.listen_ = null;
    this.routes_ = null;
    if (!p) return;
    try {
      p.stdin.write(encodeControl({ type: 'shutdown' }));
      p.stdin.end();
    } catch {
      /* already gone */
    }
    const done = await Promise.race([p.exited.then(() => true), sleep(3000).then(() => false)]);
    if (!done) {
      p.kill();
      await Promise.race([p.exited, sleep(2000)]);
    }
  }

  // ------------------------------------------------------------------ internals

  private sendConfig(): number {
    const seq = ++this.configSeq;
    this.send({ type: 'config', seq, allow: this.allow, sandboxes: this.sandboxes });
    return seq;
  }

  /** Resolve update() promises up to seq (only that one when `only`). */
  private settleConfig(seq: number, only = false): void {
    this.configWaiters = this.configWaiters.filter((w) => {
      if (only ? w.seq !== seq : w.seq > seq) return true;
      clearTimeout(w.timer);
      w.resolve();
      return false;
    });
  }

  private send(msg: ControlMessage): void {
    const p = this.proc;
    if (!p) return;
    try {
      p.stdin.write(encodeControl(msg));
    } catch (e) {
      this.o.log.debug('egress: control write failed', { error: String(e) });
    }
  }

  private launch(): Promise<string> {
    const gen = ++this.generation;
    const cmd = proxyCommand({
      listenAddress: this.o.listenAddress,
      port: this.port,
      askTimeoutMs: this.askTimeoutMs,
      heartbeatTimeoutMs: this.heartbeatMs > 0 ? this.heartbeatMs * 4.5 : 0,
      python: this.o.python,
      allowLoopback: this.o.allowLoopback,
    });
    const proc = this.o.conn.spawn(cmd);
    this.proc = proc;
    const stderr = new Tail(8192);
    let lastError = '';
    proc.stderr.setEncoding?.('utf8');
    proc.stderr.on('data', (c: string | Buffer) => {
      const s = c.toString();
      stderr.push(s);
      this.o.log.debug('egress proxy stderr', { text: s.slice(0, 2000) });
    });
    proc.stdout.on('error', () => {});
    proc.stderr.on('error', () => {});

    return new Promise<string>((resolve, reject) => {
      /** The proxy said ready (from then on its exit is a crash to recover from). */
      let ready = false;
      /** This promise is settled (ready, failed, or timed out). */
      let settled = false;
      const startTimeoutMs = this.o.startTimeoutMs ?? 20_000;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        const tail = stderr.toString().trim().slice(-500);
        reject(
          new FluidError(
            'TIMEOUT',
            `The egress proxy did not start within ${startTimeoutMs} ms.${tail ? ` ${tail}` : ''}`,
          ),
        );
        this.abandon(proc);
      }, startTimeoutMs);

      splitLines(proc.stdout, (line) => {
        if (gen !== this.generation) return;
        const msg = parseProxyMessage(line);
        if (!msg) {
          if (line.trim()) this.o.log.debug('egress: unparsable proxy output', { line: line.slice(0, 500) });
          return;
        }
        if (msg.type === 'ready' && !settled) {
          ready = true;
          settled = true;
          clearTimeout(timer);
          this.listen_ = msg.listen;
          this.shared_ = msg.shared === true;
          const port = Number(msg.listen.slice(msg.listen.lastIndexOf(':') + 1));
          if (port > 0) this.port = port;
          this.state_ = 'running';
          this.upSince = Date.now();
          this.startPing(gen);
          this.o.log.info(msg.shared ? 'egress proxy joined' : 'egress proxy ready', {
            listen: msg.listen,
            pid: msg.pid,
            python: msg.python,
          });
          resolve(msg.listen);
          return;
        }
        if (msg.type === 'error' && !ready) lastError = msg.message;
        this.handle(gen, msg);
      });

      void proc.exited.then((code) => {
        if (ready) return this.onExit(gen, proc, code, stderr.toString());
        if (this.proc === proc) this.proc = null;
        if (settled) return; // timed out: start() already failed
        settled = true;
        clearTimeout(timer);
        reject(
          gen !== this.generation
            ? new FluidError('CANCELLED', 'The egress proxy was stopped while starting.')
            : this.startError(code, stderr.toString(), lastError),
        );
      });

      try {
        proc.stdin.write(proxyStdinPreamble());
        this.sendConfig();
      } catch (e) {
        this.o.log.debug('egress: could not write to the proxy', { error: String(e) });
      }
    });
  }

  /** Kill a process this controller no longer wants. */
  private abandon(proc: HostProcess): void {
    if (this.proc === proc) this.proc = null;
    try {
      proc.stdin.end();
    } catch {
      /* gone */
    }
    proc.kill();
  }

  private startError(code: number | null, stderr: string, lastError: string): FluidError {
    if (this.o.conn.closed)
      return new FluidError(
        'HOST_UNREACHABLE',
        'The host connection closed while the egress proxy was starting.',
      );
    if (code === 127 || /fluid-egress: \S+ not found/.test(stderr))
      return new FluidError('UNAVAILABLE', PYTHON_MISSING_MESSAGE);
    const old = /Python 3\.9 or newer is required, found ([\d.]+)/.exec(stderr);
    if (old)
      return new FluidError(
        'UNAVAILABLE',
        `Sandbox egress needs Python 3.9 or newer on the host (found ${old[1]}); install a newer python3.`,
      );
    if (lastError.startsWith('cannot listen'))
      return new FluidError('UNAVAILABLE', `The egress proxy ${lastError}.`, { exitCode: code });
    if (lastError.startsWith('the egress proxy on'))
      // a proxy for this bridge runs, but this process may not join it (another user or version)
      return new FluidError('UNAVAILABLE', `${lastError[0]!.toUpperCase()}${lastError.slice(1)}.`, {
        exitCode: code,
      });
    const detail = (lastError || stderr.trim().split('\n').slice(-3).join(' ')).slice(0, 1000);
    return new FluidError(
      'INTERNAL',
      `The egress proxy exited (code ${code ?? 'none'}) before it was ready${detail ? `: ${detail}` : '.'}`,
      { exitCode: code },
    );
  }

  private handle(gen: number, msg: ProxyMessage): void {
    switch (msg.type) {
      case 'ask':
        this.onAsk(gen, msg);
        break;
      case 'event':
        this.onProxyEvent(msg);
        break;
      case 'error':
        this.o.log.warn('egress proxy reported an error', { message: msg.message });
        break;
      case 'configured':
        this.settleConfig(msg.seq ?? Infinity);
        break;
      case 'routes':
        this.routes_ = { served: new Set(msg.served), conflicts: msg.conflicts };
        if (msg.conflicts.length)
          this.o.log.warn('egress: the proxy serves some sandbox addresses for another Fluid', {
            conflicts: msg.conflicts,
          });
        try {
          this.o.onRoutes?.(this.routes_);
        } catch (err) {
          this.o.log.warn('egress: onRoutes threw', {
            error: err instanceof Error ? err.message : String(err),
          });
        }
        break;
      case 'pong':
      case 'ready':
      case 'status':
        break;
    }
  }

  private onAsk(gen: number, msg: AskMessage): void {
    const ac = new AbortController();
    const key = `${gen}:${msg.id}`;
    this.asks.set(key, ac);
    const sandboxId = msg.sandbox ?? this.sandboxes[msg.client];
    const answer = (v: EgressVerdict) => {
      this.asks.delete(key);
      if (gen !== this.generation || ac.signal.aborted) return;
      const out: ControlMessage = { type: 'decision', id: msg.id, decision: v.decision };
      if (v.approvalId) out.approval = v.approvalId;
      if (v.note) out.note = v.note;
      this.send(out);
    };
    if (!sandboxId) return answer({ decision: 'deny' });
    let p: Promise<EgressDecision | EgressVerdict>;
    try {
      p = Promise.resolve(
        this.o.decide(
          { sandboxId, client: msg.client, host: msg.host, port: msg.port, method: msg.method },
          ac.signal,
        ),
      );
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (d) => answer(toVerdict(d)),
      (err: unknown) => {
        if (!ac.signal.aborted)
          this.o.log.warn('egress: decide failed; denying', {
            host: msg.host,
            port: msg.port,
            error: err instanceof Error ? err.message : String(err),
          });
        answer({ decision: 'deny' });
      },
    );
  }

  private onProxyEvent(e: EventMessage): void {
    if (e.askId) {
      const ac = this.asks.get(`${this.generation}:${e.askId}`);
      if (ac && e.reason !== 'approved' && e.reason !== 'denied') {
        this.asks.delete(`${this.generation}:${e.askId}`);
        ac.abort(new FluidError('CANCELLED', `The egress proxy stopped waiting (${e.reason}).`));
      }
    }
    const out: EgressEvent = {
      sandboxId: e.sandbox ?? this.sandboxes[e.client] ?? null,
      client: e.client,
      host: e.host,
      port: e.port,
      method: e.method,
      decision: e.decision,
      reason: e.reason,
      bytesUp: e.bytesUp,
      bytesDown: e.bytesDown,
      durationMs: e.durationMs ?? 0,
    };
    if (e.status !== undefined) out.status = e.status;
    if (e.path !== undefined) out.path = e.path;
    if (e.askId !== undefined) out.askId = e.askId;
    if (e.error !== undefined) out.error = e.error;
    if (e.failure !== undefined) out.failure = e.failure;
    if (e.approvalId !== undefined) out.approvalId = e.approvalId;
    if (e.id !== undefined) out.requestId = e.id;
    try {
      this.o.onEvent(out);
    } catch (err) {
      this.o.log.warn('egress: onEvent threw', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  private onExit(gen: number, proc: HostProcess, code: number | null, stderr: string): void {
    if (gen !== this.generation) return;
    if (this.proc === proc) this.proc = null;
    this.listen_ = null;
    this.routes_ = null;
    this.clearPing();
    this.abortAsks();
    this.settleConfig(Infinity);
    if (this.state_ === 'stopped') return;
    if (this.o.conn.closed) {
      this.state_ = 'closed';
      this.o.log.warn('egress proxy stopped: the host connection is closed');
      if (!this.closedNotified) {
        this.closedNotified = true;
        this.o.onClose?.('The host connection closed.');
      }
      return;
    }
    this.o.log.warn('egress proxy exited unexpectedly; restarting', {
      code,
      stderr: stderr.trim().slice(-1000),
    });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const { min, max } = this.o.restartDelayMs ?? { min: 500, max: 30_000 };
    if (this.upSince && Date.now() - this.upSince > 60_000) this.restartAttempt = 0;
    const delay = Math.min(max, min * 2 ** this.restartAttempt);
    this.restartAttempt++;
    this.state_ = 'restarting';
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state_ !== 'restarting') return;
      this.launch().then(
        () => this.o.log.info('egress proxy restarted'),
        (err: unknown) => {
          if (this.state_ !== 'restarting') return;
          if (this.o.conn.closed) {
            this.state_ = 'closed';
            if (!this.closedNotified) {
              this.closedNotified = true;
              this.o.onClose?.('The host connection closed.');
            }
            return;
          }
          this.o.log.error('egress proxy restart failed', {
            error: err instanceof Error ? err.message : String(err),
          });
          this.scheduleRestart();
        },
      );
    }, delay);
    this.restartTimer.unref?.();
  }

  private clearRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  private startPing(gen: number): void {
    this.clearPing();
    if (this.heartbeatMs <= 0) return;
    let n = 0;
    this.pingTimer = setInterval(() => {
      if (gen !== this.generation) return;
      this.send({ type: 'ping', id: String(++n) });
    }, this.heartbeatMs);
    this.pingTimer.unref?.();
  }

  private clearPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private abortAsks(): void {
    for (const ac of this.asks.values()) ac.abort(new FluidError('CANCELLED', 'The egress proxy stopped.'));
    this.asks.clear();
  }
}

/** Anything but a well-formed allow/pending answer is a deny. */
function toVerdict(d: unknown): EgressVerdict {
  const v: Partial<EgressVerdict> = typeof d === 'string' ? { decision: d as EgressDecision } : (d ?? {});
  const decision = v.decision === 'allow' || v.decision === 'pending' ? v.decision : 'deny';
  const out: EgressVerdict = { decision };
  if (typeof v.approvalId === 'string' && /^[A-Za-z0-9._:-]{1,100}$/.test(v.approvalId))
    out.approvalId = v.approvalId;
  if (typeof v.note === 'string' && v.note) out.note = v.note.slice(0, 500);
  return out;
}

/**
 * Ask the host which Fluid egress proxy serves `listenAddress:port` and for which sandbox addresses.
 * Starts nothing: `running: false` when none answers (`portInUse` when something else listens there).
 */
export async function probeEgressProxy(
  conn: HostConnection,
  o: { listenAddress: string; port: number; python?: string; timeoutMs?: number },
): Promise<StatusMessage> {
  const proc = conn.spawn(
    proxyCommand({
      listenAddress: o.listenAddress,
      port: o.port,
      askTimeoutMs: 1000,
      heartbeatTimeoutMs: 0,
      python: o.python,
      probe: true,
    }),
  );
  let out = '';
  let err = '';
  proc.stdout.on('data', (c: Buffer | string) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer | string) => (err += c.toString()));
  proc.stdout.on('error', () => {});
  proc.stderr.on('error', () => {});
  try {
    proc.stdin.write(proxyStdinPreamble());
    proc.stdin.end();
  } catch {
    /* the exit code says what happened */
  }
  const timeoutMs = o.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    proc.exited,
    new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
      timer.unref?.();
    }),
  ]);
  clearTimeout(timer);
  if (code === 'timeout') {
    proc.kill();
    throw new FluidError('TIMEOUT', `The egress proxy probe did not answer within ${timeoutMs} ms.`);
  }
  if (code === 127 || /fluid-egress: \S+ not found/.test(err))
    throw new FluidError('UNAVAILABLE', PYTHON_MISSING_MESSAGE);
  for (const line of out.split('\n')) {
    const m = parseProxyMessage(line);
    if (m?.type === 'status') return m;
    if (m?.type === 'error')
      throw new FluidError('UNAVAILABLE', `${m.message[0]!.toUpperCase()}${m.message.slice(1)}.`);
  }
  throw new FluidError(
    'INTERNAL',
    `The egress proxy probe exited (code ${code ?? 'none'}) without an answer: ${(err || out).trim().slice(-500)}`,
  );
}

/** Call onLine for each newline-terminated line of a stream (and a final partial one at the end). */
function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.on('data', (c: string | Buffer) => {
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
    if (buf.length > 1 << 20) buf = '';
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
    buf = '';
  });
}
