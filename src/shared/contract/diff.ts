/**
 * The system diff: what changed on a sandbox's disk between two states (its baseline, a snapshot, or
 * now), as typed items. This shape is the input of playbook generation, of the replay check and of
 * the production baseline, so it is exact and stable:
 *  - every item has an `id` derived from its kind and key only (the same change has the same id in
 *    any diff of any sandbox), so a person's include/exclude choice and a replay comparison can
 *    refer to it;
 *  - items are ordered by kind (KIND_ORDER) and then by key, byte-wise;
 *  - no item ever carries a password hash or the content of a sensitive file.
 * `compareDiffs` compares two diffs item by item with the noise already aside.
 */
import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { ActorSchema, Id, IsoDate } from './common.ts';
import { TaskSchema } from './tasks.ts';

const SandboxRef = z.string().min(1).max(128).describe('A sandbox id or name');
const SnapshotRef = z.string().min(1).max(128).describe('A snapshot name or id');

// ---- items --------------------------------------------------------------------------------------

export const FileType = z.enum(['file', 'dir', 'symlink', 'fifo', 'socket', 'char', 'block']);

/** One side of a path: what `stat` says, with owner names from that side's own passwd/group. */
export const FileMetaSchema = z.object({
  type: FileType,
  /** Permission bits, four octal digits ('0644'). */
  mode: z.string().regex(/^[0-7]{4}$/),
  uid: z.number().int(),
  gid: z.number().int(),
  user: z.string().nullable(),
  group: z.string().nullable(),
  /** Bytes (regular files; 0 otherwise). */
  size: z.number().int().nonnegative(),
  /** Of regular files. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  /** Of symlinks. */
  target: z.string().nullable(),
});
export type FileMeta = z.infer<typeof FileMetaSchema>;

export const ContentSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('text'),
    /** A unified diff (3 lines of context) with a/ and b/ headers. */
    diff: z.string(),
    added: z.number().int().nonnegative(),
    removed: z.number().int().nonnegative(),
    truncated: z.boolean(),
  }),
  z.object({
    kind: z.literal('binary'),
    sizeBefore: z.number().int().nonnegative(),
    sizeAfter: z.number().int().nonnegative(),
  }),
  z.object({
    kind: z.literal('hidden'),
    reason: z.string(),
    sizeBefore: z.number().int().nonnegative(),
    sizeAfter: z.number().int().nonnegative(),
  }),
]);
export type Content = z.infer<typeof ContentSchema>;

export const Aspect = z.enum(['content', 'mode', 'owner', 'target', 'type']);

/** What a changed path carries, for files and for the kinds that are files with a meaning. */
const FileChangeShape = {
  path: z.string(),
  change: z.enum(['added', 'modified', 'deleted']),
  /** For 'modified': what differs. */
  aspects: z.array(Aspect),
  before: FileMetaSchema.nullable(),
  after: FileMetaSchema.nullable(),
  /** Content diff for text, sizes for binaries, nothing for directories/links/metadata-only changes. */
  content: ContentSchema.nullable(),
  /** The package that owns the path (a changed conffile, a modified packaged file). */
  package: z.string().nullable(),
  /** A sensitive file (keys, credentials): never shown with content. */
  sensitive: z.boolean(),
};

const base = { id: z.string().regex(/^[0-9a-f]{16}$/), key: z.string() };

export const PackageItemSchema = z.object({
  ...base,
  kind: z.literal('package'),
  manager: z.enum(['dpkg', 'rpm']),
  name: z.string(),
  arch: z.string(),
  change: z.enum(['installed', 'removed', 'upgraded', 'downgraded']),
  before: z.object({ version: z.string() }).nullable(),
  after: z.object({ version: z.string() }).nullable(),
});

export const UserInfoSchema = z.object({
  uid: z.number().int(),
  gid: z.number().int(),
  group: z.string().nullable(),
  gecos: z.string(),
  home: z.string(),
  shell: z.string(),
  /** Supplementary groups. */
  groups: z.array(z.string()),
  /** What the shadow entry says about the password — never the hash itself. */
  password: z.enum(['set', 'locked', 'disabled', 'empty']).nullable(),
  minDays: z.string(),
  maxDays: z.string(),
  warnDays: z.string(),
  inactiveDays: z.string(),
  expires: z.string(),
});

export const UserItemSchema = z.object({
  ...base,
  kind: z.literal('user'),
  name: z.string(),
  change: z.enum(['added', 'removed', 'modified']),
  fields: z.array(z.string()),
  before: UserInfoSchema.nullable(),
  after: UserInfoSchema.nullable(),
  /** The password hash changed (the new hash is a secret the person supplies at apply time). */
  passwordChanged: z.boolean(),
});

export const GroupInfoSchema = z.object({
  gid: z.number().int(),
  members: z.array(z.string()),
  password: z.enum(['set', 'locked', 'disabled', 'empty']).nullable(),
});

export const GroupItemSchema = z.object({
  ...base,
  kind: z.literal('group'),
  name: z.string(),
  change: z.enum(['added', 'removed', 'modified']),
  fields: z.array(z.string()),
  before: GroupInfoSchema.nullable(),
  after: GroupInfoSchema.nullable(),
});

export const FileItemSchema = z.object({ ...base, kind: z.literal('file'), ...FileChangeShape });

export const UnitItemSchema = z.object({
  ...base,
  kind: z.literal('unit'),
  ...FileChangeShape,
  unit: z.string(),
  unitType: z.string(),
  /** A drop-in (<unit>.d/*.conf) rather than the unit file. */
  dropIn: z.boolean(),
});

export const UnitStateItemSchema = z.object({
  ...base,
  kind: z.literal('unit-state'),
  unit: z.string(),
  change: z.enum(['enabled', 'disabled', 'masked', 'unmasked']),
  /** The target whose .wants/.requires holds the link ('alias' for an alias link; null for a mask). */
  target: z.string().nullable(),
  link: z.string(),
});

const LineChanges = z.object({ added: z.array(z.string()), removed: z.array(z.string()) });

export const SudoersItemSchema = z.object({
  ...base,
  kind: z.literal('sudoers'),
  ...FileChangeShape,
  rules: LineChanges,
});

export const CronItemSchema = z.object({
  ...base,
  kind: z.literal('cron'),
  ...FileChangeShape,
  /** The user of a crontab spool; null for system cron files. */
  user: z.string().nullable(),
  entries: LineChanges,
});

export const SysctlItemSchema = z.object({
  ...base,
  kind: z.literal('sysctl'),
  name: z.string(),
  before: z.string().nullable(),
  after: z.string().nullable(),
  file: z.string(),
});

export const ModuleItemSchema = z.object({
  ...base,
  kind: z.literal('kernel-module'),
  name: z.string(),
  change: z.enum(['added', 'removed']),
  file: z.string(),
});

export const DiffItemSchema = z.discriminatedUnion('kind', [
  PackageItemSchema,
  GroupItemSchema,
  UserItemSchema,
  SudoersItemSchema,
  FileItemSchema,
  UnitItemSchema,
  UnitStateItemSchema,
  CronItemSchema,
  SysctlItemSchema,
  ModuleItemSchema,
]);
export type DiffItem = z.infer<typeof DiffItemSchema>;
export type DiffKind = DiffItem['kind'];

/** The order kinds are listed in (the order a playbook applies them: packages first, cron last). */
export const KIND_ORDER: readonly DiffKind[] = [
  'package',
  'group',
  'user',
  'sudoers',
  'file',
  'unit',
  'unit-state',
  'cron',
  'sysctl',
  'kernel-module',
];

export const KIND_TITLE: Record<DiffKind, string> = {
  package: 'Packages',
  group: 'Groups',
  user: 'Users',
  sudoers: 'Sudoers',
  file: 'Files',
  unit: 'Systemd units',
  'unit-state': 'Services enabled, disabled, masked',
  cron: 'Cron',
  sysctl: 'Sysctl settings',
  'kernel-module': 'Kernel modules loaded at boot',
};

// ---- the diff -----------------------------------------------------------------------------------

export const DiffSideSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('baseline') }),
  z.object({ kind: z.literal('now') }),
  z.object({ kind: z.literal('snapshot'), name: z.string(), snapshotId: z.string() }),
]);
export type DiffSide = z.infer<typeof DiffSideSchema>;

export const NoiseEntrySchema = z.object({ path: z.string(), rule: z.string() });

export const DiffSchema = z.object({
  id: Id,
  sandboxId: Id,
  from: DiffSideSchema,
  to: DiffSideSchema,
  createdAt: IsoDate,
  createdBy: ActorSchema,
  /** fast: the allocation map and inode tables since the baseline; walk: every file compared. */
  method: z.enum(['fast', 'walk']),
  /** How the disk was made consistent before it was read, and what exactly was done. */
  consistency: z.object({
    mode: z.enum(['stopped', 'quiesced-layer', 'crash-consistent-layer', 'snapshot', 'image']),
    detail: z.string(),
  }),
  items: z.array(DiffItemSchema),
  /** Item ids a person excluded from what this change carries (playbook generation honours it). */
  excluded: z.array(z.string()),
  counts: z.object({
    items: z.number().int(),
    byKind: z.record(z.string(), z.number().int()),
    noise: z.number().int(),
    noiseByRule: z.record(z.string(), z.number().int()),
  }),
  /** The noise rules (id → why), so a reader can say what a count means. */
  noiseRules: z.record(z.string(), z.string()),
  /** Every path filtered as noise, with its rule — present when asked for (showNoise). */
  noise: z.array(NoiseEntrySchema).nullable(),
  stats: z.record(z.string(), z.union([z.number(), z.string()])),
  timings: z.record(z.string(), z.number()),
  warnings: z.array(z.string()),
  filesystem: z.object({ type: z.string(), partition: z.number().int().nullable() }),
  /** sha256 over the canonical JSON of the items (what a bundle or a replay check refers to). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Diff = z.infer<typeof DiffSchema>;

export const DiffSummarySchema = DiffSchema.pick({
  id: true,
  sandboxId: true,
  from: true,
  to: true,
  createdAt: true,
  method: true,
  counts: true,
  sha256: true,
});
export type DiffSummary = z.infer<typeof DiffSummarySchema>;

export const BaselineSchema = z.object({
  sandboxId: Id,
  createdAt: IsoDate,
  /** quiesced: filesystems frozen through the guest agent; crash-consistent otherwise. */
  mode: z.enum(['quiesced', 'crash-consistent']),
  disks: z.array(z.object({ target: z.string(), baseline: z.string(), top: z.string() })),
});
export type Baseline = z.infer<typeof BaselineSchema>;

export const diffContract = {
  'diff.run': call(
    z.object({
      sandbox: SandboxRef,
      from: SnapshotRef.optional().describe(
        'A snapshot; default: the baseline (the sandbox as Fluid handed it over)',
      ),
      to: SnapshotRef.optional().describe('A snapshot; default: now'),
      method: z.enum(['auto', 'fast', 'walk']).default('auto'),
    }),
    TaskSchema,
    "Read what changed on a sandbox's disk, on the host (a task; its result names the diff).",
  ),
  'diff.get': call(
    z.object({
      sandbox: SandboxRef,
      diff: Id.optional().describe('Default: the latest diff of the sandbox'),
      showNoise: z.boolean().default(false),
    }),
    DiffSchema,
    'A stored diff with its items and the person’s include/exclude choices.',
  ),
  'diff.list': call(
    z.object({ sandbox: SandboxRef }),
    z.array(DiffSummarySchema),
    "A sandbox's diffs, newest first.",
  ),
  'diff.select': call(
    z.object({
      sandbox: SandboxRef,
      items: z
        .array(z.string().regex(/^[0-9a-f]{16}$/))
        .min(1)
        .max(10000),
      included: z.boolean(),
    }),
    z.object({ excluded: z.array(z.string()) }),
    'Include or exclude items from what the change carries (kept per sandbox, across diffs).',
  ),
  'diff.baseline': call(
    z.object({ sandbox: SandboxRef }),
    BaselineSchema.nullable(),
    "The sandbox's baseline (null for sandboxes made before baselines were recorded).",
  ),
  'diff.changed': event(
    z.object({ sandboxId: Id, diffId: Id.nullable(), excluded: z.array(z.string()) }),
    'A diff was stored or the include/exclude choices of a sandbox changed.',
  ),
};

// ---- comparing two diffs, noise aside -----------------------------------------------------------

export interface ItemDifference {
  id: string;
  kind: DiffKind;
  key: string;
  /** Fields whose values differ (e.g. 'after.sha256', 'change'). */
  fields: string[];
  a: DiffItem;
  b: DiffItem;
}

export interface DiffComparison {
  equal: boolean;
  onlyInA: DiffItem[];
  onlyInB: DiffItem[];
  differing: ItemDifference[];
}

/**
 * What matters about an item when two diffs are compared: the change itself and the resulting
 * state (contents by hash, modes, owners by name, versions), not how it was observed (unified diff
 * text, sizes of the other side, uid numbers that differ between machines when names agree).
 */
export function essence(item: DiffItem): Record<string, unknown> {
  const meta = (m: FileMeta | null) =>
    m && {
      type: m.type,
      mode: m.mode,
      owner: m.user ?? m.uid,
      group: m.group ?? m.gid,
      sha256: m.type === 'file' ? m.sha256 : null,
      target: m.target,
    };
  switch (item.kind) {
    case 'file':
    case 'unit':
    case 'sudoers':
    case 'cron':
      return { kind: item.kind, change: item.change, before: meta(item.before), after: meta(item.after) };
    case 'package':
      return { kind: item.kind, change: item.change, before: item.before, after: item.after };
    case 'user':
      return {
        kind: item.kind,
        change: item.change,
        after: item.after,
        passwordChanged: item.passwordChanged,
      };
    case 'group':
      return { kind: item.kind, change: item.change, after: item.after };
    case 'unit-state':
      return { kind: item.kind, change: item.change, target: item.target };
    case 'sysctl':
      return { kind: item.kind, after: item.after, file: item.file };
    case 'kernel-module':
      return { kind: item.kind, change: item.change, file: item.file };
  }
}

function flatDiff(a: unknown, b: unknown, path: string, out: string[]): void {
  if (a === b) return;
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort())
      flatDiff(ao[k], bo[k], path ? `${path}.${k}` : k, out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path || '(item)');
}

/**
 * Compare two diffs item by item (noise is never part of the items). Items match by id; a matched
 * pair differs when its essence differs. `ignore` leaves item ids out on both sides (for example
 * what a person excluded).
 */
export function compareDiffs(
  a: Pick<Diff, 'items'>,
  b: Pick<Diff, 'items'>,
  opts: { ignore?: Iterable<string> } = {},
): DiffComparison {
  const ignore = new Set(opts.ignore ?? []);
  const ia = new Map(a.items.filter((i) => !ignore.has(i.id)).map((i) => [i.id, i]));
  const ib = new Map(b.items.filter((i) => !ignore.has(i.id)).map((i) => [i.id, i]));
  const onlyInA = [...ia.values()].filter((i) => !ib.has(i.id));
  const onlyInB = [...ib.values()].filter((i) => !ia.has(i.id));
  const differing: ItemDifference[] = [];
  for (const [id, x] of ia) {
    const y = ib.get(id);
    if (!y) continue;
    const fields: string[] = [];
    flatDiff(essence(x), essence(y), '', fields);
    if (fields.length) differing.push({ id, kind: x.kind, key: x.key, fields, a: x, b: y });
  }
  return { equal: !onlyInA.length && !onlyInB.length && !differing.length, onlyInA, onlyInB, differing };
}

/** Compare strings by Unicode code points, which is the order of their UTF-8 bytes. */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d) return d;
  }
  return x.length - y.length;
}

/** Items in the contract's order: by KIND_ORDER, then by key compared as UTF-8 bytes. */
export function sortItems<T extends { kind: DiffKind; key: string }>(items: T[]): T[] {
  const rank = new Map(KIND_ORDER.map((k, i) => [k, i]));
  return [...items].sort((p, q) => rank.get(p.kind)! - rank.get(q.kind)! || compareCodePoints(p.key, q.key));
}
