/**
 * One session as the view sees it, folded from agent.watch: the snapshot (session + transcript),
 * then messages, streamed text, tool-call progress, status, retries and compactions. Pure, so the
 * transcript can be rebuilt from any prefix of the stream (a reconnection starts with a new snapshot).
 */
import type {
  AgentEvent,
  Session,
  TranscriptBlock,
  TranscriptMessage,
} from '../../../../shared/contract/agent.ts';

export type ToolCallEvent = Extract<AgentEvent, { type: 'tool_call' }>;
export type ToolCallStatus = ToolCallEvent['status'];
/**
 * The contract's statuses, plus what the transcript alone can tell: not started yet, never answered,
 * and `exited`: a command that ran and exited non-zero (`systemctl is-active` → 3). That is an answer,
 * not a failure of the tool; `error` is a tool that could not do its work at all.
 */
export type CardStatus = ToolCallStatus | 'queued' | 'no-result' | 'exited';

/**
 * The exit code of a command tool's result (run_command, run_source_command), whose text starts with
 * "exit code: N"; null for anything else (a timeout reads "exit code: timed out (killed)": a failure).
 */
export function commandExit(content: string | null | undefined): number | null {
  const m = /^exit code: (-?\d+)\s*(\n|$)/.exec(content ?? '');
  return m ? Number(m[1]) : null;
}

export type Notice =
  | {
      kind: 'retry';
      key: number;
      afterSeq: number;
      attempt: number;
      delayMs: number;
      reason: string;
      at: number;
    }
  | { kind: 'compaction'; key: number; afterSeq: number; summary: string };

export interface SessionState {
  session: Session | null;
  messages: TranscriptMessage[];
  /** Text of the reply being streamed. */
  partial: string;
  /** The latest tool_call event per tool-use id, kept after it ends (denied is only known from it). */
  calls: Record<string, ToolCallEvent>;
  notices: Notice[];
  /** Bumped by every event that changes what is shown (auto-scroll follows it). */
  rev: number;
}

export const EMPTY_SESSION_STATE: SessionState = {
  session: null,
  messages: [],
  partial: '',
  calls: {},
  notices: [],
  rev: 0,
};

const ENDED: ToolCallStatus[] = ['done', 'denied', 'error'];

let noticeKey = 0;

function insertMessage(list: TranscriptMessage[], m: TranscriptMessage): TranscriptMessage[] {
  const i = list.findIndex((x) => x.seq === m.seq);
  if (i >= 0) return list.map((x, j) => (j === i ? m : x));
  const last = list.at(-1);
  if (!last || last.seq < m.seq) return [...list, m];
  return [...list, m].sort((a, b) => a.seq - b.seq);
}

export function reduceSession(
  s: SessionState,
  ev: AgentEvent | { type: 'reset' },
  now = Date.now(),
): SessionState {
  const rev = s.rev + 1;
  switch (ev.type) {
    case 'reset':
      return { ...EMPTY_SESSION_STATE, rev };
    case 'snapshot':
      // Live calls and the partial reply are sent again right after the snapshot. Denied calls that
      // ended before it keep their status from what this view saw already.
      return {
        session: ev.session,
        messages: ev.messages,
        partial: '',
        calls: Object.fromEntries(Object.entries(s.calls).filter(([, c]) => ENDED.includes(c.status))),
        notices: s.notices.filter((n) => n.kind === 'compaction'),
        rev,
      };
    case 'message':
      return {
        ...s,
        messages: insertMessage(s.messages, ev.message),
        // The reply is persisted: its text is in the message now.
        partial: ev.message.role === 'assistant' ? '' : s.partial,
        rev,
      };
    case 'text_delta':
      return { ...s, partial: s.partial + ev.text, rev };
    case 'text_reset':
      return { ...s, partial: '', rev };
    case 'tool_call':
      return { ...s, calls: { ...s.calls, [ev.id]: ev }, rev };
    case 'status':
      return { ...s, session: ev.session, rev };
    case 'retry':
      return {
        ...s,
        notices: [
          ...s.notices,
          {
            kind: 'retry',
            key: ++noticeKey,
            afterSeq: s.messages.at(-1)?.seq ?? 0,
            attempt: ev.attempt,
            delayMs: ev.delayMs,
            reason: ev.reason,
            at: now,
          },
        ],
        rev,
      };
    case 'compaction':
      return {
        ...s,
        messages: s.messages.map((m) =>
          m.seq <= ev.compactedThrough && !m.compacted ? { ...m, compacted: true } : m,
        ),
        notices: [
          ...s.notices,
          { kind: 'compaction', key: ++noticeKey, afterSeq: ev.compactedThrough, summary: ev.summary },
        ],
        rev,
      };
    default:
      return s;
  }
}

// ---- the transcript as rows ------------------------------------------------------------------------

export type ToolResultBlock = Extract<TranscriptBlock, { type: 'tool_result' }>;

export interface ToolCallView {
  id: string;
  name: string;
  input: Record<string, unknown>;
  status: CardStatus;
  approvalId: string | null;
  output: string | null;
  isError: boolean;
  handle: string | null;
  /** A command's exit code (from its result), or null. */
  exitCode: number | null;
}

export type Row =
  | { kind: 'user'; key: string; seq: number; text: string; createdAt: string; compacted: boolean }
  | { kind: 'assistant'; key: string; seq: number; text: string; createdAt: string; compacted: boolean }
  | { kind: 'tool'; key: string; seq: number; call: ToolCallView }
  | { kind: 'compacted'; key: string; seq: number; summary: string | null }
  | { kind: 'notice'; key: string; notice: Extract<Notice, { kind: 'retry' }> }
  | { kind: 'partial'; key: string; text: string };

/** A result says whether a person refused the call (the gate's wording: "… was denied by …"). */
export function looksDenied(content: string): boolean {
  return (
    /^Denied( by policy)?:/.test(content) || /^Not done: \S+ was (denied|expired|cancelled)\b/.test(content)
  );
}

function statusOf(
  live: ToolCallEvent | undefined,
  result: ToolResultBlock | undefined,
  active: boolean,
  started: boolean,
): CardStatus {
  if (result) {
    const status: CardStatus =
      live && ENDED.includes(live.status)
        ? live.status
        : result.isError
          ? looksDenied(result.content)
            ? 'denied'
            : 'error'
          : 'done';
    return status === 'error' && (commandExit(result.content) ?? 0) !== 0 ? 'exited' : status;
  }
  if (live) return live.status === 'error' && (commandExit(live.output) ?? 0) !== 0 ? 'exited' : live.status;
  if (!active) return 'no-result';
  return started ? 'running' : 'queued';
}

/** The transcript in display order: messages, tool calls with their results, notices, the live reply. */
export function buildRows(s: SessionState): Row[] {
  const results = new Map<string, ToolResultBlock>();
  for (const m of s.messages)
    for (const b of m.content) if (b.type === 'tool_result') results.set(b.toolUseId, b);
  const active = s.session?.status === 'running' || s.session?.status === 'waiting-approval';
  const rows: Row[] = [];
  const lastCompacted = s.messages.reduce((acc, m) => (m.compacted ? m.seq : acc), 0);
  const shown = new Set<string>();
  // Retries and compactions after a message, in the order they happened.
  const pushNotices = (seq: number) => {
    const here = s.notices.filter((n) => n.afterSeq === seq);
    // A compaction known only from the transcript (loaded later) has no event: its line comes first.
    if (seq > 0 && seq === lastCompacted && !here.some((n) => n.kind === 'compaction'))
      rows.push({ kind: 'compacted', key: `c${seq}`, seq, summary: null });
    for (const n of here) {
      if (n.kind === 'retry') rows.push({ kind: 'notice', key: `n${n.key}`, notice: n });
      else rows.push({ kind: 'compacted', key: `n${n.key}`, seq, summary: n.summary });
    }
  };
  pushNotices(0);
  for (const m of s.messages) {
    const text = m.content
      .filter((b) => b.type === 'text')
      .map((b) => (b as { text: string }).text)
      .join('\n\n')
      .trim();
    if (text)
      rows.push({
        kind: m.role,
        key: `m${m.seq}`,
        seq: m.seq,
        text,
        createdAt: m.createdAt,
        compacted: m.compacted,
      });
    if (m.role === 'assistant') {
      const uses = m.content.filter((b) => b.type === 'tool_use');
      // Calls run one after another: those after one without a result have not started yet.
      let started = true;
      for (const u of uses) {
        const result = results.get(u.id);
        const live = s.calls[u.id];
        const status = statusOf(live, result, active, started || !!live);
        // The next call starts only once this one has its result.
        if (!result) started = false;
        shown.add(u.id);
        rows.push({
          kind: 'tool',
          key: `t${u.id}`,
          seq: m.seq,
          call: {
            id: u.id,
            name: u.name,
            input: u.input,
            status,
            approvalId: live?.approvalId ?? null,
            output: result?.content ?? live?.output ?? null,
            isError: result?.isError ?? live?.isError ?? false,
            handle: result?.handle ?? live?.handle ?? null,
            exitCode: commandExit(result?.content ?? live?.output),
          },
        });
      }
    }
    pushNotices(m.seq);
  }
  // Calls announced before their message arrived (a snapshot taken mid-turn).
  for (const c of Object.values(s.calls)) {
    if (shown.has(c.id)) continue;
    rows.push({
      kind: 'tool',
      key: `t${c.id}`,
      seq: Number.MAX_SAFE_INTEGER,
      call: {
        id: c.id,
        name: c.name,
        input: c.input,
        status: c.status === 'error' && (commandExit(c.output) ?? 0) !== 0 ? 'exited' : c.status,
        approvalId: c.approvalId ?? null,
        output: c.output ?? null,
        isError: c.isError ?? false,
        handle: c.handle ?? null,
        exitCode: commandExit(c.output),
      },
    });
  }
  if (s.partial) rows.push({ kind: 'partial', key: 'partial', text: s.partial });
  return rows;
}
