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
  case "$state" in "shut off"|crashed) echo "$state"; exit 5;; esac
  sleep 0.2
done
exit 4`;
  const r = await conn.exec(script, { signal, timeoutMs: timeoutMs + 15_000 });
  if (r.code === 5)
    throw new FluidError(
      'INTERNAL',
      `The VM stopped while booting (${r.stdout.toString().trim()}). See its serial log for the reason.`,
    );
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
  opts: { stdin?: string; timeoutMs?: number; signal?: AbortSignal } = {},
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
  [ "$(date +%s)" -ge "$end" ] && exit 4
  sleep 0.05
done`;
  const r = await conn.exec(script, {
    stdin: req,
    signal: opts.signal,
    timeoutMs: (timeoutS + 30) * 1000,
    maxOutputBytes: 64 * 1024 * 1024,
  });
  if (r.code === 4)
    throw new FluidError('TIMEOUT', `A command in the guest (${path}) did not finish within ${timeoutS} s.`);
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
