/** Errors as the user sees them: a stable code and a readable message, never a stack trace. */
import { FluidError, isErrorCode, type ErrorCode } from '../../../shared/errors.ts';

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  data?: unknown;
}

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof FluidError) return { code: err.code, message: err.message, data: err.data };
  if (err && typeof err === 'object' && 'code' in err && isErrorCode((err as { code: unknown }).code)) {
    const e = err as { code: ErrorCode; message?: unknown; data?: unknown };
    return { code: e.code, message: String(e.message ?? e.code), data: e.data };
  }
  if (err instanceof Error) return { code: 'INTERNAL', message: err.message || 'Something went wrong.' };
  return { code: 'INTERNAL', message: String(err) };
}

export interface FieldIssue {
  path: string;
  message: string;
}

/** VALIDATION errors carry `data.issues[]` with dotted paths; map them to fields. */
export function validationIssues(err: ErrorInfo | null | undefined): FieldIssue[] {
  if (!err || err.code !== 'VALIDATION') return [];
  const data = err.data as { issues?: unknown } | undefined;
  if (!data || !Array.isArray(data.issues)) return [];
  return data.issues.flatMap((i: unknown) => {
    if (!i || typeof i !== 'object') return [];
    const { path, message } = i as { path?: unknown; message?: unknown };
    return typeof message === 'string' ? [{ path: typeof path === 'string' ? path : '', message }] : [];
  });
}

export function issuesByField(issues: FieldIssue[], prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of issues) {
    const key = prefix && i.path.startsWith(prefix) ? i.path.slice(prefix.length) : i.path;
    out[key] ??= humanizeIssue(i.message);
  }
  return out;
}

/** zod's messages are terse ("Too small: expected number to be >=0"); keep them but read better. */
export function humanizeIssue(message: string): string {
  const small = /^Too small: expected number to be >=?(-?[\d.]+)$/.exec(message);
  if (small) return `Must be at least ${small[1]}.`;
  const big = /^Too big: expected number to be <=?(-?[\d.]+)$/.exec(message);
  if (big) return `Must be at most ${big[1]}.`;
  if (/^Invalid input: expected int/.test(message)) return 'Must be a whole number.';
  if (/^Invalid input: expected number/.test(message)) return 'Must be a number.';
  if (/^Invalid string: must start with "(.*)"$/.test(message))
    return message.replace(/^Invalid string: must start with "(.*)"$/, 'Must start with "$1".');
  if (/^Too small: expected string to have >=1 characters?$/.test(message)) return 'Required.';
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  return text.endsWith('.') || text.endsWith(')') ? text : `${text}.`;
}
