/**
 * What a session made, linked: its sandboxes, their snapshots, the approvals it asked for and its
 * audit rows, with names beside ids (agent.sessions.links). When the session has ended (done,
 * failed, stopped) and sandboxes it made still live, the person is offered to keep or destroy them.
 */
import { useCallback, useEffect, useState } from 'react';
import type { Session, SessionLinks as Links } from '../../../../shared/contract/agent.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, Callout, ErrorBox } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import { rpc, useConnection, useOnline } from '../../stores/connection.ts';
import './links.css';

const ENDED: Session['status'][] = ['done', 'failed', 'stopped'];

const keptKey = (id: string) => `fluid.session-kept.${id}`;

export function SessionLinks({ session }: { session: Session }) {
  const [links, setLinks] = useState<Links | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const [kept, setKept] = useState<string[]>(() => {
    try {
      return JSON.parse(localStorage.getItem(keptKey(session.id)) ?? '[]') as string[];
    } catch {
      return [];
    }
  });
  const online = useOnline();
  const generation = useConnection((s) => s.generation);
  const now = useNow(30_000);

  const load = useCallback(
    () =>
      Promise.resolve()
        .then(() => rpc().call('agent.sessions.links', { sessionId: session.id, auditLimit: 30 }))
        .then(setLinks, () => {
          /* offline or gone: the panel keeps what it had */
        }),
    [session.id],
  );

  useEffect(() => {
    if (!online) return;
    void load();
    let off = () => {};
    try {
      off = rpc().on('sandboxes.changed', () => void load());
    } catch {
      /* offline */
    }
    return off;
  }, [load, online, generation, session.status, session.updatedAt]);

  if (!links) return null;
  const live = links.sandboxes.filter((s) => s.live);
  const ended = ENDED.includes(session.status) || (session.status === 'idle' && !!session.lastError);
  const undecided = live.filter((s) => !kept.includes(s.id));

  function keep() {
    const ids = live.map((s) => s.id);
    localStorage.setItem(keptKey(session.id), JSON.stringify(ids));
    setKept(ids);
  }

  async function destroy() {
    setBusy(true);
    setError(null);
    try {
      const r = await rpc().call('agent.sessions.destroySandboxes', { sessionId: session.id });
      if (r.failed.length)
        setError({
          code: 'INTERNAL',
          message: r.failed.map((f) => `${f.name}: ${f.error}`).join('; '),
        });
      await load();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }

  const total = links.sandboxes.length + links.snapshots.length + links.approvals.length;
  return (
    <div className="session-links" data-testid="session-links">
      {ended && undecided.length > 0 && (
        <div className="session-error">
          <Callout
            tone={session.status === 'done' ? 'info' : 'warn'}
            title={`This session ${session.status === 'done' ? 'finished' : 'ended'} and left ${undecided.length === 1 ? 'a sandbox' : `${undecided.length} sandboxes`}`}
          >
            <p>
              {undecided.map((s, i) => (
                <span key={s.id}>
                  {i > 0 && ', '}
                  <a href={href('sandboxes', s.id)}>{s.name}</a>
                  {s.expiresAt && (
                    <span className="muted">
                      {' '}
                      (expires {formatRelative(s.expiresAt, now).replace(' ago', '')})
                    </span>
                  )}
                </span>
              ))}
              . Keep {undecided.length === 1 ? 'it' : 'them'} to look at the changes, or destroy{' '}
              {undecided.length === 1 ? 'it' : 'them'} now.
            </p>
            <div className="inline-actions">
              <button type="button" className="btn" onClick={keep} disabled={busy}>
                Keep
              </button>
              <button
                type="button"
                className="btn btn-danger"
                onClick={() => void destroy()}
                disabled={busy || !online}
                data-testid="destroy-session-sandboxes"
              >
                <Icon name="trash" size={12} />{' '}
                {busy ? 'Destroying…' : `Destroy ${undecided.length === 1 ? 'it' : 'them'}`}
              </button>
            </div>
            {error && <ErrorBox error={error} title="Not everything was destroyed" />}
          </Callout>
        </div>
      )}
      {(total > 0 || links.auditTotal > 0) && (
        <details className="session-made">
          <summary>
            Made by this session: {links.sandboxes.length} sandbox{links.sandboxes.length === 1 ? '' : 'es'},{' '}
            {links.snapshots.length} snapshot{links.snapshots.length === 1 ? '' : 's'},{' '}
            {links.approvals.length} approval{links.approvals.length === 1 ? '' : 's'}, {links.auditTotal}{' '}
            audit row
            {links.auditTotal === 1 ? '' : 's'}
          </summary>
          {links.sandboxes.length > 0 && (
            <ul className="plain-list">
              {links.sandboxes.map((s) => (
                <li key={s.id}>
                  <a href={href('sandboxes', s.id)}>{s.name}</a>{' '}
                  <Badge tone={s.live ? 'ok' : 'neutral'}>{s.state}</Badge>{' '}
                  <span className="muted small">
                    {s.sourceName} on {s.hostName} · <span className="mono">{s.id.slice(0, 8)}</span>
                  </span>
                </li>
              ))}
            </ul>
          )}
          {links.snapshots.length > 0 && (
            <ul className="plain-list">
              {links.snapshots.map((s) => (
                <li key={s.id}>
                  snapshot <strong>{s.name}</strong> of{' '}
                  <a href={href('sandboxes', s.sandboxId, 'snapshots')}>{s.sandboxName}</a>{' '}
                  <span className="muted small">{formatTime(s.createdAt)}</span>
                </li>
              ))}
            </ul>
          )}
          {links.approvals.length > 0 && (
            <ul className="plain-list">
              {links.approvals.map((a) => (
                <li key={a.id}>
                  <Badge tone={a.status === 'approved' ? 'ok' : a.status === 'pending' ? 'warn' : 'neutral'}>
                    {a.status}
                  </Badge>{' '}
                  {a.title}
                  {a.sandboxName && <span className="muted small"> · {a.sandboxName}</span>}
                </li>
              ))}
            </ul>
          )}
          {links.audit.length > 0 && (
            <ul className="plain-list mono small">
              {links.audit.map((r) => (
                <li key={r.seq}>
                  #{r.seq} {formatTime(r.ts)} {r.action}
                  {r.target && <> → {r.targetName ?? r.target.slice(0, 8)}</>}{' '}
                  <span className="muted">({r.actor.startsWith('agent:') ? 'the agent' : r.actor})</span>
                </li>
              ))}
              {links.auditTotal > links.audit.length && (
                <li className="muted">
                  … {links.auditTotal - links.audit.length} more in <a href={href('audit')}>Audit</a>
                </li>
              )}
            </ul>
          )}
        </details>
      )}
    </div>
  );
}
