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
import type { Db } from './db.ts';
import type { EventBus } from '../events.ts';

/** Validated settings: one schema, one validator for every door. */
export class SettingsService {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly bus: EventBus;
  private readonly clock: Clock;

  constructor(db: Db, audit: AuditLog, bus: EventBus, clock: Clock) {
    this.db = db;
    this.audit = audit;
    this.bus = bus;
    this.clock = clock;
  }

  get(): Settings {
    const row = this.db.prepare("SELECT value FROM settings WHERE key = 'main'").get() as
      { value: string } | undefined;
    const stored: unknown = row ? JSON.parse(row.value) : {};
    const parsed = SettingsSchema.safeParse(stored);
    // A stored value that no longer validates (e.g. after a downgrade) falls back to defaults, never crashes.
    return parsed.success ? parsed.data : SettingsSchema.parse({});
  }

  update(patch: SettingsPatch, actor: Actor): Settings {
    const checked = SettingsPatchSchema.safeParse(patch);
    if (!checked.success) throw validationError(checked.error);
    const current = this.get();
    const merged = deepMerge(current, patch);
    const parsed = SettingsSchema.safeParse(merged);
    if (!parsed.success) throw validationError(parsed.error);
    if (JSON.stringify(parsed.data) === JSON.stringify(current)) return current;
    this.db
      .prepare(
        "INSERT INTO settings (key, value, updated_at) VALUES ('main', ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      )
      .run(JSON.stringify(parsed.data), this.clock.now().toISOString());
    this.audit.append({ actor, action: 'settings.update', target: 'settings', data: { patch } });
    this.bus.emit('settings.changed', parsed.data);
    return parsed.data;
  }
}

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
