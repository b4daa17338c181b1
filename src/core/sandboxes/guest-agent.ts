/**
 * Talking to a guest through qemu-guest-agent (virtio-serial, not the network): readiness, clock
 * sync, and running the identity step as root before the guest's sshd is trusted. One host round
 * trip per operation: the polling loop runs on the host.
 */
import { FluidError } from '../../shared/errors.ts';
import { shq, type HostConnection } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';

export interface GuestExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Wait until the guest agent answers a ping (the guest has booted far enough to run it). */
export async function waitForAgent(
  conn: HostConnection,
  uri: string,
  domain: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<number> {
  const started = Date.now();
  const V = virsh(uri, `qemu-agent-command ${shq(domain)} '{"execute":"guest-ping"}' --timeout 2`);
  const script = `end=$(( $(date +%s) + ${Math.ceil(timeoutMs / 1000)} ))
while [ "$(date +%s)" -lt "$end" ]; do
  ${V} >/dev/null 2>&1 && exit 0
  state=$(${virsh(uri, `domstate ${shq(domain)}`)} 2>/dev/null)
  case "$state" in "shut off"|crashed)
    ${virsh(uri, `domstate --reason ${shq(domain)}`)} 2>/dev/null || echo "$state"
    tail -n 6 /var/log/libvirt/qemu/${shq(domain + '.log')} 2>/dev/null
    exit 5;; esac
  sleep 0.2
done
exit 4`;
  const r = await conn.exec(script, { signal, timeoutMs: timeoutMs + 15_000 });
  if (r.code === 5) {
    // The state with its reason, then the end of QEMU's own log where the host keeps one (a QEMU that
    // died says so there; a guest that powered off does not).
    const [state, ...qemuLog] = r.stdout.toString().trim().split('\n');
    throw new FluidError(
      'INTERNAL',
      `The VM stopped while booting (${state?.trim()}). See its serial log for the reason.${qemuLog.length ? `\nQEMU's log on the host ends:\n${qemuLog.map((l) => `  ${l}`).join('\n')}` : ''}`,
      { stopped: state?.trim() ?? '' },
    );
  }
  if (r.code !== 0) {
    throw new FluidError(
      'TIMEOUT',
      `The guest did not answer through qemu-guest-agent within ${Math.round(timeoutMs / 1000)} s. Check that the source VM has qemu-guest-agent installed and enabled.`,
    );
  }
  return Date.now() - started;
}

/** Run a program in the guest as root (through guest-exec), feeding it stdin; waits for it to exit. */
export async function guestExec(
  conn: HostConnection,
  uri: string,
  domain: string,
  path: string,
  args: string[],
  opts: {
    stdin?: string;
    timeoutMs?: number;
    signal?: AbortSignal;
    /** What the command is, for errors ("The identity step"). */
    what?: string;
    /**
     * On a timeout, Fluid's own steps in its own guests (never a source VM: process lists can carry
     * secrets) say where they stopped: the guest's processes, then the command and everything it
     * started is killed, and what it printed until then is read.
     */
    diagnose?: boolean;
  } = {},
): Promise<GuestExecResult> {
  const req = JSON.stringify({
    execute: 'guest-exec',
    arguments: {
      path,
      arg: args,
      'capture-output': true,
      ...(opts.stdin !== undefined ? { 'input-data': Buffer.from(opts.stdin).toString('base64') } : {}),
    },
  });
  const timeoutS = Math.ceil((opts.timeoutMs ?? 120_000) / 1000);
  const A = (json: string) => virsh(uri, `qemu-agent-command ${shq(domain)} ${json} --timeout 10`);
  // The request travels on stdin (it can be large); the loop polls guest-exec-status on the host.
  const script = `req=$(cat)
r=$(${A('"$req"')}) || { echo "guest-exec failed: $r" >&2; exit 3; }
pid=$(printf '%s' "$r" | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p')
[ -n "$pid" ] || { echo "no pid in: $r" >&2; exit 3; }
end=$(( $(date +%s) + ${timeoutS} ))
while :; do
  s=$(${A('"{\\"execute\\":\\"guest-exec-status\\",\\"arguments\\":{\\"pid\\":$pid}}"')}) || { echo "status failed: $s" >&2; exit 3; }
  case "$s" in *'"exited": true'*|*'"exited":true'*) printf '%s' "$s"; exit 0;; esac
  [ "$(date +%s)" -ge "$end" ] && { echo "pid=$pid"; exit 4; }
  sleep 0.05
done`;
  const r = await conn.exec(script, {
    stdin: req,
    signal: opts.signal,
    timeoutMs: (timeoutS + 30) * 1000,
    maxOutputBytes: 64 * 1024 * 1024,
  });
  if (r.code === 4) {
    const pid = Number(/pid=(\d+)/.exec(r.stdout.toString())?.[1]);
    const detail =
      opts.diagnose && pid > 1
        ? await stopTimedOut(conn, uri, domain, pid).catch((e: unknown) => `\n(${String(e)})`)
        : '';
    throw new FluidError(
      'TIMEOUT',
      `${opts.what ?? `A command in the guest (${path})`} did not finish within ${timeoutS} s.${detail}`,
    );
  }
  if (r.code !== 0)
    throw new FluidError('INTERNAL', `The guest agent failed: ${r.stderr.toString().trim().slice(0, 1000)}`);
  const status = JSON.parse(r.stdout.toString()) as {
    return: { exitcode?: number; 'out-data'?: string; 'err-data'?: string };
  };
  const ret = status.return;
  return {
    exitCode: ret.exitcode ?? -1,
    stdout: Buffer.from(ret['out-data'] ?? '', 'base64').toString(),
    stderr: Buffer.from(ret['err-data'] ?? '', 'base64').toString(),
  };
}

/**
 * After a timeout: the guest's processes (which one the command waits on; by name only, arguments
 * can carry secrets), then the command and its descendants are killed so nothing of it keeps
 * running, and what it printed until then is read back (guest-exec hands the output over once the
 * process has exited).
 */
async function stopTimedOut(conn: HostConnection, uri: string, domain: string, pid: number): Promise<string> {
  const ps = await guestExec(
    conn,
    uri,
    domain,
    '/bin/sh',
    [
      '-c',
      `if command -v ps >/dev/null; then ps -N --ppid 2 -p 2 -o pid,ppid,stat,wchan:24,etime,comm | tail -n 60; else echo '(no ps in the guest)'; fi
k() { for c in $(pgrep -P "$1" 2>/dev/null); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }
k ${pid}`,
    ],
    { timeoutMs: 30_000 },
  );
  const A = (json: string) => virsh(uri, `qemu-agent-command ${shq(domain)} ${json} --timeout 10`);
  const status = await conn.exec(
    `i=0; while [ $i -lt 50 ]; do
  s=$(${A(`'{"execute":"guest-exec-status","arguments":{"pid":${pid}}}'`)}) || exit 3
  case "$s" in *'"exited": true'*|*'"exited":true'*) printf '%s' "$s"; exit 0;; esac
  i=$((i+1)); sleep 0.1
done; exit 4`,
    { timeoutMs: 30_000 },
  );
  const ret =
    status.code === 0
      ? (JSON.parse(status.stdout.toString()) as { return: { 'out-data'?: string; 'err-data'?: string } })
          .return
      : {};
  const tail = (b64: string | undefined) =>
    Buffer.from(b64 ?? '', 'base64')
      .toString()
      .trim()
      .slice(-1500);
  const printed = [tail(ret['out-data']), tail(ret['err-data'])].filter(Boolean).join('\n');
  return `\nIt was stopped${status.code === 0 ? '' : ' (it did not exit after being killed)'}. It printed: ${printed || '(nothing)'}\nThe guest's processes at the time:\n${ps.stdout.trimEnd()}`;
}

/** Set the guest clock from the host's (a restored memory image wakes up with the time it was saved at). */
export async function syncClock(
  conn: HostConnection,
  uri: string,
  domain: string,
  signal?: AbortSignal,
): Promise<void> {
  const r = await conn.exec(virsh(uri, `domtime ${shq(domain)} --now`), { signal, timeoutMs: 30_000 });
  if (r.code !== 0)
    throw new FluidError('INTERNAL', `Could not set the guest clock: ${r.stderr.toString().trim()}`);
}
