/**
 * Describe a settings form from the contract's zod schema: sections are the top-level objects, fields
 * their leaves. Labels and help come from the schema's descriptions where present, else from FIELD_TEXT.
 */
import type { z } from 'zod';

export type FieldSpec =
  | { kind: 'enum'; options: string[] }
  | { kind: 'number'; min: number | null; max: number | null; int: boolean; nullable: boolean }
  | { kind: 'string' }
  | { kind: 'boolean' }
  | { kind: 'list' };

export interface FormField {
  path: string;
  section: string;
  key: string;
  label: string;
  help: string | null;
  unit: string | null;
  spec: FieldSpec;
}

export interface FormSection {
  key: string;
  label: string;
  help: string | null;
  fields: FormField[];
}

interface Text {
  label: string;
  help?: string;
  unit?: string;
}

const SECTION_TEXT: Record<string, Text> = {
  ui: { label: 'Appearance' },
  hosts: { label: 'Hosts', help: 'Defaults for every host; a host can override its storage directory.' },
  sandboxes: { label: 'Sandboxes', help: 'Limits and defaults for the disposable clones agents work in.' },
  agent: {
    label: 'Session limits',
    help: 'Defaults for new agent sessions (a session can set its own steps and cost when it starts).',
  },
  approvals: { label: 'Approvals' },
};

const FIELD_TEXT: Record<string, Text> = {
  'approvals.allowUnattendedCli': {
    label: 'Let scripts decide: `fluid approval approve --yes` and operator API tokens',
    help: 'Off: only a person decides — here, in the app, or on a terminal. On: any process that can run the CLI as you (an agent with a shell too), and any holder of an operator API token, may decide. Turning it on needs your confirmation.',
  },
  'approvals.applyTtlMinutes': {
    label: 'An approved production apply stays usable for',
    help: 'After you approve a change, it can be applied once within this time; after that it needs a new approval. Raising it needs your confirmation.',
    unit: 'min',
  },
  'ui.theme': { label: 'Theme', help: '"System" follows your operating system’s light or dark preference.' },
  'hosts.storageDir': {
    label: 'Storage directory',
    help: 'Where Fluid keeps base images, overlays and templates on each host (unless set per host).',
  },
  'hosts.minFreeDiskGiB': {
    label: 'Minimum free disk',
    help: 'Preflight warns when the storage directory has less free space than this.',
    unit: 'GiB',
  },
  'hosts.minFreeMemoryMiB': {
    label: 'Minimum available memory',
    help: 'Preflight warns when the host has less available memory than this.',
    unit: 'MiB',
  },
  'hosts.connectTimeoutSeconds': {
    label: 'Connection timeout',
    help: 'How long Fluid waits for a host to answer over SSH.',
    unit: 's',
  },
  'sandboxes.defaultTtlMinutes': {
    label: 'Default lifetime',
    help: 'A sandbox is destroyed this long after it was created, unless extended.',
    unit: 'min',
  },
  'sandboxes.hostExpiryGraceMinutes': {
    label: 'Host-side expiry grace',
    help: 'The host destroys an expired sandbox by itself, even when Fluid is not running, this long after it expired.',
    unit: 'min',
  },
  'sandboxes.maxCommittedVcpus': {
    label: 'Most vCPUs per host',
    help: 'Sandboxes over this total on one host need an approval.',
  },
  'sandboxes.maxCommittedMemoryMiB': {
    label: 'Most memory per host',
    help: 'Sandboxes over this total on one host need an approval.',
    unit: 'MiB',
  },
  'sandboxes.maxSandboxesPerHost': { label: 'Most sandboxes per host' },
  'sandboxes.reserveMemoryMiB': {
    label: 'Memory kept free',
    help: 'Admit a sandbox only if the host keeps at least this much memory free afterwards.',
    unit: 'MiB',
  },
  'sandboxes.egressAllow': {
    label: 'Allowed destinations',
    help: 'Hosts every new sandbox may reach through the egress proxy (everything else needs an approval).',
  },
  'agent.maxSteps': {
    label: 'Most steps per session',
    help: 'A session stops after this many model turns (a runaway loop costs money); a message continues it.',
    unit: 'turns',
  },
  'agent.maxCostUsd': {
    label: 'Most cost per session',
    help: 'A session stops when its estimated cost reaches this; a message continues it.',
    unit: 'USD',
  },
  'agent.compactAt': {
    label: 'Compact the context at',
    help: 'Older turns are summarized for the model when its context reaches this share of the window (0.8 = 80 %).',
  },
  'agent.toolOutputChars': {
    label: 'Tool output kept in context',
    help: 'Characters of each tool result the model reads; the rest stays retrievable (and visible here).',
    unit: 'characters',
  },
  'sandboxes.sessionTtlMinutes': {
    label: 'Lifetime of an agent’s sandboxes',
    help: 'Sandboxes an agent session or MCP client makes live at most this long unless a person extends them.',
    unit: 'min',
  },
  'sandboxes.terminalIdleMinutes': {
    label: 'Unattended terminals end after',
    help: 'A terminal stays open on the backend when its page closes or reloads; nobody attached for this long ends it.',
    unit: 'min',
  },
  'sandboxes.warmTemplates': {
    label: 'Warm templates',
    help: 'Keep a saved, booted template per source and restore it for new sandboxes (much faster than a cold boot).',
  },
  'sandboxes.warmPool': {
    label: 'Warm pool',
    help: 'One line per source: `source=N` (or `host:source=N`). Fluid keeps N sandboxes of it ready and paused, so a new sandbox of that source starts in under a second. Each member holds its memory while it waits and counts against the host limits.',
  },
  'sandboxes.warmPoolMinHostMemoryMiB': {
    label: 'No warm pool on hosts with less memory than',
    help: 'A small host keeps its memory for the sandboxes in use.',
    unit: 'MiB',
  },
};

type AnySchema = z.ZodType & {
  type: string;
  description?: string;
  unwrap?: () => AnySchema;
  shape?: Record<string, AnySchema>;
  options?: unknown[];
  element?: AnySchema;
  minValue?: number | null;
  maxValue?: number | null;
  isInt?: boolean;
};

/** Peel defaults, prefaults, optionals and nullables down to the value's schema. */
function base(s: AnySchema): AnySchema {
  let cur = s;
  for (
    let i = 0;
    i < 8 && ['default', 'prefault', 'optional', 'nullable'].includes(cur.type) && cur.unwrap;
    i++
  )
    cur = cur.unwrap();
  return cur;
}

const ACRONYMS: Record<string, string> = {
  ttl: 'TTL',
  uri: 'URI',
  url: 'URL',
  ssh: 'SSH',
  cpu: 'CPU',
  cpus: 'CPUs',
  vcpus: 'vCPUs',
  vm: 'VM',
  vms: 'VMs',
  llm: 'LLM',
  api: 'API',
  id: 'ID',
  ip: 'IP',
  dir: 'directory',
};
const UNITS: Record<string, string> = {
  gib: 'GiB',
  mib: 'MiB',
  bytes: 'bytes',
  seconds: 's',
  secs: 's',
  ms: 'ms',
  minutes: 'min',
  hours: 'h',
  days: 'days',
  percent: '%',
};

/** "defaultTtlMinutes" → label "Default TTL", unit "min". */
export function humanizeKey(key: string): { label: string; unit: string | null } {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[\s_-]+/)
    .filter(Boolean);
  let unit: string | null = null;
  const last = words.at(-1)?.toLowerCase();
  if (words.length > 1 && last && UNITS[last]) {
    unit = UNITS[last];
    words.pop();
  }
  const text = words
    .map(
      (w, i) =>
        ACRONYMS[w.toLowerCase()] ??
        (i === 0 ? w[0]!.toUpperCase() + w.slice(1).toLowerCase() : w.toLowerCase()),
    )
    .join(' ');
  return { label: text, unit };
}

const humanize = (key: string) => humanizeKey(key).label;

function isNullable(s: AnySchema): boolean {
  let cur = s;
  for (let i = 0; i < 8; i++) {
    if (cur.type === 'nullable') return true;
    if (!['default', 'prefault', 'optional'].includes(cur.type) || !cur.unwrap) return false;
    cur = cur.unwrap();
  }
  return false;
}

function spec(s: AnySchema): FieldSpec | null {
  const b = base(s);
  switch (b.type) {
    case 'enum':
      return { kind: 'enum', options: (b.options ?? []).map(String) };
    case 'number': {
      const max = b.maxValue ?? null;
      return {
        kind: 'number',
        min: Number.isFinite(b.minValue ?? NaN) ? (b.minValue as number) : null,
        max: max !== null && Number.isFinite(max) && max < Number.MAX_SAFE_INTEGER ? max : null,
        int: !!b.isInt,
        nullable: isNullable(s),
      };
    }
    case 'array':
      return b.element && base(b.element).type === 'string' ? { kind: 'list' } : null;
    case 'string':
      return { kind: 'string' };
    case 'boolean':
      return { kind: 'boolean' };
    default:
      return null;
  }
}

export function describeForm(schema: z.ZodType): FormSection[] {
  const root = base(schema as AnySchema);
  const sections: FormSection[] = [];
  for (const [sectionKey, sectionSchema] of Object.entries(root.shape ?? {})) {
    const obj = base(sectionSchema);
    if (obj.type !== 'object' || !obj.shape) continue;
    const st = SECTION_TEXT[sectionKey];
    const fields: FormField[] = [];
    for (const [key, fieldSchema] of Object.entries(obj.shape)) {
      const sp = spec(fieldSchema);
      if (!sp) continue;
      const path = `${sectionKey}.${key}`;
      const t = FIELD_TEXT[path];
      const h = humanizeKey(key);
      fields.push({
        path,
        section: sectionKey,
        key,
        label: t?.label ?? h.label,
        help: fieldSchema.description ?? base(fieldSchema).description ?? t?.help ?? null,
        unit: t?.unit ?? h.unit,
        spec: sp,
      });
    }
    sections.push({
      key: sectionKey,
      label: st?.label ?? humanize(sectionKey),
      help: sectionSchema.description ?? st?.help ?? null,
      fields,
    });
  }
  return sections;
}

export function readPath(obj: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
      obj,
    );
}

/** A setting's value as the text an input shows. */
export function toText(f: FormField, v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(String).join('\n');
  return String(v);
}

/** The text of an input back to a value. Numbers are sent as typed: the backend validates. */
export function fromText(f: FormField, raw: string): unknown {
  switch (f.spec.kind) {
    case 'number':
      if (raw.trim() === '') return f.spec.nullable ? null : Number.NaN;
      return Number(raw.trim());
    case 'boolean':
      return raw === 'true';
    case 'list':
      return raw
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    default:
      return raw;
  }
}

/**
 * The update for the edited fields. Every field of a touched section is sent (edited or current):
 * the contract's partial schema fills defaults for missing keys, which would reset them.
 */
export function buildPatch(
  fields: FormField[],
  current: unknown,
  draft: Record<string, string>,
): Record<string, Record<string, unknown>> {
  const touched = new Set(fields.filter((f) => f.path in draft).map((f) => f.section));
  const patch: Record<string, Record<string, unknown>> = {};
  for (const f of fields) {
    if (!touched.has(f.section)) continue;
    (patch[f.section] ??= {})[f.key] =
      f.path in draft ? fromText(f, draft[f.path]!) : readPath(current, f.path);
  }
  return patch;
}
