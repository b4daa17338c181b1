/**
 * Run a command (or a multi-line bash script) as root through sandboxes.execStream: stdout and stderr
 * appear as they come, then the exit code, duration and whether output was cut or the command timed out.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { ExecResult, Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../../components/Icon.tsx';
import { Badge, ErrorBox } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatBytes, formatDuration } from '../../../lib/format.ts';
import { useNow } from '../../../lib/hooks.ts';
import { rpc } from '../../../stores/connection.ts';

interface Chunk {
  kind: 'stdout' | 'stderr';
  data: string;
}

interface RunState {
  command: string;
  startedAt: number;
  chunks: Chunk[];
  result: ExecResult | null;
  error: ErrorInfo | null;
  running: boolean;
}

/** Merge consecutive chunks of the same stream so long outputs stay a handful of nodes. */
function append(chunks: Chunk[], c: Chunk): Chunk[] {
  const last = chunks.at(-1);
  if (last && last.kind === c.kind)
    return [...chunks.slice(0, -1), { kind: c.kind, data: last.data + c.data }];
  return [...chunks, c];
}

export function RunTab({ sandbox }: { sandbox: Sandbox }) {
  const [command, setCommand] = useState('');
  const [timeout, setTimeoutSecs] = useState('600');
  const [run, setRun] = useState<RunState | null>(null);
  const abortRef = useRef<AbortController | null>(null);
  const outRef = useRef<HTMLPreElement>(null);
  const now = useNow(run?.running ? 250 : 60_000);

  useEffect(() => () => abortRef.current?.abort(), []);
  useEffect(() => {
    const el = outRef.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 80) el.scrollTop = el.scrollHeight;
  }, [run?.chunks]);

  async function start(e?: FormEvent) {
    e?.preventDefault();
    const cmd = command.trim();
    if (!cmd || run?.running) return;
    const secs = /^\d+$/.test(timeout.trim()) ? Math.min(Math.max(Number(timeout), 1), 24 * 3600) : 600;
    const ac = new AbortController();
    abortRef.current = ac;
    setRun({ command: cmd, startedAt: Date.now(), chunks: [], result: null, error: null, running: true });
    try {
      const stream = rpc().stream(
        'sandboxes.execStream',
        { sandbox: sandbox.id, command: cmd, timeoutSeconds: secs },
        { signal: ac.signal },
      );
      for await (const item of stream) {
        if (item.kind === 'exit') {
          const result = item.result;
          setRun((r) => r && { ...r, result, running: false });
        } else {
          const chunk: Chunk = { kind: item.kind, data: item.data };
          setRun((r) => r && { ...r, chunks: append(r.chunks, chunk) });
        }
      }
      setRun((r) =>
        r && r.running
          ? {
              ...r,
              running: false,
              error: ac.signal.aborted
                ? { code: 'CANCELLED', message: 'Stopped from here; the command was killed.' }
                : null,
            }
          : r,
      );
    } catch (err) {
      setRun((r) => r && { ...r, running: false, error: toErrorInfo(err) });
    } finally {
      if (abortRef.current === ac) abortRef.current = null;
    }
  }

  const r = run?.result;
  const elapsed = run ? (r ? r.durationMs : now - run.startedAt) : 0;
  // Output that was not streamed (an older backend) still shows from the result.
  const chunks: Chunk[] =
    run && !run.chunks.length && r
      ? (
          [
            { kind: 'stdout', data: r.stdout },
            { kind: 'stderr', data: r.stderr },
          ] as Chunk[]
        ).filter((c) => c.data)
      : (run?.chunks ?? []);
  const empty = run && !chunks.length;
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
          <span className="muted small">Ctrl+Enter runs</span>
          {run?.running ? (
            <button type="button" className="btn" onClick={() => abortRef.current?.abort()}>
              <Icon name="stop" size={12} /> Stop
            </button>
          ) : (
            <button type="submit" className="btn btn-primary" disabled={!command.trim()}>
              <Icon name="play" size={12} /> Run
            </button>
          )}
        </div>
      </form>

      {run && (
        <div className="run-output" data-running={run.running ? 'true' : 'false'}>
          <div className="run-head">
            <code className="run-cmd" title={run.command}>
              {run.command.split('\n')[0]}
              {run.command.includes('\n') ? ' …' : ''}
            </code>
            <span className="toolbar-spacer" />
            {run.running && (
              <span className="muted">
                <span className="spinner small" aria-hidden="true" /> running
              </span>
            )}
            {r && (
              <Badge tone={r.exitCode === 0 ? 'ok' : 'fail'}>
                <span data-testid="exit-code">
                  {r.exitCode !== null
                    ? `exit ${r.exitCode}`
                    : r.signal
                      ? `signal ${r.signal}`
                      : 'no exit code'}
                </span>
              </Badge>
            )}
            {r?.timedOut && <Badge tone="warn">timed out</Badge>}
            {r?.truncated && (
              <Badge tone="warn" title="The output went over the limit; the rest was dropped">
                output truncated
              </Badge>
            )}
            <span className="mono small muted" data-testid="run-duration">
              {formatDuration(elapsed)}
            </span>
          </div>
          <pre className="run-pre" ref={outRef} aria-label="Command output" aria-live="polite">
            {chunks.map((c, i) => (
              <span key={i} className={c.kind === 'stderr' ? 'stderr' : undefined}>
                {c.data}
              </span>
            ))}
            {empty && !run.running && <span className="muted">(no output)</span>}
          </pre>
          {r && (
            <div className="run-foot muted small">
              stdout {formatBytes(r.stdout.length)} · stderr {formatBytes(r.stderr.length)}
              {r.timedOut && ' · killed at the timeout'}
            </div>
          )}
          {run.error && <ErrorBox error={run.error} title="The command did not finish" />}
        </div>
      )}
    </div>
  );
}
