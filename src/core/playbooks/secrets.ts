/**
 * Secrets in a generated playbook: never in plain text. A value found in a changed file (a password
 * assignment, a token, a private key: the same finders that redact what models see) or a password
 * hash from the shadow file becomes a variable the person supplies at apply time, read from
 * vars/secrets.yml, and the task that uses it gets `no_log: true`. The values Fluid saw in the
 * sandbox are kept in its secret store (never in a revision), so that verification can replay the
 * change and an export can write them into an ansible-vault file when the person gives a password.
 */
import type { SecretVar } from '../../shared/contract/playbooks.ts';
import { findSecrets, type SecretKind } from '../agent/redact.ts';
import type { SecretStore } from '../platform/secrets.ts';

/** The secret-store entry holding a playbook's variable. */
export const secretEntry = (playbookId: string, name: string) => `playbooks/${playbookId}/${name}`;

export function varSlug(s: string): string {
  const slug = s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  return /^[a-z]/.test(slug) ? slug : `v_${slug}`;
}

/** Gives out unique variable names. */
export class VarNames {
  private readonly used = new Set<string>();
  take(base: string): string {
    let name = varSlug(base);
    for (let n = 2; this.used.has(name); n++) name = `${varSlug(base)}_${n}`;
    this.used.add(name);
    return name;
  }
}

export interface SecretSpan {
  start: number;
  end: number;
  kind: SecretKind;
  value: string;
}

/** Secret values in a text file's content, in order, without overlaps. */
export function secretsIn(text: string): SecretSpan[] {
  return findSecrets(text).map((s) => ({ ...s, value: text.slice(s.start, s.end) }));
}

export interface HeldSecret extends SecretVar {
  value: string;
}

/** Store the values a generation found (one entry per variable) and return the public list. */
export function holdSecrets(store: SecretStore, playbookId: string, found: HeldSecret[]): SecretVar[] {
  for (const s of found) store.set(secretEntry(playbookId, s.name), s.value);
  return found.map(({ name, description }) => ({ name, description, held: true }));
}

/** The values Fluid holds for a revision's variables (missing ones are absent). */
export function heldValues(
  store: SecretStore,
  playbookId: string,
  vars: readonly SecretVar[],
): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of vars) {
    const value = store.get(secretEntry(playbookId, v.name));
    if (value !== null && value !== undefined) out.set(v.name, value);
  }
  return out;
}

/** vars/secrets.yml for the person to fill in (no values), with what each one is. */
export function secretsTemplate(vars: readonly SecretVar[]): string {
  const lines = [
    '# Secrets this playbook needs. Fill in each value, then encrypt the file:',
    '#   ansible-vault encrypt vars/secrets.yml',
    '# and run the playbook with --ask-vault-pass (or --vault-password-file).',
    '',
  ];
  for (const v of vars) {
    lines.push(`# ${v.description}`);
    lines.push(`${v.name}: ''`);
  }
  if (!vars.length) lines.push('{}');
  return lines.join('\n') + '\n';
}

/** YAML for vars/secrets.yml with values (only ever written encrypted, or in a private temp dir). */
export function secretsYaml(values: ReadonlyMap<string, string>): string {
  if (!values.size) return '{}\n';
  return [...values].map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n';
}
