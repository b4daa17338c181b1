/**
 * Model providers: rows in the `providers` table, API keys in the secret store as `provider/<id>`
 * (never in the database, never returned, never logged). One provider is the default for new
 * sessions. Context window and prices come from a small table of known models unless set.
 */
import { randomBytes } from 'node:crypto';
import type { Provider } from '../../shared/contract/agent.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { ProviderConfig, ProviderKind } from './providers/types.ts';
import { listModelsLazy as listModels } from './providers/lazy.ts';

export interface ModelDefaults {
  contextTokens: number;
  /** USD per million tokens. */
  inputPerMTok: number;
  outputPerMTok: number;
}

/**
 * Context windows and list prices (USD per million tokens) by model family, first match wins.
 * Matched against the model id without a vendor prefix (`anthropic/claude-sonnet-4.6` →
 * `claude-sonnet-4.6`). Prices change: a provider's own values, once set, always win.
 */
export const MODEL_TABLE: ReadonlyArray<{ pattern: RegExp } & ModelDefaults> = [
  {
    pattern: /^claude-opus-4-?[01]\b|^claude-3-opus/,
    contextTokens: 200_000,
    inputPerMTok: 15,
    outputPerMTok: 75,
  },
  { pattern: /^claude-opus/, contextTokens: 200_000, inputPerMTok: 5, outputPerMTok: 25 },
  { pattern: /^claude-(3-[57]-)?sonnet/, contextTokens: 200_000, inputPerMTok: 3, outputPerMTok: 15 },
  { pattern: /^claude-3-5-haiku/, contextTokens: 200_000, inputPerMTok: 0.8, outputPerMTok: 4 },
  { pattern: /^claude-(haiku|3-haiku)/, contextTokens: 200_000, inputPerMTok: 1, outputPerMTok: 5 },
  { pattern: /^gpt-5(\.\d+)?-nano/, contextTokens: 400_000, inputPerMTok: 0.05, outputPerMTok: 0.4 },
  { pattern: /^gpt-5(\.\d+)?-mini/, contextTokens: 400_000, inputPerMTok: 0.25, outputPerMTok: 2 },
  { pattern: /^gpt-5/, contextTokens: 400_000, inputPerMTok: 1.25, outputPerMTok: 10 },
  { pattern: /^gpt-4\.1-mini/, contextTokens: 1_000_000, inputPerMTok: 0.4, outputPerMTok: 1.6 },
  { pattern: /^gpt-4\.1/, contextTokens: 1_000_000, inputPerMTok: 2, outputPerMTok: 8 },
  { pattern: /^gpt-4o-mini/, contextTokens: 128_000, inputPerMTok: 0.15, outputPerMTok: 0.6 },
  { pattern: /^gpt-4o/, contextTokens: 128_000, inputPerMTok: 2.5, outputPerMTok: 10 },
  { pattern: /^glm-4/, contextTokens: 200_000, inputPerMTok: 0.6, outputPerMTok: 2.2 },
  // Local models (Ollama, vLLM) cost nothing per token; their windows are the common defaults.
  { pattern: /^qwen3/, contextTokens: 40_000, inputPerMTok: 0, outputPerMTok: 0 },
  { pattern: /^llama3\.[123]/, contextTokens: 128_000, inputPerMTok: 0, outputPerMTok: 0 },
];

export const UNKNOWN_MODEL: ModelDefaults = { contextTokens: 128_000, inputPerMTok: 0, outputPerMTok: 0 };

export function modelDefaults(model: string): ModelDefaults {
  const bare = model.toLowerCase().replace(/^.*\//, '');
  const hit = MODEL_TABLE.find((m) => m.pattern.test(bare));
  return hit
    ? { contextTokens: hit.contextTokens, inputPerMTok: hit.inputPerMTok, outputPerMTok: hit.outputPerMTok }
    : { ...UNKNOWN_MODEL };
}

export interface ProviderInput {
  id?: string;
  kind: ProviderKind;
  label: string;
  baseUrl?: string | null;
  model: string;
  apiKey?: string;
  contextTokens?: number;
  inputPerMTok?: number;
  outputPerMTok?: number;
  isDefault?: boolean;
}

interface Row {
  id: string;
  kind: ProviderKind;
  label: string;
  base_url: string | null;
  model: string;
  context_tokens: number;
  input_per_mtok: number;
  output_per_mtok: number;
  is_default: number;
  created_at: string;
  updated_at: string;
}

export const secretName = (id: string): string => `provider/${id}`;

export interface ProviderStoreDeps {
  db: Db;
  secrets: SecretStore;
  audit: AuditLog;
  clock: Clock;
}

/** Extra settings for every provider client built here (tests shorten the retry delays). */
export type ProviderTuning = Partial<
  Pick<ProviderConfig, 'maxRetries' | 'timeoutMs' | 'retryBaseDelayMs' | 'maxRetryDelayMs' | 'headers'>
>;

export class ProviderStore {
  private readonly d: ProviderStoreDeps;

  constructor(deps: ProviderStoreDeps) {
    this.d = deps;
  }

  private toProvider(r: Row): Provider {
    return {
      id: r.id,
      kind: r.kind,
      label: r.label,
      baseUrl: r.base_url,
      model: r.model,
      hasKey: !!this.d.secrets.get(secretName(r.id)),
      contextTokens: r.context_tokens,
      inputPerMTok: r.input_per_mtok,
      outputPerMTok: r.output_per_mtok,
      isDefault: !!r.is_default,
    };
  }

  private row(id: string): Row | undefined {
    return this.d.db.prepare('SELECT * FROM providers WHERE id = ?').get(id) as Row | undefined;
  }

  list(): Provider[] {
    const rows = this.d.db
      .prepare('SELECT * FROM providers ORDER BY is_default DESC, created_at, id')
      .all() as Row[];
    return rows.map((r) => this.toProvider(r));
  }

  get(id: string): Provider {
    const r = this.row(id);
    if (!r) throw new FluidError('NOT_FOUND', `No model provider "${id}". See \`fluid provider list\`.`);
    return this.toProvider(r);
  }

  /** The provider new sessions use when none is named; null when none is configured. */
  defaultProvider(): Provider | null {
    const r = this.d.db
      .prepare('SELECT * FROM providers ORDER BY is_default DESC, created_at, id LIMIT 1')
      .get() as Row | undefined;
    return r ? this.toProvider(r) : null;
  }

  /** The provider a session should use: the named one, else the default. */
  resolve(id: string | undefined): Provider {
    if (id) return this.get(id);
    const p = this.defaultProvider();
    if (!p)
      throw new FluidError(
        'VALIDATION',
        'No model provider is configured. Add one in Settings, or with `fluid provider add <id> --kind anthropic|openai --model M --key-stdin`.',
      );
    return p;
  }

  save(input: ProviderInput, actor: Actor): Provider {
    const now = this.d.clock.now().toISOString();
    const existing = input.id ? this.row(input.id) : undefined;
    const id = input.id ?? this.newId(input.label);
    const defaults = modelDefaults(input.model);
    const modelChanged = !existing || existing.model !== input.model;
    // A changed model takes the new model's defaults unless values are given.
    const contextTokens =
      input.contextTokens ?? (modelChanged ? defaults.contextTokens : existing.context_tokens);
    const inputPer = input.inputPerMTok ?? (modelChanged ? defaults.inputPerMTok : existing.input_per_mtok);
    const outputPer =
      input.outputPerMTok ?? (modelChanged ? defaults.outputPerMTok : existing.output_per_mtok);
    const first = !(this.d.db.prepare('SELECT 1 FROM providers LIMIT 1').get() as unknown);
    const makeDefault = input.isDefault === true || (!existing && first);
    const tx = this.d.db.transaction(() => {
      if (makeDefault) this.d.db.prepare('UPDATE providers SET is_default = 0').run();
      if (existing) {
        this.d.db
          .prepare(
            `UPDATE providers SET kind = ?, label = ?, base_url = ?, model = ?, context_tokens = ?, input_per_mtok = ?,
               output_per_mtok = ?, is_default = CASE WHEN ? THEN 1 WHEN ? THEN 0 ELSE is_default END, updated_at = ?
             WHERE id = ?`,
          )
          .run(
            input.kind,
            input.label,
            input.baseUrl === undefined ? existing.base_url : input.baseUrl,
            input.model,
            contextTokens,
            inputPer,
            outputPer,
            makeDefault ? 1 : 0,
            input.isDefault === false ? 1 : 0,
            now,
            id,
          );
      } else {
        this.d.db
          .prepare(
            `INSERT INTO providers (id, kind, label, base_url, model, context_tokens, input_per_mtok, output_per_mtok, is_default, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            input.kind,
            input.label,
            input.baseUrl ?? null,
            input.model,
            contextTokens,
            inputPer,
            outputPer,
            makeDefault ? 1 : 0,
            now,
            now,
          );
      }
    });
    tx();
    let key: 'kept' | 'set' | 'removed' = 'kept';
    if (input.apiKey !== undefined) {
      if (input.apiKey === '') {
        this.d.secrets.delete(secretName(id));
        key = 'removed';
      } else {
        this.d.secrets.set(secretName(id), input.apiKey);
        key = 'set';
      }
    }
    const p = this.get(id);
    this.d.audit.append({
      actor,
      action: existing ? 'provider.update' : 'provider.add',
      target: id,
      data: { kind: p.kind, label: p.label, baseUrl: p.baseUrl, model: p.model, key, isDefault: p.isDefault },
    });
    return p;
  }

  delete(id: string, actor: Actor): void {
    const r = this.row(id);
    if (!r) throw new FluidError('NOT_FOUND', `No model provider "${id}".`);
    this.d.db.transaction(() => {
      this.d.db.prepare('DELETE FROM providers WHERE id = ?').run(id);
      // Keep a default while any provider is left.
      if (r.is_default) {
        const next = this.d.db.prepare('SELECT id FROM providers ORDER BY created_at, id LIMIT 1').get() as
          { id: string } | undefined;
        if (next) this.d.db.prepare('UPDATE providers SET is_default = 1 WHERE id = ?').run(next.id);
      }
    })();
    this.d.secrets.delete(secretName(id));
    this.d.audit.append({ actor, action: 'provider.delete', target: id, data: { label: r.label } });
  }

  /** What the provider layer needs to talk to this provider, key included (keep it in memory only). */
  config(id: string, model?: string, tuning: ProviderTuning = {}): ProviderConfig {
    const r = this.row(id);
    if (!r) throw new FluidError('NOT_FOUND', `No model provider "${id}".`);
    return {
      kind: r.kind,
      ...(r.base_url ? { baseUrl: r.base_url } : {}),
      model: model || r.model,
      apiKey: this.d.secrets.get(secretName(id)) ?? '',
      ...tuning,
    };
  }

  /** Check the endpoint and the key by listing the models. Never throws for a failed check. */
  async test(
    id: string,
    signal?: AbortSignal,
    tuning: ProviderTuning = {},
  ): Promise<{ ok: boolean; models: string[]; message: string }> {
    const cfg = this.config(id, undefined, tuning);
    try {
      const models = await listModels(cfg, signal);
      const has = models.includes(cfg.model);
      return {
        ok: true,
        models,
        message: `Connected: ${models.length} model${models.length === 1 ? '' : 's'} offered${
          models.length ? (has ? `, including ${cfg.model}` : `; ${cfg.model} is not among them`) : ''
        }.`,
      };
    } catch (err) {
      const p = toErrorPayload(err);
      if (p.code === 'CANCELLED') throw err;
      const message = cfg.apiKey ? p.message.split(cfg.apiKey).join('[redacted]') : p.message;
      return { ok: false, models: [], message };
    }
  }

  private newId(label: string): string {
    const slug =
      label
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 40) || 'provider';
    if (!this.row(slug)) return slug;
    return `${slug}-${randomBytes(3).toString('hex')}`;
  }
}
