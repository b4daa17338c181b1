/**
 * Fluid's SSH certificate authority. Sandboxes trust its public key (TrustedUserCAKeys); agents get
 * short-lived user certificates for ephemeral keys (keys.ts), one per connection. The CA private key lives in
 * the SecretStore (PKCS#8 PEM); each issued certificate is recorded in ssh_certificates, whose row id
 * is the serial.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { FluidError } from '../../shared/errors.ts';
import { systemClock, type Clock } from '../platform/clock.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { Db } from '../store/db.ts';
import { fingerprintOf } from '../hosts/ssh.ts';
import { generateEd25519KeyPair } from './keys.ts';
import {
  ED25519,
  ED25519_CERT,
  ed25519Blob,
  ed25519RawFromKeyObject,
  formatKeyLine,
  signUserCertificate,
  validateSourceAddress,
  type CertExtension,
  type CriticalOptions,
} from './cert.ts';

/** The SecretStore entry holding the CA private key. */
export const CA_SECRET_NAME = 'ssh-ca/ed25519';
export const CA_COMMENT = 'fluid-ca';
/** Certificates are backdated by this much so that a guest clock slightly behind still accepts them. */
export const CLOCK_SKEW_SECONDS = 60;

export interface ValidityLimits {
  minSeconds: number;
  maxSeconds: number;
}
/** Production limits: 1 to 10 minutes. */
export const DEFAULT_VALIDITY: ValidityLimits = { minSeconds: 60, maxSeconds: 600 };

export interface SshCaOptions {
  secrets: SecretStore;
  db: Db;
  clock?: Clock;
  /** Only tests lower the floor (to watch certificates expire); production keeps the default. */
  validity?: ValidityLimits;
}

export interface IssueRequest {
  /** Users the certificate may log in as (sshd checks them against the guest's principals). */
  principals: string[];
  validitySeconds: number;
  keyId: string;
  /** Why it was issued, e.g. 'guest-exec' or 'guest-shell'. */
  purpose: string;
  sandboxId?: string;
  /** Restrict use to these addresses (sshd's source-address critical option). */
  sourceAddress?: string;
  /** Grant permit-pty (interactive shells). Off unless asked for. */
  permitPty?: boolean;
}

export interface IssuedCertificate {
  /** The `ssh-ed25519-cert-v01@openssh.com AAAA… <keyId>` line. */
  certificate: string;
  /** The ephemeral private key, OpenSSH PEM (what ssh2 and ssh read). */
  privateKey: string;
  /** The ephemeral public key line. */
  publicKey: string;
  serial: number;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
}

interface CaKey {
  key: KeyObject;
  blob: Buffer;
  fingerprint: string;
}

export class SshCa {
  private readonly secrets: SecretStore;
  private readonly db: Db;
  private readonly clock: Clock;
  private readonly limits: ValidityLimits;
  private ca: CaKey | null = null;

  constructor(opts: SshCaOptions) {
    this.secrets = opts.secrets;
    this.db = opts.db;
    this.clock = opts.clock ?? systemClock;
    this.limits = opts.validity ?? DEFAULT_VALIDITY;
    if (
      !Number.isInteger(this.limits.minSeconds) ||
      this.limits.minSeconds < 1 ||
      this.limits.maxSeconds < this.limits.minSeconds
    )
      throw new FluidError('VALIDATION', 'Invalid certificate validity limits.');
  }

  /** Load the CA key, creating and storing it on first use. */
  private caKey(): CaKey {
    if (this.ca) return this.ca;
    let pem = this.secrets.get(CA_SECRET_NAME);
    if (!pem) {
      const { privateKey } = generateKeyPairSync('ed25519');
      pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      this.secrets.set(CA_SECRET_NAME, pem);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (e) {
      throw new FluidError(
        'INTERNAL',
        `The SSH CA key in the secret store (${CA_SECRET_NAME}) is unreadable: ${(e as Error).message}. Restore it from a backup; a new CA key would have to be trusted by every sandbox image again.`,
      );
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new FluidError(
        'INTERNAL',
        `The SSH CA key in the secret store (${CA_SECRET_NAME}) is ${key.asymmetricKeyType}, not ed25519.`,
      );
    const blob = ed25519Blob(ed25519RawFromKeyObject(key));
    this.ca = { key, blob, fingerprint: fingerprintOf(blob) };
    return this.ca;
  }

  /** The `ssh-ed25519 AAAA… fluid-ca` line guests put in TrustedUserCAKeys. Not secret. */
  publicKey(): string {
    return formatKeyLine(ED25519, this.caKey().blob, CA_COMMENT);
  }

  /** SHA256 fingerprint of the CA public key. */
  fingerprint(): string {
    return this.caKey().fingerprint;
  }

  issue(req: IssueRequest): IssuedCertificate {
    const { minSeconds, maxSeconds } = this.limits;
    if (
      !Number.isInteger(req.validitySeconds) ||
      req.validitySeconds < minSeconds ||
      req.validitySeconds > maxSeconds
    )
      throw new FluidError(
        'VALIDATION',
        `Certificate validity must be a whole number of seconds from ${minSeconds} to ${maxSeconds}; got ${req.validitySeconds}.`,
      );
    if (!req.purpose || req.purpose.length > 64)
      throw new FluidError('VALIDATION', 'The certificate purpose must be 1-64 characters.');
    if (req.sourceAddress !== undefined) validateSourceAddress(req.sourceAddress);
    const ca = this.caKey();
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const validAfter = now - CLOCK_SKEW_SECONDS;
    const validBefore = now + req.validitySeconds;
    const extensions: CertExtension[] = req.permitPty ? ['permit-pty'] : [];
    const criticalOptions: CriticalOptions = req.sourceAddress ? { 'source-address': req.sourceAddress } : {};

    const pair = generateEd25519KeyPair(req.keyId.replace(/\s+/g, '_'));
    const userBlob = ed25519Blob(pair.raw);

    return this.db.transaction((): IssuedCertificate => {
      const info = this.db
        .prepare(
          `INSERT INTO ssh_certificates (ca_fingerprint, key_fingerprint, key_id, principals, purpose,
             sandbox_id, source_address, extensions, valid_after, valid_before, issued_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          ca.fingerprint,
          fingerprintOf(userBlob),
          req.keyId,
          JSON.stringify(req.principals),
          req.purpose,
          req.sandboxId ?? null,
          req.sourceAddress ?? null,
          JSON.stringify(extensions),
          validAfter,
          validBefore,
          this.clock.now().toISOString(),
        );
      const serial = Number(info.lastInsertRowid);
      const blob = signUserCertificate(
        {
          publicKey: pair.raw,
          serial: BigInt(serial),
          keyId: req.keyId,
          principals: req.principals,
          validAfter,
          validBefore,
          criticalOptions,
          extensions,
        },
        ca.key,
      );
      return {
        certificate: formatKeyLine(ED25519_CERT, blob, req.keyId.replace(/\s+/g, '_')),
        privateKey: pair.privateKey,
        publicKey: pair.publicKey,
        serial,
        keyId: req.keyId,
        principals: [...req.principals],
        validAfter: new Date(validAfter * 1000),
        validBefore: new Date(validBefore * 1000),
      };
    })();
  }
}
