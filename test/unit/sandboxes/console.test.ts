/**
 * The serial console's reading side (console.ts) over a real local shell and a file standing in for
 * a domain's serial log: the boot log gives the newest complete line (escape sequences out) and keeps
 * the last lines for an error; the console stream sends the log from an offset, says what it skipped,
 * follows what is appended, and stops its follower on the host when the reader goes away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { ConsoleItem } from '../../../src/shared/contract/runs.ts';
import { LocalConnection } from '../../../src/core/hosts/connection.ts';
import { PassThrough, Writable } from 'node:stream';
import type { HostConnection } from '../../../src/core/hosts/connection.ts';
import {
  BootLog,
  CONSOLE_BACKLOG_BYTES,
  ConsoleInput,
  cleanLine,
  followConsole,
} from '../../../src/core/sandboxes/console.ts';
import { tempDir } from '../../support/core.ts';

test('boot log: the newest complete line, cleaned; the last lines kept; a log that starts over', async (t) => {
  const d = tempDir('fluid-console-');
  t.after(d.cleanup);
  const f = join(d.dir, 'serial.log');
  const conn = new LocalConnection('local');
  const log = new BootLog(conn, f, 3);
  assert.equal(await log.poll(), null, 'no log yet');
  writeFileSync(
    f,
    '[    0.000000] Linux version 6.1\r\n\x1b[0;32m  OK  \x1b[0m] Started Journal\r\nhalf a li',
  );
  assert.equal(await log.poll(), 'OK  ] Started Journal');
  assert.equal(await log.poll(), null, 'nothing new');
  appendFileSync(f, 'ne\nweb-base login: ');
  assert.equal(await log.poll(), 'half a line');
  assert.deepEqual(log.lines(), ['OK  ] Started Journal', 'half a line', 'web-base login:']);
  // A new boot truncates the log (append off): read from its start again.
  writeFileSync(f, 'again\n');
  assert.equal(await log.poll(), null);
  assert.equal(await log.poll(), 'again');
  assert.equal(cleanLine('\x07bell\x1b[2Kline\x1bc'), 'bellline');
});

async function collect(
  it: AsyncIterator<ConsoleItem>,
  until: (xs: ConsoleItem[]) => boolean,
): Promise<ConsoleItem[]> {
  const xs: ConsoleItem[] = [];
  while (!until(xs)) {
    const r = await it.next();
    if (r.done) break;
    xs.push(r.value);
  }
  return xs;
}

const data = (xs: ConsoleItem[]) =>
  xs
    .filter((x): x is Extract<ConsoleItem, { kind: 'data' }> => x.kind === 'data')
    .map((x) => x.data)
    .join('');

test('console stream: from an offset, live, the skipped part counted, the follower stopped', async (t) => {
  const d = tempDir('fluid-console-');
  t.after(d.cleanup);
  const f = join(d.dir, 'serial.log');
  writeFileSync(f, 'one\ntwo\n');
  const conn = new LocalConnection('local');

  const ac = new AbortController();
  const it = followConsole(conn, { logPath: f, offset: 4, running: true, signal: ac.signal })[
    Symbol.asyncIterator
  ]();
  const first = await collect(it, (xs) => data(xs) === 'two\n');
  assert.deepEqual(first[0], { kind: 'console', logPath: f, logBytes: 8, running: true });
  appendFileSync(f, 'three\n');
  const more = await collect(it, (xs) => data(xs).includes('three\n'));
  const last = more.filter((x) => x.kind === 'data').at(-1) as { offset: number };
  assert.equal(last.offset, 14, 'the offset is the byte after what was sent');
  ac.abort();
  // The follower on the "host" is gone once the reader went away.
  const gone = async () => !execFileSync('ps', ['-eo', 'args']).toString().includes(`tail -c +5 -F ${f}`);
  for (let i = 0; i < 50 && !(await gone()); i++) await new Promise((r) => setImmediate(r));
  await it.return?.();

  // A huge backlog: only its newest part, the rest counted as dropped.
  writeFileSync(f, 'x'.repeat(CONSOLE_BACKLOG_BYTES + 100));
  const it2 = followConsole(conn, { logPath: f, offset: 0, running: false })[Symbol.asyncIterator]();
  const big = await collect(it2, (xs) => data(xs).length >= CONSOLE_BACKLOG_BYTES);
  assert.deepEqual(big[1], { kind: 'dropped', bytes: 100 });
  assert.equal(data(big).length, CONSOLE_BACKLOG_BYTES);
  await it2.return?.();
});

test('console keys wait until virsh has attached to the console, in the order they were typed', async () => {
  const written: string[] = [];
  const stdout = new PassThrough();
  let exit!: (code: number | null) => void;
  const proc = {
    stdin: new Writable({
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk.toString());
        cb();
      },
    }),
    stdout,
    stderr: new PassThrough(),
    exited: new Promise<number | null>((r) => (exit = r)),
    kill: () => exit(null),
  };
  const spawned: string[] = [];
  const conn = {
    hostId: 'h',
    kind: 'local',
    exec: async () => ({ code: 0, stdout: Buffer.from('/usr/bin/script\n'), stderr: Buffer.alloc(0) }),
    spawn: (cmd: string) => {
      spawned.push(cmd);
      return proc;
    },
  } as unknown as HostConnection;
  const keys = new ConsoleInput();
  const first = keys.write(conn, 'sbx', 'qemu:///system', 'fluid-x', '\r');
  const second = keys.write(conn, 'sbx', 'qemu:///system', 'fluid-x', 'root\r');
  await new Promise((r) => setImmediate(r));
  assert.equal(spawned.length, 1, 'one console for the sandbox');
  assert.match(spawned[0]!, /console --force/);
  assert.deepEqual(written, [], 'nothing typed before virsh is attached');
  stdout.write("Connected to domain 'fluid-x'\r\nEscape character is ^] (Ctrl + ])\r\n");
  assert.equal(await first, true, 'the first write opened the console');
  assert.equal(await second, false);
  assert.deepEqual(written, ['\r', 'root\r']);
  assert.equal(await keys.write(conn, 'sbx', 'qemu:///system', 'fluid-x', 'x'), false);
  assert.deepEqual(written, ['\r', 'root\r', 'x']);
  keys.closeAll();
});
