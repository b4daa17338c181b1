import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCore } from '../../../src/core/createCore.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import { createLogger } from '../../../src/core/platform/logger.ts';
import { tempDir } from '../../support/core.ts';

test('events cross processes that share a database: a change made by the CLI shows up in the running app', async () => {
  const { dir, cleanup } = tempDir();
  const mk = () =>
    createCore({
      dataDir: dir,
      secrets: new MemorySecretStore(),
      logger: createLogger({ level: 'error' }),
      egress: null,
    });
  const app = mk();
  const cli = mk();
  app.bus.follow(50);
  const seen: Array<[string, unknown]> = [];
  app.bus.subscribe('settings.changed', (s) => seen.push(['settings', s.hosts.minFreeDiskGiB]));
  app.bus.subscribe('approvals.changed', (a) => seen.push(['approval', a.status]));
  cli.settings.update({ hosts: { minFreeDiskGiB: 42 } }, { door: 'cli', id: 'bob' });
  const a = cli.approvals.request({
    kind: 'tool',
    title: 't',
    detail: 'd',
    risk: 'low',
    subject: {},
    requestedBy: { door: 'cli', id: 'bob' },
  });
  cli.approvals.decide(a.id, 'deny', undefined, { door: 'cli', id: 'bob' });
  for (let i = 0; i < 100 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [
    ['settings', 42],
    ['approval', 'pending'],
    ['approval', 'denied'],
  ]);
  // The app does not replay its own events.
  const own: unknown[] = [];
  cli.bus.subscribe('settings.changed', (s) => own.push(s));
  app.settings.update({ hosts: { minFreeDiskGiB: 7 } }, { door: 'app', id: 'alice' });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen.filter(([k]) => k === 'settings').length, 2, 'the app saw its own change once');
  assert.equal(own.length, 0, 'the CLI does not follow the feed');
  await app.close();
  await cli.close();
  cleanup();
});
