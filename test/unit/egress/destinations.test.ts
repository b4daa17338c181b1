import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalIp,
  destinationMatches,
  formatDestination,
  isAllowed,
  normalizeHost,
  parseDestination,
  tryParseDestination,
} from '../../../src/core/egress/destinations.ts';
import { FluidError } from '../../../src/shared/errors.ts';
import { MATCH_CASES } from './match-cases.ts';

describe('egress allowlist matching', () => {
  for (const mc of MATCH_CASES) {
    test(`${JSON.stringify(mc.entries)} vs ${JSON.stringify(mc.host)}:${mc.port} → ${mc.allowed}`, () => {
      const parsed = mc.entries.map((e) => tryParseDestination(e));
      assert.deepEqual(
        parsed.map((d) => (d ? formatDestination(d) : null)),
        mc.canonical,
        'entries understood as expected',
      );
      assert.equal(normalizeHost(mc.host), mc.canonicalHost, 'host understood as expected');
      assert.equal(isAllowed(mc.entries, mc.host, mc.port), mc.allowed);
    });
  }

  test('a bare host covers exactly ports 80 and 443', () => {
    const d = parseDestination('deb.debian.org');
    assert.deepEqual(d, { host: 'deb.debian.org', wildcard: false, ports: [80, 443], isIp: false });
    assert.ok(destinationMatches(d, 'deb.debian.org', 80));
    assert.ok(!destinationMatches(d, 'deb.debian.org', 22));
  });

  test('parseDestination explains what a destination looks like', () => {
    assert.throws(
      () => parseDestination('not a host'),
      (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION' && /host, host:port/.test(e.message),
    );
  });

  test('isAllowed accepts parsed destinations too', () => {
    assert.ok(isAllowed([parseDestination('*.pypi.org')], 'files.pypi.org', 443));
    assert.ok(!isAllowed([parseDestination('*.pypi.org')], 'pypi.org', 443));
  });

  test('canonicalIp: IPv4 strict, IPv6 compressed, mapped IPv4 unwrapped, zones refused', () => {
    assert.equal(canonicalIp('10.1.2.3'), '10.1.2.3');
    assert.equal(canonicalIp('010.1.2.3'), null);
    assert.equal(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(canonicalIp('::ffff:192.168.1.1'), '192.168.1.1');
    assert.equal(canonicalIp('fe80::1%eth0'), null);
    assert.equal(canonicalIp('example.com'), null);
  });
});
