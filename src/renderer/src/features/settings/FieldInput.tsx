/** One settings field as an input: segmented choices, a checkbox, a list (one per line) or a text/number box. */
import { Field } from '../../components/ui.tsx';
import type { FormField } from './schemaForm.ts';

const OPTION_LABEL: Record<string, string> = { system: 'System', light: 'Light', dark: 'Dark' };

export function FieldInput({
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
