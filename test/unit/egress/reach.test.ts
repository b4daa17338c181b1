/**
 * What an allowlist entry opens: the warning every door shows before an exact IP entry is allowed,
 * and the validation of destinations passed at creation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKind, canonicalDestinations, destinationWarning } from '../../../src/core/egress/reach.ts';
import { FluidError } from '../../../src/shared/errors.ts';

test('address kinds match the proxy (strictest wins when IPv6 carries IPv4)', () => {
  const cases: Record<string, string | null> = {
    '169.254.169.254': 'metadata',
    '100.100.100.200': 'metadata',
    'fd00:ec2::254': 'metadata',
    '127.0.0.1': 'loopback',
    '::1': 'loopback',
    '169.254.3.4': 'link-local',
    'fe80::1': 'link-local',
    '0.0.0.0': 'not-unicast',
    '224.0.0.1': 'not-unicast',
    '10.0.0.5': 'private',
    '172.16.9.9': 'private',
    '192.168.122.12': 'private',
    '100.64.1.1': 'private',
    'fd00::2': 'private',
    '::7f00:1': 'loopback',
    '2002:a9fe:a9fe::': 'metadata',
    '64:ff9b::a9fe:a9fe': 'metadata',
    '64:ff9b::808:808': null,
    '8.8.8.8': null,
    '203.0.113.80': null,
    '2606:4700::1111': null,
  };
  for (const [ip, kind] of Object.entries(cases)) assert.equal(addressKind(ip), kind, ip);
});

test('every exact IP entry carries a warning; names carry none', () => {
  assert.equal(destinationWarning('deb.debian.org'), null);
  assert.equal(destinationWarning('*.pypi.org:443'), null);
  assert.match(
    destinationWarning('169.254.169.254:80')!,
    /^169\.254\.169\.254:80 is a cloud metadata address: .*instance credentials/,
  );
  assert.match(
    destinationWarning('127.0.0.1:22')!,
    /loopback address: the sandbox reaches services listening on the Fluid host itself/,
  );
  assert.match(destinationWarning('[::ffff:127.0.0.1]:22')!, /^127\.0\.0\.1:22 is a loopback address/);
  assert.match(
    destinationWarning('10.0.0.5:5432')!,
    /private network address: .*directly, around any review/,
  );
  assert.match(
    destinationWarning('93.184.216.34:443')!,
    /IP address: the proxy's address checks do not apply .*host's own addresses/,
  );
  assert.throws(
    () => destinationWarning('not a host'),
    (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION',
  );
});

test('destinations are validated and canonicalized (bad input is refused as a whole)', () => {
  assert.deepEqual(
    canonicalDestinations(['Deb.Debian.org', 'deb.debian.org', '[::FFFF:7F00:1]:22', '*.PyPI.org:443']),
    ['deb.debian.org', '127.0.0.1:22', '*.pypi.org:443'],
  );
  assert.throws(
    () => canonicalDestinations(['deb.debian.org', '127.1:22']),
    (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION' && /127\.1:22/.test(e.message),
  );
});
