/**
 * The attempt loop shared by the providers: retries with exponential backoff and jitter on rate
 * limits, overload, 5xx and dropped connections (honouring `retry-after`), an idle timeout, prompt
 * cancellation, and the mapping of every failure to a FluidError whose text never holds the API key.
 */
import { FluidError, cancelled, type ErrorCode } from '../../../shared/errors.ts';
import {
  DEFAULT_MAX_RETRIES,
  DEFAULT_MAX_RETRY_AFTER_MS,
  DEFAULT_MAX_RETRY_DELAY_MS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_TIMEOUT_MS,
  type ModelEvent,
  type ProviderConfig,
} from './types.ts';

export interface RetryPolicy {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
  timeoutMs: number;
}

export function retryPolicy(config: ProviderConfig): RetryPolicy {
  const num = (v: number | undefined, d: number) =>
    typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : d;
  return {
    maxRetries: Math.floor(num(config.maxRetries, DEFAULT_MAX_RETRIES)),
    baseDelayMs: num(config.retryBaseDelayMs, DEFAULT_RETRY_BASE_DELAY_MS),
    maxDelayMs: num(config.maxRetryDelayMs, DEFAULT_MAX_RETRY_DELAY_MS),
    maxRetryAfterMs: num(config.maxRetryAfterMs, DEFAULT_MAX_RETRY_AFTER_MS),
    timeoutMs: Math.max(1, num(config.timeoutMs, DEFAULT_TIMEOUT_MS)),
  };
}

/** Where the failure is reported from: the service name and its base URL, for messages. */
export interface ProviderLabel {
  /** "Anthropic", "OpenAI-compatible". */
  name: string;
  baseUrl: string;
  /** Scrubbed from every message that leaves this module. */
  apiKey: string;
}

/** Thrown by an attempt whose stream ended before the provider's end marker. */
export class IncompleteStreamError extends Error {
  constructor(message = 'the response stream ended before the message was complete') {
    super(message);
    this.name = 'IncompleteStreamError';
  }
}

export interface AttemptContext {
  /** Aborted on cancel, on the idle timeout, and when the consumer stops iterating. */
  signal: AbortSignal;
  /** 0 for the first attempt. */
  attempt: number;
}

export type Attempt = (ctx: AttemptContext) => AsyncIterable<ModelEvent>;

/** The decision about one failure. */
export interface Failure {
  retryable: boolean;
  /** Short, for the retry event: "rate limited (429)". */
  reason: string;
  status?: number;
  retryAfterMs?: number;
  /** The error to throw when this failure is final. */
  error: FluidError;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled('The model request'));
    const onAbort = () => {
      clearTimeout(t);
      reject(cancelled('The model request'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** The abort reason of an attempt that is over (no longer needed by anyone). */
const ATTEMPT_OVER = Object.assign(new Error('The attempt is over.'), { name: 'AbortError' });

/** Exponential backoff with equal jitter: half fixed, half random. */
export function backoffDelay(retry: number, policy: RetryPolicy, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** `retry-after-ms` (milliseconds) wins over `retry-after` (seconds or an HTTP date). */
export function parseRetryAfter(headers: Headers | undefined | null, now = Date.now()): number | undefined {
  if (!headers || typeof headers.get !== 'function') return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function scrub(text: string, secret: string): string {
  return secret && secret.length >= 4 ? text.split(secret).join('[redacted]') : text;
}

/**
 * Runs `attempt` until it completes, retrying the failures worth retrying. Events stream through as
 * they arrive; a retry is announced with a `retry` event before the wait.
 */
export async function* runWithRetries(
  attempt: Attempt,
  opts: {
    policy: RetryPolicy;
    label: ProviderLabel;
    signal?: AbortSignal | undefined;
    classify?: (err: unknown, timedOut: boolean) => Failure;
  },
): AsyncGenerator<ModelEvent> {
  const { policy, label, signal } = opts;
  const classify =
    opts.classify ?? ((err: unknown, timedOut: boolean) => classifyError(err, label, timedOut));
  if (signal?.aborted) throw cancelled('The model request');
  let last: Failure | undefined;
  for (let n = 0; ; n++) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        ctl.abort(new Error('idle timeout'));
      }, policy.timeoutMs);
    };
    let streamedText = false;
    let streamedToolUse = false;
    let failure: Failure | undefined;
    try {
      arm();
      for await (const ev of attempt({ signal: ctl.signal, attempt: n })) {
        // The timer measures the server's silence, not the time the consumer takes.
        clearTimeout(timer);
        if (ev.type === 'text_delta') streamedText = true;
        if (ev.type === 'tool_use') streamedToolUse = true;
        yield ev;
        if (signal?.aborted) throw cancelled('The model request');
        arm();
      }
      // Some SDK streams end quietly when their request is aborted.
      if (signal?.aborted) throw cancelled('The model request');
      if (timedOut) throw new IncompleteStreamError('no data within the timeout');
      return;
    } catch (err) {
      if (signal?.aborted) throw cancelled('The model request');
      failure = classify(err, timedOut);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // Ends whatever the attempt left open (the consumer may have stopped early); a reason of our
      // own spares building a DOMException on every turn.
      ctl.abort(ATTEMPT_OVER);
    }
    last = failure;
    if (!failure.retryable) throw failure.error;
    if (streamedToolUse) {
      throw new FluidError(
        failure.error.code,
        `${failure.error.message} (The stream broke after a tool call had been sent, so it was not retried.)`,
        failure.error.data,
      );
    }
    if (n >= policy.maxRetries) throw exhausted(last, n + 1, label);
    if (failure.retryAfterMs !== undefined && failure.retryAfterMs > policy.maxRetryAfterMs) {
      const secs = Math.ceil(failure.retryAfterMs / 1000);
      throw new FluidError(
        'UNAVAILABLE',
        `${label.name} asks to wait ${secs} s before the next request (${failure.reason}). Try again later, or pick another model or provider in Settings → Providers.`,
        { ...(failure.error.data as object), retryAfterMs: failure.retryAfterMs },
      );
    }
    const delayMs = failure.retryAfterMs ?? backoffDelay(n + 1, policy);
    yield {
      type: 'retry',
      attempt: n + 1,
      maxRetries: policy.maxRetries,
      delayMs,
      reason: failure.reason,
      ...(failure.status !== undefined ? { status: failure.status } : {}),
      ...(streamedText ? { discardPartial: true } : {}),
    };
    await sleep(delayMs, signal);
  }
}

function exhausted(last: Failure, attempts: number, label: ProviderLabel): FluidError {
  const code: ErrorCode = last.error.code === 'TIMEOUT' ? 'TIMEOUT' : 'UNAVAILABLE';
  const what =
    code === 'TIMEOUT'
      ? 'Check the network and the base URL in Settings → Providers, or raise the timeout.'
      : last.status === 429
        ? 'The account is rate limited: wait a minute, lower the concurrency, or raise the rate limit with the provider.'
        : last.status !== undefined
          ? 'The service is overloaded or failing: try again in a few minutes, or pick another model or provider in Settings → Providers.'
          : `Check that ${label.baseUrl} is reachable (network, proxy, a local server running), or change the base URL in Settings → Providers.`;
  return new FluidError(
    code,
    `${label.name} request failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${last.error.message} ${what}`,
    { ...(last.error.data as object), attempts },
  );
}

// ---------------------------------------------------------------------------------------------------
// Classification (both SDKs' APIError classes share the shape status / headers / error)

interface ApiErrorLike {
  status?: number;
  headers?: Headers;
  error?: unknown;
  message?: string;
  requestID?: string | null;
  name?: string;
  cause?: unknown;
}

const TRANSIENT_TYPES: Record<string, number> = {
  overloaded_error: 529,
  api_error: 500,
  rate_limit_error: 429,
  timeout_error: 504,
  server_error: 500,
};

const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The SDKs' error classes (the OpenAI SDK leaves `name` as "Error"). */
function className(err: unknown): string {
  if (!err || typeof err !== 'object') return '';
  const ctor = (err as { constructor?: { name?: unknown } }).constructor;
  const n =
    typeof ctor?.name === 'string' && ctor.name !== 'Error' ? ctor.name : (err as { name?: unknown }).name;
  return typeof n === 'string' ? n : '';
}

function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  for (let i = 0; i < 6 && cur && typeof cur === 'object'; i++) {
    out.push(cur);
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

function connectionCause(err: unknown): string | undefined {
  for (const e of causeChain(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return code;
  }
  for (const e of causeChain(err)) {
    const { name, message } = e as { name?: string; message?: string };
    if (name === 'TypeError' && (message === 'terminated' || message === 'fetch failed')) return message;
    const cls = className(e);
    if (cls === 'SocketError' || cls === 'APIConnectionError') return 'connection error';
  }
  return undefined;
}

/** The provider's own explanation: `error.message` of the JSON body, else the SDK message. */
function providerMessage(e: ApiErrorLike): string {
  const body = e.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  const m = body?.error?.message ?? body?.message;
  if (typeof m === 'string' && m) return m;
  return (e.message ?? '').replace(/^\d{3}\s+/, '') || 'no details';
}

function providerType(e: ApiErrorLike): string | undefined {
  const body = e.error as
    { type?: unknown; code?: unknown; error?: { type?: unknown; code?: unknown } } | undefined;
  for (const v of [body?.error?.type, body?.type, body?.error?.code, body?.code])
    if (typeof v === 'string' && v) return v;
  return undefined;
}

const CONTEXT_OVERFLOW =
  /prompt is too long|context[_ ]length[_ ]exceeded|maximum context length|context window|too many tokens|input is too long/i;

export function classifyError(err: unknown, label: ProviderLabel, timedOut = false): Failure {
  const s = (t: string) => scrub(t, label.apiKey);
  if (err instanceof FluidError) return { retryable: false, reason: err.code, error: err };
  const e = (err ?? {}) as ApiErrorLike;
  const name = className(err);

  if (timedOut || name === 'APIConnectionTimeoutError') {
    return {
      retryable: true,
      reason: 'timed out',
      error: new FluidError('TIMEOUT', s(`${label.name} sent nothing for too long (${label.baseUrl}).`), {
        provider: label.name,
      }),
    };
  }

  const status = typeof e.status === 'number' ? e.status : undefined;
  const type = providerType(e);
  const msg = s(providerMessage(e));
  const requestId =
    e.requestID ?? e.headers?.get?.('request-id') ?? e.headers?.get?.('x-request-id') ?? undefined;
  const data = {
    provider: label.name,
    ...(status !== undefined ? { status } : {}),
    ...(type ? { type } : {}),
    ...(requestId ? { requestId } : {}),
  };
  const shouldRetryHeader = e.headers?.get?.('x-should-retry');

  if (status !== undefined) {
    const statusText = `${status}${type ? ` ${type}` : ''}: ${msg}`;
    if (status === 401 || status === 403) {
      return {
        retryable: false,
        reason: `auth failed (${status})`,
        status,
        error: new FluidError(
          'AUTH_FAILED',
          `${label.name} rejected the API key (${statusText}): update it in Settings → Providers.`,
          data,
        ),
      };
    }
    if (status === 429 && /insufficient_quota|quota|billing|credit/i.test(`${type ?? ''} ${msg}`)) {
      return {
        retryable: false,
        reason: 'quota exhausted (429)',
        status,
        error: new FluidError(
          'UNAVAILABLE',
          `${label.name} refused the request because the account has no quota or credit left (${statusText}). Check billing with the provider.`,
          data,
        ),
      };
    }
    const transient = status === 408 || status === 409 || status === 429 || status >= 500;
    const retryable = shouldRetryHeader === 'true' ? true : shouldRetryHeader === 'false' ? false : transient;
    if (transient || retryable) {
      const reason =
        status === 429
          ? 'rate limited (429)'
          : status === 529 || type === 'overloaded_error'
            ? `overloaded (${status})`
            : status === 408
              ? 'request timeout (408)'
              : `server error (${status})`;
      return {
        retryable,
        reason,
        status,
        retryAfterMs: parseRetryAfter(e.headers),
        error: new FluidError('UNAVAILABLE', `${label.name} answered ${statusText}.`, data),
      };
    }
    if (status === 404) {
      return {
        retryable: false,
        reason: 'not found (404)',
        status,
        error: new FluidError(
          'NOT_FOUND',
          `${label.name} answered ${statusText}. Check the model name and the base URL (${label.baseUrl}) in Settings → Providers.`,
          data,
        ),
      };
    }
    const overflow = CONTEXT_OVERFLOW.test(msg);
    return {
      retryable: false,
      reason: `rejected (${status})`,
      status,
      error: new FluidError('VALIDATION', `${label.name} rejected the request (${statusText}).`, {
        ...data,
        ...(overflow ? { contextOverflow: true } : {}),
      }),
    };
  }

  // An error event inside an SSE stream: no HTTP status, but the body names the kind (a type, or a
  // numeric code as OpenRouter and vLLM send). An unnamed one is taken as transient.
  if (e.error && typeof e.error === 'object') {
    const body = e.error as { code?: unknown; error?: { code?: unknown } };
    const code = [body.code, body.error?.code].find((c): c is number => typeof c === 'number');
    const equivalent =
      (type ? TRANSIENT_TYPES[type] : undefined) ??
      (code !== undefined && (code >= 500 || code === 429 || code === 408) ? code : undefined);
    if (equivalent !== undefined || (!type && code === undefined)) {
      const kind = type ?? (code !== undefined ? String(code) : 'error');
      return {
        retryable: true,
        reason: type === 'overloaded_error' ? 'overloaded (stream)' : `${kind} (stream)`,
        ...(equivalent !== undefined ? { status: equivalent } : {}),
        error: new FluidError('UNAVAILABLE', `${label.name} reported ${kind} mid-stream: ${msg}`, data),
      };
    }
    const kind = type ?? String(code);
    const auth =
      type === 'authentication_error' || type === 'permission_error' || code === 401 || code === 403;
    return {
      retryable: false,
      reason: kind,
      error: new FluidError(
        auth ? 'AUTH_FAILED' : 'VALIDATION',
        `${label.name} reported ${kind}: ${msg}${auth ? ': update the API key in Settings → Providers.' : ''}`,
        data,
      ),
    };
  }

  if (err instanceof IncompleteStreamError) {
    return {
      retryable: true,
      reason: 'stream interrupted',
      error: new FluidError('UNAVAILABLE', `${label.name}: ${err.message}.`, { provider: label.name }),
    };
  }

  const conn = connectionCause(err);
  if (conn) {
    const reason =
      conn === 'ECONNREFUSED'
        ? 'connection refused'
        : conn === 'ECONNRESET' || conn === 'terminated' || conn === 'UND_ERR_SOCKET'
          ? 'connection reset'
          : conn === 'ENOTFOUND' || conn === 'EAI_AGAIN'
            ? 'host not found'
            : 'connection error';
    return {
      retryable: true,
      reason,
      error: new FluidError(
        'UNAVAILABLE',
        s(`${label.name} at ${label.baseUrl} could not be reached (${reason}).`),
        {
          provider: label.name,
          cause: conn,
        },
      ),
    };
  }

  const text = s(err instanceof Error ? err.message : String(err));
  return {
    retryable: false,
    reason: 'internal error',
    error: new FluidError('INTERNAL', `${label.name} call failed: ${text || 'unknown error'}`, {
      provider: label.name,
    }),
  };
}
