import { useConnection } from '../stores/connection.ts';
import { ApprovalIndicator } from './ApprovalIndicator.tsx';
import { TaskTray } from './TaskTray.tsx';

const STATE_LABEL = {
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  disconnected: 'disconnected',
  failed: 'not connected',
} as const;

export function Header({ title }: { title: string }) {
  const state = useConnection((s) => s.state);
  const door = useConnection((s) => s.door);
  const tone =
    state === 'connected' ? 'ok' : state === 'reconnecting' || state === 'connecting' ? 'warn' : 'fail';
  return (
    <header className="header">
      <h1 className="header-title">{title}</h1>
      <div className="header-right">
        <ApprovalIndicator />
        <TaskTray />
        <div
          className={`conn conn-${tone}`}
          role="status"
          aria-label={`Backend: ${door === 'app' ? 'desktop app' : 'web mode'}, ${STATE_LABEL[state]}`}
          title={door === 'app' ? 'Connected through the desktop app' : 'Connected in web mode (WebSocket)'}
          data-state={state}
        >
          <span className="conn-dot" aria-hidden="true" />
          <span className="conn-door">{door ?? '—'}</span>
          <span className="conn-state">{STATE_LABEL[state]}</span>
        </div>
      </div>
    </header>
  );
}
