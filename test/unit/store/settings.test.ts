import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testCore } from '../../support/core.ts';

const actor = { door: 'test' as const, id: 't' };

test('defaults, partial updates, validation, audit and events', async () => {
  const core = testCore();
  const s0 = core.settings.get();
  assert.equal(s0.hosts.storageDir, '/var/lib/fluid');
  const events: number[] = [];
  core.bus.subscribe('settings.changed', (s) => events.push(s.hosts.minFreeDiskGiB));
  const s1 = core.settings.update({ hosts: { minFreeDiskGiB: 25 } }, actor);
  assert.equal(s1.hosts.minFreeDiskGiB, 25);
  assert.equal(s1.hosts.storageDir, '/var/lib/fluid', 'untouched keys keep their values');
  assert.deepEqual(events, [25]);
  assert.throws(() => core.settings.update({ hosts: { storageDir: 'relative/path' } }, actor), {
    code: 'VALIDATION',
  });
  assert.equal(core.settings.get().hosts.storageDir, '/var/lib/fluid', 'a rejected update changes nothing');
  core.settings.update({ hosts: { minFreeDiskGiB: 25 } }, actor); // no-op: no audit entry, no event
  const audit = core.audit.list({ limit: 10, action: 'settings.update' });
  assert.equal(audit.total, 1);
  assert.deepEqual(events, [25]);
  await core.dispose();
});

test('a stored value that no longer validates falls back to defaults instead of crashing', async () => {
  const core = testCore();
  core.db
    .prepare("INSERT INTO settings (key, value, updated_at) VALUES ('main', ?, 'x')")
    .run(JSON.stringify({ hosts: { minFreeDiskGiB: 'lots' } }));
  assert.equal(core.settings.get().hosts.minFreeDiskGiB, 10);
  await core.dispose();
});

test('a patch changes only the fields it names (defaults in the patch schema never reset others)', async () => {
  const core = testCore();
  core.settings.update({ hosts: { minFreeDiskGiB: 33 } }, actor);
  core.settings.update({ hosts: { connectTimeoutSeconds: 20 } }, actor);
  const s = core.settings.get();
  assert.equal(s.hosts.minFreeDiskGiB, 33);
  assert.equal(s.hosts.connectTimeoutSeconds, 20);
  assert.throws(() => core.settings.update({ hosts: { bogus: 1 } } as never, actor), { code: 'VALIDATION' });
  await core.dispose();
});
