/**
 * Forms say everything that is wrong at once: the New sandbox form (the contract's own schema plus
 * what only the form knows) and the capacity samples of the overview's chart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateCreate } from '../../../src/renderer/src/features/sandboxes/createDialog.ts';
import { describe as describeSamples } from '../../../src/renderer/src/features/overview/capacityText.ts';
import { toSample } from '../../../src/renderer/src/stores/capacity.ts';

test('New sandbox: every problem at once, each on its field', () => {
  const errs = validateCreate(
    {
      source: '',
      name: 'Bad Name!',
      vcpus: 0,
      memoryMiB: 100,
      ttlMinutes: Number.NaN,
      allow: ['ok.example.com', 'not a host!'],
      start: 'auto',
    },
    { vcpus: '0', memoryMiB: '100', ttlMinutes: 'soon', source: '' },
  );
  assert.deepEqual(Object.keys(errs).sort(), ['allow', 'memoryMiB', 'name', 'source', 'ttlMinutes', 'vcpus']);
  assert.match(errs.allow!, /not a host!/);
  assert.match(errs.vcpus!, /at least 1/);
  assert.match(errs.memoryMiB!, /at least 256/);
  assert.match(errs.ttlMinutes!, /whole number of minutes/);
  assert.match(errs.name!, /lowercase/i);
  assert.deepEqual(
    validateCreate(
      { source: 'web', ttlMinutes: 30, allow: [], start: 'auto' },
      { vcpus: '2', memoryMiB: '512', ttlMinutes: '30', source: 'web' },
    ),
    {},
  );
});

test('capacity samples read as percentages, and the chart says what it shows', () => {
  const s = toSample(
    {
      hostId: 'h',
      cpus: 4,
      memoryMiB: 8192,
      freeMemoryMiB: 2048,
      diskFreeBytes: 25 * 2 ** 30,
      diskTotalBytes: 100 * 2 ** 30,
      runningVms: 2,
      committedVcpus: 3,
      committedMemoryMiB: 1024,
      virtType: 'kvm',
    },
    1000,
  );
  assert.equal(s.memUsedPct, 75);
  assert.equal(s.diskUsedPct, 75);
  assert.equal(describeSamples([]), 'No samples yet.');
  const later = { ...s, at: 1000 + 30 * 60_000, memUsedPct: 50 };
  assert.equal(
    describeSamples([s, later]),
    '2 samples over 30 min: memory in use 50 % now (50–75 %), disk 75 % (75 %).',
  );
  const unknown = toSample(
    {
      ...{
        hostId: 'h',
        cpus: null,
        memoryMiB: null,
        freeMemoryMiB: null,
        diskFreeBytes: null,
        diskTotalBytes: null,
        runningVms: 0,
        committedVcpus: 0,
        committedMemoryMiB: 0,
        virtType: null,
      },
    },
    5,
  );
  assert.equal(unknown.memUsedPct, null);
  assert.equal(describeSamples([unknown]), 'One sample: memory unknown, disk unknown.');
});
