import { useEffect, useState } from 'react';
import type { Contract } from '../../../../shared/contract/index.ts';
import type { Host } from '../../../../shared/contract/hosts.ts';
import type { Out } from '../../../../shared/rpc.ts';
import { ErrorBox, Modal, Spinner } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatBytes } from '../../lib/format.ts';
import { redirect } from '../../lib/route.ts';
import { rpc } from '../../stores/connection.ts';
import { toast } from '../../stores/toasts.ts';

type Preview = Out<Contract, 'hosts.removePreview'>;

export function RemoveHostModal({ host, onClose }: { host: Host; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<ErrorInfo | null>(null);
  // Fluid's files there go too unless the person keeps them (the default is to delete them).
  const [clean, setClean] = useState(true);
  useEffect(() => {
    if (host.kind === 'local') return;
    let alive = true;
    Promise.resolve()
      .then(() => rpc().call('hosts.removePreview', { host: host.id }))
      .then(
        (p) => alive && setPreview(p),
        (err: unknown) => alive && setPreviewError(toErrorInfo(err)),
      );
    return () => {
      alive = false;
    };
  }, [host.id, host.kind]);
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
      const r = await rpc().call('hosts.remove', { host: host.id, clean });
      toast({
        kind: 'success',
        title: 'Host removed',
        message: [
          `Fluid forgot ${host.name}.`,
          r.cleaned ? `Deleted ${formatBytes(r.cleaned.bytes)} of Fluid files there.` : null,
          r.note ?? null,
        ]
          .filter(Boolean)
          .join(' '),
      });
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
        host key. You can add it again later.
      </p>
      {!preview && !previewError && <Spinner label="Measuring Fluid's files on the host" />}
      {previewError && <ErrorBox error={previewError} title="Fluid's files there could not be measured" />}
      {preview && !preview.reachable && (
        <p className="muted" data-testid="remove-files">
          {host.name} cannot be reached ({preview.error}): Fluid's files there, if any, stay.
        </p>
      )}
      {preview?.reachable && (
        <div data-testid="remove-files">
          {preview.files.length ? (
            <label className="check-label">
              <input type="checkbox" checked={clean} onChange={(e) => setClean(e.target.checked)} /> Also
              delete Fluid's files there: <strong>{formatBytes(preview.totalBytes)}</strong> in{' '}
              <code>{preview.storageDir}</code> ({[...new Set(preview.files.map((f) => f.what))].join(', ')})
            </label>
          ) : (
            <p className="muted">Fluid keeps no files there.</p>
          )}
          {preview.sharedWith.length > 0 && (
            <p className="muted small">
              {preview.sharedWith.join(', ')} reaches the same machine and directory: only what belongs to{' '}
              {host.name} is listed; the shared files stay.
            </p>
          )}
          <p className="muted small">Other installations' files on the host are never touched.</p>
        </div>
      )}
      {error && <ErrorBox error={error} title="The host was not removed" />}
    </Modal>
  );
}
