/**
 * OpenSSH certificate login for ssh2 1.17.0, which has none (mscdex/ssh2#551).
 *
 * A certificate login is a publickey login where the key blob sent is the certificate and its type
 * is the certificate type, but the signature blob names the base algorithm (ssh-ed25519). ssh2 writes
 * one algorithm name in both places, so `Protocol.prototype.authPK` is wrapped: for keys made by
 * `certificateKey()` it writes the signed request itself, for every other key it calls the original.
 * The patch is applied once, only to the exact ssh2 version it was written against, and refuses
 * loudly otherwise: when ssh2 changes, re-check authPK and bump SUPPORTED_SSH2_VERSION.
 *
 * ssh2 is resolved with createRequire from this module, so the same copy that `import 'ssh2'` loads
 * is patched, also when this file is bundled into the Electron main process with ssh2 external.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ParsedKey, PublicKeyAuthMethod } from 'ssh2';
import { FluidError } from '../../shared/errors.ts';
import { ED25519, parseKeyLine } from './cert.ts';
import { SshWriter } from './wire.ts';

export const SUPPORTED_SSH2_VERSION = '1.17.0';

const CERT = Symbol('fluid.ssh2.certificate');
const PATCHED = Symbol('fluid.ssh2.certificatePatch');
const USERAUTH_REQUEST = 50;

interface CertInfo {
  blob: Buffer;
  certType: string;
  baseType: string;
}

type CertKey = ParsedKey & { [CERT]: CertInfo };

interface ProtocolInternals {
  _kex: { sessionID: Buffer };
  _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(b: Buffer): Buffer } };
  _authsQueue: string[];
  _debug?: (msg: string) => void;
}

type SignCallback = (data: Buffer, done: (signature: Buffer) => void) => void;
type AuthPK = (
  this: ProtocolInternals,
  username: string,
  pubKey: unknown,
  keyAlgo?: string | SignCallback,
  cbSign?: SignCallback,
) => void;

interface Ssh2Internals {
  version: string;
  Protocol: { prototype: { authPK: AuthPK & { [PATCHED]?: true } } };
  parseKey: (data: unknown, passphrase?: string) => ParsedKey | Error;
  sendPacket: (proto: unknown, packet: Buffer) => void;
}

let internals: Ssh2Internals | null = null;

function loadSsh2(): Ssh2Internals {
  if (internals) return internals;
  const require = createRequire(import.meta.url);
  let main: string;
  try {
    main = require.resolve('ssh2');
  } catch (e) {
    throw new FluidError('INTERNAL', `The ssh2 package cannot be found: ${(e as Error).message}`);
  }
  const lib = dirname(main); // …/ssh2/lib
  const fromSsh2 = createRequire(main);
  const { version } = fromSsh2(join(lib, '..', 'package.json')) as { version: string };
  if (version !== SUPPORTED_SSH2_VERSION)
    throw new FluidError(
      'INTERNAL',
      `ssh2 ${version} is installed, but Fluid's certificate login patch (src/core/ssh/ssh2-cert.ts) was written for ssh2 ${SUPPORTED_SSH2_VERSION}. Pin ssh2 to ${SUPPORTED_SSH2_VERSION}, or re-check Protocol.authPK in the new version and update the patch.`,
    );
  const Protocol = fromSsh2('./protocol/Protocol.js') as Ssh2Internals['Protocol'];
  const { parseKey } = fromSsh2('./protocol/keyParser.js') as Pick<Ssh2Internals, 'parseKey'>;
  const { sendPacket } = fromSsh2('./protocol/utils.js') as Pick<Ssh2Internals, 'sendPacket'>;
  if (
    typeof Protocol?.prototype?.authPK !== 'function' ||
    typeof parseKey !== 'function' ||
    typeof sendPacket !== 'function'
  )
    throw new FluidError(
      'INTERNAL',
      'ssh2 internals (Protocol.authPK, keyParser.parseKey, utils.sendPacket) are not where the certificate login patch expects them.',
    );
  internals = { version, Protocol, parseKey, sendPacket };
  return internals;
}

/** Patch ssh2 for certificate logins. Idempotent; throws if the installed ssh2 is not the one it fits. */
export function installSsh2CertificateSupport(): void {
  const { Protocol, sendPacket } = loadSsh2();
  const original = Protocol.prototype.authPK;
  if (original[PATCHED]) return;

  const patched: AuthPK & { [PATCHED]?: true } = function (this, username, pubKey, keyAlgo, cbSign) {
    const cert = (pubKey as Partial<CertKey> | null)?.[CERT];
    if (!cert) return original.call(this, username, pubKey, keyAlgo, cbSign);
    const signer = typeof keyAlgo === 'function' ? keyAlgo : cbSign;
    // The unsigned "would you accept this key?" query is the same as for a plain key.
    if (!signer) return original.call(this, username, pubKey, cert.certType);
    if (!this._kex?.sessionID || !this._packetRW?.write || !Array.isArray(this._authsQueue))
      throw new FluidError(
        'INTERNAL',
        'ssh2 protocol internals changed: the certificate login cannot proceed.',
      );

    const request = new SshWriter()
      .raw(Buffer.from([USERAUTH_REQUEST]))
      .string(username)
      .string('ssh-connection')
      .string('publickey')
      .raw(Buffer.from([1]))
      .string(cert.certType)
      .string(cert.blob)
      .toBuffer();
    const signed = new SshWriter().string(this._kex.sessionID).raw(request).toBuffer();
    signer(signed, (signature: Buffer) => {
      // ed25519 signatures go out as they are (ssh2 only converts DSA and ECDSA ones).
      const sigBlob = new SshWriter().string(cert.baseType).string(signature).toBuffer();
      const payload = new SshWriter().raw(request).string(sigBlob).toBuffer();
      const w = this._packetRW.write;
      const packet = w.alloc(payload.length);
      payload.copy(packet, w.allocStart);
      this._authsQueue.push('publickey');
      this._debug?.('Outbound: Sending USERAUTH_REQUEST (publickey, certificate)');
      sendPacket(this, w.finalize(packet));
    });
  };
  patched[PATCHED] = true;
  Protocol.prototype.authPK = patched;
}

/**
 * A parsed private key that logs in with a certificate: pass it as the `key` of a publickey entry in
 * ssh2's `authHandler`. Only ed25519 user certificates are supported.
 */
export function certificateKey(privateKeyPem: string, certificateLine: string): ParsedKey {
  installSsh2CertificateSupport();
  const { parseKey } = loadSsh2();
  const priv = parseKey(privateKeyPem);
  if (priv instanceof Error || !priv.isPrivateKey())
    throw new FluidError(
      'VALIDATION',
      `ssh2 cannot read the private key${priv instanceof Error ? `: ${priv.message}` : ''}.`,
    );
  if (priv.type !== ED25519)
    throw new FluidError('VALIDATION', `Certificate logins support ${ED25519} keys only, not ${priv.type}.`);
  const line = parseKeyLine(certificateLine);
  if (line.type !== `${ED25519}-cert-v01@openssh.com`)
    throw new FluidError('VALIDATION', `Expected an ${ED25519} certificate, got ${line.type}.`);
  // Inherit everything (sign(), ssh2's internal symbols) from the parsed key; present the certificate.
  const key = Object.create(priv) as CertKey;
  Object.defineProperty(key, 'type', { value: line.type });
  Object.defineProperty(key, 'getPublicSSH', { value: () => line.blob });
  Object.defineProperty(key, CERT, { value: { blob: line.blob, certType: line.type, baseType: priv.type } });
  return key;
}

/** ssh2's `authHandler` for a certificate login as `username`. */
export function certificateAuthHandler(
  username: string,
  privateKeyPem: string,
  certificateLine: string,
): PublicKeyAuthMethod[] {
  return [{ type: 'publickey', username, key: certificateKey(privateKeyPem, certificateLine) }];
}
