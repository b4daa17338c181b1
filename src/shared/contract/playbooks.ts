/**
 * Playbooks: an Ansible playbook per sandbox (or written by hand), kept as immutable revisions, each
 * with the sha256 that names exactly what it applies; generated from the system diff; verified in
 * five steps before anyone reviews it; exported as a self-contained folder.
 *
 * A revision is the YAML text plus the files it ships beside it (`files/…` copied verbatim,
 * `templates/…` rendered by Ansible). Its `sha256` covers all of them: it is the SHA-256 of the
 * revision manifest (see `revisionManifest`), which lists the SHA-256 of `playbook.yml` and of every
 * shipped file. A revision without shipped files still has a manifest, so there is one definition.
 */
import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { ActorSchema, Id, IsoDate } from './common.ts';
import { TaskSchema } from './tasks.ts';

export const PLAYBOOK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const PlaybookName = z
  .string()
  .regex(
    PLAYBOOK_NAME_RE,
    'a playbook name is 1-64 letters, digits, ".", "-" or "_", starting with a letter or digit',
  );
export const PlaybookRef = z.string().min(1).max(128).describe('A playbook id or name');
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * Where a shipped file lives inside the playbook's folder: under files/ or templates/, made of plain
 * path components (no "..", no hidden components, nothing absolute), so it can never leave the
 * folder it is exported to, and nothing Ansible loads as code (library/, *_plugins/, group_vars/…)
 * can be shipped.
 */
export const BUNDLE_PATH_RE = /^(files|templates)(\/[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]{0,127}){1,32}$/;
export const BundlePath = z
  .string()
  .max(2048)
  .regex(BUNDLE_PATH_RE, 'a shipped file lives under files/ or templates/, in plain path components')
  .refine((p) => !p.split('/').some((c) => c === '.' || c === '..'), 'no "." or ".." components');

/** Who wrote a revision and how. */
export const RevisionOrigin = z.enum(['written', 'edited', 'generated', 'migrated']);

export const ShippedFileSchema = z.object({
  path: BundlePath,
  sha256: Sha256,
  size: z.number().int().nonnegative(),
  /** Whether the content is UTF-8 text (shown in the editor) or binary. */
  text: z.boolean(),
});
export type ShippedFile = z.infer<typeof ShippedFileSchema>;

/** A value the person supplies at apply time (a password, a key): never stored in a revision. */
export const SecretVarSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,99}$/),
  /** What it is and where it came from, e.g. "the password in /etc/app/db.ini (line 4)". */
  description: z.string(),
  /** Whether Fluid holds the sandbox's value (in its secret store) for verification and vault export. */
  held: z.boolean(),
});
export type SecretVar = z.infer<typeof SecretVarSchema>;

const ItemRef = z.object({ id: z.string(), kind: z.string(), key: z.string() });

/** What a generation did with each item of the diff. */
export const GenerationReportSchema = z.object({
  sandboxId: Id,
  diffId: Id,
  diffSha256: Sha256,
  /** Items expressed by a task: by Fluid ('generated') or by a task the agent or a person wrote. */
  covered: z.array(ItemRef.extend({ by: z.enum(['generated', 'written']), task: z.string() })),
  /** Items a person excluded from the change (left out). */
  excluded: z.array(ItemRef),
  /** Items no task expresses, and why. */
  uncovered: z.array(ItemRef.extend({ reason: z.string() })),
  /** Tasks written by the agent or a person that were kept, and what they cover. */
  written: z.array(
    z.object({ task: z.string(), covers: z.array(z.string()), kept: z.boolean(), why: z.string() }),
  ),
  secrets: z.array(SecretVarSchema),
  notes: z.array(z.string()),
});
export type GenerationReport = z.infer<typeof GenerationReportSchema>;

export const RevisionSummarySchema = z.object({
  id: Id,
  playbookId: Id,
  number: z.number().int().positive(),
  sha256: Sha256,
  /** SHA-256 of the playbook.yml bytes alone. */
  yamlSha256: Sha256,
  createdAt: IsoDate,
  author: ActorSchema,
  origin: RevisionOrigin,
  message: z.string(),
  files: z.array(ShippedFileSchema),
  secrets: z.array(SecretVarSchema),
});
export type RevisionSummary = z.infer<typeof RevisionSummarySchema>;

export const RevisionSchema = RevisionSummarySchema.extend({
  yaml: z.string(),
  generation: GenerationReportSchema.nullable(),
});
export type Revision = z.infer<typeof RevisionSchema>;

// ---- verification -----------------------------------------------------------------------------------

export const VERIFY_STEPS = ['syntax', 'lint', 'replay', 'rediff', 'idempotence'] as const;
export const VerifyStepId = z.enum(VERIFY_STEPS);
export type VerifyStepId = z.infer<typeof VerifyStepId>;
export const STEP_TITLE: Record<VerifyStepId, string> = {
  syntax: 'Safety and syntax check',
  lint: 'ansible-lint',
  replay: 'Replay on a fresh sandbox',
  rediff: 'Re-diff: the replay reproduces the change',
  idempotence: 'Second run changes nothing',
};

export const StepStatus = z.enum(['pending', 'running', 'passed', 'failed', 'skipped', 'cancelled']);

/** One task's result as Ansible's JSON events report it (never the task's output when no_log). */
export const TaskResultSchema = z.object({
  play: z.string(),
  task: z.string(),
  action: z.string(),
  host: z.string(),
  status: z.enum(['ok', 'changed', 'failed', 'skipped', 'unreachable']),
  changed: z.boolean(),
  handler: z.boolean(),
  message: z.string().nullable(),
  durationMs: z.number().nullable(),
});
export type TaskResult = z.infer<typeof TaskResultSchema>;

export const ItemDifferenceSchema = ItemRef.extend({
  /** 'missing' (the agent's change, not reproduced), 'extra' (the replay changed it, the agent did
   * not) or 'different' (both changed it, differently: `fields` says what). */
  difference: z.enum(['missing', 'extra', 'different']),
  fields: z.array(z.string()),
  detail: z.string(),
});
export type ItemDifferenceRow = z.infer<typeof ItemDifferenceSchema>;

export const VerifyStepSchema = z.object({
  id: VerifyStepId,
  title: z.string(),
  status: StepStatus,
  startedAt: IsoDate.nullable(),
  durationMs: z.number().nullable(),
  /** One line: what happened. */
  summary: z.string(),
  /** The step's full log (tool output), secrets never included. */
  log: z.string(),
  warnings: z.array(z.string()),
  /** replay/idempotence: per-task results; rediff: the item-by-item differences. */
  tasks: z.array(TaskResultSchema).optional(),
  differences: z.array(ItemDifferenceSchema).optional(),
});
export type VerifyStep = z.infer<typeof VerifyStepSchema>;

export const VerificationSchema = z.object({
  id: Id,
  playbookId: Id,
  revision: z.number().int().positive(),
  /** The revision's sha256 this result is about: any other head makes it stale. */
  sha256: Sha256,
  status: z.enum(['running', 'passed', 'failed', 'cancelled', 'interrupted']),
  /** The playbook has a newer revision than the one verified. */
  stale: z.boolean(),
  taskId: Id.nullable(),
  requestedBy: ActorSchema,
  startedAt: IsoDate,
  finishedAt: IsoDate.nullable(),
  /** The fresh sandbox the replay ran on (destroyed afterwards), and the agent's diff it was compared with. */
  replay: z
    .object({
      sandboxId: Id.nullable(),
      sandboxName: z.string().nullable(),
      baseFingerprint: z.string().nullable(),
      startPath: z.string().nullable(),
      destroyed: z.boolean(),
      agentDiffId: Id.nullable(),
      replayDiffId: Id.nullable(),
    })
    .nullable(),
  tools: z.object({ ansibleCore: z.string().nullable(), ansibleLint: z.string().nullable() }),
  steps: z.array(VerifyStepSchema),
  timings: z.record(z.string(), z.number()),
});
export type Verification = z.infer<typeof VerificationSchema>;

export const VerificationBriefSchema = VerificationSchema.pick({
  id: true,
  revision: true,
  sha256: true,
  status: true,
  stale: true,
  startedAt: true,
  finishedAt: true,
}).extend({ steps: z.array(z.object({ id: VerifyStepId, status: StepStatus })) });
export type VerificationBrief = z.infer<typeof VerificationBriefSchema>;

// ---- playbooks ----------------------------------------------------------------------------------------

export const PlaybookSummarySchema = z.object({
  id: Id,
  name: z.string(),
  sandboxId: Id.nullable(),
  sandboxName: z.string().nullable(),
  sessionId: z.string().nullable(),
  createdAt: IsoDate,
  updatedAt: IsoDate,
  createdBy: ActorSchema,
  head: RevisionSummarySchema.nullable(),
  revisions: z.number().int().nonnegative(),
  tasks: z.number().int().nonnegative(),
  /** The latest verification (of any revision); `stale` when it is not about the head. */
  verification: VerificationBriefSchema.nullable(),
});
export type PlaybookSummary = z.infer<typeof PlaybookSummarySchema>;

export const DiagnosticSchema = z.object({
  severity: z.enum(['error', 'warning', 'info']),
  message: z.string(),
  /** 1-based, inclusive start; end exclusive. */
  line: z.number().int().positive(),
  column: z.number().int().positive(),
  endLine: z.number().int().positive(),
  endColumn: z.number().int().positive(),
  source: z.enum(['yaml', 'structure', 'safety', 'ansible']),
});
export type Diagnostic = z.infer<typeof DiagnosticSchema>;

export const ExportFileSchema = z.object({
  path: z.string(),
  encoding: z.enum(['utf8', 'base64']),
  content: z.string(),
  /** Octal file mode for the exported copy ('0600' for anything holding secrets). */
  mode: z.string().regex(/^0[0-7]{3}$/),
});
export type ExportFile = z.infer<typeof ExportFileSchema>;

export const playbooksContract = {
  'playbooks.list': call(
    z.object({ sandbox: z.string().max(128).optional().describe('Only the playbooks of this sandbox') }),
    z.array(PlaybookSummarySchema),
    'Playbooks, most recently changed first.',
  ),
  'playbooks.get': call(
    z.object({
      playbook: PlaybookRef,
      revision: z.number().int().positive().optional().describe('Default: the head'),
    }),
    z.object({ playbook: PlaybookSummarySchema, revision: RevisionSchema.nullable() }),
    'A playbook and one of its revisions (YAML and generation report).',
  ),
  'playbooks.create': call(
    z.object({
      name: PlaybookName,
      sandbox: z.string().max(128).optional().describe('The sandbox whose change it reproduces'),
      yaml: z
        .string()
        .max(4 * 1024 * 1024)
        .optional()
        .describe('The first revision; default: an empty play'),
    }),
    PlaybookSummarySchema,
    'Create a playbook (its first revision).',
  ),
  'playbooks.save': call(
    z.object({
      playbook: PlaybookRef,
      yaml: z.string().max(4 * 1024 * 1024),
      /** The head the edit started from; a newer head is a CONFLICT (nothing is lost). */
      baseRevision: z.number().int().positive(),
      message: z.string().max(500).optional(),
    }),
    RevisionSchema,
    'Save an edited playbook as a new revision (its earlier verification becomes stale).',
  ),
  'playbooks.validate': call(
    z.object({ yaml: z.string().max(4 * 1024 * 1024) }),
    z.object({ diagnostics: z.array(DiagnosticSchema) }),
    'Check YAML as Ansible reads it (YAML 1.1), its structure and what Fluid will run: diagnostics with positions.',
  ),
  'playbooks.revisions': call(
    z.object({ playbook: PlaybookRef }),
    z.array(RevisionSummarySchema),
    "A playbook's revisions, newest first.",
  ),
  'playbooks.revisionDiff': call(
    z.object({
      playbook: PlaybookRef,
      from: z.number().int().positive(),
      to: z.number().int().positive(),
    }),
    z.object({
      from: RevisionSummarySchema,
      to: RevisionSummarySchema,
      /** Unified diff of playbook.yml and of every shipped text file that changed. */
      diff: z.string(),
      files: z.array(
        z.object({ path: z.string(), change: z.enum(['added', 'removed', 'modified', 'unchanged']) }),
      ),
    }),
    'What changed between two revisions.',
  ),
  'playbooks.file': call(
    z.object({ playbook: PlaybookRef, revision: z.number().int().positive(), path: BundlePath }),
    z.object({ path: z.string(), sha256: Sha256, encoding: z.enum(['utf8', 'base64']), content: z.string() }),
    'A file a revision ships beside the playbook.',
  ),
  'playbooks.generate': call(
    z.object({
      sandbox: z.string().min(1).max(128),
      playbook: PlaybookName.optional().describe("Default: the sandbox's playbook, created if needed"),
      diff: Id.optional().describe('A stored diff; default: read the sandbox again now'),
    }),
    TaskSchema,
    "Generate a playbook revision from the sandbox's diff, merged with the tasks already written (a task).",
  ),
  'playbooks.verify': call(
    z.object({ playbook: PlaybookRef, revision: z.number().int().positive().optional() }),
    TaskSchema,
    'Verify a revision in five steps: syntax, lint, replay on a fresh sandbox, re-diff, second run (a task).',
  ),
  'playbooks.verification': call(
    z.object({ playbook: PlaybookRef, id: Id.optional().describe('Default: the latest') }),
    VerificationSchema.nullable(),
    'A verification with each step’s status and log.',
  ),
  'playbooks.verifications': call(
    z.object({ playbook: PlaybookRef }),
    z.array(VerificationBriefSchema),
    "A playbook's verifications, newest first.",
  ),
  'playbooks.export': call(
    z.object({
      playbook: PlaybookRef,
      revision: z.number().int().positive().optional(),
      vaultPassword: z
        .string()
        .min(8)
        .max(1024)
        .optional()
        .describe('Write the secrets Fluid holds into an ansible-vault file encrypted with this password'),
    }),
    z.object({ sha256: Sha256, revision: z.number().int(), files: z.array(ExportFileSchema) }),
    'The self-contained folder of a revision: playbook, shipped files, vars to fill in, an example inventory, the verification report.',
  ),
  'playbooks.changed': event(
    z.object({ playbookId: Id, revision: z.number().int().nullable(), verificationId: Id.nullable() }),
    'A playbook got a revision, or one of its verifications changed.',
  ),
};

/** The actor Fluid creates verification sandboxes as: nobody runs commands in those sandboxes. */
export const VERIFY_ACTOR = { door: 'system', id: 'playbook-verify' } as const;

/**
 * The manifest whose SHA-256 is a revision's sha256: the playbook's hash, then each shipped file's,
 * sorted by path. `sha256sum -c` checks the hashes; `sha256sum MANIFEST` gives the revision hash.
 */
export function revisionManifest(
  yamlSha256: string,
  files: ReadonlyArray<{ path: string; sha256: string }>,
): string {
  const lines = [`${yamlSha256}  playbook.yml`];
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)))
    lines.push(`${f.sha256}  ${f.path}`);
  return lines.join('\n') + '\n';
}
