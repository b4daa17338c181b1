/**
 * The secret store: one file in the data dir (secrets.json, owner-only) that every door reads — the
 * app, the CLI, web mode, MCP — with values sealed by the platform keychain where there is one.
 *
 * Each entry says what sealed it: `{"v":1,"by":"secret-service"|"keychain"|"dpapi"|"file","data":…}`.
 * Keychain-sealed entries are AES-256-GCM under one random key per store, and that key lives in the
 * keychain (Secret Service, macOS keychain) or is sealed by it (DPAPI); `file` entries are plain text
 * in the 0600 file, used only when no keychain is reachable (and said so in `fluid doctor`). The app
 * and the CLI choose the same keychain, so each reads what the other stored.
 *
 * Older files are read as they are: a flat `{name: value}` map of plain values (headless) or of
 * Electron safeStorage ciphertexts (the app). Plain values are sealed at the next write when a
 * keychain is there; safeStorage values can only be opened by the app, which moves them on start.
 *
 * Redaction never reads the store per log line: `values()` answers from memory, kept current on
 * set/delete and refreshed only when the file changed on disk (another process wrote it).
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { FluidError } from '../../shared/errors.ts';
import {
  KeychainUnavailable,
  platformBackend,
  type KeyBackend,
  type Runner,
  type SealedBy,
} from './keychain.ts';

export type { SealedBy } from './keychain.ts';

/** What `fluid doctor` says about the store. */
export interface SecretStoreInfo {
  /** The backend new values are sealed with: a keychain, the plain 0600 file, or memory (tests). */
  backend: SealedBy | 'memory';
  /** For people: "the Secret Service (D-Bus: …)" or "a plain-text file readable by you only". */
  label: string;
  /** Where the values are (the file), if anywhere. */
  location: string | null;
  /** Entries by what sealed them ("safe-storage": the app's old format). */
  counts: Partial<Record<SealedBy | 'safe-storage', number>>;
  /** Why the platform keychain is not used, when it is not. */
  keychainProblem: string | null;
  /** Entries this process cannot open, and why. */
  unreadable: Array<{ name: string; reason: string }>;
}

/** Where secrets live: sealed by the OS keychain where there is one, a 0600 file otherwise. */
export interface SecretStore {
  readonly kind: string;
  get(name: string): string | null;
  set(name: string, value: string): void;
  delete(name: string): void;
  /** Every secret value, for redaction of logs and model input. From memory: cheap on every call. */
  values(): string[];
  describe(): SecretStoreInfo;
}

/** Opens values the Electron app sealed with safeStorage in older versions (the app supplies it). */
export interface LegacyOpener {
  decrypt(sealedBase64: string): string;
}

export interface FileSecretStoreOptions {
  /**
   * Which keychain seals new values: 'auto' (the platform's, falling back to the 0600 file when it is
   * unreachable), a backend by name (FLUID_SECRET_BACKEND), or a KeyBackend (tests).
   */
  backend?: SealedBy | 'auto' | KeyBackend;
  /** Opens the app's old safeStorage values (the app only). */
  legacy?: LegacyOpener;
  platform?: NodeJS.Platform;
  run?: Runner;
}

interface Entry {
  v: 1;
  by: SealedBy | 'safe-storage';
  data: string;
}

interface Doc {
  format: typeof FORMAT;
  /** Names this store in the keychain. */
  store: string;
  /** The master key's keychain and what the file records for it (DPAPI: the sealed key). */
  key: { by: Exclude<SealedBy, 'file'>; data: string } | null;
  entries: Record<string, Entry>;
}

const FORMAT = 'fluid-secrets/1';
const BACKENDS: ReadonlyArray<SealedBy> = ['secret-service', 'keychain', 'dpapi', 'file'];
const FILE_LABEL = 'a plain-text file readable by your user only (mode 600)';
const KEY_RETRY_MS = 30_000;

/** Electron safeStorage output: "v10"/"v11" + AES (Linux, macOS), or a DPAPI blob (Windows). */
function looksSafeStorage(value: string): boolean {
  if (!/^[A-Za-z0-9+/]{16,}={0,2}$/.test(value) || value.length % 4 !== 0) return false;
  const raw = Buffer.from(value, 'base64');
  const head = raw.subarray(0, 3).toString('latin1');
  const dpapi =
    raw.length > 20 && raw.readUInt32LE(0) === 1 && raw.subarray(4, 8).toString('hex') === 'd08c9ddf';
  return ((head === 'v10' || head === 'v11') && raw.length >= 3 + 16) || dpapi;
}

function aad(storeId: string, name: string): Buffer {
  return Buffer.from(`${FORMAT}\0${storeId}\0${name}`);
}

function seal(key: Buffer, storeId: string, name: string, value: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad(storeId, name));
  const ct = Buffer.concat([c.update(value, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
}

function unseal(key: Buffer, storeId: string, name: string, data: string): string {
  const raw = Buffer.from(data, 'base64');
  if (raw.length < 28) throw new Error('too short');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  d.setAAD(aad(storeId, name));
  d.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * The secret file. Writes are atomic (temp file + rename) under a lock file, so the app and a CLI
 * writing at the same moment never lose each other's entries, and a crash never leaves half a file.
 */
export class FileSecretStore implements SecretStore {
  private readonly file: string;
  private readonly choice: SealedBy | 'auto' | KeyBackend;
  private readonly legacy: LegacyOpener | null;
  private readonly platform: NodeJS.Platform;
  private readonly run: Runner | undefined;
  private doc: Doc | null = null;
  private sig = '';
  /** Decrypted values by name (the redaction set); rebuilt only when the file changed on disk. */
  private plain = new Map<string, string>();
  private plainSig: string | null = null;
  private masterKey: Buffer | null = null;
  /** A keychain that failed is not asked again for a while (values() may run on every log line). */
  private keyFailure: { error: Error; at: number } | null = null;
  private migrated = false;
  private backendCache: { backend: KeyBackend | null; problem: string | null } | null = null;

  constructor(file: string, opts: FileSecretStoreOptions = {}) {
    this.file = file;
    const env = (process.env.FLUID_SECRET_BACKEND || undefined) as SealedBy | undefined;
    this.choice = opts.backend ?? env ?? 'auto';
    if (typeof this.choice === 'string' && this.choice !== 'auto' && !BACKENDS.includes(this.choice))
      throw new FluidError(
        'VALIDATION',
        `The secret backend (FLUID_SECRET_BACKEND) must be one of auto, ${BACKENDS.join(', ')}; got "${this.choice}".`,
      );
    this.legacy = opts.legacy ?? null;
    this.platform = opts.platform ?? process.platform;
    this.run = opts.run;
  }

  /** The backend new values are sealed with ('file' when no keychain is reachable). */
  get kind(): string {
    return this.target().backend?.by ?? 'file';
  }

  // ---- reading ------------------------------------------------------------------------------

  private signature(): string {
    try {
      const s = statSync(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'none';
    }
  }

  private load(): Doc {
    const sig = this.signature();
    if (this.doc && sig === this.sig) return this.doc;
    this.doc = sig === 'none' ? this.empty() : this.parse(readFileSync(this.file, 'utf8'));
    this.sig = sig;
    return this.doc;
  }

  private empty(): Doc {
    return { format: FORMAT, store: randomUUID(), key: null, entries: {} };
  }

  private unreadable(why: string): FluidError {
    return new FluidError(
      'INTERNAL',
      `The secret store ${this.file} is unreadable (${why}). Move it aside to start over; stored keys will have to be entered again.`,
    );
  }

  private parse(text: string): Doc {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw this.unreadable((err as Error).message);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      throw this.unreadable('not an object');
    const o = parsed as Record<string, unknown>;
    if (o.format === FORMAT) {
      if (typeof o.store !== 'string' || !o.entries || typeof o.entries !== 'object')
        throw this.unreadable('no store id or entries');
      return o as unknown as Doc;
    }
    if (typeof o.format === 'string')
      throw this.unreadable(`it was written by a newer Fluid (${o.format}); update Fluid`);
    // The old flat form: plain values, or the app's safeStorage ciphertexts.
    const entries: Record<string, Entry> = {};
    for (const [name, v] of Object.entries(o)) {
      if (typeof v !== 'string') throw this.unreadable(`entry ${name} is not a string`);
      entries[name] = { v: 1, by: looksSafeStorage(v) ? 'safe-storage' : 'file', data: v };
    }
    return { format: FORMAT, store: randomUUID(), key: null, entries };
  }

  /** The keychain new values go to, or null for the plain file (with why, for doctor). */
  private target(): { backend: KeyBackend | null; problem: string | null } {
    if (this.backendCache) return this.backendCache;
    const doc = this.load();
    let result: { backend: KeyBackend | null; problem: string | null };
    if (typeof this.choice === 'object') result = { backend: this.choice, problem: null };
    else if (this.choice === 'file') result = { backend: null, problem: 'FLUID_SECRET_BACKEND=file' };
    else {
      // A store whose key is in a keychain keeps using that keychain; otherwise the platform's.
      const backend = platformBackend(doc.key?.by ?? this.choice, this.platform, this.run);
      if (!backend) result = { backend: null, problem: null };
      else if (doc.key) result = { backend, problem: null };
      else {
        try {
          backend.probe();
          result = { backend, problem: null };
        } catch (e) {
          if (!(e instanceof KeychainUnavailable)) throw e;
          // Asked for by name: no silent fallback to plain text.
          if (this.choice !== 'auto') throw e;
          result = { backend: null, problem: e.message };
        }
      }
    }
    this.backendCache = result;
    return result;
  }

  /** The master key, from the keychain (created on first use when `create`). */
  private key(doc: Doc, create: boolean): Buffer | null {
    if (this.masterKey) return this.masterKey;
    const { backend } = this.target();
    if (!backend) return null;
    if (doc.key) {
      if (this.keyFailure && Date.now() - this.keyFailure.at < KEY_RETRY_MS) throw this.keyFailure.error;
      try {
        return (this.masterKey = this.loadKey(doc, backend));
      } catch (e) {
        this.keyFailure = { error: e as Error, at: Date.now() };
        throw e;
      }
    }
    if (!create) return null;
    const k = randomBytes(32);
    doc.key = { by: backend.by, data: backend.save(doc.store, k) };
    this.masterKey = k;
    return k;
  }

  private loadKey(doc: Doc, backend: KeyBackend): Buffer {
    const recorded = doc.key!;
    if (recorded.by !== backend.by)
      throw new FluidError(
        'UNAVAILABLE',
        `The secrets in ${this.file} are sealed by ${recorded.by}, but this process uses ${backend.by}.`,
      );
    const k = backend.load(doc.store, recorded.data);
    if (!k)
      throw new FluidError(
        'UNAVAILABLE',
        `${backend.label} holds no key for the secrets in ${this.file} (store ${doc.store}): it was removed, or this is another user's keychain. Restore it, or move the file aside and enter the secrets again.`,
      );
    return k;
  }

  private open(doc: Doc, name: string, e: Entry): string {
    switch (e.by) {
      case 'file':
        return e.data;
      case 'safe-storage':
        if (this.legacy) return this.legacy.decrypt(e.data);
        throw new FluidError(
          'UNAVAILABLE',
          `The secret "${name}" is still sealed in the Fluid app's older format (Electron safeStorage), which only the app can open. Start the Fluid app once: it moves every secret to the store the CLI reads too.`,
        );
      default: {
        if (doc.key?.by !== e.by)
          throw this.unreadable(
            `entry ${name} says ${e.by}, but the store's key is ${doc.key?.by ?? 'missing'}`,
          );
        const k = this.key(doc, false);
        if (!k)
          throw new FluidError(
            'UNAVAILABLE',
            `The secret "${name}" is sealed by ${e.by}, which this process does not use (${this.target().problem ?? 'no keychain'}).`,
          );
        try {
          return unseal(k, doc.store, name, e.data);
        } catch {
          throw new FluidError(
            'INTERNAL',
            `The secret "${name}" in ${this.file} does not open with the store's key (altered or copied from another store). Set it again.`,
          );
        }
      }
    }
  }

  get(name: string): string | null {
    const doc = this.load();
    const e = doc.entries[name];
    if (!e) return null;
    return this.open(doc, name, e);
  }

  // ---- writing ------------------------------------------------------------------------------

  /**
   * Run `fn` on a fresh copy of the file under the lock; it returns whether to save. Returns the
   * file's signature before the write (null when nothing was written).
   */
  private update(fn: (doc: Doc) => boolean): string | null {
    const lock = `${this.file}.lock`;
    let fd: number | null = null;
    for (let i = 0; fd === null; i++) {
      try {
        fd = openSync(lock, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A lock left by a crashed process is stale after 30 s.
        try {
          if (Date.now() - statSync(lock).mtimeMs > 30_000) unlinkSync(lock);
        } catch {
          /* gone meanwhile */
        }
        if (i > 500) throw new FluidError('CONFLICT', `The secret store is locked (${lock}); try again.`);
        sleep(20);
      }
    }
    try {
      this.doc = null;
      const doc = this.load();
      const before = this.sig;
      if (!fn(doc)) return null;
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
      if (process.platform !== 'win32') chmodSync(tmp, 0o600);
      renameSync(tmp, this.file);
      this.doc = doc;
      this.sig = this.signature();
      return before;
    } finally {
      closeSync(fd);
      try {
        unlinkSync(lock);
      } catch {
        /* ignore */
      }
    }
  }

  /**
   * Seal everything this process can open with the store's keychain: the old plain and safeStorage
   * values, and plain values written while no keychain was reachable. Returns how many moved.
   */
  private reseal(doc: Doc, key: Buffer, by: SealedBy): number {
    let moved = 0;
    for (const [name, e] of Object.entries(doc.entries)) {
      if (e.by === by) continue;
      if (e.by === 'safe-storage' && !this.legacy) continue;
      if (e.by !== 'file' && e.by !== 'safe-storage') continue;
      const value = this.open(doc, name, e);
      doc.entries[name] = { v: 1, by, data: seal(key, doc.store, name, value) };
      moved++;
    }
    return moved;
  }

  set(name: string, value: string): void {
    if (!name || name.length > 200) throw new FluidError('VALIDATION', 'A secret name is 1-200 characters.');
    if (typeof value !== 'string') throw new FluidError('VALIDATION', 'A secret value is a string.');
    const before = this.update((doc) => {
      let backend = this.target().backend;
      let key: Buffer | null = null;
      try {
        key = this.key(doc, true);
      } catch (e) {
        // The keychain answered the probe but would not keep a key (no default collection, a
        // locked keyring without a prompt): on 'auto' with nothing sealed yet, the 0600 file.
        if (!(e instanceof KeychainUnavailable) || doc.key || this.choice !== 'auto') throw e;
        this.backendCache = { backend: null, problem: e.message };
        backend = null;
      }
      if (backend && key) {
        doc.entries[name] = { v: 1, by: backend.by, data: seal(key, doc.store, name, value) };
        this.reseal(doc, key, backend.by);
      } else {
        if (doc.key)
          throw new FluidError(
            'UNAVAILABLE',
            `The secrets in ${this.file} are sealed by ${doc.key.by}, which this process cannot use; nothing was stored.`,
          );
        doc.entries[name] = { v: 1, by: 'file', data: value };
      }
      return true;
    });
    this.remember(before, (m) => m.set(name, value));
  }

  /**
   * Keep the redaction set current after our own write. If another process had written meanwhile,
   * the set is rebuilt from the file at the next values() instead.
   */
  private remember(before: string | null, change: (m: Map<string, string>) => void): void {
    if (before === null) return;
    if (this.plainSig === before) {
      change(this.plain);
      this.plainSig = this.sig;
    }
  }

  delete(name: string): void {
    const before = this.update((doc) => {
      if (!(name in doc.entries)) return false;
      delete doc.entries[name];
      return true;
    });
    this.remember(before, (m) => m.delete(name));
  }

  /**
   * Move what an older version left (plain values; the app's safeStorage values when this store has
   * the opener) under the keychain. The app calls this at start; a write does it too.
   */
  migrate(): number {
    const { backend } = this.target();
    if (!backend) return 0;
    const doc = this.load();
    const pending = Object.values(doc.entries).some(
      (e) => e.by === 'file' || (e.by === 'safe-storage' && this.legacy),
    );
    if (!pending && doc.key) return 0;
    let moved = 0;
    this.update((d) => {
      if (!Object.keys(d.entries).length) return false;
      const key = this.key(d, true)!;
      moved = this.reseal(d, key, backend.by);
      return moved > 0;
    });
    this.plainSig = null;
    return moved;
  }

  // ---- redaction and diagnostics ------------------------------------------------------------

  values(): string[] {
    let doc: Doc;
    try {
      doc = this.load();
    } catch {
      return [...this.plain.values()];
    }
    if (this.plainSig !== this.sig) {
      // Values an older version left in plain text go under the keychain once one is reachable.
      if (!this.migrated && Object.values(doc.entries).some((e) => e.by === 'file')) {
        this.migrated = true;
        try {
          if (this.migrate() > 0) doc = this.load();
        } catch {
          // Not now (the keychain refused): they stay readable where they are.
        }
      }
      const next = new Map<string, string>();
      for (const [name, e] of Object.entries(doc.entries)) {
        try {
          next.set(name, this.open(doc, name, e));
        } catch {
          // Unreadable here (another keychain, the app's old format): nothing to compare against.
        }
      }
      this.plain = next;
      this.plainSig = this.sig;
    }
    return [...this.plain.values()];
  }

  describe(): SecretStoreInfo {
    const doc = this.load();
    const t = this.target();
    const counts: SecretStoreInfo['counts'] = {};
    const unreadable: SecretStoreInfo['unreadable'] = [];
    for (const [name, e] of Object.entries(doc.entries)) {
      counts[e.by] = (counts[e.by] ?? 0) + 1;
      try {
        this.open(doc, name, e);
      } catch (err) {
        unreadable.push({ name, reason: (err as Error).message });
      }
    }
    return {
      backend: t.backend?.by ?? 'file',
      label: t.backend?.label ?? FILE_LABEL,
      location: this.file,
      counts,
      keychainProblem: t.problem,
      unreadable,
    };
  }

  /** Whether the file exists yet. */
  exists(): boolean {
    return existsSync(this.file);
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
  describe(): SecretStoreInfo {
    return {
      backend: 'memory',
      label: 'memory (tests)',
      location: null,
      counts: {},
      keychainProblem: null,
      unreadable: [],
    };
  }
}
