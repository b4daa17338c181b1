/**
 * The header's approvals button: how many requests wait for a person; it opens a panel that lists
 * them with Approve / Deny right there (the same decision and presence flow as the modal), Details
 * for the whole request, and a link to every request under Audit.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { Approval } from '../../../shared/contract/approvals.ts';
import { Icon } from '../components/Icon.tsx';
import { Badge, ErrorBox } from '../components/ui.tsx';
import { DecisionButtons, useDecision } from '../features/approvals/Decision.tsx';
import { SandboxRef } from '../features/sandboxes/SandboxRef.tsx';
import { formatRelative, formatTime } from '../lib/format.ts';
import { useNow } from '../lib/hooks.ts';
import { href } from '../lib/route.ts';
import {
  RISK_TONE,
  actorLabel,
  pendingApprovals,
  promptApprovals,
  useApprovals,
} from '../stores/approvals.ts';

function PendingRow({ a, now, onDetails }: { a: Approval; now: number; onDetails: () => void }) {
  const { busy, error, decide } = useDecision(a.id);
  return (
    <li className="approval-row" data-approval={a.id} aria-label={a.title}>
      <div className="approval-row-head">
        <Badge tone="accent">{a.kind}</Badge>
        <Badge tone={RISK_TONE[a.risk]}>{a.risk} risk</Badge>
        <span className="muted small" title={formatTime(a.createdAt)}>
          {formatRelative(a.createdAt, now)}
        </span>
      </div>
      <div className="approval-row-title">{a.title}</div>
      {a.detail && <div className="approval-row-detail muted small">{a.detail}</div>}
      <div className="approval-row-meta small">
        <span className="muted">asked by</span> <span className="mono">{actorLabel(a.requestedBy)}</span>
        {a.sandboxId && (
          <>
            {' '}
            <span className="muted">· sandbox</span>{' '}
            <SandboxRef id={a.sandboxId} name={a.sandboxName} exists={a.sandboxExists} compact />
          </>
        )}
      </div>
      <div className="approval-row-actions">
        <button type="button" className="btn btn-small btn-ghost" onClick={onDetails}>
          Details…
        </button>
        <span className="toolbar-spacer" />
        <DecisionButtons busy={busy} onDecide={(d) => void decide(d)} small />
      </div>
      {error && (
        <ErrorBox
          error={error}
          title={error.code === 'CONFLICT' ? 'Someone else decided first' : 'The decision was not recorded'}
        />
      )}
    </li>
  );
}

export function ApprovalIndicator() {
  const byId = useApprovals((s) => s.byId);
  const pending = useMemo(() => pendingApprovals(byId), [byId]);
  const n = pending.length;
  const [open, setOpen] = useState(false);
  const rootRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const now = useNow();

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !document.querySelector('dialog[open]')) {
        setOpen(false);
        buttonRef.current?.focus();
      }
    };
    const onClick = (e: MouseEvent) => {
      const t = e.target as Node;
      // A click in a dialog the panel opened (details, presence) does not close it.
      if (rootRef.current && !rootRef.current.contains(t) && !(t as Element).closest?.('dialog'))
        setOpen(false);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('mousedown', onClick);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('mousedown', onClick);
    };
  }, [open]);

  return (
    <div className="tray approvals-tray" ref={rootRef}>
      <button
        ref={buttonRef}
        type="button"
        className={n ? 'btn btn-small approvals-button has-pending' : 'btn btn-small approvals-button'}
        aria-label={n ? `Approvals: ${n} pending` : 'Approvals: none pending'}
        aria-expanded={open}
        aria-controls="approvals-panel"
        title={n ? 'Review the pending approval requests' : 'No approval request waits for you'}
        data-pending={n}
        onClick={() => setOpen((o) => !o)}
      >
        <Icon name="bell" size={14} />
        <span>{n ? `${n} pending` : 'Approvals'}</span>
      </button>
      {open && (
        <div
          className="tray-panel approvals-panel"
          id="approvals-panel"
          role="region"
          aria-label="Approval requests waiting for you"
        >
          <div className="tray-section">Waiting for a person</div>
          {n ? (
            <ul className="task-list approval-rows">
              {pending.map((a) => (
                <PendingRow key={a.id} a={a} now={now} onDetails={() => promptApprovals([a.id])} />
              ))}
            </ul>
          ) : (
            <p className="tray-empty">Nothing waits for a decision.</p>
          )}
          <div className="approvals-panel-foot">
            <a href={href('audit', 'approvals')} onClick={() => setOpen(false)}>
              Every request and decision
            </a>
          </div>
        </div>
      )}
    </div>
  );
}
