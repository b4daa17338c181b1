/**
 * Tool output in the model's context is capped: the head and the tail are kept around a marker
 * that names a handle, and the whole output stays retrievable with `read_tool_output`.
 */
import { z } from 'zod';
import { jsonSchemaOf } from './tools/registry.ts';
import type { ToolDefinition } from './providers/types.ts';

export const READ_TOOL_OUTPUT = 'read_tool_output';

export const ReadToolOutputInput = z.object({
  handle: z.string().min(1).max(64).describe('The handle named in the cut marker, e.g. out_0123456789ab'),
  offset: z.number().int().min(0).optional().describe('Start, in characters of the full output (default 0)'),
  limit: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('How many characters (default and maximum: the context cap)'),
});

export function readToolOutputDefinition(maxChars: number): ToolDefinition {
  return {
    name: READ_TOOL_OUTPUT,
    description: `Read more of a tool result that was cut because it was long (results over ${maxChars} characters keep only their head and tail in the conversation). Pass the handle from the cut marker; offset and limit count characters of the full output (secrets stay redacted). Read only what you need.`,
    inputSchema: jsonSchemaOf(ReadToolOutputInput),
  };
}

/** The text as it goes into the context: whole when short enough, else head + marker + tail. */
export function capOutput(
  text: string,
  maxChars: number,
  handle: string | null,
): { text: string; cut: boolean } {
  if (text.length <= maxChars) return { text, cut: false };
  const marker = (head: number, omitted: number) =>
    `\n\n[… ${omitted} characters cut here (${text.length} in all). ${
      handle
        ? `The full output is kept: read_tool_output {"handle":"${handle}","offset":${head}} reads on from here.`
        : 'The full output was not kept.'
    } …]\n\n`;
  const budget = Math.max(200, maxChars - marker(text.length, text.length).length);
  let head = Math.floor(budget * 0.6);
  let tail = budget - head;
  // Cut at line ends where one is near, so lines stay whole.
  const nl = text.lastIndexOf('\n', head);
  if (nl > head * 0.8) head = nl + 1;
  const tailStart = text.length - tail;
  const nl2 = text.indexOf('\n', tailStart);
  if (nl2 !== -1 && nl2 - tailStart < tail * 0.2) tail = text.length - (nl2 + 1);
  return {
    text: text.slice(0, head) + marker(head, text.length - head - tail) + text.slice(text.length - tail),
    cut: true,
  };
}

/** A window of a (redacted) full output for read_tool_output, with where it stands. */
export function sliceOutput(text: string, offset: number, limit: number): string {
  const start = Math.min(offset, text.length);
  const end = Math.min(text.length, start + limit);
  const part = text.slice(start, end);
  const more =
    end < text.length
      ? ` ${text.length - end} more: read_tool_output with offset ${end}.`
      : ' This is the end.';
  return `${part}\n\n[characters ${start}–${end} of ${text.length}.${more}]`;
}
