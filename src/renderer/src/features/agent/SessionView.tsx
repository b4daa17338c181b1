/**
 * One agent session: what it is about and what it has cost so far (header and meter), the live
 * transcript, and the composer (follow-ups, Stop, the edit / read-only switch on Shift+Tab).
 */
import { useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { AgentMode, Session } from '../../../../shared/contract/agent.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, Callout, ErrorBox, Spinner, UsageBar } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import {
  SESSION_STATUS_LABEL,
  SESSION_STATUS_TONE,
  isActive,
  upsertSession,
  useAgent,
} from '../../stores/agent.ts';
import { rpc } from '../../stores/connection.ts';
import { useProviders } from '../../stores/providers.ts';
import { formatTokens, formatUsd } from './format.ts';
import { Transcript } from './Transcript.tsx';
import { SessionLinks } from './SessionLinks.tsx';
import { useAgentSession } from './useAgentSession.ts';

export const MODE_LABEL: Record<AgentMode, string> = { edit: 'Edit', 'read-only': 'Read-only' };

export function ModeChip({ mode, large }: { mode: AgentMode; large?: boolean }) {
  return (
    <span
      className={`mode-chip mode-${mode}${large ? ' large' : ''}`}
      data-testid="mode-chip"
      data-mode={mode}
      title={
        mode === 'read-only'
          ? 'Read-only: the agent can look, but every tool that changes something is withheld'
          : 'Edit: the agent may create sandboxes and change them (sources stay read-only)'
      }
    >
      <Icon name={mode === 'read-only' ? 'shield' : 'edit'} size={large ? 13 : 11} />
      {mode === 'read-only' ? 'Read-only mode' : 'Edit mode'}
    </span>
  );
}

export function SessionStatusBadge({ status }: { status: Session['status'] }) {
  return (
    <Badge tone={SESSION_STATUS_TONE[status]}>
      {(status === 'running' || status === 'waiting-approval') && (
        <span className="spinner tiny" aria-hidden="true" />
      )}
      <span data-testid="session-status" data-status={status}>
        {SESSION_STATUS_LABEL[status]}
      </span>
    </Badge>
  );
}

function Meter({ session }: { session: Session }) {
  const provider = useProviders((s) => s.list.find((p) => p.id === session.providerId));
  const u = session.usage;
  const ctxTotal = provider?.contextTokens ?? null;
  return (
    <div className="session-meter" aria-label="Usage" role="group">
      <div
        className="meter-item"
        data-testid="meter-tokens"
        data-input={u.inputTokens}
        data-output={u.outputTokens}
      >
        <span className="meter-label">Tokens</span>
        <span className="meter-value">
          {formatTokens(u.inputTokens)} in · {formatTokens(u.outputTokens)} out
        </span>
      </div>
      <div className="meter-item" data-testid="meter-cost" data-cost={u.costUsd}>
        <span className="meter-label">Cost</span>
        <span className="meter-value">
          {formatUsd(u.costUsd)} <span className="muted">of {formatUsd(session.maxCostUsd)}</span>
        </span>
      </div>
      <div className="meter-bar" data-testid="meter-context" data-context={u.contextTokens}>
        <UsageBar
          label="Context"
          used={u.contextTokens}
          total={ctxTotal}
          caption={`${formatTokens(u.contextTokens)} of ${ctxTotal ? formatTokens(ctxTotal) : '?'} tokens`}
        />
      </div>
      <div className="meter-bar" data-testid="meter-steps" data-steps={session.steps}>
        <UsageBar
          label="Steps"
          used={session.steps}
          total={session.maxSteps}
          caption={`${session.steps} of ${session.maxSteps}`}
        />
      </div>
    </div>
  );
}

function SessionHead({ session }: { session: Session }) {
  const provider = useProviders((s) => s.list.find((p) => p.id === session.providerId));
  const now = useNow();
  return (
    <div className="session-head">
      <div className="session-title-row">
        <h2 className="session-title" title={session.title}>
          {session.title}
        </h2>
        <ModeChip mode={session.mode} large />
        <SessionStatusBadge status={session.status} />
      </div>
      <div className="session-sub">
        <span title="Provider and model" data-testid="session-model">
          <Icon name="plug" size={12} /> {provider?.label ?? session.providerId} ·{' '}
          <span className="mono">{session.model}</span>
        </span>
        {(session.host || session.source) && (
          <span title="What the session is about">
            <Icon name="server" size={12} /> {[session.host, session.source].filter(Boolean).join(' / ')}
          </span>
        )}
        <span title={`Started ${formatTime(session.createdAt)}`}>
          <Icon name="clock" size={12} /> started {formatRelative(session.createdAt, now)} by{' '}
          <span className="mono">
            {session.createdBy.door}:{session.createdBy.id}
          </span>
        </span>
      </div>
      <Meter session={session} />
    </div>
  );
}

function LastError({ session }: { session: Session }) {
  const e = session.lastError;
  if (!e) return null;
  const limit = (e.data as { limit?: string } | undefined)?.limit;
  const tone = e.code === 'CANCELLED' ? 'info' : e.code === 'DENIED' && limit ? 'warn' : 'fail';
  const title =
    e.code === 'CANCELLED'
      ? session.status === 'stopped'
        ? 'Stopped'
        : 'Interrupted'
      : limit
        ? `The ${limit} limit was reached`
        : session.status === 'failed'
          ? 'The session failed'
          : 'Note';
  return (
    <div className="session-error" data-testid="session-error" data-code={e.code}>
      <Callout tone={tone} title={title}>
        <p>
          {e.message} <code className="err-code">{e.code}</code>
        </p>
      </Callout>
    </div>
  );
}

function Composer({ session, onQueued }: { session: Session; onQueued: (text: string) => void }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState<'send' | 'stop' | 'mode' | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  const released = useRef(false);
  const active = isActive(session);

  async function run(what: 'send' | 'stop' | 'mode', fn: () => Promise<Session>) {
    setBusy(what);
    setError(null);
    try {
      upsertSession(await fn());
      return true;
    } catch (err) {
      setError(toErrorInfo(err));
      return false;
    } finally {
      setBusy(null);
    }
  }

  async function send(e?: FormEvent) {
    e?.preventDefault();
    const t = text.trim();
    if (!t || busy === 'send') return;
    // While it runs, the message waits for the agent's next step: show it as queued until then.
    const wasActive = active;
    if (await run('send', () => rpc().call('agent.send', { sessionId: session.id, text: t }))) {
      setText('');
      if (wasActive) onQueued(t);
    }
    ref.current?.focus();
  }

  const setMode = (mode: AgentMode) =>
    mode !== session.mode &&
    void run('mode', () => rpc().call('agent.setMode', { sessionId: session.id, mode }));

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    // Escape, then Shift+Tab: leave the composer backwards, as everywhere else.
    const escaped = released.current;
    released.current = e.key === 'Escape';
    if (e.key === 'Tab' && e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      if (escaped) return;
      e.preventDefault();
      setMode(session.mode === 'edit' ? 'read-only' : 'edit');
    } else if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  }

  const hintId = `composer-hint-${session.id}`;
  return (
    <form
      className={`composer mode-${session.mode}`}
      onSubmit={(e) => void send(e)}
      aria-label="Message the agent"
    >
      <textarea
        ref={ref}
        className="input textarea composer-input"
        rows={2}
        aria-label="Message to the agent"
        aria-describedby={hintId}
        placeholder={
          active
            ? 'Add something while it works (it reads it before its next step)…'
            : session.status === 'done'
              ? 'Send a follow-up…'
              : 'Send a message to continue…'
        }
        value={text}
        maxLength={100_000}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="composer-bar">
        <div className="segmented mode-toggle" role="radiogroup" aria-label="Mode">
          {(['edit', 'read-only'] as const).map((m) => (
            <label key={m} className={session.mode === m ? `seg active mode-${m}` : 'seg'}>
              <input
                type="radio"
                name={`mode-${session.id}`}
                value={m}
                checked={session.mode === m}
                disabled={busy === 'mode'}
                onChange={() => setMode(m)}
              />
              <Icon name={m === 'read-only' ? 'shield' : 'edit'} size={12} /> {MODE_LABEL[m]}
            </label>
          ))}
        </div>
        <span
          className="muted small composer-hint"
          id={hintId}
          title="Shift+Tab switches between edit and read-only; press Escape first to move the focus back instead"
        >
          <kbd>Enter</kbd> send · <kbd>Shift</kbd>+<kbd>Enter</kbd> new line · <kbd>Shift</kbd>+<kbd>Tab</kbd>{' '}
          mode
        </span>
        {active && (
          <button
            type="button"
            className="btn btn-danger-ghost"
            onClick={() => void run('stop', () => rpc().call('agent.stop', { sessionId: session.id }))}
            disabled={busy === 'stop'}
          >
            <Icon name="stop" size={13} /> {busy === 'stop' ? 'Stopping…' : 'Stop'}
          </button>
        )}
        <button type="submit" className="btn btn-primary" disabled={!text.trim() || busy === 'send'}>
          <Icon name="play" size={13} /> {busy === 'send' ? 'Sending…' : 'Send'}
        </button>
      </div>
      {error && <ErrorBox error={error} title="That did not work" />}
    </form>
  );
}

export function SessionView({ sessionId }: { sessionId: string }) {
  const { state, error, live } = useAgentSession(sessionId);
  const fromStore = useAgent((s) => s.byId[sessionId]);
  const [queued, setQueued] = useState<{ text: string; afterSeq: number }[]>([]);
  // Sent while it ran: shown until the agent takes them in (a user message with text after them).
  const lastUserSeq = state.messages.reduce(
    (acc, m) => (m.role === 'user' && m.content.some((b) => b.type === 'text') ? m.seq : acc),
    0,
  );
  const waiting = queued.filter((q) => lastUserSeq <= q.afterSeq).map((q) => q.text);
  // The stream and the store (agent.changed, this window's calls) may each be ahead: newest wins.
  const session =
    state.session && fromStore
      ? fromStore.updatedAt > state.session.updatedAt
        ? fromStore
        : state.session
      : (state.session ?? fromStore ?? null);

  if (error && !session) return <ErrorBox error={error} title="This session could not be opened" />;
  if (!session)
    return (
      <div className="pad">
        <Spinner label="Opening the session" />
      </div>
    );
  return (
    <div
      className="session-view"
      data-session={session.id}
      data-status={session.status}
      data-mode={session.mode}
    >
      <SessionHead session={session} />
      {error && (
        <div className="session-error">
          <ErrorBox error={error} title="Live updates stopped" />
        </div>
      )}
      <Transcript state={state} sessionId={session.id} working={live && isActive(session)} queued={waiting} />
      <LastError session={session} />
      <SessionLinks session={session} />
      <Composer
        session={session}
        onQueued={(text) => setQueued((q) => [...q, { text, afterSeq: state.messages.at(-1)?.seq ?? 0 }])}
      />
    </div>
  );
}
