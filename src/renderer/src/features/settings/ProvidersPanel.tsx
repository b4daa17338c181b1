/**
 * Settings → Providers: the models agents think with. Add, edit, delete, make default, and Test
 * (lists the endpoint's models, or says what is wrong). API keys are write-only: the form can set,
 * replace or remove one, and only ever shows whether one is stored.
 */
import { useState, type FormEvent } from 'react';
import type { Provider } from '../../../../shared/contract/agent.ts';
import { Icon } from '../../components/Icon.tsx';
import {
  Badge,
  Callout,
  EmptyState,
  ErrorBox,
  Field,
  Modal,
  Section,
  Spinner,
} from '../../components/ui.tsx';
import { issuesByField, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { withPresence } from '../../lib/presence.ts';
import { reloadProviders, upsertProvider, useProviders } from '../../stores/providers.ts';
import { toast } from '../../stores/toasts.ts';

type Kind = Provider['kind'];

interface Preset {
  id: string;
  label: string;
  kind: Kind;
  baseUrl: string;
  model: string;
  keyRequired: boolean;
}

/** Where the common services live; the kind says which wire format they speak. */
export const PROVIDER_PRESETS: Preset[] = [
  {
    id: 'anthropic',
    label: 'Anthropic',
    kind: 'anthropic',
    baseUrl: 'https://api.anthropic.com',
    model: 'claude-sonnet-4-6',
    keyRequired: true,
  },
  {
    id: 'openai',
    label: 'OpenAI',
    kind: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    model: 'gpt-5.5',
    keyRequired: true,
  },
  {
    id: 'openrouter',
    label: 'OpenRouter',
    kind: 'openai',
    baseUrl: 'https://openrouter.ai/api/v1',
    model: 'anthropic/claude-sonnet-4.6',
    keyRequired: true,
  },
  {
    id: 'ollama',
    label: 'Ollama',
    kind: 'openai',
    baseUrl: 'http://localhost:11434/v1',
    model: 'qwen3',
    keyRequired: false,
  },
  {
    id: 'vllm',
    label: 'vLLM',
    kind: 'openai',
    baseUrl: 'http://localhost:8000/v1',
    model: '',
    keyRequired: false,
  },
];

const KIND_LABEL: Record<Kind, string> = {
  anthropic: 'Anthropic (Messages API)',
  openai: 'OpenAI-compatible (Chat Completions)',
};

const BASE_URL_HELP: Record<Kind, string> = {
  anthropic: 'The server root, without /v1. Empty: https://api.anthropic.com.',
  openai:
    'Including /v1, e.g. https://openrouter.ai/api/v1 or http://localhost:11434/v1. Empty: https://api.openai.com/v1.',
};

const perM = (n: number) => (n === 0 ? 'free' : `$${n}`);
/** Only a person's own price fills the form; empty means Fluid's table price (or none). */
const ownPrice = (p: Provider, n: number | null) =>
  p.priceSource === 'person' && n !== null ? String(n) : '';

interface Draft {
  kind: Kind;
  label: string;
  baseUrl: string;
  model: string;
  apiKey: string;
  removeKey: boolean;
  contextTokens: string;
  inputPerMTok: string;
  outputPerMTok: string;
  isDefault: boolean;
}

function draftOf(p: Provider | null): Draft {
  return p
    ? {
        kind: p.kind,
        label: p.label,
        baseUrl: p.baseUrl ?? '',
        model: p.model,
        apiKey: '',
        removeKey: false,
        contextTokens: String(p.contextTokens),
        inputPerMTok: ownPrice(p, p.inputPerMTok),
        outputPerMTok: ownPrice(p, p.outputPerMTok),
        isDefault: p.isDefault,
      }
    : {
        kind: 'anthropic',
        label: '',
        baseUrl: '',
        model: '',
        apiKey: '',
        removeKey: false,
        contextTokens: '',
        inputPerMTok: '',
        outputPerMTok: '',
        isDefault: false,
      };
}

function ProviderDialog({ provider, onClose }: { provider: Provider | null; onClose: () => void }) {
  const original = draftOf(provider);
  const [d, setD] = useState<Draft>(original);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const set = (patch: Partial<Draft>) => setD((cur) => ({ ...cur, ...patch }));
  const preset = PROVIDER_PRESETS.find((p) => p.kind === d.kind && p.baseUrl === d.baseUrl.trim());

  function applyPreset(p: Preset) {
    set({
      kind: p.kind,
      baseUrl: p.baseUrl,
      model: d.model && provider ? d.model : p.model,
      label: d.label || p.label,
    });
  }

  async function save(e: FormEvent) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    const num = (key: keyof Draft, v: string, int: boolean) => {
      if (!v.trim()) return undefined;
      const n = Number(v.trim());
      if (!Number.isFinite(n) || n < 0 || (int && !Number.isInteger(n))) {
        errs[key] = int ? 'A whole number.' : 'A number, e.g. 3 or 0.25.';
        return undefined;
      }
      return n;
    };
    if (!d.label.trim()) errs.label = 'Required.';
    if (!d.model.trim()) errs.model = 'Required: the model id, e.g. claude-sonnet-4-6.';
    if (d.baseUrl.trim() && !/^https?:\/\/\S+$/.test(d.baseUrl.trim()))
      errs.baseUrl = 'A URL starting with http:// or https://.';
    // Unchanged numbers are left out, so a new model brings its own defaults.
    const changed = (k: 'contextTokens' | 'inputPerMTok' | 'outputPerMTok') =>
      !provider || d[k] !== original[k];
    const contextTokens = changed('contextTokens') ? num('contextTokens', d.contextTokens, true) : undefined;
    // Prices: both emptied → back to Fluid's table (null); a filled one is the person's price.
    const pricesCleared =
      !!provider && provider.priceSource === 'person' && !d.inputPerMTok.trim() && !d.outputPerMTok.trim();
    const inputPerMTok = pricesCleared
      ? null
      : changed('inputPerMTok')
        ? num('inputPerMTok', d.inputPerMTok, false)
        : undefined;
    const outputPerMTok = pricesCleared
      ? null
      : changed('outputPerMTok')
        ? num('outputPerMTok', d.outputPerMTok, false)
        : undefined;
    setFieldErrors(errs);
    setError(null);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const input = {
        ...(provider ? { id: provider.id } : {}),
        kind: d.kind,
        label: d.label.trim(),
        baseUrl: d.baseUrl.trim() || null,
        model: d.model.trim(),
        ...(d.removeKey ? { apiKey: '' } : d.apiKey ? { apiKey: d.apiKey } : {}),
        ...(contextTokens !== undefined ? { contextTokens } : {}),
        ...(inputPerMTok !== undefined ? { inputPerMTok } : {}),
        ...(outputPerMTok !== undefined ? { outputPerMTok } : {}),
        // A new provider is the default while none is; the box makes it the default over another.
        ...(provider
          ? d.isDefault !== original.isDefault
            ? { isDefault: d.isDefault }
            : {}
          : d.isDefault
            ? { isDefault: true }
            : {}),
      };
      // A lower price is a person's decision (it widens the cost caps): confirmed when the core asks.
      // The key's value plays no part in what is confirmed, so it never travels with the challenge.
      const challengeInput = input.apiKey ? { ...input, apiKey: 'set' } : input;
      const saved = await withPresence('providers.save', challengeInput, (presence) =>
        rpc().call('providers.save', { ...input, presence }),
      );
      upsertProvider(saved);
      void reloadProviders();
      toast({ kind: 'success', title: provider ? 'Provider saved' : 'Provider added', message: saved.label });
      onClose();
    } catch (err) {
      const info = toErrorInfo(err);
      const issues = issuesByField(validationIssues(info));
      if (Object.keys(issues).length) setFieldErrors(issues);
      if (!Object.keys(issues).some((k) => k in d)) setError(info);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal
      title={provider ? `Edit ${provider.label}` : 'Add a model provider'}
      onClose={onClose}
      wide
      footer={
        <>
          <button type="button" className="btn" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <span className="toolbar-spacer" />
          <button type="submit" form="provider-form" className="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : provider ? 'Save' : 'Add provider'}
          </button>
        </>
      }
    >
      <form id="provider-form" className="form-grid provider-form" onSubmit={(e) => void save(e)} noValidate>
        <fieldset className="field">
          <legend className="field-label">Service</legend>
          <div className="preset-row" role="group" aria-label="Presets">
            {PROVIDER_PRESETS.map((p) => (
              <button
                key={p.id}
                type="button"
                className={preset?.id === p.id ? 'btn btn-small preset active' : 'btn btn-small preset'}
                aria-pressed={preset?.id === p.id}
                onClick={() => applyPreset(p)}
              >
                {p.label}
              </button>
            ))}
          </div>
          <div className="field-help">
            Fills in the kind and base URL; anything else that speaks one of the two APIs works too.
          </div>
        </fieldset>
        <fieldset className="field">
          <legend className="field-label">Kind</legend>
          <div className="segmented" role="radiogroup" aria-label="Kind">
            {(['anthropic', 'openai'] as const).map((k) => (
              <label key={k} className={d.kind === k ? 'seg active' : 'seg'}>
                <input
                  type="radio"
                  name="provider-kind"
                  value={k}
                  checked={d.kind === k}
                  onChange={() => set({ kind: k })}
                />
                {KIND_LABEL[k]}
              </label>
            ))}
          </div>
        </fieldset>
        <div className="form-cols">
          <Field label="Label" error={fieldErrors.label} help="How it is called in Fluid.">
            {(p) => (
              <input
                {...p}
                className="input"
                maxLength={80}
                value={d.label}
                onChange={(e) => set({ label: e.target.value })}
              />
            )}
          </Field>
          <Field label="Model" error={fieldErrors.model} help="Sessions use it unless they name another.">
            {(p) => (
              <input
                {...p}
                className="input mono"
                spellCheck={false}
                maxLength={200}
                value={d.model}
                onChange={(e) => set({ model: e.target.value })}
              />
            )}
          </Field>
        </div>
        <Field label="Base URL" error={fieldErrors.baseUrl} help={BASE_URL_HELP[d.kind]}>
          {(p) => (
            <input
              {...p}
              className="input mono"
              spellCheck={false}
              placeholder={d.kind === 'anthropic' ? 'https://api.anthropic.com' : 'https://api.openai.com/v1'}
              value={d.baseUrl}
              onChange={(e) => set({ baseUrl: e.target.value })}
            />
          )}
        </Field>
        <Field
          label="API key"
          error={fieldErrors.apiKey}
          help={
            provider?.hasKey
              ? 'A key is stored (it is never shown). Type a new one to replace it, or leave this empty to keep it.'
              : preset && !preset.keyRequired
                ? 'A local server usually needs none.'
                : 'Kept in the secret store, never shown again and never given to the agent.'
          }
        >
          {(p) => (
            <div className="input-row key-row">
              <input
                {...p}
                type="password"
                className="input mono"
                autoComplete="new-password"
                spellCheck={false}
                placeholder={provider?.hasKey ? '•••••••• stored' : ''}
                value={d.apiKey}
                disabled={d.removeKey}
                onChange={(e) => set({ apiKey: e.target.value })}
              />
              {provider?.hasKey && (
                <Badge tone="ok">
                  <Icon name="key" size={11} /> stored
                </Badge>
              )}
            </div>
          )}
        </Field>
        {provider?.hasKey && (
          <label className="check-label small-check">
            <input
              type="checkbox"
              checked={d.removeKey}
              onChange={(e) => set({ removeKey: e.target.checked, apiKey: '' })}
            />
            Remove the stored key
          </label>
        )}
        <div className="form-cols three">
          <Field
            label="Context window"
            error={fieldErrors.contextTokens}
            help="Empty: the model’s known size."
          >
            {(p) => (
              <div className="input-unit">
                <input
                  {...p}
                  className="input input-num"
                  inputMode="numeric"
                  value={d.contextTokens}
                  onChange={(e) => set({ contextTokens: e.target.value })}
                />
                <span className="unit">tokens</span>
              </div>
            )}
          </Field>
          <Field
            label="Input price"
            error={fieldErrors.inputPerMTok}
            help={
              provider?.priceSource === 'table'
                ? `Empty: Fluid’s price, $${provider.inputPerMTok}. USD per million tokens.`
                : 'USD per million tokens; 0 for a free, self-hosted model.'
            }
          >
            {(p) => (
              <div className="input-unit">
                <input
                  {...p}
                  className="input input-num"
                  inputMode="decimal"
                  value={d.inputPerMTok}
                  onChange={(e) => set({ inputPerMTok: e.target.value })}
                />
                <span className="unit">$/M</span>
              </div>
            )}
          </Field>
          <Field
            label="Output price"
            error={fieldErrors.outputPerMTok}
            help={
              provider?.priceSource === 'table'
                ? `Empty: Fluid’s price, $${provider.outputPerMTok}. For the cost meter and cap.`
                : 'For the cost meter and cap. Sessions need a price.'
            }
          >
            {(p) => (
              <div className="input-unit">
                <input
                  {...p}
                  className="input input-num"
                  inputMode="decimal"
                  value={d.outputPerMTok}
                  onChange={(e) => set({ outputPerMTok: e.target.value })}
                />
                <span className="unit">$/M</span>
              </div>
            )}
          </Field>
        </div>
        <label className="check-label">
          <input
            type="checkbox"
            checked={d.isDefault}
            onChange={(e) => set({ isDefault: e.target.checked })}
          />
          Default for new sessions
        </label>
        {error && <ErrorBox error={error} title="The provider was not saved" />}
      </form>
    </Modal>
  );
}

function DeleteDialog({ provider, onClose }: { provider: Provider; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  async function remove() {
    setBusy(true);
    setError(null);
    try {
      await rpc().call('providers.delete', { id: provider.id });
      useProviders.setState((s) => ({ list: s.list.filter((p) => p.id !== provider.id) }));
      void reloadProviders();
      toast({ kind: 'info', title: 'Provider deleted', message: provider.label });
      onClose();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  }
  return (
    <Modal
      title={`Delete ${provider.label}?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <span className="toolbar-spacer" />
          <button type="button" className="btn btn-danger" onClick={() => void remove()} disabled={busy}>
            <Icon name="trash" size={13} /> {busy ? 'Deleting…' : 'Delete'}
          </button>
        </>
      }
    >
      <p>
        The provider and its stored API key are removed. Sessions that used it keep their transcripts; to
        continue one, add a provider with the same id again.
      </p>
      {error && <ErrorBox error={error} title="The provider was not deleted" />}
    </Modal>
  );
}

type TestResult = { ok: boolean; models: string[]; message: string } | { error: ErrorInfo };

function TestOutcome({ result }: { result: TestResult }) {
  if ('error' in result) return <ErrorBox error={result.error} title="The test could not run" />;
  if (!result.ok)
    return (
      <div data-testid="provider-test" data-ok="false">
        <Callout tone="fail" title="Not working">
          <p>{result.message}</p>
        </Callout>
      </div>
    );
  const shown = result.models.slice(0, 12);
  return (
    <div data-testid="provider-test" data-ok="true">
      <Callout
        tone="ok"
        title={`Working: ${result.models.length === 1 ? '1 model' : `${result.models.length} models`}`}
      >
        {result.message && <p>{result.message}</p>}
        {shown.length > 0 && (
          <ul className="model-list" aria-label="Models">
            {shown.map((m) => (
              <li key={m} className="mono">
                {m}
              </li>
            ))}
            {result.models.length > shown.length && (
              <li className="muted">and {result.models.length - shown.length} more</li>
            )}
          </ul>
        )}
      </Callout>
    </div>
  );
}

function ProviderRow({ p, onEdit, onDelete }: { p: Provider; onEdit: () => void; onDelete: () => void }) {
  const [testing, setTesting] = useState(false);
  const [result, setResult] = useState<TestResult | null>(null);
  const [busyDefault, setBusyDefault] = useState(false);

  async function test() {
    setTesting(true);
    setResult(null);
    try {
      setResult(await rpc().call('providers.test', { id: p.id }));
    } catch (err) {
      setResult({ error: toErrorInfo(err) });
    } finally {
      setTesting(false);
    }
  }

  async function makeDefault() {
    setBusyDefault(true);
    try {
      upsertProvider(
        await rpc().call('providers.save', {
          id: p.id,
          kind: p.kind,
          label: p.label,
          model: p.model,
          isDefault: true,
        }),
      );
      void reloadProviders();
    } catch (err) {
      setResult({ error: toErrorInfo(err) });
    } finally {
      setBusyDefault(false);
    }
  }

  return (
    <li className="provider" data-provider={p.id} aria-label={p.label}>
      <div className="provider-top">
        <div className="provider-name">
          <strong>{p.label}</strong>
          <Badge tone="accent">{p.kind === 'anthropic' ? 'Anthropic' : 'OpenAI-compatible'}</Badge>
          {p.isDefault && <Badge tone="info">default</Badge>}
          {p.hasKey ? (
            <Badge tone="ok">
              <Icon name="key" size={11} /> key stored
            </Badge>
          ) : (
            <Badge tone="neutral">no key</Badge>
          )}
        </div>
        <div className="provider-actions">
          <button type="button" className="btn btn-small" onClick={() => void test()} disabled={testing}>
            <Icon name="plug" size={12} /> {testing ? 'Testing…' : 'Test'}
          </button>
          {!p.isDefault && (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => void makeDefault()}
              disabled={busyDefault}
            >
              Make default
            </button>
          )}
          <button type="button" className="btn btn-small" onClick={onEdit}>
            <Icon name="edit" size={12} /> Edit
          </button>
          <button
            type="button"
            className="btn btn-small btn-danger-ghost"
            onClick={onDelete}
            aria-label={`Delete ${p.label}`}
          >
            <Icon name="trash" size={12} /> Delete
          </button>
        </div>
      </div>
      <dl className="provider-facts">
        <div>
          <dt>Model</dt>
          <dd className="mono">{p.model}</dd>
        </div>
        <div>
          <dt>Endpoint</dt>
          <dd className="mono">{p.baseUrl ?? <span className="muted">the service’s default</span>}</dd>
        </div>
        <div>
          <dt>Context</dt>
          <dd>{p.contextTokens.toLocaleString()} tokens</dd>
        </div>
        <div>
          <dt>Price per M tokens</dt>
          <dd data-testid="provider-price">
            {p.inputPerMTok === null || p.outputPerMTok === null ? (
              <span className="text-warn">
                Unknown: sessions will not start until you set a price (Edit → Input and Output price).
              </span>
            ) : (
              <>
                {perM(p.inputPerMTok)} in · {perM(p.outputPerMTok)} out{' '}
                <span className="muted">
                  ({p.priceSource === 'person' ? 'your price' : 'Fluid’s price list'})
                </span>
              </>
            )}
          </dd>
        </div>
      </dl>
      {testing && <Spinner label="Testing the provider" />}
      {result && <TestOutcome result={result} />}
    </li>
  );
}

export function ProvidersPanel() {
  const loaded = useProviders((s) => s.loaded);
  const error = useProviders((s) => s.error);
  const list = useProviders((s) => s.list);
  const [editing, setEditing] = useState<Provider | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Provider | null>(null);

  return (
    <div className="providers-page">
      <Section
        title="Model providers"
        actions={
          <button type="button" className="btn btn-small btn-primary" onClick={() => setEditing('new')}>
            <Icon name="plus" size={12} /> Add provider
          </button>
        }
      >
        <p className="muted section-help">
          The models agents think with: Anthropic, or anything that speaks the OpenAI Chat Completions API
          (OpenAI, OpenRouter, a local Ollama or vLLM). Keys stay in this machine’s secret store; the agent
          never sees them.
        </p>
        {!loaded ? (
          <Spinner label="Loading providers" />
        ) : error ? (
          <ErrorBox error={error} title="The providers could not be loaded" />
        ) : !list.length ? (
          <EmptyState
            icon="plug"
            title="No providers yet"
            actions={
              <button type="button" className="btn btn-primary" onClick={() => setEditing('new')}>
                <Icon name="plus" size={14} /> Add a provider
              </button>
            }
          >
            <p>Add one to start agent sessions.</p>
          </EmptyState>
        ) : (
          <ul className="provider-list" aria-label="Providers">
            {list.map((p) => (
              <ProviderRow key={p.id} p={p} onEdit={() => setEditing(p)} onDelete={() => setDeleting(p)} />
            ))}
          </ul>
        )}
      </Section>
      {editing && (
        <ProviderDialog provider={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />
      )}
      {deleting && <DeleteDialog provider={deleting} onClose={() => setDeleting(null)} />}
    </div>
  );
}
