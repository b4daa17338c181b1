/**
 * The agent loop of one session run: build the context (system prompt, tools of the session's mode,
 * the transcript or its compaction summary), stream the model, persist its reply, run each tool call
 * through the registry (the one gate: mode, validation, policy, approvals, audit), persist the
 * results, and go again until the model ends its turn, a limit is reached, or the run is stopped.
 */
import type { AgentEvent, AgentMode, TranscriptBlock } from '../../shared/contract/agent.ts';
import type { Settings } from '../../shared/contract/settings.ts';
import { FluidError, cancelled, isAbortError, type ErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SettingsService } from '../store/settings.ts';
import {
  COMPACTION_SYSTEM,
  SUMMARY_MAX_TOKENS,
  estimateTokens,
  messagesChars,
  modelMessages,
  pickCut,
  summaryRequestText,
} from './compaction.ts';
import type {
  ModelProvider,
  ModelRequest,
  StopReason,
  ToolDefinition,
  ToolUseBlock,
  Usage,
} from './providers/types.ts';
import type { Provider } from '../../shared/contract/agent.ts';
import { unpricedMessage, type Price } from './providers-store.ts';
import type { Redactor } from './redact.ts';
import type { SessionRow, SessionStore } from './sessions.ts';
import {
  READ_TOOL_OUTPUT,
  ReadToolOutputInput,
  capOutput,
  readToolOutputDefinition,
  sliceOutput,
} from './tool-output.ts';
import type { ToolRegistry } from './tools/registry.ts';
import type { StepGate } from './gate.ts';

/** Output budget of one model turn. */
export const MAX_OUTPUT_TOKENS = 8192;

export type ToolCallEvent = Extract<AgentEvent, { type: 'tool_call' }>;

// ---------------------------------------------------------------------------------------------------
// System prompt

export function systemPrompt(
  s: { mode: AgentMode; host: string | null; source: string | null },
  now: Date,
): string {
  const parts = [
    `You are the agent of Fluid, a tool for infrastructure work on disposable sandboxes. A sandbox is a copy-on-write clone of a real virtual machine (a "source VM") on a libvirt host: it has the source's disk, its own identity, full root access for you, and an isolated network whose outbound traffic goes through a proxy that only lets allowed destinations through. You diagnose problems, install, configure, upgrade and fix software in a sandbox and verify the result there. People then review exactly what changed (a system diff and an Ansible playbook) before anything reaches production.`,
    `How you work:
- Never change a source or production VM. They are read-only for you: inspect them only with run_source_command and read_source_file (commands that could change anything are refused). Make every change in a sandbox (create_sandbox), where you are root.
- Inspect before you change. Look at the real state first (service status, configuration files, package versions, logs, listening ports) and base your plan on what you saw, not on assumptions. Never claim an output you did not see.
- Change one thing at a time, then verify it in the sandbox: read the file back, check the syntax (nginx -t, apachectl -t, sshd -t, visudo -c, …), restart or reload the service, and check that it runs and answers. If a check fails, fix it or undo the change before going on.
- Use edit_file for small changes to existing files, write_file for new files, run_command for packages, services and checks. Commands run without a terminal: pass -y and DEBIAN_FRONTEND=noninteractive, and never start pagers or editors.
- Keep notes of what you change and where: sandbox id, file paths, packages, services, users. Record each verified change as a playbook task when playbook tools are available.
- Finish with a short report: what you found, what you changed in which sandbox (files, packages, services), how you verified it, and what is left for a person. Leave the sandbox running for review unless you are asked to remove it.
- Some actions wait for a person's approval. When one is denied, do not try the same action again: take another way, or explain what you need and stop.
- If the VM or host you were asked to work on does not exist or cannot be used, say so and stop; never substitute another one.
- Long tool results are cut in the middle; the marker names a handle. Call read_tool_output with it when you need the part that was cut.
- Secrets are hidden from you: keys, passwords, tokens and private keys appear as [REDACTED:kind#n] placeholders (the same secret always as the same placeholder). Never write a placeholder into a file or a command: edit around such lines so the real values stay in place, and tell the user when a task needs a secret you cannot see.`,
    s.mode === 'read-only'
      ? `Mode: READ-ONLY. You can look but not change: list and inspect hosts, VMs and sandboxes, read files and run read-only commands on sources. Tools that change anything are not available. Investigate, explain what you found, and propose the changes as steps for a person (or for a later session in edit mode).`
      : `Mode: edit. You may create sandboxes and change anything inside them; source and production VMs stay read-only.`,
  ];
  if (s.host || s.source) {
    const what = [
      s.source ? `the source VM "${s.source}"` : null,
      s.host ? `${s.source ? 'on ' : ''}the host "${s.host}"` : null,
    ]
      .filter(Boolean)
      .join(' ');
    parts.push(
      `This session is about ${what}. Use ${s.source && s.host ? 'them' : 'it'} unless the user names another (clone that source to work on it).`,
    );
  }
  parts.push(`Today is ${now.toISOString().slice(0, 10)}.`);
  return parts.join('\n\n');
}

// ---------------------------------------------------------------------------------------------------
// The run

export interface LiveRun {
  readonly id: string;
  readonly ac: AbortController;
  /** Text of the reply being streamed (for watchers that connect mid-turn). */
  partial: string;
  /** Tool calls in progress, by id (for watchers that connect mid-call). */
  readonly calls: Map<string, ToolCallEvent>;
  /** User messages that arrived while running (already redacted); added before the next model turn. */
  readonly pending: string[];
  /** Why the run was stopped, and the status it ends in (stopped; idle on shutdown). */
  stop: { status: 'stopped' | 'idle'; error: ErrorPayload } | null;
}

export interface LoopHost {
  store: SessionStore;
  tools: ToolRegistry;
  approvals: ApprovalService;
  settings: SettingsService;
  clock: Clock;
  log: Logger;
  provider(id: string): Provider;
  /**
   * The price of the session's model at its provider, as just read (null: nothing prices it; the
   * session must not run).
   */
  price(row: SessionRow, provider: Provider): Price | null;
  model(row: SessionRow): ModelProvider;
  redactor(sessionId: string): Redactor;
  emit(sessionId: string, ev: AgentEvent): void;
  /** Spreads the steps of many sessions over passes of the event loop (see gate.ts). */
  gate?: StepGate;
  /** Persist a change of the session row and tell watchers (status event; agent.changed on a new status). */
  update(sessionId: string, patch: Parameters<SessionStore['update']>[1]): SessionRow;
  /** The run's last update: it no longer takes messages (a later agent.send starts a new run). */
  end(sessionId: string, patch: Parameters<SessionStore['update']>[1]): SessionRow;
}

export function costOf(p: Price, u: Usage): number {
  const read = u.cacheReadTokens ?? 0;
  const write = u.cacheWriteTokens ?? 0;
  const plain = Math.max(0, u.inputTokens - read - write);
  // Cache reads cost a tenth of the input price, cache writes a quarter more (the common list prices).
  const input = plain * p.inputPerMTok + read * p.inputPerMTok * 0.1 + write * p.inputPerMTok * 1.25;
  return (input + u.outputTokens * p.outputPerMTok) / 1_000_000;
}

export function toolDefinitions(tools: ToolRegistry, mode: AgentMode, maxChars: number): ToolDefinition[] {
  return [...toolSet(tools, mode, maxChars).defs];
}

interface ToolSet {
  version: number;
  defs: readonly ToolDefinition[];
  /** Their size in the request, for the context estimate. */
  chars: number;
}

const toolSets = new WeakMap<ToolRegistry, Map<string, ToolSet>>();

/** The tool definitions of a mode, built once per set of registered tools (every turn sends them). */
export function toolSet(tools: ToolRegistry, mode: AgentMode, maxChars: number): ToolSet {
  let byKey = toolSets.get(tools);
  if (!byKey) toolSets.set(tools, (byKey = new Map()));
  const key = `${mode}:${maxChars}`;
  const hit = byKey.get(key);
  if (hit && hit.version === tools.version) return hit;
  const defs: ToolDefinition[] = tools
    .info(mode)
    .map((t) => Object.freeze({ name: t.name, description: t.description, inputSchema: t.inputSchema }));
  if (!defs.some((d) => d.name === READ_TOOL_OUTPUT))
    defs.push(Object.freeze(readToolOutputDefinition(maxChars)));
  const set = { version: tools.version, defs: Object.freeze(defs), chars: JSON.stringify(defs).length };
  byKey.set(key, set);
  return set;
}

/** Why the next model turn must not happen, or null. */
export function limitReached(r: SessionRow): ErrorPayload | null {
  if (r.steps >= r.max_steps)
    return {
      code: 'DENIED',
      message: `Stopped at the step limit: ${r.steps} model turns (this session allows ${r.max_steps}). Send a message to continue with ${r.max_steps} more.`,
      data: { limit: 'steps', steps: r.steps, maxSteps: r.max_steps },
    };
  if (r.cost_usd > 0 && r.cost_usd >= r.max_cost_usd)
    return {
      code: 'DENIED',
      message: `Stopped at the cost limit: $${r.cost_usd.toFixed(4)} spent (this session allows $${r.max_cost_usd.toFixed(2)}). Send a message to continue with $${r.max_cost_usd.toFixed(2)} more.`,
      data: { limit: 'cost', costUsd: r.cost_usd, maxCostUsd: r.max_cost_usd },
    };
  return null;
}

const actorOf = (sessionId: string): Actor => ({ door: 'agent', id: sessionId });

/** Runs the session until its turn ends. Never throws: the outcome is in the session's status. */
export async function runSession(h: LoopHost, run: LiveRun): Promise<void> {
  const id = run.id;
  const signal = run.ac.signal;
  try {
    for (;;) {
      await h.gate?.wait();
      if (signal.aborted) throw cancelled('The session');
      flushPending(h, run);
      let row = h.store.row(id);
      const limit = limitReached(row);
      if (limit) {
        h.end(id, { status: 'stopped', last_error: limit });
        return;
      }
      const settings = h.settings.get().agent;
      const provider = h.provider(row.provider_id);
      // Without a price the cost cap caps nothing: no turn runs (the price may have been removed).
      const price = h.price(row, provider);
      if (!price) {
        h.end(id, {
          status: 'stopped',
          last_error: {
            code: 'VALIDATION',
            message: unpricedMessage(provider, row.model, row.max_cost_usd),
            data: { limit: 'cost', priceKnown: false },
          },
        });
        return;
      }
      const model = h.model(row);
      const toolsNow = toolSet(h.tools, row.mode, settings.toolOutputChars);
      const tools = [...toolsNow.defs];
      const system = systemPrompt(row, h.clock.now());
      const fixedChars = system.length + toolsNow.chars;
      let messages = modelMessages(
        h.store.messages(id, 0, row.compacted_through),
        row.summary,
        row.compacted_through,
      );
      const estimate = estimateTokens(fixedChars + messagesChars(messages), {
        tokens: row.context_tokens,
        chars: row.context_chars,
      });
      if (estimate >= settings.compactAt * provider.contextTokens) {
        if (await compact(h, run, row, model, price)) {
          row = h.store.row(id);
          messages = modelMessages(
            h.store.messages(id, 0, row.compacted_through),
            row.summary,
            row.compacted_through,
          );
        }
      }
      const totalChars = fixedChars + messagesChars(messages);
      const maxTokens = Math.max(1024, Math.min(MAX_OUTPUT_TOKENS, Math.floor(provider.contextTokens / 4)));
      const turn = await streamTurn(h, run, model, { system, messages, tools, maxTokens, model: row.model });
      await h.gate?.wait();

      // Account and persist the reply.
      const usage: Usage = turn.usage ?? {
        inputTokens: Math.ceil(totalChars / 4),
        outputTokens: Math.ceil(JSON.stringify(turn.content).length / 4),
      };
      const content = turn.content;
      // The reply and its accounting in one commit.
      row = h.store.atomically(() => {
        const before = h.store.row(id);
        const msg = h.store.append(id, 'assistant', content);
        run.partial = '';
        h.emit(id, { type: 'message', message: msg });
        return h.update(id, {
          steps: before.steps + 1,
          input_tokens: before.input_tokens + usage.inputTokens,
          output_tokens: before.output_tokens + usage.outputTokens,
          cost_usd: before.cost_usd + costOf(price, usage),
          context_tokens: usage.inputTokens,
          context_chars: totalChars,
        });
      });

      const uses = turn.toolUses;
      if (!uses.length) {
        if (run.pending.length) continue;
        h.end(id, {
          status: turn.stopReason === 'refusal' ? 'failed' : 'done',
          last_error: endNote(turn.stopReason),
        });
        return;
      }
      await runTools(h, run, uses, settings);
    }
  } catch (err) {
    if (signal.aborted || isAbortError(err)) {
      if (run.partial.trim()) {
        const msg = h.store.append(id, 'assistant', [{ type: 'text', text: run.partial }]);
        h.emit(id, { type: 'message', message: msg });
      }
      run.partial = '';
      flushPending(h, run);
      const stop = run.stop ?? {
        status: 'stopped',
        error: { code: 'CANCELLED', message: 'The session was stopped.' },
      };
      h.end(id, { status: stop.status, last_error: stop.error });
    } else {
      const p =
        err instanceof FluidError
          ? err.toPayload()
          : { code: 'INTERNAL' as const, message: err instanceof Error ? err.message : String(err) };
      if (p.code === 'INTERNAL') h.log.error('agent session failed', { sessionId: id, err });
      h.end(id, { status: 'failed', last_error: p });
    }
  }
}

function endNote(stop: StopReason): ErrorPayload | null {
  if (stop === 'max_tokens')
    return {
      code: 'UNAVAILABLE',
      message: 'The last reply was cut at the output limit. Send a message to let the agent continue.',
    };
  if (stop === 'refusal') return { code: 'DENIED', message: 'The model declined to continue this task.' };
  return null;
}

function flushPending(h: LoopHost, run: LiveRun): void {
  if (!run.pending.length) return;
  const texts = run.pending.splice(0);
  const msg = h.store.append(
    run.id,
    'user',
    texts.map((text) => ({ type: 'text', text })),
  );
  h.emit(run.id, { type: 'message', message: msg });
}

interface Turn {
  content: TranscriptBlock[];
  toolUses: ToolUseBlock[];
  stopReason: StopReason;
  usage: Usage | null;
}

async function streamTurn(
  h: LoopHost,
  run: LiveRun,
  model: ModelProvider,
  req: Omit<ModelRequest, 'signal'>,
): Promise<Turn> {
  run.partial = '';
  let usage: Usage | null = null;
  let done: { stopReason: StopReason; content: TranscriptBlock[]; toolUses: ToolUseBlock[] } | null = null;
  for await (const ev of model.stream({ ...req, signal: run.ac.signal })) {
    if (ev.type === 'text_delta') {
      run.partial += ev.text;
      h.emit(run.id, { type: 'text_delta', text: ev.text });
    } else if (ev.type === 'retry') {
      h.emit(run.id, { type: 'retry', attempt: ev.attempt, delayMs: ev.delayMs, reason: ev.reason });
      if (ev.discardPartial) {
        run.partial = '';
        h.emit(run.id, { type: 'text_reset' });
      }
    } else if (ev.type === 'usage') {
      usage = {
        inputTokens: ev.inputTokens,
        outputTokens: ev.outputTokens,
        ...(ev.cacheReadTokens ? { cacheReadTokens: ev.cacheReadTokens } : {}),
        ...(ev.cacheWriteTokens ? { cacheWriteTokens: ev.cacheWriteTokens } : {}),
      };
    } else if (ev.type === 'done') {
      const toolUses = ev.message.content.filter((b): b is ToolUseBlock => b.type === 'tool_use');
      const content: TranscriptBlock[] = [];
      for (const b of ev.message.content) {
        if (b.type === 'text') {
          if (b.text) content.push({ type: 'text', text: b.text });
        } else if (b.type === 'tool_use')
          content.push({ type: 'tool_use', id: b.id, name: b.name, input: b.input });
      }
      done = { stopReason: ev.stopReason, content, toolUses };
    }
  }
  if (run.ac.signal.aborted) throw cancelled('The model call');
  if (!done) throw new FluidError('UNAVAILABLE', 'The model stream ended without a complete reply.');
  return { ...done, usage };
}

// ---------------------------------------------------------------------------------------------------
// Tools

async function runTools(
  h: LoopHost,
  run: LiveRun,
  uses: ToolUseBlock[],
  settings: Settings['agent'],
): Promise<void> {
  const results: TranscriptBlock[] = [];
  try {
    for (const tu of uses) {
      if (run.ac.signal.aborted) throw cancelled('The session');
      results.push(await runTool(h, run, tu, settings));
    }
  } catch (err) {
    if (!(run.ac.signal.aborted || isAbortError(err))) throw err;
    // Answer every call, so the transcript stays a valid conversation.
    for (const tu of uses) {
      if (results.some((r) => r.type === 'tool_result' && r.toolUseId === tu.id)) continue;
      const started = run.calls.has(tu.id);
      const content = started
        ? 'Cancelled while running: the session was stopped. The effect of this call is unknown; check before retrying.'
        : 'Not run: the session was stopped before this call.';
      results.push({ type: 'tool_result', toolUseId: tu.id, content, isError: true });
      h.emit(run.id, {
        type: 'tool_call',
        id: tu.id,
        name: tu.name,
        input: tu.input,
        status: 'error',
        output: content,
        isError: true,
      });
      run.calls.delete(tu.id);
    }
    const msg = h.store.append(run.id, 'user', results);
    h.emit(run.id, { type: 'message', message: msg });
    throw err;
  }
  const msg = h.store.append(run.id, 'user', results);
  h.emit(run.id, { type: 'message', message: msg });
}

async function runTool(
  h: LoopHost,
  run: LiveRun,
  tu: ToolUseBlock,
  settings: Settings['agent'],
): Promise<TranscriptBlock> {
  const id = run.id;
  const call: ToolCallEvent = {
    type: 'tool_call',
    id: tu.id,
    name: tu.name,
    input: tu.input,
    status: 'running',
  };
  run.calls.set(tu.id, call);
  h.emit(id, { ...call });
  let raw: string;
  let isError: boolean;
  let status: ToolCallEvent['status'];
  let alreadySafe = false;
  if (tu.parseError) {
    raw = `The arguments of ${tu.name} were not a JSON object (${tu.parseError}). Call it again with valid JSON arguments.`;
    isError = true;
    status = 'error';
  } else if (tu.name === READ_TOOL_OUTPUT && !h.tools.get(READ_TOOL_OUTPUT)) {
    ({ content: raw, isError } = readOutput(h, id, tu.input, settings.toolOutputChars));
    status = isError ? 'error' : 'done';
    alreadySafe = true;
  } else {
    let waited = false;
    const outcome = await h.tools.invoke(tu.name, tu.input, {
      actor: actorOf(id),
      sessionId: id,
      // A switch to read-only applies at once, even to the rest of this turn.
      mode: h.store.mode(id),
      signal: run.ac.signal,
      // The gate redacts the outcome with this session's redactor (stable placeholders).
      redactor: h.redactor(id),
      onApproval: (approvalId) => {
        waited = true;
        call.status = 'waiting-approval';
        call.approvalId = approvalId;
        h.emit(id, { ...call });
        h.update(id, { status: 'waiting-approval' });
      },
    });
    if (waited) h.update(id, { status: 'running' });
    // The tool's own text, kept for people behind a handle; the model gets the redacted copy below.
    raw = outcome.unredacted ?? outcome.content;
    isError = outcome.isError;
    const refused =
      outcome.decision === 'deny' ||
      (outcome.decision === 'ask' &&
        !!outcome.approvalId &&
        h.approvals.get(outcome.approvalId).status !== 'approved');
    status = !isError ? 'done' : refused ? 'denied' : 'error';
    if (outcome.approvalId) call.approvalId = outcome.approvalId;
  }

  // What the model sees: redacted, then capped. The raw output is kept behind a handle when the
  // model's copy differs from it (cut or redacted).
  const safe = alreadySafe ? raw : h.redactor(id).redact(raw).text;
  let handle: string | undefined;
  if (!alreadySafe && (safe.length > settings.toolOutputChars || safe !== raw))
    handle = h.store.saveOutput(id, tu.id, tu.name, raw);
  const content = capOutput(safe, settings.toolOutputChars, handle ?? null).text;
  run.calls.delete(tu.id);
  h.emit(id, { ...call, status, output: content, isError, ...(handle ? { handle } : {}) });
  return {
    type: 'tool_result',
    toolUseId: tu.id,
    content,
    ...(isError ? { isError: true } : {}),
    ...(handle ? { handle } : {}),
  };
}

function readOutput(
  h: LoopHost,
  sessionId: string,
  input: unknown,
  maxChars: number,
): { content: string; isError: boolean } {
  const parsed = ReadToolOutputInput.safeParse(input ?? {});
  if (!parsed.success)
    return {
      content: `Invalid arguments for ${READ_TOOL_OUTPUT}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; ')}`,
      isError: true,
    };
  let out;
  try {
    out = h.store.output(sessionId, parsed.data.handle);
  } catch {
    return {
      content: `There is no tool output with the handle ${parsed.data.handle} in this session.`,
      isError: true,
    };
  }
  // Redact the whole output before slicing, so offsets match the cut marker and no secret is split.
  const safe = h.redactor(sessionId).redact(out.content).text;
  const limit = Math.min(parsed.data.limit ?? maxChars, maxChars);
  return { content: sliceOutput(safe, parsed.data.offset ?? 0, limit), isError: false };
}

// ---------------------------------------------------------------------------------------------------
// Compaction

async function compact(
  h: LoopHost,
  run: LiveRun,
  row: SessionRow,
  model: ModelProvider,
  price: Price,
): Promise<boolean> {
  const id = run.id;
  const all = h.store.messages(id);
  const cut = pickCut(all, row.compacted_through);
  if (cut === null) return false;
  const chunk = all.filter((m) => m.seq > row.compacted_through && m.seq <= cut);
  let text = '';
  let usage: Usage | null = null;
  try {
    for await (const ev of model.stream({
      model: row.model,
      system: COMPACTION_SYSTEM,
      messages: [{ role: 'user', content: [{ type: 'text', text: summaryRequestText(row.summary, chunk) }] }],
      tools: [],
      maxTokens: SUMMARY_MAX_TOKENS,
      signal: run.ac.signal,
    })) {
      if (ev.type === 'usage') usage = ev;
      else if (ev.type === 'done')
        text = ev.message.content
          .filter((b) => b.type === 'text')
          .map((b) => (b as { text: string }).text)
          .join('\n')
          .trim();
    }
  } catch (err) {
    if (run.ac.signal.aborted || isAbortError(err)) throw err;
    h.log.warn('agent compaction failed; continuing with the full context', { sessionId: id, err });
    return false;
  }
  if (!text) return false;
  const fresh = h.store.row(id);
  const u = usage ?? { inputTokens: 0, outputTokens: Math.ceil(text.length / 4) };
  h.update(id, {
    summary: text,
    compacted_through: cut,
    input_tokens: fresh.input_tokens + u.inputTokens,
    output_tokens: fresh.output_tokens + u.outputTokens,
    cost_usd: fresh.cost_usd + costOf(price, u),
    // The next request is estimated from characters until the provider reports its size again.
    context_tokens: 0,
    context_chars: 0,
  });
  h.emit(id, { type: 'compaction', summary: text, compactedThrough: cut });
  return true;
}
