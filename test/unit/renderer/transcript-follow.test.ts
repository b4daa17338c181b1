/** The agent transcript's follow rule: new output follows a reader at the bottom, never one who scrolled up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterOutput, atBottom, STICK_PX } from '../../../src/renderer/src/features/agent/follow.ts';

test('new output follows a view the reader left where the last follow put it', () => {
  // Followed to the bottom of 1000px in a 400px box (scrollTop 600); 200px more arrived.
  assert.equal(afterOutput({ scrollTop: 600, scrollHeight: 1200, clientHeight: 400 }, 600), 'follow');
  // Still within a few pixels of it.
  assert.equal(
    afterOutput({ scrollTop: 600 - STICK_PX + 1, scrollHeight: 1200, clientHeight: 400 }, 600),
    'follow',
  );
});

test('a reader who scrolled up before the scroll event arrived is not pulled back down', () => {
  assert.equal(afterOutput({ scrollTop: 0, scrollHeight: 1200, clientHeight: 400 }, 600), 'away');
  assert.equal(afterOutput({ scrollTop: 300, scrollHeight: 1200, clientHeight: 400 }, 600), 'away');
});

test('output that shrank (the browser moved the view up to the new bottom) is still followed', () => {
  assert.equal(afterOutput({ scrollTop: 300, scrollHeight: 700, clientHeight: 400 }, 600), 'follow');
  assert.equal(atBottom({ scrollTop: 300, scrollHeight: 700, clientHeight: 400 }), true);
  assert.equal(atBottom({ scrollTop: 0, scrollHeight: 700, clientHeight: 400 }), false);
});
