/**
 * One tool registry for every agent door: the built-in agent loop, MCP, the HTTP API. A tool is
 * defined once (name, zod input, description, risk, read-only or not) and invoked through one gate:
 * mode check → input validation → policy (allow / ask / deny) → approval wait → run → audit.
 * Policy lives here, never in a door, so the doors cannot disagree.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AgentMode, ToolInfo } from '../../../shared/contract/agent.ts';
import { FluidError, isAbortError, toErrorPayload } from '../../../shared/errors.ts';
import type { Actor } from '../../../shared/rpc.ts';
import type { ApprovalService } from '../../approvals/service.ts';
import type { AuditLog } from '../../store/audit.ts';
import type { SettingsService } from '../../store/settings.ts';
import { decideRule, type RuleDecision } from './rules.ts';
import { Redactor, redactToolOutput, type TextRedactor } from '../redact.ts';

export type Risk = 'low' | 'medium' | 'high';

export interface ToolContext {
  /** Who calls: { door: 'agent', id: <session id> } for the built-in agent, { door: 'mcp', id: <client> } over MCP. */
  actor: Actor;
  sessionId: string | null;
  mode: AgentMode;
  signal: AbortSignal;
  /** Called when the call waits for a person's decision. */
  onApproval?: (approvalId: string) => void;
  /**
   * Redacts the outcome before it leaves the gate: the door's redactor, so placeholders stay stable
   * across its calls (a session, an MCP connection). Without one, the call gets a redactor of its own.
   */
  redactor?: TextRedactor;
}

export interface ToolOutput {
  /** What the model reads. */
  content: string;
  /** Structured result (MCP structuredContent, UIs). */
  data?: unknown;
  isError?: boolean;
}

export interface ToolDef<I extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  input: I;
  readOnly: boolean;
  risk: Risk;
  /** One line for approval requests and the audit log, e.g. `run_command sbx-1: systemctl restart nginx`. */
  summarize(input: z.output<I>): string;
  /** A decision the tool imposes before the rules (e.g. the shell policy for source VMs). */
  precheck?(input: z.output<I>, ctx: ToolContext): Promise<{ decision: 'deny'; reason: string } | null>;
  run(input: z.output<I>, ctx: ToolContext): Promise<ToolOutput>;
}

export interface ToolOutcome extends ToolOutput {
  isError: boolean;
  /** How many secrets were replaced in `content` (content and data are always redacted). */
  redactions: number;
  /**
   * The tool's own text before redaction, when it differed: for people (the app's raw output view),
   * never for a model. Doors that answer a model send `content` and `data` only.
   */
  unredacted?: string;
  /** How the call was decided. */
  decision: RuleDecision['decision'] | 'invalid' | 'unavailable';
  reason: string;
  approvalId?: string;
  durationMs: number;
}

export interface RegistryDeps {
  approvals: ApprovalService;
  audit: AuditLog;
  settings: SettingsService;
  /** The stored secret values (redacted wherever they appear). In memory: cheap per call. */
  knownSecrets?: () => readonly string[];
}

/**
 * Tool inputs are validated by zod; their JSON Schema is what models and MCP clients see. Built once
 * per schema (zod schemas are immutable: a changed input is a new schema object, so it misses the
 * cache) and frozen, because every model turn of every session sends it again.
 */
export function jsonSchemaOf(schema: z.ZodType): Readonly<Record<string, unknown>> {
  let js = schemaCache.get(schema);
  if (!js) {
    js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete js.$schema;
    deepFreeze(js);
    schemaCache.set(schema, js);
  }
  return js;
}

const schemaCache = new WeakMap<z.ZodType, Record<string, unknown>>();

function deepFreeze(v: unknown): void {
  if (!v || typeof v !== 'object' || Object.isFrozen(v)) return;
  Object.freeze(v);
  for (const x of Object.values(v)) deepFreeze(x);
}

export class ToolRegistry {
  private readonly tools = new Map<string, ToolDef>();
  private readonly d: RegistryDeps;
  /** The tool infos by mode, built once per set of registered tools. */
  private infos = new Map<AgentMode, readonly ToolInfo[]>();
  #version = 0;

  constructor(deps: RegistryDeps) {
    this.d = deps;
  }

  register<I extends z.ZodType>(def: ToolDef<I>): void {
    if (this.tools.has(def.name)) throw new Error(`tool ${def.name} is registered twice`);
    if (!/^[a-z][a-z0-9_]{1,63}$/.test(def.name)) throw new Error(`bad tool name ${def.name}`);
    this.tools.set(def.name, def as unknown as ToolDef);
    this.#version++;
    this.infos = new Map();
  }

  /** Changes whenever the set of tools changes (caches of what is derived from it compare it). */
  get version(): number {
    return this.#version;
  }

  /** A redactor for one door's conversation (an MCP connection): stable placeholders within it. */
  redactor(salt: string = randomUUID()): Redactor {
    return new Redactor({ salt, known: this.d.knownSecrets ?? (() => []) });
  }

  get(name: string): ToolDef | undefined {
    return this.tools.get(name);
  }

  /** The tools a session may see: in read-only mode only those that change nothing. */
  list(mode: AgentMode = 'edit'): ToolDef[] {
    return [...this.tools.values()].filter((t) => mode === 'edit' || t.readOnly);
  }

  info(mode: AgentMode = 'edit'): ToolInfo[] {
    let infos = this.infos.get(mode);
    if (!infos) {
      infos = this.list(mode).map((t) =>
        Object.freeze({
          name: t.name,
          description: t.description,
          readOnly: t.readOnly,
          risk: t.risk,
          inputSchema: jsonSchemaOf(t.input) as Record<string, unknown>,
        }),
      );
      this.infos.set(mode, infos);
    }
    return [...infos];
  }

  /** The gate every call goes through. Tool failures come back as error outcomes; a cancel throws. */
  async invoke(name: string, raw: unknown, ctx: ToolContext): Promise<ToolOutcome> {
    const started = Date.now();
    const redactor = ctx.redactor ?? this.redactor();
    // Every outcome leaves redacted, errors included (a message may quote a file or a command).
    const done = (o: Omit<ToolOutcome, 'durationMs' | 'redactions' | 'unredacted'>): ToolOutcome => {
      const safe = redactToolOutput(o, redactor);
      return {
        ...safe,
        ...(safe.content !== o.content ? { unredacted: o.content } : {}),
        durationMs: Date.now() - started,
      };
    };
    const tool = this.tools.get(name);
    if (!tool)
      return done({
        content: `There is no tool named ${name}.`,
        isError: true,
        decision: 'unavailable',
        reason: 'unknown tool',
      });
    if (ctx.mode === 'read-only' && !tool.readOnly) {
      return done({
        content: `${name} changes things and is not available in read-only mode.`,
        isError: true,
        decision: 'unavailable',
        reason: 'read-only mode',
      });
    }
    const parsed = tool.input.safeParse(raw ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues
        .map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`)
        .join('; ');
      return done({
        content: `Invalid arguments for ${name}: ${issues}`,
        isError: true,
        decision: 'invalid',
        reason: issues,
      });
    }
    const input = parsed.data;
    const summary = tool.summarize(input);
    const audit = (decision: string, extra: Record<string, unknown>) =>
      this.d.audit.append({
        actor: ctx.actor,
        action: 'tool.call',
        target: ctx.sessionId,
        data: { tool: name, summary, decision, mode: ctx.mode, ...extra },
      });

    const pre = await tool.precheck?.(input, ctx);
    if (pre) {
      audit('deny', { reason: pre.reason });
      return done({ content: `Denied: ${pre.reason}`, isError: true, decision: 'deny', reason: pre.reason });
    }
    const rule = decideRule(this.d.settings.get().agent.rules, {
      tool: name,
      args: input as Record<string, unknown>,
      mode: ctx.mode,
      risk: tool.risk,
    });
    if (rule.decision === 'deny') {
      audit('deny', { reason: rule.reason });
      return done({
        content: `Denied by policy: ${rule.reason}`,
        isError: true,
        decision: 'deny',
        reason: rule.reason,
      });
    }
    let approvalId: string | undefined;
    if (rule.decision === 'ask') {
      const a = this.d.approvals.request({
        kind: 'tool',
        title: summary,
        detail: `${tool.description.split('\n')[0]} (${rule.reason})`,
        risk: tool.risk,
        subject: { tool: name, args: input },
        requestedBy: ctx.actor,
        sessionId: ctx.sessionId,
        sandboxId:
          typeof (input as { sandbox_id?: unknown }).sandbox_id === 'string'
            ? (input as { sandbox_id: string }).sandbox_id
            : null,
      });
      approvalId = a.id;
      ctx.onApproval?.(a.id);
      let decided;
      try {
        decided = await this.d.approvals.wait(a.id, ctx.signal);
      } catch (e) {
        this.d.approvals.cancel(a.id, ctx.actor, 'the tool call was cancelled');
        throw e;
      }
      if (decided.status !== 'approved') {
        const who = decided.decidedBy ? ` by ${decided.decidedBy.door}:${decided.decidedBy.id}` : '';
        const why = `${name} was ${decided.status}${who}${decided.note ? `: ${decided.note}` : ''}`;
        audit('denied', { approvalId: a.id });
        return done({
          content: `Not done: ${why}. Do not retry the same action; choose another way or ask the user.`,
          isError: true,
          decision: 'ask',
          reason: why,
          approvalId,
        });
      }
    }
    try {
      const out = await tool.run(input, ctx);
      audit(rule.decision === 'ask' ? 'approved' : 'allow', {
        ok: !out.isError,
        approvalId: approvalId ?? null,
        durationMs: Date.now() - started,
      });
      return done({
        ...out,
        isError: !!out.isError,
        decision: rule.decision,
        reason: rule.reason,
        approvalId,
      });
    } catch (err) {
      if (isAbortError(err) || ctx.signal.aborted)
        throw err instanceof FluidError ? err : new FluidError('CANCELLED', 'The tool call was cancelled.');
      const p = toErrorPayload(err);
      audit('error', { error: p.code, approvalId: approvalId ?? null });
      return done({
        content: `Error (${p.code}): ${p.message}`,
        isError: true,
        decision: rule.decision,
        reason: rule.reason,
        approvalId,
      });
    }
  }
}
