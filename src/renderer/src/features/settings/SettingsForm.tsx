/** A settings form: generated fields of some sections, plus an optional editor of its own; one Save. */
import { useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { SettingsSchema } from '../../../../shared/contract/settings.ts';
import { ErrorBox, Section, Spinner } from '../../components/ui.tsx';
import { issuesByField, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { withPresence } from '../../lib/presence.ts';
import { useSettings } from '../../stores/settings.ts';
import { toast } from '../../stores/toasts.ts';
import { FieldInput } from './FieldInput.tsx';
import {
  buildPatch,
  describeForm,
  readPath,
  toText,
  type FormField,
  type FormSection,
} from './schemaForm.ts';

export const SETTINGS_SECTIONS = describeForm(SettingsSchema);

/** Something a settings page edits besides the generated fields (the agent's approval rules). */
export interface FormExtension {
  /** Rendered after the generated sections, with the backend's issues by path. */
  render(errors: Record<string, string>): ReactNode;
  /** Unsaved changes it holds. */
  dirty: number;
  /** Its part of the patch; null when it is not valid (it shows why itself). */
  patch(): Record<string, Record<string, unknown>> | null;
  reset(): void;
  /** The issue paths it shows itself (a prefix such as "agent.rules"). */
  owns: string;
}

export function SettingsForm({
  sections,
  label = 'Settings',
  extension,
}: {
  sections: FormSection[];
  label?: string;
  extension?: FormExtension;
}) {
  const settings = useSettings((s) => s.settings);
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const errors = useMemo(() => issuesByField(validationIssues(error)), [error]);
  if (!settings) return <Spinner label="Loading settings" />;
  const fields = sections.flatMap((s) => s.fields);

  const shown = (f: FormField) => draft[f.path] ?? toText(f, readPath(settings, f.path));
  const dirty = fields.filter(
    (f) => f.path in draft && draft[f.path] !== toText(f, readPath(settings, f.path)),
  );
  const changes = dirty.length + (extension?.dirty ?? 0);

  async function save(e: FormEvent) {
    e.preventDefault();
    const extra = extension?.dirty ? extension.patch() : {};
    if (extra === null) return;
    setBusy(true);
    setError(null);
    try {
      const changed = Object.fromEntries(dirty.map((f) => [f.path, draft[f.path]!]));
      const patch = buildPatch(fields, settings, changed);
      for (const [k, v] of Object.entries(extra)) patch[k] = { ...patch[k], ...v };
      await withPresence('settings.update', patch, (presence) =>
        rpc().call('settings.update', { ...patch, presence }),
      );
      setDraft({});
      extension?.reset();
      toast({ kind: 'success', title: 'Settings saved', message: `${changes} changed.` });
    } catch (err) {
      const info = toErrorInfo(err);
      if (info.code !== 'CANCELLED') setError(info);
    } finally {
      setBusy(false);
    }
  }

  const placed = (p: string) =>
    fields.some((f) => f.path === p) || (!!extension && p.startsWith(extension.owns));
  const unplaced = error && (error.code !== 'VALIDATION' || !Object.keys(errors).some(placed));
  return (
    <form className="settings-form" onSubmit={(e) => void save(e)} noValidate aria-label={label}>
      {sections.map((sec) => (
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
      {extension?.render(errors)}
      {unplaced && error && <ErrorBox error={error} title="Settings were not saved" />}
      <div className="form-actions sticky-actions">
        <span className="muted">
          {changes ? `${changes} unsaved change${changes > 1 ? 's' : ''}` : 'No changes'}
        </span>
        <button
          type="button"
          className="btn"
          disabled={!changes || busy}
          onClick={() => {
            setDraft({});
            extension?.reset();
            setError(null);
          }}
        >
          Revert
        </button>
        <button type="submit" className="btn btn-primary" disabled={!changes || busy}>
          {busy ? 'Saving…' : 'Save'}
        </button>
      </div>
    </form>
  );
}
