/**
 * Follow one session with agent.watch: the snapshot, then every event, folded by reduceSession.
 * Re-opened after a reconnection (the new snapshot replaces what was shown). Status events also
 * update the sessions store, so the list moves with the session on screen.
 */
import type { AgentEvent } from '../../../../shared/contract/agent.ts';
import { useEffect, useReducer, useState } from 'react';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { upsertSession } from '../../stores/agent.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { EMPTY_SESSION_STATE, reduceSession, type SessionState } from './sessionState.ts';

const reduce = (s: SessionState, ev: AgentEvent): SessionState => reduceSession(s, ev);

export interface WatchedSession {
  state: SessionState;
  /** The stream failed (e.g. the session does not exist). */
  error: ErrorInfo | null;
  /** The snapshot arrived and the stream is open. */
  live: boolean;
}

export function useAgentSession(sessionId: string): WatchedSession {
  const generation = useConnection((s) => s.generation);
  const [state, dispatch] = useReducer(reduce, EMPTY_SESSION_STATE);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [live, setLive] = useState(false);

  useEffect(() => {
    const ac = new AbortController();
    (async () => {
      let backend;
      try {
        backend = rpc();
      } catch {
        return; // disconnected: opened again after reconnecting
      }
      try {
        for await (const ev of backend.stream('agent.watch', { sessionId }, { signal: ac.signal })) {
          if (ev.type === 'snapshot') {
            setError(null);
            setLive(true);
            upsertSession(ev.session);
          } else if (ev.type === 'status') upsertSession(ev.session);
          dispatch(ev);
        }
      } catch (err) {
        if (!ac.signal.aborted && !backend.isClosed) setError(toErrorInfo(err));
      } finally {
        if (!ac.signal.aborted) setLive(false);
      }
    })();
    return () => ac.abort();
  }, [sessionId, generation]);

  return { state, error, live };
}
