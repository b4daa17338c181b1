/**
 * Wait for something another process does and announces nowhere this test can listen (a detached
 * sweep writing the database, a watcher on a host removing a file or exiting): check the condition,
 * and check again after a short pause, until it holds. Only the deadline can fail the wait, and it is
 * far beyond any machine's speed: it turns a hang into a readable failure, it does not time anything.
 * Use it only for another process's effects; in-process work is awaited or driven by a fake clock.
 */
import assert from 'node:assert/strict';
import { setTimeout as pause } from 'node:timers/promises';

export async function eventually(what: string, cond: () => boolean, deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (let gap = 10; !cond(); gap = Math.min(gap * 2, 200)) {
    if (Date.now() > deadline) assert.fail(`gave up after ${deadlineMs / 1000} s waiting for ${what}`);
    await pause(gap);
  }
}
