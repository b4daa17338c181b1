/**
 * What the model sees of a session, and compaction: once the context nears the model's window,
 * older turns are summarised by one model call and replaced, for the model only, by the summary.
 * The messages stay in the database (flagged compacted) for people; tool outputs stay readable by
 * handle.
 */
import type { TranscriptBlock, TranscriptMessage } from '../../shared/contract/agent.ts';
import type { Block, Message } from './providers/types.ts';

/** Messages kept verbatim after a compaction (about the last two turns). */
export const KEEP_MESSAGES = 4;
/** Output budget of the summary request. */
export const SUMMARY_MAX_TOKENS = 4096;
/** Characters per token, for estimates where the provider has not told us. */
export const CHARS_PER_TOKEN = 4;

export const SUMMARY_PREFIX =
  'Summary of the earlier part of this session (the older messages were compacted; cut tool outputs stay readable with read_tool_output):';

export const COMPACTION_SYSTEM = `You summarise the working history of a Fluid infrastructure agent session so that the agent can continue the task without the older messages. The agent works in sandboxes (disposable clones of real VMs); it only reads source and production VMs.

Write the summary in these sections:
## Task
The user's request(s), constraints and preferences, in their words where it matters.
## Done so far
What was inspected and what was found, in order; facts learned (versions, paths, service names, addresses, ports).
## Changes
Every change made and where: sandbox ids (sbx-…), hosts, source VMs, file paths, packages, services, users, playbooks and their tasks. Say for each whether and how it was verified.
## Open problems
Errors not yet resolved, approvals that were denied, approaches that failed (so they are not retried blindly).
## Next steps
What remains to do, in order.

Keep ids, file paths, commands, error messages and handles (out_…) exactly as written. Facts only: no narration, nothing invented. Secrets appear as [REDACTED:…] placeholders: keep them as they are.`;

const toModelBlock = (b: TranscriptBlock): Block =>
  b.type === 'tool_result'
    ? {
        type: 'tool_result',
        toolUseId: b.toolUseId,
        content: b.content,
        ...(b.isError ? { isError: true } : {}),
      }
    : b.type === 'tool_use'
      ? { type: 'tool_use', id: b.id, name: b.name, input: b.input }
      : { type: 'text', text: b.text };

/**
 * The conversation for the model: the summary (if any) in place of the compacted messages, then the
 * rest. Adjacent messages of one role are merged, tool results lead their user message, and every
 * tool_use is answered (a transcript cut by a crash or a stop still makes a valid request).
 */
export function modelMessages(
  messages: TranscriptMessage[],
  summary: string | null,
  compactedThrough: number,
): Message[] {
  const out: Message[] = [];
  const push = (role: 'user' | 'assistant', content: Block[]) => {
    const last = out.at(-1);
    if (last && last.role === role) last.content.push(...content);
    else out.push({ role, content: [...content] });
  };
  if (summary && compactedThrough > 0)
    push('user', [{ type: 'text', text: `${SUMMARY_PREFIX}\n\n${summary}` }]);
  for (const m of messages) if (m.seq > compactedThrough) push(m.role, m.content.map(toModelBlock));

  // Make the tool blocks consistent.
  for (let i = 0; i < out.length; i++) {
    const m = out[i]!;
    if (m.role === 'user') {
      const prev = out[i - 1];
      const asked = new Set(
        prev?.role === 'assistant' ? prev.content.filter((b) => b.type === 'tool_use').map((b) => b.id) : [],
      );
      // A result whose call is not right before it (compacted away) becomes plain text.
      m.content = m.content.map((b) =>
        b.type === 'tool_result' && !asked.has(b.toolUseId)
          ? { type: 'text', text: `[An earlier tool result]\n${b.content}` }
          : b,
      );
      m.content.sort((a, b) => Number(b.type === 'tool_result') - Number(a.type === 'tool_result'));
    } else {
      const uses = m.content.filter((b) => b.type === 'tool_use');
      if (!uses.length) continue;
      let next = out[i + 1];
      if (!next || next.role !== 'user') {
        next = { role: 'user', content: [] };
        out.splice(i + 1, 0, next);
      }
      const answered = new Set(next.content.filter((b) => b.type === 'tool_result').map((b) => b.toolUseId));
      const missing = uses.filter((u) => !answered.has(u.id));
      next.content.unshift(
        ...missing.map((u): Block => ({
          type: 'tool_result',
          toolUseId: u.id,
          content: 'No result was recorded for this call (it was interrupted); its effect is unknown.',
          isError: true,
        })),
      );
    }
  }
  if (out[0]?.role === 'assistant')
    out.unshift({ role: 'user', content: [{ type: 'text', text: '(continued)' }] });
  return out;
}

export function messagesChars(messages: Message[]): number {
  let n = 0;
  for (const m of messages)
    for (const b of m.content)
      n +=
        b.type === 'text'
          ? b.text.length
          : b.type === 'tool_use'
            ? b.name.length + JSON.stringify(b.input).length
            : b.content.length + 20;
  return n;
}

/**
 * Tokens of the next request: the last request's reported input tokens plus what was added since
 * (chars / 4), or chars / 4 of everything when there is no report to start from.
 */
export function estimateTokens(totalChars: number, last: { tokens: number; chars: number }): number {
  if (last.tokens > 0 && last.chars > 0 && totalChars >= last.chars)
    return last.tokens + Math.ceil((totalChars - last.chars) / CHARS_PER_TOKEN);
  return Math.ceil(totalChars / CHARS_PER_TOKEN);
}

/**
 * Where to cut: the seq through which to compact, keeping at least `keep` messages, so that the kept
 * part starts with an assistant message or a user message that answers no tool call. Null when
 * nothing can be compacted.
 */
export function pickCut(
  messages: TranscriptMessage[],
  compactedThrough: number,
  keep = KEEP_MESSAGES,
): number | null {
  const live = messages.filter((m) => m.seq > compactedThrough);
  for (let i = live.length - keep; i >= 1; i--) {
    const m = live[i]!;
    if (m.role === 'assistant' || !m.content.some((b) => b.type === 'tool_result')) return live[i - 1]!.seq;
  }
  return null;
}

function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const head = Math.floor(max * 0.7);
  return `${s.slice(0, head)}\n[… ${s.length - max} characters cut …]\n${s.slice(s.length - (max - head))}`;
}

/** The summary request's one user message: the previous summary and the turns to fold in. */
export function summaryRequestText(previousSummary: string | null, messages: TranscriptMessage[]): string {
  const lines: string[] = [];
  if (previousSummary) lines.push('Summary so far (from an earlier compaction):', previousSummary, '');
  lines.push('The session history to summarise, oldest first:', '');
  for (const m of messages) {
    for (const b of m.content) {
      if (b.type === 'text') lines.push(`${m.role === 'user' ? 'USER' : 'AGENT'}: ${clip(b.text, 6000)}`);
      else if (b.type === 'tool_use')
        lines.push(`TOOL CALL ${b.name} [${b.id}]: ${clip(JSON.stringify(b.input), 2000)}`);
      else
        lines.push(
          `TOOL RESULT [${b.toolUseId}]${b.isError ? ' (error)' : ''}${b.handle ? ` (full output: ${b.handle})` : ''}:\n${clip(b.content, 3000)}`,
        );
    }
    lines.push('');
  }
  lines.push('Write the summary now, in the sections asked for.');
  return lines.join('\n');
}
