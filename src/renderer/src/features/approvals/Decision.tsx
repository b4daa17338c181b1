/**
 * Deciding an approval, wherever it is shown (the modal, a tool-call card): one call, one toast,
 * the prompt dismissed, and a CONFLICT (someone else decided first) refreshes the request.
 */
import { useState } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { withPresence } from '../../lib/presence.ts';
import { dismissPrompt, refreshApproval, upsertApproval } from '../../stores/approvals.ts';
import { rpc, useOnline } from '../../stores/connection.ts';
import { toast } from '../../stores/toasts.ts';

export type Decision = 'approve' | 'deny';

export function useDecision(id: string) {
  const [busy, setBusy] = useState<Decision | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);

  async function decide(decision: Decision, note?: string) {
    setBusy(decision);
    setError(null);
    try {
      const out = await withPresence('approvals.decide', { id, decision }, (presence) =>
        rpc().call('approvals.decide', {
          id,
          decision,
          ...(note?.trim() ? { note: note.trim() } : {}),
          presence,
        }),
      );
      upsertApproval(out);
      // Decided here: the modal must not ask again.
      dismissPrompt(id);
      toast({
        kind: decision === 'approve' ? 'success' : 'info',
        title: decision === 'approve' ? 'Approved' : 'Denied',
        message: out.title,
      });
    } catch (err) {
      const info = toErrorInfo(err);
      // Cancelling the confirmation changes nothing and is not an error.
      if (info.code !== 'CANCELLED') setError(info);
      // Someone else was first: show the request as it is now.
      if (info.code === 'CONFLICT') void refreshApproval(rpc(), id);
    } finally {
      setBusy(null);
    }
  }

  return { busy, error, decide };
}

/** Deny and Approve, showing which one is on its way. */
export function DecisionButtons({
  busy,
  onDecide,
  small = false,
}: {
  busy: Decision | null;
  onDecide: (d: Decision) => void;
  small?: boolean;
}) {
  const size = small ? 12 : 14;
  const cls = small ? 'btn btn-small' : 'btn';
  // Offline nothing can be decided; the buttons say so instead of failing.
  const online = useOnline();
  const off = !online ? 'The backend is unreachable: decide once it is back' : undefined;
  return (
    <>
      <button
        type="button"
        className={`${cls} btn-danger`}
        onClick={() => onDecide('deny')}
        disabled={busy !== null || !online}
        title={off}
      >
        <Icon name="x" size={size} /> {busy === 'deny' ? 'Denying…' : 'Deny'}
      </button>
      <button
        type="button"
        className={`${cls} btn-primary`}
        onClick={() => onDecide('approve')}
        disabled={busy !== null || !online}
        title={off}
      >
        <Icon name="check" size={size} /> {busy === 'approve' ? 'Approving…' : 'Approve'}
      </button>
    </>
  );
}
