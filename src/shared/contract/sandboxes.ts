import { z } from 'zod';
import { call, event, stream } from '../rpc.ts';
import { ActorSchema, ErrorPayloadSchema, ExecLimits, HostRef, Id, IsoDate } from './common.ts';
import { PresenceProofSchema } from './presence.ts';
import { TaskSchema } from './tasks.ts';
import { runsContract } from './runs.ts';

export * from './runs.ts';

export const SandboxState = z.enum([
  'creating',
  'starting',
  'running',
  'stopping',
  'stopped',
  'destroying',
  'destroyed',
  'failed',
  /** A warm-pool member, paused and waiting to be handed out (pool.ts); never listed as a sandbox. */
  'pooled',
]);
export type SandboxState = z.infer<typeof SandboxState>;

export const StartPath = z.enum(['restore', 'cold', 'pool']);

/**
 * Whether the sandbox's egress works as far as this process can tell: `problem` when the host's proxy
 * cannot serve it (it cannot start, another Fluid holds its address), `unknown` when this process runs
 * no proxy for the host (`fluid doctor` probes the host).
 */
export const EgressHealthSchema = z.object({
  status: z.enum(['ok', 'problem', 'unknown']),
  message: z.string().nullable(),
});
export type EgressHealth = z.infer<typeof EgressHealthSchema>;

/** Why a sandbox is on its host when Fluid chose it (no host was named): the score and the reason. */
export const PlacementSchema = z.object({
  /** Free memory left on the chosen machine after this sandbox, in MiB (higher is better). */
  score: z.number(),
  /** E.g. "placed on kvm2: has web-01, 6.1 GiB free (kvm1: 2.0 GiB)". */
  reason: z.string(),
  /** How the host was chosen. */
  by: z.enum(['named', 'session', 'only-host', 'capacity']),
  candidates: z.array(
    z.object({
      host: z.string(),
      hasSource: z.boolean().nullable(),
      freeMemoryMiB: z.number().nullable(),
      note: z.string().nullable(),
    }),
  ),
});
export type Placement = z.infer<typeof PlacementSchema>;

/** One warm-pool entry (a source on a host) and how full it is. */
export const PoolStatusSchema = z.object({
  host: z.string(),
  source: z.string(),
  /** Members wanted (Settings). */
  size: z.number().int(),
  /** Paused members ready to be handed out. */
  ready: z.number().int(),
  /** Members being made now. */
  filling: z.number().int(),
  /** Why the pool is not full, or what it waits for; null when full. */
  note: z.string().nullable(),
});
export type PoolStatus = z.infer<typeof PoolStatusSchema>;

/** The agent session that made a sandbox (its createdBy is agent:<session id>). */
export const SandboxSessionSchema = z.object({ id: Id, title: z.string(), status: z.string() });

/** An allowlist entry that opens more than its name suggests (an exact IP), with what to tell a person. */
export const EgressWarningSchema = z.object({ destination: z.string(), warning: z.string() });

export const SandboxSchema = z.object({
  id: Id,
  name: z.string(),
  hostId: Id,
  hostName: z.string(),
  sourceName: z.string(),
  baseId: z.string().nullable(),
  /** Which baseline the sandbox came from (sha256 over the base copy). */
  baseFingerprint: z.string().nullable(),
  state: SandboxState,
  domainName: z.string(),
  vcpus: z.number().int(),
  memoryMiB: z.number().int(),
  ip: z.string().nullable(),
  mac: z.string().nullable(),
  ttlMinutes: z.number().int().nullable(),
  expiresAt: IsoDate.nullable(),
  createdAt: IsoDate,
  updatedAt: IsoDate,
  createdBy: ActorSchema,
  /** How the sandbox was started the last time, and why. */
  startPath: StartPath.nullable(),
  startPathReason: z.string().nullable(),
  /** Phase timings of the last creation/start, in milliseconds. */
  timings: z.record(z.string(), z.number()),
  hostKeyFingerprint: z.string().nullable(),
  egressAllow: z.array(z.string()),
  /** Entries of egressAllow that need a warning (exact IP addresses); doors show it when one is added. Always set by the core. */
  egressWarnings: z.array(EgressWarningSchema).optional(),
  /** Always set by the core. */
  egressHealth: EgressHealthSchema.optional(),
  error: ErrorPayloadSchema.nullable(),
  taskId: z.string().nullable(),
  /** Where Fluid placed it and why (null when a host was named). Always set by the core. */
  placement: PlacementSchema.nullable().optional(),
  /** The agent session that created it, with its title. Always set by the core. */
  session: SandboxSessionSchema.nullable().optional(),
});
export type Sandbox = z.infer<typeof SandboxSchema>;

export const BaseSchema = z.object({
  id: Id,
  hostId: Id,
  sourceName: z.string(),
  sourceUuid: z.string(),
  fingerprint: z.string(),
  method: z.enum(['copy', 'backup']),
  state: z.enum(['building', 'ready', 'failed', 'retired']),
  sizeBytes: z.number().nullable(),
  disks: z.array(
    z.object({
      target: z.string(),
      path: z.string(),
      sha256: z.string().nullable(),
      virtualSize: z.number().nullable(),
    }),
  ),
  templateState: z.enum(['none', 'building', 'ready', 'failed']),
  templateError: z.string().nullable(),
  createdAt: IsoDate,
});
export type Base = z.infer<typeof BaseSchema>;

export const SnapshotSchema = z.object({
  id: Id,
  sandboxId: Id,
  name: z.string(),
  kind: z.enum(['disk', 'disk+memory']),
  createdAt: IsoDate,
  createdBy: ActorSchema,
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

export const ExecResultSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
  timedOut: z.boolean(),
  durationMs: z.number(),
});
export type ExecResult = z.infer<typeof ExecResultSchema>;

const SandboxRef = z.string().min(1).max(128).describe('A sandbox id or name');
const AbsPath = z
  .string()
  .min(1)
  .max(4096)
  .startsWith('/', 'an absolute path')
  .refine((p) => !p.includes('\0'), 'no NUL bytes');
/** host[:port] or *.domain[:port]; port defaults to any of 80/443 when omitted. */
export const Destination = z
  .string()
  .min(1)
  .max(300)
  .regex(
    /^(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$|^\[?[0-9a-fA-F:.]+\]?(:\d{1,5})?$/,
    'host, *.domain or IP, with an optional :port',
  );

const DirEntryType = z.enum(['file', 'dir', 'symlink', 'block', 'char', 'fifo', 'socket', 'other']);

/** One entry of a directory listing (sandboxes.listDir). */
export const DirEntrySchema = z.object({
  /** The name as text; bytes that are not UTF-8 show as U+FFFD and `rawName` holds them. */
  name: z.string(),
  /** base64 of the name's bytes when they are not valid UTF-8 (such a file cannot be opened by path). */
  rawName: z.string().nullable(),
  type: DirEntryType,
  size: z.number().int(),
  /** Permission bits in octal: "0644", "4755". */
  mode: z.string(),
  owner: z.string(),
  group: z.string(),
  mtime: IsoDate,
  /** A symlink's target as written, and the type of what it points to. */
  target: z.string().nullable(),
  targetType: z.union([DirEntryType, z.enum(['missing', 'loop'])]).nullable(),
});
export type DirEntry = z.infer<typeof DirEntrySchema>;

export const sandboxesContract = {
  'sandboxes.create': call(
    z.object({
      host: HostRef.optional(),
      source: z.string().min(1).max(256),
      name: z
        .string()
        .min(1)
        .max(48)
        .regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and "-"')
        .optional(),
      vcpus: z.number().int().min(1).max(64).optional(),
      memoryMiB: z.number().int().min(256).max(262144).optional(),
      ttlMinutes: z
        .number()
        .int()
        .min(1)
        .max(60 * 24 * 30)
        .optional(),
      allow: z.array(Destination).max(100).default([]),
      start: z.enum(['auto', 'restore', 'cold']).default('auto'),
      refreshBase: z.boolean().default(false),
    }),
    TaskSchema,
    'Clone a source VM into a sandbox (base copy, overlay, new identity, isolated network, start). Returns the task.',
  ),
  'sandboxes.list': call(
    z.object({ host: HostRef.optional(), includeDestroyed: z.boolean().default(false) }),
    z.array(SandboxSchema),
    'Sandboxes, newest first.',
  ),
  'sandboxes.get': call(z.object({ sandbox: SandboxRef }), SandboxSchema, 'One sandbox.'),
  'sandboxes.start': call(z.object({ sandbox: SandboxRef }), TaskSchema, 'Start a stopped sandbox (a task).'),
  'sandboxes.stop': call(
    z.object({ sandbox: SandboxRef, force: z.boolean().default(false) }),
    SandboxSchema,
    'Shut a sandbox down (force: power off).',
  ),
  'sandboxes.destroy': call(
    z.object({ sandbox: SandboxRef }),
    SandboxSchema,
    'Destroy a sandbox and everything of it on the host.',
  ),
  'sandboxes.extend': call(
    z.object({
      sandbox: SandboxRef,
      ttlMinutes: z
        .number()
        .int()
        .min(1)
        .max(60 * 24 * 30),
    }),
    SandboxSchema,
    'Set a new time to live from now.',
  ),
  'sandboxes.exec': call(
    z.object({
      sandbox: SandboxRef,
      command: z
        .string()
        .min(1)
        .max(1024 * 1024),
      ...ExecLimits,
      stdin: z
        .string()
        .max(16 * 1024 * 1024)
        .optional(),
    }),
    ExecResultSchema,
    'Run a command (or a multi-line bash script) as root in the sandbox.',
  ),
  'sandboxes.execStream': stream(
    z.object({
      sandbox: SandboxRef,
      command: z
        .string()
        .min(1)
        .max(1024 * 1024),
      ...ExecLimits,
    }),
    z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('stdout'), data: z.string() }),
      z.object({ kind: z.literal('stderr'), data: z.string() }),
      z.object({ kind: z.literal('exit'), result: ExecResultSchema }),
    ]),
    'Run a command and stream its output live; the last item is the exit.',
  ),
  'sandboxes.readFile': call(
    z.object({
      sandbox: SandboxRef,
      path: AbsPath,
      maxBytes: z
        .number()
        .int()
        .min(1)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
      /** A file over maxBytes gives its first maxBytes (truncated: true) instead of an error. */
      head: z.boolean().default(false),
    }),
    z.object({
      path: z.string(),
      /** The whole file's size (with head, possibly more than the bytes returned). */
      size: z.number().int(),
      encoding: z.enum(['utf8', 'base64']),
      content: z.string(),
      /** Set with head: only the first maxBytes were read. */
      truncated: z.boolean().optional(),
    }),
    'Read a file as root (utf8 when it is text, base64 otherwise).',
  ),
  'sandboxes.listDir': call(
    z.object({
      sandbox: SandboxRef,
      path: AbsPath,
      maxEntries: z.number().int().min(1).max(50_000).default(5000),
    }),
    z.object({
      path: z.string(),
      /** The directory with symlinks resolved. */
      resolved: z.string(),
      entries: z.array(DirEntrySchema),
      /** Entries in the directory; more than entries.length when the listing was cut at maxEntries. */
      total: z.number().int(),
      truncated: z.boolean(),
    }),
    'List a directory as root (one level, dot files included): types, sizes, modes, owners, link targets. A path that is not a directory is VALIDATION with data.notDirectory.',
  ),
  'sandboxes.writeFile': call(
    z.object({
      sandbox: SandboxRef,
      path: AbsPath,
      content: z.string().max(96 * 1024 * 1024),
      encoding: z.enum(['utf8', 'base64']).default('utf8'),
      mode: z
        .string()
        .regex(/^[0-7]{3,4}$/)
        .optional(),
    }),
    z.object({ path: z.string(), size: z.number().int() }),
    'Write a file as root (atomically).',
  ),
  'sandboxes.editFile': call(
    z.object({ sandbox: SandboxRef, path: AbsPath, oldString: z.string().min(1), newString: z.string() }),
    z.object({ path: z.string(), size: z.number().int() }),
    'Replace one unique occurrence of a string in a file.',
  ),
  'sandboxes.shell': stream(
    z.object({
      sandbox: SandboxRef,
      cols: z.number().int().min(10).max(1000).default(120),
      rows: z.number().int().min(5).max(500).default(32),
    }),
    z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('open'), sessionId: Id }),
      z.object({ kind: z.literal('data'), data: z.string() }),
      z.object({ kind: z.literal('exit'), code: z.number().int().nullable() }),
    ]),
    'An interactive shell (PTY) in the sandbox; send keys with sandboxes.shellInput.',
  ),
  'sandboxes.shellInput': call(
    z.object({
      sessionId: Id,
      data: z
        .string()
        .max(1024 * 1024)
        .optional(),
      cols: z.number().int().min(10).max(1000).optional(),
      rows: z.number().int().min(5).max(500).optional(),
    }),
    z.object({ ok: z.literal(true) }),
    'Keys for a shell session, and/or a new terminal size.',
  ),
  'sandboxes.egressAllow': call(
    z.object({ sandbox: SandboxRef, destination: Destination, presence: PresenceProofSchema.optional() }),
    SandboxSchema,
    'Let the sandbox reach a destination through the egress proxy.',
  ),
  'sandboxes.egressRevoke': call(
    z.object({ sandbox: SandboxRef, destination: Destination }),
    SandboxSchema,
    'Take a destination off the allowlist.',
  ),
  'sandboxes.reconcile': call(
    z.object({ host: HostRef.optional() }),
    z.object({
      hosts: z.array(
        z.object({
          hostId: Id,
          hostName: z.string(),
          cleaned: z.array(z.string()),
          adopted: z.array(z.string()),
          error: z.string().nullable(),
        }),
      ),
    }),
    "Compare the database with each host and clean Fluid's orphans (never anything that is not Fluid's).",
  ),
  'sandboxes.pool': call(
    z.object({}),
    z.array(PoolStatusSchema),
    'The warm pool per source (Settings → Sandboxes → Warm pool): members ready and being made, and why not more.',
  ),
  'bases.list': call(
    z.object({ host: HostRef.optional() }),
    z.array(BaseSchema),
    'Cached base copies of source VMs.',
  ),
  'bases.refresh': call(
    z.object({ host: HostRef.optional(), source: z.string().min(1) }),
    TaskSchema,
    "Take a fresh consistent copy of a source VM's disks (a task).",
  ),
  'bases.prune': call(
    z.object({ host: HostRef }),
    z.object({ removed: z.array(z.string()), freedBytes: z.number() }),
    'Remove base copies and warm templates no sandbox uses (they are taken again when needed).',
  ),
  'bases.warm': call(
    z.object({
      host: HostRef.optional(),
      source: z.string().min(1),
      vcpus: z.number().int().min(1).max(64).optional(),
      memoryMiB: z.number().int().min(256).max(262144).optional(),
    }),
    TaskSchema,
    "Build a source's warm template now (boot once, save with memory), so new sandboxes restore in seconds.",
  ),
  'snapshots.create': call(
    z.object({
      sandbox: SandboxRef,
      name: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[A-Za-z0-9._-]+$/),
      memory: z.boolean().default(true),
    }),
    SnapshotSchema,
    'Snapshot a sandbox (disk, plus memory when it is running).',
  ),
  'snapshots.list': call(
    z.object({ sandbox: SandboxRef }),
    z.array(SnapshotSchema),
    "A sandbox's snapshots.",
  ),
  'snapshots.restore': call(
    z.object({ sandbox: SandboxRef, snapshot: z.string().min(1) }),
    SandboxSchema,
    'Roll a sandbox back to a snapshot.',
  ),
  'snapshots.delete': call(
    z.object({ sandbox: SandboxRef, snapshot: z.string().min(1) }),
    z.object({ deleted: z.literal(true) }),
    'Delete a snapshot.',
  ),
  ...runsContract,
  'sandboxes.changed': event(
    z.object({ sandboxId: Id, state: SandboxState }),
    'A sandbox changed state or details.',
  ),
};
