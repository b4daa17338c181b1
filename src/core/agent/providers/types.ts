/**
 * The provider-neutral model interface the agent loop talks to. Anthropic and OpenAI-compatible
 * back ends (OpenAI, OpenRouter, Ollama, vLLM) are adapted to it in `anthropic.ts` and `openai.ts`.
 */

// ---------------------------------------------------------------------------------------------------
// Conversation

export interface TextBlock {
  type: 'text';
  text: string;
}

export interface ToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: Record<string, unknown>;
  /**
   * Set when the model sent arguments that are not a JSON object (weaker OpenAI-compatible models
   * do). `input` is then `{}`; the loop should answer with an error tool_result quoting this text.
   */
  parseError?: string;
}

export interface ToolResultBlock {
  type: 'tool_result';
  toolUseId: string;
  content: string;
  isError?: boolean;
}

export type Block = TextBlock | ToolUseBlock | ToolResultBlock;

export interface Message {
  role: 'user' | 'assistant';
  content: Block[];
}

export interface AssistantMessage extends Message {
  role: 'assistant';
}

export interface ToolDefinition {
  name: string;
  description: string;
  /** A JSON Schema object (`{ type: 'object', properties, required }`). */
  inputSchema: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------
// Requests and events

export interface ModelRequest {
  /** Defaults to the provider config's model. */
  model?: string;
  system: string;
  messages: Message[];
  tools: ToolDefinition[];
  maxTokens: number;
  /** OpenAI-compatible only; the Anthropic Messages API has deprecated sampling parameters. */
  temperature?: number;
  /** Aborting stops the HTTP stream and makes the iteration throw a CANCELLED FluidError. */
  signal?: AbortSignal;
}

export type StopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'refusal' | 'other';

export interface Usage {
  /**
   * Every input token of the request, cached or not: the size of the context sent. (Anthropic
   * reports cache reads and writes apart from `input_tokens`; they are added here.)
   */
  inputTokens: number;
  outputTokens: number;
  /** The part of `inputTokens` read from the provider's prompt cache. */
  cacheReadTokens?: number;
  /** The part of `inputTokens` written to the prompt cache (Anthropic). */
  cacheWriteTokens?: number;
}

export type ModelEvent =
  | { type: 'text_delta'; text: string }
  /** A complete tool call, arguments assembled. The authoritative list is `done.message`. */
  | ({ type: 'tool_use' } & Omit<ToolUseBlock, 'type'>)
  | ({ type: 'usage' } & Usage)
  | { type: 'done'; stopReason: StopReason; message: AssistantMessage }
  | {
      type: 'retry';
      /** 1 for the first retry. */
      attempt: number;
      maxRetries: number;
      delayMs: number;
      /** Human-readable: "rate limited (429)", "overloaded (529)", "connection reset". */
      reason: string;
      status?: number;
      /**
       * True when the failed attempt had already streamed text: that text is void, the retry
       * streams the answer again from the start. (A failure after a tool_use event is never retried.)
       */
      discardPartial?: boolean;
    };

export interface ModelProvider {
  readonly kind: ProviderKind;
  /** The default model of this provider (the config's). */
  readonly model: string;
  stream(req: ModelRequest): AsyncIterable<ModelEvent>;
}

// ---------------------------------------------------------------------------------------------------
// Configuration

export type ProviderKind = 'anthropic' | 'openai';

export interface ProviderConfig {
  kind: ProviderKind;
  /**
   * Anthropic: the server root (`https://api.anthropic.com`). OpenAI-compatible: including `/v1`
   * (`https://openrouter.ai/api/v1`, `http://localhost:11434/v1`).
   */
  baseUrl?: string;
  model: string;
  /** From the secret store. Never logged, never part of an error. May be empty for a local Ollama. */
  apiKey: string;
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** Time allowed for the response headers and, once streaming, between two events (default 5 min). */
  timeoutMs?: number;
  /** Extra HTTP headers (OpenRouter's `HTTP-Referer` / `X-Title`, a proxy's headers). */
  headers?: Record<string, string>;
  /** First backoff delay (default 1000 ms); it doubles with each retry, with jitter. */
  retryBaseDelayMs?: number;
  /** Ceiling of one backoff delay (default 30 s). */
  maxRetryDelayMs?: number;
  /** A `retry-after` longer than this (default 60 s) is not waited for: the call fails at once. */
  maxRetryAfterMs?: number;
  /** Anthropic only: mark the system prompt, tools and latest turn as cacheable (default true). */
  promptCaching?: boolean;
  /**
   * OpenAI-compatible only: the field carrying the output limit. Default: `max_completion_tokens`
   * for api.openai.com (newer models refuse `max_tokens`), `max_tokens` for everything else.
   */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
}

export const DEFAULT_MAX_RETRIES = 4;
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_RETRY_BASE_DELAY_MS = 1000;
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

export interface KnownModel {
  id: string;
  label: string;
  /** The model the settings UI preselects. */
  recommended?: boolean;
}

export interface ProviderPreset {
  /** Stable id for the settings UI (`anthropic`, `openai`, `openrouter`, `ollama`, `vllm`). */
  id: string;
  kind: ProviderKind;
  label: string;
  baseUrl: string;
  apiKeyRequired: boolean;
  models: KnownModel[];
}

export interface ProviderDescription {
  kind: ProviderKind;
  label: string;
  defaultBaseUrl: string;
  baseUrlHint: string;
  apiKeyRequired: boolean;
  apiKeyHint: string;
  knownModels: KnownModel[];
  /** Services reached through this kind, with their base URL. */
  presets: ProviderPreset[];
}

const ANTHROPIC_MODELS: KnownModel[] = [
  { id: 'claude-opus-5-5', label: 'Claude Opus 5.5' },
  { id: 'claude-sonnet-5-5', label: 'Claude Sonnet 5.5', recommended: true },
  { id: 'claude-haiku-5-5', label: 'Claude Haiku 5.5' },
  { id: 'claude-opus-4-8', label: 'Claude Opus 4.8' },
  { id: 'claude-sonnet-4-6', label: 'Claude Sonnet 4.6' },
  { id: 'claude-haiku-4-5', label: 'Claude Haiku 4.5' },
];

const OPENAI_MODELS: KnownModel[] = [
  { id: 'gpt-6.1-sol', label: 'GPT-6.1 Sol', recommended: true },
  { id: 'gpt-6.1-terra', label: 'GPT-6.1 Terra' },
  { id: 'gpt-6-luna', label: 'GPT-6 Luna' },
  { id: 'gpt-5.5', label: 'GPT-5.5' },
  { id: 'gpt-5.4-mini', label: 'GPT-5.4 mini' },
];

const OPENROUTER_MODELS: KnownModel[] = [
  { id: 'anthropic/claude-sonnet-4.6', label: 'Claude Sonnet 4.6 (OpenRouter)', recommended: true },
  { id: 'anthropic/claude-opus-4.6', label: 'Claude Opus 4.6 (OpenRouter)' },
  { id: 'openai/gpt-5.5', label: 'GPT-5.5 (OpenRouter)' },
  { id: 'z-ai/glm-4.7', label: 'GLM 4.7 (OpenRouter)' },
];

const OLLAMA_MODELS: KnownModel[] = [
  { id: 'qwen3', label: 'Qwen 3 (Ollama)', recommended: true },
  { id: 'llama3.1', label: 'Llama 3.1 (Ollama)' },
];

export const PROVIDER_PRESETS: readonly ProviderPreset[] = [
  {
    id: 'anthropic',
    kind: 'anthropic',
    label: 'Anthropic',
    baseUrl: 'https://api.anthropic.com',
    apiKeyRequired: true,
    models: ANTHROPIC_MODELS,
  },
  {
    id: 'openai',
    kind: 'openai',
    label: 'OpenAI',
    baseUrl: 'https://api.openai.com/v1',
    apiKeyRequired: true,
    models: OPENAI_MODELS,
  },
  {
    id: 'openrouter',
    kind: 'openai',
    label: 'OpenRouter',
    baseUrl: 'https://openrouter.ai/api/v1',
    apiKeyRequired: true,
    models: OPENROUTER_MODELS,
  },
  {
    id: 'ollama',
    kind: 'openai',
    label: 'Ollama',
    baseUrl: 'http://localhost:11434/v1',
    apiKeyRequired: false,
    models: OLLAMA_MODELS,
  },
  {
    id: 'vllm',
    kind: 'openai',
    label: 'vLLM',
    baseUrl: 'http://localhost:8000/v1',
    apiKeyRequired: false,
    models: [],
  },
];

export const PROVIDER_KINDS: readonly ProviderKind[] = ['anthropic', 'openai'];

export function isProviderKind(v: unknown): v is ProviderKind {
  return v === 'anthropic' || v === 'openai';
}

export function defaultBaseUrl(kind: ProviderKind): string {
  return kind === 'anthropic' ? 'https://api.anthropic.com' : 'https://api.openai.com/v1';
}

/** The static model list of a kind (the first-party service's models). */
export function knownModels(kind: ProviderKind): KnownModel[] {
  return (kind === 'anthropic' ? ANTHROPIC_MODELS : OPENAI_MODELS).map((m) => ({ ...m }));
}

/** What a settings UI needs to render the form of a provider kind. */
export function describeProvider(kind: ProviderKind): ProviderDescription {
  const presets = PROVIDER_PRESETS.filter((p) => p.kind === kind).map((p) => ({
    ...p,
    models: p.models.map((m) => ({ ...m })),
  }));
  return kind === 'anthropic'
    ? {
        kind,
        label: 'Anthropic (Messages API)',
        defaultBaseUrl: defaultBaseUrl(kind),
        baseUrlHint: 'The server root, without /v1 (https://api.anthropic.com).',
        apiKeyRequired: true,
        apiKeyHint: 'An Anthropic API key (sk-ant-…), from console.anthropic.com.',
        knownModels: knownModels(kind),
        presets,
      }
    : {
        kind,
        label: 'OpenAI-compatible (Chat Completions)',
        defaultBaseUrl: defaultBaseUrl(kind),
        baseUrlHint:
          'Including /v1: https://api.openai.com/v1, https://openrouter.ai/api/v1, http://localhost:11434/v1 (Ollama).',
        apiKeyRequired: false,
        apiKeyHint: 'The service API key (sk-…, sk-or-…). A local Ollama or vLLM needs none.',
        knownModels: knownModels(kind),
        presets,
      };
}
