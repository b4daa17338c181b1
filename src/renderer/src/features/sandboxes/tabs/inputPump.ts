/**
 * Keys on their way to a terminal: sent in order, one call in flight at a time, whatever arrives
 * meanwhile goes next. Keys typed while a shell the person asked for is being opened wait for it
 * (hold, then attach); keys typed at a shell that ended go nowhere, and are never sent to the next one.
 */
export type SendKeys = (terminal: string, data: string) => Promise<unknown>;

export class InputPump {
  private pending = '';
  private busy = false;
  private terminal: string | null = null;
  private holding: boolean;
  /** Hears of keys that could not be sent (they and those typed meanwhile are dropped). */
  onLost: (err: unknown) => void = () => {};

  private readonly send: SendKeys;

  /** A new pump holds: the first shell is being opened. */
  constructor(send: SendKeys, { holding = true }: { holding?: boolean } = {}) {
    this.send = send;
    this.holding = holding;
  }

  /** The terminal keys go to, if one is attached. */
  get sessionId(): string | null {
    return this.terminal;
  }

  push(data: string): void {
    if (!this.terminal && !this.holding) return;
    this.pending += data;
    if (this.terminal && !this.busy) void this.flush();
  }

  /** A shell is being opened for the person: keep what they type until it is attached. */
  hold(): void {
    this.holding = true;
    this.pending = '';
  }

  /** Keys go to this terminal now, starting with those that waited. */
  attach(terminal: string): void {
    this.terminal = terminal;
    this.holding = false;
    if (this.pending && !this.busy) void this.flush();
  }

  /** Not attached for now (leaving the tab, a reconnection): a hold stays, other keys go nowhere. */
  detach(): void {
    this.terminal = null;
    if (!this.holding) this.pending = '';
  }

  /** The shell ended or could not be opened: nothing waits, nothing is sent. */
  drop(): void {
    this.terminal = null;
    this.holding = false;
    this.pending = '';
  }

  private async flush(): Promise<void> {
    this.busy = true;
    while (this.pending && this.terminal) {
      const terminal = this.terminal;
      const data = this.pending.slice(0, 512 * 1024);
      this.pending = this.pending.slice(data.length);
      try {
        await this.send(terminal, data);
      } catch (err) {
        this.pending = '';
        this.onLost(err);
      }
    }
    this.busy = false;
  }
}
