/**
 * OpenSSH user certificates (PROTOCOL.certkeys) for ed25519 keys, signed by an ed25519 CA, with
 * node:crypto only. The encoder enforces Fluid's policy: user certificates only, an explicit
 * non-empty principal list, and no extension beyond permit-pty (no port, agent or X11 forwarding,
 * no user rc). The parser exists for tests and diagnostics.
 */
import { createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { FluidError } from '../../shared/errors.ts';
import { readStrings, SshReader, SshWriter } from './wire.ts';

export const ED25519 = 'ssh-ed25519';
export const ED25519_CERT = 'ssh-ed25519-cert-v01@openssh.com';
export const SSH_CERT_TYPE_USER = 1;

/** The only extension Fluid ever grants, and only when asked for. */
export const ALLOWED_EXTENSIONS = ['permit-pty'] as const;
export type CertExtension = (typeof ALLOWED_EXTENSIONS)[number];

export interface CriticalOptions {
  /** Comma-separated addresses or CIDR blocks the certificate may be used from. */
  'source-address'?: string;
  /** A command sshd runs instead of whatever the client asks for. */
  'force-command'?: string;
}

export interface UserCertificateSpec {
  /** The user's raw 32-byte ed25519 public key. */
  publicKey: Buffer;
  serial: bigint;
  keyId: string;
  principals: readonly string[];
  /** Unix seconds. */
  validAfter: number;
  /** Unix seconds. */
  validBefore: number;
  criticalOptions?: CriticalOptions;
  extensions?: readonly CertExtension[];
  /** 32 random bytes unless given (tests). */
  nonce?: Buffer;
}

export interface ParsedCertificate {
  type: string;
  nonce: Buffer;
  /** The certified public key (raw 32 bytes for ed25519). */
  publicKey: Buffer;
  serial: bigint;
  certType: number;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: Record<string, string>;
  extensions: Record<string, string>;
  /** The CA's public key blob. */
  signatureKey: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  /** The bytes the signature covers. */
  signedBody: Buffer;
}

const PRINCIPAL_RE = /^[A-Za-z0-9._@+-]{1,256}$/;
const U64_MAX = (1n << 64n) - 1n;

/** The SSH public key blob of an ed25519 key: string "ssh-ed25519" ‖ string key. */
export function ed25519Blob(raw: Buffer): Buffer {
  if (raw.length !== 32) throw new FluidError('VALIDATION', 'An ed25519 public key is 32 bytes long.');
  return new SshWriter().string(ED25519).string(raw).toBuffer();
}

/** The raw 32-byte key inside an ed25519 public key blob. */
export function ed25519RawFromBlob(blob: Buffer): Buffer {
  const r = new SshReader(blob, 'ed25519 public key');
  const type = r.text();
  if (type !== ED25519) throw new FluidError('VALIDATION', `Expected an ${ED25519} key, got ${type}.`);
  const raw = r.string();
  r.end();
  if (raw.length !== 32) throw new FluidError('VALIDATION', 'An ed25519 public key is 32 bytes long.');
  return raw;
}

/** The raw 32-byte public key of a Node ed25519 key object (private or public). */
export function ed25519RawFromKeyObject(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519')
    throw new FluidError('VALIDATION', `Expected an ed25519 key, got ${pub.asymmetricKeyType}.`);
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

export interface KeyLine {
  type: string;
  blob: Buffer;
  comment: string;
}

/** Parse an OpenSSH public key or certificate line: `<type> <base64> [comment]`. */
export function parseKeyLine(line: string): KeyLine {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/=]+)(?:\s+(.*?))?\s*$/.exec(line);
  if (!m) throw new FluidError('VALIDATION', 'Not an OpenSSH public key line ("<type> <base64> [comment]").');
  const blob = Buffer.from(m[2]!, 'base64');
  const inner = new SshReader(blob, 'public key').text();
  if (inner !== m[1])
    throw new FluidError('VALIDATION', `The key line says ${m[1]} but its blob holds ${inner}.`);
  return { type: m[1]!, blob, comment: m[3] ?? '' };
}

export function formatKeyLine(type: string, blob: Buffer, comment?: string): string {
  return `${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function validateSpec(spec: UserCertificateSpec): void {
  if (spec.publicKey.length !== 32)
    throw new FluidError('VALIDATION', 'The certified key must be a raw 32-byte ed25519 public key.');
  if (!spec.principals.length)
    throw new FluidError(
      'VALIDATION',
      'A certificate needs at least one principal: an empty list would let it log in as any user.',
    );
  for (const p of spec.principals) {
    if (!PRINCIPAL_RE.test(p))
      throw new FluidError(
        'VALIDATION',
        `Invalid principal ${JSON.stringify(p)}: use 1-256 letters, digits and . _ @ + -.`,
      );
  }
  if (new Set(spec.principals).size !== spec.principals.length)
    throw new FluidError('VALIDATION', 'The principal list has duplicates.');
  if (!spec.keyId || spec.keyId.length > 512 || hasControlChars(spec.keyId))
    throw new FluidError('VALIDATION', 'The key id must be 1-512 printable characters.');
  if (spec.serial < 0n || spec.serial > U64_MAX)
    throw new FluidError('VALIDATION', 'The serial must fit in an unsigned 64-bit integer.');
  if (
    !Number.isSafeInteger(spec.validAfter) ||
    !Number.isSafeInteger(spec.validBefore) ||
    spec.validAfter < 0
  )
    throw new FluidError('VALIDATION', 'Validity bounds are whole Unix seconds.');
  if (spec.validBefore <= spec.validAfter)
    throw new FluidError('VALIDATION', 'valid-before must be later than valid-after.');
  for (const e of spec.extensions ?? []) {
    if (!(ALLOWED_EXTENSIONS as readonly string[]).includes(e))
      throw new FluidError(
        'VALIDATION',
        `The extension ${e} is not allowed: Fluid certificates grant at most ${ALLOWED_EXTENSIONS.join(', ')}.`,
      );
  }
  const opts = spec.criticalOptions ?? {};
  for (const name of Object.keys(opts)) {
    if (name !== 'source-address' && name !== 'force-command')
      throw new FluidError('VALIDATION', `Unknown critical option ${name}.`);
  }
  if (opts['source-address'] !== undefined) validateSourceAddress(opts['source-address']);
  if (opts['force-command'] !== undefined && (!opts['force-command'] || opts['force-command'].includes('\0')))
    throw new FluidError('VALIDATION', 'force-command must be a non-empty command without NUL bytes.');
  if (spec.nonce && spec.nonce.length < 16)
    throw new FluidError('VALIDATION', 'The nonce must be at least 16 bytes.');
}

/** sshd's source-address: comma-separated IPv4/IPv6 addresses or CIDR blocks. */
export function validateSourceAddress(v: string): void {
  const parts = v.split(',');
  for (const part of parts) {
    const [addr, bits, extra] = part.split('/');
    const family = isIP(addr ?? '');
    const okBits =
      bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!family || !okBits || extra !== undefined)
      throw new FluidError(
        'VALIDATION',
        `Invalid source-address ${JSON.stringify(v)}: use comma-separated IP addresses or CIDR blocks.`,
      );
  }
}

/** Options and extensions: sorted by name, each value a string (critical option values wrapped once more). */
function encodeOptions(entries: [string, string | null][]): Buffer {
  const w = new SshWriter();
  for (const [name, value] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    w.string(name);
    w.string(value === null ? Buffer.alloc(0) : new SshWriter().string(value).toBuffer());
  }
  return w.toBuffer();
}

/**
 * Sign a user certificate with an ed25519 CA key (a Node private KeyObject). Returns the certificate
 * blob; `formatKeyLine(ED25519_CERT, blob, comment)` gives the `-cert.pub` line.
 */
export function signUserCertificate(spec: UserCertificateSpec, caKey: KeyObject): Buffer {
  validateSpec(spec);
  if (caKey.type !== 'private' || caKey.asymmetricKeyType !== 'ed25519')
    throw new FluidError('VALIDATION', 'The CA key must be an ed25519 private key.');
  const caBlob = ed25519Blob(ed25519RawFromKeyObject(caKey));
  const principals = new SshWriter();
  for (const p of spec.principals) principals.string(p);
  const critical = Object.entries(spec.criticalOptions ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, v as string] as [string, string]);
  const extensions = [...new Set(spec.extensions ?? [])].map((e) => [e, null] as [string, null]);

  const body = new SshWriter()
    .string(ED25519_CERT)
    .string(spec.nonce ?? randomBytes(32))
    .string(spec.publicKey)
    .u64(spec.serial)
    .u32(SSH_CERT_TYPE_USER)
    .string(spec.keyId)
    .string(principals.toBuffer())
    .u64(BigInt(spec.validAfter))
    .u64(BigInt(spec.validBefore))
    .string(encodeOptions(critical))
    .string(encodeOptions(extensions))
    .string('') // reserved
    .string(caBlob)
    .toBuffer();
  const sig = sign(null, body, caKey);
  const sigBlob = new SshWriter().string(ED25519).string(sig).toBuffer();
  return new SshWriter().raw(body).string(sigBlob).toBuffer();
}

function decodeOptions(buf: Buffer, what: string, wrapped: boolean): Record<string, string> {
  const r = new SshReader(buf, what);
  const out: Record<string, string> = {};
  while (r.remaining > 0) {
    const name = r.text();
    const data = r.string();
    if (!wrapped || data.length === 0) out[name] = data.toString('utf8');
    else {
      const inner = new SshReader(data, what);
      out[name] = inner.text();
      inner.end();
    }
  }
  return out;
}

/** Parse an ed25519 user certificate (blob or `-cert.pub` line). Does not check the signature. */
export function parseCertificate(input: Buffer | string): ParsedCertificate {
  const blob = typeof input === 'string' ? parseKeyLine(input).blob : input;
  const r = new SshReader(blob, 'certificate');
  const type = r.text();
  if (type !== ED25519_CERT)
    throw new FluidError('VALIDATION', `Only ${ED25519_CERT} certificates are supported, not ${type}.`);
  const nonce = r.string();
  const publicKey = r.string();
  const serial = r.u64();
  const certType = r.u32();
  const keyId = r.text();
  const principals = readStrings(r.string(), 'principals');
  const validAfter = r.u64();
  const validBefore = r.u64();
  const criticalOptions = decodeOptions(r.string(), 'critical options', true);
  const extensions = decodeOptions(r.string(), 'extensions', true);
  r.string(); // reserved
  const signatureKey = r.string();
  const signedBody = blob.subarray(0, r.position);
  const sigR = new SshReader(r.string(), 'certificate signature');
  r.end();
  const signatureAlgorithm = sigR.text();
  const signature = sigR.string();
  sigR.end();
  return {
    type,
    nonce,
    publicKey,
    serial,
    certType,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    signatureAlgorithm,
    signature,
    signedBody,
  };
}

/** True when the certificate's signature verifies against the CA key it names. */
export function verifyCertificateSignature(cert: ParsedCertificate): boolean {
  if (cert.signatureAlgorithm !== ED25519) return false;
  const raw = ed25519RawFromBlob(cert.signatureKey);
  const pub = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
  return verify(null, cert.signedBody, pub, cert.signature);
}
