import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { PresenceProofSchema } from './presence.ts';

export const SettingsSchema = z.object({
  ui: z
    .object({
      theme: z.enum(['system', 'light', 'dark']).default('system'),
    })
    .prefault({}),
  hosts: z
    .object({
      /** Where Fluid keeps base images, overlays and templates on each host (unless set per host). */
      storageDir: z.string().startsWith('/').default('/var/lib/fluid'),
      /** Preflight warns below this much free space in the storage dir. */
      minFreeDiskGiB: z.number().min(0).max(100000).default(10),
      /** Preflight warns below this much available memory. */
      minFreeMemoryMiB: z.number().int().min(0).default(1024),
      connectTimeoutSeconds: z.number().int().min(1).max(300).default(15),
    })
    .prefault({}),
  sandboxes: z
    .object({
      /** Sandboxes are destroyed by the janitor this long after creation unless extended. */
      defaultTtlMinutes: z.number().int().min(1).max(43200).default(240),
      /**
       * The host destroys an expired sandbox by itself (even with no Fluid process running) this long
       * after its expiry; Fluid's own janitor and sweeps act at the expiry. 0: the host acts at once.
       */
      hostExpiryGraceMinutes: z.number().int().min(0).max(10080).default(10),
      /** Admission limits per host; a request over them becomes an approval request. */
      maxCommittedVcpus: z.number().int().min(1).max(4096).nullable().default(null),
      maxCommittedMemoryMiB: z.number().int().min(256).nullable().default(null),
      maxSandboxesPerHost: z.number().int().min(1).max(1000).default(20),
      /** Keep at least this much host memory free after admitting a sandbox. */
      reserveMemoryMiB: z.number().int().min(0).default(1024),
      /** Destinations every new sandbox may reach through the egress proxy. */
      egressAllow: z.array(z.string().max(300)).max(200).default([]),
      /** Keep a saved, booted template per source and restore it for new sandboxes. */
      warmTemplates: z.boolean().default(true),
      /**
       * The warm pool, per source: `source=N` (or `host:source=N`) keeps N sandboxes of that source
       * restored, given their identity, logged into and paused, so a create takes one in under a second.
       */
      warmPool: z
        .array(
          z
            .string()
            .max(300)
            .regex(/^(?:[^:=\s]+:)?[^:=\s]+=\d{1,2}$/, 'source=N or host:source=N (N up to 99)'),
        )
        .max(50)
        .default([]),
      /** Hosts with less memory than this keep no warm pool (the members' memory stays reserved). */
      warmPoolMinHostMemoryMiB: z.number().int().min(0).default(8192),
      /**
       * Sandboxes an agent makes (a built-in session or an MCP client) live at most this long unless a
       * person extends them, so a session that fails or is abandoned does not leave them for hours.
       */
      sessionTtlMinutes: z.number().int().min(5).max(43200).default(60),
      /** A terminal nobody is attached to (the page closed) ends after this long. */
      terminalIdleMinutes: z.number().int().min(1).max(10080).default(30),
    })
    .prefault({}),
  agent: z
    .object({
      /** Stop a session after this many model turns (a runaway loop costs money). */
      maxSteps: z.number().int().min(1).max(1000).default(60),
      /** Stop a session when its estimated cost reaches this (USD). */
      maxCostUsd: z.number().min(0).max(10_000).default(5),
      /** Compact older turns when the context reaches this share of the model's window. */
      compactAt: z.number().min(0.2).max(0.98).default(0.8),
      /** Tool output kept in the model's context per call; the rest stays retrievable by handle. */
      toolOutputChars: z.number().int().min(1000).max(1_000_000).default(16_000),
      /**
       * Approval rules, first match wins, after which tools with risk "high" ask and the rest are
       * allowed. tool: a name or a glob (*); args: argument name → regular expression.
       */
      rules: z
        .array(
          z.object({
            tool: z.string().min(1).max(100),
            args: z
              .record(
                z.string(),
                z
                  .string()
                  .max(1000)
                  .refine((re) => {
                    try {
                      new RegExp(re);
                      return true;
                    } catch {
                      return false;
                    }
                  }, 'not a valid regular expression'),
              )
              .optional(),
            mode: z.enum(['edit', 'read-only']).optional(),
            decision: z.enum(['allow', 'ask', 'deny']),
          }),
        )
        .max(200)
        .default([]),
    })
    .prefault({}),
  approvals: z
    .object({
      /**
       * Let `fluid approval approve|deny --yes` decide without a terminal (scripts, CI). Off: only a
       * person on a terminal, in the app or in the web UI decides. Turning it on needs presence.
       */
      allowUnattendedCli: z.boolean().default(false),
      /**
       * How long an approved production apply stays usable after the decision (single use either
       * way). Lowering it tightens at once; raising it loosens (needs presence).
       */
      applyTtlMinutes: z.number().int().min(1).max(10080).default(60),
    })
    .prefault({}),
});
export type Settings = z.infer<typeof SettingsSchema>;

/** Every field optional and without its default, so a patch names exactly what it changes. */
function patchOf<S extends z.ZodRawShape>(section: z.ZodObject<S>) {
  const shape: Record<string, z.ZodType> = {};
  for (const [k, v] of Object.entries(section.shape)) {
    const field = v as z.ZodType;
    shape[k] = (field instanceof z.ZodDefault ? (field.unwrap() as z.ZodType) : field).optional();
  }
  return z.object(shape).strict() as unknown as z.ZodObject<{ [K in keyof S]: z.ZodOptional<S[K]> }>;
}

/** A partial update: any subset of the settings tree. */
export const SettingsPatchSchema = z
  .object({
    ui: patchOf(SettingsSchema.shape.ui.unwrap()).optional(),
    hosts: patchOf(SettingsSchema.shape.hosts.unwrap()).optional(),
    sandboxes: patchOf(SettingsSchema.shape.sandboxes.unwrap()).optional(),
    agent: patchOf(SettingsSchema.shape.agent.unwrap()).optional(),
    approvals: patchOf(SettingsSchema.shape.approvals.unwrap()).optional(),
  })
  .strict();
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

export const settingsContract = {
  'settings.get': call(z.object({}), SettingsSchema, 'Current settings with defaults filled in.'),
  'settings.update': call(
    SettingsPatchSchema.extend({ presence: PresenceProofSchema.optional() }),
    SettingsSchema,
    'Validate and apply a partial update. A person only; changes that loosen policy (rules, egress, limits, unattended decisions) need presence.',
  ),
  'settings.changed': event(SettingsSchema, 'Settings changed.'),
};
