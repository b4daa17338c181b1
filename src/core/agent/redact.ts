/**
 * Secret redaction for everything that reaches a model: tool outputs, the user's messages, parts of
 * long outputs read back by handle. Secrets are replaced by stable placeholders, the same value
 * always by the same one within a session (`[REDACTED:password#1]`), so the model can still tell
 * two secrets apart and refer to them without seeing them.
 *
 * Found: API keys (sk-…, sk-ant-…, AKIA…, ghp_…, xox…, and a few more), bearer and basic tokens,
 * JWTs, PEM private key blocks, password/secret/token assignments in config-like text (key=value,
 * key: value, JSON, command-line flags, SQL), connection strings with a password, crypt(3) password
 * hashes, and every value held in the secret store.
 *
 * Every agent door applies it: the tool registry redacts each outcome (redactToolOutput) with the
 * door's redactor — the session's for the built-in agent, the connection's for MCP — before the
 * result leaves the gate, so no door can hand a model a raw secret.
 */
import { createHash } from 'node:crypto';

export type SecretKind = 'api-key' | 'token' | 'private-key' | 'password' | 'password-hash' | 'secret';

interface Span {
  start: number;
  end: number;
  kind: SecretKind;
}

const PLACEHOLDER = /^\[REDACTED:[a-z-]+#\d+\]$/;

// ---------------------------------------------------------------------------------------------------
// What counts as a secret key name

/** Components of a key name that mark its value as secret. */
const SECRET_WORDS = new Set([
  'password',
  'passwd',
  'pass',
  'pwd',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'apikey',
  'credential',
  'credentials',
  'privatekey',
  'requirepass',
  'masterauth',
]);
/** Pairs of adjacent components that mark a secret (`api_key`, `AccessKey`, `client-secret`). */
const SECRET_PAIRS = new Set([
  'api key',
  'access key',
  'private key',
  'secret key',
  'auth key',
  'signing key',
  'encryption key',
  'master key',
  'session key',
  'account key',
  'shared key',
  'license key',
]);
/** A last component that makes the value something else than the secret (a path, a length…). */
const NOT_SECRET_LAST = new Set([
  'file',
  'path',
  'dir',
  'url',
  'uri',
  'endpoint',
  'length',
  'len',
  'min',
  'max',
  'type',
  'name',
  'user',
  'username',
  'enabled',
  'enable',
  'required',
  'policy',
  'expiry',
  'expires',
  'ttl',
  'lifetime',
  'timeout',
  'count',
  'prompt',
  'field',
  'header',
  'algorithm',
  'format',
  'mode',
  'id',
  'env',
  'command',
  'cmd',
  'method',
  'source',
  'limit',
  'size',
  'hint',
  'reset',
  'auth',
  'stdin',
]);

function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

export function isSecretKey(key: string): boolean {
  const w = keyWords(key);
  if (!w.length || w.length > 8) return false;
  if (NOT_SECRET_LAST.has(w.at(-1)!)) return false;
  if (w.some((x) => SECRET_WORDS.has(x))) return true;
  for (let i = 0; i + 1 < w.length; i++) if (SECRET_PAIRS.has(`${w[i]} ${w[i + 1]}`)) return true;
  return false;
}

const KIND_OF_KEY = (key: string): SecretKind => {
  const w = keyWords(key);
  if (
    w.some((x) =>
      ['password', 'passwd', 'pass', 'pwd', 'passphrase', 'requirepass', 'masterauth'].includes(x),
    )
  )
    return 'password';
  if (w.includes('token')) return 'token';
  if (w.includes('apikey') || w.join(' ').includes('api key')) return 'api-key';
  if (w.join(' ').includes('private key') || w.includes('privatekey')) return 'private-key';
  return 'secret';
};

/** Values that are references or placeholders, not secrets: `$DB_PASS`, `${X}`, `<password>`, `****`. */
function isNotAValue(v: string): boolean {
  const t = v.trim();
  if (t.length < 2) return true;
  if (PLACEHOLDER.test(t) || t.startsWith('[REDACTED:')) return true;
  if (
    /^(true|false|null|none|nil|yes|no|on|off|undefined|required|optional|string|\*+|x+|\.\.\.|…)$/i.test(t)
  )
    return true;
  if (/^(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%\([^)]*\)s?|\{\{.*\}\}|<[^<>]*>|%[A-Z_]+%)$/.test(t)) return true;
  if (/^(os\.environ|os\.getenv|process\.env|getenv\(|env\(|ENV\[|secrets\.|vault:|!vault)/.test(t))
    return true;
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Patterns. Each yields spans: the secret part only, so the text around it stays readable.

type Finder = (text: string) => Span[];

function whole(re: RegExp, kind: SecretKind): Finder {
  return (text) => {
    const out: Span[] = [];
    for (const m of text.matchAll(re)) out.push({ start: m.index, end: m.index + m[0].length, kind });
    return out;
  };
}

/** The span of the named group `s`, with surrounding quotes left out. */
function group(re: RegExp, kind: SecretKind | ((m: RegExpExecArray) => SecretKind), keyed = false): Finder {
  return (text) => {
    const out: Span[] = [];
    for (const m of text.matchAll(re) as IterableIterator<RegExpExecArray>) {
      const idx = m.indices?.groups?.s;
      if (!idx) continue;
      let [start, end] = idx;
      const raw = text.slice(start, end);
      const q = raw[0];
      if ((q === '"' || q === "'" || q === '`') && raw.length >= 2 && raw.at(-1) === q) {
        start++;
        end--;
      }
      const value = text.slice(start, end);
      if (keyed) {
        const key = m.groups?.k ?? '';
        if (!isSecretKey(key)) continue;
      }
      if (isNotAValue(value)) continue;
      out.push({ start, end, kind: typeof kind === 'function' ? kind(m) : kind });
    }
    return out;
  };
}

const byKey = (m: RegExpExecArray): SecretKind => KIND_OF_KEY(m.groups?.k ?? '');

const FINDERS: Finder[] = [
  // PEM private keys, whole blocks (or to the end when the block was cut).
  whole(
    /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
    'private-key',
  ),
  whole(/PuTTY-User-Key-File-\d+:[\s\S]*?Private-MAC: [0-9a-f]+/g, 'private-key'),
  // Vendor API keys.
  whole(/(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{16,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|or-v1-|or-)?[A-Za-z0-9_-]{20,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}(?![0-9A-Za-z])/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{30,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{30,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_-])xox[abposr]-[A-Za-z0-9-]{10,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_-])hf_[A-Za-z0-9]{30,}/g, 'api-key'),
  whole(/(?<![A-Za-z0-9_-])npm_[A-Za-z0-9]{36}/g, 'api-key'),
  // JSON web tokens.
  whole(/(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, 'token'),
  // Authorization headers and bearer tokens.
  group(/\bBearer\s+(?<s>[A-Za-z0-9._~+/=-]{8,})/dgi, 'token'),
  group(
    /\bAuthorization\s*[:=]\s*"?(?:Basic|Digest|Negotiate|Token)\s+(?<s>[A-Za-z0-9._~+/=-]{6,})/dgi,
    'token',
  ),
  // Connection strings: scheme://user:password@host.
  group(/\b[a-z][a-z0-9+.-]{1,20}:\/\/[^\s:@/'"]{1,100}:(?<s>[^\s@/'"]{1,200})@/dgi, 'password'),
  // crypt(3) password hashes (/etc/shadow, htpasswd).
  whole(
    /(?<![A-Za-z0-9$])\$(?:1|2[abxy]|5|6|y|gy|7|argon2id?|scrypt)\$[./A-Za-z0-9$=,+-]{16,}/g,
    'password-hash',
  ),
  whole(/(?<![A-Za-z0-9])\$apr1\$[./A-Za-z0-9$]{16,}/g, 'password-hash'),
  // JSON: "password": "…"
  group(/"(?<k>[A-Za-z0-9_.\- ]{1,80})"\s*:\s*(?<s>"(?:[^"\\\n]|\\.){1,4096}")/dg, byKey, true),
  // key=value (env files, ini, shell, URLs' query strings).
  group(
    /(?<![A-Za-z0-9_.-])(?<k>[A-Za-z_][A-Za-z0-9_.-]{0,80})[ \t]*=[ \t]*(?<s>"[^"\n]{1,4096}"|'[^'\n]{1,4096}'|[^\s;&|,#"'<>]{1,4096})/dg,
    byKey,
    true,
  ),
  // key: value (YAML, headers, colon-separated configs). Not when a block or a mapping follows.
  group(
    /^(?<i>[ \t]*(?:-[ \t]+)?)(?<k>[A-Za-z_][A-Za-z0-9_.-]{0,80})[ \t]*:[ \t]+(?<s>(?![|>{[&*!])(?:"[^"\n]{1,4096}"|'[^'\n]{1,4096}'|[^\s#][^\n#]{0,4095}?))[ \t]*(?:#.*)?$/dgm,
    byKey,
    true,
  ),
  // key value (redis requirepass/masterauth, pgpass-like configs, many daemons).
  group(
    /^[ \t]*(?<k>requirepass|masterauth|masterpassword|rpcpassword|rpcauth|auth_pass|bindpw|rootpw)[ \t]+(?<s>[^\s#]{2,4096})/dgim,
    'password',
  ),
  // Command-line flags: --password=…, --token …
  group(
    /(?<![A-Za-z0-9_-])--(?<k>[A-Za-z][A-Za-z0-9_-]{1,60})(?:=|[ \t]+)(?<s>"[^"\n]{1,4096}"|'[^'\n]{1,4096}'|[^\s"'-][^\s"']{0,4095})/dg,
    byKey,
    true,
  ),
  // SQL: IDENTIFIED BY '…', PASSWORD '…'
  group(/\bIDENTIFIED\s+(?:WITH\s+\S+\s+)?BY\s+(?<s>'[^'\n]{1,1024}'|"[^"\n]{1,1024}")/dgi, 'password'),
  group(/\b(?:ENCRYPTED\s+)?PASSWORD\s+(?<s>'[^'\n]{1,1024}')/dgi, 'password'),
];

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function occurrences(text: string, value: string, kind: SecretKind, into: Span[]): void {
  let at = text.indexOf(value);
  while (at !== -1) {
    into.push({ start: at, end: at + value.length, kind });
    at = text.indexOf(value, at + value.length);
  }
}

/**
 * A multi-line secret with any line endings, compiled once per value (every redaction looks for every
 * stored key). matchAll works on a copy, so the shared expression's lastIndex never moves.
 */
const lineEndingsRes = new Map<string, RegExp>();
function lineEndingsRe(v: string): RegExp {
  let re = lineEndingsRes.get(v);
  if (!re) {
    re = new RegExp(escapeRe(v.trim()).replace(/\n/g, '\\r?\\n'), 'g');
    if (lineEndingsRes.size >= 256) lineEndingsRes.clear();
    lineEndingsRes.set(v, re);
  }
  return re;
}

/** Secret values shorter than this are only found by pattern, never by value (too many false hits). */
const MIN_VALUE_CHARS = 6;

/**
 * Spans of every secret in the text, non-overlapping, in order. `known` values (the secret store,
 * secrets seen earlier in the session) are found wherever they occur, as is every other occurrence
 * of a value a pattern found.
 */
export function findSecrets(
  text: string,
  known: ReadonlyArray<{ value: string; kind: SecretKind }> = [],
): Span[] {
  const spans: Span[] = [];
  for (const { value: v, kind } of known) {
    if (!v || v.length < MIN_VALUE_CHARS) continue;
    occurrences(text, v, kind, spans);
    // A multi-line secret (a PEM key) may come back with other line endings.
    if (v.includes('\n')) {
      const re = lineEndingsRe(v);
      for (const m of text.matchAll(re)) spans.push({ start: m.index, end: m.index + m[0].length, kind });
    }
  }
  const found: Span[] = [];
  for (const f of FINDERS) found.push(...f(text));
  spans.push(...found);
  const seen = new Set<string>();
  for (const s of found) {
    const v = text.slice(s.start, s.end);
    if (v.length < MIN_VALUE_CHARS || seen.has(v)) continue;
    seen.add(v);
    occurrences(text, v, s.kind, spans);
  }
  // Earliest first; of two starting together, the longer. Overlaps merge into the first span.
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Span[] = [];
  for (const s of spans) {
    const last = out.at(-1);
    if (last && s.start < last.end) {
      last.end = Math.max(last.end, s.end);
      continue;
    }
    out.push({ ...s });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Stable placeholders

export interface RedactorState {
  /** Salted sha256 of a secret value → "kind#n". Holds no secret. */
  labels: Record<string, string>;
}

export class Redactor {
  private readonly labels: Map<string, string>;
  private readonly counters = new Map<string, number>();
  private readonly salt: string;
  private readonly known: () => readonly string[];
  /**
   * Secret values found so far by this redactor, so that a password seen in a config file is also
   * hidden when it shows up later in a log line. In memory only, never persisted.
   */
  private readonly seen = new Map<string, SecretKind>();
  /** Called when a new placeholder was assigned (persist `state()`). */
  onNewLabel: (() => void) | null = null;

  constructor(opts: { salt: string; known?: () => readonly string[]; state?: RedactorState }) {
    this.salt = opts.salt;
    this.known = opts.known ?? (() => []);
    this.labels = new Map(Object.entries(opts.state?.labels ?? {}));
    for (const label of this.labels.values()) {
      const [kind, n] = label.split('#');
      this.counters.set(kind!, Math.max(this.counters.get(kind!) ?? 0, Number(n) || 0));
    }
  }

  state(): RedactorState {
    return { labels: Object.fromEntries(this.labels) };
  }

  private hash(value: string): string {
    return createHash('sha256').update(this.salt).update('\0').update(value).digest('hex').slice(0, 32);
  }

  /** The placeholder of a secret value; the value is also looked for in everything redacted later. */
  placeholder(value: string, kind: SecretKind): string {
    this.remember(value, kind);
    // A key block's lines are secret on their own too (a tool may return a file as a list of lines).
    if (kind === 'private-key' && value.includes('\n'))
      for (const line of value.split(/\r?\n/))
        if (line.trim().length >= 16 && !/^-----|^[A-Za-z-]+: /.test(line.trim()))
          this.remember(line.trim(), kind);
    const h = this.hash(value);
    let label = this.labels.get(h);
    if (!label) {
      const n = (this.counters.get(kind) ?? 0) + 1;
      this.counters.set(kind, n);
      label = `${kind}#${n}`;
      this.labels.set(h, label);
      this.onNewLabel?.();
    }
    return `[REDACTED:${label}]`;
  }

  private remember(value: string, kind: SecretKind): void {
    if (value.length >= MIN_VALUE_CHARS && this.seen.size < 2000 && !this.seen.has(value))
      this.seen.set(value, kind);
  }

  /** The text with every secret replaced; `count` is how many were replaced. */
  redact(text: string): { text: string; count: number } {
    if (!text) return { text, count: 0 };
    const known = [
      ...this.known().map((value) => ({ value, kind: 'secret' as SecretKind })),
      ...[...this.seen].map(([value, kind]) => ({ value, kind })),
    ];
    const spans = findSecrets(text, known);
    if (!spans.length) return { text, count: 0 };
    let out = '';
    let at = 0;
    for (const s of spans) {
      const value = text.slice(s.start, s.end);
      out += text.slice(at, s.start) + this.placeholder(value, s.kind);
      at = s.end;
    }
    return { text: out + text.slice(at), count: spans.length };
  }
}

// ---------------------------------------------------------------------------------------------------
// Tool outcomes: what every agent door returns to a model

/** What a door needs from a redactor. */
export interface TextRedactor {
  redact(text: string): { text: string; count: number };
  placeholder(value: string, kind: SecretKind): string;
}

/**
 * A tool result's structured data with every secret replaced: strings are redacted like text, and a
 * string under a secret-looking key (`password`, `apiKey`, `client_secret`…) is replaced whole, since
 * once it is out of its `key=value` context no pattern would recognise it. The redactor remembers the
 * values it replaced, so redacting the data before the text also hides them in the text.
 */
export function redactData(value: unknown, r: TextRedactor, depth = 0): unknown {
  if (depth > 32) return '[REDACTED:deep]';
  if (typeof value === 'string') return r.redact(value).text;
  if (Array.isArray(value)) return value.map((v) => redactData(v, r, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (typeof v === 'string' && isSecretKey(k) && !isNotAValue(v)) {
        out[k] = r.placeholder(v, KIND_OF_KEY(k));
      } else out[k] = redactData(v, r, depth + 1);
    }
    return out;
  }
  return value;
}

/** A tool outcome as a model may see it: content and data redacted with one redactor. */
export function redactToolOutput<T extends { content: string; data?: unknown }>(
  o: T,
  r: TextRedactor,
): T & { redactions: number } {
  // Data first (its secret-named fields teach the redactor values the text may hold), then the text,
  // then the data again with everything the text taught (a key block's lines, say).
  if (o.data !== undefined) redactData(o.data, r);
  const { text, count } = r.redact(o.content);
  const data = o.data === undefined ? undefined : redactData(o.data, r);
  return { ...o, content: text, ...(data === undefined ? {} : { data }), redactions: count };
}
