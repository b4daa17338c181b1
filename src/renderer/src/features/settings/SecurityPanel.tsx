/**
 * Settings → Security: who decides, and how a person proves it. Enrolled passkeys and security keys
 * (WebAuthn), which, once one exists, are the only way to approve high-risk requests; and whether the
 * CLI may decide unattended.
 */
import { startRegistration } from '@simplewebauthn/browser';
import { useState, type FormEvent } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { Callout, ErrorBox, Field, Section, Spinner } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { webAuthnUsable, withPresence } from '../../lib/presence.ts';
import { rpc } from '../../stores/connection.ts';
import { toast } from '../../stores/toasts.ts';
import { SETTINGS_SECTIONS, SettingsForm } from './SettingsForm.tsx';

const APPROVALS = SETTINGS_SECTIONS.filter((s) => s.key === 'approvals');

function Keys() {
  const status = useBackendQuery((b, signal) => b.call('presence.status', {}, { signal }), []);
  const [name, setName] = useState('');
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const usable = webAuthnUsable();

  async function enrol(e: FormEvent) {
    e.preventDefault();
    const label = name.trim() || 'Security key';
    setBusy('+');
    setError(null);
    try {
      const { challengeId, options } = await withPresence(
        'presence.registerBegin',
        { name: label },
        (presence) => rpc().call('presence.registerBegin', { name: label, presence }),
      );
      const response = await startRegistration({ optionsJSON: options as never });
      const key = await rpc().call('presence.registerFinish', {
        challengeId,
        response: response as unknown as Record<string, unknown>,
      });
      setName('');
      toast({
        kind: 'success',
        title: 'Key enrolled',
        message: `${key.name} now confirms high-risk decisions.`,
      });
      status.reload();
    } catch (err) {
      const info = toErrorInfo(err);
      if (info.code !== 'CANCELLED') setError(info);
    } finally {
      setBusy(null);
    }
  }

  async function remove(id: string, keyName: string) {
    setBusy(id);
    setError(null);
    try {
      await withPresence('presence.remove', { id }, (presence) =>
        rpc().call('presence.remove', { id, presence }),
      );
      toast({ kind: 'info', title: 'Key removed', message: keyName });
      status.reload();
    } catch (err) {
      const info = toErrorInfo(err);
      if (info.code !== 'CANCELLED') setError(info);
    } finally {
      setBusy(null);
    }
  }

  const keys = status.data?.credentials ?? [];
  return (
    <Section title="Passkeys and security keys">
      <p className="muted section-help">
        Approving a production apply, new egress or a high-risk agent action, and loosening rules or limits,
        need you to be here. Without a key, Fluid asks you to confirm in this window (or on your terminal).
        With a key enrolled, only the key will do: no program on this computer can use it without you.
      </p>
      {!usable && (
        <Callout tone="warn" title="Keys cannot be used from this page">
          {location.protocol === 'file:'
            ? 'The desktop window cannot ask for a key yet: enrol and use keys in web mode (fluid serve).'
            : `Browsers refuse security keys on an IP address. Open Fluid at http://localhost:${location.port}/ instead.`}
        </Callout>
      )}
      {status.error && <ErrorBox error={status.error} title="Could not load the enrolled keys" />}
      {status.loading && !status.data ? (
        <Spinner label="Loading keys" />
      ) : keys.length ? (
        <ul className="key-list" aria-label="Enrolled keys">
          {keys.map((k) => (
            <li key={k.id} className="key-row" data-key={k.name}>
              <Icon name="key" size={14} />
              <span className="key-name">{k.name}</span>
              <span className="muted small">
                added {formatRelative(k.createdAt)} by {k.createdBy}
                {k.lastUsedAt ? (
                  <span title={formatTime(k.lastUsedAt)}> · last used {formatRelative(k.lastUsedAt)}</span>
                ) : (
                  ' · never used'
                )}
              </span>
              <button
                type="button"
                className="btn btn-small btn-danger"
                disabled={busy !== null || !usable}
                onClick={() => void remove(k.id, k.name)}
              >
                {busy === k.id ? 'Removing…' : 'Remove'}
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p data-testid="no-keys">No key is enrolled: decisions are confirmed in the window.</p>
      )}
      <form className="inline-form" onSubmit={(e) => void enrol(e)} aria-label="Enrol a key">
        <Field label="Name of the new key" help="For example: YubiKey, laptop passkey.">
          {(p) => (
            <input
              {...p}
              value={name}
              maxLength={80}
              onChange={(e) => setName(e.target.value)}
              placeholder="Security key"
            />
          )}
        </Field>
        <button type="submit" className="btn btn-primary" disabled={busy !== null || !usable}>
          <Icon name="plus" size={14} /> {busy === '+' ? 'Waiting for the key…' : 'Add a key'}
        </button>
      </form>
      {error && <ErrorBox error={error} title="The key was not changed" />}
    </Section>
  );
}

export function SecurityPanel() {
  return (
    <div className="settings-page">
      <div className="settings-main">
        <Keys />
        <SettingsForm sections={APPROVALS} label="Approval settings" />
      </div>
      <div className="settings-side">
        <Section title="Who decides">
          <p>
            Agents — Fluid&apos;s own, MCP clients such as Claude Code, API tokens for agents, and any command
            run without a terminal — can ask for anything and decide nothing.
          </p>
          <p>
            You decide in this window, in the web UI, or on a terminal. Every decision is in the audit log
            with who decided and how.
          </p>
        </Section>
      </div>
    </div>
  );
}
