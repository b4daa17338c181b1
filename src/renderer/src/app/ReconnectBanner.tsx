import { useEffect, useState } from 'react';
import { retryNow, useConnection } from '../stores/connection.ts';

export function ReconnectBanner() {
  const state = useConnection((s) => s.state);
  const nextRetryAt = useConnection((s) => s.nextRetryAt);
  const attempt = useConnection((s) => s.attempt);
  const error = useConnection((s) => s.error);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (state !== 'reconnecting') return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [state]);
  if (state !== 'reconnecting' && state !== 'disconnected') return null;
  const secs = nextRetryAt ? Math.max(0, Math.ceil((nextRetryAt - now) / 1000)) : 0;
  return (
    <div className="banner banner-warn" role="alert" data-testid="offline-banner">
      <span className="spinner small" aria-hidden="true" />
      <div className="banner-text">
        {state === 'reconnecting' ? (
          <>
            <strong>Offline: the Fluid backend cannot be reached.</strong>{' '}
            {secs > 0 ? `Retrying in ${secs} s` : 'Retrying now'} (attempt {attempt}). Actions are disabled
            and times stand still until it is back; what you see may be out of date. Work on the backend (a
            sandbox's creation, a command) goes on without this window.
          </>
        ) : (
          <>
            <strong>Disconnected.</strong> {error}
          </>
        )}
      </div>
      {state === 'reconnecting' && (
        <button type="button" className="btn btn-small" onClick={retryNow}>
          Retry now
        </button>
      )}
    </div>
  );
}
