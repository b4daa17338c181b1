import { z } from 'zod';
import { call, event, stream } from '../rpc.ts';
import { ErrorPayloadSchema, Id, IsoDate } from './common.ts';
import { PresenceProofSchema } from './presence.ts';

export const AgentMode = z.enum(['edit', 'read-only']);
export type AgentMode = z.infer<typeof AgentMode>;
export const ProviderKind = z.enum(['anthropic', 'openai']);

// ---- providers -----------------------------------------------------------------------------------

export const ProviderSchema = z.object({
  id: Id,
  kind: ProviderKind,
  label: z.string(),
  /** null: the provider's default endpoint. */
  baseUrl: z.string().nullable(),
  model: z.string(),
  /** The API key is write-only: kept in the secret store, never returned. */
  hasKey: z.boolean(),
  contextTokens: z.number().int(),
  /** USD per million tokens, for the cost meter and the cost cap; null: no price is known. */
  inputPerMTok: z.number().min(0).nullable(),
  outputPerMTok: z.number().min(0).nullable(),
  /**
   * Where the price comes from: a person set it on the provider, Fluid's model table knows the
   * model, or nothing prices it (sessions then refuse to start: their cost cap could not be kept).
   */
  priceSource: z.enum(['person', 'table', 'unknown']),
  isDefault: z.boolean(),
});
export type Provider = z.infer<typeof ProviderSchema>;

const ProviderInput = z.object({
  id: Id.optional(),
  kind: ProviderKind,
  label: z.string().min(1).max(80),
  baseUrl: z.string().url().max(500).nullable().optional(),
  model: z.string().min(1).max(200),
  /** Set or replace the key; omit to keep the stored one; empty string to remove it. */
  apiKey: z.string().max(4096).optional(),
  contextTokens: z.number().int().min(1000).max(10_000_000).optional(),
  /** A person's price for the model (USD per million tokens); set both, or null both to use the model table. */
  inputPerMTok: z.number().min(0).max(10_000).nullable().optional(),
  outputPerMTok: z.number().min(0).max(10_000).nullable().optional(),
  /** true: the default for new sessions from now on. A new provider is the default while none is, unless false. */
  isDefault: z.boolean().optional(),
});

// ---- tools ---------------------------------------------------------------------------------------

export const ToolInfoSchema = z.object({
  name: z.string(),
  description: z.string(),
  readOnly: z.boolean(),
  risk: z.enum(['low', 'medium', 'high']),
  /** JSON Schema of the input. */
  inputSchema: z.record(z.string(), z.unknown()),
});
export type ToolInfo = z.infer<typeof ToolInfoSchema>;

export const PolicyDecision = z.enum(['allow', 'deny']);

// ---- sessions ------------------------------------------------------------------------------------

export const SessionStatus = z.enum(['idle', 'running', 'waiting-approval', 'stopped', 'failed', 'done']);
export type SessionStatus = z.infer<typeof SessionStatus>;

export const UsageSchema = z.object({
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  costUsd: z.number(),
  /** Estimated tokens of the context sent with the last request. */
  contextTokens: z.number().int(),
});

export const SessionSchema = z.object({
  id: Id,
  title: z.string(),
  status: SessionStatus,
  mode: AgentMode,
  providerId: z.string(),
  model: z.string(),
  /** The host and source VM the task is about (a hint for the agent and a default for tools). */
  host: z.string().nullable(),
  source: z.string().nullable(),
  usage: UsageSchema,
  steps: z.number().int(),
  maxSteps: z.number().int(),
  maxCostUsd: z.number(),
  lastError: ErrorPayloadSchema.nullable(),
  createdAt: IsoDate,
  updatedAt: IsoDate,
  createdBy: z.object({ door: z.string(), id: z.string() }),
});
export type Session = z.infer<typeof SessionSchema>;

export const BlockSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({
    type: z.literal('tool_use'),
    id: z.string(),
    name: z.string(),
    input: z.record(z.string(), z.unknown()),
  }),
  z.object({
    type: z.literal('tool_result'),
    toolUseId: z.string(),
    content: z.string(),
    isError: z.boolean().optional(),
    /** The full output, when the content in the transcript was cut (agent.toolOutput fetches it). */
    handle: z.string().optional(),
  }),
]);
export type TranscriptBlock = z.infer<typeof BlockSchema>;

export const TranscriptMessageSchema = z.object({
  seq: z.number().int(),
  role: z.enum(['user', 'assistant']),
  content: z.array(BlockSchema),
  /** Replaced by a compaction summary in what the model sees (still shown to people). */
  compacted: z.boolean(),
  createdAt: IsoDate,
});
export type TranscriptMessage = z.infer<typeof TranscriptMessageSchema>;

export const ToolCallStatus = z.enum(['running', 'waiting-approval', 'done', 'denied', 'error']);

export const AgentEventSchema = z.discriminatedUnion('type', [
  /** The first item of agent.watch: everything so far. */
  z.object({
    type: z.literal('snapshot'),
    session: SessionSchema,
    messages: z.array(TranscriptMessageSchema),
  }),
  z.object({ type: z.literal('message'), message: TranscriptMessageSchema }),
  z.object({ type: z.literal('text_delta'), text: z.string() }),
  /** A retry discarded partial text of the reply in progress. */
  z.object({ type: z.literal('text_reset') }),
  z.object({
    type: z.literal('tool_call'),
    id: z.string(),
    name: z.string(),
    input: z.record(z.string(), z.unknown()),
    status: ToolCallStatus,
    approvalId: z.string().optional(),
    output: z.string().optional(),
    isError: z.boolean().optional(),
    handle: z.string().optional(),
  }),
  z.object({ type: z.literal('status'), session: SessionSchema }),
  z.object({ type: z.literal('retry'), attempt: z.number().int(), delayMs: z.number(), reason: z.string() }),
  z.object({ type: z.literal('compaction'), summary: z.string(), compactedThrough: z.number().int() }),
]);
export type AgentEvent = z.infer<typeof AgentEventSchema>;

const SessionRef = z.object({ sessionId: Id });

/** What a session made and did: its sandboxes, snapshots, approvals and audit rows, with names. */
export const SessionLinksSchema = z.object({
  sandboxes: z.array(
    z.object({
      id: Id,
      name: z.string(),
      state: z.string(),
      hostName: z.string(),
      sourceName: z.string(),
      expiresAt: IsoDate.nullable(),
      createdAt: IsoDate,
      /** Not destroyed yet (running, stopped, being created…). */
      live: z.boolean(),
    }),
  ),
  snapshots: z.array(
    z.object({ id: Id, name: z.string(), sandboxId: Id, sandboxName: z.string(), createdAt: IsoDate }),
  ),
  approvals: z.array(
    z.object({
      id: Id,
      kind: z.string(),
      title: z.string(),
      status: z.string(),
      risk: z.string(),
      createdAt: IsoDate,
      sandboxId: z.string().nullable(),
      sandboxName: z.string().nullable(),
    }),
  ),
  /** Newest first: rows by the session, about it, or about its sandboxes. */
  audit: z.array(
    z.object({
      seq: z.number().int(),
      ts: IsoDate,
      actor: z.string(),
      action: z.string(),
      target: z.string().nullable(),
      /** The target's name when it is one of the session's sandboxes (or the session itself). */
      targetName: z.string().nullable(),
    }),
  ),
  auditTotal: z.number().int(),
});
export type SessionLinks = z.infer<typeof SessionLinksSchema>;

/** The demo a person starts from the Agent view (src/core/agent/demo.ts). */
export const DemoSchema = z.object({
  name: z.string(),
  title: z.string(),
  description: z.string(),
  /** The task the session is started with. */
  task: z.string(),
  /** The source VM it works on, the host that has it, and the production target that is a copy of it. */
  source: z.string(),
  host: z.string().nullable(),
  target: z.string().nullable(),
  /** What to do first when this installation is not set up for it; null when it can run. */
  missing: z.string().nullable(),
  /** The provider the demo's sessions use: the scripted model, served inside Fluid's own process. */
  providerId: z.string(),
  model: z.string(),
  /** The scripted model's Anthropic endpoint (null while the demo cannot run). */
  baseUrl: z.string().nullable(),
  /** A demo session that has not ended yet (the demo runs one session at a time). */
  running: Id.nullable(),
});
export type Demo = z.infer<typeof DemoSchema>;

export const agentContract = {
  'providers.list': call(
    z.object({}),
    z.array(ProviderSchema),
    'Configured model providers (keys are never returned).',
  ),
  'providers.save': call(
    ProviderInput.extend({ presence: PresenceProofSchema.optional() }),
    ProviderSchema,
    "Add or change a provider; the key goes to the secret store. A price below what the provider's model costs now (it is what the cost cap counts with) is a person's decision and needs presence.",
  ),
  'providers.delete': call(
    z.object({ id: Id }),
    z.object({ deleted: z.literal(true) }),
    'Remove a provider and its stored key.',
  ),
  'providers.test': call(
    z.object({ id: Id }),
    z.object({ ok: z.boolean(), models: z.array(z.string()), message: z.string() }),
    "Check a provider's endpoint and key by listing its models.",
  ),
  'tools.list': call(
    z.object({ mode: AgentMode.optional() }),
    z.array(ToolInfoSchema),
    'The agent tools (one registry for the app, the CLI, MCP and HTTP).',
  ),
  'policy.check': call(
    z.object({ mode: z.literal('read-only').default('read-only'), command: z.string().max(1024 * 1024) }),
    z.object({ command: z.string(), decision: PolicyDecision, reason: z.string() }),
    'Would this shell command be allowed on a source or production VM?',
  ),
  'agent.sessions.list': call(
    z.object({ limit: z.number().int().min(1).max(500).default(100) }),
    z.array(SessionSchema),
    'Agent sessions, newest first.',
  ),
  'agent.sessions.get': call(SessionRef, SessionSchema, 'One session.'),
  'agent.sessions.create': call(
    z.object({
      task: z.string().min(1).max(100_000),
      title: z.string().max(200).optional(),
      mode: AgentMode.default('edit'),
      providerId: Id.optional(),
      model: z.string().max(200).optional(),
      host: z.string().max(128).optional(),
      source: z.string().max(256).optional(),
      maxSteps: z.number().int().min(1).max(1000).optional(),
      maxCostUsd: z.number().min(0).max(10_000).optional(),
    }),
    SessionSchema,
    'Start an agent session on a task; it runs in the background (watch it with agent.watch).',
  ),
  'agent.send': call(
    z.object({ sessionId: Id, text: z.string().min(1).max(100_000) }),
    SessionSchema,
    'Add a message and continue (also resumes a stopped or interrupted session).',
  ),
  'agent.stop': call(
    SessionRef,
    SessionSchema,
    'Stop the session now (the model stream and running tools are cancelled).',
  ),
  'agent.setMode': call(
    z.object({ sessionId: Id, mode: AgentMode }),
    SessionSchema,
    'Switch between edit and read-only.',
  ),
  'agent.transcript': call(
    SessionRef,
    z.object({ messages: z.array(TranscriptMessageSchema) }),
    'The persisted transcript.',
  ),
  'agent.toolOutput': call(
    z.object({
      sessionId: Id,
      handle: z.string(),
      offset: z.number().int().min(0).default(0),
      limit: z
        .number()
        .int()
        .min(1)
        .max(10 * 1024 * 1024)
        .default(256 * 1024),
    }),
    z.object({ content: z.string(), total: z.number().int(), offset: z.number().int() }),
    'The full output of a tool call whose content in the transcript was cut.',
  ),
  'agent.watch': stream(
    SessionRef,
    AgentEventSchema,
    'The session now (snapshot), then every event until you stop watching.',
  ),
  'agent.demo': call(
    z.object({}),
    DemoSchema,
    "The shipped demo: whether this installation is set up for it (the lab's production VM registered as a target) and, when it is, its scripted model, started in Fluid's own process. A person's door only.",
  ),
  'agent.sessions.links': call(
    SessionRef.extend({ auditLimit: z.number().int().min(1).max(1000).default(100) }),
    SessionLinksSchema,
    "A session's sandboxes, snapshots, approvals and audit rows.",
  ),
  'agent.sessions.destroySandboxes': call(
    SessionRef.extend({
      /** Keep these (ids or names); the session's other live sandboxes are destroyed. */
      keep: z.array(z.string().max(128)).max(100).default([]),
    }),
    z.object({
      destroyed: z.array(z.object({ id: Id, name: z.string() })),
      failed: z.array(z.object({ id: Id, name: z.string(), error: z.string() })),
      kept: z.array(z.object({ id: Id, name: z.string() })),
    }),
    'Destroy the sandboxes a session made (when it ended or failed and they are no longer wanted).',
  ),
  'agent.changed': event(z.object({ sessionId: Id, status: SessionStatus }), 'A session changed status.'),
};
