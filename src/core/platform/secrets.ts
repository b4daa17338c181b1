import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { FluidError } from '../../shared/errors.ts';

/** Where secrets live: the OS keychain (Electron safeStorage) in the app, a 0600 file headless. */
export interface SecretStore {
  readonly kind: string;
  get(name: string): string | null;
  set(name: string, value: string): void;
  delete(name: string): void;
  /** Every secret value, so that logs and model input can redact them. */
  values(): string[];
}

/** Optional encryption of values at rest (Electron's safeStorage supplies one). */
export interface SecretCipher {
  readonly kind: string;
  encrypt(plain: string): string;
  decrypt(sealed: string): string;
}

/**
 * A JSON file readable by its owner only. Writes are atomic (temp file + rename) so a crash never
 * leaves a half-written file. With a cipher, values are sealed by the OS keychain.
 */
export class FileSecretStore implements SecretStore {
  readonly kind: string;
  private readonly file: string;
  private readonly cipher: SecretCipher | null;

  constructor(file: string, cipher: SecretCipher | null = null) {
    this.file = file;
    this.cipher = cipher;
    this.kind = cipher ? `file+${cipher.kind}` : 'file-0600';
  }

  private load(): Record<string, string> {
    if (!existsSync(this.file)) return {};
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      if (!parsed || typeof parsed !== 'object') throw new Error('not an object');
      return parsed as Record<string, string>;
    } catch (err) {
      throw new FluidError(
        'INTERNAL',
        `The secret store ${this.file} is unreadable (${(err as Error).message}). Move it aside to start over; stored keys will have to be entered again.`,
      );
    }
  }

  private save(all: Record<string, string>): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all, null, 2), { mode: 0o600 });
    if (process.platform !== 'win32') chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
  }

  get(name: string): string | null {
    const v = this.load()[name];
    if (v === undefined) return null;
    return this.cipher ? this.cipher.decrypt(v) : v;
  }

  set(name: string, value: string): void {
    const all = this.load();
    all[name] = this.cipher ? this.cipher.encrypt(value) : value;
    this.save(all);
  }

  delete(name: string): void {
    const all = this.load();
    if (name in all) {
      delete all[name];
      this.save(all);
    }
  }

  values(): string[] {
    const all = this.load();
    return Object.values(all).map((v) => (this.cipher ? this.cipher.decrypt(v) : v));
  }
}

/** For tests: secrets in memory only. */
export class MemorySecretStore implements SecretStore {
  readonly kind = 'memory';
  private readonly map = new Map<string, string>();
  get(name: string) {
    return this.map.get(name) ?? null;
  }
  set(name: string, value: string) {
    this.map.set(name, value);
  }
  delete(name: string) {
    this.map.delete(name);
  }
  values() {
    return [...this.map.values()];
  }
}
