/**
 * Which libvirt a host record reaches: the machine, the network namespace its sandbox bridge lives
 * in, and libvirt's own host UUID. The same machine registered twice (locally and over SSH, say)
 * has one identity; a second libvirtd in its own network namespace on the same machine has another.
 */
import type { HostIdentity } from '../../shared/contract/hosts.ts';
import { shq, type HostConnection } from './connection.ts';

export async function readIdentity(conn: HostConnection, libvirtUri: string): Promise<HostIdentity> {
  const r = await conn.exec(
    [
      `printf 'machine=%s\\n' "$(cat /etc/machine-id 2>/dev/null)"`,
      `printf 'netns=%s\\n' "$(readlink /proc/self/ns/net 2>/dev/null)"`,
      `printf 'uuid=%s\\n' "$(virsh -c ${shq(libvirtUri)} capabilities 2>/dev/null | sed -n 's:.*<uuid>\\(.*\\)</uuid>.*:\\1:p' | head -n 1)"`,
    ].join('; '),
    { timeoutMs: 20_000 },
  );
  const kv = Object.fromEntries(
    r.stdout
      .toString()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  ) as Record<string, string | undefined>;
  const v = (s: string | undefined) => (s && /^[\w:[\]-]{1,200}$/.test(s) ? s : null);
  return { machineId: v(kv.machine), netns: v(kv.netns), libvirtUuid: v(kv.uuid), libvirtUri };
}

/** One libvirt, reached twice: the same machine, network namespace, libvirt UUID and URI. */
export function sameLibvirt(a: HostIdentity | null | undefined, b: HostIdentity | null | undefined): boolean {
  if (!a || !b || !a.machineId || !a.libvirtUuid) return false;
  return (
    a.machineId === b.machineId &&
    a.libvirtUuid === b.libvirtUuid &&
    a.netns === b.netns &&
    a.libvirtUri === b.libvirtUri
  );
}
