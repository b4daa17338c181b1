/**
 * The sandbox's serial console, for when SSH inside the guest is broken: the guest's serial log
 * (boot messages, a login prompt on ttyS0) live from the backend (sandboxes.console), and keys typed
 * here go to the console (sandboxes.consoleInput: virsh console on the host). After a reconnection it
 * continues from the last byte shown.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'react';
import type { ConsoleItem } from '../../../../../shared/contract/runs.ts';
import type { Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import { ErrorBox } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatBytes } from '../../../lib/format.ts';
import { rpc, useConnection, useOnline } from '../../../stores/connection.ts';
import { MONO, THEME } from './TerminalTab.tsx';
import './runs.css';

type Status = 'connecting' | 'open' | 'ended' | 'failed';

export function ConsoleTab({ sandbox, visible }: { sandbox: Sandbox; visible: boolean }) {
  const boxRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const offsetRef = useRef(0);
  const [status, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [log, setLog] = useState<{ path: string; bytes: number } | null>(null);
  const online = useOnline();
  const generation = useConnection((s) => s.generation);
  const keysAllowed = ['running', 'creating', 'starting'].includes(sandbox.state);

  useEffect(() => {
    const box = boxRef.current!;
    // Serial output ends lines with \n alone more often than not.
    const term = new Terminal({
      fontFamily: MONO,
      fontSize: 13,
      lineHeight: 1.15,
      scrollback: 10_000,
      convertEol: true,
      theme: THEME,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    termRef.current = term;
    fitRef.current = fit;
    // Keys in order, batched while a call is in flight.
    let pending = '';
    let busy = false;
    const flush = async () => {
      busy = true;
      while (pending) {
        const data = pending.slice(0, 4096);
        pending = pending.slice(data.length);
        try {
          await rpc().call('sandboxes.consoleInput', { sandbox: sandbox.id, data });
        } catch (err) {
          pending = '';
          setError(toErrorInfo(err));
        }
      }
      busy = false;
    };
    const onData = term.onData((d) => {
      pending += d;
      if (!busy) void flush();
    });
    const ro = new ResizeObserver(() => {
      if (box.offsetWidth > 0 && box.offsetHeight > 0) fit.fit();
    });
    ro.observe(box);
    fit.fit();
    return () => {
      ro.disconnect();
      onData.dispose();
      term.dispose();
      termRef.current = null;
      fitRef.current = null;
    };
  }, [sandbox.id]);

  useEffect(() => {
    if (!online) return;
    const term = termRef.current!;
    const ac = new AbortController();
    void (async () => {
      setError(null);
      setStatus('connecting');
      try {
        const stream = rpc().stream(
          'sandboxes.console',
          { sandbox: sandbox.id, offset: offsetRef.current },
          { signal: ac.signal },
        );
        for await (const item of stream as AsyncIterable<ConsoleItem>) {
          if (ac.signal.aborted) return;
          if (item.kind === 'console') {
            setLog({ path: item.logPath, bytes: item.logBytes });
            setStatus('open');
          } else if (item.kind === 'dropped') {
            term.write(`\x1b[2m[${formatBytes(item.bytes)} of earlier console output not shown]\x1b[0m\r\n`);
          } else {
            offsetRef.current = item.offset;
            term.write(item.data);
          }
        }
        if (!ac.signal.aborted) setStatus('ended');
      } catch (err) {
        if (ac.signal.aborted || useConnection.getState().state !== 'connected') return;
        setError(toErrorInfo(err));
        setStatus('failed');
      }
    })();
    return () => ac.abort();
  }, [sandbox.id, online, generation]);

  useEffect(() => {
    if (!visible) return;
    const t = setTimeout(() => {
      fitRef.current?.fit();
      termRef.current?.focus();
    }, 0);
    return () => clearTimeout(t);
  }, [visible]);

  return (
    <div className="console-tab" data-status={status}>
      <div className="terminal-bar">
        <span
          className={`dot dot-${status === 'open' ? 'ok' : status === 'connecting' ? 'warn' : 'fail'}`}
          aria-hidden="true"
        />
        <span role="status" className="terminal-status">
          {status === 'connecting' && 'Connecting to the serial console…'}
          {status === 'open' && `Serial console of ${sandbox.name}`}
          {status === 'ended' && 'The console stream ended'}
          {status === 'failed' && 'The console could not be read'}
        </span>
        {log && (
          <span className="muted mono small" title={log.path}>
            serial.log {formatBytes(log.bytes)}
          </span>
        )}
        <span className="toolbar-spacer" />
        <span className="muted small">
          {keysAllowed
            ? 'Type to send keys to the console (Enter shows a login prompt); a person only'
            : `Read only: the sandbox is ${sandbox.state}`}
        </span>
      </div>
      {error && <ErrorBox error={error} title="Serial console" />}
      <div className="terminal-box" ref={boxRef} aria-label={`Serial console of ${sandbox.name}`} />
    </div>
  );
}
