/**
 * Tool cards tell "the command ran and exited non-zero" (an answer: systemctl is-active → 3) from "the
 * tool failed" (it could not run), from the transcript alone, with the text the command tools write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildRows,
  commandExit,
  type SessionState,
} from '../../../src/renderer/src/features/agent/sessionState.ts';

test('the exit code of a command result, and nothing for other results', () => {
  assert.equal(commandExit('exit code: 3\nstdout:\ninactive\n'), 3);
  assert.equal(commandExit('exit code: 0\n(no output)'), 0);
  assert.equal(commandExit('exit code: 127'), 127);
  assert.equal(commandExit('exit code: timed out (killed)\n'), null);
  assert.equal(commandExit('Cannot reach sandbox web-1: HOST_UNREACHABLE'), null);
  assert.equal(commandExit('the output says exit code: 3'), null);
  assert.equal(commandExit(null), null);
});

test('in the transcript: exit 3 is "exited", a tool that could not run is "error", exit 0 is "done"', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const use = (id: string) => ({
    type: 'tool_use' as const,
    id,
    name: 'run_command',
    input: { sandbox_id: 's', command: 'x' },
  });
  const state = {
    session: { status: 'done' },
    messages: [
      {
        seq: 1,
        role: 'assistant',
        compacted: false,
        createdAt: at,
        content: [use('a'), use('b'), use('c'), use('d')],
      },
      {
        seq: 2,
        role: 'user',
        compacted: false,
        createdAt: at,
        content: [
          {
            type: 'tool_result',
            toolUseId: 'a',
            content: 'exit code: 3\nstdout:\ninactive\n',
            isError: true,
          },
          {
            type: 'tool_result',
            toolUseId: 'b',
            content: 'Sandbox s is stopped; start it first.',
            isError: true,
          },
          { type: 'tool_result', toolUseId: 'c', content: 'exit code: 0\nstdout:\nactive\n', isError: false },
          { type: 'tool_result', toolUseId: 'd', content: 'exit code: timed out (killed)\n', isError: true },
        ],
      },
    ],
    calls: {},
    notices: [],
    partial: '',
  } as unknown as SessionState;
  const cards = buildRows(state).flatMap((r) => (r.kind === 'tool' ? [r.call] : []));
  assert.deepEqual(
    cards.map((c) => [c.id, c.status, c.exitCode]),
    [
      ['a', 'exited', 3],
      ['b', 'error', null],
      ['c', 'done', 0],
      ['d', 'error', null],
    ],
  );
});
