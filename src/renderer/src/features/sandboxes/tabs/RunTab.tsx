/**
 * Run a command (or a multi-line bash script) as root. The command belongs to the backend
 * (sandboxes.runStart): reloading the page or losing the connection only detaches this view, which
 * finds the run again (sandboxes.runs) and re-attaches from the last byte it showed
 * (sandboxes.runAttach). Below it, the history of commands run in this sandbox from any door
 * (the app, the CLI, the agent), each openable. Durations come from the backend.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import type { Run, RunItem } from '../../../../../shared/contract/runs.ts';
import type { Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../../components/Icon.tsx';
import { Badge, ErrorBox, ExitBadge } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatBytes, formatDuration, formatRelative } from '../../../lib/format.ts';
import { useNow } from '../../../lib/hooks.ts';
import { rpc, useConnection, useOnline } from '../../../stores/connection.ts';
import './runs.css';

interface Chunk {
  kind: 'stdout' | 'stderr' | 'dropped';
  data: string;
}

/** Merge consecutive chunks of the same stream so long outputs stay a handful of nodes. */
function append(chunks: Chunk[], c: Chunk): Chunk[] {
  const last = chunks.at(-1);
  if (last && last.kind === c.kind && c.kind !== 'dropped')
    return [...chunks.slice(0, -1), { kind: c.kind, data: last.data + c.data }];
  return [...chunks, c];
}

const dropNote = (bytes: number) =>
  `[${formatBytes(bytes)} of earlier output dropped: only the newest part is kept]\n`;

/** How a run ended, as a badge: a non-zero exit is a result, not a failure of Fluid. */
function Outcome({ run }: { run: Run }) {
  if (run.status === 'running') return null;
  if (run.status === 'exited')
    return (
      <span title={run.timedOut ? 'Killed at the timeout' : undefined}>
        <ExitBadge code={run.exitCode} signal={run.signal} />
      </span>
    );
  return (
    <Badge tone={run.status === 'cancelled' ? 'neutral' : 'fail'} title={run.error?.message}>
      <span data-testid="exit-code">{run.status}</span>
    </Badge>
  );
}

/** Elapsed on the backend's clock: the run's own duration once it ended; frozen while offline. */
function useElapsed(run: Run | null): number {
  const now = useNow(run?.status === 'running' ? 250 : 60_000);
  if (!run) return 0;
  if (run.status !== 'running') return run.durationMs;
  return Math.max(run.durationMs, now - Date.parse(run.startedAt), 0);
}

const originOf = (r: Run) => `${r.startedBy.door}:${r.startedBy.id}`;

export function RunTab({ sandbox }: { sandbox: Sandbox }) {
  const [command, setCommand] = useState('');
  const [timeout, setTimeoutSecs] = useState('600');
  const [runs, setRuns] = useState<Run[]>([]);
  const [currentId, setCurrentId] = useState<string | null>(null);
  const [current, setCurrent] = useState<Run | null>(null);
  const [chunks, setChunks] = useState<Chunk[]>([]);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [attached, setAttached] = useState(false);
  const [busy, setBusy] = useState(false);
  const offsetRef = useRef(0);
  const outRef = useRef<HTMLPreElement>(null);
  const online = useOnline();
  const generation = useConnection((s) => s.generation);
  const elapsed = useElapsed(current);
  // The run shown was picked by the person (or started here); otherwise the newest Run of the tab.
  const picked = useRef(false);

  const refresh = useCallback(
    () =>
      Promise.resolve()
        .then(() => rpc().call('sandboxes.runs', { sandbox: sandbox.id, limit: 30 }))
        .then(
          (list) => {
            setRuns(list);
            if (!picked.current) {
              const mine = list.find((r) => r.origin === 'run');
              if (mine) setCurrentId((id) => id ?? mine.id);
            }
          },
          () => {
            /* offline: the list comes back with the connection */
          },
        ),
    [sandbox.id],
  );

  // History: on every (re)connection, and when a command starts or ends in this sandbox.
  useEffect(() => {
    if (!online) return;
    void refresh();
    let off = () => {};
    try {
      off = rpc().on('sandboxes.runChanged', (e) => {
        if (e.sandboxId === sandbox.id) void refresh();
      });
    } catch {
      /* offline */
    }
    return off;
  }, [refresh, online, generation, sandbox.id]);

  // The shown run: attached from the last byte shown, again after every reconnection.
  useEffect(() => {
    if (!currentId || !online) return;
    const ac = new AbortController();
    void (async () => {
      setAttached(true);
      try {
        const stream = rpc().stream(
          'sandboxes.runAttach',
          { run: currentId, offset: offsetRef.current },
          { signal: ac.signal },
        );
        for await (const item of stream as AsyncIterable<RunItem>) {
          if (ac.signal.aborted) break;
          if (item.kind === 'run' || item.kind === 'exit') setCurrent(item.run);
          else if (item.kind === 'dropped')
            setChunks((c) => append(c, { kind: 'dropped', data: dropNote(item.bytes) }));
          else {
            offsetRef.current = item.offset;
            setChunks((c) => append(c, { kind: item.kind, data: item.data }));
          }
        }
      } catch (err) {
        if (!ac.signal.aborted && useConnection.getState().state === 'connected') setError(toErrorInfo(err));
      } finally {
        if (!ac.signal.aborted) setAttached(false);
      }
    })();
    return () => ac.abort();
  }, [currentId, online, generation]);

  useEffect(() => {
    const el = outRef.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 80) el.scrollTop = el.scrollHeight;
  }, [chunks]);

  function show(id: string) {
    picked.current = true;
    if (id === currentId) return;
    offsetRef.current = 0;
    setChunks([]);
    setCurrent(runs.find((r) => r.id === id) ?? null);
    setError(null);
    setCurrentId(id);
  }

  async function start(e?: FormEvent) {
    e?.preventDefault();
    const cmd = command.trim();
    if (!cmd || current?.status === 'running' || busy || !online) return;
    const secs = /^\d+$/.test(timeout.trim()) ? Math.min(Math.max(Number(timeout), 1), 24 * 3600) : 600;
    setBusy(true);
    setError(null);
    try {
      const run = await rpc().call('sandboxes.runStart', {
        sandbox: sandbox.id,
        command: cmd,
        timeoutSeconds: secs,
      });
      picked.current = true;
      offsetRef.current = 0;
      setChunks([]);
      setCurrent(run);
      setCurrentId(run.id);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }

  async function stop() {
    if (!current) return;
    try {
      setCurrent(await rpc().call('sandboxes.runCancel', { run: current.id }));
    } catch (err) {
      setError(toErrorInfo(err));
    }
  }

  const running = current?.status === 'running';
  const empty = current && !chunks.length;
  return (
    <div className="run-tab">
      <form className="run-form" onSubmit={(e) => void start(e)}>
        <label className="field-label" htmlFor={`run-cmd-${sandbox.id}`}>
          Command or script (bash, as root)
        </label>
        <textarea
          id={`run-cmd-${sandbox.id}`}
          className="input textarea mono run-input"
          rows={3}
          value={command}
          placeholder={'hostname\nsystemctl status nginx --no-pager'}
          spellCheck={false}
          onChange={(e) => setCommand(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void start();
          }}
        />
        <div className="run-actions">
          <label className="toolbar-label" htmlFor={`run-timeout-${sandbox.id}`}>
            Timeout
          </label>
          <input
            id={`run-timeout-${sandbox.id}`}
            className="input input-tiny"
            inputMode="numeric"
            value={timeout}
            onChange={(e) => setTimeoutSecs(e.target.value)}
          />
          <span className="unit">s</span>
          <span className="toolbar-spacer" />
          <span className="muted small">
            {online ? 'Ctrl+Enter runs · it goes on if you leave or reload' : 'Offline: reconnecting…'}
          </span>
          {running ? (
            <button type="button" className="btn" onClick={() => void stop()} disabled={!online}>
              <Icon name="stop" size={12} /> Stop
            </button>
          ) : (
            <button type="submit" className="btn btn-primary" disabled={!command.trim() || busy || !online}>
              <Icon name="play" size={12} /> Run
            </button>
          )}
        </div>
      </form>

      {error && <ErrorBox error={error} title="The command did not start" />}

      {current && (
        <div className="run-output" data-running={running ? 'true' : 'false'} data-run={current.id}>
          <div className="run-head">
            <code className="run-cmd" title={current.command}>
              {current.command.split('\n')[0]}
              {current.command.includes('\n') ? ' …' : ''}
            </code>
            <span className="toolbar-spacer" />
            {current.startedBy.door !== 'app' && current.startedBy.door !== 'web' && (
              <span className="muted small" title="Started from">
                {originOf(current)}
              </span>
            )}
            {running && (
              <span className="muted" data-testid="run-live">
                {online && attached ? (
                  <>
                    <span className="spinner small" aria-hidden="true" /> running
                  </>
                ) : (
                  'running on the backend · reattaching…'
                )}
              </span>
            )}
            <Outcome run={current} />
            {current.timedOut && <Badge tone="warn">timed out</Badge>}
            {current.truncated && (
              <Badge tone="warn" title="The output went over the limit; the result kept the first part">
                output truncated
              </Badge>
            )}
            <span className="mono small muted" data-testid="run-duration">
              {formatDuration(elapsed)}
            </span>
          </div>
          <pre className="run-pre" ref={outRef} aria-label="Command output" aria-live="polite">
            {chunks.map((c, i) => (
              <span
                key={i}
                className={c.kind === 'stderr' ? 'stderr' : c.kind === 'dropped' ? 'run-dropped' : undefined}
                data-testid={c.kind === 'dropped' ? 'run-dropped' : undefined}
              >
                {c.data}
              </span>
            ))}
            {empty && !running && <span className="muted">(no output)</span>}
          </pre>
          {!running && (
            <div className="run-foot muted small">
              stdout {formatBytes(current.stdoutBytes)} · stderr {formatBytes(current.stderrBytes)}
              {current.timedOut && ' · killed at the timeout'}
            </div>
          )}
          {current.error && current.status !== 'exited' && (
            <ErrorBox
              error={current.error}
              title={current.status === 'cancelled' ? 'Stopped' : 'The command did not finish'}
            />
          )}
        </div>
      )}

      {runs.length > 0 && <History runs={runs} current={currentId} onShow={show} />}
    </div>
  );
}

function History({
  runs,
  current,
  onShow,
}: {
  runs: Run[];
  current: string | null;
  onShow: (id: string) => void;
}) {
  const now = useNow(30_000);
  return (
    <section className="run-history" aria-label="Commands run in this sandbox">
      <h3 className="run-history-title">Commands in this sandbox</h3>
      <ul className="run-history-list">
        {runs.map((r) => (
          <li key={r.id}>
            <button
              type="button"
              className={r.id === current ? 'run-history-row active' : 'run-history-row'}
              aria-current={r.id === current ? 'true' : undefined}
              onClick={() => onShow(r.id)}
              title={r.command}
            >
              <code className="run-history-cmd">{r.command.split('\n')[0]}</code>
              <span className="muted small">{originOf(r)}</span>
              <span className="muted small">{formatRelative(r.startedAt, now)}</span>
              {r.status === 'running' ? <Badge tone="info">running</Badge> : <Outcome run={r} />}
              <span className="mono small muted">{formatDuration(r.durationMs)}</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
