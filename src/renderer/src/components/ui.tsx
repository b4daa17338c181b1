/** Small building blocks shared by every view. */
import { useEffect, useEffectEvent, useId, useRef, type ReactNode } from 'react';
import type { ErrorInfo } from '../lib/errors.ts';
import { Icon, type IconName } from './Icon.tsx';

export type Status = 'pass' | 'warn' | 'fail';

const STATUS_ICON: Record<Status, IconName> = { pass: 'check', warn: 'warn', fail: 'x' };
const STATUS_LABEL: Record<Status, string> = { pass: 'Passed', warn: 'Warning', fail: 'Failed' };

export function StatusIcon({ status }: { status: Status }) {
  return (
    <span className={`status-icon status-${status}`}>
      <Icon name={STATUS_ICON[status]} size={14} label={STATUS_LABEL[status]} />
    </span>
  );
}

export function Badge({
  tone = 'neutral',
  children,
  title,
}: {
  tone?: 'neutral' | 'ok' | 'warn' | 'fail' | 'accent' | 'info';
  children: ReactNode;
  title?: string;
}) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return <span className="spinner" role="status" aria-label={label} />;
}

export function ProgressBar({ value, label }: { value: number | null; label: string }) {
  return (
    <div
      className={value === null ? 'progress indeterminate' : 'progress'}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value === null ? undefined : Math.round(value * 100)}
    >
      <div className="progress-fill" style={value === null ? undefined : { width: `${value * 100}%` }} />
    </div>
  );
}

/** A usage bar: `used` of `total`, with a caption. */
export function UsageBar({
  label,
  used,
  total,
  caption,
  tone,
}: {
  label: string;
  used: number | null;
  total: number | null;
  caption: string;
  tone?: 'ok' | 'warn' | 'fail';
}) {
  const pct = used !== null && total ? Math.max(0, Math.min(100, (used / total) * 100)) : null;
  const auto = pct === null ? 'ok' : pct > 90 ? 'fail' : pct > 75 ? 'warn' : 'ok';
  return (
    <div className="usage">
      <div className="usage-head">
        <span className="usage-label">{label}</span>
        <span className="usage-caption">{caption}</span>
      </div>
      <div
        className={`usage-bar tone-${tone ?? auto}`}
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct === null ? undefined : Math.round(pct)}
        aria-valuetext={caption}
      >
        <div className="usage-fill" style={{ width: `${pct ?? 0}%` }} />
      </div>
    </div>
  );
}

export function ErrorBox({
  error,
  title,
  children,
}: {
  error: ErrorInfo;
  title?: string;
  children?: ReactNode;
}) {
  return (
    <div className="callout callout-fail" role="alert">
      <Icon name="x" size={16} />
      <div className="callout-body">
        <div className="callout-title">
          {title ?? 'Error'} <code className="err-code">{error.code}</code>
        </div>
        <p>{error.message}</p>
        {children}
      </div>
    </div>
  );
}

export function Callout({
  tone,
  title,
  children,
  icon,
}: {
  tone: 'info' | 'warn' | 'ok' | 'fail';
  title?: ReactNode;
  children?: ReactNode;
  icon?: IconName;
}) {
  const i: IconName =
    icon ?? (tone === 'ok' ? 'check' : tone === 'fail' ? 'x' : tone === 'warn' ? 'warn' : 'info');
  return (
    <div className={`callout callout-${tone}`}>
      <Icon name={i} size={16} />
      <div className="callout-body">
        {title && <div className="callout-title">{title}</div>}
        {children}
      </div>
    </div>
  );
}

export function EmptyState({
  icon,
  title,
  children,
  actions,
}: {
  icon: IconName;
  title: string;
  children?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <div className="empty">
      <div className="empty-icon">
        <Icon name={icon} size={28} />
      </div>
      <h2 className="empty-title">{title}</h2>
      <div className="empty-body">{children}</div>
      {actions && <div className="empty-actions">{actions}</div>}
    </div>
  );
}

/** A labelled form field with help text and an error message wired up for screen readers. */
export function Field({
  label,
  help,
  error,
  children,
}: {
  label: string;
  help?: ReactNode;
  error?: string | null;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
}) {
  const id = useId();
  const helpId = `${id}-help`;
  const errId = `${id}-err`;
  const describedBy = [help ? helpId : null, error ? errId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className={error ? 'field has-error' : 'field'}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {children({ id, 'aria-describedby': describedBy, 'aria-invalid': error ? true : undefined })}
      {error && (
        <div className="field-error" id={errId}>
          {error}
        </div>
      )}
      {help && (
        <div className="field-help" id={helpId}>
          {help}
        </div>
      )}
    </div>
  );
}

/**
 * A modal on the native <dialog>: focus is trapped and restored by the browser, Escape closes it.
 */
export function Modal({
  title,
  onClose,
  children,
  footer,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const close = useEffectEvent(() => onClose());
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (!d.open) d.showModal();
    const onCancel = (e: Event) => {
      e.preventDefault();
      close();
    };
    d.addEventListener('cancel', onCancel);
    return () => {
      d.removeEventListener('cancel', onCancel);
      if (d.open) d.close();
    };
  }, []);
  return (
    <dialog ref={ref} className={wide ? 'modal modal-wide' : 'modal'} aria-labelledby={titleId}>
      <div className="modal-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="btn btn-icon btn-ghost" aria-label="Close" onClick={onClose}>
          <Icon name="x" />
        </button>
      </div>
      <div className="modal-body">{children}</div>
      {footer && <div className="modal-foot">{footer}</div>}
    </dialog>
  );
}

/** A definition list row for detail panes. */
export function KV({ label, children, mono }: { label: string; children: ReactNode; mono?: boolean }) {
  return (
    <>
      <dt>{label}</dt>
      <dd className={mono ? 'mono' : undefined}>{children}</dd>
    </>
  );
}

export function Section({
  title,
  actions,
  children,
  id,
}: {
  title: string;
  actions?: ReactNode;
  children: ReactNode;
  id?: string;
}) {
  const hid = useId();
  return (
    <section className="panel" aria-labelledby={hid} id={id}>
      <div className="panel-head">
        <h3 id={hid}>{title}</h3>
        {actions && <div className="panel-actions">{actions}</div>}
      </div>
      <div className="panel-body">{children}</div>
    </section>
  );
}

/**
 * How a command ended: "exit 0" (ok), "exit 3" (neutral: the command ran and answered, as
 * `systemctl is-active` does with 3), a signal, or no code at all (warn). A command that could not run
 * at all is an error shown elsewhere, never this badge.
 */
export function ExitBadge({ code, signal }: { code: number | null; signal?: string | null }) {
  const text = code !== null ? `exit ${code}` : signal ? `signal ${signal}` : 'no exit code';
  return (
    <Badge
      tone={code === 0 ? 'ok' : code !== null ? 'neutral' : 'warn'}
      title={code !== null && code !== 0 ? 'The command ran and exited non-zero' : undefined}
    >
      <span data-testid="exit-code" data-exit={code ?? ''}>
        {text}
      </span>
    </Badge>
  );
}
