/**
 * A minimal, order-preserving XML tree for editing libvirt documents: parse, find, change, build.
 * Built on fast-xml-parser's preserveOrder mode so comments, order and unknown elements survive.
 */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';

export type XNode = Record<string, unknown>;

const OPTS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  commentPropName: '#comment',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
} as const;

const parser = new XMLParser(OPTS);
const builder = new XMLBuilder({ ...OPTS, format: true, suppressEmptyNode: true, indentBy: '  ' });

export function parseXml(xml: string): XNode[] {
  return parser.parse(xml) as XNode[];
}

export function buildXml(nodes: XNode[]): string {
  return (builder.build(nodes) as string).trim() + '\n';
}

export function tagOf(n: XNode): string {
  for (const k of Object.keys(n)) if (k !== ':@') return k;
  return '';
}

export function kids(n: XNode): XNode[] {
  const t = tagOf(n);
  const c = n[t];
  return Array.isArray(c) ? (c as XNode[]) : [];
}

export function attrs(n: XNode): Record<string, string> {
  return (n[':@'] as Record<string, string> | undefined) ?? {};
}

export function attr(n: XNode | undefined, name: string): string | undefined {
  return n ? attrs(n)[name] : undefined;
}

export function setAttr(n: XNode, name: string, value: string | null): void {
  const a = { ...attrs(n) };
  if (value === null) delete a[name];
  else a[name] = value;
  if (Object.keys(a).length) n[':@'] = a;
  else delete n[':@'];
}

export function child(n: XNode, tag: string): XNode | undefined {
  return kids(n).find((c) => tagOf(c) === tag);
}

export function children(n: XNode, tag: string): XNode[] {
  return kids(n).filter((c) => tagOf(c) === tag);
}

export function text(n: XNode | undefined): string {
  if (!n) return '';
  return kids(n)
    .map((c) => (typeof c['#text'] === 'string' || typeof c['#text'] === 'number' ? String(c['#text']) : ''))
    .join('');
}

export function el(
  tag: string,
  attributes: Record<string, string> = {},
  content: XNode[] | string = [],
): XNode {
  const node: XNode = { [tag]: typeof content === 'string' ? [{ '#text': content }] : content };
  if (Object.keys(attributes).length) node[':@'] = attributes;
  return node;
}

/** Remove the children of n for which pred is true; returns what was removed. */
export function removeWhere(n: XNode, pred: (c: XNode) => boolean): XNode[] {
  const t = tagOf(n);
  const all = kids(n);
  const removed = all.filter(pred);
  n[t] = all.filter((c) => !pred(c));
  return removed;
}

export function append(n: XNode, c: XNode): void {
  const t = tagOf(n);
  n[t] = [...kids(n), c];
}

/** Replace the first child with this tag, or append it. */
export function upsert(n: XNode, c: XNode): void {
  const t = tagOf(c);
  const all = kids(n);
  const i = all.findIndex((x) => tagOf(x) === t);
  if (i >= 0) all[i] = c;
  else all.push(c);
  n[tagOf(n)] = all;
}

export function setText(n: XNode, value: string): void {
  n[tagOf(n)] = [{ '#text': value }];
}

/** The document's root element (skipping a leading <?xml?> declaration or comments). */
export function root(doc: XNode[]): XNode {
  const r = doc.find((n) => {
    const t = tagOf(n);
    return t && !t.startsWith('?') && t !== '#comment' && t !== '#text';
  });
  if (!r) throw new Error('empty XML document');
  return r;
}
