/**
 * A connection to a libvirt host: run commands, open TCP connections from the host (jump), close.
 * The local machine and SSH hosts implement the same interface, so everything above is host-agnostic.
 */
import { spawn } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { FluidError } from '../../shared/errors.ts';

export interface ExecOptions {
  stdin?: string | Buffer;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Keep at most this many bytes of each of stdout and stderr (the rest is counted, not kept). */
  maxOutputBytes?: number;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  /** True when output beyond maxOutputBytes was dropped. */
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/** A long-running process on a host with live stdin/stdout (e.g. a helper daemon Fluid controls). */
export interface HostProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves with the exit code (null when killed by a signal or the connection dropped). */
  readonly exited: Promise<number | null>;
  kill(): void;
}

export interface HostConnection {
  readonly hostId: string;
  readonly kind: 'local' | 'ssh';
  /** Run a POSIX shell command on the host. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running command with streaming stdin/stdout/stderr. It dies with the connection. */
  spawn(command: string): HostProcess;
  /** A TCP connection opened from the host to address:port (the host is the jump). */
  forwardOut(address: string, port: number): Promise<Duplex>;
  close(): void;
  readonly closed: boolean;
}

/** Collects a stream's output up to a cap, counting what it drops. */
export class OutputBuffer {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;
  private readonly cap: number;
  constructor(cap = 64 * 1024 * 1024) {
    this.cap = cap;
  }
  push(chunk: Buffer): void {
    const room = this.cap - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += chunk.length - part.length;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Single-quote a string for a POSIX shell. */
export function shq(s: string): string {
  if (s.includes('\0')) throw new FluidError('VALIDATION', 'Arguments may not contain NUL bytes.');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Run a command and throw a readable error when it fails. Returns stdout as text. */
export async function run(
  conn: HostConnection,
  command: string,
  opts: ExecOptions & { what?: string } = {},
): Promise<string> {
  const r = await conn.exec(command, opts);
  if (r.timedOut)
    throw new FluidError('TIMEOUT', `${opts.what ?? 'A host command'} timed out after ${opts.timeoutMs} ms.`);
  if (r.code !== 0) {
    const err = r.stderr.toString().trim() || r.stdout.toString().trim();
    throw new FluidError(
      'INTERNAL',
      `${opts.what ?? `\`${command.slice(0, 80)}\``} failed (exit ${r.code ?? r.signal}): ${err.slice(0, 2000)}`,
      {
        exitCode: r.code,
      },
    );
  }
  return r.stdout.toString();
}

export class LocalConnection implements HostConnection {
  readonly kind = 'local' as const;
  readonly hostId: string;
  closed = false;

  constructor(hostId: string) {
    this.hostId = hostId;
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new FluidError('CANCELLED', 'The command was cancelled.'));
      const started = Date.now();
      const child = spawn('/bin/sh', ['-c', command], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
        detached: true,
      });
      const out = new OutputBuffer(opts.maxOutputBytes);
      const err = new OutputBuffer(opts.maxOutputBytes);
      let timedOut = false;
      const kill = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, opts.timeoutMs)
        : null;
      const onAbort = () => kill();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (c: Buffer) => {
        out.push(c);
        opts.onStdout?.(c);
      });
      child.stderr.on('data', (c: Buffer) => {
        err.push(c);
        opts.onStderr?.(c);
      });
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(new FluidError('INTERNAL', `Could not run a local command: ${e.message}`));
      });
      child.on('close', (code, sig) => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (opts.signal?.aborted) return reject(new FluidError('CANCELLED', 'The command was cancelled.'));
        resolve({
          code,
          signal: sig,
          stdout: out.toBuffer(),
          stderr: err.toBuffer(),
          truncated: out.dropped + err.dropped > 0,
          timedOut,
          durationMs: Date.now() - started,
        });
      });
      child.stdin.on('error', () => {});
      child.stdin.end(opts.stdin ?? '');
    });
  }

  spawn(command: string): HostProcess {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('close', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    child.stdin.on('error', () => {});
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      kill: () => child.kill('SIGTERM'),
    };
  }

  forwardOut(address: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const sock = netConnect({ host: address, port });
      sock.setNoDelay(true);
      sock.once('connect', () => resolve(sock));
      sock.once('error', (e) =>
        reject(new FluidError('HOST_UNREACHABLE', `Cannot reach ${address}:${port}: ${e.message}`)),
      );
    });
  }

  close(): void {
    this.closed = true;
  }
}
