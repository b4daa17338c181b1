/**
 * The conversation: the task and follow-ups, the agent's replies (streaming in live), tool calls,
 * retries and compactions. It follows new output while the reader is at the bottom, and stops
 * following as soon as they scroll up (a button brings them back).
 */
import { useLayoutEffect, useMemo, useRef, useState } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { formatTime } from '../../lib/format.ts';
import { retryText } from './format.ts';
import { afterOutput, atBottom } from './follow.ts';
import { buildRows, type Row, type SessionState } from './sessionState.ts';
import { ToolCallCard } from './ToolCallCard.tsx';
import { RichText } from './ToolArgs.tsx';

function RowView({ row, sessionId, first }: { row: Row; sessionId: string; first: boolean }) {
  switch (row.kind) {
    case 'user':
      return (
        <div className="msg msg-user" data-role="user" data-seq={row.seq} data-compacted={row.compacted}>
          <div className="msg-who">
            {first ? 'Task' : 'You'}
            <span className="msg-at" title={formatTime(row.createdAt)}>
              {new Date(row.createdAt).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}
            </span>
          </div>
          <div className="msg-text plain">{row.text}</div>
        </div>
      );
    case 'assistant':
      return (
        <div
          className="msg msg-assistant"
          data-role="assistant"
          data-seq={row.seq}
          data-compacted={row.compacted}
        >
          <div className="msg-who">
            <Icon name="agent" size={13} /> Agent
          </div>
          <div className="msg-text">
            <RichText text={row.text} />
          </div>
        </div>
      );
    case 'partial':
      return (
        <div className="msg msg-assistant streaming" data-role="assistant" data-streaming="true">
          <div className="msg-who">
            <Icon name="agent" size={13} /> Agent <span className="muted small">writing…</span>
          </div>
          <div className="msg-text plain" data-testid="partial-reply">
            {row.text}
            <span className="caret" aria-hidden="true" />
          </div>
        </div>
      );
    case 'tool':
      return <ToolCallCard call={row.call} sessionId={sessionId} />;
    case 'compacted':
      return (
        <div className="transcript-notice compaction" role="note" data-testid="compaction-notice">
          <Icon name="layers" size={13} />
          <div>
            <div>
              Earlier turns were compacted: the model now sees a summary of everything above this line (still
              shown here in full).
            </div>
            {row.summary && (
              <details className="compaction-summary">
                <summary>The summary</summary>
                <RichText text={row.summary} />
              </details>
            )}
          </div>
        </div>
      );
    case 'notice':
      return (
        <div className="transcript-notice retry" role="note" data-testid="retry-notice">
          <Icon name="refresh" size={13} />
          <span>{retryText(row.notice)}</span>
        </div>
      );
  }
}

export function Transcript({
  state,
  sessionId,
  working,
  queued = [],
}: {
  state: SessionState;
  sessionId: string;
  /** The session runs: show that something is happening between events. */
  working: boolean;
  /** Messages sent while it runs, not taken in yet. */
  queued?: string[];
}) {
  const rows = useMemo(() => buildRows(state), [state]);
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  /** Where the last follow left the view: a reader's scroll away from it may not have fired yet. */
  const followedTo = useRef(0);
  const [away, setAway] = useState(false);
  const firstUser = rows.find((r) => r.kind === 'user')?.key;

  function onScroll() {
    const el = ref.current;
    if (!el) return;
    const bottom = atBottom(el);
    stick.current = bottom;
    setAway(!bottom);
  }

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || !stick.current) return;
    // A reader who scrolled up since the last follow is not pulled back before onScroll hears of it.
    if (afterOutput(el, followedTo.current) === 'away') {
      stick.current = false;
      setAway(true);
      return;
    }
    el.scrollTop = el.scrollHeight;
    followedTo.current = el.scrollTop;
  }, [state.rev, working, queued.length]);

  function jump() {
    const el = ref.current;
    if (!el) return;
    stick.current = true;
    setAway(false);
    el.scrollTop = el.scrollHeight;
    followedTo.current = el.scrollTop;
  }

  const last = rows.at(-1);
  const thinking =
    working && last?.kind !== 'partial' && !(last?.kind === 'tool' && last.call.status !== 'done');
  return (
    <div className="transcript-wrap">
      <div
        className="transcript"
        ref={ref}
        onScroll={onScroll}
        role="log"
        aria-label="Transcript"
        aria-busy={state.partial ? true : undefined}
        tabIndex={0}
        data-following={away ? 'false' : 'true'}
      >
        {rows.map((r) => (
          <RowView key={r.key} row={r} sessionId={sessionId} first={r.key === firstUser} />
        ))}
        {queued.map((text, i) => (
          <div key={i} className="msg msg-user queued" data-role="user" data-queued="true">
            <div className="msg-who">
              You <span className="msg-at">queued: the agent reads it before its next step</span>
            </div>
            <div className="msg-text plain">{text}</div>
          </div>
        ))}
        {thinking && (
          <div className="thinking" aria-label="The agent is working">
            <span className="spinner tiny" aria-hidden="true" /> Working…
          </div>
        )}
      </div>
      {away && (
        <button type="button" className="btn btn-small jump-latest" onClick={jump}>
          <Icon name="download" size={12} /> Jump to latest
        </button>
      )}
    </div>
  );
}
