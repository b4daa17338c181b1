/** Pure helpers of the Files tab: paths, modes, bytes, and edits kept while the user looks elsewhere. */
import type { DirEntry } from '../../../../../../shared/contract/sandboxes.ts';

/** Open as an editable text file up to this size; larger files show a read-only preview of the head. */
export const EDIT_MAX_BYTES = 2 * 1024 * 1024;
/** How much of a large file the preview shows. */
export const PREVIEW_BYTES = 256 * 1024;
/** The most a download or an upload moves (the backend's file limit). */
export const TRANSFER_MAX_BYTES = 64 * 1024 * 1024;

/** "/etc/nginx/" → "/etc/nginx"; "" → "/"; "a//b/." → "/a/b". */
export function normalizePath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (!seg || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
}

export function parentOf(p: string): string {
  const n = normalizePath(p);
  return n === '/' ? '/' : n.slice(0, n.lastIndexOf('/')) || '/';
}

export function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function baseName(p: string): string {
  return normalizePath(p).split('/').pop() || '/';
}

/** The path as breadcrumbs: [{name: "/", path: "/"}, {name: "etc", path: "/etc"}, …]. */
export function crumbs(p: string): Array<{ name: string; path: string }> {
  const out = [{ name: '/', path: '/' }];
  let at = '';
  for (const seg of normalizePath(p).split('/').filter(Boolean)) {
    at += `/${seg}`;
    out.push({ name: seg, path: at });
  }
  return out;
}

const TYPE_CHAR: Record<DirEntry['type'], string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  block: 'b',
  char: 'c',
  fifo: 'p',
  socket: 's',
  other: '?',
};

/** "0755" + dir → "drwxr-xr-x"; setuid/setgid/sticky as s/S, t/T, the way ls shows them. */
export function symbolicMode(mode: string, type: DirEntry['type']): string {
  const n = parseInt(mode, 8);
  if (!Number.isFinite(n)) return `${TYPE_CHAR[type]}?????????`;
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? 'r' : '-') +
    (bits & 2 ? 'w' : '-') +
    (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (
    TYPE_CHAR[type] +
    rwx((n >> 6) & 7, !!(n & 0o4000), 's') +
    rwx((n >> 3) & 7, !!(n & 0o2000), 's') +
    rwx(n & 7, !!(n & 0o1000), 't')
  );
}

/** A directory or a link that points at one: browsed, not opened. */
export const isDirLike = (e: Pick<DirEntry, 'type' | 'targetType'>): boolean =>
  e.type === 'dir' || (e.type === 'symlink' && e.targetType === 'dir');

/** Base64 of bytes, in chunks (a spread of a large array overflows the stack). */
export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function fromBase64(b64: string, limit = Infinity): Uint8Array {
  // Whole 4-character groups decode on their own: only decode what is asked for.
  const bin = atob(limit === Infinity ? b64 : b64.slice(0, Math.ceil(limit / 3) * 4));
  const out = new Uint8Array(Math.min(bin.length, limit));
  for (let i = 0; i < out.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return lines.join('\n');
}

/** Save bytes (or text) under a name through the browser's download. */
export function saveAs(name: string, data: Uint8Array | string): void {
  const blob = new Blob([typeof data === 'string' ? data : (data as Uint8Array<ArrayBuffer>)], {
    type: 'application/octet-stream',
  });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Unsaved edits, per sandbox and path, kept while the user browses elsewhere (not across a reload):
 * `original` is what was read, to notice a file that changed in the sandbox meanwhile.
 */
export interface Draft {
  original: string;
  text: string;
}
const drafts = new Map<string, Draft>();
const key = (sandboxId: string, path: string) => `${sandboxId}\0${path}`;

export const getDraft = (sandboxId: string, path: string): Draft | undefined =>
  drafts.get(key(sandboxId, path));
export function setDraft(sandboxId: string, path: string, d: Draft | null): void {
  if (d && d.text !== d.original) drafts.set(key(sandboxId, path), d);
  else drafts.delete(key(sandboxId, path));
}
export function draftPaths(sandboxId: string): Set<string> {
  const out = new Set<string>();
  for (const k of drafts.keys()) if (k.startsWith(`${sandboxId}\0`)) out.add(k.slice(sandboxId.length + 1));
  return out;
}

/** The last place the Files tab showed, per sandbox (switching tabs comes back to it). */
export const lastPath = new Map<string, string>();
