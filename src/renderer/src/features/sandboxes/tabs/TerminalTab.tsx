/**
 * An interactive shell in the sandbox: xterm over the sandboxes.shell stream. Keys and resizes go back
 * with sandboxes.shellInput (in order, batched while a call is in flight). Leaving the tab keeps the
 * session; when the shell exits, Reconnect opens a new one.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useEffectEvent, useRef, useState } from 'react';
import type { Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../../components/Icon.tsx';
import { ErrorBox } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { rpc } from '../../../stores/connection.ts';

type Status = 'connecting' | 'open' | 'exited' | 'failed';

const THEME = {
  background: '#101318',
  foreground: '#d7dce4',
  cursor: '#9db0ff',
  cursorAccent: '#101318',
  selectionBackground: '#33415f',
  black: '#1b1f27',
  red: '#ff6b6b',
  green: '#4cc26a',
  yellow: '#f0a43c',
  blue: '#6d8cff',
  magenta: '#c58af9',
  cyan: '#5eaef0',
  white: '#d7dce4',
  brightBlack: '#68717e',
  brightRed: '#ff8787',
  brightGreen: '#69db7c',
  brightYellow: '#ffc078',
  brightBlue: '#91a7ff',
  brightMagenta: '#da77f2',
  brightCyan: '#74c0fc',
  brightWhite: '#ffffff',
};

const MONO = "ui-monospace, 'SF Mono', 'Cascadia Mono', Menlo, Consolas, 'DejaVu Sans Mono', monospace";

/** Sends keys in order: one shellInput in flight at a time, whatever arrived meanwhile goes next. */
class InputPump {
  private pending = '';
  private busy = false;
  sessionId: string | null = null;
  onLost: (err: unknown) => void = () => {};

  push(data: string): void {
    if (!this.sessionId) return;
    this.pending += data;
    if (!this.busy) void this.flush();
  }

  private async flush(): Promise<void> {
    this.busy = true;
    while (this.pending && this.sessionId) {
      const data = this.pending.slice(0, 512 * 1024);
      this.pending = this.pending.slice(data.length);
      try {
        await rpc().call('sandboxes.shellInput', { sessionId: this.sessionId, data });
      } catch (err) {
        this.pending = '';
        this.onLost(err);
      }
    }
    this.busy = false;
  }
}

export function TerminalTab({ sandbox, visible }: { sandbox: Sandbox; visible: boolean }) {
  const boxRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const pumpRef = useRef<InputPump>(new InputPump());
  const reconnectRef = useRef<HTMLButtonElement>(null);
  const [status, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [exitCode, setExitCode] = useState<number | null>(null);
  const [size, setSize] = useState<{ cols: number; rows: number } | null>(null);
  const [session, setSession] = useState(0);
  const isVisible = useEffectEvent(() => visible);

  // The terminal itself: created once, fitted to its box whenever the box changes size.
  useEffect(() => {
    const box = boxRef.current!;
    const term = new Terminal({
      fontFamily: MONO,
      fontSize: 13,
      lineHeight: 1.15,
      cursorBlink: true,
      scrollback: 5000,
      theme: THEME,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    termRef.current = term;
    fitRef.current = fit;
    const pump = pumpRef.current;
    // Shift+Escape leaves the terminal for the keyboard (Tab belongs to the shell).
    term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && e.key === 'Escape' && e.shiftKey) {
        term.blur();
        reconnectRef.current?.focus();
        return false;
      }
      return true;
    });
    const onData = term.onData((d) => pump.push(d));
    let resizeTimer: ReturnType<typeof setTimeout> | null = null;
    const onResize = term.onResize(({ cols, rows }) => {
      setSize({ cols, rows });
      if (resizeTimer) clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        const sessionId = pump.sessionId;
        if (sessionId)
          rpc()
            .call('sandboxes.shellInput', { sessionId, cols, rows })
            .catch(() => {});
      }, 120);
    });
    const ro = new ResizeObserver(() => {
      if (box.offsetWidth > 0 && box.offsetHeight > 0) fit.fit();
    });
    ro.observe(box);
    fit.fit();
    setSize({ cols: term.cols, rows: term.rows });
    return () => {
      if (resizeTimer) clearTimeout(resizeTimer);
      ro.disconnect();
      onData.dispose();
      onResize.dispose();
      term.dispose();
      termRef.current = null;
      fitRef.current = null;
    };
  }, []);

  // The shell session: opened on mount and on every Reconnect; leaving closes it (breaks the stream).
  useEffect(() => {
    const term = termRef.current!;
    const pump = pumpRef.current;
    const ac = new AbortController();
    pump.onLost = (err) => {
      if (ac.signal.aborted) return;
      const info = toErrorInfo(err);
      if (info.code === 'NOT_FOUND') return; // the exit item follows
      setError(info);
    };
    void (async () => {
      setStatus('connecting');
      setError(null);
      setExitCode(null);
      try {
        const stream = rpc().stream(
          'sandboxes.shell',
          { sandbox: sandbox.id, cols: Math.max(10, term.cols), rows: Math.max(5, term.rows) },
          { signal: ac.signal },
        );
        for await (const item of stream) {
          if (item.kind === 'open') {
            pump.sessionId = item.sessionId;
            setStatus('open');
            if (isVisible()) term.focus();
          } else if (item.kind === 'data') term.write(item.data);
          else {
            setExitCode(item.code);
            break;
          }
        }
        if (ac.signal.aborted) return;
        pump.sessionId = null;
        term.write('\r\n\x1b[2m[the shell exited]\x1b[0m\r\n');
        setStatus('exited');
      } catch (err) {
        if (ac.signal.aborted) return;
        pump.sessionId = null;
        setError(toErrorInfo(err));
        setStatus('failed');
      }
    })();
    return () => {
      ac.abort();
      pump.sessionId = null;
    };
  }, [sandbox.id, session]);

  // Coming back to the tab: fit (the box may have changed while hidden) and take the focus.
  useEffect(() => {
    if (!visible) return;
    const t = setTimeout(() => {
      fitRef.current?.fit();
      termRef.current?.focus();
    }, 0);
    return () => clearTimeout(t);
  }, [visible]);

  function reconnect() {
    termRef.current?.reset();
    setSession((n) => n + 1);
  }

  const ended = status === 'exited' || status === 'failed';
  return (
    <div className="terminal-tab" data-status={status}>
      <div className="terminal-bar">
        <span
          className={`dot dot-${status === 'open' ? 'ok' : ended ? 'fail' : 'warn'}`}
          aria-hidden="true"
        />
        <span role="status" className="terminal-status">
          {status === 'connecting' && 'Connecting…'}
          {status === 'open' && `Shell on ${sandbox.name}`}
          {status === 'exited' && `The shell exited${exitCode !== null ? ` (code ${exitCode})` : ''}`}
          {status === 'failed' && 'The shell could not be opened'}
        </span>
        {size && (
          <span className="muted mono small" title="Terminal size (columns × rows)">
            {size.cols}×{size.rows}
          </span>
        )}
        <span className="toolbar-spacer" />
        <span className="muted small">Shift+Esc leaves the terminal</span>
        <button
          ref={reconnectRef}
          type="button"
          className={ended ? 'btn btn-small btn-primary' : 'btn btn-small'}
          onClick={reconnect}
          disabled={status === 'connecting'}
        >
          <Icon name="refresh" size={12} /> {ended ? 'Reconnect' : 'New session'}
        </button>
      </div>
      {error && <ErrorBox error={error} title="Terminal" />}
      <div className="terminal-box" ref={boxRef} aria-label={`Terminal of ${sandbox.name}`} />
    </div>
  );
}
