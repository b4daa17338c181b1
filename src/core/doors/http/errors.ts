/**
 * Errors cross the HTTP door as the contract's `{code, message, data}` body, with the status its code
 * maps to. The door's own authentication failure is 401 (code AUTH_FAILED); AUTH_FAILED from the core
 * means a host or a model provider refused Fluid's credentials, which is the upstream's answer: 502.
 */
import type { ServerResponse } from 'node:http';
import { toErrorPayload, type ErrorCode, type ErrorPayload } from '../../../shared/errors.ts';

export const STATUS_OF: Record<ErrorCode, number> = {
  VALIDATION: 400,
  NOT_FOUND: 404,
  HOST_UNREACHABLE: 502,
  HOSTKEY_MISMATCH: 502,
  AUTH_FAILED: 502,
  APPROVAL_REQUIRED: 403,
  DENIED: 403,
  CANCELLED: 409,
  CONFLICT: 409,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

export const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
} as const;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = body === undefined ? '' : JSON.stringify(body);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  err: unknown,
  status?: number,
  headers: Record<string, string> = {},
): ErrorPayload {
  const payload = toErrorPayload(err);
  sendJson(res, status ?? STATUS_OF[payload.code] ?? 500, payload, headers);
  return payload;
}
