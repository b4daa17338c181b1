/**
 * Scenarios for the scripted model server: an ordered list of steps, each an optional matcher on
 * the incoming request plus the reply (text, tool calls, usage, pacing, or an HTTP error).
 * Both wire formats are first reduced to one `RequestView`, so a scenario serves either API.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Block, Message } from '../providers/types.ts';

// ---------------------------------------------------------------------------------------------------
// Schema

const TextMatch = z.union([
  z.string(),
  z.strictObject({
    /** Substring, case-insensitive. */
    contains: z.string().optional(),
    /** Exact text. */
    equals: z.string().optional(),
    /** JavaScript regular expression; named groups become scenario variables. */
    regex: z.string().optional(),
    flags: z.string().optional(),
  }),
]);

const Match = z.strictObject({
  api: z.enum(['anthropic', 'openai']).optional(),
  model: TextMatch.optional(),
  system: TextMatch.optional(),
  /** Text of the most recent user message that has text (tool results excluded). */
  lastUserText: TextMatch.optional(),
  /** The tool results after the last assistant message, joined with newlines. */
  lastToolResult: TextMatch.optional(),
  /** One of the tool results after the last assistant message. */
  toolResult: z
    .strictObject({
      tool: z.string().optional(),
      content: TextMatch.optional(),
      isError: z.boolean().optional(),
    })
    .optional(),
  /** Every one of these tools is offered. */
  tools: z.array(z.string()).optional(),
  /** What the request ends with: a user's text, or tool results. */
  turn: z.enum(['user', 'tool_result']).optional(),
  stream: z.boolean().optional(),
});

const Usage = z.strictObject({
  /** Every input token, cache reads included (the provider layer's meaning). */
  inputTokens: z.number().int().nonnegative().optional(),
  outputTokens: z.number().int().nonnegative().optional(),
  cacheReadTokens: z.number().int().nonnegative().optional(),
  cacheWriteTokens: z.number().int().nonnegative().optional(),
});

const ToolCall = z.strictObject({
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()).optional(),
  id: z.string().optional(),
});

const HttpError = z.strictObject({
  status: z.number().int().min(400).max(599),
  /** Error type in the body (default by status: rate_limit_error, overloaded_error, …). */
  type: z.string().optional(),
  message: z.string().optional(),
  headers: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  /** The whole body, replacing the one built from type and message. */
  body: z.unknown().optional(),
});

const StepSchema = z.strictObject({
  /** A name for error messages and request records. */
  id: z.string().optional(),
  match: Match.optional(),
  /** How many matching requests this step answers before the next step is current (default 1). */
  times: z.union([z.number().int().positive(), z.literal('forever')]).optional(),
  /** When the request does not match, skip this step and try the next. */
  optional: z.boolean().optional(),
  text: z.string().optional(),
  toolCalls: z.array(ToolCall).optional(),
  stopReason: z.enum(['end_turn', 'tool_use', 'max_tokens', 'stop_sequence', 'refusal']).optional(),
  usage: Usage.optional(),
  /** Wait before the response headers. */
  delayMs: z.number().int().nonnegative().optional(),
  /** Wait between two streamed events. */
  chunkDelayMs: z.number().int().nonnegative().optional(),
  /** Code points per text or argument chunk (default: text in 3 pieces, arguments in 5). */
  chunkSize: z.number().int().positive().optional(),
  error: HttpError.optional(),
  /** Streaming: drop the connection after this many events. */
  disconnectAfterChunks: z.number().int().nonnegative().optional(),
  /** Streaming: send an error event after this many events and end the stream. */
  streamError: z
    .strictObject({
      afterChunks: z.number().int().nonnegative().optional(),
      type: z.string().optional(),
      message: z.string().optional(),
    })
    .optional(),
});

export const ScenarioSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  auth: z.strictObject({ apiKey: z.string().optional() }).optional(),
  /** Model ids listed by GET /v1/models (default ["scripted-model"]). */
  models: z.array(z.string()).optional(),
  steps: z.array(StepSchema).default([]),
  /** Tried, in order, when the current step does not match or all steps are used; never consumed. */
  fallbacks: z.array(StepSchema).optional(),
});

export type TextMatcher = z.infer<typeof TextMatch>;
export type StepMatch = z.infer<typeof Match>;
export type Step = z.infer<typeof StepSchema>;
export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export class ScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

/** Validates a scenario object; the error names the offending field. */
export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  const r = ScenarioSchema.safeParse(input ?? {});
  if (!r.success) throw new ScenarioError(`Invalid ${source}:\n${z.prettifyError(r.error)}`);
  for (const [i, step] of [...r.data.steps, ...(r.data.fallbacks ?? [])].entries()) {
    for (const m of textMatchers(step.match)) {
      if (typeof m === 'object' && m.regex !== undefined) {
        try {
          new RegExp(m.regex, m.flags);
        } catch (err) {
          throw new ScenarioError(`Invalid ${source}: step ${i + 1}: ${(err as Error).message}`);
        }
      }
    }
  }
  return r.data;
}

/** Parses scenario text, YAML or JSON (YAML reads both). */
export function parseScenarioText(text: string, source = 'scenario'): Scenario {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(`Invalid ${source}: ${(err as Error).message}`);
  }
  return parseScenario(data, source);
}

export function loadScenarioFile(path: string): Scenario {
  return parseScenarioText(readFileSync(path, 'utf8'), path);
}

function textMatchers(m: StepMatch | undefined): TextMatcher[] {
  if (!m) return [];
  return [m.model, m.system, m.lastUserText, m.lastToolResult, m.toolResult?.content].filter(
    (x): x is TextMatcher => x !== undefined,
  );
}

// ---------------------------------------------------------------------------------------------------
// Request view

export type WireApi = 'anthropic' | 'openai';

export interface ToolResultView {
  toolUseId: string;
  /** The name of the tool called with that id, from the earlier assistant message. */
  tool: string | null;
  content: string;
  isError: boolean;
}

export interface RequestView {
  api: WireApi;
  model: string;
  system: string;
  stream: boolean;
  toolNames: string[];
  messages: Message[];
  lastUserText: string | null;
  /** Tool results after the last assistant message. */
  toolResults: ToolResultView[];
  turn: 'user' | 'tool_result' | 'other';
  /** OpenAI: `stream_options.include_usage`. */
  includeUsage: boolean;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown) => (typeof v === 'string' ? v : '');

function partsText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter(isObj)
    .map((p) => (p.type === 'text' || p.type === 'input_text' ? str(p.text) : ''))
    .filter(Boolean)
    .join('\n');
}

function anthropicBlocks(content: unknown): Block[] {
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) return [];
  const out: Block[] = [];
  for (const b of content.filter(isObj)) {
    if (b.type === 'text') out.push({ type: 'text', text: str(b.text) });
    else if (b.type === 'tool_use')
      out.push({ type: 'tool_use', id: str(b.id), name: str(b.name), input: isObj(b.input) ? b.input : {} });
    else if (b.type === 'tool_result')
      out.push({
        type: 'tool_result',
        toolUseId: str(b.tool_use_id),
        content: partsText(b.content),
        ...(b.is_error === true ? { isError: true } : {}),
      });
  }
  return out;
}

function lenientJson(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text || '{}');
    return isObj(v) ? v : {};
  } catch {
    return {};
  }
}

export function viewOf(api: WireApi, body: unknown): RequestView {
  const b = isObj(body) ? body : {};
  const messages: Message[] = [];
  let system: string;
  let toolNames: string[];
  if (api === 'anthropic') {
    system = typeof b.system === 'string' ? b.system : partsText(b.system);
    for (const m of Array.isArray(b.messages) ? b.messages.filter(isObj) : []) {
      if (m.role === 'system') {
        system = [system, partsText(m.content)].filter(Boolean).join('\n');
        continue;
      }
      messages.push({
        role: m.role === 'assistant' ? 'assistant' : 'user',
        content: anthropicBlocks(m.content),
      });
    }
    toolNames = (Array.isArray(b.tools) ? b.tools.filter(isObj) : []).map((t) => str(t.name)).filter(Boolean);
  } else {
    const sys: string[] = [];
    for (const m of Array.isArray(b.messages) ? b.messages.filter(isObj) : []) {
      if (m.role === 'system' || m.role === 'developer') {
        sys.push(partsText(m.content));
      } else if (m.role === 'tool') {
        const block: Block = {
          type: 'tool_result',
          toolUseId: str(m.tool_call_id),
          content: partsText(m.content),
        };
        const last = messages.at(-1);
        if (last && last.role === 'user' && last.content.every((x) => x.type === 'tool_result'))
          last.content.push(block);
        else messages.push({ role: 'user', content: [block] });
      } else if (m.role === 'assistant') {
        const content: Block[] = [];
        const text = partsText(m.content);
        if (text) content.push({ type: 'text', text });
        for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls.filter(isObj) : []) {
          const fn = isObj(tc.function) ? tc.function : {};
          content.push({
            type: 'tool_use',
            id: str(tc.id),
            name: str(fn.name),
            input: lenientJson(str(fn.arguments)),
          });
        }
        messages.push({ role: 'assistant', content });
      } else {
        const text = partsText(m.content);
        messages.push({ role: 'user', content: text ? [{ type: 'text', text }] : [] });
      }
    }
    system = sys.filter(Boolean).join('\n');
    toolNames = (Array.isArray(b.tools) ? b.tools.filter(isObj) : [])
      .map((t) => (isObj(t.function) ? str(t.function.name) : str(t.name)))
      .filter(Boolean);
  }

  const toolNameById = new Map<string, string>();
  for (const m of messages)
    for (const blk of m.content) if (blk.type === 'tool_use') toolNameById.set(blk.id, blk.name);

  let lastUserText: string | null = null;
  for (let i = messages.length - 1; i >= 0 && lastUserText === null; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    const texts = m.content.filter((x) => x.type === 'text').map((x) => (x as { text: string }).text);
    if (texts.length) lastUserText = texts.join('\n');
  }

  const toolResults: ToolResultView[] = [];
  let lastAssistant = -1;
  messages.forEach((m, i) => (m.role === 'assistant' ? (lastAssistant = i) : undefined));
  for (const m of messages.slice(lastAssistant + 1)) {
    for (const blk of m.content) {
      if (blk.type === 'tool_result') {
        toolResults.push({
          toolUseId: blk.toolUseId,
          tool: toolNameById.get(blk.toolUseId) ?? null,
          content: blk.content,
          isError: blk.isError === true,
        });
      }
    }
  }
  const last = messages.at(-1);
  const turn = !last || last.role !== 'user' ? 'other' : toolResults.length ? 'tool_result' : 'user';
  const streamOptions = isObj(b.stream_options) ? b.stream_options : {};

  return {
    api,
    model: str(b.model),
    system,
    stream: b.stream === true,
    toolNames,
    messages,
    lastUserText,
    toolResults,
    turn,
    includeUsage: streamOptions.include_usage === true,
  };
}

// ---------------------------------------------------------------------------------------------------
// Matching

export type MatchResult = { ok: true; captures: Record<string, string> } | { ok: false; reasons: string[] };

export function clip(s: string | null | undefined, max = 160): string {
  if (s === null || s === undefined) return '(none)';
  const one = JSON.stringify(s);
  return one.length > max ? `${one.slice(0, max)}…"` : one;
}

function describe(m: TextMatcher): string {
  if (typeof m === 'string') return `contain ${JSON.stringify(m)}`;
  const parts: string[] = [];
  if (m.contains !== undefined) parts.push(`contain ${JSON.stringify(m.contains)}`);
  if (m.equals !== undefined) parts.push(`equal ${JSON.stringify(m.equals)}`);
  if (m.regex !== undefined) parts.push(`match /${m.regex}/${m.flags ?? ''}`);
  return parts.join(' and ') || 'be anything';
}

function testText(m: TextMatcher, value: string | null, captures: Record<string, string>): boolean {
  if (value === null) return false;
  const spec = typeof m === 'string' ? { contains: m } : m;
  if (spec.contains !== undefined && !value.toLowerCase().includes(spec.contains.toLowerCase())) return false;
  if (spec.equals !== undefined && value !== spec.equals) return false;
  if (spec.regex !== undefined) {
    const r = new RegExp(spec.regex, spec.flags).exec(value);
    if (!r) return false;
    for (const [k, v] of Object.entries(r.groups ?? {})) if (v !== undefined) captures[k] = v;
  }
  return true;
}

export function matchStep(step: Pick<Step, 'match'>, view: RequestView): MatchResult {
  const m = step.match;
  const captures: Record<string, string> = {};
  if (!m) return { ok: true, captures };
  const reasons: string[] = [];
  const text = (field: string, matcher: TextMatcher | undefined, value: string | null) => {
    if (matcher !== undefined && !testText(matcher, value, captures))
      reasons.push(`${field} should ${describe(matcher)}, got ${clip(value)}`);
  };
  if (m.api && m.api !== view.api) reasons.push(`api should be ${m.api}, got ${view.api}`);
  if (m.stream !== undefined && m.stream !== view.stream) reasons.push(`stream should be ${m.stream}`);
  text('model', m.model, view.model);
  text('system', m.system, view.system);
  text('lastUserText', m.lastUserText, view.lastUserText);
  text(
    'lastToolResult',
    m.lastToolResult,
    view.toolResults.length ? view.toolResults.map((r) => r.content).join('\n') : null,
  );
  if (m.toolResult) {
    const want = m.toolResult;
    const hit = view.toolResults.find(
      (r) =>
        (want.tool === undefined || r.tool === want.tool) &&
        (want.isError === undefined || r.isError === want.isError) &&
        (want.content === undefined || testText(want.content, r.content, captures)),
    );
    if (!hit) {
      const parts = [
        want.tool !== undefined ? `for tool ${want.tool}` : '',
        want.isError !== undefined ? `with isError=${want.isError}` : '',
        want.content !== undefined ? `whose content should ${describe(want.content)}` : '',
      ].filter(Boolean);
      const got = view.toolResults.length
        ? view.toolResults
            .map((r) => `${r.tool ?? '?'}${r.isError ? ' (error)' : ''}: ${clip(r.content, 80)}`)
            .join('; ')
        : 'no tool results';
      reasons.push(`a tool result ${parts.join(' ')} was expected, got ${got}`);
    }
  }
  if (m.tools) {
    const missing = m.tools.filter((t) => !view.toolNames.includes(t));
    if (missing.length)
      reasons.push(
        `tools ${JSON.stringify(missing)} should be offered, got ${JSON.stringify(view.toolNames)}`,
      );
  }
  if (m.turn && m.turn !== view.turn) reasons.push(`turn should be ${m.turn}, got ${view.turn}`);
  return reasons.length ? { ok: false, reasons } : { ok: true, captures };
}

/** One line about the request, for error messages. */
export function summarize(view: RequestView): string {
  return [
    `api=${view.api}`,
    `model=${clip(view.model, 60)}`,
    `turn=${view.turn}`,
    `lastUserText=${clip(view.lastUserText)}`,
    `toolResults=${
      view.toolResults.length
        ? `[${view.toolResults.map((r) => `${r.tool ?? '?'}: ${clip(r.content, 80)}`).join('; ')}]`
        : '[]'
    }`,
    `tools=${JSON.stringify(view.toolNames)}`,
    `messages=${view.messages.length}`,
  ].join(', ');
}

/** Replaces `{{name}}` in every string of a value with the scenario variables. */
export function fillTemplate<T>(value: T, vars: Record<string, string>): T {
  if (typeof value === 'string')
    return value.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (all, k: string) => vars[k] ?? all) as T;
  if (Array.isArray(value)) return value.map((v) => fillTemplate(v, vars)) as T;
  if (isObj(value)) {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = fillTemplate(v, vars);
    return out as T;
  }
  return value;
}

/** Where a scenario stands: the current step and how often it has answered. */
export class ScenarioCursor {
  scenario: Scenario;
  index = 0;
  usedAtIndex = 0;
  vars: Record<string, string> = {};

  constructor(scenario: Scenario) {
    this.scenario = scenario;
  }

  rewind(): void {
    this.index = 0;
    this.usedAtIndex = 0;
    this.vars = {};
  }

  get remaining(): number {
    return Math.max(0, this.scenario.steps.length - this.index);
  }

  /**
   * Picks the step answering this request: the current step, else a following one past optional
   * steps, else a fallback. Consumes it. Null with reasons when nothing matches.
   */
  next(
    view: RequestView,
  ):
    | { step: Step; label: string; index: number | null; captures: Record<string, string> }
    | { step: null; message: string } {
    const steps = this.scenario.steps;
    const tried: string[] = [];
    for (let i = this.index; i < steps.length; i++) {
      const step = steps[i]!;
      const r = matchStep(step, view);
      if (r.ok) {
        if (i !== this.index) this.usedAtIndex = 0;
        this.index = i;
        this.usedAtIndex++;
        const times = step.times ?? 1;
        if (times !== 'forever' && this.usedAtIndex >= times) {
          this.index = i + 1;
          this.usedAtIndex = 0;
        }
        Object.assign(this.vars, r.captures);
        return { step, label: stepLabel(step, i), index: i, captures: r.captures };
      }
      tried.push(`${stepLabel(step, i)}: ${r.reasons.join('; ')}`);
      if (!step.optional) break;
    }
    for (const [i, fb] of (this.scenario.fallbacks ?? []).entries()) {
      const r = matchStep(fb, view);
      if (r.ok) {
        Object.assign(this.vars, r.captures);
        return {
          step: fb,
          label: fb.id ? `fallback "${fb.id}"` : `fallback ${i + 1}`,
          index: null,
          captures: r.captures,
        };
      }
    }
    const name = this.scenario.name ? `scenario "${this.scenario.name}"` : 'the scenario';
    const expected =
      this.index >= steps.length
        ? `${name} has no steps left (all ${steps.length} used)`
        : `expected ${tried.join('; then ')}`;
    const fb = this.scenario.fallbacks?.length
      ? ` No fallback (of ${this.scenario.fallbacks.length}) matched.`
      : '';
    return { step: null, message: `${expected}.${fb}` };
  }
}

export function stepLabel(step: Step, index: number): string {
  return `step ${index + 1}${step.id ? ` "${step.id}"` : ''}`;
}
