/**
 * A fake host for egress tests: `spawn` gives a FakeProc the test scripts like the real proxy (what
 * Fluid wrote to its stdin, and its stdout), `exec` answers with a fixed result.
 */
import { PassThrough } from 'node:stream';
import type { ExecResult, HostConnection, HostProcess } from '../../../src/core/hosts/connection.ts';
import type { ControlMessage } from '../../../src/core/egress/protocol.ts';

/** One spawned fake proxy: what Fluid wrote to it, and controls to answer like the real one. */
export class FakeProc {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly exited: Promise<number | null>;
  readonly command: string;
  killed = false;
  stdinEnded = false;
  private exitedNow = false;
  private raw = '';
  private resolveExit!: (c: number | null) => void;
  private waiters: Array<() => void> = [];

  constructor(command: string) {
    this.command = command;
    this.exited = new Promise((r) => (this.resolveExit = r));
    this.stdin.on('data', (c: Buffer) => {
      this.raw += c.toString();
      for (const w of this.waiters.splice(0)) w();
    });
    this.stdin.on('end', () => {
      this.stdinEnded = true;
      for (const w of this.waiters.splice(0)) w();
      // like the real proxy: stdin closed means exit now
      setImmediate(() => this.exit(0));
    });
  }

  /** The script Fluid sent (after the length line) and the control messages after it. */
  parsed(): { script: string; declared: number; messages: ControlMessage[] } {
    const nl = this.raw.indexOf('\n');
    const declared = Number(this.raw.slice(0, nl));
    const script = this.raw.slice(nl + 1, nl + 1 + declared);
    const rest = this.raw.slice(nl + 1 + declared);
    const messages = rest
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ControlMessage);
    return { script, declared, messages };
  }

  messages(): ControlMessage[] {
    return this.raw ? this.parsed().messages : [];
  }

  /** Resolves once the control messages Fluid wrote satisfy pred (checked on every write). */
  async waitFor(pred: (m: ControlMessage[]) => boolean): Promise<ControlMessage[]> {
    while (!pred(this.messages())) await new Promise<void>((r) => this.waiters.push(r));
    return this.messages();
  }

  emit(msg: object): void {
    this.stdout.write(JSON.stringify(msg) + '\n');
  }
  ready(listen = '10.239.0.1:3128'): void {
    this.emit({ type: 'ready', listen, pid: 1, version: 1, python: '3.11.2' });
  }
  exit(code: number | null): void {
    if (this.exitedNow) return;
    this.exitedNow = true;
    this.stdout.end();
    this.stderr.end();
    this.resolveExit(code);
  }
  asProcess(): HostProcess {
    return {
      stdin: this.stdin,
      stdout: this.stdout,
      stderr: this.stderr,
      exited: this.exited,
      kill: () => {
        this.killed = true;
        this.exit(null);
      },
    };
  }
}

export class FakeConn implements HostConnection {
  readonly hostId = 'fake';
  readonly kind = 'ssh' as const;
  closed = false;
  readonly procs: FakeProc[] = [];
  private spawnWaiters: Array<() => void> = [];
  onSpawn: ((p: FakeProc) => void) | null = null;

  /** Commands run with exec (the host firewall script), answered with `execResult`. */
  readonly execs: string[] = [];
  execResult: ExecResult = {
    code: 0,
    signal: null,
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    truncated: false,
    timedOut: false,
    durationMs: 0,
  };

  exec(command: string): Promise<ExecResult> {
    this.execs.push(command);
    return Promise.resolve(this.execResult);
  }
  spawn(command: string): HostProcess {
    const p = new FakeProc(command);
    this.procs.push(p);
    if (this.closed) queueMicrotask(() => p.exit(null));
    else this.onSpawn?.(p);
    for (const w of this.spawnWaiters.splice(0)) w();
    return p.asProcess();
  }
  /** Resolves at the n-th spawn. */
  async nthSpawn(n: number): Promise<FakeProc> {
    while (this.procs.length < n) await new Promise<void>((r) => this.spawnWaiters.push(r));
    return this.procs[n - 1]!;
  }
  forwardOut(): never {
    throw new Error('not used');
  }
  close(): void {
    this.closed = true;
  }
}
