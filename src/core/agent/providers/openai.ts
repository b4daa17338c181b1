/**
 * OpenAI-compatible Chat Completions, streamed, in the wire format of the official SDK (its types
 * describe the requests and chunks) over the lean client in http.ts: OpenAI, OpenRouter, Ollama, vLLM
 * (the base URL picks the service). The shared attempt loop (retry.ts) retries, times out and cancels.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionTool,
} from 'openai/resources/chat/completions/completions';
import { FluidError } from '../../../shared/errors.ts';
import { IncompleteStreamError, retryPolicy, runWithRetries, type ProviderLabel } from './retry.ts';
import { parseToolInput } from './json.ts';
import { JsonHttpClient, StreamErrorEvent, readJson, sseEvents, type HttpAnswer } from './http.ts';
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

/** Hosts that refuse a request without a key (a local Ollama or vLLM accepts any). */
const KEYED_HOSTS = /(^|\.)(openai\.com|openrouter\.ai)$/i;

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

export function openaiStopReason(r: string | null | undefined, hasToolCalls: boolean): StopReason {
  if (hasToolCalls && (r === 'tool_calls' || r === 'function_call' || r === 'stop' || !r)) return 'tool_use';
  switch (r) {
    case 'stop':
      return 'end_turn';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'length':
      return 'max_tokens';
    case 'content_filter':
      return 'refusal';
    default:
      return 'other';
  }
}

/** Our conversation in chat form: tool results become `role: 'tool'` messages, placed first. */
export function toOpenAIMessages(system: string, messages: Message[]): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [];
  if (system) out.push({ role: 'system', content: system });
  for (const m of messages) {
    const text = m.content
      .filter((b): b is Extract<Block, { type: 'text' }> => b.type === 'text')
      .map((b) => b.text)
      .filter((t) => t !== '')
      .join('\n\n');
    if (m.role === 'user') {
      for (const b of m.content) {
        if (b.type === 'tool_result') {
          out.push({
            role: 'tool',
            tool_call_id: b.toolUseId,
            content: b.isError ? `ERROR: ${b.content}` : b.content,
          });
        }
      }
      if (text) out.push({ role: 'user', content: text });
    } else {
      const calls: ChatCompletionMessageToolCall[] = m.content
        .filter((b): b is ToolUseBlock => b.type === 'tool_use')
        .map((b) => ({
          id: b.id,
          type: 'function',
          function: { name: b.name, arguments: JSON.stringify(b.input) },
        }));
      out.push({
        role: 'assistant',
        content: text || (calls.length ? null : ''),
        ...(calls.length ? { tool_calls: calls } : {}),
      });
    }
  }
  return out;
}

export function toOpenAITools(tools: ToolDefinition[]): ChatCompletionTool[] {
  return tools.map((t) => ({
    type: 'function',
    function: { name: t.name, description: t.description, parameters: { type: 'object', ...t.inputSchema } },
  }));
}

export function buildOpenAIParams(
  req: ModelRequest,
  config: Pick<ProviderConfig, 'model' | 'baseUrl' | 'maxTokensField'>,
): ChatCompletionCreateParamsStreaming {
  const field =
    config.maxTokensField ??
    (/(^|\.)openai\.com$/i.test(hostOf(config.baseUrl || defaultBaseUrl('openai')))
      ? 'max_completion_tokens'
      : 'max_tokens');
  return {
    model: req.model ?? config.model,
    messages: toOpenAIMessages(req.system, req.messages),
    ...(req.tools.length ? { tools: toOpenAITools(req.tools) } : {}),
    [field]: req.maxTokens,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    stream: true,
    stream_options: { include_usage: true },
  };
}

interface OpenCall {
  id: string;
  name: string;
  args: string;
}

/** Folds chat chunks into our events; tool calls are complete once the stream is. */
export async function* foldOpenAIStream(
  chunks: AsyncIterable<ChatCompletionChunk>,
): AsyncGenerator<ModelEvent> {
  let text = '';
  let refusal = '';
  const calls = new Map<number, OpenCall>();
  let finish: string | null | undefined;
  let usage: Usage | undefined;

  for await (const chunk of chunks) {
    if (chunk.usage) {
      const u = chunk.usage;
      const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
      usage = {
        inputTokens: u.prompt_tokens ?? 0,
        outputTokens: u.completion_tokens ?? 0,
        ...(cached ? { cacheReadTokens: cached } : {}),
      };
    }
    for (const choice of chunk.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue;
      const d = choice.delta ?? {};
      if (typeof d.content === 'string' && d.content) {
        text += d.content;
        yield { type: 'text_delta', text: d.content };
      }
      if (typeof d.refusal === 'string' && d.refusal) refusal += d.refusal;
      (d.tool_calls ?? []).forEach((tc, pos) => {
        const index = typeof tc.index === 'number' ? tc.index : pos;
        let call = calls.get(index);
        if (!call) calls.set(index, (call = { id: '', name: '', args: '' }));
        if (tc.id) call.id = tc.id;
        const name = tc.function?.name;
        // OpenAI sends the name once; a few compatible servers repeat it or send it in pieces.
        if (name && name !== call.name) call.name = call.name ? call.name + name : name;
        if (tc.function?.arguments) call.args += tc.function.arguments;
      });
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  if (!finish) throw new IncompleteStreamError();

  const content: Block[] = [];
  if (text) content.push({ type: 'text', text });
  else if (refusal) content.push({ type: 'text', text: refusal });
  const ordered = [...calls.entries()].sort((a, b) => a[0] - b[0]);
  for (const [index, call] of ordered) {
    const parsed = parseToolInput(call.args);
    const block: ToolUseBlock = {
      type: 'tool_use',
      id: call.id || `call_${index}`,
      name: call.name,
      input: parsed.input,
      ...(parsed.error ? { parseError: parsed.error } : {}),
    };
    content.push(block);
    const { type: _t, ...rest } = block;
    yield { type: 'tool_use', ...rest };
  }
  if (usage) yield { type: 'usage', ...usage };
  const message: AssistantMessage = { role: 'assistant', content };
  yield {
    type: 'done',
    stopReason: refusal && !text ? 'refusal' : openaiStopReason(finish, calls.size > 0),
    message,
  };
}

/**
 * The chunks of a stream as the SDK yields them: parsed until `[DONE]`; an error sent in the stream
 * (an `error` event, or a chunk carrying `error`, as OpenRouter and vLLM send) is thrown.
 */
export async function* openaiStreamChunks(answer: HttpAnswer): AsyncGenerator<ChatCompletionChunk> {
  for await (const sse of sseEvents(answer.body)) {
    if (sse.data === '[DONE]') return;
    let data: unknown;
    try {
      data = JSON.parse(sse.data);
    } catch {
      throw new SyntaxError('Error reading response: malformed server-sent event JSON.');
    }
    const body = data as { error?: unknown } | null;
    if (sse.event === 'error') throw new StreamErrorEvent(body?.error ?? body, answer.headers);
    if (body && body.error) throw new StreamErrorEvent(body.error, answer.headers);
    yield data as ChatCompletionChunk;
  }
}

/** A whole completion (a server that answered without streaming) as the one chunk of its stream. */
export function openaiCompletionChunk(c: ChatCompletion): ChatCompletionChunk {
  return {
    id: c.id,
    object: 'chat.completion.chunk',
    created: c.created,
    model: c.model,
    choices: (c.choices ?? []).map((ch) => ({
      index: ch.index ?? 0,
      delta: {
        role: 'assistant',
        ...(typeof ch.message?.content === 'string' ? { content: ch.message.content } : {}),
        ...(typeof ch.message?.refusal === 'string' ? { refusal: ch.message.refusal } : {}),
        ...(ch.message?.tool_calls?.length
          ? {
              tool_calls: ch.message.tool_calls
                .filter((tc) => tc.type === 'function')
                .map((tc, index) => ({
                  index,
                  id: tc.id,
                  type: 'function' as const,
                  function: { name: tc.function.name, arguments: tc.function.arguments },
                })),
            }
          : {}),
      },
      finish_reason: ch.finish_reason,
      logprobs: null,
    })),
    ...(c.usage ? { usage: c.usage } : {}),
  };
}

async function* once<T>(item: T): AsyncGenerator<T> {
  yield item;
}

export class OpenAIProvider implements ModelProvider {
  readonly kind = 'openai' as const;
  readonly model: string;
  readonly #config: ProviderConfig;
  readonly #client: JsonHttpClient;
  readonly #label: ProviderLabel;
  readonly #keyRequired: boolean;

  constructor(config: ProviderConfig) {
    this.#config = config;
    this.model = config.model;
    const baseURL = (config.baseUrl || defaultBaseUrl('openai')).replace(/\/+$/, '');
    const host = hostOf(baseURL);
    this.#keyRequired = KEYED_HOSTS.test(host);
    const name = /openrouter\.ai$/i.test(host)
      ? 'OpenRouter'
      : /openai\.com$/i.test(host)
        ? 'OpenAI'
        : 'The model server';
    this.#label = { name, baseUrl: baseURL, apiKey: config.apiKey };
    this.#client = new JsonHttpClient({
      baseUrl: baseURL,
      headers: {
        accept: 'application/json',
        'user-agent': 'Fluid',
        // A local server takes any key; like the SDK, send one anyway.
        authorization: `Bearer ${config.apiKey || 'no-key'}`,
        ...config.headers,
      },
    });
  }

  stream(req: ModelRequest): AsyncIterable<ModelEvent> {
    return this.#run(req);
  }

  async *#run(req: ModelRequest): AsyncGenerator<ModelEvent> {
    if (!this.#config.apiKey && this.#keyRequired) {
      throw new FluidError(
        'AUTH_FAILED',
        `No ${this.#label.name} API key is set: add it in Settings → Providers.`,
        {
          provider: this.#label.name,
        },
      );
    }
    const body = JSON.stringify(buildOpenAIParams(req, this.#config));
    const client = this.#client;
    yield* runWithRetries(
      async function* ({ signal }) {
        const answer = await client.post('/chat/completions', body, signal);
        if (/^application\/json\b/i.test(answer.contentType)) {
          const completion = (await readJson(answer.body)) as ChatCompletion;
          yield* foldOpenAIStream(once(openaiCompletionChunk(completion)));
        } else yield* foldOpenAIStream(openaiStreamChunks(answer));
      },
      { policy: retryPolicy(this.#config), label: this.#label, signal: req.signal },
    );
  }
}
