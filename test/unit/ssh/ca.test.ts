import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { CA_SECRET_NAME, SshCa } from '../../../src/core/ssh/ca.ts';
import {
  ed25519RawFromBlob,
  parseCertificate,
  parseKeyLine,
  verifyCertificateSignature,
} from '../../../src/core/ssh/cert.ts';
import { SSH_CA_MIGRATION } from '../../../src/core/ssh/schema.ts';
import { openDatabase } from '../../../src/core/store/db.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';
import { FluidError } from '../../../src/shared/errors.ts';
import ssh2 from 'ssh2';

const NOW = new Date('2026-11-22T12:00:00Z');
const clock = { now: () => NOW };

function setup() {
  const db = openDatabase(':memory:', [{ version: 1, ...SSH_CA_MIGRATION }]);
  const secrets = new MemorySecretStore();
  return { db, secrets, ca: new SshCa({ db, secrets, clock }) };
}

const req = {
  principals: ['agent'],
  validitySeconds: 120,
  keyId: 'fluid:sb-1:guest-exec:agent',
  purpose: 'guest-exec',
  sandboxId: 'sb-1',
};

describe('SshCa', () => {
  test('creates its key on first use, keeps it in the secret store and reuses it', () => {
    const { db, secrets, ca } = setup();
    assert.equal(secrets.get(CA_SECRET_NAME), null);
    const line = ca.publicKey();
    assert.match(line, /^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ fluid-ca$/);
    const pem = secrets.get(CA_SECRET_NAME)!;
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(createPrivateKey(pem).asymmetricKeyType, 'ed25519');
    const again = new SshCa({ db, secrets, clock });
    assert.equal(again.publicKey(), line);
    assert.match(again.fingerprint(), /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  test('issues a certificate for a fresh ephemeral key, signed by the CA', () => {
    const { ca } = setup();
    const c = ca.issue(req);
    assert.match(c.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.equal(ssh2.utils.parseKey(c.privateKey) instanceof Error, false);
    const cert = parseCertificate(c.certificate);
    assert.equal(verifyCertificateSignature(cert), true);
    assert.deepEqual(cert.signatureKey, parseKeyLine(ca.publicKey()).blob);
    assert.deepEqual(cert.publicKey, ed25519RawFromBlob(parseKeyLine(c.publicKey).blob));
    assert.deepEqual(cert.principals, ['agent']);
    assert.equal(cert.keyId, req.keyId);
    assert.equal(cert.serial, BigInt(c.serial));
    const now = NOW.getTime() / 1000;
    assert.equal(cert.validAfter, BigInt(now - 60), 'backdated for clock skew');
    assert.equal(cert.validBefore, BigInt(now + 120));
    assert.equal(c.validAfter.getTime(), (now - 60) * 1000);
    assert.equal(c.validBefore.getTime(), (now + 120) * 1000);
    assert.deepEqual(cert.extensions, {}, 'no extensions unless asked');
    assert.deepEqual(cert.criticalOptions, {});
    // The private key really belongs to the certified public key.
    const pub = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: cert.publicKey.toString('base64url') },
      format: 'jwk',
    });
    const parsed = ssh2.utils.parseKey(c.privateKey) as ssh2.ParsedKey;
    assert.equal(verify(null, Buffer.from('x'), pub, parsed.sign(Buffer.from('x'))), true);
  });

  test('every issue gets a new key and a new, recorded serial', () => {
    const { ca, db } = setup();
    const a = ca.issue(req);
    const b = ca.issue({ ...req, permitPty: true, purpose: 'guest-shell', sourceAddress: '10.1.2.3' });
    const c = ca.issue({ ...req, sandboxId: undefined });
    assert.deepEqual([a.serial, b.serial, c.serial], [1, 2, 3]);
    assert.notEqual(a.publicKey, b.publicKey);
    assert.deepEqual(parseCertificate(b.certificate).extensions, { 'permit-pty': '' });
    assert.deepEqual(parseCertificate(b.certificate).criticalOptions, { 'source-address': '10.1.2.3' });
    const rows = db.prepare('SELECT * FROM ssh_certificates ORDER BY serial').all() as Record<
      string,
      unknown
    >[];
    assert.equal(rows.length, 3);
    assert.equal(rows[1]!.purpose, 'guest-shell');
    assert.equal(rows[1]!.sandbox_id, 'sb-1');
    assert.equal(rows[1]!.source_address, '10.1.2.3');
    assert.equal(rows[1]!.extensions, '["permit-pty"]');
    assert.equal(rows[0]!.principals, '["agent"]');
    assert.equal(rows[0]!.ca_fingerprint, ca.fingerprint());
    assert.equal(rows[2]!.sandbox_id, null);
    assert.equal(rows[0]!.valid_before, NOW.getTime() / 1000 + 120);
  });

  test('validity must be 1 to 10 minutes', () => {
    const { ca } = setup();
    for (const v of [0, 59, 601, 90.5, -1])
      assert.throws(
        () => ca.issue({ ...req, validitySeconds: v }),
        (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION' && /60 to 600/.test(e.message),
      );
    assert.doesNotThrow(() => ca.issue({ ...req, validitySeconds: 60 }));
    assert.doesNotThrow(() => ca.issue({ ...req, validitySeconds: 600 }));
  });

  test('a refused request records nothing and burns no serial', () => {
    const { ca, db } = setup();
    assert.throws(() => ca.issue({ ...req, principals: [] }), /at least one principal/);
    assert.throws(() => ca.issue({ ...req, sourceAddress: 'nope' }), /source-address/);
    assert.throws(() => ca.issue({ ...req, purpose: '' }), /purpose/);
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM ssh_certificates').get() as { n: number }).n, 0);
    assert.equal(ca.issue(req).serial, 1);
  });

  test('an unreadable or non-ed25519 stored key is a clear error', () => {
    const { db } = setup();
    const secrets = new MemorySecretStore();
    secrets.set(CA_SECRET_NAME, 'garbage');
    assert.throws(() => new SshCa({ db, secrets }).publicKey(), /unreadable/);
  });
});
