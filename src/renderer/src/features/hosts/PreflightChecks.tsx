/** Preflight results: one row per check with a pass/warn/fail icon, what was found and what to do. */
import type { Preflight } from '../../../../shared/contract/hosts.ts';
import type { Task } from '../../../../shared/contract/tasks.ts';
import { Badge, ErrorBox, ProgressBar, StatusIcon } from '../../components/ui.tsx';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { cancelTask } from '../../app/TaskTray.tsx';

function CheckList({ checks, label }: { checks: Preflight['checks']; label: string }) {
  return (
    <ul className="checks" aria-label={label}>
      {checks.map((c) => (
        <li key={c.id} className={`check check-${c.status}`} data-check={c.id} data-status={c.status}>
          <StatusIcon status={c.status} />
          <div className="check-body">
            <div className="check-title">{c.title}</div>
            <div className="check-detail">{c.detail}</div>
            {c.advice && c.status !== 'pass' && <div className="check-advice">{c.advice}</div>}
          </div>
        </li>
      ))}
    </ul>
  );
}

/**
 * The checks of a preflight. `compact` (the Hosts view) lists what needs attention and folds the
 * passed checks away; the wizard shows them all.
 */
export function PreflightChecks({ preflight, compact }: { preflight: Preflight; compact?: boolean }) {
  const counts = { pass: 0, warn: 0, fail: 0 };
  for (const c of preflight.checks) counts[c.status]++;
  const attention = preflight.checks.filter((c) => c.status !== 'pass');
  const passed = preflight.checks.filter((c) => c.status === 'pass');
  return (
    <div className="preflight">
      <div className="preflight-summary">
        {preflight.ok ? (
          <Badge tone={counts.warn ? 'warn' : 'ok'}>
            {counts.warn ? 'Ready, with warnings' : 'Ready for sandboxes'}
          </Badge>
        ) : (
          <Badge tone="fail">Not ready</Badge>
        )}
        <span className="muted">
          {counts.pass} passed · {counts.warn} warnings · {counts.fail} failed · checked{' '}
          <time dateTime={preflight.checkedAt} title={formatTime(preflight.checkedAt)}>
            {formatRelative(preflight.checkedAt)}
          </time>
        </span>
      </div>
      {compact ? (
        <>
          {attention.length > 0 && <CheckList checks={attention} label="Checks that need attention" />}
          <details className="passed-checks">
            <summary>
              {attention.length ? `${passed.length} passed checks` : `All ${passed.length} checks passed`}
            </summary>
            <CheckList checks={passed} label="Passed checks" />
          </details>
        </>
      ) : (
        <CheckList checks={preflight.checks} label="Preflight checks" />
      )}
    </div>
  );
}

/** A preflight task in flight (progress and Cancel) or its failure. */
export function PreflightTaskStatus({ task }: { task: Task }) {
  if (task.status === 'running')
    return (
      <div className="task-live" aria-live="polite">
        <div className="task-live-head">
          <span className="spinner small" aria-hidden="true" />
          <span className="task-live-msg">{task.message || 'Starting'}</span>
          {task.progress !== null && <span className="muted">{Math.round(task.progress * 100)}%</span>}
          {task.cancellable && (
            <button type="button" className="btn btn-small" onClick={() => void cancelTask(task)}>
              Cancel
            </button>
          )}
        </div>
        <ProgressBar value={task.progress} label="Preflight progress" />
      </div>
    );
  if (task.status === 'failed' && task.error)
    return <ErrorBox error={task.error} title="The preflight could not run" />;
  if (task.status === 'cancelled' || task.status === 'interrupted')
    return (
      <p className="muted" role="status">
        The last preflight was {task.status}. Run it again to see fresh results.
      </p>
    );
  return null;
}
