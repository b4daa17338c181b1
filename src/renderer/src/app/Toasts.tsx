import { Icon } from '../components/Icon.tsx';
import { dismissToast, useToasts } from '../stores/toasts.ts';

export function Toasts() {
  const toasts = useToasts((s) => s.toasts);
  return (
    <div className="toasts" aria-live="polite" aria-label="Notifications">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          <Icon name={t.kind === 'error' ? 'x' : t.kind === 'success' ? 'check' : 'info'} size={16} />
          <div className="toast-body">
            <div className="toast-title">
              {t.title}
              {t.code && <code className="err-code">{t.code}</code>}
            </div>
            <div className="toast-message">{t.message}</div>
          </div>
          <button
            type="button"
            className="btn btn-icon btn-ghost"
            aria-label="Dismiss notification"
            onClick={() => dismissToast(t.id)}
          >
            <Icon name="x" size={14} />
          </button>
        </div>
      ))}
    </div>
  );
}
