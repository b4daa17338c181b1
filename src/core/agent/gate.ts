/**
 * Fair turns for many sessions in one process. A session's steps between two waits for the network
 * (persist a reply, run the gate of its tool calls, build the next request) are short but
 * synchronous; when a hundred replies arrive together, running all of their steps in one pass of the
 * event loop stalls everything else in the process (timers, other doors' requests, the app's window)
 * for the sum of them. A step waits here first: at most `perPass` waiters go on per pass of the event
 * loop, the rest in the passes after, so a stall is bounded by a few steps whatever the number of
 * sessions. Without contention a wait is one pass (setImmediate).
 */
export class StepGate {
  private readonly perPass: number;
  private readonly queue: Array<() => void> = [];
  private scheduled = false;

  constructor(perPass = 4) {
    if (!Number.isInteger(perPass) || perPass < 1) throw new Error('perPass must be a positive integer');
    this.perPass = perPass;
  }

  /** Resolves when it is this caller's turn to run a step. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.schedule();
    });
  }

  /** Steps waiting for a later pass. */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.release());
  }

  private release(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.perPass);
    if (this.queue.length) this.schedule();
    for (const resolve of batch) resolve();
  }
}
