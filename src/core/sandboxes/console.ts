/**
 * A sandbox's serial console, for when SSH inside the guest is broken, and the boot log a creation
 * shows while the guest boots.
 *
 * Output: libvirt writes everything the guest prints on its serial port to `<sandbox dir>/serial.log`
 * (the `<log>` of the derived domain, domain-xml.ts; a restored template's is rewritten to the same
 * place, templates.ts), whether or not anyone is connected, so the log is the one source: read from
 * an offset and followed (`tail -F` on the host, ended when our side closes its stdin).
 *
 * Input: `virsh console --force` on the host, under a pseudo-terminal (`script`, util-linux), because
 * virsh refuses a console without one. What it prints is the same as the log and is discarded.
 * `--force` takes the console over from another client. A person door only (the router checks).
 */
import { StringDecoder } from 'node:string_decoder';
import type { ConsoleItem } from '../../shared/contract/runs.ts';
import { FluidError } from '../../shared/errors.ts';
import { shq, type HostConnection, type HostProcess } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';
import { AsyncQueue } from '../util/queue.ts';

/** What the console stream sends first when attached from the start: the newest part of the log. */
export const CONSOLE_BACKLOG_BYTES = 256 * 1024;

export const serialLogPath = (sandboxDir: string) => `${sandboxDir}/serial.log`;

/** The log from `offset`, then live, until the signal aborts or the consumer returns. */
export function followConsole(
  conn: HostConnection,
  opts: { logPath: string; offset: number; running: boolean; signal?: AbortSignal },
): AsyncIterable<ConsoleItem> {
  const { logPath } = opts;
  let proc: HostProcess | null = null;
  const stop = () => {
    const p = proc;
    proc = null;
    if (!p) return;
    // The end of stdin ends `cat`, and the script's exit trap the follower; a kill only if it lingers.
    p.stdin.end();
    const t = setTimeout(() => p.kill(), 2000);
    t.unref();
    void p.exited.then(() => clearTimeout(t));
  };
  const q = new AsyncQueue<ConsoleItem>(stop);
  const onAbort = () => {
    stop();
    q.end();
  };
  if (opts.signal?.aborted) {
    q.end();
    return q;
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // First line (stderr-free): the log's size now; then the bytes from the start point, followed.
  // `cat` holds until our side closes stdin, then the follower goes with it (also over SSH).
  const script = `f=${shq(logPath)}
size=$(stat -c %s "$f" 2>/dev/null || echo 0)
off=${Math.max(0, Math.floor(opts.offset))}
[ "$off" -gt "$size" ] && off=0
floor=$((size - ${CONSOLE_BACKLOG_BYTES}))
[ "$off" -lt "$floor" ] && off=$floor
echo "$size $off"
tail -c +$((off + 1)) -F "$f" 2>/dev/null &
p=$!
trap 'kill $p 2>/dev/null' EXIT HUP TERM
cat >/dev/null`;
  const p = conn.spawn(script);
  proc = p;
  const dec = new StringDecoder('utf8');
  let header = '';
  let pos = -1;
  p.stdout.on('data', (c: Buffer) => {
    let chunk = c;
    if (pos < 0) {
      const nl = chunk.indexOf(0x0a);
      header += chunk.subarray(0, nl < 0 ? chunk.length : nl).toString('latin1');
      if (nl < 0) return;
      chunk = chunk.subarray(nl + 1);
      const [size, from] = header.trim().split(/\s+/).map(Number) as [number, number];
      pos = Number.isFinite(from) ? from : 0;
      q.push({ kind: 'console', logPath, logBytes: Number.isFinite(size) ? size : 0, running: opts.running });
      if (pos > opts.offset) q.push({ kind: 'dropped', bytes: pos - opts.offset });
    }
    if (!chunk.length) return;
    pos += chunk.length;
    const data = dec.write(chunk);
    if (data) q.push({ kind: 'data', data, offset: pos });
  });
  p.stderr.resume();
  void p.exited.then(() => {
    if (proc === p) {
      proc = null;
      q.end();
    }
  });
  return q;
}

/**
 * Keys for the serial console: one `virsh console` per sandbox, opened on the first key and closed
 * after a quiet spell, when the domain stops (virsh ends by itself), or on close().
 */
export class ConsoleInput {
  private readonly open = new Map<
    string,
    { proc: HostProcess; timer: NodeJS.Timeout; ready: Promise<void> }
  >();
  private readonly quietMs: number;

  constructor(quietMs = 10 * 60_000) {
    this.quietMs = quietMs;
  }

  /** Send keys; resolves true when this write opened the console (the caller audits that one). */
  async write(
    conn: HostConnection,
    key: string,
    uri: string,
    domain: string,
    data: string,
  ): Promise<boolean> {
    // Ctrl+] would detach virsh from the console; nothing else is filtered.
    const keys = data.split(String.fromCharCode(0x1d)).join('');
    if (!keys) return false;
    let entry = this.open.get(key);
    let opened = false;
    if (!entry) {
      const check = await conn.exec('command -v script', { timeoutMs: 15_000 });
      if (check.code !== 0)
        throw new FluidError(
          'UNAVAILABLE',
          'The host has no `script` (util-linux), which the serial console needs to give virsh a terminal. Install util-linux on the host.',
        );
      entry = this.open.get(key); // another write may have opened it meanwhile
    }
    if (!entry) {
      const cmd = virsh(uri, `console --force ${shq(domain)}`);
      const proc = conn.spawn(`exec script -qfec ${shq(cmd)} /dev/null`);
      // Keys written before virsh has attached (it says "Escape character is ...") would be lost:
      // the first ones wait for that line (or the console's exit, or a few seconds at most).
      const ready = new Promise<void>((resolve) => {
        let seen = '';
        const done = () => {
          clearTimeout(t);
          proc.stdout.off('data', onData);
          proc.stdout.resume();
          resolve();
        };
        const onData = (d: Buffer) => {
          seen = (seen + d.toString('latin1')).slice(-4096);
          if (/Escape character|Connected to domain/i.test(seen)) done();
        };
        const t = setTimeout(done, 5000);
        t.unref();
        proc.stdout.on('data', onData);
        void proc.exited.then(done);
      });
      proc.stderr.resume();
      const made = { proc, ready, timer: setTimeout(() => this.close(key), this.quietMs) };
      made.timer.unref();
      void proc.exited.then(() => {
        if (this.open.get(key) === made) {
          clearTimeout(made.timer);
          this.open.delete(key);
        }
      });
      this.open.set(key, made);
      entry = made;
      opened = true;
    } else {
      clearTimeout(entry.timer);
      entry.timer = setTimeout(() => this.close(key), this.quietMs);
      entry.timer.unref();
    }
    await entry.ready;
    entry.proc.stdin.write(keys);
    return opened;
  }

  close(key: string): void {
    const e = this.open.get(key);
    if (!e) return;
    this.open.delete(key);
    clearTimeout(e.timer);
    e.proc.stdin.end();
    e.proc.kill();
  }

  closeAll(): void {
    for (const k of [...this.open.keys()]) this.close(k);
  }
}

/**
 * While a guest boots: the serial log's newest line, at most every `everyMs`, for the creation's
 * progress. Polls the log's size and reads what is new (one host round trip each time); stops with
 * the signal. `lines()` keeps the last lines for an error that says why a boot failed.
 */
export class BootLog {
  private readonly conn: HostConnection;
  private readonly path: string;
  private offset = 0;
  private partial = '';
  private readonly last: string[] = [];
  private readonly keep: number;

  constructor(conn: HostConnection, path: string, keep = 12) {
    this.conn = conn;
    this.path = path;
    this.keep = keep;
  }

  /** Read what the guest printed since the last poll; returns the newest complete line, if any. */
  async poll(signal?: AbortSignal): Promise<string | null> {
    const r = await this.conn.exec(
      `f=${shq(this.path)}; s=$(stat -c %s "$f" 2>/dev/null || echo 0); echo "$s"; if [ "$s" -gt ${this.offset} ]; then tail -c +${this.offset + 1} "$f" | head -c 65536; fi`,
      { signal, timeoutMs: 15_000 },
    );
    const out = r.stdout;
    const nl = out.indexOf(0x0a);
    if (nl < 0) return null;
    const size = Number(out.subarray(0, nl).toString());
    const body = out.subarray(nl + 1);
    if (size < this.offset) {
      // The log started over (a new boot with append off): read it from its start next time.
      this.offset = 0;
      this.partial = '';
      return null;
    }
    this.offset += body.length;
    const text = this.partial + body.toString('utf8');
    const parts = text.split(/\r?\n|\r/);
    this.partial = (parts.pop() ?? '').slice(-2000);
    let newest: string | null = null;
    for (const raw of parts) {
      const line = cleanLine(raw);
      if (!line) continue;
      this.last.push(line);
      newest = line;
    }
    this.last.splice(0, Math.max(0, this.last.length - this.keep));
    return newest;
  }

  lines(): string[] {
    const tail = cleanLine(this.partial);
    return tail ? [...this.last, tail].slice(-this.keep) : [...this.last];
  }

  /**
   * Poll until the signal aborts, reporting the newest line at most every `everyMs`. Never throws:
   * a log that cannot be read only means no lines.
   */
  async follow(report: (line: string) => void, signal: AbortSignal, everyMs = 2000): Promise<void> {
    while (!signal.aborted) {
      const line = await this.poll(signal).catch(() => null);
      if (line && !signal.aborted) report(line);
      await new Promise<void>((res) => {
        const t = setTimeout(res, everyMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            res();
          },
          { once: true },
        );
      });
    }
  }
}

/** One printable line of a serial log: escape sequences and control characters out, cut to size. */
export function cleanLine(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b[0-~]|[\x00-\x08\x0b-\x1f\x7f]/g, '')
      .trim()
      .slice(0, 200)
  );
}
