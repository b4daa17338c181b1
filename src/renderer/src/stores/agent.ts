/**
 * Agent sessions: snapshot with agent.sessions.list, then agent.changed → refetch that session.
 * A session's own watch stream (useAgentSession) upserts the rows it sees too, so the list follows
 * the usage and step counts of the session on screen.
 */
import { create } from 'zustand';
import type { Session, SessionStatus } from '../../../shared/contract/agent.ts';
import type { Backend } from '../backend.ts';
import { toErrorInfo, type ErrorInfo } from '../lib/errors.ts';

interface AgentStore {
  loaded: boolean;
  /** Why the list could not be loaded (shown in the Agent view, not as a toast). */
  error: ErrorInfo | null;
  byId: Record<string, Session>;
}

export const useAgent = create<AgentStore>(() => ({ loaded: false, error: null, byId: {} }));

/** Responses and events may overtake each other: the newest row (by updatedAt) wins. */
export function upsertSession(s: Session): void {
  const prev = useAgent.getState().byId[s.id];
  if (prev && prev.updatedAt > s.updatedAt) return;
  useAgent.setState((st) => ({ byId: { ...st.byId, [s.id]: s } }));
}

/** How often to look again for sessions started or changed by another process (`fluid run`). */
const RESYNC_MS = 15_000;

export function attachAgent(backend: Backend): () => void {
  let alive = true;
  const refetch = (id: string) =>
    backend.call('agent.sessions.get', { sessionId: id }).then(
      (s) => alive && upsertSession(s),
      () => {},
    );
  const off = backend.on('agent.changed', (e) => void refetch(e.sessionId));
  async function snapshot(first: boolean): Promise<void> {
    try {
      const list = await backend.call('agent.sessions.list', { limit: 200 });
      if (!alive) return;
      const cur = useAgent.getState().byId;
      const byId: Record<string, Session> = { ...cur };
      for (const s of list) if (!cur[s.id] || cur[s.id]!.updatedAt <= s.updatedAt) byId[s.id] = s;
      useAgent.setState({ loaded: true, error: null, byId });
    } catch (err) {
      if (alive && first) useAgent.setState({ loaded: true, error: toErrorInfo(err) });
    }
  }
  void snapshot(true);
  const timer = setInterval(() => {
    if (!document.hidden && !backend.isClosed) void snapshot(false);
  }, RESYNC_MS);
  return () => {
    alive = false;
    clearInterval(timer);
    off();
  };
}

export function sortSessions(byId: Record<string, Session>): Session[] {
  return Object.values(byId).sort(
    (a, b) => b.updatedAt.localeCompare(a.updatedAt) || b.createdAt.localeCompare(a.createdAt),
  );
}

export const ACTIVE_STATUSES: SessionStatus[] = ['running', 'waiting-approval'];

export const isActive = (s: Pick<Session, 'status'> | null | undefined): boolean =>
  !!s && ACTIVE_STATUSES.includes(s.status);

export const SESSION_STATUS_TONE: Record<SessionStatus, 'ok' | 'warn' | 'fail' | 'neutral' | 'info'> = {
  idle: 'neutral',
  running: 'info',
  'waiting-approval': 'warn',
  stopped: 'neutral',
  failed: 'fail',
  done: 'ok',
};

export const SESSION_STATUS_LABEL: Record<SessionStatus, string> = {
  idle: 'idle',
  running: 'running',
  'waiting-approval': 'waiting for approval',
  stopped: 'stopped',
  failed: 'failed',
  done: 'done',
};
