/**
 * The MCP door: Fluid's one tool registry served to external agents (Claude Code, any MCP client).
 *
 * Every tool call goes through `ToolRegistry.invoke`, the same gate as the built-in agent: mode check,
 * input validation, policy rules, approval wait, redaction, audit. This file only translates between
 * MCP and the registry; it holds no policy. The caller is recorded as { door: 'mcp', id: <client name> }.
 * Each connection has one redactor, so a secret keeps the same placeholder across its calls.
 *
 * A call that needs a person's approval blocks until a person decides in the Fluid app or on their
 * own terminal. The client is told that a person must decide, never how: it may have a shell as the
 * same user, and an approval is a person's decision, not a command to run. It gets a logging message
 * once and, when the request carried a progress token, progress notifications every `heartbeatMs` for
 * as long as the call lasts (waiting or running).
 *
 * Long calls and client timeouts: the heartbeat is what keeps them alive. Claude Code sends a progress
 * token; it aborts HTTP calls that stay silent for CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT (default 5 min;
 * reset by progress) and any call after MCP_TOOL_TIMEOUT (default ~28 h). SDK clients time out after
 * 60 s unless they pass `resetTimeoutOnProgress: true` (or a longer `timeout`). A client without a
 * progress token and with a short timeout gives up on a call that waits for a person; its request is
 * then cancelled, and so is the approval request.
 * Cancelling the request (`notifications/cancelled`, the connection closing, a dropped HTTP response)
 * cancels the approval request and the tool run.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  LoggingLevelSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  McpError,
  ErrorCode,
  type CallToolResult,
  type LoggingLevel,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { AgentMode } from '../../shared/contract/agent.ts';
import { toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { ToolOutcome, ToolRegistry } from '../agent/tools/registry.ts';
import type { Logger } from '../platform/logger.ts';
import { fluidVersion } from '../version.ts';

/** What the MCP door needs from the core (a Core has all of it). */
export interface McpCore {
  tools: ToolRegistry;
  approvals: ApprovalService;
  log?: Logger;
}

export interface McpServerOptions {
  /** 'read-only' exposes (and allows) only the tools that change nothing. Fixed for the server's life. */
  mode: AgentMode;
  /**
   * The actor id recorded for calls. Default: the client's name from the initialize request
   * (clientInfo.name), or 'mcp-client' when it sent none. The name is the client's own claim: a label.
   */
  clientName?: string;
  /** How often a call waiting for approval reports progress. Default 10 s. */
  heartbeatMs?: number;
}

export const DEFAULT_CLIENT_NAME = 'mcp-client';
export const PENDING_APPROVALS_URI = 'fluid://approvals/pending';

/** What a client is told about a pending approval: who decides and where, not how. */
export const WHO_DECIDES = 'A person must decide in the Fluid app or on their own terminal.';

const INSTRUCTIONS = `Fluid runs infrastructure work on disposable clones (sandboxes) of real VMs.
Inspect and change sandboxes, not the source VMs; commands on source VMs are limited to a read-only policy.
Some calls need a person's approval: such a call waits until a person decides in the Fluid app or on
their own terminal. Do not try to decide it yourself; tell the user what is waiting and why. While it
waits the server sends progress notifications and a log message naming the approval id. A denied call
comes back as an error: do not retry the same action; choose another way or ask the user. Secrets in
results are replaced by placeholders such as [REDACTED:password#1]. Pending approvals: resource
${PENDING_APPROVALS_URI}.`;

/** `list_hosts` → `List hosts`. */
export function toolTitle(name: string): string {
  const words = name.split('_').join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Printable, bounded: the client name goes into the audit log. */
export function sanitizeClientName(name: unknown): string | null {
  if (typeof name !== 'string') return null;
  const clean = name
    .replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 64);
  return clean || null;
}

/** The MCP tool list of a registry in one mode. */
export function mcpTools(tools: ToolRegistry, mode: AgentMode): Tool[] {
  return tools.info(mode).map((t) => {
    const schema = t.inputSchema as Tool['inputSchema'];
    return {
      name: t.name,
      title: toolTitle(t.name),
      description: t.description,
      inputSchema: schema.type === 'object' ? schema : { type: 'object' },
      annotations: {
        title: toolTitle(t.name),
        readOnlyHint: t.readOnly,
        // Only meaningful for tools that change something; high-risk ones may destroy or overwrite.
        destructiveHint: !t.readOnly && t.risk === 'high',
        openWorldHint: false,
      },
      _meta: { 'fluid/risk': t.risk },
    };
  });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A registry outcome as an MCP tool result. */
export function toCallToolResult(o: ToolOutcome): CallToolResult {
  const result: CallToolResult = { content: [{ type: 'text', text: o.content }], isError: o.isError };
  if (isPlainObject(o.data)) result.structuredContent = o.data;
  return result;
}

const errorResult = (text: string): CallToolResult => ({ content: [{ type: 'text', text }], isError: true });

const SEVERITY = new Map<LoggingLevel, number>(LoggingLevelSchema.options.map((l, i) => [l, i]));

/** How long close() waits for aborted calls to wind down (their approval requests get cancelled). */
const DRAIN_MS = 5_000;

/** The SDK server, plus: close() aborts the calls in flight and waits until they have settled. */
export class FluidMcpServer extends Server {
  readonly inFlight = new Set<Promise<unknown>>();

  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => {});
    return p;
  }

  override async close(): Promise<void> {
    await super.close();
    if (!this.inFlight.size) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS))),
    ]);
    clearTimeout(timer);
  }
}

/**
 * One MCP server over the registry. Connect it to one transport (stdio, or one streamable HTTP
 * session); closing the transport aborts the calls in flight.
 */
export function createMcpServer(core: McpCore, opts: McpServerOptions): FluidMcpServer {
  const mode = opts.mode;
  const heartbeatMs = Math.max(100, opts.heartbeatMs ?? 10_000);
  // One redactor per connection: the registry redacts every outcome with it.
  const redactor = core.tools.redactor();
  const server = new FluidMcpServer(
    { name: 'fluid', title: 'Fluid', version: fluidVersion() },
    {
      capabilities: { tools: { listChanged: false }, resources: {}, logging: {} },
      instructions: INSTRUCTIONS,
    },
  );
  let minLevel: LoggingLevel | null = null;

  const actor = (): Actor => ({
    door: 'mcp',
    id:
      sanitizeClientName(opts.clientName) ??
      sanitizeClientName(server.getClientVersion()?.name) ??
      DEFAULT_CLIENT_NAME,
  });

  // The client's chosen log level (the SDK's default handler would filter only server-wide sends).
  server.setRequestHandler(SetLevelRequestSchema, (req) => {
    minLevel = req.params.level;
    return {};
  });

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: mcpTools(core.tools, mode) }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const name = req.params.name;
    const progressToken = req.params._meta?.progressToken;
    const who = actor();
    const started = Date.now();
    const send = (n: Parameters<typeof extra.sendNotification>[0]) =>
      extra
        .sendNotification(n)
        .catch((err: unknown) =>
          core.log?.debug('mcp notification not sent', { err: toErrorPayload(err).message }),
        );

    // Progress for the whole call, not only the approval wait: clients abort calls that stay silent
    // (Claude Code over HTTP: 5 minutes by default), and a command in a sandbox may run for an hour.
    let approval: { id: string } | null = null;
    let n = 0;
    const tick = () => {
      if (progressToken === undefined) return;
      n += 1;
      const secs = Math.round((Date.now() - started) / 1000);
      let waiting = false;
      if (approval) {
        try {
          waiting = core.approvals.get(approval.id).status === 'pending';
        } catch {
          waiting = false;
        }
      }
      void send({
        method: 'notifications/progress',
        params: {
          progressToken,
          progress: n,
          message: waiting
            ? `Waiting for approval ${approval!.id} (${secs}s). ${WHO_DECIDES}`
            : `${name} is running (${secs}s).`,
        },
      });
    };
    const heartbeat = progressToken === undefined ? undefined : setInterval(tick, heartbeatMs);

    const onApproval = (approvalId: string) => {
      approval = { id: approvalId };
      core.log?.info('mcp call waits for approval', {
        tool: name,
        approvalId,
        client: who.id,
        progress: progressToken !== undefined,
      });
      if (minLevel === null || SEVERITY.get('warning')! >= SEVERITY.get(minLevel)!) {
        void send({
          method: 'notifications/message',
          params: {
            level: 'warning',
            logger: 'fluid',
            data: `${name} is waiting for approval ${approvalId}. ${WHO_DECIDES}`,
          },
        });
      }
      tick();
    };

    try {
      const outcome = await server.track(
        core.tools.invoke(name, req.params.arguments ?? {}, {
          actor: who,
          sessionId: null,
          mode,
          signal: extra.signal,
          onApproval,
          redactor,
        }),
      );
      return toCallToolResult(outcome);
    } catch (err) {
      // A cancelled request gets no response (the SDK drops it); anything else is reported.
      if (extra.signal.aborted) return errorResult('Cancelled.');
      const p = toErrorPayload(err);
      core.log?.error('mcp tool call failed', { tool: name, err: p });
      return errorResult(redactor.redact(`Error (${p.code}): ${p.message}`).text);
    } finally {
      if (heartbeat) clearInterval(heartbeat);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: [
      {
        uri: PENDING_APPROVALS_URI,
        name: 'pending-approvals',
        title: 'Pending approvals',
        description: 'Approval requests waiting for a person, newest first.',
        mimeType: 'application/json',
      },
    ],
  }));

  server.setRequestHandler(ReadResourceRequestSchema, (req) => {
    if (req.params.uri !== PENDING_APPROVALS_URI) {
      throw new McpError(ErrorCode.InvalidParams, `No resource ${req.params.uri}.`);
    }
    const pending = core.approvals.list({ status: 'pending', limit: 100 }).map((a) => ({
      id: a.id,
      kind: a.kind,
      title: redactor.redact(a.title).text,
      detail: redactor.redact(a.detail).text,
      risk: a.risk,
      requestedBy: a.requestedBy,
      sandboxId: a.sandboxId,
      createdAt: a.createdAt,
      expiresAt: a.expiresAt,
      decision: WHO_DECIDES,
    }));
    return {
      contents: [
        { uri: PENDING_APPROVALS_URI, mimeType: 'application/json', text: JSON.stringify(pending, null, 2) },
      ],
    };
  });

  return server;
}
