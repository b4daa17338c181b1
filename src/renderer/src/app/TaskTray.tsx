/** The global task tray: running tasks with progress and Cancel, then the most recent finished ones. */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { Task } from '../../../shared/contract/tasks.ts';
import { Icon } from '../components/Icon.tsx';
import { Badge, ProgressBar } from '../components/ui.tsx';
import { formatRelative } from '../lib/format.ts';
import { href } from '../lib/route.ts';
import { rpc, useOnline } from '../stores/connection.ts';
import { useHosts } from '../stores/hosts.ts';
import { useSandboxes } from '../stores/sandboxes.ts';
import { sortTasks, upsertTask, useTasks } from '../stores/tasks.ts';
import { toastError } from '../stores/toasts.ts';

const STATUS_TONE = {
  running: 'accent',
  succeeded: 'ok',
  failed: 'fail',
  cancelled: 'neutral',
  interrupted: 'warn',
} as const;

export async function cancelTask(t: Task): Promise<void> {
  try {
    upsertTask(await rpc().call('tasks.cancel', { id: t.id }));
  } catch (err) {
    toastError(err, `Cancelling "${t.title}"`);
  }
}

function TaskRow({ t }: { t: Task }) {
  const online = useOnline();
  const host = useHosts((s) => (t.target ? s.byId[t.target] : undefined));
  const sandbox = useSandboxes((s) => (t.target ? s.byId[t.target] : undefined));
  const link =
    t.kind.startsWith('host.') && host
      ? href('hosts', host.id)
      : t.kind.startsWith('sandbox.') && sandbox
        ? href('sandboxes', sandbox.id)
        : t.kind.startsWith('base.') || t.kind === 'template.build'
          ? href('sandboxes', 'bases')
          : null;
  return (
    <li className="task-row" aria-label={t.title}>
      <div className="task-row-head">
        <span className="task-title">{link ? <a href={link}>{t.title}</a> : t.title}</span>
        <Badge tone={STATUS_TONE[t.status]}>{t.status}</Badge>
      </div>
      {t.status === 'running' && (
        <div className="task-row-progress">
          <ProgressBar value={t.progress} label={`${t.title} progress`} />
          {t.cancellable && (
            <button
              type="button"
              className="btn btn-small"
              disabled={!online}
              title={online ? undefined : 'The backend is unreachable'}
              onClick={() => void cancelTask(t)}
            >
              Cancel
            </button>
          )}
        </div>
      )}
      <div className="task-row-msg">
        {t.status === 'failed' && t.error ? (
          <>
            <code className="err-code">{t.error.code}</code> {t.error.message}
          </>
        ) : (
          t.message
        )}
        <span className="task-when"> · {formatRelative(t.finishedAt ?? t.updatedAt)}</span>
      </div>
    </li>
  );
}

export function TaskTray() {
  const byId = useTasks((s) => s.byId);
  const [open, setOpen] = useState(false);
  const rootRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const { running, recent } = useMemo(() => {
    const all = sortTasks(Object.values(byId));
    return {
      running: all.filter((t) => t.status === 'running'),
      recent: all.filter((t) => t.status !== 'running').slice(0, 8),
    };
  }, [byId]);

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setOpen(false);
        buttonRef.current?.focus();
      }
    };
    const onClick = (e: MouseEvent) => {
      if (rootRef.current && !rootRef.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('mousedown', onClick);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('mousedown', onClick);
    };
  }, [open]);

  const top = running[0];
  return (
    <div className="tray" ref={rootRef}>
      <button
        ref={buttonRef}
        type="button"
        className={running.length ? 'btn btn-small tray-button busy' : 'btn btn-small tray-button'}
        aria-expanded={open}
        aria-controls="task-tray"
        onClick={() => setOpen((o) => !o)}
      >
        {running.length ? (
          <span className="spinner small" aria-hidden="true" />
        ) : (
          <Icon name="tasks" size={14} />
        )}
        <span>{running.length ? `${running.length} running` : 'Tasks'}</span>
        {top && <span className="tray-peek">{top.message}</span>}
      </button>
      {open && (
        <div className="tray-panel" id="task-tray" role="region" aria-label="Tasks">
          <div className="tray-section">Running</div>
          {running.length ? (
            <ul className="task-list">
              {running.map((t) => (
                <TaskRow key={t.id} t={t} />
              ))}
            </ul>
          ) : (
            <p className="tray-empty">Nothing is running.</p>
          )}
          <div className="tray-section">Recent</div>
          {recent.length ? (
            <ul className="task-list">
              {recent.map((t) => (
                <TaskRow key={t.id} t={t} />
              ))}
            </ul>
          ) : (
            <p className="tray-empty">No finished tasks yet. Host checks and sandbox work show up here.</p>
          )}
        </div>
      )}
    </div>
  );
}
