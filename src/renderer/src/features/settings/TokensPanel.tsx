/**
 * Settings → API tokens: tokens for the HTTP API (`fluid serve`, `fluid serve --api`). An agent token
 * asks and never decides; an operator token is a person's automation and is confirmed like any grant
 * (security key or an in-window confirmation). The secret is shown once, here, and never again:
 * Fluid keeps only its sha256. Revoking takes effect at the next request.
 */
import { useState, type FormEvent } from 'react';
import type { ApiToken, TokenScope } from '../../../../shared/contract/tokens.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, Callout, ErrorBox, Field, Section, Spinner } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { withPresence } from '../../lib/presence.ts';
import { rpc } from '../../stores/connection.ts';
import { toast } from '../../stores/toasts.ts';

export function TokensPanel() {
  const tokens = useBackendQuery((b) => b.call('tokens.list', { includeRevoked: false }), []);
  const [name, setName] = useState('');
  const [scope, setScope] = useState<TokenScope>('agent');
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [secret, setSecret] = useState<{ name: string; value: string } | null>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy('+');
    setError(null);
    try {
      const input = { name: name.trim(), scope };
      const out = await withPresence('tokens.create', input, (presence) =>
        rpc().call('tokens.create', { ...input, presence }),
      );
      setSecret({ name: out.token.name, value: out.secret });
      setName('');
      tokens.reload();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(null);
    }
  };

  const revoke = async (t: ApiToken) => {
    setBusy(t.id);
    setError(null);
    try {
      await rpc().call('tokens.revoke', { name: t.name });
      toast({
        kind: 'success',
        title: `Revoked "${t.name}"`,
        message: 'Requests with it get 401 from now on.',
      });
      if (secret?.name === t.name) setSecret(null);
      tokens.reload();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(null);
    }
  };

  return (
    <Section title="API tokens">
      <p className="muted">
        Tokens let your own agents and scripts use Fluid over HTTP (<code>/v1/…</code> on this server, or{' '}
        <code>fluid serve --api</code>). An <strong>agent</strong> token creates and uses sandboxes, reads
        diffs, generates playbooks, submits changes and asks for approvals — it never decides one. An{' '}
        <strong>operator</strong> token decides only while unattended decisions are allowed (Security).
      </p>
      {secret && (
        <Callout tone="ok" title={`The secret of "${secret.name}" — copy it now, it is not shown again`}>
          <code className="token-secret" data-testid="token-secret">
            {secret.value}
          </code>
          <div>
            <button
              type="button"
              className="btn btn-small"
              onClick={() => void navigator.clipboard?.writeText(secret.value)}
            >
              <Icon name="file" size={14} /> Copy
            </button>{' '}
            <button type="button" className="btn btn-small" onClick={() => setSecret(null)}>
              Done
            </button>
          </div>
        </Callout>
      )}
      {tokens.loading && !tokens.data ? (
        <Spinner label="Loading tokens" />
      ) : tokens.error ? (
        <ErrorBox error={tokens.error} title="Could not list the tokens" />
      ) : tokens.data?.length ? (
        <ul className="key-list" aria-label="API tokens">
          {tokens.data.map((t) => (
            <li key={t.id} className="key-row" data-token={t.name}>
              <Icon name="key" size={14} />
              <span className="key-name">{t.name}</span>
              <Badge tone={t.scope === 'operator' ? 'warn' : 'info'}>{t.scope}</Badge>
              <span className="muted small">
                <code>{t.prefix}…</code> · created {formatRelative(t.createdAt)} by {t.createdBy.door}:
                {t.createdBy.id}
                {t.lastUsedAt ? (
                  <span title={formatTime(t.lastUsedAt)}> · last used {formatRelative(t.lastUsedAt)}</span>
                ) : (
                  ' · never used'
                )}
              </span>
              <button
                type="button"
                className="btn btn-small btn-danger"
                disabled={busy !== null}
                onClick={() => void revoke(t)}
              >
                {busy === t.id ? 'Revoking…' : 'Revoke'}
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p data-testid="no-tokens">No API tokens.</p>
      )}
      <form className="inline-form" onSubmit={(e) => void create(e)} aria-label="Create an API token">
        <Field
          label="Name"
          help="Letters, digits, . _ - (the requests act as token:<name> in the audit log)."
        >
          {(p) => (
            <input
              {...p}
              value={name}
              maxLength={64}
              onChange={(e) => setName(e.target.value)}
              placeholder="ci-agent"
            />
          )}
        </Field>
        <Field label="Scope" help="Operator tokens are a grant: you confirm it.">
          {(p) => (
            <select {...p} value={scope} onChange={(e) => setScope(e.target.value as TokenScope)}>
              <option value="agent">agent — asks, never decides</option>
              <option value="operator">operator — your automation</option>
            </select>
          )}
        </Field>
        <button type="submit" className="btn btn-primary" disabled={busy !== null || !name.trim()}>
          <Icon name="plus" size={14} /> {busy === '+' ? 'Creating…' : 'Create token'}
        </button>
      </form>
      {error && <ErrorBox error={error} title="Nothing was changed" />}
    </Section>
  );
}
