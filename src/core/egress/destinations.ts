/**
 * Allowlist entries and how a requested destination matches them. The proxy (python, on the host)
 * applies the same rules; test/integration/egress checks both agree on a shared table of cases.
 *
 *   host            that host, ports 80 and 443
 *   host:port       that host, that port
 *   *.domain[:port] any subdomain of domain (not domain itself), ports 80/443 or the given port
 *   1.2.3.4[:port]  that IP literal; [v6]:port or bare v6 for IPv6
 *
 * Matching is on the requested name (case-insensitive, trailing dot ignored), never on what it
 * resolves to. Numeric forms that resolvers turn into IPs ("127.1", "0x7f.1", "2130706433") are
 * invalid hosts.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { FluidError } from '../../shared/errors.ts';

export interface Destination {
  /** Canonical host: lower case, IPv6 without brackets. */
  host: string;
  /** True for `*.domain` (matches strict subdomains of `host`). */
  wildcard: boolean;
  /** Ports this entry covers. */
  ports: number[];
  isIp: boolean;
}

const HOST_RE = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;
const NUMERIC_LABEL_RE = /^([0-9]+|0x[0-9a-f]*)$/;
export const DEFAULT_PORTS: readonly number[] = [80, 443];

/** Canonical text of an IP literal, or null. IPv4-mapped IPv6 becomes IPv4. */
export function canonicalIp(s: string): string | null {
  if (!s || s.includes('%')) return null;
  if (isIPv4(s)) return s;
  if (!isIPv6(s)) return null;
  let h: string;
  try {
    h = new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return h;
}

/** Canonical host (lower case, no trailing dot, no IPv6 brackets, canonical IP) or null if invalid. */
export function normalizeHost(h: string): string | null {
  h = h.trim().toLowerCase();
  if (h.startsWith('[')) {
    if (!h.endsWith(']') || !h.includes(':')) return null;
    return canonicalIp(h.slice(1, -1));
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  const ip = canonicalIp(h);
  if (ip) return ip;
  if (!h || h.length > 253 || !HOST_RE.test(h)) return null;
  if (NUMERIC_LABEL_RE.test(h.slice(h.lastIndexOf('.') + 1))) return null;
  return h;
}

function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const p = Number(s);
  return p >= 1 && p <= 65535 ? p : null;
}

/** Split host[:port] / [v6][:port] / bare v6. Port 0 = none given. Null when malformed. */
export function splitHostPort(s: string): { host: string; port: number } | null {
  s = s.trim();
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return null;
    const host = s.slice(0, end + 1);
    const rest = s.slice(end + 1);
    if (rest === '') return { host, port: 0 };
    if (!rest.startsWith(':')) return null;
    const port = parsePort(rest.slice(1));
    return port ? { host, port } : null;
  }
  const colons = s.split(':').length - 1;
  if (colons === 1) {
    const [host, p] = s.split(':') as [string, string];
    const port = parsePort(p);
    return port ? { host, port } : null;
  }
  return { host: s, port: 0 };
}

/** Parse an allowlist entry, or null when it is not one. */
export function tryParseDestination(entry: string): Destination | null {
  let s = entry.trim().toLowerCase();
  const wildcard = s.startsWith('*.');
  if (wildcard) s = s.slice(2);
  const hp = splitHostPort(s);
  if (!hp) return null;
  const host = normalizeHost(hp.host);
  if (!host) return null;
  const isIp = canonicalIp(host) !== null;
  if (wildcard && isIp) return null;
  return { host, wildcard, ports: hp.port ? [hp.port] : [...DEFAULT_PORTS], isIp };
}

/** Parse an allowlist entry; throws FluidError VALIDATION with a readable message. */
export function parseDestination(entry: string): Destination {
  const d = tryParseDestination(entry);
  if (!d)
    throw new FluidError(
      'VALIDATION',
      `"${entry}" is not a destination: use host, host:port, *.domain[:port] or an IP address (IPv6 as [addr]:port).`,
    );
  return d;
}

/** Canonical text of a destination ("*.example.com", "[::1]:8080", "deb.debian.org"). */
export function formatDestination(d: Destination): string {
  let h = d.host.includes(':') ? `[${d.host}]` : d.host;
  if (d.wildcard) h = `*.${h}`;
  return d.ports.length === 1 ? `${h}:${d.ports[0]}` : h;
}

/** Does this entry cover host:port? `host` must already be normalized (see normalizeHost). */
export function destinationMatches(d: Destination, host: string, port: number): boolean {
  if (!d.ports.includes(port)) return false;
  if (host === d.host) return !d.wildcard;
  return d.wildcard && host.endsWith(`.${d.host}`);
}

/** Is host:port on the allowlist? Invalid entries and hosts never match. */
export function isAllowed(allow: readonly (string | Destination)[], host: string, port: number): boolean {
  const h = normalizeHost(host);
  if (!h) return false;
  return allow.some((e) => {
    const d = typeof e === 'string' ? tryParseDestination(e) : e;
    return !!d && destinationMatches(d, h, port);
  });
}
