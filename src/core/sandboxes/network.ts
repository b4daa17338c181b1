/**
 * Fluid's isolated sandbox network on each host: no forwarding (no route out), no DNS, ports isolated
 * from each other, DHCP only for reserved addresses. Each sandbox claims a numbered slot — an atomic
 * mkdir on the host, so several Fluid installations sharing a host never collide — and the slot
 * fixes its MAC and IP, so the address is known at creation instead of discovered by polling leases.
 */
import { FluidError } from '../../shared/errors.ts';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';
import { SPOOF_FILTER } from './domain-xml.ts';

export const NETWORK_NAME = 'fluid-sandboxes';
export const BRIDGE = 'fluidbr0';
export const GATEWAY = '10.239.0.1';
export const PREFIX = 16;
export const SUBNET = '10.239.0.0/16';
export const SLOT_COUNT = 1000;
export const PROXY_PORT = 3128;

export function slotIp(slot: number): string {
  if (!Number.isInteger(slot) || slot < 1 || slot > SLOT_COUNT) throw new Error(`slot out of range: ${slot}`);
  const i = slot - 1;
  return `10.239.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`;
}

export function slotMac(slot: number): string {
  if (!Number.isInteger(slot) || slot < 1 || slot > 0xffff) throw new Error(`slot out of range: ${slot}`);
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `52:54:00:ef:${h(slot >> 8)}:${h(slot & 0xff)}`;
}

export function slotFromIp(ip: string): number | null {
  const m = /^10\.239\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return null;
  const slot = (Number(m[1]) - 1) * 250 + (Number(m[2]) - 2) + 1;
  return slot >= 1 && slot <= SLOT_COUNT && slotIp(slot) === ip ? slot : null;
}

export function networkXml(): string {
  const hosts: string[] = [];
  for (let s = 1; s <= SLOT_COUNT; s++) hosts.push(`      <host mac='${slotMac(s)}' ip='${slotIp(s)}'/>`);
  return `<network>
  <name>${NETWORK_NAME}</name>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <port isolated='yes'/>
  <dns enable='no'/>
  <ip address='${GATEWAY}' prefix='${PREFIX}'>
    <dhcp>
${hosts.join('\n')}
    </dhcp>
  </ip>
</network>
`;
}

export interface SandboxNetwork {
  /** The network had to be created. */
  created: boolean;
  /** The host has the clean-traffic filter, so sandbox NICs get it. */
  pinAddresses: boolean;
}

/** Make sure the network exists and is active, and find out whether addresses can be pinned. */
export async function ensureNetwork(
  conn: HostConnection,
  uri: string,
  signal?: AbortSignal,
): Promise<SandboxNetwork> {
  const V = (a: string) => virsh(uri, a);
  const state = await conn.exec(
    `${V(`net-info ${NETWORK_NAME}`)} 2>&1; echo @@xml; ${V(`net-dumpxml --inactive ${NETWORK_NAME}`)} 2>/dev/null; echo @@nwfilter; ${V('nwfilter-list')} 2>/dev/null`,
    { signal },
  );
  const [head = '', filters = ''] = state.stdout.toString().split('@@nwfilter');
  const [info = '', xml = ''] = head.split('@@xml');
  const pinAddresses = new RegExp(`\\s${SPOOF_FILTER}\\s*$`, 'm').test(filters);
  const exists = /^Name:\s+fluid-sandboxes/m.test(info);
  if (exists) {
    // Never redefine a network other sandboxes may be using; refuse one that is not isolated.
    if (
      /<forward\b/.test(xml) ||
      !/<dns enable=.no.\s*\/>/.test(xml) ||
      !xml.includes(`<bridge name='${BRIDGE}'`)
    ) {
      throw new FluidError(
        'CONFLICT',
        `The host has a network named ${NETWORK_NAME} that is not Fluid's isolated sandbox network (it forwards traffic or has DNS). Remove or rename it (virsh net-destroy/net-undefine ${NETWORK_NAME}).`,
      );
    }
    if (!/^Active:\s+yes/m.test(info)) {
      await run(
        conn,
        `${V(`net-start ${NETWORK_NAME}`)} >/dev/null && ${V(`net-autostart ${NETWORK_NAME}`)} >/dev/null`,
        { what: 'Starting the sandbox network', signal },
      );
    }
    return { created: false, pinAddresses };
  }
  // The subnet must not clash with the host's routes.
  const routes = await run(conn, 'ip -4 route show 2>/dev/null || true', { signal });
  const clash = routes
    .split('\n')
    .filter((l) => l.startsWith('10.239.') && !l.includes(BRIDGE))
    .join('; ');
  if (clash) {
    throw new FluidError(
      'CONFLICT',
      `The host already routes ${clash}, which overlaps Fluid's sandbox network ${SUBNET}. Free that range on the host for Fluid.`,
    );
  }
  const file = `/tmp/fluid-net-${process.pid}-${Date.now()}.xml`;
  await run(
    conn,
    `set -e; cat > ${shq(file)}
${V(`net-define ${shq(file)}`)} >/dev/null; rm -f ${shq(file)}
${V(`net-autostart ${NETWORK_NAME}`)} >/dev/null
${V(`net-start ${NETWORK_NAME}`)} >/dev/null`,
    { stdin: networkXml(), what: 'Creating the isolated sandbox network', signal, timeoutMs: 60_000 },
  );
  return { created: true, pinAddresses };
}

export const slotsDir = (storageDir: string) => `${storageDir.replace(/\/+$/, '')}/slots`;

/** Claim a free slot on the host for this sandbox. */
export async function claimSlot(
  conn: HostConnection,
  storageDir: string,
  owner: { installation: string; sandboxId: string },
  signal?: AbortSignal,
): Promise<number> {
  const dir = slotsDir(storageDir);
  const start = 1 + Math.floor(Math.random() * SLOT_COUNT);
  const script = `d=${shq(dir)}; mkdir -p "$d" || exit 2
n=${start}; i=0
while [ $i -lt ${SLOT_COUNT} ]; do
  if mkdir "$d/$n" 2>/dev/null; then printf '%s %s\\n' ${shq(owner.installation)} ${shq(owner.sandboxId)} > "$d/$n/owner"; echo "$n"; exit 0; fi
  n=$((n % ${SLOT_COUNT} + 1)); i=$((i + 1))
done
exit 3`;
  const r = await conn.exec(script, { signal });
  if (r.code === 3)
    throw new FluidError(
      'CONFLICT',
      `All ${SLOT_COUNT} sandbox network slots on this host are taken. Destroy sandboxes you no longer need.`,
    );
  if (r.code !== 0)
    throw new FluidError(
      'INTERNAL',
      `Could not reserve a sandbox address on the host: ${r.stderr.toString().trim()}`,
    );
  return Number(r.stdout.toString().trim());
}

/** Release a slot, but only if it is still ours. */
export async function releaseSlot(
  conn: HostConnection,
  storageDir: string,
  slot: number,
  owner: { installation: string; sandboxId: string },
): Promise<boolean> {
  const d = `${slotsDir(storageDir)}/${slot}`;
  const r = await conn.exec(
    `[ -d ${shq(d)} ] || exit 0; [ "$(cat ${shq(d + '/owner')} 2>/dev/null)" = ${shq(`${owner.installation} ${owner.sandboxId}`)} ] || exit 4; rm -rf ${shq(d)}`,
  );
  return r.code === 0;
}

/** Every slot this installation holds on the host: slot → sandbox id. */
export async function listSlots(
  conn: HostConnection,
  storageDir: string,
  installation: string,
): Promise<Map<number, string>> {
  const out = await run(
    conn,
    `for f in ${shq(slotsDir(storageDir))}/*/owner; do [ -f "$f" ] && echo "$(basename "$(dirname "$f")") $(cat "$f")"; done; true`,
  );
  const map = new Map<number, string>();
  for (const line of out.split('\n')) {
    const [slot, inst, sbx] = line.trim().split(/\s+/);
    if (slot && inst === installation && sbx) map.set(Number(slot), sbx);
  }
  return map;
}
