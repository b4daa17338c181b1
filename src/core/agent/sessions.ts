/**
 * Persisted agent sessions: the session row (status, mode, usage, limits, owner process), the
 * transcript as provider-neutral blocks (exactly what the model saw: secrets already redacted), and
 * the raw outputs of tool calls behind handles.
 */
import { randomBytes } from 'node:crypto';
import type {
  AgentMode,
  Session,
  SessionStatus,
  TranscriptBlock,
  TranscriptMessage,
} from '../../shared/contract/agent.ts';
import { FluidError, type ErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import { prepared, type Db } from '../store/db.ts';
import type { RedactorState } from './redact.ts';

export interface SessionRow {
  id: string;
  title: string;
  status: SessionStatus;
  mode: AgentMode;
  provider_id: string;
  model: string;
  host: string | null;
  source: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  context_tokens: number;
  context_chars: number;
  steps: number;
  max_steps: number;
  max_cost_usd: number;
  last_error: string | null;
  summary: string | null;
  compacted_through: number;
  redactions: string;
  stop_requested: number;
  owner_pid: number | null;
  owner_instance: string | null;
  created_by_door: Actor['door'];
  created_by_id: string;
  created_at: string;
  updated_at: string;
}

interface MessageRow {
  session_id: string;
  seq: number;
  role: 'user' | 'assistant';
  content: string;
  created_at: string;
}

export const toSession = (r: SessionRow): Session => ({
  id: r.id,
  title: r.title,
  status: r.status,
  mode: r.mode,
  providerId: r.provider_id,
  model: r.model,
  host: r.host,
  source: r.source,
  usage: {
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    costUsd: r.cost_usd,
    contextTokens: r.context_tokens,
  },
  steps: r.steps,
  maxSteps: r.max_steps,
  maxCostUsd: r.max_cost_usd,
  lastError: r.last_error ? (JSON.parse(r.last_error) as ErrorPayload) : null,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  createdBy: { door: r.created_by_door, id: r.created_by_id },
});

export interface NewSession {
  title: string;
  mode: AgentMode;
  providerId: string;
  model: string;
  host: string | null;
  source: string | null;
  maxSteps: number;
  maxCostUsd: number;
  createdBy: Actor;
  owner: { pid: number; instance: string };
}

/** Columns a caller may change, by their row names. */
export type SessionPatch = Partial<
  Pick<
    SessionRow,
    | 'status'
    | 'mode'
    | 'title'
    | 'input_tokens'
    | 'output_tokens'
    | 'cost_usd'
    | 'context_tokens'
    | 'context_chars'
    | 'steps'
    | 'max_steps'
    | 'max_cost_usd'
    | 'summary'
    | 'compacted_through'
    | 'redactions'
    | 'stop_requested'
    | 'owner_pid'
    | 'owner_instance'
  >
> & { last_error?: ErrorPayload | null };

export class SessionStore {
  private readonly db: Db;
  private readonly clock: Clock;
  /** Parsed transcripts by session, least recently used first (see messages()). */
  private readonly transcripts = new Map<string, { messages: TranscriptMessage[]; chars: number }>();
  private cachedChars = 0;
  private appendTx: ((sessionId: string, role: string, body: string, now: string) => number) | null = null;

  constructor(db: Db, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  /** A sortable, unique id: time first, so ids order like creation. */
  newId(): string {
    return `ses_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
  }

  insert(s: NewSession): SessionRow {
    const id = this.newId();
    const now = this.clock.now().toISOString();
    prepared(
      this.db,
      `INSERT INTO agent_sessions (id, title, status, mode, provider_id, model, host, source, max_steps, max_cost_usd,
           owner_pid, owner_instance, created_by_door, created_by_id, created_at, updated_at)
         VALUES (?, ?, 'idle', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      s.title,
      s.mode,
      s.providerId,
      s.model,
      s.host,
      s.source,
      s.maxSteps,
      s.maxCostUsd,
      s.owner.pid,
      s.owner.instance,
      s.createdBy.door,
      s.createdBy.id,
      now,
      now,
    );
    return this.row(id);
  }

  row(id: string): SessionRow {
    const r = prepared(this.db, 'SELECT * FROM agent_sessions WHERE id = ?').get(id) as
      SessionRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No agent session ${id}.`);
    return r;
  }

  /** The session's status alone (cheaper than the whole row, for checks on every turn). */
  status(id: string): SessionStatus {
    const r = prepared(this.db, 'SELECT status FROM agent_sessions WHERE id = ?').get(id) as
      { status: SessionStatus } | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No agent session ${id}.`);
    return r.status;
  }

  /** The session's mode alone (read before every tool call: a switch applies at once). */
  mode(id: string): AgentMode {
    const r = prepared(this.db, 'SELECT mode FROM agent_sessions WHERE id = ?').get(id) as
      { mode: AgentMode } | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No agent session ${id}.`);
    return r.mode;
  }

  /** Run `fn` as one transaction (one commit for several writes of a step). */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  tryRow(id: string): SessionRow | undefined {
    return prepared(this.db, 'SELECT * FROM agent_sessions WHERE id = ?').get(id) as SessionRow | undefined;
  }

  list(limit: number): SessionRow[] {
    return prepared(this.db, 'SELECT * FROM agent_sessions ORDER BY created_at DESC, id DESC LIMIT ?').all(
      limit,
    ) as SessionRow[];
  }

  /** Sessions marked running or waiting by some process (to find those whose process died). */
  active(): SessionRow[] {
    return prepared(
      this.db,
      "SELECT * FROM agent_sessions WHERE status IN ('running','waiting-approval')",
    ).all() as SessionRow[];
  }

  update(id: string, patch: SessionPatch): SessionRow {
    const sets: string[] = [];
    const args: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${k} = ?`);
      args.push(k === 'last_error' ? (v === null ? null : JSON.stringify(v)) : v);
    }
    sets.push('updated_at = ?');
    args.push(this.clock.now().toISOString());
    const r = prepared(this.db, `UPDATE agent_sessions SET ${sets.join(', ')} WHERE id = ? RETURNING *`).get(
      ...args,
      id,
    ) as SessionRow | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No agent session ${id}.`);
    return r;
  }

  /** Set columns only while the session is still owned by `instance` (a guard against a takeover). */
  updateIfOwner(id: string, instance: string, patch: SessionPatch): boolean {
    const r = this.tryRow(id);
    if (!r || r.owner_instance !== instance) return false;
    this.update(id, patch);
    return true;
  }

  redactorState(r: SessionRow): RedactorState {
    try {
      return { labels: JSON.parse(r.redactions) as Record<string, string> };
    } catch {
      return { labels: {} };
    }
  }

  // ---- transcript ------------------------------------------------------------------------------

  private toMessage(r: MessageRow, compactedThrough: number): TranscriptMessage {
    return {
      seq: r.seq,
      role: r.role,
      content: JSON.parse(r.content) as TranscriptBlock[],
      compacted: r.seq <= compactedThrough,
      createdAt: r.created_at,
    };
  }

  /** The transcript after `afterSeq`; `compactedThrough` when the caller has just read the row. */
  messages(sessionId: string, afterSeq = 0, compactedThrough?: number): TranscriptMessage[] {
    const through = compactedThrough ?? this.row(sessionId).compacted_through;
    // Every model turn reads the whole transcript: the messages are parsed once and kept (they are
    // never changed once written), and only the rows added since are read, by any process.
    const cached = this.transcripts.get(sessionId);
    const from = cached ? (cached.messages.at(-1)?.seq ?? 0) : afterSeq;
    const rows = prepared(
      this.db,
      'SELECT * FROM agent_messages WHERE session_id = ? AND seq > ? ORDER BY seq',
    ).all(sessionId, from) as MessageRow[];
    const added = rows.map((r) => deepFreeze(this.toMessage(r, 0)));
    let all = added;
    if (cached || afterSeq === 0) {
      if (cached) all = [...cached.messages, ...added];
      this.remember(
        sessionId,
        all,
        rows.reduce((n, r) => n + r.content.length, 0),
      );
    }
    return all.filter((m) => m.seq > afterSeq).map((m) => ({ ...m, compacted: m.seq <= through }));
  }

  /** Keep a transcript parsed, within TRANSCRIPT_CACHE_CHARS for all sessions (least recently used go). */
  private remember(sessionId: string, messages: TranscriptMessage[], addedChars: number): void {
    const before = this.transcripts.get(sessionId);
    this.transcripts.delete(sessionId);
    const chars = (before?.chars ?? 0) + addedChars;
    this.cachedChars += addedChars;
    this.transcripts.set(sessionId, { messages, chars });
    for (const [id, t] of this.transcripts) {
      if (this.cachedChars <= TRANSCRIPT_CACHE_CHARS || id === sessionId) break;
      this.transcripts.delete(id);
      this.cachedChars -= t.chars;
    }
  }

  lastMessage(sessionId: string): TranscriptMessage | null {
    const r = prepared(
      this.db,
      'SELECT * FROM agent_messages WHERE session_id = ? ORDER BY seq DESC LIMIT 1',
    ).get(sessionId) as MessageRow | undefined;
    return r ? this.toMessage(r, this.row(sessionId).compacted_through) : null;
  }

  append(sessionId: string, role: 'user' | 'assistant', content: TranscriptBlock[]): TranscriptMessage {
    const now = this.clock.now().toISOString();
    const tx = (this.appendTx ??= this.db.transaction(
      (sessionId: string, role: string, body: string, now: string) => {
        const { n } = prepared(
          this.db,
          'SELECT COALESCE(MAX(seq), 0) AS n FROM agent_messages WHERE session_id = ?',
        ).get(sessionId) as { n: number };
        prepared(
          this.db,
          'INSERT INTO agent_messages (session_id, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)',
        ).run(sessionId, n + 1, role, body, now);
        prepared(this.db, 'UPDATE agent_sessions SET updated_at = ? WHERE id = ?').run(now, sessionId);
        return n + 1;
      },
    ));
    const seq = tx(sessionId, role, JSON.stringify(content), now);
    return { seq, role, content, compacted: false, createdAt: now };
  }

  // ---- raw tool outputs --------------------------------------------------------------------------

  /**
   * Keep a tool's raw output (secrets included, uncut) behind a handle. It stays in this database
   * (owner-only, 0600); the model only ever gets redacted slices of it.
   */
  saveOutput(sessionId: string, toolUseId: string, toolName: string, content: string): string {
    const handle = `out_${randomBytes(6).toString('hex')}`;
    prepared(
      this.db,
      'INSERT INTO agent_outputs (handle, session_id, tool_use_id, tool_name, content, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(handle, sessionId, toolUseId, toolName, content, this.clock.now().toISOString());
    return handle;
  }

  output(sessionId: string, handle: string): { content: string; toolName: string; toolUseId: string } {
    const r = prepared(
      this.db,
      'SELECT content, tool_name, tool_use_id FROM agent_outputs WHERE handle = ? AND session_id = ?',
    ).get(handle, sessionId) as { content: string; tool_name: string; tool_use_id: string } | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No tool output ${handle} in session ${sessionId}.`);
    return { content: r.content, toolName: r.tool_name, toolUseId: r.tool_use_id };
  }
}

/** How much transcript text (in characters of stored JSON) one store keeps parsed. */
export const TRANSCRIPT_CACHE_CHARS = 64 * 1024 * 1024;

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
