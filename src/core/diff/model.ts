/**
 * From the host program's answer to the contract's Diff: stable ids, the contract's order, counts,
 * and a hash over the canonical items. Anything the contract does not accept is an error here, never
 * a silently dropped item.
 */
import {
  DiffItemSchema,
  sortItems,
  type Diff,
  type DiffItem,
  type DiffKind,
  type DiffSide,
} from '../../shared/contract/diff.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';
import { noiseReasons, type HostResult } from './host.ts';
import type { StoredDiff } from './store.ts';

/** An item's id: the same kind and key always give the same id, in any diff of any sandbox. */
export function itemId(kind: string, key: string): string {
  return sha256Hex(`fluid-diff-item/1\0${kind}\0${key}`).slice(0, 16);
}

export function toItems(raw: HostResult['items']): DiffItem[] {
  const out: DiffItem[] = [];
  const seen = new Set<string>();
  for (const r of raw) {
    const id = itemId(r.kind, r.key);
    const parsed = DiffItemSchema.safeParse({ ...r, id });
    if (!parsed.success)
      throw new FluidError(
        'INTERNAL',
        `The host reported a ${r.kind} change of ${r.key} that does not fit the contract: ${parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; ')}`,
      );
    if (seen.has(id)) continue; // one change reported twice (e.g. a hard link) is one item
    seen.add(id);
    out.push(parsed.data);
  }
  return sortItems(out);
}

/** sha256 over the canonical JSON of the items: what bundles and replay checks refer to. */
export function itemsHash(items: DiffItem[]): string {
  return sha256Hex(canonicalJson(items));
}

export function buildDiff(
  r: HostResult,
  meta: {
    id: string;
    sandboxId: string;
    from: DiffSide;
    to: DiffSide;
    createdAt: string;
    createdBy: Actor;
    consistency?: Diff['consistency'];
  },
): StoredDiff {
  const items = toItems(r.items);
  const byKind: Record<string, number> = {};
  for (const i of items) byKind[i.kind] = (byKind[i.kind] ?? 0) + 1;
  const noise = r.noise
    .map(([path, rule]) => ({ path, rule }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const noiseByRule: Record<string, number> = {};
  for (const n of noise) noiseByRule[n.rule] = (noiseByRule[n.rule] ?? 0) + 1;
  const mode = r.consistency.mode as Diff['consistency']['mode'];
  return {
    id: meta.id,
    sandboxId: meta.sandboxId,
    from: meta.from,
    to: meta.to,
    createdAt: meta.createdAt,
    createdBy: meta.createdBy,
    method: r.method,
    consistency: meta.consistency ?? { mode, detail: r.consistency.detail },
    items,
    counts: { items: items.length, byKind, noise: noise.length, noiseByRule },
    noiseRules: noiseReasons(),
    noise,
    stats: r.stats,
    timings: r.timings,
    warnings: r.warnings,
    filesystem: { type: r.filesystem.type, partition: r.filesystem.partition },
    sha256: itemsHash(items),
  };
}

export function countLine(d: Pick<Diff, 'counts'>): string {
  const parts = Object.entries(d.counts.byKind).map(([k, n]) => `${n} ${k}${n === 1 ? '' : 's'}`);
  return `${d.counts.items} change${d.counts.items === 1 ? '' : 's'}${parts.length ? ` (${parts.join(', ')})` : ''}; ${d.counts.noise} path${d.counts.noise === 1 ? '' : 's'} filtered as noise`;
}

export type { DiffKind };
