/** Every approval request (all statuses), who asked and who decided; the selected one in detail. */
import { useMemo, useState } from 'react';
import type { Approval } from '../../../../shared/contract/approvals.ts';
import { Badge, EmptyState, Spinner } from '../../components/ui.tsx';
import { formatTime } from '../../lib/format.ts';
import { href } from '../../lib/route.ts';
import {
  APPROVAL_STATUS_TONE,
  RISK_TONE,
  actorLabel,
  promptApprovals,
  sortApprovals,
  useApprovals,
} from '../../stores/approvals.ts';
import { ApprovalBody } from './ApprovalModal.tsx';
import { SandboxRef } from '../sandboxes/SandboxRef.tsx';

const FILTERS = ['all', 'pending', 'approved', 'denied', 'expired', 'cancelled'] as const;
type Filter = (typeof FILTERS)[number];

function decidedText(a: Approval): string {
  if (a.status === 'pending') return 'waiting';
  if (a.decidedBy) return actorLabel(a.decidedBy);
  return a.status === 'expired' ? 'expired unanswered' : a.status === 'cancelled' ? 'withdrawn' : '—';
}

export function ApprovalsList({ selectedId }: { selectedId: string | null }) {
  const loaded = useApprovals((s) => s.loaded);
  const byId = useApprovals((s) => s.byId);
  const [filter, setFilter] = useState<Filter>('all');
  const all = useMemo(() => sortApprovals(byId), [byId]);
  const list = filter === 'all' ? all : all.filter((a) => a.status === filter);
  const selected = selectedId ? (byId[selectedId] ?? null) : null;

  if (!loaded) return <Spinner label="Loading approvals" />;
  if (!all.length)
    return (
      <EmptyState icon="bell" title="No approval requests">
        <p>
          When something goes over a limit (a sandbox bigger than the host allows, a destination outside a
          sandbox’s allowlist, an agent’s tool call that a rule makes ask), Fluid asks a person first. The
          requests and the decisions show up here, and in the audit log.
        </p>
      </EmptyState>
    );
  return (
    <>
      <div className="toolbar approvals-tools">
        <div className="segmented" role="radiogroup" aria-label="Status">
          {FILTERS.map((f) => (
            <label key={f} className={filter === f ? 'seg active' : 'seg'}>
              <input
                type="radio"
                name="approval-filter"
                checked={filter === f}
                onChange={() => setFilter(f)}
              />
              {f}
            </label>
          ))}
        </div>
      </div>
      <div className="split audit-split">
        <div className="audit-table-wrap">
          <table className="table audit-table" aria-label="Approval requests">
            <thead>
              <tr>
                <th scope="col">Asked</th>
                <th scope="col">Request</th>
                <th scope="col">Risk</th>
                <th scope="col">Status</th>
                <th scope="col">Asked by / decided by</th>
              </tr>
            </thead>
            <tbody>
              {list.map((a) => (
                <tr
                  key={a.id}
                  className={selected?.id === a.id ? 'selected' : undefined}
                  data-approval={a.id}
                  data-status={a.status}
                >
                  <td className="nowrap">
                    <a
                      href={href('audit', 'approvals', a.id)}
                      aria-current={selected?.id === a.id ? 'true' : undefined}
                    >
                      {formatTime(a.createdAt)}
                    </a>
                  </td>
                  <td className="approval-cell">
                    <Badge tone="accent">{a.kind}</Badge> {a.title}
                    <div className="muted small approval-cell-detail">{a.detail}</div>
                    {a.sandboxId && (
                      <div className="small" data-testid="approval-sandbox">
                        <span className="muted">sandbox</span>{' '}
                        <SandboxRef id={a.sandboxId} name={a.sandboxName} exists={a.sandboxExists} compact />
                      </div>
                    )}
                  </td>
                  <td>
                    <Badge tone={RISK_TONE[a.risk]}>{a.risk}</Badge>
                  </td>
                  <td>
                    <Badge tone={APPROVAL_STATUS_TONE[a.status]}>{a.status}</Badge>
                  </td>
                  <td className="mono small nowrap">
                    <div>{actorLabel(a.requestedBy)}</div>
                    <div className={a.decidedBy ? undefined : 'muted'} data-testid="decided-by">
                      {decidedText(a)}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {!list.length && <p className="muted pad">No {filter} requests.</p>}
        </div>
        <div className="detail-pane audit-detail-pane">
          {selected ? (
            <article className="audit-detail" aria-label="Approval request">
              <ApprovalBody approval={selected} />
              {selected.status === 'pending' && (
                <div className="row-actions">
                  <button
                    type="button"
                    className="btn btn-primary"
                    onClick={() => promptApprovals([selected.id])}
                  >
                    Decide…
                  </button>
                </div>
              )}
            </article>
          ) : (
            <p className="muted pad">Select a request to see exactly what was asked, and the decision.</p>
          )}
        </div>
      </div>
    </>
  );
}
