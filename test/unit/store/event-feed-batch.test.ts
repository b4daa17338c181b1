/**
 * The event feed is written once per pass of the event loop (one transaction for the events of the
 * pass), at detach, and at process exit: nothing another process should see is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openDatabase } from '../../../src/core/store/db.ts';
import { EventBus } from '../../../src/core/events.ts';
import { tempDir } from '../../support/core.ts';

const feedRows = (db: ReturnType<typeof openDatabase>) =>
  db.prepare('SELECT name, payload FROM event_feed ORDER BY seq').all() as Array<{
    name: string;
    payload: string;
  }>;

test('events of one pass are written together after it, in order; local listeners get them at once', async () => {
  const { dir, cleanup } = tempDir();
  const db = openDatabase(join(dir, 'fluid.db'));
  const bus = new EventBus();
  bus.attachFeed(db, 'me', false);
  const local: string[] = [];
  bus.subscribe('agent.changed', (p) => local.push(p.status));
  for (const status of ['running', 'waiting-approval', 'done'] as const)
    bus.emit('agent.changed', { sessionId: 'ses_1', status });
  assert.deepEqual(local, ['running', 'waiting-approval', 'done'], 'listeners in this process at once');
  assert.equal(feedRows(db).length, 0, 'not written yet: the pass is not over');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    feedRows(db).map((r) => (JSON.parse(r.payload) as { status: string }).status),
    ['running', 'waiting-approval', 'done'],
  );
  bus.emit('agent.changed', { sessionId: 'ses_1', status: 'idle' });
  bus.detachFeed();
  assert.equal(feedRows(db).length, 4, 'detaching writes what is left');
  db.close();
  cleanup();
});

test('a process that exits right after an event still writes it', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'fluid.db');
  openDatabase(file).close();
  const script = `
    import { openDatabase } from ${JSON.stringify(new URL('../../../src/core/store/db.ts', import.meta.url).href)};
    import { EventBus } from ${JSON.stringify(new URL('../../../src/core/events.ts', import.meta.url).href)};
    const bus = new EventBus();
    bus.attachFeed(openDatabase(${JSON.stringify(file)}), 'cli', false);
    bus.emit('agent.changed', { sessionId: 'ses_2', status: 'stopped' });
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const db = openDatabase(file);
  assert.deepEqual(
    feedRows(db).map((x) => [x.name, (JSON.parse(x.payload) as { sessionId: string }).sessionId]),
    [['agent.changed', 'ses_2']],
  );
  db.close();
  cleanup();
});
