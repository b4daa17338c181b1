/** Confirmations that name the sandbox: Stop (optionally forced) and Destroy. */
import { useState } from 'react';
import type { Sandbox } from '../../../../shared/contract/sandboxes.ts';
import { ErrorBox, Modal } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { upsertSandbox } from '../../stores/sandboxes.ts';
import { toast } from '../../stores/toasts.ts';

export function StopModal({ sandbox, onClose }: { sandbox: Sandbox; onClose: () => void }) {
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  async function stop() {
    setBusy(true);
    setError(null);
    try {
      upsertSandbox(await rpc().call('sandboxes.stop', { sandbox: sandbox.id, force }));
      toast({ kind: 'success', title: 'Sandbox stopped', message: `${sandbox.name} is shut off.` });
      onClose();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  }
  return (
    <Modal
      title={`Stop ${sandbox.name}?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void stop()}>
            {busy ? 'Stopping…' : force ? 'Power off' : 'Shut down'}
          </button>
        </>
      }
    >
      <p>
        <strong>{sandbox.name}</strong> shuts down; its disks, address and snapshots stay, and Start brings it
        back. Open terminals and running commands end.
      </p>
      <label className="check-label">
        <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />
        Force: power it off at once instead of asking the guest to shut down
      </label>
      {error && <ErrorBox error={error} title="The sandbox was not stopped" />}
    </Modal>
  );
}

export function DestroyModal({ sandbox, onClose }: { sandbox: Sandbox; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  async function destroy() {
    setBusy(true);
    setError(null);
    try {
      upsertSandbox(await rpc().call('sandboxes.destroy', { sandbox: sandbox.id }));
      toast({ kind: 'success', title: 'Sandbox destroyed', message: `${sandbox.name} is gone.` });
      onClose();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  }
  return (
    <Modal
      title={`Destroy ${sandbox.name}?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn btn-danger" disabled={busy} onClick={() => void destroy()}>
            {busy ? 'Destroying…' : `Destroy ${sandbox.name}`}
          </button>
        </>
      }
    >
      <p>
        Fluid powers off <strong>{sandbox.name}</strong> and deletes it from {sandbox.hostName}: its disks,
        snapshots and reserved address. This cannot be undone. The source VM{' '}
        <strong>{sandbox.sourceName}</strong> is not touched.
      </p>
      {sandbox.state === 'creating' && (
        <p className="muted">Its creation is still running; it is cancelled first.</p>
      )}
      {error && <ErrorBox error={error} title="The sandbox was not destroyed" />}
    </Modal>
  );
}
