/**
 * Runs and terminals as server-side objects (runs.ts, terminals.ts, output-log.ts), with a scripted
 * executor and shell in place of the guest: a detached run outlives the reader that started it, a
 * reader attaches again from its offset and gets exactly what followed, a bounded window says how
 * much was dropped, every command is audited when it starts and when it ends, the history survives
 * the process, a dead owner's run shows as interrupted, and durations come from the backend's clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Run, RunItem, TerminalItem } from '../../../src/shared/contract/runs.ts';
import { OutputLog } from '../../../src/core/sandboxes/output-log.ts';
import { RunManager, WINDOW_BYTES, type RunExecutor } from '../../../src/core/sandboxes/runs.ts';
import { TerminalManager, SCROLLBACK_BYTES } from '../../../src/core/sandboxes/terminals.ts';
import type { SandboxRow } from '../../../src/core/sandboxes/store.ts';
import type { GuestExecResult, GuestShell, ShellExit } from '../../../src/core/ssh/guest.ts';
import { testCore } from '../../support/core.ts';
import type { Actor } from '../../../src/shared/rpc.ts';
import { sandboxDomainName } from '../../../src/core/sandboxes/layout.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const PERSON: Actor = { door: 'web', id: 'tester' };

/** A clock that moves only when the test says so. */
function fakeClock(start = Date.parse('2030-01-01T00:00:00Z')) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => void (t += ms) };
}

function row(over: Partial<SandboxRow> = {}): SandboxRow {
  const id = randomUUID();
  return {
    id,
    name: `sb-${id.slice(0, 4)}`,
    host_id: 'local',
    source_name: 'web',
    base_id: null,
    state: 'running',
    domain_name: 'd',
    domain_uuid: randomUUID(),
    dir: '/x',
    vcpus: 1,
    memory_mib: 256,
    slot: null,
    ip: null,
    mac: null,
    ttl_minutes: 60,
    expires_at: null,
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
    created_by_door: 'test',
    created_by_id: 't',
    start_path: null,
    start_path_reason: null,
    timings: '{}',
    host_key_fp: null,
    egress_allow: '[]',
    error: null,
    task_id: null,
    owner_pid: null,
    owner_instance: null,
    ...over,
  };
}

/** A command the test drives: it prints when told and ends when told. */
class Scripted {
  out: ((c: Buffer) => void) | null = null;
  err: ((c: Buffer) => void) | null = null;
  signal: AbortSignal | null = null;
  private finish: ((r: GuestExecResult) => void) | null = null;
  private fail: ((e: unknown) => void) | null = null;
  readonly started: Promise<void>;
  private go!: () => void;
  constructor() {
    this.started = new Promise((r) => (this.go = r));
  }
  exec: RunExecutor = (_r, _command, o) =>
    new Promise<GuestExecResult>((resolve, reject) => {
      this.out = o.onStdout;
      this.err = o.onStderr;
      this.signal = o.signal;
      this.finish = resolve;
      this.fail = reject;
      o.signal.addEventListener('abort', () => reject(new FluidError('CANCELLED', 'killed')), { once: true });
      this.go();
    });
  print(s: string, stream: 'out' | 'err' = 'out') {
    (stream === 'out' ? this.out : this.err)!(Buffer.from(s));
  }
  exit(code: number, extra: Partial<GuestExecResult> = {}) {
    this.finish!({
      exitCode: code,
      signal: null,
      stdout: '',
      stderr: '',
      truncated: false,
      timedOut: false,
      durationMs: 1,
      ...extra,
    } as GuestExecResult);
  }
  crash(e: unknown) {
    this.fail!(e);
  }
}

/** Read items until `until` says stop (event-driven: no sleeps). */
async function readUntil<T>(it: AsyncIterable<T>, until: (items: T[]) => boolean): Promise<T[]> {
  const items: T[] = [];
  for await (const x of it) {
    items.push(x);
    if (until(items)) break;
  }
  return items;
}

const text = (items: RunItem[]) =>
  items
    .filter(
      (i): i is Extract<RunItem, { kind: 'stdout' | 'stderr' }> => i.kind === 'stdout' || i.kind === 'stderr',
    )
    .map((i) => i.data)
    .join('');

test('output log: offsets, merged chunks cut where a reader stopped, dropped bytes, split UTF-8', () => {
  const log = new OutputLog<'stdout' | 'stderr'>(32);
  log.push('stdout', Buffer.from('hello '));
  const first = log.from(0);
  assert.deepEqual(
    first.chunks.map((c) => [c.kind, c.data, c.end]),
    [['stdout', 'hello ', 6]],
  );
  log.push('stdout', Buffer.from('world\n')); // merged into the first chunk
  const again = log.from(6);
  assert.equal(again.dropped, 0);
  assert.deepEqual(
    again.chunks.map((c) => [c.data, c.start, c.end]),
    [['world\n', 6, 12]],
  );
  // "é" is two bytes: split across two chunks, it is decoded once, whole.
  const e = Buffer.from('é');
  log.push('stderr', e.subarray(0, 1));
  log.push('stderr', e.subarray(1));
  assert.equal(
    log
      .from(12)
      .chunks.map((c) => c.data)
      .join(''),
    'é',
  );
  assert.equal(log.bytes('stderr'), 2);
  // Over the window: the oldest chunks go and are counted.
  log.push('stdout', Buffer.from('x'.repeat(30)));
  assert.equal(log.total, 44);
  const all = log.from(0);
  assert.ok(all.dropped > 0, 'something was dropped');
  assert.equal(all.dropped, all.chunks[0]!.start);
  assert.ok(all.chunks.reduce((n, c) => n + (c.end - c.start), 0) <= 32);
  // A reader that already has everything gets nothing, and nothing is "dropped" for it.
  assert.deepEqual(log.from(44), { dropped: 0, chunks: [] });
});

test('a detached run outlives its reader; the reader attaches again from its offset; audited at start and end', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const clock = fakeClock();
  const cmd = new Scripted();
  const runs = new RunManager({
    db: core.db,
    bus: core.bus,
    audit: core.audit,
    clock,
    log: core.log,
    instance: 'me',
    exec: cmd.exec,
  });
  const r = row();
  const events: string[] = [];
  const un = core.bus.subscribe('sandboxes.runChanged', (e) => events.push(`${e.status}`));
  t.after(un);
  const { run } = runs.start(
    r,
    {
      command: 'for i in 1 2 3; do echo $i; sleep 5; done',
      timeoutSeconds: 60,
      maxOutputBytes: 1 << 20,
      origin: 'run',
    },
    PERSON,
  );
  assert.equal(run.status, 'running');
  assert.equal(run.durationMs, 0);
  await cmd.started;

  // Audited when it starts, before any output or end.
  const startRows = core.audit.list({ limit: 10, action: 'sandbox.exec.start' }).entries;
  assert.equal(startRows.length, 1);
  assert.equal((startRows[0]!.data as { run: string }).run, run.id);
  assert.match((startRows[0]!.data as { command: string }).command, /for i in 1 2 3/);
  assert.equal(core.audit.list({ limit: 10, action: 'sandbox.exec' }).entries.length, 0);

  // A page attaches, reads the first line, then goes away (a reload).
  const ac = new AbortController();
  const page1 = runs.attach(run.id, 0, ac.signal);
  cmd.print('1\n');
  const got1 = await readUntil(page1, (xs) => text(xs as RunItem[]).includes('1\n'));
  ac.abort();
  const offset = (got1.filter((i) => i.kind === 'stdout').at(-1) as { offset: number }).offset;
  assert.equal(offset, 2);

  // Meanwhile the command goes on.
  clock.advance(5000);
  cmd.print('2\n');
  cmd.print('oops\n', 'err');
  assert.equal(runs.get(run.id).status, 'running');
  assert.equal(runs.get(run.id).durationMs, 5000, 'the backend measures the time');

  // The reloaded page lists the runs, finds it and attaches from where it was.
  const listed = runs.list({ sandboxId: r.id, limit: 10 });
  assert.deepEqual(
    listed.map((x) => [x.id, x.status, x.origin]),
    [[run.id, 'running', 'run']],
  );
  const page2 = runs.attach(run.id, offset);
  const collected: RunItem[] = [];
  const reading = (async () => {
    for await (const x of page2) collected.push(x);
  })();
  clock.advance(5000);
  cmd.print('3\n');
  cmd.exit(0, { stdout: '1\n2\n3\n' });
  await reading;
  assert.equal(collected[0]!.kind, 'run');
  assert.equal(text(collected), '2\noops\n3\n', 'exactly what followed the offset');
  assert.ok(!collected.some((i) => i.kind === 'dropped'));
  const exit = collected.at(-1) as Extract<RunItem, { kind: 'exit' }>;
  assert.equal(exit.kind, 'exit');
  assert.equal(exit.run.status, 'exited');
  assert.equal(exit.run.exitCode, 0);
  assert.equal(exit.run.durationMs, 10_000);
  assert.equal(exit.run.stdoutBytes, 6);
  assert.equal(exit.run.stderrBytes, 5);

  // Audited when it ends, with the exit code and how much it printed.
  const end = core.audit.list({ limit: 10, action: 'sandbox.exec' }).entries;
  assert.equal(end.length, 1);
  assert.deepEqual(
    (({ run: id, exitCode, stdoutBytes, stderrBytes, durationMs, status }) => ({
      id,
      exitCode,
      stdoutBytes,
      stderrBytes,
      durationMs,
      status,
    }))(end[0]!.data as Record<string, unknown>),
    { id: run.id, exitCode: 0, stdoutBytes: 6, stderrBytes: 5, durationMs: 10_000, status: 'exited' },
  );
  assert.deepEqual(events, ['running', 'exited']);

  // History outlives this manager: a new one (another process) reads the kept output from the database.
  const later = new RunManager({
    db: core.db,
    bus: core.bus,
    audit: core.audit,
    clock,
    log: core.log,
    instance: 'other',
    exec: () => Promise.reject(new Error('unused')),
  });
  const replay = await readUntil(later.attach(run.id, 0), () => false);
  assert.equal(text(replay), '1\n2\noops\n3\n');
  assert.equal((replay.at(-1) as { run: Run }).run.live, false);
  assert.equal((replay.at(-1) as { run: Run }).run.exitCode, 0);
});

test('a window over its size says how much was dropped; a caller that goes away kills an exec run', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const clock = fakeClock();
  const cmd = new Scripted();
  const runs = new RunManager({
    db: core.db,
    bus: core.bus,
    audit: core.audit,
    clock,
    log: core.log,
    instance: 'me',
    exec: cmd.exec,
  });
  const caller = new AbortController();
  const { run, result } = runs.start(
    row(),
    { command: 'yes', timeoutSeconds: 60, maxOutputBytes: 1 << 20, origin: 'exec', signal: caller.signal },
    { door: 'agent', id: 'ses-1' },
  );
  await cmd.started;
  const big = 'y\n'.repeat(WINDOW_BYTES.exec / 2 + 1000);
  cmd.print(big);
  const items = await readUntil(runs.attach(run.id, 0), (xs) => xs.length >= 3);
  assert.equal(items[1]!.kind, 'dropped');
  assert.equal((items[1] as { bytes: number }).bytes, big.length - WINDOW_BYTES.exec);

  caller.abort();
  await assert.rejects(result, /killed/);
  const done = runs.get(run.id);
  assert.equal(done.status, 'cancelled');
  assert.match(done.error!.message, /Stopped by agent:ses-1/);
  const audited = core.audit.list({ limit: 5, action: 'sandbox.exec' }).entries[0]!;
  assert.equal((audited.data as { status: string }).status, 'cancelled');
  assert.equal((audited.data as { stdoutBytes: number }).stdoutBytes, big.length);
});

test('cancel stops a running command; a failure is recorded on a detached run; a dead owner means interrupted', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const clock = fakeClock();
  const cmd = new Scripted();
  const runs = new RunManager({
    db: core.db,
    bus: core.bus,
    audit: core.audit,
    clock,
    log: core.log,
    instance: 'me',
    exec: cmd.exec,
  });
  const { run } = runs.start(
    row(),
    { command: 'sleep 100', timeoutSeconds: 600, maxOutputBytes: 4096, origin: 'run' },
    PERSON,
  );
  await cmd.started;
  runs.cancel(run.id, { door: 'app', id: 'someone' });
  const ended = await readUntil(runs.attach(run.id, 0), () => false);
  const last = (ended.at(-1) as { run: Run }).run;
  assert.equal(last.status, 'cancelled');
  assert.match(last.error!.message, /Stopped by app:someone/);

  const cmd2 = new Scripted();
  const runs2 = new RunManager({
    db: core.db,
    bus: core.bus,
    audit: core.audit,
    clock,
    log: core.log,
    instance: 'me2',
    exec: cmd2.exec,
  });
  const { run: r2 } = runs2.start(
    row(),
    { command: 'true', timeoutSeconds: 5, maxOutputBytes: 4096, origin: 'run' },
    PERSON,
  );
  await cmd2.started;
  cmd2.crash(new FluidError('HOST_UNREACHABLE', 'the host went away'));
  const failed = await readUntil(runs2.attach(r2.id, 0), () => false);
  const f = (failed.at(-1) as { run: Run }).run;
  assert.equal(f.status, 'failed');
  assert.equal(f.error!.code, 'HOST_UNREACHABLE');

  // A row left running by a process that is gone (pid 0 is never a live process here).
  const orphan = randomUUID();
  core.db
    .prepare(
      `INSERT INTO sandbox_runs (id, sandbox_id, sandbox_name, origin, command, actor_door, actor_id, status, timeout_seconds, started_at, owner_pid, owner_instance)
       VALUES (?, 'sbx', 'sbx-name', 'run', 'sleep 1', 'web', 'x', 'running', 60, ?, 2147483646, 'dead')`,
    )
    .run(orphan, clock.now().toISOString());
  const r = runs.get(orphan);
  assert.equal(r.status, 'interrupted');
  assert.match(r.error!.message, /Interrupted/);
  assert.equal(core.audit.list({ limit: 5, action: 'sandbox.exec.interrupted' }).entries.length, 1);
});

class FakeShell implements GuestShell {
  private readonly ee = new EventEmitter();
  written: string[] = [];
  size: [number, number] | null = null;
  closed = false;
  write(d: string | Buffer) {
    this.written.push(d.toString());
  }
  resize(c: number, r: number) {
    this.size = [c, r];
  }
  onData(l: (c: Buffer) => void) {
    this.ee.on('data', l);
    return () => this.ee.off('data', l);
  }
  onExit(l: (e: ShellExit) => void) {
    this.ee.on('exit', l);
    return () => this.ee.off('exit', l);
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    this.ee.emit('exit', { exitCode: null, signal: null });
  }
  emit(s: string) {
    this.ee.emit('data', Buffer.from(s));
  }
  exit(code: number) {
    this.closed = true;
    this.ee.emit('exit', { exitCode: code, signal: null });
  }
}

test('a terminal survives its page, replays its scrollback from an offset, and closes when left idle', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const clock = fakeClock();
  const timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const shells: FakeShell[] = [];
  const terms = new TerminalManager({
    audit: core.audit,
    clock,
    log: core.log,
    shell: async () => {
      const s = new FakeShell();
      shells.push(s);
      return s;
    },
    idleMinutes: () => 30,
    setTimer: (fn, ms) => {
      const h = { fn, ms, cancelled: false };
      timers.push(h);
      return { cancel: () => void (h.cancelled = true) };
    },
  });
  const r = row();
  const term = await terms.open(r, 100, 30, PERSON);
  const sh = shells[0]!;
  assert.equal(term.status, 'open');
  assert.equal(term.idleClosesAt, new Date(clock.now().getTime() + 30 * 60_000).toISOString());

  const ac = new AbortController();
  const page1 = terms.attach(term.id, 0, ac.signal);
  assert.equal(terms.get(term.id).attached, 1);
  assert.ok(
    timers.every((x) => x.cancelled),
    'attached: no idle clock',
  );
  sh.emit('$ ');
  const got = await readUntil(page1, (xs) => xs.some((x) => x.kind === 'data'));
  const off = (got.find((x) => x.kind === 'data') as { offset: number }).offset;
  terms.input(term.id, 'echo hi\r', 120, 40);
  assert.deepEqual(sh.written, ['echo hi\r']);
  assert.deepEqual(sh.size, [120, 40]);
  ac.abort(); // the page reloads
  assert.equal(terms.get(term.id).attached, 0);
  assert.equal(terms.get(term.id).status, 'open', 'the shell lives on');

  sh.emit('echo hi\r\nhi\r\n$ ');
  const page2 = terms.attach(term.id, off);
  const replay = await readUntil(page2, (xs) => xs.some((x) => x.kind === 'data'));
  assert.equal((replay[0] as Extract<TerminalItem, { kind: 'terminal' }>).terminal.cols, 120);
  assert.equal(
    replay
      .filter((x) => x.kind === 'data')
      .map((x) => (x as { data: string }).data)
      .join(''),
    'echo hi\r\nhi\r\n$ ',
  );
  await page2[Symbol.asyncIterator]().return!();

  // Nobody attached: after the idle time it closes, and says why.
  const idle = timers.filter((x) => !x.cancelled).at(-1)!;
  assert.equal(idle.ms, 30 * 60_000);
  idle.fn();
  const ended = terms.get(term.id);
  assert.equal(ended.status, 'exited');
  assert.match(ended.endReason!, /nobody attached for 30 min/);
  assert.ok(sh.closed);
  assert.throws(() => terms.input(term.id, 'x', undefined, undefined), /ended/);
  const endRow = core.audit.list({ limit: 5, action: 'sandbox.shell.end' }).entries[0]!;
  assert.match((endRow.data as { reason: string }).reason, /nobody attached/);

  // A shell that exits by itself ends its attached readers with the exit.
  const t2 = await terms.open(r, 80, 24, PERSON);
  const reader = terms.attach(t2.id, 0);
  const all: TerminalItem[] = [];
  const reading = (async () => {
    for await (const x of reader) all.push(x);
  })();
  shells[1]!.emit('bye');
  shells[1]!.exit(0);
  await reading;
  assert.equal(all.at(-1)!.kind, 'exit');
  assert.equal((all.at(-1) as { terminal: { exitCode: number } }).terminal.exitCode, 0);
  // Scrollback is bounded.
  assert.ok(SCROLLBACK_BYTES >= 64 * 1024);
});

test('terminals and the console are a person’s: agent doors are refused before anything opens', async (t) => {
  const core = testCore();
  t.after(() => core.dispose());
  const router = core.router;
  const signal = new AbortController().signal;
  for (const actor of [
    { door: 'agent', id: 'ses' },
    { door: 'mcp', id: 'claude' },
    { door: 'cli', id: 'script', interactive: false },
    { door: 'http', id: 'tok', scope: 'operator' },
  ] as Actor[]) {
    await assert.rejects(
      Promise.resolve().then(() =>
        router['sandboxes.terminalOpen']({ sandbox: 'nope', cols: 80, rows: 24 }, { signal, actor }),
      ),
      (e: FluidError) => e.code === 'DENIED',
    );
    await assert.rejects(
      Promise.resolve().then(() =>
        router['sandboxes.consoleInput']({ sandbox: 'nope', data: 'x' }, { signal, actor }),
      ),
      (e: FluidError) => e.code === 'DENIED',
    );
    const it = router['sandboxes.console']({ sandbox: 'nope', offset: 0 }, { signal, actor });
    await assert.rejects(it[Symbol.asyncIterator]().next(), (e: FluidError) => e.code === 'DENIED');
  }
  // A person gets past the door check (and learns the sandbox does not exist).
  await assert.rejects(
    Promise.resolve().then(() =>
      router['sandboxes.terminalOpen']({ sandbox: 'nope', cols: 80, rows: 24 }, { signal, actor: PERSON }),
    ),
    (e: FluidError) => e.code === 'NOT_FOUND',
  );
});

test('libvirt domain names: no doubled prefix, no doubled id, still unique per sandbox', () => {
  const id = '1a2b3c4d-0000-4000-8000-000000000000';
  assert.equal(sandboxDomainName('fluid-lab-web-1a2b3c', id), 'fluid-lab-web-1a2b3c4d');
  assert.equal(sandboxDomainName('web', id), 'fluid-web-1a2b3c4d');
  assert.equal(sandboxDomainName('fluid-', id), 'fluid-1a2b3c4d');
  assert.notEqual(sandboxDomainName('web', id), sandboxDomainName('web', 'ffff' + id.slice(4)));
});
