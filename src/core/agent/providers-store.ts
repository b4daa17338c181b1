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
import { purposeOf, type Presence, type PresenceService } from '../presence/service.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { AuditLog } from '../store/audit.ts';
import { prepared, type Db } from '../store/db.ts';
import type { ProviderConfig, ProviderKind } from './providers/types.ts';
import { listModelsLazy as listModels } from './providers/lazy.ts';

/** USD per million tokens. */
export interface Price {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface ModelInfo {
  contextTokens: number;
  /** null: no price is known for this model here (a session then needs one from a person). */
  price: Price | null;
}

/**
 * Context windows and list prices (USD per million tokens) by model, first match wins, matched
 * against the normalised id (see normaliseModel: `anthropic/claude-sonnet-4.5` and
 * `claude-sonnet-4-5-20250929` both read `claude-sonnet-4-5…`). Only versions whose list price is
 * known are priced: a newer model stays unpriced until a person sets its price, because a guessed
 * price would make the cost cap meaningless. `local` entries cost nothing only when served from a
 * loopback or private address (Ollama, vLLM); the same names behind a paid router are unpriced.
 * Prices change: a price a person sets on the provider always wins.
 */
export const MODEL_TABLE: ReadonlyArray<{
  pattern: RegExp;
  contextTokens: number;
  price?: Price;
  local?: true;
}> = [
  { pattern: /^claude-opus-4-[56]\b/, contextTokens: 200_000, price: { inputPerMTok: 5, outputPerMTok: 25 } },
  {
    pattern: /^claude-opus-4(-[01])?(-\d{8})?$|^claude-3-opus/,
    contextTokens: 200_000,
    price: { inputPerMTok: 15, outputPerMTok: 75 },
  },
  {
    pattern: /^claude-sonnet-4(-[0-6])?(-\d{8})?$|^claude-3-[57]-sonnet|^claude-3-sonnet/,
    contextTokens: 200_000,
    price: { inputPerMTok: 3, outputPerMTok: 15 },
  },
  { pattern: /^claude-haiku-4-5\b/, contextTokens: 200_000, price: { inputPerMTok: 1, outputPerMTok: 5 } },
  { pattern: /^claude-3-5-haiku/, contextTokens: 200_000, price: { inputPerMTok: 0.8, outputPerMTok: 4 } },
  { pattern: /^claude-3-haiku/, contextTokens: 200_000, price: { inputPerMTok: 0.25, outputPerMTok: 1.25 } },
  {
    pattern: /^gpt-5(-1)?-nano\b/,
    contextTokens: 400_000,
    price: { inputPerMTok: 0.05, outputPerMTok: 0.4 },
  },
  { pattern: /^gpt-5(-1)?-mini\b/, contextTokens: 400_000, price: { inputPerMTok: 0.25, outputPerMTok: 2 } },
  {
    pattern: /^gpt-5(-1)?(-codex|-chat(-latest)?)?(-\d{4}-\d\d-\d\d)?$/,
    contextTokens: 400_000,
    price: { inputPerMTok: 1.25, outputPerMTok: 10 },
  },
  { pattern: /^gpt-4-1-nano\b/, contextTokens: 1_000_000, price: { inputPerMTok: 0.1, outputPerMTok: 0.4 } },
  { pattern: /^gpt-4-1-mini\b/, contextTokens: 1_000_000, price: { inputPerMTok: 0.4, outputPerMTok: 1.6 } },
  { pattern: /^gpt-4-1\b/, contextTokens: 1_000_000, price: { inputPerMTok: 2, outputPerMTok: 8 } },
  { pattern: /^gpt-4o-mini\b/, contextTokens: 128_000, price: { inputPerMTok: 0.15, outputPerMTok: 0.6 } },
  { pattern: /^gpt-4o\b/, contextTokens: 128_000, price: { inputPerMTok: 2.5, outputPerMTok: 10 } },
  {
    pattern: /^o4-mini\b|^o3-mini\b/,
    contextTokens: 200_000,
    price: { inputPerMTok: 1.1, outputPerMTok: 4.4 },
  },
  {
    pattern: /^o3(-\d{4}-\d\d-\d\d)?$/,
    contextTokens: 200_000,
    price: { inputPerMTok: 2, outputPerMTok: 8 },
  },
  { pattern: /^glm-4-[56]\b/, contextTokens: 200_000, price: { inputPerMTok: 0.6, outputPerMTok: 2.2 } },
  // Self-hosted families: free on a local endpoint, unpriced elsewhere.
  { pattern: /^qwen3\b/, contextTokens: 40_000, price: { inputPerMTok: 0, outputPerMTok: 0 }, local: true },
  {
    pattern: /^llama-?3-[123]\b/,
    contextTokens: 128_000,
    price: { inputPerMTok: 0, outputPerMTok: 0 },
    local: true,
  },
];

export const DEFAULT_CONTEXT_TOKENS = 128_000;

/**
 * One spelling for a model id: lower case, without a router's vendor prefix (`anthropic/`,
 * `openai/`, Bedrock's `us.anthropic.`), without a tag (`:free`, `:beta`, Ollama's `:8b`) or Bedrock's
 * `-v1`, with version dots as dashes (`4.5` → `4-5`).
 */
export function normaliseModel(model: string): string {
  return model
    .trim()
    .toLowerCase()
    .replace(/^.*\//, '')
    .replace(/^([a-z]{2}\.)?anthropic\./, '')
    .replace(/:.*$/, '')
    .replace(/-v\d+$/, '')
    .replace(/(\d)\.(?=\d)/g, '$1-');
}

/** A loopback or private-network endpoint (a self-hosted model server), from its base URL. */
export function isLocalEndpoint(baseUrl: string | null | undefined): boolean {
  if (!baseUrl) return false;
  let host: string;
  try {
    host = new URL(baseUrl).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host === '::1')
    return true;
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  return /^f[cd][0-9a-f]{2}:/.test(host);
}

/** What the table knows about a model served from this endpoint. */
export function lookupModel(model: string, baseUrl: string | null = null): ModelInfo {
  const id = normaliseModel(model);
  // OpenRouter's `:free` variants cost nothing (the tag is stripped for the lookup itself).
  const free = /:free$/i.test(model.trim());
  const hit = MODEL_TABLE.find((m) => m.pattern.test(id));
  const contextTokens = hit?.contextTokens ?? DEFAULT_CONTEXT_TOKENS;
  if (free) return { contextTokens, price: { inputPerMTok: 0, outputPerMTok: 0 } };
  if (!hit?.price || (hit.local && !isLocalEndpoint(baseUrl))) return { contextTokens, price: null };
  return { contextTokens, price: { ...hit.price } };
}

/** How a session's cost is priced: the provider's model at the provider's price, else the table's. */
export function priceFor(
  p: Pick<Provider, 'model' | 'baseUrl' | 'inputPerMTok' | 'outputPerMTok'>,
  model: string,
): Price | null {
  if (model === p.model)
    return p.inputPerMTok === null || p.outputPerMTok === null
      ? null
      : { inputPerMTok: p.inputPerMTok, outputPerMTok: p.outputPerMTok };
  return lookupModel(model, p.baseUrl).price;
}

/** Why a session with this cost cap cannot start on this model, and how to fix it. */
export function unpricedMessage(
  p: Pick<Provider, 'id' | 'model'>,
  model: string,
  maxCostUsd: number,
): string {
  const how =
    model === p.model
      ? `Set the provider's prices (USD per million input and output tokens) in Settings → Providers, or: \`fluid provider update ${p.id} --price-in 3 --price-out 15\` (0 and 0 for a free, self-hosted model).`
      : `Run it on the provider's own model, or make "${model}" the provider's model with its prices: \`fluid provider update ${p.id} --model ${model} --price-in 3 --price-out 15\`.`;
  return `Fluid knows no price for model "${model}" at provider ${p.id}, so the session's cost cap ($${maxCostUsd.toFixed(2)}) could not be kept. ${how}`;
}

export interface ProviderInput {
  id?: string;
  kind: ProviderKind;
  label: string;
  baseUrl?: string | null;
  model: string;
  apiKey?: string;
  contextTokens?: number;
  /** A person's price for the provider's model; null clears it (back to the model table). */
  inputPerMTok?: number | null;
  outputPerMTok?: number | null;
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
  /** 1: the two prices above were set by a person; 0: the model table prices the model (or nothing does). */
  price_set: number;
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
  /** A lower price widens every cost cap counted with it: a person's decision, with presence. */
  presence: PresenceService;
}

/**
 * What a presence proof for this save must have been made for: the call as given, with the key's
 * value left out (only whether it is set, kept or removed).
 */
export function providerPurpose(input: ProviderInput): string {
  const { apiKey, ...rest } = input;
  return purposeOf('providers.save', {
    ...rest,
    apiKey: apiKey === undefined ? undefined : apiKey === '' ? 'remove' : 'set',
  });
}

const usd = (p: Price) => `$${p.inputPerMTok} in / $${p.outputPerMTok} out per million tokens`;

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
    const table = lookupModel(r.model, r.base_url).price;
    const price = r.price_set ? { inputPerMTok: r.input_per_mtok, outputPerMTok: r.output_per_mtok } : table;
    return {
      id: r.id,
      kind: r.kind,
      label: r.label,
      baseUrl: r.base_url,
      model: r.model,
      hasKey: !!this.d.secrets.get(secretName(r.id)),
      contextTokens: r.context_tokens,
      inputPerMTok: price?.inputPerMTok ?? null,
      outputPerMTok: price?.outputPerMTok ?? null,
      priceSource: r.price_set ? 'person' : table ? 'table' : 'unknown',
      isDefault: !!r.is_default,
    };
  }

  private row(id: string): Row | undefined {
    return prepared(this.d.db, 'SELECT * FROM providers WHERE id = ?').get(id) as Row | undefined;
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

  /**
   * Add or change a provider. A person's price below what the model costs now (the kept price of an
   * unchanged model, else the model table's; a model nothing prices costs "unknown", which sessions
   * refuse) lets every cost cap counted with it allow more: only a person sets it, with presence.
   */
  save(input: ProviderInput, actor: Actor, presence: Presence | null = null): Provider {
    const now = this.d.clock.now().toISOString();
    const existing = input.id ? this.row(input.id) : undefined;
    const id = input.id ?? this.newId(input.label);
    const baseUrl = input.baseUrl === undefined ? (existing?.base_url ?? null) : input.baseUrl;
    const info = lookupModel(input.model, baseUrl);
    const modelChanged = !existing || existing.model !== input.model;
    // A changed model takes the new model's defaults unless values are given.
    const contextTokens =
      input.contextTokens ?? (modelChanged ? info.contextTokens : existing.context_tokens);
    const price = this.priceOf(existing && !modelChanged ? existing : null, info.price, input);
    const kept = existing && !modelChanged ? this.toProvider(existing) : null;
    const before: Price | null = !kept
      ? info.price
      : kept.inputPerMTok === null || kept.outputPerMTok === null
        ? null
        : { inputPerMTok: kept.inputPerMTok, outputPerMTok: kept.outputPerMTok };
    const after: Price | null = price.set ? price : info.price;
    if (
      after &&
      (!before || after.inputPerMTok < before.inputPerMTok || after.outputPerMTok < before.outputPerMTok)
    )
      this.d.presence.demand(
        actor,
        {
          purpose: providerPurpose(input),
          required: true,
          what: `set the price of model "${input.model}" on provider ${id} to ${usd(after)} (${before ? `it costs ${usd(before)} now` : 'nothing prices it now'}; the cost caps of its sessions count with this price)`,
          scripts: true,
        },
        presence,
      );
    // A new provider becomes the default while none is, unless it asks not to be (the demo's).
    const noDefault = !(this.d.db
      .prepare('SELECT 1 FROM providers WHERE is_default = 1 LIMIT 1')
      .get() as unknown);
    const makeDefault = input.isDefault === true || (!existing && noDefault && input.isDefault !== false);
    const tx = this.d.db.transaction(() => {
      if (makeDefault) this.d.db.prepare('UPDATE providers SET is_default = 0').run();
      if (existing) {
        this.d.db
          .prepare(
            `UPDATE providers SET kind = ?, label = ?, base_url = ?, model = ?, context_tokens = ?, input_per_mtok = ?,
               output_per_mtok = ?, price_set = ?, is_default = CASE WHEN ? THEN 1 WHEN ? THEN 0 ELSE is_default END, updated_at = ?
             WHERE id = ?`,
          )
          .run(
            input.kind,
            input.label,
            input.baseUrl === undefined ? existing.base_url : input.baseUrl,
            input.model,
            contextTokens,
            price.set ? price.inputPerMTok : 0,
            price.set ? price.outputPerMTok : 0,
            price.set ? 1 : 0,
            makeDefault ? 1 : 0,
            input.isDefault === false ? 1 : 0,
            now,
            id,
          );
      } else {
        this.d.db
          .prepare(
            `INSERT INTO providers (id, kind, label, base_url, model, context_tokens, input_per_mtok, output_per_mtok, price_set, is_default, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            input.kind,
            input.label,
            input.baseUrl ?? null,
            input.model,
            contextTokens,
            price.set ? price.inputPerMTok : 0,
            price.set ? price.outputPerMTok : 0,
            price.set ? 1 : 0,
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
      data: {
        kind: p.kind,
        label: p.label,
        baseUrl: p.baseUrl,
        model: p.model,
        key,
        isDefault: p.isDefault,
        inputPerMTok: p.inputPerMTok,
        outputPerMTok: p.outputPerMTok,
        priceSource: p.priceSource,
      },
    });
    return p;
  }

  /** The price a save leaves: a person's (given now, or kept for an unchanged model) or none. */
  private priceOf(
    kept: Row | null,
    table: Price | null,
    input: ProviderInput,
  ): ({ set: true } & Price) | { set: false } {
    const { inputPerMTok: i, outputPerMTok: o } = input;
    if (i === null || o === null) {
      if (typeof i === 'number' || typeof o === 'number')
        throw new FluidError(
          'VALIDATION',
          'Clear both prices (back to the model table) or set both, not one of each.',
        );
      return { set: false };
    }
    const current: Price | null = kept?.price_set
      ? { inputPerMTok: kept.input_per_mtok, outputPerMTok: kept.output_per_mtok }
      : table;
    if (i === undefined && o === undefined)
      return kept?.price_set ? { set: true, ...current! } : { set: false };
    const inputPerMTok = i ?? current?.inputPerMTok;
    const outputPerMTok = o ?? current?.outputPerMTok;
    if (inputPerMTok === undefined || outputPerMTok === undefined)
      throw new FluidError(
        'VALIDATION',
        `No price is known for model "${input.model}": give both the input and the output price (USD per million tokens).`,
      );
    return { set: true, inputPerMTok, outputPerMTok };
  }

  /** The price of a session's model at this provider; null when nothing prices it. */
  price(id: string, model: string): Price | null {
    return priceFor(this.get(id), model);
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
