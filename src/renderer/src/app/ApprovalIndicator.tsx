/** The header's approvals indicator: how many requests wait for a person; opens them in the modal. */
import { useMemo } from 'react';
import { Icon } from '../components/Icon.tsx';
import { navigate } from '../lib/route.ts';
import { pendingApprovals, promptApprovals, useApprovals } from '../stores/approvals.ts';

export function ApprovalIndicator() {
  const byId = useApprovals((s) => s.byId);
  const pending = useMemo(() => pendingApprovals(byId), [byId]);
  const n = pending.length;
  return (
    <button
      type="button"
      className={n ? 'btn btn-small approvals-button has-pending' : 'btn btn-small approvals-button'}
      aria-label={n ? `Approvals: ${n} pending` : 'Approvals: none pending'}
      title={
        n
          ? 'Review the pending approval requests'
          : 'No approval requests wait for you; see them all under Audit'
      }
      data-pending={n}
      onClick={() => (n ? promptApprovals(pending.map((a) => a.id)) : navigate('audit', 'approvals'))}
    >
      <Icon name="bell" size={14} />
      <span>{n ? `${n} pending` : 'Approvals'}</span>
    </button>
  );
}
