/** A task followed live: its message, a progress bar, Cancel, and (optionally) every message so far. */
import { useEffect, useRef } from 'react';
import type { Task } from '../../../shared/contract/tasks.ts';
import { cancelTask } from '../app/TaskTray.tsx';
import { formatDuration } from '../lib/format.ts';
import { useNow } from '../lib/hooks.ts';
import { useTasks } from '../stores/tasks.ts';
import { ErrorBox, ProgressBar } from './ui.tsx';

export function TaskLog({ taskId, label, skip }: { taskId: string; label: string; skip?: string }) {
  const all = useTasks((s) => s.log[taskId]);
  // The failure's own message is shown by the error box below.
  const lines = skip && all?.at(-1)?.message === skip ? all.slice(0, -1) : all;
  const ref = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines?.length]);
  if (!lines?.length) return null;
  const start = new Date(lines[0]!.at).getTime();
  return (
    <ol className="task-log" aria-label={label} ref={ref}>
      {lines.map((l, i) => (
        <li key={i} className={i === lines.length - 1 ? 'current' : undefined}>
          <span className="task-log-at mono">+{formatDuration(new Date(l.at).getTime() - start)}</span>
          <span className="task-log-msg">{l.message}</span>
        </li>
      ))}
    </ol>
  );
}

export function TaskProgress({
  task,
  label,
  log,
  failedTitle,
}: {
  task: Task;
  label: string;
  /** Show every message the task showed, not only the current one. */
  log?: boolean;
  failedTitle?: string;
}) {
  const now = useNow(1000);
  // `now` ticks once a second; the task's own updates are fresher between ticks.
  const end = task.finishedAt ? Date.parse(task.finishedAt) : Math.max(now, Date.parse(task.updatedAt));
  const elapsed = end - Date.parse(task.createdAt);
  if (task.status === 'failed' && task.error)
    return (
      <>
        {log && <TaskLog taskId={task.id} label={`${label} messages`} skip={task.error.message} />}
        <ErrorBox error={task.error} title={failedTitle ?? `${task.title} failed`} />
      </>
    );
  return (
    <div className="task-live" aria-live="polite" data-status={task.status}>
      <div className="task-live-head">
        {task.status === 'running' && <span className="spinner small" aria-hidden="true" />}
        <span className="task-live-msg">
          {task.status === 'running' ? task.message || 'Starting' : `${task.title}: ${task.status}`}
        </span>
        {task.progress !== null && task.status === 'running' && (
          <span className="muted">{Math.round(task.progress * 100)}%</span>
        )}
        <span className="muted mono small" title="Elapsed">
          {formatDuration(Math.max(0, elapsed))}
        </span>
        {task.status === 'running' && task.cancellable && (
          <button type="button" className="btn btn-small" onClick={() => void cancelTask(task)}>
            Cancel
          </button>
        )}
      </div>
      {task.status === 'running' && <ProgressBar value={task.progress} label={`${label} progress`} />}
      {log && <TaskLog taskId={task.id} label={`${label} messages`} />}
    </div>
  );
}
