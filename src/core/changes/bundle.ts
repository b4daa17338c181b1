/**
 * The bundle: one immutable, content-addressed description of a change. Its identity is the sha256
 * of its canonical JSON (sorted keys, no whitespace), which is also what the approval names: the
 * approval service hashes the subject the same way, so `approval.subjectHash === change.sha256`.
 *
 * Secrets are carried by reference (the secret-store entry) with an HMAC-SHA256 of the value under a
 * key only this installation holds: a changed value makes a different bundle, and the bundle never
 * reveals a value (a plain hash of a short password could be guessed).
 *
 * `verifyBundle` re-derives everything the bundle claims from what would run: the playbook bytes
 * against their hashes and the revision manifest, the shipped files' bytes, the secret values'
 * digests. Anything that does not match refuses the apply.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ChangeBundleSchema, type ChangeBundle } from '../../shared/contract/changes.ts';
import { revisionManifest, type SecretVar } from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import type { SecretStore } from '../platform/secrets.ts';
import { secretEntry } from '../playbooks/secrets.ts';
import type { PlaybookStore } from '../playbooks/store.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';

/** The secret-store entry of the key secret digests are made with. */
export const DIGEST_KEY_ENTRY = 'changes/secret-digest-key';

export function digestKey(secrets: SecretStore): string {
  let k = secrets.get(DIGEST_KEY_ENTRY);
  if (!k) {
    k = randomBytes(32).toString('hex');
    secrets.set(DIGEST_KEY_ENTRY, k);
  }
  return k;
}

export function secretDigest(key: string, name: string, value: string): string {
  return createHmac('sha256', key).update(`${name}\0${value}`).digest('hex');
}

/** References and digests of a revision's secrets; throws when Fluid does not hold a value. */
export function secretRefs(
  secrets: SecretStore,
  playbookId: string,
  vars: readonly SecretVar[],
): { refs: ChangeBundle['vars']['secrets']; values: Map<string, string> } {
  const key = digestKey(secrets);
  const values = new Map<string, string>();
  const missing: string[] = [];
  const refs = vars.map((v) => {
    const ref = secretEntry(playbookId, v.name);
    const value = secrets.get(ref);
    if (value === null || value === undefined) missing.push(`${v.name} (${v.description})`);
    else values.set(v.name, value);
    return { name: v.name, ref, digest: value === null ? '' : secretDigest(key, v.name, value) };
  });
  if (missing.length)
    throw new FluidError(
      'CONFLICT',
      `Fluid does not hold the values of ${missing.join('; ')}, which the playbook needs. Supply them, then submit again.`,
    );
  return { refs, values };
}

/** The canonical JSON of a bundle and its sha256 (validated against the schema first). */
export function seal(bundle: ChangeBundle): { json: string; sha256: string } {
  const ok = ChangeBundleSchema.safeParse(bundle);
  if (!ok.success)
    throw new FluidError('INTERNAL', `The change bundle is not well formed: ${ok.error.message}`);
  const json = canonicalJson(ok.data);
  return { json, sha256: sha256Hex(json) };
}

/** Parse a stored bundle and check that its bytes still hash to its identity. */
export function openSealed(json: string, sha256: string): ChangeBundle {
  if (sha256Hex(json) !== sha256)
    throw new FluidError(
      'CONFLICT',
      `The stored bundle no longer hashes to ${sha256}: the database was edited. Nothing was applied.`,
      { reason: 'INTEGRITY' },
    );
  const parsed = ChangeBundleSchema.safeParse(JSON.parse(json));
  if (!parsed.success || canonicalJson(parsed.data) !== json)
    throw new FluidError('CONFLICT', 'The stored bundle is not in canonical form. Nothing was applied.', {
      reason: 'INTEGRITY',
    });
  return parsed.data;
}

/**
 * What will run, re-derived and checked against the bundle: playbook.yml's bytes, each shipped file's
 * bytes (from the content-addressed store, which checks them too), the revision manifest's hash, and
 * the digests of the secret values Fluid holds now.
 */
export function verifyBundle(
  b: ChangeBundle,
  store: PlaybookStore,
  secrets: SecretStore,
): { files: Map<string, Buffer>; values: Map<string, string> } {
  const refuse = (message: string) =>
    new FluidError('CONFLICT', `${message} Nothing was applied.`, { reason: 'INTEGRITY' });
  if (sha256Hex(b.playbook.yaml) !== b.playbook.yamlSha256)
    throw refuse('The playbook text in the bundle does not hash to its recorded sha256.');
  if (sha256Hex(revisionManifest(b.playbook.yamlSha256, b.playbook.files)) !== b.playbook.sha256)
    throw refuse('The bundle’s files do not make up the approved revision.');
  const files = new Map<string, Buffer>();
  for (const f of b.playbook.files) {
    let bytes: Buffer;
    try {
      bytes = store.blob(f.sha256);
    } catch (e) {
      throw refuse(`The shipped file ${f.path} cannot be read as approved (${(e as Error).message}).`);
    }
    if (sha256Hex(bytes) !== f.sha256) throw refuse(`The shipped file ${f.path} changed.`);
    files.set(f.path, bytes);
  }
  const key = digestKey(secrets);
  const values = new Map<string, string>();
  for (const s of b.vars.secrets) {
    const v = secrets.get(s.ref);
    if (v === null || v === undefined) throw refuse(`Fluid no longer holds the value of ${s.name}.`);
    if (secretDigest(key, s.name, v) !== s.digest)
      throw refuse(`The value of ${s.name} changed since the change was submitted.`);
    values.set(s.name, v);
  }
  return { files, values };
}
