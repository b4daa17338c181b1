/**
 * Revisions: what a save produces and how revisions are read and compared.
 *
 * A revision is the exact YAML bytes plus the files it ships (content-addressed blobs). Its sha256
 * is the SHA-256 of the manifest listing the SHA-256 of playbook.yml and of each shipped file
 * (revisionManifest in the contract), so the one hash covers everything an apply uses. Nothing in a
 * revision is rewritten on read: what was hashed is what is returned, byte for byte.
 */
import { isMap, isScalar, isSeq, visit, type Document, type Node } from 'yaml';
import {
  revisionManifest,
  BUNDLE_PATH_RE,
  type Diagnostic,
  type Revision,
  type RevisionSummary,
  type SecretVar,
  type ShippedFile,
} from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import { findSecrets } from '../agent/redact.ts';
import { structureDiagnostics } from './model.ts';
import { safetyDiagnostics } from './safety.ts';
import { sha256Hex, type PlaybookStore, type RevisionRow } from './store.ts';
import { unifiedDiff } from './textdiff.ts';
import { diagnosticAt, parseYaml, yamlDiagnostics } from './yaml.ts';

export const MAX_YAML_BYTES = 4 * 1024 * 1024;
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Whether bytes are UTF-8 text without NULs (shown in the editor; otherwise binary). */
export function isText(b: Buffer): boolean {
  if (b.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

export function checkBundlePath(path: string): void {
  if (!BUNDLE_PATH_RE.test(path) || path.split('/').some((c) => c === '.' || c === '..'))
    throw new FluidError(
      'VALIDATION',
      `"${path}" cannot be shipped: files live under files/ or templates/ in plain path components (letters, digits, . _ + @ = , -), never "..".`,
    );
}

export interface Hashed {
  yamlSha256: string;
  sha256: string;
  files: ShippedFile[];
  blobs: Map<string, Buffer>;
}

/** Hash a revision's content: the YAML bytes and every shipped file. */
export function hashRevision(yaml: string, files: ReadonlyMap<string, Buffer>): Hashed {
  const yamlBytes = Buffer.from(yaml, 'utf8');
  if (yamlBytes.length > MAX_YAML_BYTES)
    throw new FluidError(
      'VALIDATION',
      `The playbook is ${yamlBytes.length} bytes; the limit is ${MAX_YAML_BYTES}.`,
    );
  const yamlSha256 = sha256Hex(yamlBytes);
  const shipped: ShippedFile[] = [];
  const blobs = new Map<string, Buffer>();
  for (const [path, content] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    checkBundlePath(path);
    if (content.length > MAX_FILE_BYTES)
      throw new FluidError(
        'VALIDATION',
        `${path} is ${content.length} bytes; shipped files are at most ${MAX_FILE_BYTES}.`,
      );
    const sha = sha256Hex(content);
    shipped.push({ path, sha256: sha, size: content.length, text: isText(content) });
    blobs.set(sha, content);
  }
  return { yamlSha256, sha256: sha256Hex(revisionManifest(yamlSha256, shipped)), files: shipped, blobs };
}

/** The files of a revision, read back from their blobs (each checked against its hash). */
export function revisionFiles(store: PlaybookStore, row: RevisionRow): Map<string, Buffer> {
  const files = JSON.parse(row.files) as ShippedFile[];
  return new Map(files.map((f) => [f.path, store.blob(f.sha256)]));
}

/** Re-check a stored revision's hashes (before anything runs it). */
export function checkIntegrity(store: PlaybookStore, row: RevisionRow): Map<string, Buffer> {
  const files = revisionFiles(store, row);
  const h = hashRevision(row.yaml, files);
  if (h.yamlSha256 !== row.yaml_sha256 || h.sha256 !== row.sha256)
    throw new FluidError(
      'INTERNAL',
      `Revision ${row.number} no longer matches its sha256 (${row.sha256.slice(0, 16)}…): the database was edited. Nothing was run.`,
    );
  return files;
}

// ---- diagnostics ----------------------------------------------------------------------------------

/** Everything Fluid says about a playbook text: YAML 1.1 syntax, structure, safety, readings. */
export function diagnose(text: string, files: ReadonlyMap<string, string | null> = new Map()): Diagnostic[] {
  const doc = parseYaml(text);
  const out = yamlDiagnostics(text, doc);
  if (out.some((d) => d.severity === 'error')) return out;
  out.push(...structureDiagnostics(text, doc));
  out.push(...safetyDiagnostics(text, doc, { files }));
  out.push(...readingDiagnostics(text, doc));
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Module parameters whose names say "password" but whose values are not secrets. */
const NOT_SECRET_PARAMS = /^(update_password|password_lock|password_expire_\w+|return_content|no_log)$/;

/** Values YAML 1.1 (Ansible) reads differently from what they look like, and secrets in plain text. */
function readingDiagnostics(text: string, doc: Document.Parsed): Diagnostic[] {
  const out: Diagnostic[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key)) return;
      const key = String(pair.key.value);
      const v = pair.value as Node | null;
      if (key === 'mode' && isScalar(v) && typeof v.value === 'number') {
        const src = (v as { source?: string }).source ?? String(v.value);
        const decimal = !/^0/.test(src);
        out.push(
          diagnosticAt(
            text,
            v.range ?? undefined,
            'warning',
            'yaml',
            decimal
              ? `mode ${src} is read as the decimal number ${v.value} (octal ${Number(v.value).toString(8)}); quote it: '0${src}'.`
              : `mode ${src} is an octal number only because YAML 1.1 says so; quote it: '${src}'.`,
          ),
        );
      }
      if (isScalar(v) && typeof v.value === 'string' && v.tag !== '!vault' && !NOT_SECRET_PARAMS.test(key)) {
        // Variables ({{ name }}) are how secrets should appear: only literal values count.
        const literal = v.value.replace(/\{\{[\s\S]*?\}\}/g, '');
        const spans = findSecrets(`${key}: ${literal}`);
        if (spans.some((s) => s.start >= key.length + 2 || s.kind === 'private-key'))
          out.push(
            diagnosticAt(
              text,
              v.range ?? undefined,
              'warning',
              'safety',
              'This looks like a secret in plain text: use a variable the person supplies (vars/secrets.yml).',
            ),
          );
      }
    },
  });
  return out;
}

// ---- reading ----------------------------------------------------------------------------------------

const actorOf = (door: string, id: string): Actor => ({ door: door as Actor['door'], id });

export function summaryOf(r: RevisionRow): RevisionSummary {
  return {
    id: r.id,
    playbookId: r.playbook_id,
    number: r.number,
    sha256: r.sha256,
    yamlSha256: r.yaml_sha256,
    createdAt: r.created_at,
    author: actorOf(r.author_door, r.author_id),
    origin: r.origin,
    message: r.message,
    files: JSON.parse(r.files) as ShippedFile[],
    secrets: JSON.parse(r.secrets) as SecretVar[],
  };
}

export function revisionOf(r: RevisionRow): Revision {
  return {
    ...summaryOf(r),
    yaml: r.yaml,
    generation: r.generation ? (JSON.parse(r.generation) as Revision['generation']) : null,
  };
}

/** Unified diff of two revisions (playbook.yml, then each shipped text file). */
export function diffRevisions(store: PlaybookStore, a: RevisionRow, b: RevisionRow) {
  const parts: string[] = [];
  const ya = unifiedDiff(
    a.yaml,
    b.yaml,
    `a/playbook.yml (revision ${a.number})`,
    `b/playbook.yml (revision ${b.number})`,
  );
  if (ya) parts.push(ya);
  const fa = new Map((JSON.parse(a.files) as ShippedFile[]).map((f) => [f.path, f]));
  const fb = new Map((JSON.parse(b.files) as ShippedFile[]).map((f) => [f.path, f]));
  const files: Array<{ path: string; change: 'added' | 'removed' | 'modified' | 'unchanged' }> = [];
  for (const path of [...new Set([...fa.keys(), ...fb.keys()])].sort()) {
    const x = fa.get(path);
    const y = fb.get(path);
    const change = !x ? 'added' : !y ? 'removed' : x.sha256 === y.sha256 ? 'unchanged' : 'modified';
    files.push({ path, change });
    if (change === 'unchanged') continue;
    const text = (f: ShippedFile | undefined) =>
      f
        ? f.text
          ? store.blob(f.sha256).toString('utf8')
          : `(binary, ${f.size} bytes, sha256 ${f.sha256})\n`
        : '';
    const d = unifiedDiff(text(x), text(y), x ? `a/${path}` : '/dev/null', y ? `b/${path}` : '/dev/null');
    if (d) parts.push(d);
  }
  return { diff: parts.join(''), files };
}

/** A stable fingerprint of a task's content (to recognise tasks Fluid generated, unedited). */
export function taskFingerprint(task: unknown): string {
  return sha256Hex(JSON.stringify(canonical(task)));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** Variables a YAML text references (to keep the secrets list of a revision honest after an edit). */
export function referencedVariables(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/\{\{\s*([a-z_][a-z0-9_]*)/g)) out.add(m[1]!);
  return out;
}

export const isMapNode = isMap;
export const isSeqNode = isSeq;
