/**
 * The host presented a key other than the pinned one. Explain, show both fingerprints, and offer a
 * deliberate "Trust the new key" that requires typing (or pasting) the new fingerprint.
 */
import { useState } from 'react';
import type { Host } from '../../../../shared/contract/hosts.ts';
import { Icon } from '../../components/Icon.tsx';
import { ErrorBox, Field, Modal } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { upsertHost } from '../../stores/hosts.ts';
import { toast } from '../../stores/toasts.ts';
import { hostKeyFile } from '../onboarding/state.ts';

export interface Mismatch {
  presented: string | null;
  trusted: string | null;
  keyType: string | null;
  message: string;
}

export function mismatchOf(e: ErrorInfo): Mismatch | null {
  if (e.code !== 'HOSTKEY_MISMATCH') return null;
  const d = (e.data ?? {}) as { presented?: unknown; trusted?: unknown; keyType?: unknown };
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    presented: str(d.presented),
    trusted: str(d.trusted),
    keyType: str(d.keyType),
    message: e.message,
  };
}

function TrustModal({
  host,
  mismatch,
  onClose,
  onTrusted,
}: {
  host: Host;
  mismatch: Mismatch;
  onClose: () => void;
  onTrusted: () => void;
}) {
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const expected = mismatch.presented ?? '';
  const matches = typed.trim() === expected && expected !== '';
  async function trust() {
    setBusy(true);
    setError(null);
    try {
      const h = await rpc().call('hosts.trust', { host: host.id, acceptFingerprint: typed.trim() });
      upsertHost(h);
      toast({
        kind: 'success',
        title: 'New host key trusted',
        message: `${h.name} now pins ${typed.trim()}.`,
      });
      onClose();
      onTrusted();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <Modal
      title={`Trust a new host key for ${host.name}`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="btn btn-danger"
            disabled={!matches || busy}
            onClick={() => void trust()}
          >
            {busy ? 'Checking the host…' : 'Trust the new key'}
          </button>
        </>
      }
    >
      <p>
        Only do this if you know why the key changed (the host was reinstalled or its keys were regenerated)
        and you have compared the new fingerprint on the host itself:
      </p>
      <pre className="cmd">ssh-keygen -lf {hostKeyFile(mismatch.keyType ?? 'ed25519')}</pre>
      <p>
        The host now presents <code className="fp-value">{expected || 'an unknown key'}</code>
      </p>
      <Field
        label="Type or paste the new fingerprint to confirm"
        error={typed && !matches ? 'This does not match the fingerprint the host presented.' : null}
      >
        {(p) => (
          <input
            {...p}
            className="input mono"
            spellCheck={false}
            autoComplete="off"
            placeholder="SHA256:…"
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
          />
        )}
      </Field>
      {error && <ErrorBox error={error} title="The key was not trusted" />}
    </Modal>
  );
}

export function HostKeyMismatch({
  host,
  mismatch,
  onTrusted,
}: {
  host: Host;
  mismatch: Mismatch;
  onTrusted: () => void;
}) {
  const [open, setOpen] = useState(false);
  return (
    <div className="callout callout-fail mismatch" role="alert">
      <Icon name="shield" size={18} />
      <div className="callout-body">
        <div className="callout-title">The SSH host key of {host.name} has changed</div>
        <p>
          Fluid refuses to connect: the host presented a different key than the one you trusted. Either the
          host was reinstalled or re-keyed, or something between you and the host is intercepting the
          connection.
        </p>
        <dl className="kv fp-compare">
          <dt>Trusted (pinned)</dt>
          <dd>
            <code>{mismatch.trusted ?? host.hostKey?.fingerprint ?? '—'}</code>
          </dd>
          <dt>Presented now</dt>
          <dd>
            <code data-testid="presented-fingerprint">{mismatch.presented ?? '—'}</code>
            {mismatch.keyType && <span className="muted"> ({mismatch.keyType})</span>}
          </dd>
        </dl>
        <p className="muted">
          Find out why before doing anything else. If the change is expected, compare the new fingerprint on
          the host and trust it.
        </p>
        {mismatch.presented && (
          <div className="row-actions">
            <button type="button" className="btn btn-small" onClick={() => setOpen(true)}>
              <Icon name="key" size={12} /> Trust the new key…
            </button>
          </div>
        )}
      </div>
      {open && (
        <TrustModal host={host} mismatch={mismatch} onClose={() => setOpen(false)} onTrusted={onTrusted} />
      )}
    </div>
  );
}
