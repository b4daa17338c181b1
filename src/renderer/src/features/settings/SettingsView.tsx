/** Settings: a form generated from the settings schema, validated by the backend; plus system info and doctor. */
import { useMemo, useState, type FormEvent } from 'react';
import { SettingsSchema } from '../../../../shared/contract/settings.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, ErrorBox, Field, KV, Section, Spinner, StatusIcon } from '../../components/ui.tsx';
import { issuesByField, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { useSettings } from '../../stores/settings.ts';
import { useSystem } from '../../stores/system.ts';
import { toast } from '../../stores/toasts.ts';
import { buildPatch, describeForm, readPath, toText, type FormField } from './schemaForm.ts';

const SECTIONS = describeForm(SettingsSchema);
const FIELDS = SECTIONS.flatMap((s) => s.fields);

const OPTION_LABEL: Record<string, string> = { system: 'System', light: 'Light', dark: 'Dark' };

function FieldInput({
  field,
  value,
  error,
  onChange,
}: {
  field: FormField;
  value: string;
  error: string | undefined;
  onChange: (v: string) => void;
}) {
  const s = field.spec;
  if (s.kind === 'enum')
    return (
      <fieldset className={error ? 'field has-error' : 'field'} data-field={field.path}>
        <legend className="field-label">{field.label}</legend>
        <div className="segmented" role="radiogroup" aria-label={field.label}>
          {s.options.map((o) => (
            <label key={o} className={value === o ? 'seg active' : 'seg'}>
              <input
                type="radio"
                name={field.path}
                value={o}
                checked={value === o}
                onChange={() => onChange(o)}
              />
              {OPTION_LABEL[o] ?? o}
            </label>
          ))}
        </div>
        {error && <div className="field-error">{error}</div>}
        {field.help && <div className="field-help">{field.help}</div>}
      </fieldset>
    );
  const unit = field.unit ? ` ${field.unit}` : '';
  const whole = s.kind === 'number' && s.int ? ', whole numbers' : '';
  if (s.kind === 'boolean')
    return (
      <div className={error ? 'field has-error' : 'field'} data-field={field.path}>
        <label className="check-label">
          <input
            type="checkbox"
            checked={value === 'true'}
            onChange={(e) => onChange(String(e.target.checked))}
          />
          {field.label}
        </label>
        {error && <div className="field-error">{error}</div>}
        {field.help && <div className="field-help">{field.help}</div>}
      </div>
    );
  if (s.kind === 'list')
    return (
      <div data-field={field.path}>
        <Field
          label={field.label}
          help={[field.help, 'One per line.'].filter(Boolean).join(' ')}
          error={error}
        >
          {(p) => (
            <textarea
              {...p}
              name={field.path}
              className="input textarea mono"
              rows={3}
              spellCheck={false}
              value={value}
              onChange={(e) => onChange(e.target.value)}
            />
          )}
        </Field>
      </div>
    );
  const range =
    s.kind !== 'number'
      ? ''
      : s.min !== null && s.max !== null
        ? ` Allowed: ${s.min} to ${s.max}${unit}${whole}.`
        : s.min !== null
          ? ` At least ${s.min}${unit}${whole}.`
          : s.max !== null
            ? ` At most ${s.max}${unit}${whole}.`
            : '';
  const empty = s.kind === 'number' && s.nullable ? ' Empty: no limit.' : '';
  return (
    <div data-field={field.path}>
      <Field
        label={field.label}
        help={((field.help ?? '') + range + empty).trim() || undefined}
        error={error}
      >
        {(p) => (
          <div className="input-unit">
            <input
              {...p}
              name={field.path}
              className={s.kind === 'number' ? 'input input-num' : 'input mono'}
              inputMode={s.kind === 'number' ? 'decimal' : undefined}
              placeholder={s.kind === 'number' && s.nullable ? 'no limit' : undefined}
              spellCheck={false}
              value={value}
              onChange={(e) => onChange(e.target.value)}
            />
            {field.unit && <span className="unit">{field.unit}</span>}
          </div>
        )}
      </Field>
    </div>
  );
}

function SettingsForm() {
  const settings = useSettings((s) => s.settings);
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const errors = useMemo(() => issuesByField(validationIssues(error)), [error]);
  if (!settings) return <Spinner label="Loading settings" />;

  const shown = (f: FormField) => draft[f.path] ?? toText(f, readPath(settings, f.path));
  const dirty = FIELDS.filter(
    (f) => f.path in draft && draft[f.path] !== toText(f, readPath(settings, f.path)),
  );

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const changed = Object.fromEntries(dirty.map((f) => [f.path, draft[f.path]!]));
      await rpc().call('settings.update', buildPatch(FIELDS, settings, changed));
      setDraft({});
      toast({ kind: 'success', title: 'Settings saved', message: `${dirty.length} changed.` });
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }

  const unplaced =
    error &&
    (error.code !== 'VALIDATION' || !Object.keys(errors).some((p) => FIELDS.some((f) => f.path === p)));
  return (
    <form className="settings-form" onSubmit={(e) => void save(e)} noValidate aria-label="Settings">
      {SECTIONS.map((sec) => (
        <Section key={sec.key} title={sec.label}>
          {sec.help && <p className="muted section-help">{sec.help}</p>}
          <div className="form-grid">
            {sec.fields.map((f) => (
              <FieldInput
                key={f.path}
                field={f}
                value={shown(f)}
                error={errors[f.path]}
                onChange={(v) => {
                  setDraft((d) => ({ ...d, [f.path]: v }));
                  if (errors[f.path]) setError(null);
                }}
              />
            ))}
          </div>
        </Section>
      ))}
      {unplaced && error && <ErrorBox error={error} title="Settings were not saved" />}
      <div className="form-actions sticky-actions">
        <span className="muted">
          {dirty.length ? `${dirty.length} unsaved change${dirty.length > 1 ? 's' : ''}` : 'No changes'}
        </span>
        <button
          type="button"
          className="btn"
          disabled={!dirty.length || busy}
          onClick={() => {
            setDraft({});
            setError(null);
          }}
        >
          Revert
        </button>
        <button type="submit" className="btn btn-primary" disabled={!dirty.length || busy}>
          {busy ? 'Saving…' : 'Save'}
        </button>
      </div>
    </form>
  );
}

function SystemPanel() {
  const info = useSystem((s) => s.info);
  const door = useConnection((s) => s.door);
  const doctor = useBackendQuery((b, signal) => b.call('system.doctor', {}, { signal }), []);
  return (
    <>
      <Section title="This installation">
        {info ? (
          <dl className="kv">
            <KV label="Version">{info.version}</KV>
            <KV label="Door">{door === 'app' ? 'desktop app' : 'web mode'}</KV>
            <KV label="You are" mono>
              {info.actor.door}:{info.actor.id}
            </KV>
            <KV label="Data directory" mono>
              {info.dataDir}
            </KV>
            <KV label="Database" mono>
              {info.dbPath} (schema {info.schemaVersion})
            </KV>
            <KV label="Backend">
              {info.platform}, Node {info.node}, pid {info.pid}
            </KV>
          </dl>
        ) : (
          <Spinner label="Loading" />
        )}
      </Section>
      <Section
        title="Doctor"
        actions={
          <button type="button" className="btn btn-small" onClick={doctor.reload} disabled={doctor.loading}>
            <Icon name="refresh" size={12} /> Run again
          </button>
        }
      >
        {doctor.error ? (
          <ErrorBox error={doctor.error} title="The doctor could not run" />
        ) : doctor.data ? (
          <>
            <p>
              {doctor.data.ok ? <Badge tone="ok">Healthy</Badge> : <Badge tone="fail">Needs attention</Badge>}
            </p>
            <ul className="checks" aria-label="Doctor checks">
              {doctor.data.checks.map((c) => (
                <li key={c.id} className={`check check-${c.status}`} data-check={c.id}>
                  <StatusIcon status={c.status} />
                  <div className="check-body">
                    <div className="check-title">{c.title}</div>
                    <div className="check-detail mono small">{c.detail}</div>
                    {c.advice && <div className="check-advice">{c.advice}</div>}
                  </div>
                </li>
              ))}
            </ul>
          </>
        ) : (
          <Spinner label="Running the doctor" />
        )}
      </Section>
    </>
  );
}

export function SettingsView() {
  return (
    <div className="page-pad settings-page">
      <div className="settings-main">
        <SettingsForm />
      </div>
      <div className="settings-side">
        <SystemPanel />
      </div>
    </div>
  );
}
