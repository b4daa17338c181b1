/** The model's view of a transcript, compaction cut points, estimates, output caps, the system prompt. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TranscriptMessage } from '../../../src/shared/contract/agent.ts';
import {
  SUMMARY_PREFIX,
  estimateTokens,
  modelMessages,
  pickCut,
} from '../../../src/core/agent/compaction.ts';
import { capOutput, sliceOutput } from '../../../src/core/agent/tool-output.ts';
import { costOf, limitReached, systemPrompt } from '../../../src/core/agent/loop.ts';
import { titleFrom } from '../../../src/core/agent/service.ts';
import type { SessionRow } from '../../../src/core/agent/sessions.ts';

let seq = 0;
const msg = (role: 'user' | 'assistant', content: TranscriptMessage['content']): TranscriptMessage => ({
  seq: ++seq,
  role,
  content,
  compacted: false,
  createdAt: '2026-01-01T00:00:00.000Z',
});
const text = (t: string) => ({ type: 'text' as const, text: t });
const use = (id: string) => ({ type: 'tool_use' as const, id, name: 'echo', input: { text: id } });
const result = (id: string) => ({ type: 'tool_result' as const, toolUseId: id, content: `echo: ${id}` });

function conversation(): TranscriptMessage[] {
  seq = 0;
  return [
    msg('user', [text('task')]),
    msg('assistant', [use('a')]),
    msg('user', [result('a')]),
    msg('assistant', [use('b')]),
    msg('user', [result('b')]),
    msg('assistant', [text('done')]),
    msg('user', [text('more')]),
    msg('assistant', [use('c')]),
    msg('user', [result('c')]),
  ];
}

describe('the model view of a transcript', () => {
  test('without compaction: the messages as they are', () => {
    const m = modelMessages(conversation(), null, 0);
    assert.equal(m.length, 9);
    assert.deepEqual(m[0], { role: 'user', content: [{ type: 'text', text: 'task' }] });
  });

  test('the summary replaces the compacted messages; results of compacted calls never dangle', () => {
    const all = conversation();
    const cut = pickCut(all, 0);
    assert.equal(cut, 5, 'cut before an assistant message, keeping at least 4');
    const m = modelMessages(all, 'THE SUMMARY', cut!);
    assert.equal(m[0]!.role, 'user');
    assert.match((m[0]!.content[0] as { text: string }).text, new RegExp(`^${SUMMARY_PREFIX.slice(0, 20)}`));
    assert.match((m[0]!.content[0] as { text: string }).text, /THE SUMMARY$/);
    assert.equal(m[1]!.role, 'assistant');
    assert.ok(!JSON.stringify(m).includes('"task"'));
  });

  test('a kept user text message is merged with the summary', () => {
    const all = conversation();
    const m = modelMessages(all, 'S', 6);
    assert.equal(m[0]!.role, 'user');
    assert.deepEqual(
      m[0]!.content.map((b) => b.type),
      ['text', 'text'],
    );
  });

  test('a tool call without result (a crash) gets an error result; adjacent user messages merge with results first', () => {
    seq = 0;
    const m = modelMessages(
      [msg('user', [text('task')]), msg('assistant', [use('x'), use('y')]), msg('user', [text('continue')])],
      null,
      0,
    );
    assert.equal(m.length, 3);
    assert.deepEqual(
      m[2]!.content.map((b) => (b.type === 'tool_result' ? `result:${b.toolUseId}:${b.isError}` : b.type)),
      ['result:x:true', 'result:y:true', 'text'],
    );
  });

  test('nothing to cut in a short conversation', () => {
    seq = 0;
    assert.equal(
      pickCut([msg('user', [text('t')]), msg('assistant', [use('a')]), msg('user', [result('a')])], 0),
      null,
    );
  });

  test('token estimates: from the last report plus the growth, else characters / 4', () => {
    assert.equal(estimateTokens(4000, { tokens: 0, chars: 0 }), 1000);
    assert.equal(estimateTokens(14_000, { tokens: 5000, chars: 10_000 }), 6000);
  });
});

describe('tool output caps', () => {
  test('short output is whole; long output keeps head and tail around a marker naming the handle', () => {
    assert.deepEqual(capOutput('short', 1000, 'out_1'), { text: 'short', cut: false });
    const long = Array.from({ length: 500 }, (_, i) => `row ${i}`).join('\n');
    const c = capOutput(long, 1000, 'out_abc');
    assert.ok(c.cut);
    assert.ok(c.text.length <= 1000, String(c.text.length));
    assert.match(c.text, /^row 0\n/);
    assert.match(c.text, /row 499$/);
    assert.match(c.text, /read_tool_output \{"handle":"out_abc","offset":\d+\}/);
  });

  test('slices say where they stand', () => {
    assert.equal(
      sliceOutput('abcdef', 2, 2),
      'cd\n\n[characters 2–4 of 6. 2 more: read_tool_output with offset 4.]',
    );
    assert.match(sliceOutput('abcdef', 4, 10), /This is the end/);
  });
});

describe('session helpers', () => {
  test('titles from tasks', () => {
    assert.equal(titleFrom('\n  Fix nginx on web-01  \nmore detail'), 'Fix nginx on web-01');
    const t = titleFrom('word '.repeat(40));
    assert.ok(t.length <= 81 && t.endsWith('…'));
  });

  test('cost: cache reads at a tenth, writes at a quarter more', () => {
    const p = { inputPerMTok: 10, outputPerMTok: 20 };
    assert.equal(costOf(p, { inputTokens: 1_000_000, outputTokens: 0 }), 10);
    assert.equal(
      costOf(p, { inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 1_000_000 }),
      1 + 20,
    );
    assert.equal(costOf(p, { inputTokens: 1_000_000, outputTokens: 0, cacheWriteTokens: 1_000_000 }), 12.5);
  });

  test('limits', () => {
    const row = { steps: 3, max_steps: 3, cost_usd: 0, max_cost_usd: 0 } as SessionRow;
    assert.equal(limitReached(row)?.code, 'DENIED');
    assert.equal(
      limitReached({ ...row, steps: 2 }),
      null,
      'no spend: a zero cost cap does not stop a free model',
    );
    assert.equal(limitReached({ ...row, steps: 2, cost_usd: 0.01, max_cost_usd: 0 })?.code, 'DENIED');
  });

  test('the system prompt names the mode and the session subject', () => {
    const now = new Date('2026-03-04T05:06:07Z');
    const edit = systemPrompt({ mode: 'edit', host: 'lab', source: 'web-01' }, now);
    assert.match(edit, /Mode: edit/);
    assert.match(edit, /the source VM "web-01" on the host "lab"/);
    assert.match(edit, /Today is 2026-03-04/);
    assert.match(edit, /run_source_command and read_source_file/);
    const ro = systemPrompt({ mode: 'read-only', host: null, source: null }, now);
    assert.match(ro, /Mode: READ-ONLY/);
    assert.ok(!/This session is about/.test(ro));
  });
});
