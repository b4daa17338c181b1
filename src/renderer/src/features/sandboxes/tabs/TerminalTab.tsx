/**
 * An interactive shell in the sandbox: xterm over a terminal that belongs to the backend, like a tmux
 * session (sandboxes.terminalOpen / terminalAttach). Reloading the page or losing the connection
 * only detaches: the page finds its open terminal again and redraws it from the scrollback. Keys and
 * resizes go with sandboxes.terminalInput (in order, batched while a call is in flight). Close ends
 * the shell deliberately; a terminal nobody attaches to ends after the idle setting.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useEffectEvent, useRef, useState } from 'react';
import type { Terminal as TerminalDto, TerminalItem } from '../../../../../shared/contract/runs.ts';
import type { Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../../components/Icon.tsx';
import { ErrorBox } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatRelative } from '../../../lib/format.ts';
import { rpc, useConnection, useOnline } from '../../../stores/connection.ts';
import { InputPump } from './inputPump.ts';
import './runs.css';

type Status = 'connecting' | 'open' | 'exited' | 'failed';

export const THEME = {
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

export const MONO =
  "ui-monospace, 'SF Mono', 'Cascadia Mono', Menlo, Consolas, 'DejaVu Sans Mono', monospace";

export function TerminalTab({ sandbox, visible }: { sandbox: Sandbox; visible: boolean }) {
  const boxRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const pumpRef = useRef(
    new InputPump((terminal, data) => rpc().call('sandboxes.terminalInput', { terminal, data })),
  );
  const reconnectRef = useRef<HTMLButtonElement>(null);
  const [state, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [info, setInfo] = useState<TerminalDto | null>(null);
  const [open, setOpen] = useState<TerminalDto[]>([]);
  const [size, setSize] = useState<{ cols: number; rows: number } | null>(null);
  /** Which terminal to show: null picks the newest open one (or opens one); 'new' opens another. */
  const [wanted, setWanted] = useState<{ id: string | null; nonce: number }>({ id: null, nonce: 0 });
  const offsetRef = useRef(0);
  const shownRef = useRef<string | null>(null);
  const consumedRef = useRef(-1);
  const endedRef = useRef(false);
  const online = useOnline();
  const generation = useConnection((s) => s.generation);
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
        const terminal = pump.sessionId;
        if (terminal)
          rpc()
            .call('sandboxes.terminalInput', { terminal, cols, rows })
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

  // Find (or open) the terminal and attach to it; after a reconnection, attach again from the
  // last byte shown. Leaving the tab or the page detaches; the shell stays on the backend.
  useEffect(() => {
    if (!online) return;
    const term = termRef.current!;
    const pump = pumpRef.current;
    const ac = new AbortController();
    pump.onLost = (err) => {
      if (ac.signal.aborted) return;
      const e = toErrorInfo(err);
      if (e.code === 'NOT_FOUND') return; // the exit item follows
      setError(e);
    };
    void (async () => {
      setError(null);
      try {
        const list = await rpc().call('sandboxes.terminals', { sandbox: sandbox.id });
        if (ac.signal.aborted) return;
        setOpen(list);
        // A choice made here (New session, the picker) counts once; a reconnection keeps what is shown.
        const fresh = wanted.nonce !== consumedRef.current;
        consumedRef.current = wanted.nonce;
        // The shell ended: a new one is the person's choice.
        if (!fresh && endedRef.current) return pump.drop();
        endedRef.current = false;
        let id: string | null;
        if (fresh && wanted.id === 'new') id = null;
        else if (fresh && wanted.id) id = wanted.id;
        else
          id =
            shownRef.current && list.some((t) => t.id === shownRef.current)
              ? shownRef.current
              : (list[0]?.id ?? null);
        if (!id) {
          setStatus('connecting');
          const made = await rpc().call('sandboxes.terminalOpen', {
            sandbox: sandbox.id,
            cols: Math.max(10, term.cols),
            rows: Math.max(5, term.rows),
          });
          if (ac.signal.aborted) return;
          id = made.id;
          setOpen((l) => [made, ...l.filter((t) => t.id !== made.id)]);
        }
        if (shownRef.current !== id) {
          // Another terminal: redraw from its scrollback.
          term.reset();
          offsetRef.current = 0;
          shownRef.current = id;
        }
        const stream = rpc().stream(
          'sandboxes.terminalAttach',
          { terminal: id, offset: offsetRef.current },
          { signal: ac.signal },
        );
        for await (const item of stream as AsyncIterable<TerminalItem>) {
          if (ac.signal.aborted) return;
          if (item.kind === 'terminal') {
            setInfo(item.terminal);
            pump.attach(item.terminal.id);
            setStatus('open');
            // This page's size wins (the terminal may have been drawn elsewhere).
            if (item.terminal.cols !== term.cols || item.terminal.rows !== term.rows)
              void rpc()
                .call('sandboxes.terminalInput', { terminal: id, cols: term.cols, rows: term.rows })
                .catch(() => {});
            if (isVisible()) term.focus();
          } else if (item.kind === 'dropped') {
            term.write(`\x1b[2m[${item.bytes} bytes of earlier output are no longer kept]\x1b[0m\r\n`);
          } else if (item.kind === 'data') {
            offsetRef.current = item.offset;
            term.write(item.data);
          } else {
            setInfo(item.terminal);
            pump.drop();
            term.write(
              `\r\n\x1b[2m[${item.terminal.endReason ?? 'the shell exited'}${item.terminal.exitCode !== null ? ` (code ${item.terminal.exitCode})` : ''}]\x1b[0m\r\n`,
            );
            setStatus('exited');
            endedRef.current = true;
            setOpen((l) => l.filter((t) => t.id !== item.terminal.id));
            return;
          }
        }
      } catch (err) {
        if (ac.signal.aborted) return;
        // A dropped connection is not a failure: the next connection attaches again.
        if (useConnection.getState().state !== 'connected') return pump.detach();
        pump.drop();
        setError(toErrorInfo(err));
        setStatus('failed');
      }
    })();
    return () => {
      ac.abort();
      pump.detach();
    };
  }, [sandbox.id, wanted, online, generation]);

  // Coming back to the tab: fit (the box may have changed while hidden) and take the focus.
  useEffect(() => {
    if (!visible) return;
    const t = setTimeout(() => {
      fitRef.current?.fit();
      termRef.current?.focus();
    }, 0);
    return () => clearTimeout(t);
  }, [visible]);

  // The person's choice of a shell shows as connecting at once, and what they type meanwhile waits for it.
  function openNew() {
    shownRef.current = null;
    pumpRef.current.hold();
    setStatus('connecting');
    setWanted((w) => ({ id: 'new', nonce: w.nonce + 1 }));
  }

  function pick(id: string) {
    if (id === shownRef.current) return;
    pumpRef.current.hold();
    setStatus('connecting');
    setWanted((w) => ({ id, nonce: w.nonce + 1 }));
  }

  async function close() {
    const id = info?.id;
    if (!id) return;
    try {
      await rpc().call('sandboxes.terminalClose', { terminal: id });
    } catch (err) {
      setError(toErrorInfo(err));
    }
  }

  // Offline, an open shell is not reachable from here (it stays open on the backend).
  const status = !online && state === 'open' ? 'connecting' : state;
  const ended = status === 'exited' || status === 'failed';
  const others = open.filter((t) => t.status === 'open');
  return (
    <div className="terminal-tab" data-status={status} data-terminal={info?.id ?? ''}>
      <div className="terminal-bar">
        <span
          className={`dot dot-${status === 'open' ? 'ok' : ended ? 'fail' : 'warn'}`}
          aria-hidden="true"
        />
        <span role="status" className="terminal-status">
          {status === 'connecting' &&
            (online ? 'Connecting…' : 'Offline: the shell stays open on the backend')}
          {status === 'open' && `Shell on ${sandbox.name}`}
          {status === 'exited' &&
            `The shell ended${info?.exitCode != null ? ` (code ${info.exitCode})` : ''}`}
          {status === 'failed' && 'The shell could not be opened'}
        </span>
        {size && (
          <span className="muted mono small" title="Terminal size (columns × rows)">
            {size.cols}×{size.rows}
          </span>
        )}
        {others.length > 1 && (
          <select
            className="input input-small terminal-picker"
            aria-label="Open terminals"
            value={info?.id ?? ''}
            onChange={(e) => pick(e.target.value)}
          >
            {others.map((t, i) => (
              <option key={t.id} value={t.id}>
                Terminal {others.length - i} · opened {formatRelative(t.openedAt)}
              </option>
            ))}
          </select>
        )}
        <span className="toolbar-spacer" />
        <span className="muted small">Shift+Esc leaves the terminal · it stays open if you reload</span>
        {status === 'open' && (
          <button type="button" className="btn btn-small" onClick={() => void close()} title="End this shell">
            <Icon name="x" size={12} /> Close
          </button>
        )}
        <button
          ref={reconnectRef}
          type="button"
          className={ended ? 'btn btn-small btn-primary' : 'btn btn-small'}
          onClick={openNew}
          disabled={status === 'connecting' || !online}
        >
          <Icon name="refresh" size={12} /> {ended ? 'Reconnect' : 'New session'}
        </button>
      </div>
      {error && <ErrorBox error={error} title="Terminal" />}
      <div className="terminal-box" ref={boxRef} aria-label={`Terminal of ${sandbox.name}`} />
    </div>
  );
}
