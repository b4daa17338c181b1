/**
 * Cursor pagination of list routes. The body stays the contract's answer (an array, or audit's
 * {entries, total}); the next page's cursor comes in `X-Next-Cursor` and a `Link: <…>; rel="next"`
 * header, and is absent on the last page.
 *
 * Lists the contract returns whole (newest first, up to the member's own maximum) are paged by the
 * door: the cursor names the last item seen (its id and creation time), so items added meanwhile do
 * not shift the next page. The audit log is paged by the core itself (beforeSeq).
 */
import { FluidError } from '../../../shared/errors.ts';
import type { JsonSchema, Route } from './routes.ts';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 500;

interface Cursor {
  /** array lists: the last item's key and creation time */
  k?: string;
  c?: string;
  /** audit: the sequence number to continue below */
  b?: number;
}

export const encodeCursor = (c: Cursor): string => Buffer.from(JSON.stringify(c)).toString('base64url');

export function decodeCursor(s: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (c && typeof c === 'object' && !Array.isArray(c)) return c as Cursor;
  } catch {
    /* below */
  }
  throw new FluidError('VALIDATION', 'The cursor is not one this server gave out; start again without it.');
}

const keyOf = (item: unknown): string | undefined => {
  if (!item || typeof item !== 'object') return undefined;
  const o = item as Record<string, unknown>;
  for (const k of ['id', 'name', 'seq'])
    if (typeof o[k] === 'string' || typeof o[k] === 'number') return String(o[k]);
  return undefined;
};
const createdOf = (item: unknown): string | undefined => {
  const c = item && typeof item === 'object' ? (item as Record<string, unknown>).createdAt : undefined;
  return typeof c === 'string' ? c : undefined;
};

export interface PagePlan {
  /** The input to call the member with. */
  input: Record<string, unknown>;
  size: number;
  cursor: Cursor | null;
}

/** The contract's own ceiling on `limit`, if the member has one. */
function limitOf(schema: JsonSchema): { max: number; def: number } | null {
  const l = schema.properties?.limit;
  if (!l) return null;
  return {
    max: typeof l.maximum === 'number' ? l.maximum : MAX_PAGE,
    def: typeof l.default === 'number' ? l.default : DEFAULT_PAGE,
  };
}

/** Read `limit` and `cursor` from the query and decide what to ask the core for. */
export function planPage(route: Route, inputSchema: JsonSchema, input: Record<string, unknown>): PagePlan {
  const own = limitOf(inputSchema);
  const { cursor: rawCursor, limit: rawLimit, ...rest } = input;
  const cursor = typeof rawCursor === 'string' && rawCursor ? decodeCursor(rawCursor) : null;
  const max = Math.min(own?.max ?? MAX_PAGE, MAX_PAGE);
  let size = own?.def ?? DEFAULT_PAGE;
  if (rawLimit !== undefined) {
    const n = Number(rawLimit);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new FluidError('VALIDATION', `limit must be a whole number from 1 to ${max}.`);
    size = n;
  }
  size = Math.min(size, max);
  const call: Record<string, unknown> = { ...rest };
  if (route.list?.kind === 'entries') {
    call.limit = size;
    if (cursor?.b !== undefined) call.beforeSeq = cursor.b;
  } else if (own) call.limit = own.max; // the window the door pages through
  return { input: call, size, cursor };
}

/** The page of a result, and the cursor of the next one (null on the last page). */
export function takePage(
  route: Route,
  plan: PagePlan,
  result: unknown,
): { body: unknown; next: string | null } {
  if (route.list?.kind === 'entries') {
    const r = result as { entries: Array<{ seq: number }>; total: number };
    const last = r.entries.at(-1);
    const next =
      r.entries.length === plan.size && last && last.seq > 1 ? encodeCursor({ b: last.seq }) : null;
    return { body: r, next };
  }
  const items = result as unknown[];
  let start = 0;
  if (plan.cursor) {
    const i = plan.cursor.k === undefined ? -1 : items.findIndex((x) => keyOf(x) === plan.cursor!.k);
    if (i >= 0) start = i + 1;
    else if (plan.cursor.c) {
      const c = plan.cursor.c;
      const j = items.findIndex((x) => (createdOf(x) ?? '') < c);
      start = j < 0 ? items.length : j;
    } else start = items.length;
  }
  const page = items.slice(start, start + plan.size);
  const last = page.at(-1);
  const more = start + plan.size < items.length;
  const next = more && last !== undefined ? encodeCursor({ k: keyOf(last), c: createdOf(last) }) : null;
  return { body: page, next };
}
