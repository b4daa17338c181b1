import { appendFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /(pass(word)?|secret|token|api[-_]?key|private[-_]?key|authorization|cookie)/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Directory for fluid.log (0600); omitted: no file. */
  dir?: string;
  level?: LogLevel;
  /** Also write to stderr (for `serve` and debugging). */
  stderr?: boolean;
  /**
   * Secret values that must never appear in a log line. Called for every line written, so it must
   * answer from memory (SecretStore.values() does: it never reads the keychain per call).
   */
  secrets?: () => readonly string[];
}

/** Replace values of secret-looking keys and any known secret value in a string. */
export function redact(value: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') {
    let s = value;
    for (const sec of secrets) if (sec && sec.length >= 6) s = s.split(sec).join('[redacted]');
    return s;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets, depth + 1));
  if (value && typeof value === 'object') {
    if (value instanceof Error) return { name: value.name, message: redact(value.message, secrets) };
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, secrets, depth + 1);
    return out;
  }
  return value;
}

export function createLogger(opts: LoggerOptions = {}, base: Record<string, unknown> = {}): Logger {
  const min = ORDER[opts.level ?? ((process.env.FLUID_LOG_LEVEL as LogLevel) || 'info')] ?? ORDER.info;
  const file = opts.dir ? join(opts.dir, 'fluid.log') : null;
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const secrets = opts.secrets?.() ?? [];
    const line = JSON.stringify({
      ts: new Date().toISOString(),
      level,
      msg: redact(msg, secrets),
      ...(redact({ ...base, ...fields }, secrets) as object),
    });
    if (file) {
      const fresh = !existsSync(file);
      appendFileSync(file, line + '\n', { mode: 0o600 });
      if (fresh && process.platform !== 'win32') chmodSync(file, 0o600);
    }
    if (opts.stderr) process.stderr.write(line + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger(opts, { ...base, ...fields }),
  };
}
