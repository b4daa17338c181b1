/**
 * Errors cross every door as `{code, message, data}` and come back as a FluidError with the same code.
 * Codes are few and stable: clients branch on them, humans read the message.
 */
export const ERROR_CODES = [
  'VALIDATION',
  'NOT_FOUND',
  'HOST_UNREACHABLE',
  'HOSTKEY_MISMATCH',
  'AUTH_FAILED',
  'APPROVAL_REQUIRED',
  'DENIED',
  'CANCELLED',
  'CONFLICT',
  'TIMEOUT',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  data?: unknown;
}

export class FluidError extends Error {
  readonly code: ErrorCode;
  readonly data: unknown;

  constructor(code: ErrorCode, message: string, data?: unknown) {
    super(message);
    this.name = 'FluidError';
    this.code = code;
    this.data = data;
  }

  toPayload(): ErrorPayload {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }

  static fromPayload(p: ErrorPayload): FluidError {
    return new FluidError(p.code, p.message, p.data);
  }
}

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === 'string' && (ERROR_CODES as readonly string[]).includes(v);
}

/** Normalise anything thrown into a payload that is safe to send over a door. */
export function toErrorPayload(err: unknown): ErrorPayload {
  if (err instanceof FluidError) return err.toPayload();
  if (isAbortError(err)) return { code: 'CANCELLED', message: 'The operation was cancelled.' };
  if (err && typeof err === 'object' && 'code' in err && isErrorCode((err as { code: unknown }).code)) {
    const e = err as { code: ErrorCode; message?: unknown; data?: unknown };
    return { code: e.code, message: String(e.message ?? e.code), data: e.data };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'INTERNAL', message: message || 'Internal error' };
}

export function isAbortError(err: unknown): boolean {
  return (
    !!err &&
    typeof err === 'object' &&
    'name' in err &&
    ((err as { name: unknown }).name === 'AbortError' ||
      ((err as { name: unknown }).name === 'FluidError' && (err as { code?: unknown }).code === 'CANCELLED'))
  );
}

export const cancelled = (what = 'The operation'): FluidError =>
  new FluidError('CANCELLED', `${what} was cancelled.`);
