import { z } from 'zod';
import { ERROR_CODES } from '../errors.ts';

export const IsoDate = z.string().describe('ISO-8601 timestamp (UTC)');
export const Id = z.string().min(1).max(128);
export const HostRef = z.string().min(1).max(128).describe('A host id or name');

export const ErrorPayloadSchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  data: z.unknown().optional(),
});

export const ActorSchema = z.object({
  door: z.enum(['app', 'web', 'cli', 'mcp', 'http', 'agent', 'test', 'system']),
  id: z.string(),
  interactive: z.boolean().optional(),
  scope: z.enum(['agent', 'operator']).optional(),
});

export const Empty = z.object({}).strict();
export const Ok = z.object({ ok: z.literal(true) });

/** How long a command may run and how much of its output is kept: one rule for exec, its stream and runs. */
export const ExecLimits = {
  timeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(24 * 3600)
    .default(600),
  maxOutputBytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
};
