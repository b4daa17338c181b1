import { useState } from 'react';
import { Icon } from '../../../components/Icon.tsx';
import { Callout, ErrorBox, Spinner } from '../../../components/ui.tsx';
import type { ErrorInfo } from '../../../lib/errors.ts';
import { href } from '../../../lib/route.ts';
import { hostKeyFile, type HostWizardState } from '../state.ts';
import type { StepContext } from '../wizard.ts';
import { probeHost } from '../actions.ts';

/** What went wrong while registering, in words that say what to do next. */
function addErrorText(e: ErrorInfo): { title: string; hint: string; back: boolean; reprobe: boolean } {
  switch (e.code) {
    case 'AUTH_FAILED':
      return {
        title: 'The host key is fine, but the login was refused',
        hint: 'Go back and fix the user or the key file; the host key you checked stays the same.',
        back: true,
        reprobe: false,
      };
    case 'HOSTKEY_MISMATCH':
      return {
        title: 'The host presented a different key when Fluid logged in',
        hint: 'The key changed between the check and the login. Someone may be intercepting the connection, or the host was just re-keyed. Fetch the key again and compare it with the host before trusting it.',
        back: false,
        reprobe: true,
      };
    case 'HOST_UNREACHABLE':
    case 'TIMEOUT':
      return {
        title: 'Fluid could not log in to the host',
        hint: 'Check the address and port, that sshd is running, and any firewall in between.',
        back: true,
        reprobe: true,
      };
    case 'CONFLICT':
      return {
        title: 'This host is already registered',
        hint: 'Choose another name, or use the host that is already there.',
        back: true,
        reprobe: false,
      };
    case 'VALIDATION':
      return {
        title: 'Fluid could not use these settings',
        hint: 'Go back and correct the connection details.',
        back: true,
        reprobe: false,
      };
    default:
      return { title: 'Registering the host failed', hint: '', back: true, reprobe: true };
  }
}

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="btn btn-small btn-ghost"
      onClick={() =>
        void navigator.clipboard?.writeText(text).then(
          () => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          },
          () => {},
        )
      }
    >
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

export function VerifyKeyStep(ctx: StepContext<HostWizardState>) {
  const { state, goTo } = ctx;
  const d = state.draft;
  if (state.probing)
    return (
      <div className="probing" role="status">
        <Spinner label="Fetching the host key" /> Asking {d.address}:{d.port} for its SSH host key…
      </div>
    );
  if (state.probeError) {
    const e = state.probeError;
    return (
      <ErrorBox
        error={e}
        title={
          e.code === 'HOST_UNREACHABLE' || e.code === 'TIMEOUT'
            ? `No SSH server answered at ${d.address}:${d.port}`
            : 'Could not fetch the host key'
        }
      >
        <p className="muted">
          Check the address and port, that sshd runs on the host, and any firewall in between.
        </p>
        <div className="row-actions">
          <button type="button" className="btn btn-small" onClick={() => goTo('connection')}>
            <Icon name="arrowLeft" size={12} /> Back to connection
          </button>
          <button type="button" className="btn btn-small" onClick={() => void probeHost(ctx)}>
            Try again
          </button>
        </div>
      </ErrorBox>
    );
  }
  const p = state.probe;
  if (!p) return null;
  const addErr = state.addError ? addErrorText(state.addError) : null;
  return (
    <div className="verify">
      <p>
        Before Fluid logs in, make sure it is talking to the right machine. <strong>{p.address}</strong> port{' '}
        {p.port} presented this host key:
      </p>
      <div className="fingerprint-box" aria-label="Host key fingerprint">
        <div className="fp-row">
          <span className="fp-label">Type</span>
          <code className="fp-type" data-testid="hostkey-type">
            {p.hostKey.type}
          </code>
        </div>
        <div className="fp-row">
          <span className="fp-label">Fingerprint</span>
          <code className="fp-value" data-testid="hostkey-fingerprint">
            {p.hostKey.fingerprint}
          </code>
          <CopyButton text={p.hostKey.fingerprint} />
        </div>
      </div>
      <div className="compare">
        <p>
          Compare it with what the host itself says. On the host (at its console or over a connection you
          already trust), run:
        </p>
        <pre className="cmd">ssh-keygen -lf {hostKeyFile(p.hostKey.type)}</pre>
        <p className="muted">
          The <code>SHA256:…</code> part must match exactly. If it does not, do not continue.
        </p>
      </div>
      {p.known && (
        <Callout tone={p.known.matches ? 'info' : 'warn'} title={`Already registered as “${p.known.name}”`}>
          <p>
            {p.known.matches
              ? 'Fluid already trusts this key for that host. '
              : 'Fluid trusts a different key for that host: this one is new. '}
            <a href={href('hosts', p.known.id)}>Open {p.known.name}</a>
          </p>
        </Callout>
      )}
      {state.addError && addErr && (
        <ErrorBox error={state.addError} title={addErr.title}>
          {addErr.hint && <p className="muted">{addErr.hint}</p>}
          <div className="row-actions">
            {addErr.back && (
              <button type="button" className="btn btn-small" onClick={() => goTo('connection')}>
                <Icon name="arrowLeft" size={12} /> Back to connection
              </button>
            )}
            {addErr.reprobe && (
              <button type="button" className="btn btn-small" onClick={() => void probeHost(ctx)}>
                Fetch the key again
              </button>
            )}
          </div>
        </ErrorBox>
      )}
      {state.keyCheck && (
        <p className="muted small" data-testid="key-check">
          <Icon name="check" size={12} /> Fluid will log in as <strong>{d.user}</strong> with your key{' '}
          <code>{state.keyCheck.keyPath}</code> ({state.keyCheck.type}, {state.keyCheck.fingerprint}): it was
          found and is usable. That is your key, not the host&apos;s; compare only the host key above.
        </p>
      )}
      <p className="muted small">
        Pressing the button below pins this key: Fluid will refuse to connect if the host ever presents
        another one.
      </p>
    </div>
  );
}
