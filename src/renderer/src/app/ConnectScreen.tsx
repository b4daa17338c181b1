/** Shown instead of the app when the first connection fails (wrong or missing token, server down). */
import { Icon } from '../components/Icon.tsx';
import { retryNow, useConnection } from '../stores/connection.ts';

export function ConnectScreen() {
  const state = useConnection((s) => s.state);
  const error = useConnection((s) => s.error);
  if (state === 'connecting')
    return (
      <main className="connect-screen" aria-busy="true">
        <div className="connect-card">
          <span className="spinner" role="status" aria-label="Connecting" />
          <p>Connecting to the Fluid backend…</p>
        </div>
      </main>
    );
  const web = location.protocol !== 'file:';
  return (
    <main className="connect-screen">
      <div className="connect-card" role="alert">
        <div className="connect-icon">
          <Icon name="plug" size={28} />
        </div>
        <h1>Cannot connect to Fluid</h1>
        <p className="connect-error">{error}</p>
        {web ? (
          <ul className="connect-help">
            <li>
              Open the exact address that <code>fluid serve</code> printed: it ends with <code>#token=…</code>
              , and the token changes every time the server starts.
            </li>
            <li>Check that the server is still running in its terminal.</li>
            <li>
              To start one: <code>npx fluid serve</code> (add <code>--port 4000</code> for a fixed address).
            </li>
          </ul>
        ) : (
          <p>
            Restart Fluid. If this keeps happening, run <code>fluid doctor</code> in a terminal.
          </p>
        )}
        <button type="button" className="btn btn-primary" onClick={retryNow}>
          Try again
        </button>
      </div>
    </main>
  );
}
