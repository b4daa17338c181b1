/**
 * Holding back the backend's answers to one RPC method on the page's WebSocket, to see what the page
 * shows while an answer is on its way. Frames pass through unchanged otherwise; the route applies to
 * connections opened after it is installed (reload the page after calling this).
 */
import type { Page } from 'playwright-core';

export interface HeldAnswers {
  /** From now on, answers to the method's calls wait until release(). */
  hold(): void;
  /** How many answers are waiting. */
  readonly waiting: number;
  /** Send the waiting answers on, and let later ones through. */
  release(): void;
}

export async function holdRpcAnswers(page: Page, method: string): Promise<HeldAnswers> {
  let holding = false;
  const waiting: Array<() => void> = [];
  const frame = (m: string | Buffer): { t?: string; id?: number; m?: string } | null => {
    if (typeof m !== 'string') return null;
    try {
      return JSON.parse(m) as { t?: string; id?: number; m?: string };
    } catch {
      return null;
    }
  };
  await page.routeWebSocket(/\/rpc$/, (ws) => {
    const server = ws.connectToServer();
    const calls = new Set<number>();
    ws.onMessage((m) => {
      const f = frame(m);
      if (holding && f?.t === 'call' && f.m === method && typeof f.id === 'number') calls.add(f.id);
      server.send(m);
    });
    server.onMessage((m) => {
      const f = frame(m);
      if ((f?.t === 'res' || f?.t === 'err') && typeof f.id === 'number' && calls.delete(f.id)) {
        waiting.push(() => ws.send(m));
        return;
      }
      ws.send(m);
    });
  });
  return {
    hold: () => void (holding = true),
    get waiting() {
      return waiting.length;
    },
    release: () => {
      holding = false;
      for (const send of waiting.splice(0)) send();
    },
  };
}
