/**
 * The verification report: which revision it is about (and whether the playbook moved on since:
 * stale), each of the five steps with its status, time, summary, warnings, item-by-item differences,
 * per-task results, and its full log; the live task while it runs; "Verify again".
 */
import type { Task } from '../../../../shared/contract/tasks.ts';
import type { VerifyStep } from '../../../../shared/contract/playbooks.ts';
import { TaskProgress } from '../../components/TaskProgress.tsx';
import { Badge, EmptyState, ErrorBox, Spinner } from '../../components/ui.tsx';
import { formatDuration, formatTime, shortHash } from '../../lib/format.ts';
import { useBackendQuery } from '../../lib/hooks.ts';

const TONE: Record<VerifyStep['status'], 'ok' | 'fail' | 'neutral' | 'info' | 'warn'> = {
  passed: 'ok',
  failed: 'fail',
  skipped: 'neutral',
  pending: 'neutral',
  running: 'info',
  cancelled: 'warn',
};

function Step({ s, n }: { s: VerifyStep; n: number }) {
  return (
    <li
      className={`pb-step pb-step-${s.status}`}
      data-testid="verify-step"
      data-step={s.id}
      data-status={s.status}
    >
      <div className="pb-step-head">
        <span className="pb-step-n">{n}</span>
        <strong>{s.title}</strong> <Badge tone={TONE[s.status]}>{s.status}</Badge>
        {s.durationMs !== null && <span className="muted small">{formatDuration(s.durationMs)}</span>}
      </div>
      {s.summary && <p className="pb-step-summary">{s.summary}</p>}
      {s.warnings.length > 0 && (
        <ul className="pb-step-warnings">
          {s.warnings.map((w, i) => (
            <li key={i}>{w}</li>
          ))}
        </ul>
      )}
      {s.differences && s.differences.length > 0 && (
        <table className="table" aria-label="Differences">
          <thead>
            <tr>
              <th>Difference</th>
              <th>Kind</th>
              <th>Item</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {s.differences.map((d) => (
              <tr key={d.id + d.difference} data-testid="verify-difference">
                <td>
                  <Badge tone={d.difference === 'different' ? 'warn' : 'fail'}>{d.difference}</Badge>
                </td>
                <td>{d.kind}</td>
                <td className="mono">{d.key}</td>
                <td>{d.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {s.tasks && s.tasks.length > 0 && (
        <details className="pb-step-tasks">
          <summary>
            {s.tasks.length} task results, {s.tasks.filter((t) => t.changed).length} changed
          </summary>
          <table className="table" aria-label="Task results">
            <tbody>
              {s.tasks.map((t, i) => (
                <tr key={i} className={t.changed && s.id === 'idempotence' ? 'pb-changed-again' : undefined}>
                  <td>
                    <Badge
                      tone={
                        t.status === 'failed' || t.status === 'unreachable'
                          ? 'fail'
                          : t.status === 'changed'
                            ? 'info'
                            : 'neutral'
                      }
                    >
                      {t.status}
                    </Badge>
                  </td>
                  <td>
                    {t.handler ? 'handler: ' : ''}
                    {t.task}
                  </td>
                  <td className="mono small">{t.action}</td>
                  <td className="muted small">{t.durationMs === null ? '' : formatDuration(t.durationMs)}</td>
                  <td className="small">{t.message ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
      {s.log && (
        <details className="pb-step-log">
          <summary>Log</summary>
          <pre data-testid="verify-step-log">{s.log}</pre>
        </details>
      )}
    </li>
  );
}

export function VerificationReport({
  playbookId,
  headSha,
  task,
  onVerify,
}: {
  playbookId: string;
  headSha: string | null;
  task: Task | null;
  onVerify: () => void;
}) {
  const v = useBackendQuery(
    (b, signal) => b.call('playbooks.verification', { playbook: playbookId }, { signal }),
    [playbookId, headSha],
    [task?.status, task?.message],
  );
  if (v.error) return <ErrorBox error={v.error} title="Could not load the verification" />;
  if (v.loading && !v.data) return <Spinner label="Loading the verification" />;
  const r = v.data;
  return (
    <div className="pb-verification" data-testid="verification-report">
      {task && task.status === 'running' && <TaskProgress task={task} label="Verification" log />}
      {!r ? (
        <EmptyState
          icon="book"
          title="Not verified yet"
          actions={
            <button type="button" className="btn btn-primary" onClick={onVerify}>
              Verify
            </button>
          }
        >
          <p>
            Verification checks the playbook’s syntax and style, replays it on a fresh sandbox of the same
            base, checks that the replay changes exactly what the agent changed, and that a second run changes
            nothing.
          </p>
        </EmptyState>
      ) : (
        <>
          <div className="pb-verification-head">
            <span data-testid="verification-status">
              <Badge tone={r.status === 'passed' ? 'ok' : r.status === 'running' ? 'info' : 'fail'}>
                {r.status}
              </Badge>
            </span>{' '}
            revision {r.revision} · sha256 <span className="mono">{shortHash(r.sha256, 16)}</span> ·{' '}
            {formatTime(r.startedAt)}
            {r.tools.ansibleCore && (
              <span className="muted small">
                {' '}
                · ansible-core {r.tools.ansibleCore}, ansible-lint {r.tools.ansibleLint ?? '—'}
              </span>
            )}
          </div>
          {r.stale && (
            <p className="callout callout-warn" data-testid="verification-stale" role="status">
              Stale: this verification is about revision {r.revision}; the playbook has changed since. Verify
              again before anyone relies on it.{' '}
              <button type="button" className="btn btn-small" onClick={onVerify}>
                Verify again
              </button>
            </p>
          )}
          {r.replay?.sandboxName && (
            <p className="muted small">
              Replayed on {r.replay.sandboxName} ({r.replay.startPath ?? '?'}, base{' '}
              {shortHash(r.replay.baseFingerprint ?? '', 12)}),{' '}
              {r.replay.destroyed ? 'destroyed afterwards' : 'not destroyed yet'}.
            </p>
          )}
          <ol className="pb-steps">
            {r.steps.map((s, i) => (
              <Step key={s.id} s={s} n={i + 1} />
            ))}
          </ol>
        </>
      )}
    </div>
  );
}
