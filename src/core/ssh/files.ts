/**
 * File operations on a guest as root, built on the runner (see runner.ts): each is a small bash
 * script, run through `sudo -n`, with the path single-quoted (the only value interpolated into a
 * script; paths are validated first) and file contents on stdin/stdout, so any bytes round-trip.
 */
import { createHash } from 'node:crypto';
import { FluidError } from '../../shared/errors.ts';
import { shq } from '../hosts/connection.ts';

export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Exit codes the file scripts use for the cases callers handle. */
export const FILE_EXIT = {
  notFound: 10,
  isDirectory: 11,
  noParent: 12,
  changed: 13,
  short: 15,
  notDirectory: 16,
  noFindPrintf: 17,
} as const;

export function validatePath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw new FluidError('VALIDATION', `Paths must be absolute (start with /): ${JSON.stringify(path)}.`);
  if (path.includes('\0')) throw new FluidError('VALIDATION', 'Paths may not contain NUL bytes.');
  if (path.length > 4096) throw new FluidError('VALIDATION', 'The path is longer than 4096 characters.');
}

function validateMax(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    throw new FluidError('VALIDATION', 'maxBytes must be a non-negative whole number.');
}

/** Prints "size=<bytes>" on stderr, then up to max+1 bytes of the file on stdout. */
export function readScript(path: string, maxBytes: number): string {
  validatePath(path);
  validateMax(maxBytes);
  return `p=${shq(path)}
if [ ! -e "$p" ]; then echo "no such file: $p" >&2; exit ${FILE_EXIT.notFound}; fi
if [ -d "$p" ]; then echo "is a directory: $p" >&2; exit ${FILE_EXIT.isDirectory}; fi
echo "size=$(stat -L -c %s -- "$p")" >&2
exec head -c ${maxBytes + 1} -- "$p"
`;
}

export interface WriteScriptOptions {
  /** Octal mode, e.g. "0644". Default: the existing file's mode, or 0644 for a new file. */
  mode?: string;
  /** user or user:group. Default: the existing file's owner, or root for a new file. */
  owner?: string;
  /** Create missing parent directories (mode 0755). Default false: a typo fails instead. */
  createDirs?: boolean;
  /** Refuse (exit 13) unless the current content has this sha256: an optimistic lock for edits. */
  expectSha256?: string;
}

/**
 * Atomic replace: the data (stdin) goes to a temp file in the same directory, which takes the
 * existing file's owner, mode and SELinux label (or the requested ones), then is renamed over the
 * target. A symlink is followed: its target is replaced, the link stays.
 */
export function writeScript(path: string, length: number, opts: WriteScriptOptions = {}): string {
  validatePath(path);
  if (opts.mode !== undefined && !/^[0-7]{3,4}$/.test(opts.mode))
    throw new FluidError('VALIDATION', `The mode must be octal like 0644, not ${JSON.stringify(opts.mode)}.`);
  if (
    opts.owner !== undefined &&
    !/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(opts.owner)
  )
    throw new FluidError(
      'VALIDATION',
      `The owner must be user or user:group, not ${JSON.stringify(opts.owner)}.`,
    );
  if (opts.expectSha256 !== undefined && !/^[0-9a-f]{64}$/.test(opts.expectSha256))
    throw new FluidError('VALIDATION', 'expectSha256 must be 64 lowercase hex digits.');
  return `p=${shq(path)} n=${length} mode=${shq(opts.mode ?? '')} owner=${shq(opts.owner ?? '')} mk=${opts.createDirs ? 1 : 0} sha=${opts.expectSha256 ?? ''}
umask 077
if [ -L "$p" ]; then t=$(readlink -f -- "$p") || { echo "cannot resolve the symlink $p" >&2; exit 1; }; p=$t; fi
d=$(dirname -- "$p")
if [ ! -d "$d" ]; then
  if [ "$mk" = 1 ]; then (umask 022 && mkdir -p -- "$d") || exit 1
  else echo "the directory $d does not exist" >&2; exit ${FILE_EXIT.noParent}; fi
fi
if [ -d "$p" ]; then echo "is a directory: $p" >&2; exit ${FILE_EXIT.isDirectory}; fi
if [ -n "$sha" ]; then
  cur=$(sha256sum -- "$p" 2>/dev/null); cur=\${cur%% *}
  if [ "$cur" != "$sha" ]; then echo "$p changed since it was read" >&2; exit ${FILE_EXIT.changed}; fi
fi
tmp=$(mktemp -- "$d/.fluid-write.XXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT
cat >"$tmp" || exit 1
got=$(stat -c %s -- "$tmp")
if [ "$got" != "$n" ]; then echo "received $got of $n bytes" >&2; exit ${FILE_EXIT.short}; fi
if [ -e "$p" ]; then
  chown --reference="$p" -- "$tmp" && chmod --reference="$p" -- "$tmp" || exit 1
  if command -v chcon >/dev/null 2>&1 && [ -e /sys/fs/selinux/enforce ]; then chcon --reference="$p" -- "$tmp" 2>/dev/null; fi
else
  chmod 0644 -- "$tmp" || exit 1
fi
if [ -n "$mode" ]; then chmod "$mode" -- "$tmp" || exit 1; fi
if [ -n "$owner" ]; then chown "$owner" -- "$tmp" || exit 1; fi
mv -f -- "$tmp" "$p" || exit 1
trap - EXIT
`;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Byte offsets of the non-overlapping occurrences of `needle` in `hay`. */
export function occurrences(hay: Buffer, needle: Buffer): number[] {
  if (!needle.length) return [];
  const found: number[] = [];
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + needle.length)) found.push(i);
  return found;
}

/** 1-based line number of a byte offset. */
export function lineAt(buf: Buffer, offset: number): number {
  let line = 1;
  for (let i = buf.indexOf(10); i !== -1 && i < offset; i = buf.indexOf(10, i + 1)) line++;
  return line;
}

/** The bytes after an edit; throws NOT_FOUND / CONFLICT unless oldStr occurs exactly once. */
export function applyEdit(
  path: string,
  content: Buffer,
  oldStr: string,
  newStr: string,
): { content: Buffer; line: number } {
  if (!oldStr) throw new FluidError('VALIDATION', 'The text to replace is empty.');
  if (oldStr === newStr)
    throw new FluidError('VALIDATION', 'The replacement is the same as the original text.');
  const needle = Buffer.from(oldStr, 'utf8');
  const at = occurrences(content, needle);
  if (at.length === 0)
    throw new FluidError(
      'NOT_FOUND',
      `The text to replace was not found in ${path}. Read the file again and copy the text exactly, including whitespace.`,
    );
  if (at.length > 1)
    throw new FluidError(
      'CONFLICT',
      `The text to replace occurs ${at.length} times in ${path} (lines ${at.map((o) => lineAt(content, o)).join(', ')}). Include more surrounding lines so that it matches exactly once.`,
      { occurrences: at.length },
    );
  const start = at[0]!;
  return {
    content: Buffer.concat([
      content.subarray(0, start),
      Buffer.from(newStr, 'utf8'),
      content.subarray(start + needle.length),
    ]),
    line: lineAt(content, start),
  };
}

// ---- directory listings ------------------------------------------------------------------------

/** Fields printed per entry by listDirScript, each ending in NUL (names cannot hold NUL). */
const LIST_FIELDS = 9;

/**
 * Lists a directory's entries (one level, dot files included) with GNU find's -printf, NUL-separated:
 * type, the type a symlink points to, size, permission bits, owner, group, mtime, link target, name.
 * Before them: the entry count, then the directory's resolved path. Any bytes in a name round-trip.
 */
export function listDirScript(path: string): string {
  validatePath(path);
  return `p=${shq(path)}
if [ ! -e "$p" ]; then echo "no such file: $p" >&2; exit ${FILE_EXIT.notFound}; fi
if [ ! -d "$p" ]; then echo "not a directory: $p" >&2; exit ${FILE_EXIT.notDirectory}; fi
cd -- "$p" || exit 1
find . -maxdepth 0 -printf '' >/dev/null 2>&1 || { echo "find has no -printf here: listing directories needs GNU findutils" >&2; exit ${FILE_EXIT.noFindPrintf}; }
printf '%s\\0' "$(find . -mindepth 1 -maxdepth 1 -printf . | wc -c)"
printf '%s\\0' "$(pwd -P)"
exec find . -mindepth 1 -maxdepth 1 -printf '%y\\0%Y\\0%s\\0%m\\0%u\\0%g\\0%T@\\0%l\\0%P\\0'
`;
}

export type DirEntryType = 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket' | 'other';

export interface DirEntry {
  /** The name as text (bytes that are not UTF-8 show as U+FFFD). */
  name: string;
  /** The name's bytes in base64 when they are not valid UTF-8 (such a name cannot be opened by path). */
  rawName: string | null;
  type: DirEntryType;
  size: number;
  /** Permission bits in octal, e.g. "0644", "4755". */
  mode: string;
  owner: string;
  group: string;
  /** Modification time, ISO 8601. */
  mtime: string;
  /** A symlink's target as written, and what it points to ('missing' when nothing, 'loop'). */
  target: string | null;
  targetType: DirEntryType | 'missing' | 'loop' | null;
}

export interface DirListing {
  /** The directory with symlinks resolved. */
  resolved: string;
  entries: DirEntry[];
  /** Entries in the directory; more than entries.length when the listing was cut. */
  total: number;
  truncated: boolean;
}

const TYPE_OF: Record<string, DirEntryType> = {
  f: 'file',
  d: 'dir',
  l: 'symlink',
  b: 'block',
  c: 'char',
  p: 'fifo',
  s: 'socket',
};

const strict = new TextDecoder('utf-8', { fatal: true });

function text(b: Buffer): { text: string; valid: boolean } {
  try {
    return { text: strict.decode(b), valid: true };
  } catch {
    return { text: b.toString('utf8'), valid: false };
  }
}

/**
 * Parse listDirScript's output. Only whole records count (the output may have been cut at a cap);
 * at most `maxEntries` are kept. Directories first, then by name.
 */
export function parseListing(out: Buffer, maxEntries: number): DirListing {
  const fields: Buffer[] = [];
  for (let start = 0, i = out.indexOf(0); i !== -1; start = i + 1, i = out.indexOf(0, start))
    fields.push(out.subarray(start, i));
  if (fields.length < 2) throw new FluidError('INTERNAL', 'The directory listing was cut short.');
  const total = Number(fields[0]!.toString('latin1').trim());
  const resolved = text(fields[1]!).text;
  const entries: DirEntry[] = [];
  for (let i = 2; i + LIST_FIELDS <= fields.length && entries.length < maxEntries; i += LIST_FIELDS) {
    const [y, yt, size, mode, owner, group, mtime, target, name] = fields.slice(i, i + LIST_FIELDS) as [
      Buffer,
      Buffer,
      Buffer,
      Buffer,
      Buffer,
      Buffer,
      Buffer,
      Buffer,
      Buffer,
    ];
    const type = TYPE_OF[y.toString('latin1')] ?? 'other';
    const n = text(name);
    const yT = yt.toString('latin1');
    const seconds = Number(mtime.toString('latin1'));
    entries.push({
      name: n.text,
      rawName: n.valid ? null : name.toString('base64'),
      type,
      size: Number(size.toString('latin1')) || 0,
      mode: mode.toString('latin1').padStart(4, '0'),
      owner: text(owner).text,
      group: text(group).text,
      mtime: new Date(
        Number.isFinite(seconds) && Math.abs(seconds) < 8.64e12 ? seconds * 1000 : 0,
      ).toISOString(),
      target: type === 'symlink' ? text(target).text : null,
      targetType:
        type !== 'symlink' ? null : yT === 'N' ? 'missing' : yT === 'L' ? 'loop' : (TYPE_OF[yT] ?? 'other'),
    });
  }
  const isDir = (e: DirEntry) => e.type === 'dir' || (e.type === 'symlink' && e.targetType === 'dir');
  entries.sort(
    (a, b) => Number(isDir(b)) - Number(isDir(a)) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const safeTotal = Number.isFinite(total) ? Math.max(total, entries.length) : entries.length;
  return { resolved, entries, total: safeTotal, truncated: entries.length < safeTotal };
}
