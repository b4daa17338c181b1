import {
  SettingsPatchSchema,
  SettingsSchema,
  type Settings,
  type SettingsPatch,
} from '../../shared/contract/settings.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import { validationError } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { AuditLog } from './audit.ts';
import { prepared, type Db } from './db.ts';
import type { EventBus } from '../events.ts';
import { purposeOf, type Presence, type PresenceService } from '../presence/service.ts';

/**
 * The changes in `after` that loosen policy: more reach, fewer questions, higher limits. Only a person
 * makes them, with presence; tightening needs only a person's door.
 */
export function loosenings(before: Settings, after: Settings): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  // Order matters for rules (first match wins), so any change to them may loosen.
  if (!same(before.agent.rules, after.agent.rules)) out.push('agent.rules');
  if (after.sandboxes.egressAllow.some((d) => !before.sandboxes.egressAllow.includes(d)))
    out.push('sandboxes.egressAllow');
  if (after.approvals.allowUnattendedCli && !before.approvals.allowUnattendedCli)
    out.push('approvals.allowUnattendedCli');
  // an approved production apply stays usable longer
  if (after.approvals.applyTtlMinutes > before.approvals.applyTtlMinutes)
    out.push('approvals.applyTtlMinutes');
  const raised = (a: number | null, b: number | null) => (b === null ? a !== null : a !== null && b > a);
  for (const k of ['maxCommittedVcpus', 'maxCommittedMemoryMiB', 'maxSandboxesPerHost'] as const)
    if (raised(before.sandboxes[k], after.sandboxes[k])) out.push(`sandboxes.${k}`);
  if (after.sandboxes.reserveMemoryMiB < before.sandboxes.reserveMemoryMiB)
    out.push('sandboxes.reserveMemoryMiB');
  for (const k of ['maxSteps', 'maxCostUsd'] as const)
    if (after.agent[k] > before.agent[k]) out.push(`agent.${k}`);
  return out;
}

/** Validated settings: one schema, one validator for every door. */
export class SettingsService {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly bus: EventBus;
  private readonly clock: Clock;
  private readonly presence: () => PresenceService;
  /** The last stored text read and what it parsed to. */
  private parsed: { text: string | null; value: Settings } | null = null;

  constructor(db: Db, audit: AuditLog, bus: EventBus, clock: Clock, presence: () => PresenceService) {
    this.db = db;
    this.audit = audit;
    this.bus = bus;
    this.clock = clock;
    this.presence = presence;
  }

  get(): Settings {
    const row = prepared(this.db, "SELECT value FROM settings WHERE key = 'main'").get() as
      { value: string } | undefined;
    // Read on every model turn and tool call: parsed and validated again only when the stored text
    // changed (here or in another process); each caller gets its own copy.
    const text = row?.value ?? null;
    if (!this.parsed || this.parsed.text !== text) {
      const stored: unknown = text !== null ? JSON.parse(text) : {};
      const parsed = SettingsSchema.safeParse(stored);
      // A stored value that no longer validates (e.g. after a downgrade) falls back to defaults, never crashes.
      this.parsed = { text, value: parsed.success ? parsed.data : SettingsSchema.parse({}) };
    }
    return structuredClone(this.parsed.value);
  }

  /**
   * Validate and apply a patch. A person's door only; a patch that loosens policy needs a presence made
   * for exactly this patch (see `purpose`).
   */
  update(patch: SettingsPatch, actor: Actor, presence: Presence | null = null): Settings {
    const checked = SettingsPatchSchema.safeParse(patch);
    if (!checked.success) throw validationError(checked.error);
    const current = this.get();
    const merged = deepMerge(current, patch);
    const parsed = SettingsSchema.safeParse(merged);
    if (!parsed.success) throw validationError(parsed.error);
    const loosened = loosenings(current, parsed.data);
    const proved = this.presence().demand(
      actor,
      {
        purpose: settingsPurpose(checked.data),
        required: loosened.length > 0,
        what: loosened.length ? `loosen ${loosened.join(', ')}` : 'change settings',
        scripts: true,
      },
      presence,
    );
    if (JSON.stringify(parsed.data) === JSON.stringify(current)) return current;
    this.db
      .prepare(
        "INSERT INTO settings (key, value, updated_at) VALUES ('main', ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      )
      .run(JSON.stringify(parsed.data), this.clock.now().toISOString());
    this.audit.append({
      actor,
      action: 'settings.update',
      target: 'settings',
      data: { patch: checked.data, loosened, via: proved?.method ?? 'door' },
    });
    this.bus.emit('settings.changed', parsed.data);
    return parsed.data;
  }
}

/** What a presence proof for this patch must have been made for. */
export const settingsPurpose = (patch: SettingsPatch): string => purposeOf('settings.update', { patch });

function deepMerge<T>(base: T, patch: unknown): T {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) {
    if (patch === undefined) return base;
    throw new FluidError('VALIDATION', 'Settings patch must be an object.');
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      b && typeof b === 'object' && !Array.isArray(b) && v && typeof v === 'object' && !Array.isArray(v)
        ? deepMerge(b, v)
        : v;
  }
  return out as T;
}
