/**
 * One apply, live: its state, the ansible-playbook log as it is written (changes.watchApply: the apply
 * now, then the log and each state change until it ends), per-task results, the post-apply check,
 * and Cancel while it runs.
 */
import { useEffect, useEffectEvent, useRef, useState } from 'react';
import type { Apply } from '../../../../shared/contract/changes.ts';
import { Badge, Callout } from '../../components/ui.tsx';
import { formatDuration, formatTime, shortHash } from '../../lib/format.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { toastError } from '../../stores/toasts.ts';

export const APPLY_TONE: Record<Apply['status'], 'ok' | 'fail' | 'info' | 'warn' | 'neutral'> = {
  queued: 'info',
  waiting: 'info',
  checking: 'info',
  running: 'info',
  'post-check': 'info',
  succeeded: 'ok',
  failed: 'fail',
  cancelled: 'warn',
  refused: 'fail',
  interrupted: 'warn',
};

const RUNNING = new Set(['queued', 'waiting', 'checking', 'running', 'post-check']);

export function ApplyResult({ apply }: { apply: Apply }) {
  return (
    <div className="apply-result">
      {apply.refusal && (
        <Callout tone="fail" title={`Refused: ${apply.refusal.reason}`}>
          <p>{apply.refusal.message}</p>
          {apply.refusal.drift.length > 0 && (
            <ul className="drift-list" aria-label="What drifted">
              {apply.refusal.drift.map((d) => (
                <li key={`${d.kind}:${d.key}`} className="mono small">
                  {d.detail}
                </li>
              ))}
            </ul>
          )}
        </Callout>
      )}
      {apply.tasks.length > 0 && (
        <ol className="apply-tasks" aria-label="Task results">
          {apply.tasks.map((t, i) => (
            <li key={i} data-status={t.status} data-changed={t.changed}>
              <Badge
                tone={
                  t.status === 'failed' || t.status === 'unreachable' ? 'fail' : t.changed ? 'accent' : 'ok'
                }
              >
                {t.changed ? 'changed' : t.status}
              </Badge>{' '}
              {t.task}
              {t.durationMs !== null && (
                <span className="muted small"> · {formatDuration(t.durationMs)}</span>
              )}
              {t.status === 'failed' && t.message && <pre className="apply-msg">{t.message}</pre>}
            </li>
          ))}
        </ol>
      )}
      {apply.postCheck && (
        <Callout
          tone={apply.postCheck.matches ? 'ok' : 'warn'}
          title={
            apply.postCheck.matches ? 'Production matches the change' : 'Production does not match the change'
          }
        >
          <p data-testid="post-check">
            A second run in check mode would change {apply.postCheck.changed} task
            {apply.postCheck.changed === 1 ? '' : 's'}
            {apply.postCheck.mismatches.length > 0 ? '; the target differs from the sandbox in:' : '.'}
          </p>
          {apply.postCheck.mismatches.length > 0 && (
            <ul className="drift-list">
              {apply.postCheck.mismatches.map((m) => (
                <li key={`${m.kind}:${m.key}`} className="mono small">
                  {m.detail}
                </li>
              ))}
            </ul>
          )}
          {apply.baselineAfter && (
            <p className="muted small">
              New baseline <code className="hash">{shortHash(apply.baselineAfter.sha256, 16)}</code>
            </p>
          )}
        </Callout>
      )}
    </div>
  );
}

export function ApplyLog({ applyId, onEnd }: { applyId: string; onEnd?: (a: Apply) => void }) {
  const [apply, setApply] = useState<Apply | null>(null);
  const [log, setLog] = useState('');
  const generation = useConnection((s) => s.generation);
  const pre = useRef<HTMLPreElement>(null);
  const ended = useEffectEvent((a: Apply) => onEnd?.(a));

  useEffect(() => {
    const ac = new AbortController();
    (async () => {
      // the stream starts from the beginning of the log each time it is opened
      let text = '';
      try {
        for await (const e of rpc().stream('changes.watchApply', { apply: applyId }, { signal: ac.signal })) {
          if (e.kind === 'log') {
            text += e.data;
            setLog(text);
          } else {
            setApply(e.apply);
            if (e.kind === 'end') ended(e.apply);
          }
        }
      } catch {
        // re-opened after a reconnection (generation)
      }
    })();
    return () => ac.abort();
  }, [applyId, generation]);

  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [log]);

  async function cancel() {
    if (!apply?.taskId) return;
    try {
      await rpc().call('tasks.cancel', { id: apply.taskId });
    } catch (err) {
      toastError(err, 'Cancelling the apply');
    }
  }

  return (
    <div className="apply-live" data-testid="apply-live" data-apply={applyId}>
      <div className="apply-head">
        {apply ? (
          <>
            <Badge tone={APPLY_TONE[apply.status]}>
              <span data-testid="apply-status">{apply.status}</span>
            </Badge>{' '}
            <span data-testid="apply-summary">{apply.summary}</span>
          </>
        ) : (
          <span className="muted">Connecting…</span>
        )}
        {apply && RUNNING.has(apply.status) && apply.taskId && (
          <button type="button" className="btn btn-small btn-danger" onClick={() => void cancel()}>
            Cancel
          </button>
        )}
      </div>
      {apply && (
        <p className="muted small">
          Started {formatTime(apply.startedAt)} by {apply.requestedBy.door}:{apply.requestedBy.id}
          {apply.approvedBy && (
            <>
              {' '}
              · approved by {apply.approvedBy.door}:{apply.approvedBy.id} ({apply.approvedVia})
            </>
          )}
        </p>
      )}
      <pre className="apply-log" ref={pre} data-testid="apply-log" aria-label="Apply log" tabIndex={0}>
        {log || ' '}
      </pre>
      {apply && !RUNNING.has(apply.status) && <ApplyResult apply={apply} />}
    </div>
  );
}
