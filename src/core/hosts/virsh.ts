/**
 * virsh over a HostConnection: command builders and pure parsers. Several commands go to the host in
 * one round trip as a sectioned script, so a remote preflight or VM listing costs one exec.
 */
import { XMLParser } from 'fast-xml-parser';
import type { Vm } from '../../shared/contract/hosts.ts';
import { shq, type HostConnection } from './connection.ts';

export const FLUID_XMLNS = 'https://fluid.dev/xmlns/libvirt/1';

export interface Section {
  out: string;
  code: number;
}

const MARK = '@@fluid-section@@';

/**
 * Run named shell snippets in one exec. Each snippet's output (stdout+stderr) and exit code are
 * returned separately; a failing snippet does not stop the others.
 */
export async function runSections(
  conn: HostConnection,
  sections: Record<string, string>,
  opts: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Record<string, Section>> {
  const script = Object.entries(sections)
    .map(([name, cmd]) => `echo '${MARK} ${name}'; ( ${cmd} ) 2>&1; echo "${MARK} rc=$?"`)
    .join('\n');
  const r = await conn.exec(`LC_ALL=C; export LC_ALL; ${script}`, {
    ...opts,
    maxOutputBytes: 32 * 1024 * 1024,
  });
  return parseSections(r.stdout.toString());
}

export function parseSections(text: string): Record<string, Section> {
  const out: Record<string, Section> = {};
  let current: string | null = null;
  let buf: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(MARK + ' ')) {
      const rest = line.slice(MARK.length + 1);
      const rc = /^rc=(\d+)$/.exec(rest);
      if (rc && current) {
        out[current] = { out: buf.join('\n'), code: Number(rc[1]) };
        current = null;
        buf = [];
      } else if (!rc) {
        current = rest;
        buf = [];
      }
    } else if (current) buf.push(line);
  }
  return out;
}

export const virsh = (uri: string, args: string): string => `virsh -q -c ${shq(uri)} ${args}`;

/** `virsh version --daemon` */
export function parseVersion(text: string): {
  libvirt: string | null;
  hypervisor: string | null;
  daemon: string | null;
} {
  const get = (re: RegExp) => re.exec(text)?.[1] ?? null;
  return {
    libvirt: get(/Using library: libvirt ([\d.]+)/),
    hypervisor: get(/Running hypervisor: (.+)/)?.trim() ?? null,
    daemon: get(/Running against daemon: ([\d.]+)/),
  };
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** `virsh nodeinfo` */
export function parseNodeInfo(text: string): {
  cpus: number | null;
  cpuModel: string | null;
  memoryMiB: number | null;
} {
  const kv = keyValues(text);
  const mem = /(\d+)\s*KiB/.exec(kv['Memory size'] ?? '');
  return {
    cpus: kv['CPU(s)'] ? Number(kv['CPU(s)']) : null,
    cpuModel: kv['CPU model'] ?? null,
    memoryMiB: mem ? Math.floor(Number(mem[1]) / 1024) : null,
  };
}

/** /proc/meminfo → total MiB. */
export function parseMemTotal(text: string): number | null {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(text);
  return m ? Math.floor(Number(m[1]) / 1024) : null;
}

/** /proc/meminfo → available MiB (falls back to free + buffers + cached). */
export function parseMemAvailable(text: string): number | null {
  const kb = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const avail = kb('MemAvailable');
  if (avail !== null) return Math.floor(avail / 1024);
  const free = kb('MemFree');
  if (free === null) return null;
  return Math.floor((free + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0)) / 1024);
}

/** `df -PB1 dir` */
export function parseDf(text: string): { totalBytes: number; freeBytes: number } | null {
  const lines = text.trim().split('\n');
  const last = lines.at(-1)?.trim().split(/\s+/);
  if (!last || last.length < 4 || !/^\d+$/.test(last[1]!)) return null;
  return { totalBytes: Number(last[1]), freeBytes: Number(last[3]) };
}

/** `virsh net-list --all` (quiet) → rows. */
export function parseNetList(text: string): Array<{ name: string; active: boolean; autostart: boolean }> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/))
    .filter((c) => c.length >= 3)
    .map(([name, state, autostart]) => ({
      name: name!,
      active: state === 'active',
      autostart: autostart === 'yes',
    }));
}

/** Lines of "Key: value". */
export function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) =>
    ['disk', 'interface', 'channel', 'controller', 'serial', 'console', 'graphics', 'hostdev'].includes(name),
});

type Node = Record<string, unknown>;
const attr = (n: unknown, a: string): string | null => {
  if (!n || typeof n !== 'object') return null;
  const v = (n as Node)[`@${a}`];
  return typeof v === 'string' ? v : null;
};
const text = (n: unknown): string | null => {
  if (typeof n === 'string') return n;
  if (n && typeof n === 'object' && typeof (n as Node)['#text'] === 'string')
    return (n as Node)['#text'] as string;
  return null;
};

export function toMiB(value: string | null, unit: string | null): number {
  const v = Number(value ?? 0);
  switch ((unit ?? 'KiB').toLowerCase()) {
    case 'b':
    case 'bytes':
      return Math.floor(v / 1048576);
    case 'k':
    case 'kib':
      return Math.floor(v / 1024);
    case 'kb':
      return Math.floor((v * 1000) / 1048576);
    case 'm':
    case 'mib':
      return v;
    case 'mb':
      return Math.floor((v * 1e6) / 1048576);
    case 'g':
    case 'gib':
      return v * 1024;
    case 'gb':
      return Math.floor((v * 1e9) / 1048576);
    default:
      return Math.floor(v / 1024);
  }
}

export type ParsedDomain = Omit<Vm, 'hostId' | 'hostName' | 'state' | 'running'>;

/** Parse `virsh dumpxml` into the fields Fluid shows and decides on. */
export function parseDomainXml(domXml: string): ParsedDomain {
  const doc = xml.parse(domXml) as Node;
  const d = doc.domain as Node | undefined;
  if (!d) throw new Error('not a libvirt domain XML document');
  const devices = (d.devices ?? {}) as Node;
  const disks = ((devices.disk as Node[] | undefined) ?? []).map((disk) => {
    const source = disk.source as Node | undefined;
    return {
      target: attr(disk.target, 'dev') ?? '',
      device: attr(disk, 'device') ?? 'disk',
      type: attr(disk, 'type') ?? 'file',
      source: attr(source, 'file') ?? attr(source, 'dev') ?? attr(source, 'name') ?? attr(source, 'volume'),
      format: attr(disk.driver, 'type'),
      readonly: 'readonly' in disk,
    };
  });
  const interfaces = ((devices.interface as Node[] | undefined) ?? []).map((i) => ({
    type: attr(i, 'type') ?? 'unknown',
    source: attr(i.source, 'network') ?? attr(i.source, 'bridge') ?? attr(i.source, 'dev'),
    mac: attr(i.mac, 'address'),
    model: attr(i.model, 'type'),
  }));
  const channels = (devices.channel as Node[] | undefined) ?? [];
  const hasGuestAgent = channels.some((c) => attr(c.target, 'name') === 'org.qemu.guest_agent.0');
  const memory = d.currentMemory ?? d.memory;
  const vcpu = d.vcpu;
  let fluid: ParsedDomain['fluid'] = null;
  const meta = d.metadata as Node | undefined;
  if (meta) {
    for (const [k, v] of Object.entries(meta)) {
      if (
        v &&
        typeof v === 'object' &&
        Object.entries(v as Node).some(([ak, av]) => ak.startsWith('@xmlns') && av === FLUID_XMLNS)
      ) {
        const kind = k.includes(':') ? k.split(':')[1]! : k;
        fluid = { kind, id: attr(v, 'id') ?? '', installation: attr(v, 'installation') };
      }
    }
  }
  return {
    name: text(d.name) ?? '',
    uuid: text(d.uuid) ?? '',
    vcpus: Number(text(vcpu) ?? 1),
    memoryMiB: toMiB(text(memory), attr(memory, 'unit')),
    disks,
    interfaces,
    hasGuestAgent,
    title: text(d.title),
    fluid,
  };
}

/** One exec: every domain's XML and state. */
export async function listDomains(
  conn: HostConnection,
  uri: string,
  opts: { signal?: AbortSignal } = {},
): Promise<Array<ParsedDomain & { state: string; running: boolean }>> {
  const V = virsh(uri, '');
  // One virsh process lists, a second one dumps every domain (virsh runs ';'-separated commands;
  // its `echo` prints no newline, so markers carry their own terminators).
  const script = `uuids=$(${V} list --all --uuid) || exit $?
cmds=""
for u in $uuids; do cmds="$cmds echo ${MARK}dom $u ${MARK}; domstate $u; echo ${MARK}xml; dumpxml --inactive $u; echo ${MARK}live; dumpxml $u;"; done
[ -n "$cmds" ] && ${V} "$cmds"
exit 0`;
  const r = await conn.exec(script, {
    signal: opts.signal,
    timeoutMs: 60_000,
    maxOutputBytes: 64 * 1024 * 1024,
  });
  if (r.code !== 0) {
    throw new Error(
      `listing VMs failed: ${(r.stderr.toString() || r.stdout.toString()).trim().slice(0, 1000)}`,
    );
  }
  return parseDomainListing(r.stdout.toString());
}

export function parseDomainListing(text: string): Array<ParsedDomain & { state: string; running: boolean }> {
  const out: Array<ParsedDomain & { state: string; running: boolean }> = [];
  const re = new RegExp(
    `${MARK}dom (\\S+) ${MARK}([\\s\\S]*?)${MARK}xml([\\s\\S]*?)${MARK}live([\\s\\S]*?)(?=${MARK}dom |$)`,
    'g',
  );
  for (const m of text.matchAll(re)) {
    const state = m[2]!.trim() || 'unknown';
    const inactiveXml = m[3]!.trim();
    const liveXml = m[4]!.trim();
    try {
      const parsed = parseDomainXml(liveXml || inactiveXml);
      // Configured sizes come from the persistent definition, devices as they are now.
      const inactive = inactiveXml ? parseDomainXml(inactiveXml) : parsed;
      out.push({
        ...parsed,
        vcpus: inactive.vcpus,
        memoryMiB: inactive.memoryMiB,
        state,
        running: state === 'running' || state === 'paused' || state === 'in shutdown',
      });
    } catch {
      /* a domain that vanished between list and dumpxml */
    }
  }
  return out;
}
