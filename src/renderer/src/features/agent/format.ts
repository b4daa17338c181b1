/** How the agent's numbers and tool calls read: costs, token counts, argument summaries, statuses. */
import type { CardStatus } from './sessionState.ts';

/** "$0.0042" under a cent, "$1.23" above. */
export function formatUsd(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n === 0) return '$0.00';
  if (Math.abs(n) < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}

/** 950 → "950", 12_400 → "12.4k", 1_250_000 → "1.25M". */
export function formatTokens(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n < 1000) return String(Math.round(n));
  if (n < 100_000) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  if (n < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(2).replace(/\.?0+$/, '')}M`;
}

export function formatDelay(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)} s`;
}

/** "rate limited (429)" → "Rate limited (429), retrying in 2 s". */
export function retryText(n: { reason: string; delayMs: number; attempt: number }): string {
  const reason = n.reason ? n.reason.charAt(0).toUpperCase() + n.reason.slice(1) : 'The model call failed';
  return `${reason}, retrying in ${formatDelay(n.delayMs)}${n.attempt > 1 ? ` (attempt ${n.attempt})` : ''}`;
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

function firstLine(s: string): string {
  const lines = s.split('\n');
  const one = lines.find((l) => l.trim())?.trim() ?? '';
  return lines.filter((l) => l.trim()).length > 1 ? `${one} …` : one;
}

const TARGET_KEYS = ['sandbox_id', 'source_vm', 'vm', 'host'];

/**
 * One line for a tool call's arguments: the command (after its target) when there is one, else the
 * simple arguments as key=value.
 */
export function argSummary(input: Record<string, unknown>, max = 140): string {
  const command = input.command ?? input.script;
  const target = TARGET_KEYS.map((k) => input[k]).find((v) => typeof v === 'string') as string | undefined;
  if (typeof command === 'string') return clip(`${target ? `${target}: ` : ''}${firstLine(command)}`, max);
  if (typeof input.path === 'string') return clip(`${target ? `${target}: ` : ''}${input.path}`, max);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(input)) {
    if (v === null || v === undefined) continue;
    if (typeof v === 'string') parts.push(`${k}=${v.includes('\n') ? firstLine(v) : v}`);
    else if (typeof v === 'number' || typeof v === 'boolean') parts.push(`${k}=${String(v)}`);
    else if (Array.isArray(v)) parts.push(`${k}=[${v.length}]`);
    else parts.push(`${k}={…}`);
  }
  return clip(parts.join(' '), max);
}

export const CARD_STATUS_LABEL: Record<CardStatus, string> = {
  running: 'running',
  'waiting-approval': 'waiting for approval',
  done: 'done',
  denied: 'denied',
  error: 'error',
  queued: 'queued',
  'no-result': 'no result',
  exited: 'exited non-zero',
};

export const CARD_STATUS_TONE: Record<CardStatus, 'ok' | 'warn' | 'fail' | 'neutral' | 'info'> = {
  running: 'info',
  'waiting-approval': 'warn',
  done: 'ok',
  denied: 'fail',
  error: 'fail',
  queued: 'neutral',
  'no-result': 'neutral',
  exited: 'neutral',
};
