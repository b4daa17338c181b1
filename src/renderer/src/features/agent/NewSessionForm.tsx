/**
 * Start a session: the task, which model works on it, which host and source VM it is about, the
 * mode, and its budget (steps and cost; defaults from Settings → Agent).
 */
import { useMemo, useState, type FormEvent } from 'react';
import type { AgentMode } from '../../../../shared/contract/agent.ts';
import { Icon } from '../../components/Icon.tsx';
import { Callout, ErrorBox, Field, Spinner } from '../../components/ui.tsx';
import { issuesByField, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { href, navigate } from '../../lib/route.ts';
import { upsertSession } from '../../stores/agent.ts';
import { rpc } from '../../stores/connection.ts';
import { useHosts } from '../../stores/hosts.ts';
import { defaultProvider, useProviders } from '../../stores/providers.ts';
import { useSettings } from '../../stores/settings.ts';
import { MODE_LABEL } from './SessionView.tsx';

const parseWhole = (s: string) => (/^\s*\d+\s*$/.test(s) ? Number(s) : null);
const parseAmount = (s: string) => (/^\s*\d+(\.\d+)?\s*$/.test(s) ? Number(s) : null);

export function NewSessionForm({ onCancel }: { onCancel?: () => void }) {
  const providers = useProviders((s) => s.list);
  const providersLoaded = useProviders((s) => s.loaded);
  const providersError = useProviders((s) => s.error);
  const hostsById = useHosts((s) => s.byId);
  const order = useHosts((s) => s.order);
  const agentSettings = useSettings((s) => s.settings?.agent);

  const [task, setTask] = useState('');
  const [title, setTitle] = useState('');
  const [providerId, setProviderId] = useState<string | null>(null);
  const [model, setModel] = useState('');
  const [hostId, setHostId] = useState('');
  const [source, setSource] = useState('');
  const [mode, setMode] = useState<AgentMode>('edit');
  const [maxSteps, setMaxSteps] = useState<string | null>(null);
  const [maxCost, setMaxCost] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});

  const provider = providers.find((p) => p.id === providerId) ?? defaultProvider(providers);
  const host = hostId ? hostsById[hostId] : undefined;
  const sources = useBackendQuery(
    hostId ? (b, signal) => b.call('sources.list', { host: hostId }, { signal }) : null,
    [hostId],
  );
  const vms = useMemo(
    () => (sources.data?.vms ?? []).filter((v) => !v.fluid && v.hostId === hostId),
    [sources.data, hostId],
  );
  const steps = maxSteps ?? String(agentSettings?.maxSteps ?? 60);
  const cost = maxCost ?? String(agentSettings?.maxCostUsd ?? 5);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!task.trim()) errs.task = 'Describe the task.';
    if (!provider) errs.providerId = 'Add a model provider first.';
    const s = parseWhole(steps);
    const c = parseAmount(cost);
    if (s === null || s < 1) errs.maxSteps = 'A whole number, at least 1.';
    if (c === null) errs.maxCostUsd = 'An amount in USD, e.g. 5 or 0.50.';
    setFieldErrors(errs);
    setError(null);
    if (Object.keys(errs).length || busy || !provider) return;
    setBusy(true);
    try {
      const session = await rpc().call('agent.sessions.create', {
        task: task.trim(),
        mode,
        providerId: provider.id,
        ...(title.trim() ? { title: title.trim() } : {}),
        ...(model.trim() ? { model: model.trim() } : {}),
        ...(host ? { host: host.name } : {}),
        ...(host && source ? { source } : {}),
        maxSteps: s!,
        maxCostUsd: c!,
      });
      upsertSession(session);
      navigate('agent', session.id);
    } catch (err) {
      const info = toErrorInfo(err);
      const issues = issuesByField(validationIssues(info));
      if (Object.keys(issues).length) {
        const mapped: Record<string, string> = {};
        for (const [path, msg] of Object.entries(issues)) mapped[path.split('.')[0]!] ??= msg;
        setFieldErrors(mapped);
        if (
          !Object.keys(mapped).some((k) => ['task', 'title', 'model', 'maxSteps', 'maxCostUsd'].includes(k))
        )
          setError(info);
      } else setError(info);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form
      className="new-session form-grid"
      onSubmit={(e) => void submit(e)}
      noValidate
      aria-label="New agent session"
    >
      <Field
        label="Task"
        error={fieldErrors.task}
        help="What should the agent do? Name the VM and what “done” looks like; it asks before anything risky."
      >
        {(p) => (
          <textarea
            {...p}
            className="input textarea task-input"
            rows={6}
            autoFocus
            placeholder="e.g. Upgrade nginx on web-01 to the latest stable and keep the current configuration working."
            value={task}
            onChange={(e) => setTask(e.target.value)}
          />
        )}
      </Field>
      <Field
        label="Title (optional)"
        help="Defaults to the first line of the task."
        error={fieldErrors.title}
      >
        {(p) => (
          <input
            {...p}
            className="input"
            maxLength={200}
            value={title}
            onChange={(e) => setTitle(e.target.value)}
          />
        )}
      </Field>

      {!providersLoaded ? (
        <Spinner label="Loading providers" />
      ) : providersError ? (
        <ErrorBox error={providersError} title="The model providers could not be loaded" />
      ) : !providers.length ? (
        <Callout tone="warn" title="No model provider yet">
          <p>
            An agent needs a model to think with.{' '}
            <a href={href('settings', 'providers')}>Add a provider in Settings → Providers</a> (Anthropic,
            OpenAI, OpenRouter, or a local Ollama or vLLM), then come back.
          </p>
        </Callout>
      ) : (
        <div className="form-cols">
          <Field
            label="Provider"
            error={fieldErrors.providerId}
            help={
              <>
                {provider?.hasKey === false ? 'No API key stored. ' : ''}
                <a href={href('settings', 'providers')}>Manage providers</a>
              </>
            }
          >
            {(p) => (
              <select
                {...p}
                className="input"
                value={provider?.id ?? ''}
                onChange={(e) => {
                  setProviderId(e.target.value);
                  setModel('');
                }}
              >
                {providers.map((pr) => (
                  <option key={pr.id} value={pr.id}>
                    {pr.label}
                    {pr.isDefault ? ' (default)' : ''}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Model" help="Leave empty for the provider’s model." error={fieldErrors.model}>
            {(p) => (
              <input
                {...p}
                className="input mono"
                spellCheck={false}
                placeholder={provider?.model ?? ''}
                value={model}
                onChange={(e) => setModel(e.target.value)}
              />
            )}
          </Field>
        </div>
      )}

      <div className="form-cols">
        <Field label="Host" help="Optional: the host the task is about." error={fieldErrors.host}>
          {(p) => (
            <select
              {...p}
              className="input"
              value={hostId}
              onChange={(e) => {
                setHostId(e.target.value);
                setSource('');
              }}
            >
              <option value="">Any host (the agent asks or looks)</option>
              {order.map((id) => {
                const h = hostsById[id];
                return h ? (
                  <option key={id} value={id}>
                    {h.name}
                  </option>
                ) : null;
              })}
            </select>
          )}
        </Field>
        <Field
          label="Source VM"
          help={
            !hostId
              ? 'Choose a host to pick one of its VMs.'
              : sources.error
                ? `Could not list the VMs: ${sources.error.message}`
                : 'Optional: the VM the task is about. It is only ever cloned, never changed.'
          }
          error={fieldErrors.source}
        >
          {(p) =>
            hostId && sources.loading && !sources.data ? (
              <div className="input-like">
                <Spinner label="Listing source VMs" />{' '}
                <span className="muted">Listing VMs on {host?.name}…</span>
              </div>
            ) : (
              <select
                {...p}
                className="input"
                value={source}
                disabled={!hostId || !vms.length}
                onChange={(e) => setSource(e.target.value)}
              >
                <option value="">
                  {hostId && !vms.length && sources.data ? 'No source VMs on this host' : 'None'}
                </option>
                {vms.map((v) => (
                  <option key={v.uuid} value={v.name}>
                    {v.name} — {v.state}
                  </option>
                ))}
              </select>
            )
          }
        </Field>
      </div>

      <fieldset className="field">
        <legend className="field-label">Mode</legend>
        <div className="segmented mode-toggle" role="radiogroup" aria-label="Mode">
          {(['edit', 'read-only'] as const).map((m) => (
            <label key={m} className={mode === m ? `seg active mode-${m}` : 'seg'}>
              <input
                type="radio"
                name="new-session-mode"
                value={m}
                checked={mode === m}
                onChange={() => setMode(m)}
              />
              <Icon name={m === 'read-only' ? 'shield' : 'edit'} size={12} /> {MODE_LABEL[m]}
            </label>
          ))}
        </div>
        <div className="field-help">
          {mode === 'read-only'
            ? 'The agent can look (hosts, VMs, files, read-only commands on sources) but gets no tool that changes anything.'
            : 'The agent may create sandboxes and change them; source VMs stay read-only. Risky calls wait for approval.'}
        </div>
      </fieldset>

      <div className="form-cols">
        <Field
          label="Max steps"
          help="Model turns before it stops and asks to continue."
          error={fieldErrors.maxSteps}
        >
          {(p) => (
            <div className="input-unit">
              <input
                {...p}
                className="input input-num"
                inputMode="numeric"
                value={steps}
                onChange={(e) => setMaxSteps(e.target.value)}
              />
              <span className="unit">turns</span>
            </div>
          )}
        </Field>
        <Field
          label="Max cost"
          help="It stops when the estimated cost reaches this."
          error={fieldErrors.maxCostUsd}
        >
          {(p) => (
            <div className="input-unit">
              <input
                {...p}
                className="input input-num"
                inputMode="decimal"
                value={cost}
                onChange={(e) => setMaxCost(e.target.value)}
              />
              <span className="unit">USD</span>
            </div>
          )}
        </Field>
      </div>

      {error && <ErrorBox error={error} title="The session was not started" />}
      <div className="form-actions">
        {onCancel && (
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy || !provider}>
          <Icon name="play" size={13} /> {busy ? 'Starting…' : 'Start session'}
        </button>
      </div>
    </form>
  );
}
