/**
 * The terminal's keys: in order, one call at a time; what is typed while a shell the person asked for
 * is opened waits for it; what is typed at an ended shell goes nowhere and never reaches the next one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputPump } from '../../../src/renderer/src/features/sandboxes/tabs/inputPump.ts';

/** A send that records calls and answers each one when told. */
function recorder() {
  const calls: Array<{ terminal: string; data: string }> = [];
  const answers: Array<{ ok: () => void; fail: (err: Error) => void }> = [];
  const send = (terminal: string, data: string) =>
    new Promise<void>((ok, fail) => {
      calls.push({ terminal, data });
      answers.push({ ok, fail });
    });
  /** Answer the oldest open call and let the pump go on. */
  const answer = async (err?: Error) => {
    const a = answers.shift();
    assert.ok(a, 'a call is waiting for its answer');
    if (err) a.fail(err);
    else a.ok();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { calls, send, answer };
}

test('keys typed while the first shell opens are sent once it is attached, then in order, one call at a time', async () => {
  const r = recorder();
  const pump = new InputPump(r.send);
  pump.push('ls');
  pump.push(' /\r');
  assert.equal(r.calls.length, 0, 'nothing is sent before a terminal is attached');
  pump.attach('t1');
  assert.deepEqual(r.calls, [{ terminal: 't1', data: 'ls /\r' }]);
  pump.push('a');
  pump.push('b');
  assert.equal(r.calls.length, 1, 'one call in flight at a time');
  await r.answer();
  assert.deepEqual(r.calls[1], { terminal: 't1', data: 'ab' });
  await r.answer();
  assert.equal(r.calls.length, 2);
});

test('keys typed at an ended shell go nowhere, and do not reach the next one', async () => {
  const r = recorder();
  const pump = new InputPump(r.send);
  pump.attach('t1');
  pump.drop(); // the shell exited
  pump.push('rm -rf /tmp/x\r');
  pump.hold(); // the person asks for a new session
  pump.push('echo new\r');
  pump.attach('t2');
  assert.deepEqual(r.calls, [{ terminal: 't2', data: 'echo new\r' }]);
});

test('a new pump that is not holding sends nothing typed before a terminal is attached', () => {
  const r = recorder();
  const pump = new InputPump(r.send, { holding: false });
  pump.push('early');
  pump.attach('t1');
  assert.equal(r.calls.length, 0);
});

test('leaving (detach) keeps the keys of a shell being opened, and drops keys typed at none', async () => {
  const r = recorder();
  const pump = new InputPump(r.send);
  pump.hold();
  pump.detach(); // the view re-subscribes while the new shell opens
  pump.push('x');
  pump.attach('t1');
  assert.deepEqual(r.calls, [{ terminal: 't1', data: 'x' }]);
  await r.answer();

  pump.detach(); // e.g. the connection dropped
  pump.push('y');
  pump.attach('t1');
  assert.equal(r.calls.length, 1, 'keys typed while detached without a hold are not sent later');
});

test('a call that fails is reported, and the keys waiting behind it are dropped', async () => {
  const r = recorder();
  const pump = new InputPump(r.send);
  const lost: unknown[] = [];
  pump.onLost = (err) => lost.push(err);
  pump.attach('t1');
  pump.push('a');
  pump.push('b');
  await r.answer(new Error('gone'));
  assert.equal(lost.length, 1);
  assert.equal((lost[0] as Error).message, 'gone');
  assert.equal(r.calls.length, 1, 'b was dropped with the failure');
  pump.push('c');
  assert.deepEqual(r.calls[1], { terminal: 't1', data: 'c' }, 'later keys go on');
});

test('a hold drops what was typed before it', () => {
  const r = recorder();
  const pump = new InputPump(r.send);
  pump.push('typed at the old view');
  pump.hold();
  pump.attach('t1');
  assert.equal(r.calls.length, 0);
});
