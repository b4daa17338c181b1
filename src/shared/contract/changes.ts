/**
 * Production targets and changes: the last third of the review loop.
 *
 * A **target** is a machine Fluid applies approved changes to over SSH: an address, a user, a
 * credential Fluid holds in its secret store, an optional jump through a registered host, and how to
 * become root. Its host key is confirmed by fingerprint on first contact and pinned.
 *
 * A **change** is one immutable bundle (`ChangeBundle`): the playbook revision's bytes, the secrets it
 * needs by reference (with a keyed digest of each value), the inventory slice, the Ansible version,
 * the diff it came from, the verification that proved it, the target's **baseline** (a fingerprint of
 * the target's state over everything the playbook touches) and the production **preview** (check mode
 * with --diff). The sha256 of the bundle's canonical JSON is the change's identity and exactly what an
 * approval names (its `subjectHash`). An approval is single-use and expires; an apply runs exactly the
 * approved bytes, one per target at a time, and is refused (CONFLICT, `data.reason`) when anything
 * moved: `STALE` names what drifted on the target.
 */
import { z } from 'zod';
import { call, event, stream } from '../rpc.ts';
import { ActorSchema, ErrorPayloadSchema, HostRef, Id, IsoDate } from './common.ts';
import { PreflightCheckSchema } from './hosts.ts';
import { ShippedFileSchema, TaskResultSchema, VerificationBriefSchema } from './playbooks.ts';
import { TaskSchema } from './tasks.ts';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
export const TargetRef = z.string().min(1).max(128).describe('A target id or name');
export const ChangeRef = z.string().min(1).max(128).describe('A change id (or a unique prefix of it)');

// ---- targets ----------------------------------------------------------------------------------------

/** How the target's user becomes root for the playbook (a password prompt is never answered). */
export const BecomeMethod = z.enum(['sudo', 'doas', 'none']);
export type BecomeMethod = z.infer<typeof BecomeMethod>;

export const TargetCheckSchema = z.object({
  checkedAt: IsoDate,
  ok: z.boolean(),
  checks: z.array(PreflightCheckSchema),
  facts: z.object({
    hostname: z.string().nullable(),
    os: z.string().nullable(),
    python: z.string().nullable(),
  }),
});
export type TargetCheck = z.infer<typeof TargetCheckSchema>;

export const TargetSchema = z.object({
  id: Id,
  name: z.string(),
  address: z.string(),
  port: z.number().int(),
  user: z.string(),
  become: BecomeMethod,
  /** The credential Fluid holds (the private key stays in the secret store). */
  credential: z.object({ type: z.literal('key'), publicKey: z.string(), fingerprint: z.string() }),
  /** Reached through this registered host (its pinned SSH connection), or directly. */
  jump: z.object({ hostId: Id, hostName: z.string() }).nullable(),
  hostKey: z.object({ type: z.string(), fingerprint: z.string() }).nullable(),
  /** The source VM this target is the production copy of (sandboxes are made from it). */
  sourceVm: z.object({ hostId: Id, hostName: z.string(), vm: z.string() }).nullable(),
  createdAt: IsoDate,
  createdBy: ActorSchema,
  lastCheck: TargetCheckSchema.nullable(),
  /** The apply holding the target's lock, if one runs. */
  lockedBy: z.object({ applyId: Id, since: IsoDate }).nullable(),
  /** The state recorded after the last successful apply. */
  lastBaseline: z.object({ sha256: Sha256, takenAt: IsoDate, applyId: Id }).nullable(),
});
export type Target = z.infer<typeof TargetSchema>;

const Address = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or IP address (letters, digits, ".", ":", "-", "_")');
const User = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'a valid user name');
const Port = z.number().int().min(1).max(65535);
const Name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "-", "_", starting with a letter or digit');

export const TargetCredentialInput = z.discriminatedUnion('type', [
  /** An unencrypted OpenSSH or PEM private key; Fluid keeps it in its secret store. */
  z.object({
    type: z.literal('key'),
    privateKey: z
      .string()
      .min(32)
      .max(64 * 1024),
  }),
  /** A key file on the machine running Fluid's backend, read once and kept in the secret store. */
  z.object({ type: z.literal('keyFile'), path: z.string().min(1).max(4096) }),
]);

// ---- the bundle ---------------------------------------------------------------------------------------

export const BUNDLE_FORMAT = 'fluid-change/1';

/** What the baseline fingerprints on the target, derived from the diff's items and the playbook's tasks. */
export const ScopeSchema = z.object({
  packages: z.array(z.string()),
  files: z.array(z.string()),
  units: z.array(z.string()),
  users: z.array(z.string()),
  groups: z.array(z.string()),
  sysctl: z.array(z.string()),
});
export type Scope = z.infer<typeof ScopeSchema>;

const FileState = z
  .object({
    type: z.string(),
    mode: z.string(),
    user: z.string().nullable(),
    group: z.string().nullable(),
    size: z.number().int(),
    sha256: Sha256.nullable(),
    target: z.string().nullable(),
    /** Cron files: sha256 of each entry (comments and blank lines aside, whitespace normalised). */
    entries: z.array(Sha256).optional(),
  })
  .nullable();

/** The target's state over a scope, as read there by Fluid's read-only state program (state.py). */
export const TargetStateSchema = z.object({
  packages: z.record(z.string(), z.string().nullable()),
  files: z.record(z.string(), FileState),
  units: z.record(
    z.string(),
    z.object({ load: z.string(), active: z.string(), enabled: z.string(), fragment: z.string().nullable() }),
  ),
  users: z.record(
    z.string(),
    z
      .object({
        uid: z.number().int(),
        gid: z.number().int(),
        gecos: z.string(),
        home: z.string(),
        shell: z.string(),
        groups: z.array(z.string()),
        /** set, locked, disabled or empty; plus a digest of the shadow field (never the hash itself). */
        password: z.string().nullable(),
        passwordDigest: z.string().nullable(),
      })
      .nullable(),
  ),
  groups: z.record(z.string(), z.object({ gid: z.number().int(), members: z.array(z.string()) }).nullable()),
  sysctl: z.record(z.string(), z.string().nullable()),
});
export type TargetState = z.infer<typeof TargetStateSchema>;

export const ChangeBaselineSchema = z.object({
  /** sha256 of the canonical JSON of { scope, state }. */
  sha256: Sha256,
  scope: ScopeSchema,
  state: TargetStateSchema,
  /** Tasks whose effect is not fingerprinted (say, a command without creates/removes), in words. */
  unscoped: z.array(z.string()),
});
export type ChangeBaseline = z.infer<typeof ChangeBaselineSchema>;

/** One task of a check-mode run, with what it would change (its --diff, unless no_log). */
export const PreviewTaskSchema = TaskResultSchema.extend({ diff: z.string().nullable() });
export type PreviewTask = z.infer<typeof PreviewTaskSchema>;

export const ChangeBundleSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  target: z.object({
    id: Id,
    name: z.string(),
    address: z.string(),
    port: z.number().int(),
    user: z.string(),
    become: BecomeMethod,
    hostKeyFingerprint: z.string(),
    credentialFingerprint: z.string(),
    jump: z.object({ hostId: Id, name: z.string(), fingerprint: z.string().nullable() }).nullable(),
  }),
  playbook: z.object({
    id: Id,
    name: z.string(),
    revision: z.number().int().positive(),
    /** The revision's sha256 (its manifest: playbook.yml and every shipped file). */
    sha256: Sha256,
    yamlSha256: Sha256,
    /** The exact bytes of playbook.yml; shipped files by sha256 (their bytes are checked on use). */
    yaml: z.string(),
    files: z.array(ShippedFileSchema),
  }),
  vars: z.object({
    /**
     * Secrets by reference: the secret-store entry and an HMAC of the value under a key only this
     * installation holds (so a changed value is a changed bundle, and the bundle reveals nothing).
     */
    secrets: z.array(z.object({ name: z.string(), ref: z.string(), digest: z.string() })),
  }),
  inventory: z.string(),
  tools: z.object({
    ansibleCore: z.string(),
    python: z.string().nullable(),
    collections: z.record(z.string(), z.string()),
  }),
  diff: z
    .object({
      sandboxId: Id,
      sandboxName: z.string(),
      diffId: Id,
      sha256: Sha256,
      items: z.number().int(),
      excluded: z.array(z.string()),
    })
    .nullable(),
  verification: z.object({
    id: Id,
    sha256: Sha256,
    status: z.literal('passed'),
    finishedAt: IsoDate,
    steps: z.array(z.object({ id: z.string(), status: z.string() })),
  }),
  baseline: ChangeBaselineSchema,
  /** The check-mode preview against the target: per task, whether it would change and its diff. */
  preview: z.object({
    sha256: Sha256,
    changed: z.number().int(),
    tasks: z.array(PreviewTaskSchema.omit({ durationMs: true, message: true })),
  }),
});
export type ChangeBundle = z.infer<typeof ChangeBundleSchema>;

// ---- changes ------------------------------------------------------------------------------------------

export const ChangeStatus = z.enum([
  'submitting',
  'submit-failed',
  'awaiting-approval',
  'approved',
  'denied',
  'applying',
  'applied',
  'apply-failed',
  /** Approval expired, used, or the verification went stale (the playbook was edited): submit again. */
  'void',
]);
export type ChangeStatus = z.infer<typeof ChangeStatus>;

export const DriftItemSchema = z.object({
  kind: z.enum(['package', 'file', 'unit', 'user', 'group', 'sysctl']),
  key: z.string(),
  /** What differs ('sha256', 'mode', 'version', 'active', …). */
  fields: z.array(z.string()),
  detail: z.string(),
});
export type DriftItem = z.infer<typeof DriftItemSchema>;

export const PreviewSchema = z.object({
  takenAt: IsoDate,
  durationMs: z.number(),
  sha256: Sha256,
  changed: z.number().int(),
  tasks: z.array(PreviewTaskSchema),
  log: z.string(),
  warnings: z.array(z.string()),
});
export type Preview = z.infer<typeof PreviewSchema>;

export const ApplyStatus = z.enum([
  'queued',
  'waiting',
  'checking',
  'running',
  'post-check',
  'succeeded',
  'failed',
  'cancelled',
  'refused',
  'interrupted',
]);
export type ApplyStatus = z.infer<typeof ApplyStatus>;

/** Why an apply was refused (CONFLICT data.reason). */
export const RefusalReason = z.enum([
  'STALE',
  'USED',
  'EXPIRED',
  'UNAPPROVED',
  'VERIFICATION',
  'INTEGRITY',
  'TOOLS',
  'TARGET',
]);
export type RefusalReason = z.infer<typeof RefusalReason>;

export const ApplySchema = z.object({
  id: Id,
  changeId: Id,
  changeTitle: z.string(),
  bundleSha256: Sha256,
  target: z.object({ id: Id, name: z.string() }),
  approvalId: Id.nullable(),
  approvedBy: ActorSchema.nullable(),
  approvedVia: z.string().nullable(),
  status: ApplyStatus,
  /** One line: what happened. */
  summary: z.string(),
  refusal: z
    .object({ reason: RefusalReason, message: z.string(), drift: z.array(DriftItemSchema) })
    .nullable(),
  requestedBy: ActorSchema,
  taskId: Id.nullable(),
  startedAt: IsoDate,
  finishedAt: IsoDate.nullable(),
  /** Per-task results of the run (the JSON events), in order. */
  tasks: z.array(TaskResultSchema),
  /** Check mode after the run: production should need nothing more. */
  postCheck: z
    .object({
      changed: z.number().int(),
      tasks: z.array(PreviewTaskSchema),
      /** Items of the change whose state on the target is not what the sandbox had. */
      mismatches: z.array(DriftItemSchema),
      matches: z.boolean(),
    })
    .nullable(),
  baselineAfter: z.object({ sha256: Sha256 }).nullable(),
  timings: z.record(z.string(), z.number()),
  /** The whole log (only in changes.applyGet). */
  log: z.string().optional(),
});
export type Apply = z.infer<typeof ApplySchema>;

export const ChangeSchema = z.object({
  id: Id,
  title: z.string(),
  /** The bundle's sha256: its identity, and what an approval names. Null until submitted. */
  sha256: Sha256.nullable(),
  status: ChangeStatus,
  /** Why the status is what it is, in words. */
  statusDetail: z.string(),
  target: z.object({ id: Id, name: z.string() }),
  playbook: z.object({ id: Id, name: z.string(), revision: z.number().int(), sha256: Sha256 }),
  sandbox: z.object({ id: Id, name: z.string() }).nullable(),
  diff: z.object({ id: Id, sha256: Sha256, items: z.number().int() }).nullable(),
  verification: VerificationBriefSchema.nullable(),
  baseline: z
    .object({
      sha256: Sha256,
      takenAt: IsoDate,
      counts: z.record(z.string(), z.number().int()),
      unscoped: z.array(z.string()),
    })
    .nullable(),
  preview: PreviewSchema.nullable(),
  approval: z
    .object({
      id: Id,
      status: z.string(),
      decidedBy: ActorSchema.nullable(),
      decidedVia: z.string().nullable(),
      decidedAt: IsoDate.nullable(),
      /** An approved apply can be used once, until then. */
      usableUntil: IsoDate.nullable(),
      usedBy: Id.nullable(),
    })
    .nullable(),
  applies: z.array(ApplySchema),
  warnings: z.array(z.string()),
  error: ErrorPayloadSchema.nullable(),
  submitTaskId: Id.nullable(),
  createdAt: IsoDate,
  createdBy: ActorSchema,
  sessionId: z.string().nullable(),
});
export type Change = z.infer<typeof ChangeSchema>;

export const ApplyEventSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('state'), apply: ApplySchema }),
  z.object({ kind: z.literal('log'), data: z.string() }),
  z.object({ kind: z.literal('end'), apply: ApplySchema }),
]);

export const changesContract = {
  // targets
  'targets.list': call(z.object({}), z.array(TargetSchema), 'Production targets.'),
  'targets.get': call(z.object({ target: TargetRef }), TargetSchema, 'One target.'),
  'targets.probe': call(
    z.object({ address: Address, port: Port.default(22), jump: HostRef.optional() }),
    z.object({
      address: z.string(),
      port: z.number().int(),
      hostKey: z.object({ type: z.string(), fingerprint: z.string() }),
      known: z.object({ id: Id, name: z.string(), matches: z.boolean() }).nullable(),
    }),
    "Fetch a target's SSH host key without logging in (through the jump host when given), to confirm its fingerprint.",
  ),
  'targets.add': call(
    z.object({
      name: Name,
      address: Address,
      port: Port.default(22),
      user: User,
      credential: TargetCredentialInput,
      jump: HostRef.optional().describe('Reach the target through this registered host'),
      become: BecomeMethod.default('sudo'),
      /** The fingerprint a person confirmed; the target must present exactly this key. */
      acceptFingerprint: z.string().startsWith('SHA256:'),
      sourceVm: z.object({ host: HostRef, vm: z.string().min(1).max(256) }).optional(),
    }),
    TargetSchema,
    'Register a production target after its fingerprint was confirmed; logs in once and checks that it can become root. A person only.',
  ),
  'targets.trust': call(
    z.object({ target: TargetRef, acceptFingerprint: z.string().startsWith('SHA256:') }),
    TargetSchema,
    'Pin a new host key after a deliberate change (changes submitted before then can no longer be applied). A person only.',
  ),
  'targets.check': call(
    z.object({ target: TargetRef }),
    TargetSchema,
    'Log in with the pinned key and the held credential, check that the user can become root and that Python is there; records the result.',
  ),
  'targets.remove': call(
    z.object({ target: TargetRef }),
    z.object({ removed: z.literal(true), id: Id }),
    'Forget a target and its credential. A person only; refused while an apply runs.',
  ),
  'targets.changed': event(
    z.object({ targetId: Id, change: z.enum(['added', 'updated', 'removed', 'checked', 'locked']) }),
    'A target was added, checked, locked for an apply, or removed.',
  ),

  // changes
  'changes.submit': call(
    z
      .object({
        target: TargetRef,
        sandbox: z
          .string()
          .min(1)
          .max(128)
          .optional()
          .describe("The sandbox whose playbook's head is the change"),
        playbook: z.string().min(1).max(128).optional(),
        revision: z.number().int().positive().optional().describe('Default: the head'),
        title: z.string().min(1).max(200).optional(),
      })
      .refine((i) => i.sandbox || i.playbook, 'name the sandbox or the playbook'),
    z.object({ change: ChangeSchema, task: TaskSchema }),
    'Submit a change for review: verify the playbook if needed, take the target’s baseline, preview on the target in check mode with --diff (read-only), seal the bundle and ask for approval (a task).',
  ),
  'changes.get': call(
    z.object({ change: ChangeRef }),
    ChangeSchema,
    'One change, with its preview and applies.',
  ),
  'changes.list': call(
    z.object({
      target: TargetRef.optional(),
      sandbox: z.string().max(128).optional(),
      limit: z.number().int().min(1).max(500).default(100),
    }),
    z.array(ChangeSchema.omit({ preview: true })),
    'Changes, newest first.',
  ),
  'changes.bundle': call(
    z.object({ change: ChangeRef }),
    z.object({ sha256: Sha256, json: z.string(), bundle: ChangeBundleSchema }),
    'The sealed bundle: its canonical JSON (whose sha256 is the change’s identity).',
  ),
  'changes.apply': call(
    z.object({ change: ChangeRef }),
    z.object({ apply: ApplySchema, task: TaskSchema }),
    'Apply an approved change to its target (a task): waits for the target’s lock, re-takes the baseline (refused as STALE if the target moved), uses the approval once, runs exactly the approved bytes, then checks that the target needs nothing more. A person only.',
  ),
  'changes.applies': call(
    z.object({
      target: TargetRef.optional(),
      change: ChangeRef.optional(),
      limit: z.number().int().min(1).max(500).default(50),
    }),
    z.array(ApplySchema),
    'Applies, newest first (the history of a target or of a change).',
  ),
  'changes.applyGet': call(z.object({ apply: Id }), ApplySchema, 'One apply, with its whole log.'),
  'changes.watchApply': stream(
    z.object({ apply: Id }),
    ApplyEventSchema,
    'An apply now, then its log as it is written and each change of its state, until it ends.',
  ),
  'changes.changed': event(
    z.object({ changeId: Id, status: ChangeStatus, applyId: Id.nullable() }),
    'A change was submitted, decided, applied or went void.',
  ),
};
