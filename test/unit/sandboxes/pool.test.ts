import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isPoolMember,
  parsePoolEntries,
  planPool,
  POOL_ACTOR,
  type PlanMember,
  type PlanTarget,
} from '../../../src/core/sandboxes/pool.ts';
import type { TemplateInfo } from '../../../src/core/sandboxes/bases.ts';
import { SettingsSchema } from '../../../src/shared/contract/settings.ts';

const template = { vcpus: 1, memoryMiB: 512 } as TemplateInfo;
const target = (over: Partial<PlanTarget> = {}): PlanTarget => ({
  hostId: 'h1',
  hostName: 'kvm1',
  source: 'web',
  size: 2,
  hostMemoryMiB: 16_384,
  base: { id: 'b2', templateState: 'ready', template, templateError: null },
  ...over,
});
const member = (id: string, over: Partial<PlanMember> = {}): PlanMember => ({
  id,
  hostId: 'h1',
  source: 'web',
  baseId: 'b2',
  vcpus: 1,
  memoryMiB: 512,
  phase: 'ready',
  ...over,
});

test('settings lines: source=N and host:source=N; anything else is refused by the schema', () => {
  assert.deepEqual(parsePoolEntries(['web=2', 'kvm1:db-01=1']), [
    { host: null, source: 'web', size: 2 },
    { host: 'kvm1', source: 'db-01', size: 1 },
  ]);
  for (const bad of ['web', 'web=', '=2', 'a:b:c=1', 'web=x', 'web=100', 'we b=1'])
    assert.equal(
      SettingsSchema.safeParse({ sandboxes: { warmPool: [bad] } }).success,
      false,
      `${bad} should be refused`,
    );
  assert.deepEqual(SettingsSchema.parse({}).sandboxes.warmPool, []);
});

test('an empty pool fills one member at a time per host, and says so', () => {
  const plan = planPool([target(), target({ source: 'db' })], [], 8192);
  assert.deepEqual(plan.fill, [{ hostId: 'h1', source: 'web' }]);
  assert.deepEqual(plan.drain, []);
  assert.deepEqual(
    plan.status.map((s) => [s.source, s.ready, s.filling, s.note]),
    [
      ['web', 0, 0, 'waiting to fill'],
      ['db', 0, 0, 'waiting to fill'],
    ],
  );
  // A fill in progress on the host: nothing else starts there, another host fills.
  const busy = planPool(
    [target(), target({ hostId: 'h2', hostName: 'kvm2' })],
    [member('m1', { phase: 'filling' })],
    8192,
  );
  assert.deepEqual(busy.fill, [{ hostId: 'h2', source: 'web' }]);
  assert.equal(busy.status[0]!.filling, 1);
});

test('a full pool does nothing; a smaller size or a removed entry drains the extra members', () => {
  const full = planPool([target()], [member('m1'), member('m2')], 8192);
  assert.deepEqual([full.fill, full.drain], [[], []]);
  assert.equal(full.status[0]!.note, null);
  const smaller = planPool([target({ size: 1 })], [member('m1'), member('m2')], 8192);
  assert.deepEqual(smaller.drain, [{ id: 'm2', reason: 'more than the pool size' }]);
  const removed = planPool([], [member('m1')], 8192);
  assert.deepEqual(removed.drain, [
    { id: 'm1', reason: 'its source is no longer in the warm pool settings' },
  ]);
});

test('members of an older base or another size are drained and replaced', () => {
  const plan = planPool(
    [target()],
    [member('old', { baseId: 'b1' }), member('big', { memoryMiB: 1024 }), member('ok')],
    8192,
  );
  assert.deepEqual(plan.drain, [
    { id: 'old', reason: 'made from an older base copy' },
    { id: 'big', reason: 'another size than the warm template' },
  ]);
  assert.deepEqual(plan.fill, [{ hostId: 'h1', source: 'web' }]);
  assert.equal(plan.status[0]!.ready, 1);
});

test('a small host keeps no pool; without a warm template the pool asks for one first', () => {
  const small = planPool([target({ hostMemoryMiB: 4096 })], [member('m1')], 8192);
  assert.deepEqual(small.fill, []);
  assert.deepEqual(
    small.drain.map((d) => d.id),
    ['m1'],
  );
  assert.match(small.status[0]!.note!, /4096 MiB of memory, below the pool's minimum of 8192 MiB/);
  const cold = planPool([target({ base: null })], [], 8192);
  assert.deepEqual(cold.warm, [{ hostId: 'h1', source: 'web' }]);
  assert.deepEqual(cold.fill, []);
  assert.match(cold.status[0]!.note!, /waiting for the warm template of web/);
  const failed = planPool(
    [target({ base: { id: 'b2', templateState: 'failed', template: null, templateError: 'UEFI' } })],
    [],
    8192,
  );
  assert.deepEqual([failed.warm, failed.fill], [[], []]);
  assert.match(failed.status[0]!.note!, /failed: UEFI/);
});

test('the last failure is what the status says while the pool is not full', () => {
  const plan = planPool(
    [target({ lastError: 'Over the host limits: 2 sandboxes exceeds the limit of 1.' })],
    [],
    0,
  );
  assert.match(plan.status[0]!.note!, /could not be made: Over the host limits/);
});

test('pool members are recognised by their maker only', () => {
  assert.equal(isPoolMember({ created_by_door: POOL_ACTOR.door, created_by_id: POOL_ACTOR.id }), true);
  assert.equal(isPoolMember({ created_by_door: 'agent', created_by_id: 'warm-pool' }), false);
  assert.equal(isPoolMember({ created_by_door: 'system', created_by_id: 'janitor' }), false);
});
