import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  ED25519_CERT,
  ed25519Blob,
  ed25519RawFromBlob,
  ed25519RawFromKeyObject,
  formatKeyLine,
  parseCertificate,
  parseKeyLine,
  signUserCertificate,
  verifyCertificateSignature,
  type CertExtension,
  type UserCertificateSpec,
} from '../../../src/core/ssh/cert.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const ca = generateKeyPairSync('ed25519').privateKey;
const user = ed25519RawFromKeyObject(generateKeyPairSync('ed25519').publicKey);

function spec(over: Partial<UserCertificateSpec> = {}): UserCertificateSpec {
  return {
    publicKey: user,
    serial: 42n,
    keyId: 'fluid:sb-1:guest-exec:agent',
    principals: ['agent'],
    validAfter: 1_700_000_000,
    validBefore: 1_700_000_300,
    ...over,
  };
}

const code = (c: string) => (e: unknown) => e instanceof FluidError && e.code === c;

describe('OpenSSH user certificates', () => {
  test('round-trips every field and verifies against the CA key it names', () => {
    const blob = signUserCertificate(
      spec({
        principals: ['agent', 'root'],
        criticalOptions: { 'source-address': '10.0.0.0/8,192.168.1.5' },
        extensions: ['permit-pty'],
      }),
      ca,
    );
    const c = parseCertificate(blob);
    assert.equal(c.type, ED25519_CERT);
    assert.equal(c.nonce.length, 32);
    assert.deepEqual(c.publicKey, user);
    assert.equal(c.serial, 42n);
    assert.equal(c.certType, 1, 'user certificate');
    assert.equal(c.keyId, 'fluid:sb-1:guest-exec:agent');
    assert.deepEqual(c.principals, ['agent', 'root']);
    assert.equal(c.validAfter, 1_700_000_000n);
    assert.equal(c.validBefore, 1_700_000_300n);
    assert.deepEqual(c.criticalOptions, { 'source-address': '10.0.0.0/8,192.168.1.5' });
    assert.deepEqual(c.extensions, { 'permit-pty': '' });
    assert.deepEqual(ed25519RawFromBlob(c.signatureKey), ed25519RawFromKeyObject(ca));
    assert.equal(c.signatureAlgorithm, 'ssh-ed25519');
    assert.equal(verifyCertificateSignature(c), true);
  });

  test('a modified certificate no longer verifies', () => {
    const blob = Buffer.from(signUserCertificate(spec(), ca));
    // Flip a bit inside the principal name.
    const at = blob.indexOf(Buffer.from('agent'));
    blob[at] = blob[at]! ^ 1;
    assert.equal(verifyCertificateSignature(parseCertificate(blob)), false);
  });

  test('no extensions by default; the line format parses back', () => {
    const blob = signUserCertificate(spec(), ca);
    const line = formatKeyLine(ED25519_CERT, blob, 'comment here');
    assert.match(line, /^ssh-ed25519-cert-v01@openssh\.com AAAA\S+ comment here$/);
    assert.deepEqual(parseKeyLine(line).blob, blob);
    const c = parseCertificate(line);
    assert.deepEqual(c.extensions, {});
    assert.deepEqual(c.criticalOptions, {});
  });

  test('serials use the full unsigned 64-bit range', () => {
    const c = parseCertificate(signUserCertificate(spec({ serial: (1n << 64n) - 1n }), ca));
    assert.equal(c.serial, (1n << 64n) - 1n);
    assert.throws(() => signUserCertificate(spec({ serial: 1n << 64n }), ca), code('VALIDATION'));
  });

  test('refuses an empty or invalid principal list', () => {
    assert.throws(() => signUserCertificate(spec({ principals: [] }), ca), /at least one principal/);
    assert.throws(() => signUserCertificate(spec({ principals: ['a b'] }), ca), code('VALIDATION'));
    assert.throws(() => signUserCertificate(spec({ principals: ['a,b'] }), ca), code('VALIDATION'));
    assert.throws(() => signUserCertificate(spec({ principals: ['a', 'a'] }), ca), /duplicates/);
  });

  test('refuses forwarding and user-rc extensions', () => {
    for (const ext of [
      'permit-port-forwarding',
      'permit-agent-forwarding',
      'permit-X11-forwarding',
      'permit-user-rc',
    ]) {
      assert.throws(
        () => signUserCertificate(spec({ extensions: [ext as CertExtension] }), ca),
        (e: unknown) => code('VALIDATION')(e) && (e as Error).message.includes(ext),
      );
    }
  });

  test('refuses bad validity, key ids, source addresses and CA keys', () => {
    assert.throws(() => signUserCertificate(spec({ validBefore: 1_700_000_000 }), ca), /later than/);
    assert.throws(() => signUserCertificate(spec({ validAfter: 1.5 }), ca), code('VALIDATION'));
    assert.throws(() => signUserCertificate(spec({ keyId: '' }), ca), code('VALIDATION'));
    assert.throws(() => signUserCertificate(spec({ keyId: 'a\nb' }), ca), code('VALIDATION'));
    for (const bad of ['', 'example.com', '10.0.0.0/33', '10.0.0.1/8/1', '::1/129'])
      assert.throws(
        () => signUserCertificate(spec({ criticalOptions: { 'source-address': bad } }), ca),
        code('VALIDATION'),
        bad,
      );
    assert.doesNotThrow(() =>
      signUserCertificate(spec({ criticalOptions: { 'source-address': '::1,fe80::/10' } }), ca),
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(() => signUserCertificate(spec(), rsa), /ed25519/);
    assert.throws(() => signUserCertificate(spec({ publicKey: Buffer.alloc(31) }), ca), /32-byte/);
  });

  test('key blobs and lines', () => {
    const blob = ed25519Blob(user);
    assert.deepEqual(ed25519RawFromBlob(blob), user);
    const line = formatKeyLine('ssh-ed25519', blob, 'x');
    assert.equal(parseKeyLine(line).comment, 'x');
    assert.throws(() => parseKeyLine('ssh-rsa ' + blob.toString('base64')), /holds ssh-ed25519/);
    assert.throws(() => parseKeyLine('nonsense'), code('VALIDATION'));
  });
});
