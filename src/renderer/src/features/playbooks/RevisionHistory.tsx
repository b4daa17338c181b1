/** A playbook's revisions, newest first, and the diff between any two of them. */
import { useState } from 'react';
import { ErrorBox, Spinner } from '../../components/ui.tsx';
import { formatTime, shortHash } from '../../lib/format.ts';
import { useBackendQuery } from '../../lib/hooks.ts';

export function DiffText({ text }: { text: string }) {
  return (
    <pre className="pb-diff" data-testid="revision-diff">
      {text.split('\n').map((l, i) => (
        <span
          key={i}
          className={
            l.startsWith('+') && !l.startsWith('+++')
              ? 'add'
              : l.startsWith('-') && !l.startsWith('---')
                ? 'del'
                : l.startsWith('@@')
                  ? 'hunk'
                  : undefined
          }
        >
          {l}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

export function RevisionHistory({ playbookId, head }: { playbookId: string; head: number }) {
  const list = useBackendQuery(
    (b, signal) => b.call('playbooks.revisions', { playbook: playbookId }, { signal }),
    [playbookId],
    [head],
  );
  const [to, setTo] = useState(head);
  const [from, setFrom] = useState(Math.max(1, head - 1));
  const diff = useBackendQuery(
    from !== to
      ? (b, signal) => b.call('playbooks.revisionDiff', { playbook: playbookId, from, to }, { signal })
      : null,
    [playbookId, from, to],
  );
  if (list.error) return <ErrorBox error={list.error} title="Could not load the history" />;
  if (!list.data) return <Spinner label="Loading the history" />;
  return (
    <div className="pb-history">
      <table className="table" aria-label="Revisions">
        <thead>
          <tr>
            <th>From</th>
            <th>To</th>
            <th>Revision</th>
            <th>sha256</th>
            <th>Who</th>
            <th>What</th>
            <th>When</th>
          </tr>
        </thead>
        <tbody>
          {list.data.map((r) => (
            <tr key={r.number} data-testid="revision-row">
              <td>
                <input
                  type="radio"
                  name="from"
                  aria-label={`Compare from revision ${r.number}`}
                  checked={from === r.number}
                  onChange={() => setFrom(r.number)}
                />
              </td>
              <td>
                <input
                  type="radio"
                  name="to"
                  aria-label={`Compare to revision ${r.number}`}
                  checked={to === r.number}
                  onChange={() => setTo(r.number)}
                />
              </td>
              <td className="mono">{r.number}</td>
              <td className="mono">{shortHash(r.sha256, 16)}</td>
              <td>
                {r.author.door}:{r.author.id}
              </td>
              <td>
                <span className="muted">{r.origin}</span> {r.message}
              </td>
              <td className="muted">{formatTime(r.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {from === to ? (
        <p className="muted">Choose two different revisions to compare.</p>
      ) : diff.error ? (
        <ErrorBox error={diff.error} title="Could not compare the revisions" />
      ) : !diff.data ? (
        <Spinner label="Comparing" />
      ) : diff.data.diff ? (
        <DiffText text={diff.data.diff} />
      ) : (
        <p className="muted">
          Revisions {from} and {to} are the same.
        </p>
      )}
    </div>
  );
}
