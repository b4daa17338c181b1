/** Tool arguments arrive as JSON text assembled from chunks; this turns them into an input object. */
export function parseToolInput(raw: string): { input: Record<string, unknown>; error?: string } {
  const text = raw.trim();
  if (text === '') return { input: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      input: {},
      error: `the arguments are not valid JSON (${(err as Error).message}): ${clip(text)}`,
    };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { input: {}, error: `the arguments are not a JSON object: ${clip(text)}` };
  }
  return { input: value as Record<string, unknown> };
}

function clip(s: string, max = 500): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
