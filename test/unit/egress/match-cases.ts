/**
 * Allowlist matching cases shared by the TypeScript rules (unit) and the python proxy (integration):
 * both must understand every entry and host the same way.
 */
export interface MatchCase {
  entries: string[];
  host: string;
  port: number;
  /** Canonical form of each entry, null when invalid. */
  canonical: (string | null)[];
  /** Canonical host, null when invalid. */
  canonicalHost: string | null;
  allowed: boolean;
}

const c = (
  entries: string[],
  host: string,
  port: number,
  allowed: boolean,
  canonical: (string | null)[] = entries,
  canonicalHost: string | null = host,
): MatchCase => ({ entries, host, port, allowed, canonical, canonicalHost });

export const MATCH_CASES: MatchCase[] = [
  // bare host: ports 80 and 443
  c(['deb.debian.org'], 'deb.debian.org', 80, true),
  c(['deb.debian.org'], 'deb.debian.org', 443, true),
  c(['deb.debian.org'], 'deb.debian.org', 8080, false),
  c(['deb.debian.org'], 'security.debian.org', 80, false),
  c(['deb.debian.org'], 'sub.deb.debian.org', 80, false),
  // case and trailing dots
  c(['DEB.Debian.ORG'], 'deb.debian.org', 80, true, ['deb.debian.org']),
  c(['deb.debian.org.'], 'Deb.Debian.Org.', 443, true, ['deb.debian.org'], 'deb.debian.org'),
  // host:port
  c(['deb.debian.org:8080'], 'deb.debian.org', 8080, true),
  c(['deb.debian.org:8080'], 'deb.debian.org', 80, false),
  c(['deb.debian.org:443'], 'deb.debian.org', 443, true),
  c(['deb.debian.org:443'], 'deb.debian.org', 80, false),
  // wildcards: strict subdomains only
  c(['*.example.com'], 'a.example.com', 443, true),
  c(['*.example.com'], 'a.b.example.com', 80, true),
  c(['*.example.com'], 'example.com', 443, false),
  c(['*.example.com'], 'badexample.com', 443, false),
  c(['*.example.com'], 'a.example.com', 8443, false),
  c(['*.Example.COM:8443'], 'x.example.com', 8443, true, ['*.example.com:8443']),
  c(['*.example.com:8443'], 'x.example.com', 443, false),
  c(['*.example.com', 'example.com'], 'example.com', 80, true),
  // IPv4 literals
  c(['10.0.0.5:443'], '10.0.0.5', 443, true),
  c(['10.0.0.5:443'], '10.0.0.5', 80, false),
  c(['10.0.0.5'], '10.0.0.5', 80, true),
  c(['10.0.0.5'], '10.0.0.6', 80, false),
  c(['10.0.0.5'], '10.0.0.5.example.com', 80, false),
  // IPv6 literals (canonical, brackets optional when there is no port)
  c(['[::1]:8080'], '[::1]', 8080, true, ['[::1]:8080'], '::1'),
  c(['::1'], '::1', 443, true, ['[::1]']),
  c(['[0:0:0:0:0:0:0:1]:80'], '[::1]', 80, true, ['[::1]:80'], '::1'),
  c(['[2001:DB8::1]'], '2001:db8:0:0::1', 443, true, ['[2001:db8::1]'], '2001:db8::1'),
  c(['::ffff:10.0.0.5'], '10.0.0.5', 80, true, ['10.0.0.5']),
  c(['10.0.0.5'], '[::ffff:10.0.0.5]', 80, true, ['10.0.0.5'], '10.0.0.5'),
  // invalid entries never match; invalid hosts never match
  c(['*.10.0.0.5'], '10.0.0.5', 80, false, [null]),
  c(['*'], 'example.com', 80, false, [null]),
  c([''], 'example.com', 80, false, [null]),
  c(['exa mple.com'], 'example.com', 80, false, [null]),
  c(['example.com:0'], 'example.com', 80, false, [null]),
  c(['example.com:65536'], 'example.com', 80, false, [null]),
  c(['example.com:'], 'example.com', 80, false, [null]),
  c(['http://example.com'], 'example.com', 80, false, [null]),
  c(['example.com/path'], 'example.com', 80, false, [null]),
  c(['*.*.example.com'], 'a.b.example.com', 80, false, [null]),
  c(['[::1'], '::1', 80, false, [null]),
  c(['1.2.3.4%eth0'], '1.2.3.4', 80, false, [null]),
  // numeric forms resolvers would turn into IPs are not hosts
  c(['127.1'], '127.1', 80, false, [null], null),
  c(['127.0.0.1'], '2130706433', 80, false, ['127.0.0.1'], null),
  c(['127.0.0.1'], '0x7f.1', 80, false, ['127.0.0.1'], null),
  c(['01.2.3.4'], '01.2.3.4', 80, false, [null], null),
  c(['example.com'], 'exa$mple.com', 80, false, ['example.com'], null),
  c(['example.com'], '', 80, false, ['example.com'], null),
  // underscores and IDNA labels
  c(['foo_bar.example.com'], 'FOO_bar.example.com', 80, true, ['foo_bar.example.com'], 'foo_bar.example.com'),
  c(['xn--bcher-kva.example'], 'xn--bcher-kva.example', 443, true),
  // first match wins, order irrelevant
  c(['a.com:1', 'b.com', '*.c.com:9'], 'x.c.com', 9, true),
];
