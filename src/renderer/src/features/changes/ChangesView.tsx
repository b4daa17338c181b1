/**
 * Changes: every change submitted for review (newest first), the production targets with the history
 * of what was applied to each, and the Review page of one change (#/changes/<id>).
 */
import { useEffect } from 'react';
import type { Apply, Change, Target } from '../../../../shared/contract/changes.ts';
import { Badge, EmptyState, ErrorBox, Section, Spinner } from '../../components/ui.tsx';
import { formatTime, shortHash } from '../../lib/format.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { ApplyResult, APPLY_TONE } from './ApplyLog.tsx';
import { ReviewPage, STATUS_TONE } from './ReviewPage.tsx';
import './changes.css';

/** Reload on any change or target event (from this window, another door or another process). */
function useLiveReload(reload: () => void): void {
  const generation = useConnection((s) => s.generation);
  useEffect(() => {
    const b = rpc();
    const offs = [b.on('changes.changed', () => reload()), b.on('targets.changed', () => reload())];
    return () => offs.forEach((off) => off());
  }, [generation, reload]);
}

function ChangeList() {
  const q = useBackendQuery<Array<Omit<Change, 'preview'>>>((b) => b.call('changes.list', {}), []);
  const t = useBackendQuery<Target[]>((b) => b.call('targets.list', {}), []);
  useLiveReload(q.reload);
  useLiveReload(t.reload);
  if (q.error) return <ErrorBox error={q.error} />;
  if (!q.data || !t.data) return <Spinner label="Loading changes" />;
  return (
    <div className="page-pad changes-page">
      <Section title="Changes for review">
        {q.data.length === 0 ? (
          <EmptyState icon="layers" title="Nothing to review">
            <p>
              An agent submits its sandbox’s change with <code>request_apply</code>, or you do with{' '}
              <code>fluid change submit --sandbox S --target T</code>. Each change is verified, previewed on
              the target in check mode and sealed into one bundle before it shows up here.
            </p>
          </EmptyState>
        ) : (
          <table className="table changes-table" aria-label="Changes">
            <thead>
              <tr>
                <th>Change</th>
                <th>Status</th>
                <th>Target</th>
                <th>Bundle</th>
                <th>Submitted</th>
              </tr>
            </thead>
            <tbody>
              {q.data.map((c) => (
                <tr key={c.id} data-change={c.id}>
                  <td>
                    <a href={href('changes', c.id)}>{c.title}</a>
                  </td>
                  <td>
                    <Badge tone={STATUS_TONE[c.status]}>{c.status}</Badge>
                  </td>
                  <td>{c.target.name}</td>
                  <td className="mono small">{c.sha256 ? shortHash(c.sha256) : '—'}</td>
                  <td className="small">
                    {formatTime(c.createdAt)} · {c.createdBy.door}:{c.createdBy.id}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Production targets">
        {t.data.length === 0 ? (
          <p className="muted">
            No targets. Add one with <code>fluid target add NAME user@address --key FILE [--jump HOST]</code>.
          </p>
        ) : (
          <ul className="targets-list">
            {t.data.map((x) => (
              <li key={x.id}>
                <a href={href('changes', 'targets', x.name)}>{x.name}</a>{' '}
                <span className="muted small">
                  {x.user}@{x.address}:{x.port}
                  {x.jump ? ` through ${x.jump.hostName}` : ''} · {x.hostKey?.fingerprint ?? 'no host key'}
                </span>{' '}
                {x.lockedBy && <Badge tone="info">applying</Badge>}
              </li>
            ))}
          </ul>
        )}
      </Section>
    </div>
  );
}

function TargetHistory({ target }: { target: string }) {
  const tq = useBackendQuery<Target>((b) => b.call('targets.get', { target }), [target]);
  const q = useBackendQuery<Apply[]>((b) => b.call('changes.applies', { target }), [target]);
  useLiveReload(q.reload);
  useLiveReload(tq.reload);
  if (tq.error)
    return (
      <div className="page-pad">
        <ErrorBox error={tq.error} />
      </div>
    );
  if (!tq.data || !q.data) return <Spinner label="Loading the target" />;
  const x = tq.data;
  return (
    <div className="page-pad changes-page">
      <p className="muted small">
        <a href={href('changes')}>Changes</a> / targets
      </p>
      <h2>{x.name}</h2>
      <dl className="kv">
        <dt>Login</dt>
        <dd>
          {x.user}@{x.address}:{x.port}
          {x.jump ? ` through ${x.jump.hostName}` : ''}, become {x.become}
        </dd>
        <dt>Host key</dt>
        <dd className="mono">{x.hostKey ? `${x.hostKey.type} ${x.hostKey.fingerprint}` : 'none'}</dd>
        <dt>Key held</dt>
        <dd className="mono">{x.credential.fingerprint}</dd>
        {x.sourceVm && (
          <>
            <dt>Production copy of</dt>
            <dd>
              {x.sourceVm.vm} on {x.sourceVm.hostName}
            </dd>
          </>
        )}
        {x.lastBaseline && (
          <>
            <dt>State</dt>
            <dd className="mono small">
              {shortHash(x.lastBaseline.sha256, 16)} after the apply of {formatTime(x.lastBaseline.takenAt)}
            </dd>
          </>
        )}
      </dl>
      <Section title="Apply history">
        {q.data.length === 0 ? (
          <p className="muted">Nothing was applied to {x.name} yet.</p>
        ) : (
          <ol className="apply-history" aria-label={`Applies to ${x.name}`} data-testid="target-history">
            {q.data.map((a) => (
              <li key={a.id} data-apply={a.id} data-status={a.status}>
                <Badge tone={APPLY_TONE[a.status]}>{a.status}</Badge> {formatTime(a.startedAt)} ·{' '}
                <a href={href('changes', a.changeId)}>{a.changeTitle}</a> · bundle{' '}
                <code className="hash">{shortHash(a.bundleSha256)}</code>
                {a.approvedBy && (
                  <span className="muted small">
                    {' '}
                    · approved by {a.approvedBy.door}:{a.approvedBy.id} ({a.approvedVia})
                  </span>
                )}
                <p className="small">{a.summary}</p>
                <details>
                  <summary className="small">Details</summary>
                  <ApplyResult apply={a} />
                </details>
              </li>
            ))}
          </ol>
        )}
      </Section>
    </div>
  );
}

export function ChangesView({ sub }: { sub: string[] }) {
  const [first, second] = sub;
  if (!first) return <ChangeList />;
  if (first === 'targets' && second) return <TargetHistory target={second} />;
  return <ReviewPage changeRef={first} />;
}
