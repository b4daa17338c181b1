/**
 * Ephemeral ed25519 user keys in the formats ssh2 and OpenSSH read. Not ssh2's
 * utils.generateKeyPairSync('ed25519'): ssh2 1.17 strips leading zero bytes from the public key
 * (keygen.js treats the BIT STRING like an integer), so 1 key in 256 comes out 31 bytes long and
 * every login with it fails. node:crypto makes the key; the OpenSSH private key format
 * (PROTOCOL.key, unencrypted) is written here.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { ED25519, ed25519Blob, formatKeyLine } from './cert.ts';
import { SshWriter } from './wire.ts';

export interface Ed25519KeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` PEM, unencrypted. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… [comment]` */
  publicKey: string;
  /** The raw 32-byte public key. */
  raw: Buffer;
}

const AUTH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

export function generateEd25519KeyPair(comment = ''): Ed25519KeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x!, 'base64url');
  const seed = Buffer.from(jwk.d!, 'base64url');
  const blob = ed25519Blob(raw);
  const check = randomBytes(4);
  const secret = new SshWriter()
    .raw(check)
    .raw(check)
    .string(ED25519)
    .string(raw)
    .string(Buffer.concat([seed, raw]))
    .string(comment);
  let section = secret.toBuffer();
  // Pad to the cipher block size ("none": 8) with 1, 2, 3, …
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = new SshWriter()
    .raw(AUTH_MAGIC)
    .string('none')
    .string('none')
    .string('')
    .u32(1)
    .string(blob)
    .string(section)
    .toBuffer();
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: formatKeyLine(ED25519, blob, comment),
    raw,
  };
}
