/** A sandbox's egress allowlist: what it may reach through the proxy (it has no other route out). */
import { useState, type FormEvent } from 'react';
import { Destination, type Sandbox } from '../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../components/Icon.tsx';
import { Callout, ErrorBox, Field } from '../../components/ui.tsx';
import { humanizeIssue, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { withPresence } from '../../lib/presence.ts';
import { upsertSandbox } from '../../stores/sandboxes.ts';

export function EgressPanel({ sandbox }: { sandbox: Sandbox }) {
  const [value, setValue] = useState('');
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const editable = !['destroyed', 'destroying'].includes(sandbox.state);

  async function add(e: FormEvent) {
    e.preventDefault();
    const destination = value.trim();
    setError(null);
    const parsed = Destination.safeParse(destination);
    if (!parsed.success) {
      setFieldError(
        destination
          ? humanizeIssue(parsed.error.issues[0]?.message ?? 'Not a destination')
          : 'Enter a destination.',
      );
      return;
    }
    if (sandbox.egressAllow.includes(destination.toLowerCase())) {
      setFieldError('Already allowed.');
      return;
    }
    setFieldError(null);
    setBusy('+');
    try {
      upsertSandbox(
        await withPresence('sandboxes.egressAllow', { sandbox: sandbox.id, destination }, (presence) =>
          rpc().call('sandboxes.egressAllow', { sandbox: sandbox.id, destination, presence }),
        ),
      );
      setValue('');
    } catch (err) {
      const info = toErrorInfo(err);
      const issue = validationIssues(info)[0];
      if (issue) setFieldError(humanizeIssue(issue.message));
      else if (info.code !== 'CANCELLED') setError(info);
    } finally {
      setBusy(null);
    }
  }

  async function revoke(destination: string) {
    setBusy(destination);
    setError(null);
    try {
      upsertSandbox(await rpc().call('sandboxes.egressRevoke', { sandbox: sandbox.id, destination }));
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(null);
    }
  }

  const warnings = new Map((sandbox.egressWarnings ?? []).map((w) => [w.destination, w.warning]));
  const health = sandbox.egressHealth;
  return (
    <div className="egress" data-egress-health={health?.status ?? 'unknown'}>
      <EgressHealthNote sandbox={sandbox} />
      {sandbox.egressAllow.length ? (
        <ul className="chips" aria-label="Allowed destinations">
          {sandbox.egressAllow.map((d) => (
            <li
              key={d}
              className={warnings.has(d) ? 'chip chip-warn' : 'chip'}
              title={warnings.get(d)}
              data-warning={warnings.has(d) ? 'true' : undefined}
            >
              {warnings.has(d) && <Icon name="warn" size={12} label="Warning" />}
              <span className="mono">{d}</span>
              {editable && (
                <button
                  type="button"
                  className="chip-remove"
                  aria-label={`Remove ${d}`}
                  disabled={busy !== null}
                  onClick={() => void revoke(d)}
                >
                  <Icon name="x" size={12} />
                </button>
              )}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">Nothing allowed: the sandbox reaches nothing outside its network.</p>
      )}
      {warnings.size > 0 && (
        <ul className="egress-warnings" aria-label="Egress warnings" data-testid="egress-warnings">
          {[...warnings].map(([d, w]) => (
            <li key={d} className="small">
              <Icon name="warn" size={12} /> <span className="mono">{d}</span>: {w}
            </li>
          ))}
        </ul>
      )}
      {editable && (
        <form className="inline-form" onSubmit={(e) => void add(e)} noValidate>
          <Field
            label="Allow a destination"
            error={fieldError}
            help="host, host:port or *.domain (port 80/443 when omitted)"
          >
            {(p) => (
              <div className="input-row">
                <input
                  {...p}
                  className="input mono"
                  value={value}
                  placeholder="deb.debian.org"
                  spellCheck={false}
                  autoComplete="off"
                  onChange={(e) => {
                    setValue(e.target.value);
                    setFieldError(null);
                  }}
                />
                <button type="submit" className="btn" disabled={busy !== null}>
                  <Icon name="plus" size={12} /> {busy === '+' ? 'Adding…' : 'Allow'}
                </button>
              </div>
            )}
          </Field>
        </form>
      )}
      {error && <ErrorBox error={error} title="The allowlist was not changed" />}
    </div>
  );
}

/**
 * Whether the sandbox's egress works as far as this backend can tell: a proxy that cannot serve it
 * (cannot start, its address held by another process) would otherwise look like silent 403s inside.
 */
export function EgressHealthNote({ sandbox, compact }: { sandbox: Sandbox; compact?: boolean }) {
  const h = sandbox.egressHealth;
  if (!h || h.status === 'ok') return null;
  if (h.status === 'problem')
    return (
      <div data-testid="egress-problem">
        <Callout tone="fail" title="Egress does not work for this sandbox">
          <p>{h.message ?? 'The egress proxy on its host cannot serve it.'}</p>
          {!compact && (
            <p className="muted small">
              Requests from the sandbox are refused and no approval is raised until this is fixed. Run{' '}
              <code>fluid doctor</code> for the details.
            </p>
          )}
        </Callout>
      </div>
    );
  if (compact) return null;
  return (
    <p className="muted small" data-testid="egress-unknown">
      Egress health unknown{h.message ? `: ${h.message}` : ': this process runs no proxy for the host'} (
      <code>fluid doctor</code> checks it).
    </p>
  );
}
