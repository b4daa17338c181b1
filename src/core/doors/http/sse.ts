/**
 * Server-Sent Events: a stream's items (`event: item`), its end (`event: end`) or its error
 * (`event: error`, the contract's {code, message, data}), and contract events under their own names.
 * A comment line every 15 s keeps proxies and idle timers from closing a quiet stream.
 */
import type { ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from './errors.ts';

const KEEPALIVE_MS = 15_000;

export class SseWriter {
  private readonly res: ServerResponse;
  private readonly timer: NodeJS.Timeout;
  private id = 0;

  constructor(res: ServerResponse) {
    this.res = res;
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.writeHead(200, { ...SECURITY_HEADERS, Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    this.timer = setInterval(() => this.res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    this.timer.unref();
    res.on('close', () => clearInterval(this.timer));
  }

  send(event: string, data: unknown): void {
    if (this.res.writableEnded) return;
    this.res.write(`event: ${event}\nid: ${++this.id}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    clearInterval(this.timer);
    if (!this.res.writableEnded) this.res.end();
  }
}
