/**
 * Anthropic Messages API, streamed, in the wire format of the official SDK (its types describe the
 * requests and events) over the lean client in http.ts: one keep-alive connection pool per provider
 * client, the request body built with the tool definitions serialised once, the stream folded as it
 * arrives. The shared attempt loop (retry.ts) retries, times out and cancels.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type {
  MessageCreateParamsStreaming,
  MessageParam,
  RawMessageStreamEvent,
  TextBlockParam,
  ToolUnion,
  ContentBlockParam,
} from '@anthropic-ai/sdk/resources/messages/messages';
import { FluidError } from '../../../shared/errors.ts';
import { IncompleteStreamError, retryPolicy, runWithRetries, type ProviderLabel } from './retry.ts';
import {
  JsonHttpClient,
  SseParser,
  StreamErrorEvent,
  readJson,
  type HttpAnswer,
  type SseEvent,
} from './http.ts';
import {
  defaultBaseUrl,
  type AssistantMessage,
  type Block,
  type Message,
  type ModelEvent,
  type ModelProvider,
  type ModelRequest,
  type ProviderConfig,
  type StopReason,
  type ToolDefinition,
  type ToolUseBlock,
  type Usage,
} from './types.ts';
import { parseToolInput } from './json.ts';

const EPHEMERAL = { type: 'ephemeral' } as const;

export function anthropicStopReason(r: string | null | undefined): StopReason {
  switch (r) {
    case 'end_turn':
    case 'tool_use':
    case 'max_tokens':
    case 'stop_sequence':
    case 'refusal':
      return r;
    case 'model_context_window_exceeded':
      return 'max_tokens';
    default:
      return 'other';
  }
}

/** Our conversation in Messages API form. Empty text is dropped (the API refuses it). */
export function toAnthropicMessages(messages: Message[], cacheLastTurn = false): MessageParam[] {
  const out: MessageParam[] = messages.map((m) => {
    const content: ContentBlockParam[] = [];
    for (const b of m.content) {
      if (b.type === 'text') {
        if (b.text.trim() !== '') content.push({ type: 'text', text: b.text });
      } else if (b.type === 'tool_use') {
        content.push({ type: 'tool_use', id: b.id, name: b.name, input: b.input });
      } else {
        content.push({
          type: 'tool_result',
          tool_use_id: b.toolUseId,
          content: b.content === '' ? '(no output)' : b.content,
          ...(b.isError ? { is_error: true } : {}),
        });
      }
    }
    if (content.length === 0) content.push({ type: 'text', text: '(empty)' });
    return { role: m.role, content };
  });
  if (cacheLastTurn) {
    const last = out.at(-1);
    const block = Array.isArray(last?.content) ? last.content.at(-1) : undefined;
    if (block && (block.type === 'text' || block.type === 'tool_result')) block.cache_control = EPHEMERAL;
  }
  return out;
}

export function toAnthropicTools(tools: ToolDefinition[], cache = false): ToolUnion[] {
  return tools.map((t, i) => ({
    name: t.name,
    description: t.description,
    input_schema: { type: 'object', ...t.inputSchema } as Anthropic.Tool.InputSchema,
    ...(cache && i === tools.length - 1 ? { cache_control: EPHEMERAL } : {}),
  }));
}

export function buildAnthropicParams(
  req: ModelRequest,
  config: Pick<ProviderConfig, 'model' | 'promptCaching'>,
): MessageCreateParamsStreaming {
  const cache = config.promptCaching !== false;
  const system: TextBlockParam[] = req.system
    ? [{ type: 'text', text: req.system, ...(cache ? { cache_control: EPHEMERAL } : {}) }]
    : [];
  return {
    model: req.model ?? config.model,
    max_tokens: req.maxTokens,
    messages: toAnthropicMessages(req.messages, cache),
    ...(system.length ? { system } : {}),
    ...(req.tools.length ? { tools: toAnthropicTools(req.tools, cache) } : {}),
    // No temperature: the Messages API of this SDK release has deprecated the sampling parameters.
    stream: true,
  };
}

/** Serialised tool definitions, by definition (only frozen ones: they cannot change afterwards). */
const toolJson = [new WeakMap<ToolDefinition, string>(), new WeakMap<ToolDefinition, string>()] as const;

const isFrozenTool = (t: ToolDefinition) => Object.isFrozen(t) && Object.isFrozen(t.inputSchema);

function toolText(t: ToolDefinition, cache: boolean): string {
  const frozen = isFrozenTool(t);
  const map = toolJson[cache ? 1 : 0];
  let text = frozen ? map.get(t) : undefined;
  if (text === undefined) {
    text = JSON.stringify(toAnthropicTools([t], cache)[0]);
    if (frozen) map.set(t, text);
  }
  return text;
}

/** The `"tools":[…]` part of the last bodies, encoded, by the first definition of their list. */
const toolsPart = new WeakMap<ToolDefinition, { tools: ToolDefinition[]; cache: boolean; bytes: Buffer }>();

function toolsBytes(tools: ToolDefinition[], cache: boolean): Buffer {
  const last = tools.length - 1;
  const encode = () =>
    Buffer.from(`,"tools":[${tools.map((t, i) => toolText(t, cache && i === last)).join(',')}]`, 'utf8');
  if (!tools.every(isFrozenTool)) return encode();
  const hit = toolsPart.get(tools[0]!);
  if (
    hit &&
    hit.cache === cache &&
    hit.tools.length === tools.length &&
    hit.tools.every((t, i) => t === tools[i])
  )
    return hit.bytes;
  const bytes = encode();
  toolsPart.set(tools[0]!, { tools: [...tools], cache, bytes });
  return bytes;
}

const STREAM_END = Buffer.from(',"stream":true}', 'utf8');

/**
 * The request body, encoded, in parts (sent one after another): exactly `JSON.stringify(buildAnthropicParams(req, config))`, with the
 * tool definitions (sent unchanged with every turn, often the largest part) serialised and encoded
 * once for a list of frozen definitions.
 */
export function anthropicPayload(
  req: ModelRequest,
  config: Pick<ProviderConfig, 'model' | 'promptCaching'>,
): Buffer[] {
  const { tools: _tools, stream: _stream, ...rest } = buildAnthropicParams({ ...req, tools: [] }, config);
  const head = Buffer.from(JSON.stringify(rest).slice(0, -1), 'utf8');
  if (!req.tools.length) return [head, STREAM_END];
  return [head, toolsBytes(req.tools, config.promptCaching !== false), STREAM_END];
}

/** The request body as text (see anthropicPayload). */
export function anthropicBody(
  req: ModelRequest,
  config: Pick<ProviderConfig, 'model' | 'promptCaching'>,
): string {
  return Buffer.concat(anthropicPayload(req, config)).toString('utf8');
}

interface OpenBlock {
  kind: 'text' | 'tool_use' | 'other';
  text: string;
  json: string;
  id: string;
  name: string;
}

/**
 * Folds the raw stream events into our events, one at a time as they arrive (synchronous: the
 * stream's reader calls it for every event of a chunk without a step of its own per event).
 */
export class AnthropicFold {
  readonly #blocks = new Map<number, OpenBlock>();
  readonly #finished: Array<{ index: number; block: Block }> = [];
  readonly #usage: Usage = { inputTokens: 0, outputTokens: 0 };
  #input = 0;
  #cacheRead = 0;
  #cacheWrite = 0;
  #stop: string | null | undefined;
  #complete = false;

  /** The events one raw event makes (often none). */
  push(ev: RawMessageStreamEvent, out: ModelEvent[] = []): ModelEvent[] {
    switch (ev.type) {
      case 'message_start': {
        const u = ev.message.usage;
        this.#input = u.input_tokens ?? 0;
        this.#cacheRead = u.cache_read_input_tokens ?? 0;
        this.#cacheWrite = u.cache_creation_input_tokens ?? 0;
        this.#usage.outputTokens = u.output_tokens ?? 0;
        break;
      }
      case 'content_block_start': {
        const cb = ev.content_block;
        const open: OpenBlock =
          cb.type === 'text'
            ? { kind: 'text', text: cb.text ?? '', json: '', id: '', name: '' }
            : cb.type === 'tool_use'
              ? { kind: 'tool_use', text: '', json: '', id: cb.id, name: cb.name }
              : { kind: 'other', text: '', json: '', id: '', name: '' };
        this.#blocks.set(ev.index, open);
        if (open.kind === 'text' && open.text) out.push({ type: 'text_delta', text: open.text });
        break;
      }
      case 'content_block_delta': {
        const open = this.#blocks.get(ev.index);
        if (!open) break;
        if (ev.delta.type === 'text_delta' && open.kind === 'text') {
          open.text += ev.delta.text;
          if (ev.delta.text) out.push({ type: 'text_delta', text: ev.delta.text });
        } else if (ev.delta.type === 'input_json_delta' && open.kind === 'tool_use') {
          open.json += ev.delta.partial_json;
        }
        break;
      }
      case 'content_block_stop': {
        const open = this.#blocks.get(ev.index);
        if (!open) break;
        this.#blocks.delete(ev.index);
        if (open.kind === 'text') {
          if (open.text) this.#finished.push({ index: ev.index, block: { type: 'text', text: open.text } });
        } else if (open.kind === 'tool_use') {
          const parsed = parseToolInput(open.json);
          const block: ToolUseBlock = {
            type: 'tool_use',
            id: open.id,
            name: open.name,
            input: parsed.input,
            ...(parsed.error ? { parseError: parsed.error } : {}),
          };
          this.#finished.push({ index: ev.index, block });
          const { type: _t, ...rest } = block;
          out.push({ type: 'tool_use', ...rest });
        }
        break;
      }
      case 'message_delta': {
        this.#stop = ev.delta.stop_reason ?? this.#stop;
        const u = ev.usage;
        if (u) {
          if (typeof u.output_tokens === 'number') this.#usage.outputTokens = u.output_tokens;
          if (typeof u.input_tokens === 'number') this.#input = u.input_tokens;
          if (typeof u.cache_read_input_tokens === 'number') this.#cacheRead = u.cache_read_input_tokens;
          if (typeof u.cache_creation_input_tokens === 'number')
            this.#cacheWrite = u.cache_creation_input_tokens;
        }
        break;
      }
      case 'message_stop':
        this.#complete = true;
        break;
    }
    return out;
  }

  /** The usage and the whole message; throws when the stream ended before message_stop. */
  end(): ModelEvent[] {
    if (!this.#complete) throw new IncompleteStreamError();
    const usage = this.#usage;
    usage.inputTokens = this.#input + this.#cacheRead + this.#cacheWrite;
    if (this.#cacheRead) usage.cacheReadTokens = this.#cacheRead;
    if (this.#cacheWrite) usage.cacheWriteTokens = this.#cacheWrite;
    this.#finished.sort((a, b) => a.index - b.index);
    const message: AssistantMessage = { role: 'assistant', content: this.#finished.map((f) => f.block) };
    return [
      { type: 'usage', ...usage },
      { type: 'done', stopReason: anthropicStopReason(this.#stop), message },
    ];
  }
}

/** Folds the raw stream events into our events; throws when the stream ends before message_stop. */
export async function* foldAnthropicStream(
  events: AsyncIterable<RawMessageStreamEvent> | Iterable<RawMessageStreamEvent>,
): AsyncGenerator<ModelEvent> {
  const fold = new AnthropicFold();
  for await (const ev of events) yield* fold.push(ev);
  yield* fold.end();
}

/** One raw event of the stream as the SDK yields it: null for `ping` and unnamed events; `error` thrown. */
function rawEvent(sse: SseEvent, headers: Headers): RawMessageStreamEvent | null {
  if (sse.event === 'ping' || sse.event === '') return null;
  if (sse.event === 'error') {
    let body: unknown = sse.data;
    try {
      body = JSON.parse(sse.data);
    } catch {
      /* kept as text */
    }
    throw new StreamErrorEvent(body, headers);
  }
  if (!sse.data) return null;
  return JSON.parse(sse.data) as RawMessageStreamEvent;
}

/** An answer's stream read and folded chunk by chunk (one async step per chunk, not per event). */
export async function* foldAnthropicAnswer(answer: HttpAnswer): AsyncGenerator<ModelEvent> {
  const parser = new SseParser();
  const fold = new AnthropicFold();
  const out: ModelEvent[] = [];
  for await (const chunk of answer.body) {
    let failed = false;
    let failure: unknown;
    try {
      for (const sse of parser.push(chunk)) {
        const ev = rawEvent(sse, answer.headers);
        if (ev) fold.push(ev, out);
      }
    } catch (err) {
      // What came before the failure in this chunk is passed on first, as event by event it would be.
      failed = true;
      failure = err;
    }
    if (out.length) {
      const ready = out.splice(0);
      for (const e of ready) yield e;
    }
    if (failed) throw failure;
  }
  yield* fold.end();
}

/** A whole message (a server that answered without streaming) as the events of its stream. */
export function* anthropicMessageEvents(message: Anthropic.Message): Generator<RawMessageStreamEvent> {
  const usage = message.usage ?? { input_tokens: 0, output_tokens: 0 };
  yield {
    type: 'message_start',
    message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 0 } },
  } as RawMessageStreamEvent;
  for (const [index, block] of (message.content ?? []).entries()) {
    if (block.type === 'text') {
      yield {
        type: 'content_block_start',
        index,
        content_block: { type: 'text', text: '', citations: null },
      };
      yield { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } };
    } else if (block.type === 'tool_use') {
      yield {
        type: 'content_block_start',
        index,
        content_block: { ...block, input: {} },
      } as RawMessageStreamEvent;
      yield {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input ?? {}) },
      };
    } else {
      yield { type: 'content_block_start', index, content_block: block } as RawMessageStreamEvent;
    }
    yield { type: 'content_block_stop', index };
  }
  yield {
    type: 'message_delta',
    delta: { stop_reason: message.stop_reason, stop_sequence: message.stop_sequence ?? null },
    usage,
  } as unknown as RawMessageStreamEvent;
  yield { type: 'message_stop' };
}

/** The version of the Messages API spoken (the one the SDK in package.json sends). */
export const ANTHROPIC_VERSION = '2026-10-21';

export class AnthropicProvider implements ModelProvider {
  readonly kind = 'anthropic' as const;
  readonly model: string;
  readonly #config: ProviderConfig;
  readonly #client: JsonHttpClient;
  readonly #label: ProviderLabel;

  constructor(config: ProviderConfig) {
    this.#config = config;
    this.model = config.model;
    const baseURL = (config.baseUrl || defaultBaseUrl('anthropic')).replace(/\/+$/, '');
    this.#label = { name: 'Anthropic', baseUrl: baseURL, apiKey: config.apiKey };
    this.#client = new JsonHttpClient({
      baseUrl: baseURL,
      headers: {
        accept: 'application/json',
        'user-agent': 'Fluid',
        'anthropic-version': ANTHROPIC_VERSION,
        ...(config.apiKey ? { authorization: `Bearer ${config.apiKey}` } : {}),
        ...config.headers,
      },
    });
  }

  stream(req: ModelRequest): AsyncIterable<ModelEvent> {
    return this.#run(req);
  }

  async *#run(req: ModelRequest): AsyncGenerator<ModelEvent> {
    if (!this.#config.apiKey) {
      throw new FluidError('AUTH_FAILED', 'No Anthropic API key is set: add it in Settings → Providers.', {
        provider: 'Anthropic',
      });
    }
    const body = anthropicPayload(req, this.#config);
    const client = this.#client;
    yield* runWithRetries(
      async function* ({ signal }) {
        const answer = await client.post('/v1/messages', body, signal);
        if (/^application\/json\b/i.test(answer.contentType)) {
          const message = (await readJson(answer.body)) as Anthropic.Message;
          yield* foldAnthropicStream(anthropicMessageEvents(message));
        } else yield* foldAnthropicAnswer(answer);
      },
      { policy: retryPolicy(this.#config), label: this.#label, signal: req.signal },
    );
  }
}
