import type { MessagePortMain } from 'electron';
import type { Port } from '../shared/rpc.ts';

/** Electron's MessagePortMain speaks EventEmitter; adapt it to the contract's Port. */
export function portFromMessagePortMain(mp: MessagePortMain): Port {
  const closeHandlers: Array<() => void> = [];
  let closed = false;
  mp.on('close', () => {
    if (closed) return;
    closed = true;
    for (const h of closeHandlers) h();
  });
  return {
    send: (m) => {
      if (!closed) mp.postMessage(m);
    },
    onMessage: (h) => {
      mp.on('message', (e) => h(e.data));
      mp.start();
    },
    onClose: (h) => void closeHandlers.push(h),
    close: () => mp.close(),
  };
}
