/**
 * YAML as Ansible reads it, and rendered the way Fluid writes it.
 *
 * Ansible reads playbooks with PyYAML, a YAML 1.1 parser: `yes`/`no`/`on`/`off` are booleans and
 * `0644` is an octal integer. Documents are therefore parsed and rendered with the yaml library in
 * its 1.1 mode, so a value means here what it means to Ansible, and every string that 1.1 would read
 * as something else ('0644', 'yes', '1e3', '12:30') is quoted when rendered. Edits go through the
 * parsed Document, which keeps comments, key order and untouched formatting across revisions.
 *
 * Two Ansible tags are understood: `!unsafe` (a string Ansible never templates) and `!vault` (an
 * inline ansible-vault value); both stay strings here, and the node keeps its tag.
 */
import {
  Document,
  isScalar,
  parseDocument,
  Scalar,
  type DocumentOptions,
  type ParseOptions,
  type SchemaOptions,
  type ToStringOptions,
} from 'yaml';
import type { Diagnostic } from '../../shared/contract/playbooks.ts';

const passThrough = (tag: string) => ({
  tag,
  resolve: (value: string) => value,
  identify: () => false,
});

export const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  customTags: (tags) => [...tags, passThrough('!unsafe'), passThrough('!vault')],
  prettyErrors: true,
  uniqueKeys: true,
};

export const RENDER_OPTIONS: ToStringOptions = {
  lineWidth: 0,
  minContentWidth: 0,
  singleQuote: true,
  indentSeq: true,
  flowCollectionPadding: false,
};

export function parseYaml(text: string): Document.Parsed {
  return parseDocument(text, YAML_OPTIONS);
}

/** A new document from plain values (rendered with 1.1 quoting). */
export function newDocument(value: unknown): Document {
  return new Document(value, YAML_OPTIONS);
}

export function renderYaml(doc: Document): string {
  const out = doc.toString(RENDER_OPTIONS);
  return out.endsWith('\n') ? out : out + '\n';
}

/** A string node Ansible will not template (its content may contain "{{" literally). */
export function unsafeString(value: string): Scalar<string> {
  const s = new Scalar(value);
  s.tag = '!unsafe';
  return s;
}

/** The name of a mapping key: a scalar's value, a plain string key (from set()), or '' for anything else. */
export function keyName(pair: { key: unknown }): string {
  const k = pair.key;
  if (isScalar(k)) return String(k.value);
  return typeof k === 'string' || typeof k === 'number' ? String(k) : '';
}

/** The value of a scalar node, or undefined for anything else. */
export function scalarValue(node: unknown): unknown {
  return isScalar(node) ? node.value : undefined;
}

/** 1-based line/column of a character offset. */
export function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++)
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  return { line, column: end - last };
}

/** A diagnostic spanning [start, end) of the text. */
export function diagnosticAt(
  text: string,
  range: readonly number[] | null | undefined,
  severity: Diagnostic['severity'],
  source: Diagnostic['source'],
  message: string,
): Diagnostic {
  const s = range?.[0] ?? 0;
  const e = range?.[1] ?? s;
  const a = lineCol(text, s);
  const b = lineCol(text, Math.max(e, s + 1));
  return { severity, source, message, line: a.line, column: a.column, endLine: b.line, endColumn: b.column };
}

/** YAML syntax errors and warnings of a parsed document, as diagnostics. */
export function yamlDiagnostics(text: string, doc: Document.Parsed): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const e of doc.errors) out.push(diagnosticAt(text, e.pos, 'error', 'yaml', e.message.split('\n')[0]!));
  for (const w of doc.warnings)
    out.push(diagnosticAt(text, w.pos, 'warning', 'yaml', w.message.split('\n')[0]!));
  return out;
}
