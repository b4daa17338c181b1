import { useState } from 'react';
import type { Host } from '../../../../shared/contract/hosts.ts';
import { ErrorBox, Modal } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { redirect } from '../../lib/route.ts';
import { rpc } from '../../stores/connection.ts';
import { toast } from '../../stores/toasts.ts';

export function RemoveHostModal({ host, onClose }: { host: Host; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  if (host.kind === 'local')
    return (
      <Modal
        title="This machine cannot be removed"
        onClose={onClose}
        footer={
          <button type="button" className="btn btn-primary" onClick={onClose}>
            OK
          </button>
        }
      >
        <p>
          The local host is built in: it is the computer that runs Fluid, and Fluid always knows it. It costs
          nothing while it is not used. To stop using it, simply do not create sandboxes on it.
        </p>
      </Modal>
    );
  async function remove() {
    setBusy(true);
    setError(null);
    try {
      await rpc().call('hosts.remove', { host: host.id });
      toast({ kind: 'success', title: 'Host removed', message: `Fluid forgot ${host.name}.` });
      onClose();
      redirect('hosts');
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  }
  return (
    <Modal
      title={`Remove ${host.name}?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn btn-danger" disabled={busy} onClick={() => void remove()}>
            {busy ? 'Removing…' : 'Remove host'}
          </button>
        </>
      }
    >
      <p>
        Fluid forgets <strong>{host.name}</strong> ({host.user}@{host.address}:{host.port}) and its pinned
        host key. Nothing on the host itself is changed. You can add it again later.
      </p>
      {error && <ErrorBox error={error} title="The host was not removed" />}
    </Modal>
  );
}
