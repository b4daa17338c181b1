import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FluidError } from '../../../src/shared/errors.ts';
import { TaskManager } from '../../../src/core/store/tasks.ts';
import { openDatabase } from '../../../src/core/store/db.ts';
import { EventBus } from '../../../src/core/events.ts';
import { createLogger } from '../../../src/core/platform/logger.ts';
import type { Task } from '../../../src/shared/contract/tasks.ts';
import { tempDir } from '../../support/core.ts';
import { join } from 'node:path';

const log = createLogger({ level: 'error' });
const clock = { now: () => new Date() };

function manager(file = ':memory:') {
  const db = openDatabase(file);
  const bus = new EventBus();
  return { db, bus, tm: new TaskManager(db, bus, clock, log) };
}

test('a task reports progress, succeeds and persists its result', async () => {
  const { tm, bus } = manager();
  const events: Task[] = [];
  bus.subscribe('tasks.changed', (t) => events.push(t));
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const t = tm.start({
    kind: 'demo',
    title: 'Demo',
    run: async (ctx) => {
      ctx.progress(0.5, 'halfway');
      await finished;
      return { answer: 42 };
    },
  });
  assert.equal(t.status, 'running');
  assert.equal(tm.get(t.id).status, 'running', 'still running until the work finishes');
  finish();
  const final = await tm.wait(t.id);
  assert.equal(final.status, 'succeeded');
  assert.deepEqual(final.result, { answer: 42 });
  assert.equal(final.progress, 1);
  assert.ok(events.some((e) => e.message === 'halfway' && e.progress === 0.5));
  assert.equal(tm.get(t.id).status, 'succeeded');
});

test('a failing task keeps the typed error', async () => {
  const { tm } = manager();
  const t = tm.start({
    kind: 'demo',
    title: 'Fails',
    run: async () => {
      throw new FluidError('HOST_UNREACHABLE', 'no route to kvm1');
    },
  });
  const final = await tm.wait(t.id);
  assert.equal(final.status, 'failed');
  assert.deepEqual(final.error, { code: 'HOST_UNREACHABLE', message: 'no route to kvm1' });
});

test('cancel aborts the work and records cancelled', async () => {
  const { tm } = manager();
  let sawAbort = false;
  const t = tm.start({
    kind: 'demo',
    title: 'Long',
    run: (ctx) =>
      new Promise((_, reject) => {
        ctx.signal.addEventListener('abort', () => {
          sawAbort = true;
          reject(new FluidError('CANCELLED', 'stopped'));
        });
      }),
  });
  tm.cancel(t.id);
  const final = await tm.wait(t.id);
  assert.equal(final.status, 'cancelled');
  assert.equal(sawAbort, true);
});

test('a task that cannot be cancelled says so', async () => {
  const { tm } = manager();
  let release!: () => void;
  const t = tm.start({
    kind: 'demo',
    title: 'Atomic',
    cancellable: false,
    run: () => new Promise<void>((r) => (release = r)),
  });
  assert.throws(() => tm.cancel(t.id), { code: 'CONFLICT' });
  release();
  assert.equal((await tm.wait(t.id)).status, 'succeeded');
});

test('cancel requested by another process (shared database) stops the task', async () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'x.db');
  const a = manager(file);
  const b = manager(file);
  const t = a.tm.start({
    kind: 'demo',
    title: 'Remote cancel',
    run: (ctx) =>
      new Promise((_, rej) =>
        ctx.signal.addEventListener('abort', () => rej(new FluidError('CANCELLED', 'x'))),
      ),
  });
  b.tm.cancel(t.id); // b does not own it: sets the flag; a polls it
  const final = await b.tm.wait(t.id); // and b sees the outcome by polling
  assert.equal(final.status, 'cancelled');
  a.db.close();
  b.db.close();
  cleanup();
});

test('tasks of a dead process are marked interrupted at the next start', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'y.db');
  const a = manager(file);
  a.db
    .prepare(
      `INSERT INTO tasks (id, kind, title, status, owner_pid, owner_instance, created_at, updated_at) VALUES ('t1','sandbox.create','Create','running', 999999, 'gone', '2026-01-01', '2026-01-01')`,
    )
    .run();
  a.db
    .prepare(
      `INSERT INTO tasks (id, kind, title, status, owner_pid, owner_instance, created_at, updated_at) VALUES ('t2','x','Live elsewhere','running', ?, 'other', '2026-01-01', '2026-01-01')`,
    )
    .run(process.ppid);
  const recovered = a.tm.recoverInterrupted();
  assert.deepEqual(
    recovered.map((t) => t.id),
    ['t1'],
  );
  assert.equal(a.tm.get('t1').status, 'interrupted');
  assert.match(a.tm.get('t1').error!.message, /stopped while this task was running/);
  assert.equal(a.tm.get('t2').status, 'running');
  a.db.close();
  cleanup();
});

test('watch yields the snapshot first, every step, and ends at the terminal state', async (t) => {
  // progress is throttled to ~8 writes a second: on a fake clock, the steps are 125 ms apart
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const { tm } = manager();
  // each step waits for the test to release it, once the watcher has seen the one before
  const gates: Array<() => void> = [];
  const task = tm.start({
    kind: 'demo',
    title: 'Steps',
    run: async (ctx) => {
      for (let i = 1; i <= 3; i++) {
        await new Promise<void>((r) => gates.push(r));
        ctx.progress(i / 3, `step ${i}`);
      }
    },
  });
  const seen: string[] = [];
  for await (const u of tm.watch(task.id)) {
    seen.push(`${u.status}:${u.message}`);
    t.mock.timers.tick(125);
    gates.shift()?.();
  }
  assert.deepEqual(seen, [
    'running:Starting',
    'running:step 1',
    'running:step 2',
    'running:step 3',
    'succeeded:Done',
  ]);
});
