import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import ssh2 from 'ssh2';
import { generateEd25519KeyPair, type Ed25519KeyPair } from '../../../src/core/ssh/keys.ts';
import { parseKeyLine, ed25519RawFromBlob } from '../../../src/core/ssh/cert.ts';

function usable(k: Ed25519KeyPair): void {
  const parsed = ssh2.utils.parseKey(k.privateKey);
  assert.ok(!(parsed instanceof Error), String(parsed));
  const key = parsed as ssh2.ParsedKey;
  assert.equal(key.type, 'ssh-ed25519');
  assert.deepEqual(key.getPublicSSH(), parseKeyLine(k.publicKey).blob);
  assert.deepEqual(ed25519RawFromBlob(parseKeyLine(k.publicKey).blob), k.raw);
  const pub = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: k.raw.toString('base64url') },
    format: 'jwk',
  });
  const msg = Buffer.from('session data');
  assert.equal(verify(null, msg, pub, key.sign(msg)), true);
}

describe('ephemeral ed25519 keys', () => {
  test('OpenSSH private key format that ssh2 reads and signs with', () => {
    const k = generateEd25519KeyPair('fluid:sb-1:guest-exec');
    assert.match(
      k.privateKey,
      /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/,
    );
    assert.match(
      k.publicKey,
      /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} fluid:sb-1:guest-exec$/,
    );
    assert.equal(k.raw.length, 32);
    usable(k);
    usable(generateEd25519KeyPair());
  });

  test('keys whose public key starts with zero bytes stay 32 bytes (ssh2 keygen strips them)', () => {
    let k: Ed25519KeyPair;
    let tries = 0;
    do {
      k = generateEd25519KeyPair();
      tries++;
    } while (k.raw[0] !== 0 && tries < 20_000);
    assert.equal(k.raw[0], 0, 'found a key with a leading zero byte');
    assert.equal(parseKeyLine(k.publicKey).blob.readUInt32BE(15), 32);
    usable(k);
  });
});
