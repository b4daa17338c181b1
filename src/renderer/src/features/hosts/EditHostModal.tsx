/** Edit a host's name, libvirt URI, storage directory and credentials (hosts.update). */
import { useState, type FormEvent } from 'react';
import type { Host, HostAuth } from '../../../../shared/contract/hosts.ts';
import { ErrorBox, Field, Modal } from '../../components/ui.tsx';
import { issuesByField, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { upsertHost } from '../../stores/hosts.ts';
import { toast } from '../../stores/toasts.ts';

export function EditHostModal({ host, onClose }: { host: Host; onClose: () => void }) {
  const [name, setName] = useState(host.name);
  const [libvirtUri, setLibvirtUri] = useState(host.libvirtUri);
  const [storageDir, setStorageDir] = useState(host.storageDir);
  const [authType, setAuthType] = useState<'key' | 'agent'>(host.auth.type === 'agent' ? 'agent' : 'key');
  const [keyPath, setKeyPath] = useState(host.auth.type === 'key' ? host.auth.keyPath : '');
  const [socket, setSocket] = useState(host.auth.type === 'agent' ? (host.auth.socket ?? '') : '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const fieldErrors = issuesByField(validationIssues(error));
  if (error?.code === 'CONFLICT') fieldErrors.name ??= error.message;

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const auth: HostAuth | undefined =
      host.kind === 'local'
        ? undefined
        : authType === 'key'
          ? { type: 'key', keyPath: keyPath.trim() }
          : { type: 'agent', ...(socket.trim() ? { socket: socket.trim() } : {}) };
    const authChanged = auth && JSON.stringify(auth) !== JSON.stringify(host.auth);
    try {
      const h = await rpc().call('hosts.update', {
        host: host.id,
        ...(name.trim() !== host.name ? { name: name.trim() } : {}),
        ...(libvirtUri.trim() !== host.libvirtUri ? { libvirtUri: libvirtUri.trim() } : {}),
        ...(storageDir.trim() !== host.storageDir ? { storageDir: storageDir.trim() } : {}),
        ...(authChanged ? { auth } : {}),
      });
      upsertHost(h);
      toast({
        kind: 'success',
        title: 'Host updated',
        message: `${h.name} was saved. Re-check it to test the change.`,
      });
      onClose();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  }

  return (
    <Modal
      title={`Edit ${host.name}`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="edit-host" className="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </>
      }
    >
      <form id="edit-host" className="form-grid" onSubmit={(e) => void save(e)} noValidate>
        <Field label="Name" error={fieldErrors.name}>
          {(p) => <input {...p} className="input" value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="libvirt URI" error={fieldErrors.libvirtUri}>
          {(p) => (
            <input
              {...p}
              className="input mono"
              spellCheck={false}
              value={libvirtUri}
              onChange={(e) => setLibvirtUri(e.target.value)}
            />
          )}
        </Field>
        <Field
          label="Storage directory"
          help="Where Fluid keeps base images, overlays and templates on this host."
          error={fieldErrors.storageDir}
        >
          {(p) => (
            <input
              {...p}
              className="input mono"
              spellCheck={false}
              value={storageDir}
              onChange={(e) => setStorageDir(e.target.value)}
            />
          )}
        </Field>
        {host.kind === 'ssh' && (
          <>
            <fieldset className="radio-row">
              <legend className="field-label">Credentials</legend>
              <label className="radio">
                <input
                  type="radio"
                  name="edit-auth"
                  checked={authType === 'key'}
                  onChange={() => setAuthType('key')}
                />
                Key file
              </label>
              <label className="radio">
                <input
                  type="radio"
                  name="edit-auth"
                  checked={authType === 'agent'}
                  onChange={() => setAuthType('agent')}
                />
                SSH agent
              </label>
            </fieldset>
            {authType === 'key' ? (
              <Field label="Private key file" error={fieldErrors['auth.keyPath'] ?? fieldErrors.auth}>
                {(p) => (
                  <input
                    {...p}
                    className="input mono"
                    spellCheck={false}
                    value={keyPath}
                    onChange={(e) => setKeyPath(e.target.value)}
                  />
                )}
              </Field>
            ) : (
              <Field label="Agent socket (optional)" error={fieldErrors['auth.socket']}>
                {(p) => (
                  <input
                    {...p}
                    className="input mono"
                    spellCheck={false}
                    value={socket}
                    onChange={(e) => setSocket(e.target.value)}
                  />
                )}
              </Field>
            )}
          </>
        )}
      </form>
      {error && error.code !== 'VALIDATION' && error.code !== 'CONFLICT' && (
        <ErrorBox error={error} title="The host was not saved" />
      )}
      {error?.code === 'VALIDATION' && !Object.keys(fieldErrors).length && (
        <ErrorBox error={error} title="The host was not saved" />
      )}
    </Modal>
  );
}
