/**
 * What an allowlist entry opens, in words a person reads before allowing it.
 *
 * The proxy never connects a sandbox to loopback, link-local or cloud metadata addresses, the Fluid
 * host's own addresses or (by default) private networks through a NAME, however it is allowlisted: a
 * name that resolves there is refused. Only an entry that names the exact IP address opens one, so
 * such entries are dangerous and every door shows this warning when one is added or approved.
 */
import { BlockList, isIPv4 } from 'node:net';
import { formatDestination, parseDestination, type Destination } from './destinations.ts';

export type AddressKind = 'metadata' | 'loopback' | 'link-local' | 'not-unicast' | 'private';

const METADATA = new Set([
  '169.254.169.254',
  '169.254.170.2',
  '169.254.170.23',
  '100.100.100.200',
  'fd00:ec2::254',
]);

function list(v4: string[], v6: string[]): BlockList {
  const b = new BlockList();
  for (const n of v4) {
    const [a, p] = n.split('/') as [string, string];
    b.addSubnet(a, Number(p), 'ipv4');
  }
  for (const n of v6) {
    const [a, p] = n.split('/') as [string, string];
    b.addSubnet(a, Number(p), 'ipv6');
  }
  return b;
}

const KINDS: Array<[AddressKind, BlockList]> = [
  ['loopback', list(['127.0.0.0/8'], ['::1/128'])],
  ['link-local', list(['169.254.0.0/16'], ['fe80::/10'])],
  ['not-unicast', list(['0.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4'], ['::/128', 'ff00::/8'])],
  [
    'private',
    list(
      ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'],
      ['fc00::/7', 'fec0::/10', '64:ff9b:1::/48'],
    ),
  ],
];

/** IPv4 addresses an IPv6 address carries (IPv4-compatible, 6to4, NAT64), as the proxy checks them. */
function embeddedV4(ip: string): string[] {
  if (isIPv4(ip)) return [];
  const groups = expand(ip);
  if (!groups) return [];
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const out: string[] = [];
  const zeros = (n: number) => groups.slice(0, n).every((g) => g === 0);
  if (zeros(6) && (groups[6]! !== 0 || groups[7]! > 1)) out.push(v4(groups[6]!, groups[7]!));
  if (groups[0] === 0x2002) out.push(v4(groups[1]!, groups[2]!));
  if (groups[0] === 0x64 && groups[1] === 0xff9b) out.push(v4(groups[6]!, groups[7]!));
  return out;
}

function expand(ip: string): number[] | null {
  const [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, null];
  const parse = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = tail === null ? [] : parse(tail);
  if (tail === null && h.length !== 8) return null;
  const groups = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : null;
}

function kind1(ip: string): AddressKind | null {
  if (METADATA.has(ip)) return 'metadata';
  const family = isIPv4(ip) ? 'ipv4' : 'ipv6';
  for (const [kind, b] of KINDS) if (b.check(ip, family)) return kind;
  return null;
}

const ORDER: AddressKind[] = ['metadata', 'loopback', 'link-local', 'not-unicast', 'private'];

/** The kind of a canonical IP address (see canonicalIp), the strictest when IPv6 embeds IPv4; null: public. */
export function addressKind(ip: string): AddressKind | null {
  const kinds = new Set([kind1(ip), ...embeddedV4(ip).map(kind1)]);
  return ORDER.find((k) => kinds.has(k)) ?? null;
}

const KIND_TEXT: Record<AddressKind, string> = {
  metadata: "a cloud metadata address: the sandbox could read the host's instance credentials",
  loopback: 'a loopback address: the sandbox reaches services listening on the Fluid host itself',
  'link-local': "a link-local address (the host's local link, including cloud metadata services)",
  'not-unicast': 'not an ordinary unicast address',
  private:
    'a private network address: the sandbox reaches that machine on your network directly, around any review',
};

/**
 * The warning to show before `entry` is allowed, or null for names and ordinary public addresses
 * (which the proxy still checks). Throws VALIDATION for something that is not a destination.
 */
export function destinationWarning(entry: string | Destination): string | null {
  const d = typeof entry === 'string' ? parseDestination(entry) : entry;
  if (!d.isIp) return null;
  const kind = addressKind(d.host);
  const what = formatDestination(d);
  if (kind)
    return `${what} is ${KIND_TEXT[kind]}. An exact IP entry opens it even though the proxy blocks it by name; allow it only if you mean that.`;
  return `${what} is an IP address: the proxy's address checks do not apply to an exact IP entry, so if it is one of the Fluid host's own addresses the sandbox reaches the host's services. Allow it only if you know what it is.`;
}

/** Validate and canonicalize allowlist entries (deduplicated, in order). Throws VALIDATION. */
export function canonicalDestinations(entries: readonly string[]): string[] {
  return [...new Set(entries.map((e) => formatDestination(parseDestination(e))))];
}
