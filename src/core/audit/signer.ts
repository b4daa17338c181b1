/**
 * The audit signing key: ed25519, private half in the secret store (the OS keychain in the app), created
 * on first use. Its public half is also recorded in the database (meta `audit.key`) when it is created,
 * so that a key that goes missing is reported instead of silently replaced: a new key would let
 * whoever replaced it re-sign a rewritten log.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { SecretStore } from '../platform/secrets.ts';
import type { Db } from '../store/db.ts';
import {
  keyFingerprint,
  rawPublicKey,
  signCheckpoint,
  type Checkpoint,
  type CheckpointBody,
} from './checkpoint.ts';

/** The secret store entry holding the private key (PKCS#8 PEM). */
export const AUDIT_KEY_SECRET = 'audit/ed25519';
/** The meta row holding the public key (raw, base64) of the key this database was signed with. */
export const AUDIT_KEY_META = 'audit.key';

const RETRY_MS = 30_000;

export interface SignerState {
  /** The public key (raw base64) of the usable key, or the recorded one when the key is unusable. */
  publicKey: string | null;
  fingerprint: string | null;
  /** Why checkpoints cannot be signed, or null. */
  problem: string | null;
}

export class AuditSigner {
  private readonly secrets: SecretStore;
  private readonly db: Db;
  private loaded: { key: KeyObject; publicKey: string } | null = null;
  private failure: string | null = null;
  private failedAt = 0;

  constructor(secrets: SecretStore, db: Db) {
    this.secrets = secrets;
    this.db = db;
  }

  /** The public key this database recorded when its key was created. */
  recordedKey(): string | null {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(AUDIT_KEY_META) as
      { value: string } | undefined;
    return r?.value ?? null;
  }

  /**
   * Load the key, creating it when neither the secret store nor the database knows one. Call it inside
   * a write transaction when `create` is set: the database lock keeps two processes from both creating one.
   */
  private load(create: boolean): { key: KeyObject; publicKey: string } | null {
    if (this.loaded) return this.loaded;
    let pem: string | null;
    try {
      pem = this.secrets.get(AUDIT_KEY_SECRET);
    } catch (err) {
      this.failure = `The secret store (${this.secrets.kind}) could not be read: ${(err as Error).message}`;
      return null;
    }
    const recorded = this.recordedKey();
    if (!pem) {
      if (recorded) {
        this.failure = `The audit signing key ${keyFingerprint(recorded)} is not in the secret store (${this.secrets.kind}): checkpoints cannot be signed. Restore the secret store (${AUDIT_KEY_SECRET}) from a backup.`;
        return null;
      }
      if (!create) return null;
      const { privateKey } = generateKeyPairSync('ed25519');
      pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      this.secrets.set(AUDIT_KEY_SECRET, pem);
      this.db
        .prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)')
        .run(AUDIT_KEY_META, rawPublicKey(privateKey));
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`it is an ${key.asymmetricKeyType} key`);
    } catch (err) {
      this.failure = `The audit signing key in the secret store (${this.secrets.kind}, ${AUDIT_KEY_SECRET}) is unreadable: ${(err as Error).message}. Checkpoints cannot be signed until it is restored.`;
      return null;
    }
    const publicKey = rawPublicKey(key);
    if (recorded && recorded !== publicKey) {
      this.failure = `The secret store holds audit key ${keyFingerprint(publicKey)}, but this database was signed with ${keyFingerprint(recorded)}: the key was replaced. Checkpoints are not signed with it.`;
      return null;
    }
    if (!recorded)
      this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(AUDIT_KEY_META, publicKey);
    this.failure = null;
    this.loaded = { key, publicKey };
    return this.loaded;
  }

  /** Sign a checkpoint (inside the write transaction that cuts it), or null with `state().problem` set. */
  sign(body: CheckpointBody): Checkpoint | null {
    // A key that failed to load is retried at most every RETRY_MS, not on every append.
    if (!this.loaded && this.failure && Date.now() - this.failedAt < RETRY_MS) return null;
    const k = this.load(true);
    if (!k) this.failedAt = Date.now();
    return k ? signCheckpoint(body, k.key, k.publicKey) : null;
  }

  /** The key as verify reports it. Never creates one. */
  state(): SignerState {
    const k = this.load(false);
    const publicKey = k?.publicKey ?? this.recordedKey();
    return {
      publicKey,
      fingerprint: publicKey ? keyFingerprint(publicKey) : null,
      problem: k ? null : this.failure,
    };
  }
}
