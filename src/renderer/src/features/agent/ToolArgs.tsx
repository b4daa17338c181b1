/**
 * A tool call's arguments the way a person reads them: commands, scripts and file contents in a
 * monospace block, short values inline. Used by the tool-call cards and the approval modal.
 */
import type { ReactNode } from 'react';

/** Arguments whose value is code or text to read as a block, whatever its length. */
const BLOCK_KEYS = new Set([
  'command',
  'script',
  'content',
  'old_string',
  'new_string',
  'text',
  'patch',
  'task',
]);

function value(key: string, v: unknown): ReactNode {
  if (typeof v === 'string') {
    if (BLOCK_KEYS.has(key) || v.includes('\n') || v.length > 120)
      return <pre className="code-block">{v}</pre>;
    return <code className="arg-inline">{v}</code>;
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null)
    return <code className="arg-inline">{String(v)}</code>;
  return <pre className="code-block">{JSON.stringify(v, null, 2)}</pre>;
}

export function ToolArgs({ args, label = 'Arguments' }: { args: Record<string, unknown>; label?: string }) {
  const entries = Object.entries(args).filter(([, v]) => v !== undefined);
  if (!entries.length) return <p className="muted small tool-args-none">No arguments.</p>;
  return (
    <dl className="tool-args" aria-label={label}>
      {entries.map(([k, v]) => (
        <div key={k} className="tool-arg" data-arg={k}>
          <dt className="mono">{k}</dt>
          <dd>{value(k, v)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Text from the model: paragraphs as written, ``` fences as code blocks, `inline` as code. */
export function RichText({ text }: { text: string }) {
  const parts = text.split(/```[^\n]*\n?/);
  return (
    <>
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          <pre key={i} className="code-block">
            {p.replace(/\n$/, '')}
          </pre>
        ) : p.trim() ? (
          <p key={i} className="rich-p">
            {p
              .replace(/^\n+|\n+$/g, '')
              .split(/(`[^`\n]+`)/)
              .map((s, j) =>
                s.startsWith('`') && s.endsWith('`') && s.length > 2 ? (
                  <code key={j}>{s.slice(1, -1)}</code>
                ) : (
                  s
                ),
              )}
          </p>
        ) : null,
      )}
    </>
  );
}
