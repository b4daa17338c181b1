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
  let changed = () => {};
  /** Resolves when `pred` holds, checked on every event the app sees (the timer only reports a hang). */
  const until = (pred: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const hang = setTimeout(
        () => reject(new Error(`the app never saw it; seen: ${JSON.stringify(seen)}`)),
        30_000,
      );
      changed = () => pred() && (clearTimeout(hang), resolve());
      changed();
    });
  app.bus.subscribe('settings.changed', (s) => (seen.push(['settings', s.hosts.minFreeDiskGiB]), changed()));
  app.bus.subscribe('approvals.changed', (a) => (seen.push(['approval', a.status]), changed()));
  cli.settings.update({ hosts: { minFreeDiskGiB: 42 } }, { door: 'cli', id: 'bob' });
  const a = cli.approvals.request({
    kind: 'tool',
    title: 't',
    detail: 'd',
    risk: 'low',
    subject: {},
    requestedBy: { door: 'cli', id: 'bob' },
  });
  cli.approvals.decide(a.id, 'deny', undefined, { door: 'cli', id: 'bob', interactive: true });
  await until(() => seen.length >= 3);
  assert.deepEqual(seen, [
    ['settings', 42],
    ['approval', 'pending'],
    ['approval', 'denied'],
  ]);
  // The app does not replay its own events. The feed is read in order, so once a later change of
  // the CLI has arrived, a replay of the app's own change would have arrived before it.
  const own: number[] = [];
  cli.bus.subscribe('settings.changed', (s) => own.push(s.hosts.minFreeDiskGiB));
  app.settings.update({ hosts: { minFreeDiskGiB: 7 } }, { door: 'app', id: 'alice' });
  cli.settings.update({ hosts: { minFreeDiskGiB: 8 } }, { door: 'cli', id: 'bob' });
  await until(() => seen.some(([k, v]) => k === 'settings' && v === 8));
  assert.deepEqual(
    seen.filter(([k]) => k === 'settings').map(([, v]) => v),
    [42, 7, 8],
    'the app saw its own change once, then the CLI change from the feed',
  );
  assert.deepEqual(own, [8], 'the CLI sees its own change and does not follow the feed');
  await app.close();
  await cli.close();
  cleanup();
});
