/**
 * The target's state over a scope: read on the target by target_state.py (read-only, as root through
 * the become method), hashed canonically, and compared.
 *
 *  - `readState` runs the program over the target's SSH connection and validates what it prints.
 *  - `baselineOf` seals { scope, state } with its sha256: the baseline a bundle carries.
 *  - `drift` names, item by item, what differs between two states of the same scope (an apply is
 *    refused as STALE with this list).
 *  - `mismatches` checks a state against the diff items a change carries: after an apply, the target
 *    must have what the sandbox had (packages at those versions, files with those hashes, modes and
 *    owners, units enabled or not, users and groups, sysctl values).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  TargetStateSchema,
  type ChangeBaseline,
  type DriftItem,
  type Scope,
  type TargetState,
} from '../../shared/contract/changes.ts';
import type { DiffItem, FileMeta } from '../../shared/contract/diff.ts';
import { FluidError } from '../../shared/errors.ts';
import type { HostConnection } from '../hosts/connection.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';
import type { BecomeMethod } from '../../shared/contract/changes.ts';

export const STATE_PROGRAM_URL = new URL('./target_state.py', import.meta.url);

let program: string | null = null;
function stateProgram(): string {
  try {
    return (program ??= readFileSync(STATE_PROGRAM_URL, 'utf8'));
  } catch (e) {
    throw new FluidError(
      'INTERNAL',
      `${fileURLToPath(STATE_PROGRAM_URL)} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): this Fluid installation is incomplete; reinstall or rebuild it.`,
    );
  }
}

export const emptyScope = (): Scope => ({
  packages: [],
  files: [],
  units: [],
  users: [],
  groups: [],
  sysctl: [],
});

/** Sorted, unique, and only names the state program can take. */
export function normalizeScope(s: Scope): Scope {
  const uniq = (xs: string[], ok: (x: string) => boolean) =>
    [...new Set(xs.filter(ok))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    packages: uniq(s.packages, (x) => /^[a-z0-9][a-z0-9+.:-]*$/.test(x)),
    files: uniq(s.files, (x) => x.startsWith('/') && !x.includes('\0') && !x.split('/').includes('..')),
    units: uniq(s.units, (x) => /^[A-Za-z0-9:_.@\\-]+\.[a-z]+$/.test(x)),
    users: uniq(s.users, (x) => /^[a-z_][a-z0-9_.-]*\$?$/i.test(x)),
    groups: uniq(s.groups, (x) => /^[a-z_][a-z0-9_.-]*\$?$/i.test(x)),
    sysctl: uniq(s.sysctl, (x) => /^[a-z0-9_][a-z0-9_.-]*$/i.test(x) && !x.includes('..')),
  };
}

/** Prefix a command with the target's become method (never one that would ask for a password). */
export function asRoot(become: BecomeMethod, command: string): string {
  if (become === 'sudo') return `sudo -n -- ${command}`;
  if (become === 'doas') return `doas -n ${command}`;
  return command;
}

/** Read the target's state over `scope`. Read-only: the program only stats and reads. */
export async function readState(
  conn: HostConnection,
  become: BecomeMethod,
  scope: Scope,
  signal?: AbortSignal,
): Promise<TargetState> {
  const arg = Buffer.from(JSON.stringify(scope)).toString('base64');
  const r = await conn.exec(asRoot(become, `python3 -I - ${arg}`), {
    stdin: stateProgram(),
    timeoutMs: 300_000,
    maxOutputBytes: 64 * 1024 * 1024,
    signal,
  });
  if (r.code !== 0)
    throw new FluidError(
      'HOST_UNREACHABLE',
      `Reading the target's state failed (exit ${r.code ?? r.signal}): ${r.stderr.toString().trim().slice(-500) || 'no message'}${
        /password is required|a terminal is required/.test(r.stderr.toString())
          ? ' — the target user needs to become root without a password (NOPASSWD).'
          : ''
      }`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout.toString('utf8'));
  } catch {
    throw new FluidError('INTERNAL', "The target's state program printed something that is not JSON.");
  }
  const ok = TargetStateSchema.safeParse(parsed);
  if (!ok.success)
    throw new FluidError('INTERNAL', `The target's state is not in the expected form: ${ok.error.message}`);
  return ok.data;
}

export function baselineOf(scope: Scope, state: TargetState, unscoped: string[]): ChangeBaseline {
  return { sha256: sha256Hex(canonicalJson({ scope, state })), scope, state, unscoped };
}

export function counts(b: ChangeBaseline): Record<string, number> {
  return Object.fromEntries(Object.entries(b.scope).map(([k, v]) => [k, v.length]));
}

const short = (h: string | null | undefined) => (h ? `${h.slice(0, 12)}…` : 'none');

function describeFile(f: TargetState['files'][string]): string {
  if (!f) return 'absent';
  return `${f.type} ${f.mode} ${f.user ?? '?'}:${f.group ?? '?'}${f.type === 'file' ? ` sha256 ${short(f.sha256)}` : ''}${f.target ? ` → ${f.target}` : ''}`;
}

/** The digest target_state.py gives a cron entry (comments aside, whitespace normalised). */
export function cronEntry(line: string): string {
  return createHash('sha256').update(line.split(/\s+/).filter(Boolean).join(' ')).digest('hex');
}

/** What differs between two states of the same scope, item by item. */
export function drift(before: TargetState, now: TargetState): DriftItem[] {
  const out: DriftItem[] = [];
  const fieldsOf = (a: Record<string, unknown> | null, b: Record<string, unknown> | null): string[] => {
    if (!a || !b) return a === b ? [] : ['exists'];
    return [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k]))
      .sort();
  };
  for (const [name, v] of Object.entries(before.packages)) {
    const n = now.packages[name] ?? null;
    if (v !== n)
      out.push({
        kind: 'package',
        key: name,
        fields: ['version'],
        detail: `package ${name}: ${v ?? 'not installed'} → ${n ?? 'not installed'}`,
      });
  }
  for (const [path, v] of Object.entries(before.files)) {
    const n = now.files[path] ?? null;
    const f = fieldsOf(v, n);
    if (f.length)
      out.push({
        kind: 'file',
        key: path,
        fields: f,
        detail: `file ${path}: ${describeFile(v)} → ${describeFile(n)}`,
      });
  }
  for (const [unit, v] of Object.entries(before.units)) {
    const n = now.units[unit];
    const f = fieldsOf(v, n ?? null);
    if (f.length)
      out.push({
        kind: 'unit',
        key: unit,
        fields: f,
        detail: `unit ${unit}: ${f.map((k) => `${k} ${String((v as Record<string, unknown>)[k])} → ${String(n ? (n as Record<string, unknown>)[k] : 'absent')}`).join(', ')}`,
      });
  }
  for (const [user, v] of Object.entries(before.users)) {
    const n = now.users[user] ?? null;
    const f = fieldsOf(v, n);
    if (f.length)
      out.push({
        kind: 'user',
        key: user,
        fields: f,
        detail: !v
          ? `user ${user} was added`
          : !n
            ? `user ${user} was removed`
            : `user ${user}: ${f.map((k) => (k === 'passwordDigest' ? 'password changed' : `${k} ${JSON.stringify(v[k as keyof typeof v])} → ${JSON.stringify(n[k as keyof typeof n])}`)).join(', ')}`,
      });
  }
  for (const [group, v] of Object.entries(before.groups)) {
    const n = now.groups[group] ?? null;
    const f = fieldsOf(v, n);
    if (f.length)
      out.push({
        kind: 'group',
        key: group,
        fields: f,
        detail: !v
          ? `group ${group} was added`
          : !n
            ? `group ${group} was removed`
            : `group ${group}: ${f.map((k) => `${k} ${JSON.stringify(v[k as keyof typeof v])} → ${JSON.stringify(n[k as keyof typeof n])}`).join(', ')}`,
      });
  }
  for (const [name, v] of Object.entries(before.sysctl)) {
    const n = now.sysctl[name] ?? null;
    if (v !== n)
      out.push({
        kind: 'sysctl',
        key: name,
        fields: ['value'],
        detail: `sysctl ${name}: ${v ?? 'absent'} → ${n ?? 'absent'}`,
      });
  }
  return out;
}

/**
 * Items of a change whose state on the target is not what the sandbox ended with. Compared by names,
 * hashes, modes and versions (uids may differ between machines).
 */
export function mismatches(items: readonly DiffItem[], state: TargetState): DriftItem[] {
  const out: DriftItem[] = [];
  const fileCheck = (
    kind: DriftItem['kind'],
    path: string,
    want: FileMeta | null,
    cron?: { added: string[]; removed: string[] },
  ) => {
    if (!(path in state.files)) return;
    const have = state.files[path] ?? null;
    if (!want) {
      if (have)
        out.push({
          kind,
          key: path,
          fields: ['exists'],
          detail: `${path} should be gone; the target has it (${describeFile(have)}).`,
        });
      return;
    }
    if (!have) {
      out.push({ kind, key: path, fields: ['exists'], detail: `${path} is missing on the target.` });
      return;
    }
    const f: string[] = [];
    if (have.type !== want.type) f.push('type');
    if (have.mode !== want.mode) f.push('mode');
    if (want.user && have.user !== want.user) f.push('user');
    if (want.group && have.group !== want.group) f.push('group');
    if (want.type === 'file' && want.sha256 && have.sha256 !== want.sha256) {
      // a cron file written by the cron module carries its marker comments: compare the entries
      if (cron && have.entries) {
        const has = new Set(have.entries);
        const lines = (ls: string[]) => ls.map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
        const ok =
          lines(cron.added).every((l) => has.has(cronEntry(l))) &&
          !lines(cron.removed).some((l) => has.has(cronEntry(l)));
        if (!ok) f.push('entries');
      } else f.push('sha256');
    }
    if (want.type === 'symlink' && have.target !== want.target) f.push('target');
    if (f.length)
      out.push({
        kind,
        key: path,
        fields: f,
        detail: `${path}: the sandbox had ${want.type} ${want.mode} ${want.user ?? '?'}:${want.group ?? '?'}${want.sha256 ? ` sha256 ${short(want.sha256)}` : ''}; the target has ${describeFile(have)}.`,
      });
  };
  for (const i of items) {
    switch (i.kind) {
      case 'package': {
        const name = i.name;
        if (!(name in state.packages)) break;
        const have = state.packages[name] ?? null;
        const want = i.after?.version ?? null;
        if (have !== want)
          out.push({
            kind: 'package',
            key: name,
            fields: ['version'],
            detail: `package ${name}: the sandbox had ${want ?? 'it removed'}; the target has ${have ?? 'none'}.`,
          });
        break;
      }
      case 'file':
      case 'sudoers':
        fileCheck('file', i.path, i.after);
        break;
      case 'cron':
        fileCheck('file', i.path, i.after, i.entries);
        break;
      case 'unit':
        fileCheck('file', i.path, i.after);
        break;
      case 'unit-state': {
        const u = state.units[i.unit];
        if (!u) break;
        const enabled = u.enabled === 'enabled' || u.enabled === 'enabled-runtime' || u.enabled === 'alias';
        const masked = u.enabled === 'masked' || u.enabled === 'masked-runtime';
        const ok =
          i.change === 'enabled'
            ? enabled
            : i.change === 'disabled'
              ? !enabled
              : i.change === 'masked'
                ? masked
                : !masked;
        if (!ok)
          out.push({
            kind: 'unit',
            key: i.unit,
            fields: ['enabled'],
            detail: `unit ${i.unit} should be ${i.change}; the target says ${u.enabled || 'unknown'}.`,
          });
        break;
      }
      case 'user': {
        if (!(i.name in state.users)) break;
        const have = state.users[i.name] ?? null;
        if (!i.after) {
          if (have)
            out.push({
              kind: 'user',
              key: i.name,
              fields: ['exists'],
              detail: `user ${i.name} should be gone.`,
            });
          break;
        }
        if (!have) {
          out.push({
            kind: 'user',
            key: i.name,
            fields: ['exists'],
            detail: `user ${i.name} is missing on the target.`,
          });
          break;
        }
        const f: string[] = [];
        if (have.shell !== i.after.shell) f.push('shell');
        if (have.home !== i.after.home) f.push('home');
        if (have.gecos !== i.after.gecos) f.push('gecos');
        if ([...have.groups].sort().join(',') !== [...i.after.groups].sort().join(',')) f.push('groups');
        if (i.after.password && have.password !== i.after.password) f.push('password');
        if (f.length)
          out.push({
            kind: 'user',
            key: i.name,
            fields: f,
            detail: `user ${i.name} differs from the sandbox in ${f.join(', ')}.`,
          });
        break;
      }
      case 'group': {
        if (!(i.name in state.groups)) break;
        const have = state.groups[i.name] ?? null;
        if (!i.after !== !have)
          out.push({
            kind: 'group',
            key: i.name,
            fields: ['exists'],
            detail: i.after ? `group ${i.name} is missing on the target.` : `group ${i.name} should be gone.`,
          });
        else if (
          i.after &&
          have &&
          [...have.members].sort().join(',') !== [...i.after.members].sort().join(',')
        )
          out.push({
            kind: 'group',
            key: i.name,
            fields: ['members'],
            detail: `group ${i.name}: members ${have.members.join(',') || '(none)'}, the sandbox had ${i.after.members.join(',') || '(none)'}.`,
          });
        break;
      }
      case 'sysctl': {
        if (!(i.name in state.sysctl)) break;
        const have = state.sysctl[i.name] ?? null;
        const want = i.after === null ? null : i.after.split(/\s+/).join(' ');
        if (want !== null && have !== want)
          out.push({
            kind: 'sysctl',
            key: i.name,
            fields: ['value'],
            detail: `sysctl ${i.name}: the sandbox had ${want}; the target has ${have ?? 'none'}.`,
          });
        break;
      }
      case 'kernel-module':
        if (i.change === 'added' && i.file in state.files && !state.files[i.file])
          out.push({
            kind: 'file',
            key: i.file,
            fields: ['exists'],
            detail: `${i.file} (loads ${i.name} at boot) is missing on the target.`,
          });
        break;
    }
  }
  return out;
}
