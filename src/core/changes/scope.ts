/**
 * What a change touches on its target, for the baseline: the union of the diff's items (what the
 * verification proved the playbook changes) and what the playbook's tasks name (paths, packages,
 * units, users, groups), so a hand-written task is fingerprinted too. A task whose effect cannot be
 * named (a command without creates/removes, a path built from a variable) is listed as unscoped, and
 * the review shows it.
 *
 * Also here: the rule that keeps the production preview read-only. Check mode is what makes the
 * preview and the post-apply check harmless, and a playbook can turn it off per task or play
 * (`check_mode: false`), so a playbook that sets `check_mode` anywhere is refused.
 */
import type { Scope } from '../../shared/contract/changes.ts';
import type { DiffItem } from '../../shared/contract/diff.ts';
import { FluidError } from '../../shared/errors.ts';
import { parseYaml } from '../playbooks/yaml.ts';
import { emptyScope, normalizeScope } from '../targets/state.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** The plays of a playbook as plain values. */
export function playsOf(yaml: string): Obj[] {
  const doc = parseYaml(yaml);
  if (doc.errors.length)
    throw new FluidError('VALIDATION', `The playbook does not parse: ${doc.errors[0]!.message}`);
  const js: unknown = doc.toJS();
  return Array.isArray(js) ? js.filter(isObj) : [];
}

const TASK_LISTS = ['pre_tasks', 'tasks', 'post_tasks', 'handlers'] as const;

/** Every task (blocks opened) of every play, with where it is. */
export function tasksOf(plays: Obj[]): Array<{ task: Obj; where: string }> {
  const out: Array<{ task: Obj; where: string }> = [];
  const walk = (list: unknown, where: string) => {
    if (!Array.isArray(list)) return;
    list.forEach((t, i) => {
      if (!isObj(t)) return;
      const here = `${where} #${i + 1}${typeof t.name === 'string' ? ` "${t.name}"` : ''}`;
      if ('block' in t || 'rescue' in t || 'always' in t) {
        out.push({ task: t, where: here });
        for (const k of ['block', 'rescue', 'always']) walk(t[k], `${here} ${k}`);
      } else out.push({ task: t, where: here });
    });
  };
  plays.forEach((p, i) => {
    for (const k of TASK_LISTS) walk(p[k], `play ${i + 1} ${k}`);
  });
  return out;
}

/** Refuse a playbook that could run something for real during a check-mode run. */
export function assertCheckModeSafe(plays: Obj[]): void {
  const offenders: string[] = [];
  plays.forEach((p, i) => {
    if ('check_mode' in p) offenders.push(`play ${i + 1}`);
  });
  for (const { task, where } of tasksOf(plays)) if ('check_mode' in task) offenders.push(where);
  if (offenders.length)
    throw new FluidError(
      'VALIDATION',
      `check_mode is set on ${offenders.join(', ')}. Fluid previews a change on production in check mode, and check_mode: false would run that task for real there; remove the keyword and submit again.`,
      { offenders },
    );
}

/** Module name without its collection prefix, and its arguments. */
function moduleCall(t: Obj): { module: string; args: Obj } | null {
  for (const [k, v] of Object.entries(t)) {
    const m = /^(?:ansible\.builtin\.|ansible\.legacy\.)?([a-z_][a-z0-9_]*)$/.exec(k);
    if (!m) continue;
    if (
      [
        'name',
        'when',
        'notify',
        'register',
        'become',
        'become_user',
        'become_method',
        'tags',
        'loop',
        'vars',
        'args',
        'no_log',
        'changed_when',
        'failed_when',
        'ignore_errors',
        'listen',
        'loop_control',
        'environment',
        'diff',
        'delay',
        'retries',
        'until',
        'run_once',
        'timeout',
        'throttle',
        'async',
        'poll',
        'ignore_unreachable',
        'block',
        'rescue',
        'always',
        'check_mode',
      ].includes(m[1]!) ||
      k.startsWith('with_')
    )
      continue;
    let args: Obj = {};
    if (isObj(v)) args = v;
    else if (typeof v === 'string') {
      // free-form "key=value" arguments
      for (const part of v.split(/\s+/)) {
        const eq = part.indexOf('=');
        if (eq > 0) args[part.slice(0, eq)] = part.slice(eq + 1);
      }
    }
    if (isObj(t.args)) args = { ...t.args, ...args };
    return { module: m[1]!, args };
  }
  return null;
}

const templated = (s: string) => s.includes('{{') || s.includes('{%');

/** Values of an argument: a string, a list, or each item of a literal loop for "{{ item }}". */
function values(v: unknown, loop: unknown): { names: string[]; unresolved: boolean } {
  const raw = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  const names: string[] = [];
  let unresolved = false;
  for (const x of raw) {
    if (typeof x !== 'string') {
      unresolved = true;
      continue;
    }
    const trimmed = x.trim();
    if (
      /^\{\{\s*item\s*\}\}$/.test(trimmed) &&
      Array.isArray(loop) &&
      loop.every((l) => typeof l === 'string')
    )
      names.push(...(loop as string[]));
    else if (templated(trimmed)) unresolved = true;
    else
      names.push(
        ...trimmed
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      );
  }
  return { names, unresolved };
}

/** A package argument as the package's name ("nginx=1.22.1-9" → "nginx"). */
const packageName = (s: string) => s.replace(/[=<>].*$/, '').trim();

/** What the playbook's tasks name, and the tasks whose effect cannot be named. */
export function scopeOfPlaybook(yaml: string): { scope: Scope; unscoped: string[] } {
  const scope = emptyScope();
  const unscoped: string[] = [];
  const plays = playsOf(yaml);
  for (const { task, where } of tasksOf(plays)) {
    const call = moduleCall(task);
    if (!call) continue;
    const { module, args } = call;
    const loop = task.loop ?? task.with_items;
    const take = (key: string | string[], into: keyof Scope, map: (s: string) => string = (s) => s) => {
      const keys = Array.isArray(key) ? key : [key];
      const k = keys.find((x) => args[x] !== undefined);
      if (!k) return false;
      const { names, unresolved } = values(args[k], loop);
      scope[into].push(...names.map(map));
      if (unresolved) unscoped.push(`${where} (${module}): its ${k} comes from a variable`);
      return true;
    };
    switch (module) {
      case 'apt':
      case 'package':
      case 'dnf':
      case 'yum':
        if (!take(['name', 'pkg'], 'packages', packageName) && !args.deb)
          unscoped.push(`${where} (${module}): no package named (an upgrade of everything?)`);
        if (args.deb) unscoped.push(`${where} (${module}): installs a .deb file`);
        break;
      case 'copy':
      case 'template':
      case 'get_url':
        if (typeof args.dest === 'string' && args.dest.endsWith('/'))
          unscoped.push(`${where} (${module}): copies into the directory ${args.dest}`);
        else take('dest', 'files');
        break;
      case 'file':
        take(['path', 'dest', 'name'], 'files');
        if (args.recurse === true || args.recurse === 'yes')
          unscoped.push(`${where} (file): recurse changes everything under the path`);
        break;
      case 'lineinfile':
      case 'blockinfile':
      case 'replace':
        take(['path', 'dest', 'destfile', 'name'], 'files');
        break;
      case 'user':
        take('name', 'users');
        break;
      case 'group':
        take('name', 'groups');
        break;
      case 'systemd':
      case 'systemd_service':
      case 'service':
      case 'sysvinit':
        if (args.name !== undefined) take('name', 'units', (s) => (/\.[a-z]+$/.test(s) ? s : `${s}.service`));
        break;
      case 'cron':
        if (typeof args.cron_file === 'string' && !templated(args.cron_file))
          scope.files.push(args.cron_file.startsWith('/') ? args.cron_file : `/etc/cron.d/${args.cron_file}`);
        else {
          const user = typeof args.user === 'string' && !templated(args.user) ? args.user : 'root';
          scope.files.push(`/var/spool/cron/crontabs/${user}`);
        }
        break;
      case 'hostname':
        scope.files.push('/etc/hostname');
        break;
      case 'unarchive':
        unscoped.push(`${where} (unarchive): unpacks an archive into ${String(args.dest ?? '?')}`);
        break;
      case 'command':
      case 'shell':
      case 'expect':
        if (typeof args.creates === 'string' && !templated(args.creates)) scope.files.push(args.creates);
        else if (typeof args.removes === 'string' && !templated(args.removes)) scope.files.push(args.removes);
        else unscoped.push(`${where} (${module}): what a command changes cannot be named`);
        break;
      case 'apt_repository':
      case 'apt_key':
      case 'yum_repository':
      case 'rpm_key':
      case 'debconf':
      case 'dpkg_selections':
      case 'pip':
      case 'git':
      case 'iptables':
      case 'known_hosts':
      case 'reboot':
        unscoped.push(`${where} (${module}): not fingerprinted`);
        break;
      default:
        // read-only or control modules (debug, assert, stat, meta, set_fact, wait_for, …)
        break;
    }
  }
  return { scope, unscoped };
}

/** What the diff's items name (items a person excluded are not part of the change). */
export function scopeOfDiff(items: readonly DiffItem[], excluded: readonly string[] = []): Scope {
  const scope = emptyScope();
  const skip = new Set(excluded);
  for (const i of items) {
    if (skip.has(i.id)) continue;
    switch (i.kind) {
      case 'package':
        scope.packages.push(i.name);
        break;
      case 'file':
      case 'sudoers':
      case 'cron':
        scope.files.push(i.path);
        break;
      case 'unit':
        scope.files.push(i.path);
        scope.units.push(i.unit);
        break;
      case 'unit-state':
        scope.units.push(i.unit);
        break;
      case 'user':
        scope.users.push(i.name);
        break;
      case 'group':
        scope.groups.push(i.name);
        break;
      case 'sysctl':
        scope.sysctl.push(i.name);
        scope.files.push(i.file);
        break;
      case 'kernel-module':
        scope.files.push(i.file);
        break;
    }
  }
  return scope;
}

export function mergeScopes(...scopes: Scope[]): Scope {
  const out = emptyScope();
  for (const s of scopes) for (const k of Object.keys(out) as Array<keyof Scope>) out[k].push(...s[k]);
  return normalizeScope(out);
}
