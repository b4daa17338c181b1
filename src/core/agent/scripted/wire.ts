/**
 * The two wire formats the scripted model server speaks, built as faithfully as the real services
 * send them: Anthropic Messages (SSE events and JSON) and OpenAI Chat Completions (SSE chunks and JSON).
 */
import { randomBytes } from 'node:crypto';

export interface ReplyToolCall {
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export type ReplyStopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'refusal';

export interface Reply {
  model: string;
  text: string;
  toolCalls: ReplyToolCall[];
  stopReason: ReplyStopReason;
  /** Provider-layer meaning: inputTokens counts every input token, cache reads and writes included. */
  usage: { inputTokens: number; outputTokens: number; cacheReadTokens: number; cacheWriteTokens: number };
  /** Code points per chunk; undefined: text in 3 pieces, arguments in 5. */
  chunkSize?: number;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export function randomId(prefix: string, length: number, alphabet = BASE62): string {
  const bytes = randomBytes(length);
  let s = prefix;
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

export const ids = {
  anthropicMessage: () => randomId('msg_01', 22),
  anthropicTool: () => randomId('toolu_01', 22),
  anthropicRequest: () => randomId('req_011C', 20),
  openaiCompletion: () => randomId('chatcmpl-', 29),
  openaiTool: () => randomId('call_', 24),
  openaiRequest: () => randomId('req_', 32, '0123456789abcdef'),
};

/** Splits by code points (never inside a surrogate pair), into `pieces` parts or parts of `size`. */
export function splitText(text: string, opts: { size?: number; pieces?: number }): string[] {
  const cps = Array.from(text);
  if (cps.length === 0) return [];
  const size = opts.size ?? Math.max(1, Math.ceil(cps.length / Math.max(1, opts.pieces ?? 1)));
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(''));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Anthropic

export interface SseEvent {
  event?: string;
  data: unknown;
}

function anthropicUsage(u: Reply['usage']) {
  return {
    input_tokens: Math.max(0, u.inputTokens - u.cacheReadTokens - u.cacheWriteTokens),
    cache_creation_input_tokens: u.cacheWriteTokens,
    cache_read_input_tokens: u.cacheReadTokens,
  };
}

function anthropicContent(r: Reply) {
  const content: unknown[] = [];
  if (r.text) content.push({ type: 'text', text: r.text });
  for (const c of r.toolCalls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: c.input });
  return content;
}

export function anthropicMessageJson(r: Reply, id = ids.anthropicMessage()) {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: r.model,
    content: anthropicContent(r),
    stop_reason: r.stopReason,
    stop_sequence: null,
    usage: {
      ...anthropicUsage(r.usage),
      cache_creation: { ephemeral_5m_input_tokens: r.usage.cacheWriteTokens, ephemeral_1h_input_tokens: 0 },
      output_tokens: r.usage.outputTokens,
      service_tier: 'standard',
    },
  };
}

export function anthropicStreamEvents(r: Reply, id = ids.anthropicMessage()): SseEvent[] {
  const ev = (event: string, data: Record<string, unknown>): SseEvent => ({
    event,
    data: { type: event, ...data },
  });
  const out: SseEvent[] = [
    ev('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: r.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          ...anthropicUsage(r.usage),
          cache_creation: {
            ephemeral_5m_input_tokens: r.usage.cacheWriteTokens,
            ephemeral_1h_input_tokens: 0,
          },
          output_tokens: 1,
          service_tier: 'standard',
        },
      },
    }),
  ];
  let index = 0;
  let pinged = false;
  const ping = () => {
    if (!pinged) out.push(ev('ping', {}));
    pinged = true;
  };
  if (r.text) {
    out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    ping();
    for (const piece of splitText(r.text, { size: r.chunkSize, pieces: 3 }))
      out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }));
    out.push(ev('content_block_stop', { index }));
    index++;
  }
  for (const c of r.toolCalls) {
    out.push(
      ev('content_block_start', {
        index,
        content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} },
      }),
    );
    ping();
    out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
    for (const piece of splitText(JSON.stringify(c.input), { size: r.chunkSize, pieces: 5 }))
      out.push(
        ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } }),
      );
    out.push(ev('content_block_stop', { index }));
    index++;
  }
  out.push(
    ev('message_delta', {
      delta: { stop_reason: r.stopReason, stop_sequence: null },
      usage: { ...anthropicUsage(r.usage), output_tokens: r.usage.outputTokens },
    }),
  );
  out.push(ev('message_stop', {}));
  return out;
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const ANTHROPIC_ERROR_MESSAGES: Record<string, string> = {
  rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit.',
  overloaded_error: 'Overloaded',
  api_error: 'Internal server error',
  authentication_error: 'invalid x-api-key',
};

export function anthropicErrorBody(status: number, type?: string, message?: string, requestId?: string) {
  const t = type ?? ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  return {
    type: 'error',
    error: { type: t, message: message ?? ANTHROPIC_ERROR_MESSAGES[t] ?? `scripted ${status}` },
    ...(requestId ? { request_id: requestId } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// OpenAI

const FINISH: Record<ReplyStopReason, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  tool_use: 'tool_calls',
  max_tokens: 'length',
  refusal: 'content_filter',
};

function openaiUsage(u: Reply['usage']) {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cacheReadTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export function openaiCompletionJson(
  r: Reply,
  id = ids.openaiCompletion(),
  created = Math.floor(Date.now() / 1000),
) {
  return {
    id,
    object: 'chat.completion',
    created,
    model: r.model,
    system_fingerprint: 'fp_scripted',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: r.text || null,
          refusal: null,
          annotations: [],
          ...(r.toolCalls.length
            ? {
                tool_calls: r.toolCalls.map((c) => ({
                  id: c.id,
                  type: 'function',
                  function: { name: c.name, arguments: JSON.stringify(c.input) },
                })),
              }
            : {}),
        },
        logprobs: null,
        finish_reason: FINISH[r.stopReason],
      },
    ],
    usage: openaiUsage(r.usage),
    service_tier: 'default',
  };
}

export function openaiStreamChunks(
  r: Reply,
  includeUsage: boolean,
  id = ids.openaiCompletion(),
  created = Math.floor(Date.now() / 1000),
): unknown[] {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: r.model,
    system_fingerprint: 'fp_scripted',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  const out: unknown[] = [chunk({ role: 'assistant', content: '', refusal: null })];
  for (const piece of splitText(r.text, { size: r.chunkSize, pieces: 3 }))
    out.push(chunk({ content: piece }));
  r.toolCalls.forEach((c, index) => {
    out.push(
      chunk({
        tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }],
      }),
    );
    for (const piece of splitText(JSON.stringify(c.input), { size: r.chunkSize, pieces: 5 }))
      out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
  });
  out.push(chunk({}, FINISH[r.stopReason]));
  if (includeUsage) {
    out.push({
      id,
      object: 'chat.completion.chunk',
      created,
      model: r.model,
      system_fingerprint: 'fp_scripted',
      choices: [],
      usage: openaiUsage(r.usage),
    });
  }
  return out;
}

const OPENAI_ERRORS: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: 'invalid_request_error', code: null, message: 'Invalid request' },
  401: {
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message:
      'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
  },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory', message: 'Forbidden' },
  404: { type: 'invalid_request_error', code: 'model_not_found', message: 'The model does not exist' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached for requests' },
  500: {
    type: 'server_error',
    code: null,
    message: 'The server had an error while processing your request.',
  },
  503: {
    type: 'server_error',
    code: null,
    message: 'The engine is currently overloaded, please try again later',
  },
};

export function openaiErrorBody(status: number, type?: string, message?: string) {
  const d = OPENAI_ERRORS[status] ?? {
    type: status >= 500 ? 'server_error' : 'invalid_request_error',
    code: null,
    message: `scripted ${status}`,
  };
  return { error: { message: message ?? d.message, type: type ?? d.type, param: null, code: d.code } };
}

// ---------------------------------------------------------------------------------------------------
// Models (one body both SDKs accept)

export function modelsListJson(models: string[]) {
  const created = 1_767_225_600; // 2026-01-01
  const data = models.map((id) => modelJson(id, created));
  return {
    object: 'list',
    data,
    has_more: false,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  };
}

export function modelJson(id: string, created = 1_767_225_600) {
  return {
    id,
    type: 'model',
    object: 'model',
    display_name: id,
    created_at: new Date(created * 1000).toISOString(),
    created,
    owned_by: 'scripted',
  };
}
