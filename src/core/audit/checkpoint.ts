/**
 * Signed checkpoints of the audit chain, in the manner of Certificate Transparency's signed tree
 * heads: this installation's audit key (ed25519) signs (log id, checkpoint number, entry count, head
 * hash, time). Wherever a checkpoint is kept — beside the database, on a host, in an export — it pins
 * the chain up to its entry: rows removed or rewritten before it, even with every hash after them
 * recomputed, no longer match it, and a checkpoint that says otherwise needs the private key.
 *
 * One line of JSON per checkpoint, the same bytes in every copy (fixed key order, see toLine).
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export interface Checkpoint {
  /** Checkpoint number: 1, 2, 3, … without gaps. */
  n: number;
  /** The log it belongs to: the installation id. */
  log: string;
  /** Entries covered: 1..seq (the chain's last seq when it was cut). */
  seq: number;
  /** The hash of entry `seq`: the chain's head at that point. */
  head: string;
  ts: string;
  /** The signer's ed25519 public key, 32 raw bytes in base64. */
  key: string;
  /** ed25519 signature over checkpointMessage(), base64. */
  sig: string;
}

export type CheckpointBody = Omit<Checkpoint, 'key' | 'sig'>;

export const CHECKPOINT_FORMAT = 'fluid audit checkpoint v1';

/** The signed bytes: a small text note, so that a person can reproduce it with any ed25519 tool. */
export function checkpointMessage(c: CheckpointBody): Buffer {
  return Buffer.from(
    `${CHECKPOINT_FORMAT}\nlog ${c.log}\ncheckpoint ${c.n}\nsize ${c.seq}\nhead ${c.head}\ntime ${c.ts}\n`,
    'utf8',
  );
}

export function signCheckpoint(
  body: CheckpointBody,
  privateKey: KeyObject,
  publicKeyB64: string,
): Checkpoint {
  const sig = sign(null, checkpointMessage(body), privateKey).toString('base64');
  return { n: body.n, log: body.log, seq: body.seq, head: body.head, ts: body.ts, key: publicKeyB64, sig };
}

/** True when `c.sig` is a valid signature of c's fields by c.key. Says nothing about whose key it is. */
export function signatureValid(c: Checkpoint): boolean {
  try {
    return verify(null, checkpointMessage(c), publicKeyFromRaw(c.key), Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}

export function publicKeyFromRaw(rawB64: string): KeyObject {
  const raw = Buffer.from(rawB64, 'base64');
  if (raw.length !== 32) throw new Error('an ed25519 public key is 32 bytes long');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}

export function rawPublicKey(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}

/** The key as OpenSSH writes it (`ssh-ed25519 AAAA…`), so `ssh-keygen -lf` shows the same fingerprint. */
function sshBlob(rawB64: string): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const raw = Buffer.from(rawB64, 'base64');
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(type.length), type, len(raw.length), raw]);
}

export function keyFingerprint(rawB64: string): string {
  return 'SHA256:' + createHash('sha256').update(sshBlob(rawB64)).digest('base64').replace(/=+$/, '');
}

export function sshPublicKeyLine(rawB64: string, comment = 'fluid-audit'): string {
  return `ssh-ed25519 ${sshBlob(rawB64).toString('base64')} ${comment}`;
}

/** One line, fixed key order: every copy of a checkpoint is byte-identical. */
export function toLine(c: Checkpoint): string {
  return JSON.stringify({
    checkpoint: c.n,
    log: c.log,
    seq: c.seq,
    head: c.head,
    ts: c.ts,
    key: c.key,
    sig: c.sig,
  });
}

/** A checkpoint line, or why it is not one. */
export function parseLine(line: string): Checkpoint | { error: string } {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { error: 'not JSON' };
  }
  if (!o || typeof o !== 'object') return { error: 'not an object' };
  const { checkpoint: n, log, seq, head, ts, key, sig } = o;
  if (!Number.isSafeInteger(n) || (n as number) < 1) return { error: 'no checkpoint number' };
  if (typeof log !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(log)) return { error: 'bad log id' };
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) return { error: 'bad entry count' };
  if (typeof head !== 'string' || !/^[0-9a-f]{64}$/.test(head)) return { error: 'bad head hash' };
  if (typeof ts !== 'string' || Number.isNaN(Date.parse(ts)) || ts.includes('\n'))
    return { error: 'bad time' };
  if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 32) return { error: 'bad key' };
  if (typeof sig !== 'string' || Buffer.from(sig, 'base64').length !== 64) return { error: 'bad signature' };
  return { n: n as number, log, seq: seq as number, head, ts, key, sig };
}

export const isCheckpoint = (x: Checkpoint | { error: string }): x is Checkpoint => !('error' in x);

/** Read a checkpoint file's text: the checkpoints in order, and the lines that are not checkpoints. */
export function parseCheckpointText(text: string): {
  checkpoints: Checkpoint[];
  malformed: Array<{ line: number; error: string }>;
} {
  const checkpoints: Checkpoint[] = [];
  const malformed: Array<{ line: number; error: string }> = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const c = parseLine(line);
    if (isCheckpoint(c)) checkpoints.push(c);
    else malformed.push({ line: i + 1, error: c.error });
  });
  return { checkpoints, malformed };
}

/** Same checkpoint (every field, signature included). */
export const sameCheckpoint = (a: Checkpoint, b: Checkpoint): boolean => toLine(a) === toLine(b);

/** `#42 (seq 900, head ab12cd34…)`: how messages name a checkpoint. */
export const describeCheckpoint = (c: Pick<Checkpoint, 'n' | 'seq' | 'head'>): string =>
  `#${c.n} (seq ${c.seq}, head ${c.head.slice(0, 12)}…)`;
