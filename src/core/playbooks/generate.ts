/**
 * Generation: from the typed items of a sandbox's diff to tasks an Ansible engineer would write,
 * merged with the tasks already written (by the agent or a person) that cover the same change.
 *
 *  packages   → ansible.builtin.apt (dnf for rpm), every version pinned as in the sandbox; when the
 *               target lacks python3-apt (which the apt module would install by itself, changing the
 *               system), apt-get through ansible.builtin.command with changes read from its output
 *  groups     → ansible.builtin.group (gid pinned), users → ansible.builtin.user (uid, groups, shell,
 *               home; a password hash becomes a variable), sudoers → copy validated by visudo
 *  files      → directories, then copy (inline content for small text, otherwise a file shipped
 *               under files/), symlinks, metadata changes, deletions (state: absent), with owner,
 *               group and a quoted mode; a config file of a running service notifies its restart
 *  units      → the unit file, then ansible.builtin.systemd (daemon_reload, enabled, state)
 *  cron       → ansible.builtin.cron entries (cron.d and user crontabs), copy for cron scripts
 *  sysctl and kernel modules → lineinfile in their file, applied by restarting systemd-sysctl or
 *               systemd-modules-load (ansible.posix.sysctl is not part of ansible-core)
 *
 * Every string that comes from the sandbox and contains Jinja delimiters is tagged !unsafe (or, for
 * file content, shipped as a file), so nothing the agent put on the disk is ever evaluated. Secrets
 * become variables (secrets.ts). Items a person excluded are left out, and so are written tasks
 * that only cover excluded items.
 */
import { isMap, isScalar, isSeq, Scalar, YAMLMap, YAMLSeq, type Document, type Node } from 'yaml';
import type { Diff, DiffItem } from '../../shared/contract/diff.ts';
import type { GenerationReport, SecretVar } from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import { PlaybookDoc, shortModule, type TaskView } from './model.ts';
import { taskFingerprint } from './revisions.ts';
import { SECRETS_VARS_FILE, hasDelimiters } from './safety.ts';
import { secretsIn, VarNames, type HeldSecret } from './secrets.ts';
import { keyName, newDocument, parseYaml, renderYaml } from './yaml.ts';

/** What generation asks of the sandbox (implemented by the service through SSH, checked by hash). */
export interface SandboxFacts {
  /** The file's bytes now; must hash to `sha256` (the diff read it on the host) or this throws. */
  readFile(path: string, sha256: string): Promise<Buffer>;
  /** python3-apt is installed (ansible.builtin.apt would otherwise install it). */
  pythonApt(): Promise<boolean>;
  /** For each unit: whether a unit file exists and whether it is active. */
  units(names: string[]): Promise<Record<string, { exists: boolean; active: boolean }>>;
  /** The .service units each package ships. */
  packageServices(packages: string[]): Promise<Record<string, string[]>>;
  /** For each path: the package dpkg says owns it, and whether its content matches dpkg's checksum. */
  packaged(paths: string[]): Promise<Record<string, { package: string; matches: boolean }>>;
  /** Whether each command is on the sandbox's PATH (the cron module needs crontab). */
  commands(names: string[]): Promise<Record<string, boolean>>;
  /** The shadow password field of a user (a hash), or null. */
  shadowHash(user: string): Promise<string | null>;
}

export interface PreviousRevision {
  yaml: string;
  files: ReadonlyMap<string, Buffer>;
  /** Fingerprints of the tasks Fluid generated in that revision. */
  generated: ReadonlySet<string>;
}

export interface GenerateInput {
  diff: Diff;
  sandboxName: string;
  facts: SandboxFacts;
  previous: PreviousRevision | null;
  /** Inline `content:` up to this size; larger text is shipped under files/. Default 4 KiB. */
  inlineMax?: number;
}

export interface Generated {
  yaml: string;
  files: Map<string, Buffer>;
  secrets: HeldSecret[];
  generatedTasks: string[];
  report: Omit<GenerationReport, 'sandboxId' | 'diffId' | 'diffSha256'>;
}

/** Marks a string that must never be templated (rendered with the !unsafe tag). */
export class Unsafe {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
}
/** A string from the sandbox: plain when harmless, !unsafe when it contains Jinja delimiters. */
export const lit = (s: string): string | Unsafe => (hasDelimiters(s) ? new Unsafe(s) : s);
/** Text for a task name (names are templated): delimiters defused, kept readable. */
export const label = (s: string): string => s.replace(/\{([{%#])/g, '{ $1').replace(/([}%#])\}/g, '$1 }');

type Obj = Record<string, unknown>;

interface Planned {
  /** Sort key: section rank, then a sub-rank, then the item key. */
  rank: [number, number, string];
  task: Obj;
  covers: string[];
}

interface Handler {
  name: string;
  task: Obj;
}

const RANK = {
  packages: 0,
  packagesRemoved: 1,
  groups: 2,
  users: 3,
  usersRemoved: 4,
  groupsRemoved: 5,
  sudoers: 6,
  dirs: 7,
  files: 8,
  deletions: 9,
  units: 10,
  services: 11,
  cron: 12,
  sysctl: 13,
  modules: 14,
  written: 15,
};

const INLINE_MAX = 4096;
const LINE_MAX = 150;

function quoteMode(m: string): string {
  return /^[0-7]{4}$/.test(m) ? m : `0${m}`.slice(-4);
}

const owner = (m: { user: string | null; uid: number }) => (m.user !== null ? lit(m.user) : String(m.uid));
const groupOf = (m: { group: string | null; gid: number }) =>
  m.group !== null ? lit(m.group) : String(m.gid);

function unitOf(name: string): string {
  return /\.[a-z]+$/.test(name) ? name : `${name}.service`;
}

/** Whether text can go inline as `content:` (readable, and what yamllint accepts). */
function inlineable(b: Buffer, text: string | null, max: number): boolean {
  if (text === null || b.length > max) return false;
  if (hasDelimiters(text) || text.includes('\r')) return false;
  return text.split('\n').every((l) => l.length <= LINE_MAX && !/[ \t]$/.test(l));
}

function bundleName(path: string, sha256: string): string {
  const rel = path.replace(/^\/+/, '');
  const ok = rel.split('/').every((c) => /^[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]{0,127}$/.test(c));
  return ok && rel.split('/').length < 32 ? `files/${rel}` : `files/by-sha256/${sha256}`;
}

// ---- cron -------------------------------------------------------------------------------------------

interface CronEntry {
  env?: { name: string; value: string };
  special?: string;
  minute?: string;
  hour?: string;
  day?: string;
  month?: string;
  weekday?: string;
  user?: string;
  job?: string;
}

/** A cron line as ansible.builtin.cron expresses it, or null when it cannot. */
export function parseCronLine(line: string, systemFile: boolean): CronEntry | null {
  const env = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
  if (env) return { env: { name: env[1]!, value: env[2]! } };
  const special = /^@(reboot|yearly|annually|monthly|weekly|daily|hourly)\s+(.*)$/.exec(line);
  const parts = special ? special[2]!.split(/\s+/) : line.split(/\s+/);
  const fields = special ? [] : parts.splice(0, 5);
  if (!special && fields.length < 5) return null;
  let user: string | undefined;
  if (systemFile) {
    user = parts.shift();
    if (!user) return null;
  }
  const rest = special
    ? special[2]!
        .trim()
        .split(/\s+/)
        .slice(systemFile ? 1 : 0)
        .join(' ')
    : null;
  const job =
    rest ??
    line
      .trim()
      .split(/\s+/)
      .slice(5 + (systemFile ? 1 : 0))
      .join(' ');
  if (!job) return null;
  // The cron module writes the job as given; a job with a newline or a % cannot be written back as is.
  if (special) return { special: special[1] === 'annually' ? 'annually' : special[1]!, user, job };
  const [minute, hour, day, month, weekday] = fields as [string, string, string, string, string];
  return { minute, hour, day, month, weekday, user, job };
}

// ---- the generator -------------------------------------------------------------------------------

export async function generate(input: GenerateInput): Promise<Generated> {
  const { diff, facts } = input;
  const excluded = new Set(diff.excluded);
  const items = diff.items.filter((i) => !excluded.has(i.id));
  const byId = new Map(diff.items.map((i) => [i.id, i]));
  const planned: Planned[] = [];
  const handlers = new Map<string, Handler>();
  const files = new Map<string, Buffer>();
  const secrets: HeldSecret[] = [];
  const names = new VarNames();
  const notes: string[] = [];
  const uncovered: GenerationReport['uncovered'] = [];
  const ref = (i: DiffItem) => ({ id: i.id, kind: i.kind, key: i.key });

  // Written tasks of the previous revision (not Fluid's own, unedited), and what they cover.
  const previous = input.previous ? PlaybookDoc.parse(input.previous.yaml) : null;
  const written: Array<{ view: TaskView; node: Node; covers: string[] }> = [];
  const writtenHandlers: Node[] = [];
  if (previous) {
    const seq = previous.section('tasks', 0);
    for (const [i, t] of previous.list('tasks', 0).entries()) {
      const node = seq!.items[i] as Node;
      if (input.previous!.generated.has(taskFingerprint(node.toJSON()))) continue;
      written.push({ view: t, node, covers: coverage(t, diff.items) });
    }
    const hseq = previous.section('handlers', 0);
    for (const i of previous.list('handlers', 0).keys()) {
      const node = hseq!.items[i] as Node;
      if (input.previous!.generated.has(taskFingerprint(node.toJSON()))) continue;
      writtenHandlers.push(node);
    }
  }
  const writtenReport: GenerationReport['written'] = [];
  const coveredByWritten = new Map<string, string>();
  const keptWritten: Array<{ node: Node; covers: string[]; name: string }> = [];
  for (const w of written) {
    const name = w.view.name ?? `task ${w.view.index}`;
    if (w.covers.length && w.covers.every((id) => excluded.has(id))) {
      writtenReport.push({
        task: name,
        covers: w.covers,
        kept: false,
        why: 'it only covers changes a person excluded',
      });
      continue;
    }
    const live = w.covers.filter((id) => !excluded.has(id));
    for (const id of live) if (!coveredByWritten.has(id)) coveredByWritten.set(id, name);
    keptWritten.push({ node: w.node, covers: live, name });
    writtenReport.push({
      task: name,
      covers: live,
      kept: true,
      why: live.length
        ? 'it covers changes of the diff; Fluid generates no task for those'
        : 'it covers no change Fluid found; kept as written (verification checks what it does)',
    });
  }
  const mine = (i: DiffItem) => !coveredByWritten.has(i.id);

  // Facts from the sandbox, asked for once.
  const pkgs = items.filter((i): i is Extract<DiffItem, { kind: 'package' }> => i.kind === 'package');
  const installs = pkgs.filter((p) => p.change !== 'removed' && mine(p));
  const removals = pkgs.filter((p) => p.change === 'removed' && mine(p));
  const unitItems = items.filter((i): i is Extract<DiffItem, { kind: 'unit' }> => i.kind === 'unit');
  const stateItems = items.filter(
    (i): i is Extract<DiffItem, { kind: 'unit-state' }> => i.kind === 'unit-state',
  );
  const fileLike = items.filter(
    (i): i is Extract<DiffItem, { kind: 'file' | 'sudoers' | 'cron' }> =>
      i.kind === 'file' || i.kind === 'sudoers' || i.kind === 'cron',
  );
  // What installing the packages itself put on the disk is the package task's doing: files dpkg owns
  // that still match its checksums, the init script links update-rc.d makes, and the state
  // directories of /var named after a package. (A wrong call here cannot pass verification: the
  // replay would lack the item and the re-diff names it.)
  const newPackages = new Set(installs.map((p) => p.name));
  const byPackage = new Map<string, string>();
  if (newPackages.size) {
    const added = fileLike.filter((f) => f.kind === 'file' && f.change === 'added' && mine(f));
    const initScripts = added
      .map((f) => /^\/etc\/rc[0-6S]\.d\/[SK][0-9]{2}(.+)$/.exec(f.path)?.[1])
      .filter((n): n is string => !!n)
      .map((n) => `/etc/init.d/${n}`);
    const owned = await facts.packaged([...new Set([...added.map((f) => f.path), ...initScripts])]);
    const ours = (p: string | undefined) => !!p && newPackages.has(p.replace(/:[a-z0-9]+$/, ''));
    for (const f of added) {
      const o = owned[f.path];
      const rc = /^\/etc\/rc[0-6S]\.d\/[SK][0-9]{2}(.+)$/.exec(f.path)?.[1];
      const varDir = /^\/var\/(?:lib|cache|spool|log)\/([^/]+)(?:\/|$)/.exec(f.path)?.[1];
      if (o && ours(o.package) && o.matches) byPackage.set(f.id, o.package);
      else if (rc && f.after?.type === 'symlink' && ours(owned[`/etc/init.d/${rc}`]?.package))
        byPackage.set(f.id, owned[`/etc/init.d/${rc}`]!.package);
      else if (varDir && f.after?.type === 'dir' && newPackages.has(varDir)) byPackage.set(f.id, varDir);
    }
  }
  const changedConfigs = fileLike.filter(
    (f) =>
      f.kind === 'file' && f.change !== 'deleted' && f.path.startsWith('/etc/') && f.after?.type === 'file',
  );
  const pkgServices = await facts.packageServices([
    ...new Set(changedConfigs.map((f) => f.package).filter((p): p is string => !!p)),
  ]);
  const candidateUnits = new Set<string>([...unitItems.map((u) => u.unit), ...stateItems.map((s) => s.unit)]);
  const configUnits = new Map<string, string[]>();
  for (const f of changedConfigs) {
    const guesses = new Set<string>(pkgServices[f.package ?? ''] ?? []);
    const top = /^\/etc\/([^/]+)\//.exec(f.path)?.[1];
    if (top) guesses.add(`${top.replace(/\.d$/, '')}.service`);
    configUnits.set(f.id, [...guesses]);
    for (const g of guesses) candidateUnits.add(g);
  }
  const unitFacts = candidateUnits.size ? await facts.units([...candidateUnits]) : {};

  // ---- packages --------------------------------------------------------------------------------
  if (installs.length) {
    const dpkg = installs.filter((p) => p.manager === 'dpkg');
    const rpm = installs.filter((p) => p.manager === 'rpm');
    const spec = (p: (typeof installs)[number]) =>
      p.manager === 'dpkg' ? `${p.name}=${p.after!.version}` : `${p.name}-${p.after!.version}`;
    const title = (list: typeof installs) => {
      const top = list.slice(0, 3).map((p) => p.name);
      return `Install ${top.join(', ')}${list.length > 3 ? ` and ${list.length - 3} more package${list.length - 3 === 1 ? '' : 's'}` : ''} (versions pinned as in the sandbox)`;
    };
    if (dpkg.length) {
      const downgrade = dpkg.some((p) => p.change === 'downgraded');
      if (await facts.pythonApt()) {
        planned.push({
          rank: [RANK.packages, 0, ''],
          task: {
            name: title(dpkg),
            'ansible.builtin.apt': {
              name: dpkg.map((p) => lit(spec(p))),
              state: 'present',
              update_cache: true,
              cache_valid_time: 86400,
              install_recommends: false,
              ...(downgrade ? { allow_downgrade: true } : {}),
            },
          },
          covers: [...dpkg.map((p) => p.id), ...byPackage.keys()],
        });
      } else {
        notes.push(
          "The sandbox has no python3-apt, which ansible.builtin.apt needs and would install by itself (a change the agent did not make): packages are installed with apt-get through ansible.builtin.command, and the task reads from apt-get's own summary whether anything changed.",
        );
        planned.push({
          rank: [RANK.packages, 0, ''],
          task: {
            name: 'Refresh the package lists',
            '#noqa': 'command-instead-of-module',
            'ansible.builtin.command': { argv: ['apt-get', 'update'] },
            changed_when: false,
          },
          covers: [],
        });
        planned.push({
          rank: [RANK.packages, 1, ''],
          task: {
            name: title(dpkg),
            '#noqa': 'command-instead-of-module',
            'ansible.builtin.command': {
              argv: [
                'apt-get',
                'install',
                '--yes',
                '--no-install-recommends',
                ...(downgrade ? ['--allow-downgrades'] : []),
                ...dpkg.map((p) => lit(spec(p))),
              ],
            },
            environment: { DEBIAN_FRONTEND: 'noninteractive' },
            register: 'apt_get_install',
            changed_when:
              "apt_get_install.stdout is not search('^0 upgraded, 0 newly installed, (0 downgraded, )?0 to remove', multiline=True)",
          },
          covers: [...dpkg.map((p) => p.id), ...byPackage.keys()],
        });
      }
    }
    if (rpm.length)
      planned.push({
        rank: [RANK.packages, 2, ''],
        task: {
          name: title(rpm),
          'ansible.builtin.dnf': {
            name: rpm.map((p) => lit(spec(p))),
            state: 'present',
            allow_downgrade: rpm.some((p) => p.change === 'downgraded') || undefined,
          },
        },
        covers: rpm.map((p) => p.id),
      });
  }
  if (removals.length) {
    const dpkg = removals.filter((p) => p.manager === 'dpkg');
    const rpm = removals.filter((p) => p.manager === 'rpm');
    const aptOk = dpkg.length ? await facts.pythonApt() : false;
    if (dpkg.length)
      planned.push({
        rank: [RANK.packagesRemoved, 0, ''],
        task: aptOk
          ? {
              name: `Remove ${dpkg.map((p) => p.name).join(', ')}`,
              'ansible.builtin.apt': { name: dpkg.map((p) => lit(p.name)), state: 'absent' },
            }
          : {
              name: `Remove ${dpkg.map((p) => p.name).join(', ')}`,
              '#noqa': 'command-instead-of-module',
              'ansible.builtin.command': {
                argv: ['apt-get', 'remove', '--yes', ...dpkg.map((p) => lit(p.name))],
              },
              environment: { DEBIAN_FRONTEND: 'noninteractive' },
              register: 'apt_get_remove',
              changed_when:
                "apt_get_remove.stdout is not search('^0 upgraded, 0 newly installed, (0 downgraded, )?0 to remove', multiline=True)",
            },
        covers: dpkg.map((p) => p.id),
      });
    if (rpm.length)
      planned.push({
        rank: [RANK.packagesRemoved, 1, ''],
        task: {
          name: `Remove ${rpm.map((p) => p.name).join(', ')}`,
          'ansible.builtin.dnf': { name: rpm.map((p) => lit(p.name)), state: 'absent' },
        },
        covers: rpm.map((p) => p.id),
      });
  }

  // ---- groups and users ----------------------------------------------------------------------------
  const userItems = items.filter((i): i is Extract<DiffItem, { kind: 'user' }> => i.kind === 'user');
  const groupItems = items.filter((i): i is Extract<DiffItem, { kind: 'group' }> => i.kind === 'group');
  const usersInDiff = new Set(userItems.map((u) => u.name));
  const newHomes = new Map<string, string>(); // home path -> user
  for (const u of userItems) if (u.change === 'added' && u.after) newHomes.set(u.after.home, u.name);
  const homeItems = new Map<string, DiffItem>();
  for (const f of items)
    if (f.kind === 'file' && f.change === 'added' && f.after?.type === 'dir' && newHomes.has(f.path))
      homeItems.set(newHomes.get(f.path)!, f);

  for (const g of groupItems) {
    if (!mine(g)) continue;
    if (g.change === 'removed') {
      planned.push({
        rank: [RANK.groupsRemoved, 0, g.name],
        task: {
          name: `Remove group ${label(g.name)}`,
          'ansible.builtin.group': { name: lit(g.name), state: 'absent' },
        },
        covers: [g.id],
      });
      continue;
    }
    const onlyMembers = g.change === 'modified' && g.fields.every((f) => f === 'members');
    if (onlyMembers) {
      // Membership is set on the users: the members that joined are user tasks below.
      const joined = g.after!.members.filter((m) => !g.before!.members.includes(m));
      const left = g.before!.members.filter((m) => !g.after!.members.includes(m));
      for (const m of joined.filter((x) => !usersInDiff.has(x)))
        planned.push({
          rank: [RANK.users, 1, `${m}:${g.name}`],
          task: {
            name: `Add ${label(m)} to group ${label(g.name)}`,
            'ansible.builtin.user': { name: lit(m), groups: [lit(g.name)], append: true },
          },
          covers: [g.id],
        });
      if (left.some((x) => !usersInDiff.has(x))) {
        uncovered.push({
          ...ref(g),
          reason: `members left the group (${left.join(', ')}); ansible.builtin.user cannot remove one group without listing all of a user's groups`,
        });
        continue;
      }
      if (
        joined.every((x) => usersInDiff.has(x)) &&
        !joined.filter((x) => !usersInDiff.has(x)).length &&
        joined.length
      )
        planned.push({ rank: [RANK.users, 2, g.name], task: null as unknown as Obj, covers: [g.id] }); // covered by the user tasks
      continue;
    }
    planned.push({
      rank: [RANK.groups, 0, g.name],
      task: {
        name: `${g.change === 'added' ? 'Create' : 'Update'} group ${label(g.name)}`,
        'ansible.builtin.group': { name: lit(g.name), gid: g.after!.gid, state: 'present' },
      },
      covers: [g.id],
    });
  }

  for (const u of userItems) {
    if (!mine(u)) continue;
    if (u.change === 'removed') {
      planned.push({
        rank: [RANK.usersRemoved, 0, u.name],
        task: {
          name: `Remove user ${label(u.name)}`,
          'ansible.builtin.user': { name: lit(u.name), state: 'absent' },
        },
        covers: [u.id],
      });
      continue;
    }
    const a = u.after!;
    const args: Obj = {
      name: lit(u.name),
      uid: a.uid,
      group: a.group !== null ? lit(a.group) : a.gid,
      groups: a.groups.map(lit),
      append: false,
      comment: a.gecos ? lit(a.gecos) : undefined,
      home: lit(a.home),
      shell: lit(a.shell),
    };
    if (!a.groups.length) delete args.groups;
    const covers = [u.id];
    if (u.change === 'added') {
      const home = homeItems.get(u.name);
      args.create_home = !!home;
      if (home) covers.push(home.id);
    }
    let noLog = false;
    if (a.password === 'set' && (u.passwordChanged || u.change === 'added')) {
      const hash = await facts.shadowHash(u.name);
      if (hash) {
        const name = names.take(`${u.name}_password_hash`);
        secrets.push({
          name,
          description: `the password hash of user ${u.name} (the shadow file's second field; make one with: mkpasswd -m sha-512)`,
          held: true,
          value: hash,
        });
        args.password = `{{ ${name} }}`;
        args.update_password = 'always';
        noLog = true;
      } else uncovered.push({ ...ref(u), reason: 'the password hash could not be read from the sandbox' });
    } else if (a.password === 'disabled' && u.change === 'added') args.password = '*';
    else if (a.password === 'empty')
      notes.push(
        `User ${u.name} has an empty password in the sandbox; the playbook leaves it locked instead.`,
      );
    const fields = new Set(u.fields);
    if (u.change === 'added' || fields.has('maxDays'))
      if (a.maxDays && a.maxDays !== '99999') args.password_expire_max = Number(a.maxDays);
    if (u.change === 'added' || fields.has('minDays'))
      if (a.minDays && a.minDays !== '0') args.password_expire_min = Number(a.minDays);
    if (u.change === 'added' || fields.has('expires'))
      if (a.expires) args.expires = Number(a.expires) * 86400;
    for (const f of ['warnDays', 'inactiveDays'] as const)
      if (u.change === 'added' ? a[f] && a[f] !== (f === 'warnDays' ? '7' : '') : fields.has(f))
        notes.push(
          `User ${u.name}: ${f} (${a[f]}) is not set by ansible.builtin.user in ansible-core 2.14; set it by hand if it matters.`,
        );
    planned.push({
      rank: [RANK.users, 0, u.name],
      task: {
        name: `${u.change === 'added' ? 'Create' : 'Update'} user ${label(u.name)}`,
        'ansible.builtin.user': clean(args),
        ...(noLog ? { no_log: true } : {}),
      },
      covers,
    });
  }

  // ---- files, sudoers, cron scripts, units ----------------------------------------------------
  const coveredHomes = new Set([...homeItems.values()].map((h) => h.id));
  const cronEntriesPlanned = new Set<string>();
  // ansible.builtin.cron needs the crontab command on the target; without it, cron files are copied.
  let crontab: boolean | null = null;
  const hasCrontab = async () => {
    if (crontab === null) {
      crontab = !!(await facts.commands(['crontab'])).crontab;
      if (!crontab)
        notes.push(
          'The sandbox has no crontab command (the cron package), which ansible.builtin.cron needs: cron files are copied as they are.',
        );
    }
    return crontab;
  };
  const restartHandler = (unit: string) => {
    const name = `Restart ${unit}`;
    if (!handlers.has(name))
      handlers.set(name, {
        name,
        task: {
          name,
          'ansible.builtin.systemd': { name: lit(unit), state: 'restarted', daemon_reload: true },
        },
      });
    return name;
  };

  const copyTask = async (
    f: Extract<DiffItem, { kind: 'file' | 'sudoers' | 'cron' | 'unit' }>,
    extra: Obj = {},
    what = 'Configure',
  ): Promise<Obj | null> => {
    const m = f.after!;
    if (!m.sha256) {
      uncovered.push({ ...ref(f), reason: 'the diff has no content hash for it' });
      return null;
    }
    const bytes = await facts.readFile(f.path, m.sha256);
    const text = isTextBytes(bytes) ? bytes.toString('utf8') : null;
    const meta: Obj = { owner: owner(m), group: groupOf(m), mode: quoteMode(m.mode) };
    const base: Obj = { dest: lit(f.path) };
    if (f.sensitive) {
      if (text === null) {
        uncovered.push({
          ...ref(f),
          reason: 'a sensitive binary file: Fluid does not put it in a playbook; copy it by hand',
        });
        return null;
      }
      const name = names.take(`${f.path.split('/').pop()}_content`);
      secrets.push({
        name,
        description: `the whole content of ${f.path} (a sensitive file)`,
        held: true,
        value: text,
      });
      return {
        name: `${what} ${label(f.path)}`,
        'ansible.builtin.copy': { ...base, content: `{{ ${name} }}`, ...meta, ...extra },
        no_log: true,
      };
    }
    const found = text !== null ? secretsIn(text) : [];
    if (text !== null && found.length) {
      // Each secret becomes a variable; the rest stays literal (in raw blocks when it has delimiters).
      let out = '';
      let at = 0;
      const seen = new Map<string, string>();
      for (const s of found) {
        out += rawJinja(text.slice(at, s.start));
        let name = seen.get(s.value);
        if (!name) {
          name = names.take(`${f.path.split('/').pop()}_${s.kind}`);
          seen.set(s.value, name);
          const line = text.slice(0, s.start).split('\n').length;
          secrets.push({
            name,
            description: `the ${s.kind.replace('-', ' ')} in ${f.path} (line ${line})`,
            held: true,
            value: s.value,
          });
        }
        out += `{{ ${name} }}`;
        at = s.end;
      }
      out += rawJinja(text.slice(at));
      return {
        name: `${what} ${label(f.path)}`,
        'ansible.builtin.copy': { ...base, content: out, ...meta, ...extra },
        no_log: true,
      };
    }
    if (inlineable(bytes, text, input.inlineMax ?? INLINE_MAX))
      return {
        name: `${what} ${label(f.path)}`,
        'ansible.builtin.copy': { ...base, content: text, ...meta, ...extra },
      };
    const shipped = bundleName(f.path, m.sha256);
    files.set(shipped, bytes);
    return {
      name: `${what} ${label(f.path)}`,
      'ansible.builtin.copy': { src: shipped, ...base, ...meta, ...extra },
    };
  };

  for (const f of fileLike) {
    if (!mine(f) || coveredHomes.has(f.id) || byPackage.has(f.id)) continue;
    const key = f.path;
    if (f.kind === 'cron' && f.after?.type === 'file' && (await hasCrontab())) {
      const cronTasks = cronTasksFor(f);
      if (cronTasks) {
        for (const [n, t] of cronTasks.entries())
          planned.push({ rank: [RANK.cron, n, key], task: t, covers: n === 0 ? [f.id] : [] });
        cronEntriesPlanned.add(f.id);
        continue;
      }
    }
    if (f.change === 'deleted') {
      planned.push({
        rank: [RANK.deletions, 0, invertKey(key)],
        task: {
          name: `Remove ${label(f.path)}`,
          'ansible.builtin.file': { path: lit(f.path), state: 'absent' },
        },
        covers: [f.id],
      });
      continue;
    }
    const m = f.after!;
    const typeChanged = f.change === 'modified' && f.aspects.includes('type');
    if (typeChanged)
      planned.push({
        rank: [RANK.deletions, 1, invertKey(key)],
        task: {
          name: `Remove ${label(f.path)} (it changes type)`,
          'ansible.builtin.file': { path: lit(f.path), state: 'absent' },
        },
        covers: [],
      });
    const rank = f.kind === 'sudoers' ? RANK.sudoers : f.kind === 'cron' ? RANK.cron : RANK.files;
    if (m.type === 'dir') {
      planned.push({
        rank: [RANK.dirs, 0, key],
        task: {
          name: `${f.change === 'added' ? 'Create' : 'Set'} directory ${label(f.path)}`,
          'ansible.builtin.file': {
            path: lit(f.path),
            state: 'directory',
            owner: owner(m),
            group: groupOf(m),
            mode: quoteMode(m.mode),
          },
        },
        covers: [f.id],
      });
    } else if (m.type === 'symlink') {
      planned.push({
        rank: [rank, 1, key],
        task: {
          name: `Link ${label(f.path)} to ${label(m.target ?? '')}`,
          'ansible.builtin.file': {
            src: lit(m.target ?? ''),
            dest: lit(f.path),
            state: 'link',
            owner: owner(m),
            group: groupOf(m),
            follow: false,
            force: typeChanged || undefined,
          },
        },
        covers: [f.id],
      });
    } else if (m.type === 'file') {
      const contentChanged = f.change === 'added' || f.aspects.includes('content') || typeChanged;
      if (!contentChanged) {
        planned.push({
          rank: [rank, 0, key],
          task: {
            name: `Set owner and mode of ${label(f.path)}`,
            'ansible.builtin.file': {
              path: lit(f.path),
              state: 'file',
              owner: owner(m),
              group: groupOf(m),
              mode: quoteMode(m.mode),
            },
          },
          covers: [f.id],
        });
        continue;
      }
      const extra: Obj = f.kind === 'sudoers' ? { validate: '/usr/sbin/visudo -cf %s' } : {};
      const t = await copyTask(
        f,
        extra,
        f.kind === 'sudoers' ? 'Install sudoers rules' : f.change === 'added' ? 'Install' : 'Configure',
      );
      if (!t) continue;
      const notify = (configUnits.get(f.id) ?? []).filter(
        (u) => unitFacts[u]?.exists && unitFacts[u]?.active,
      );
      if (notify.length) t.notify = notify.map(restartHandler);
      planned.push({ rank: [rank, 0, key], task: t, covers: [f.id] });
    } else
      uncovered.push({ ...ref(f), reason: `a ${m.type} cannot be created by a playbook task Fluid writes` });
  }

  // Unit files, then their state.
  const unitFileIds = new Map<string, string[]>();
  for (const u of unitItems) {
    if (!mine(u)) continue;
    const list = unitFileIds.get(u.unit) ?? [];
    list.push(u.id);
    unitFileIds.set(u.unit, list);
    if (u.change === 'deleted') {
      planned.push({
        rank: [RANK.units, 1, u.path],
        task: {
          name: `Remove ${label(u.path)}`,
          'ansible.builtin.file': { path: lit(u.path), state: 'absent' },
          notify: ['Reload systemd'],
        },
        covers: [u.id],
      });
      handlers.set('Reload systemd', {
        name: 'Reload systemd',
        task: { name: 'Reload systemd', 'ansible.builtin.systemd': { daemon_reload: true } },
      });
      continue;
    }
    const m = u.after!;
    if (m.type === 'symlink') {
      planned.push({
        rank: [RANK.units, 0, u.path],
        task: {
          name: `Link unit ${label(u.path)}`,
          'ansible.builtin.file': {
            src: lit(m.target ?? ''),
            dest: lit(u.path),
            state: 'link',
            follow: false,
          },
        },
        covers: [u.id],
      });
      continue;
    }
    if (m.type !== 'file') continue;
    const changed = u.change === 'modified' && (u.aspects.includes('content') || u.aspects.includes('type'));
    const t =
      u.change === 'added' || changed
        ? await copyTask(u, {}, u.dropIn ? 'Install drop-in' : 'Install unit')
        : {
            name: `Set owner and mode of ${label(u.path)}`,
            'ansible.builtin.file': {
              path: lit(u.path),
              owner: owner(m),
              group: groupOf(m),
              mode: quoteMode(m.mode),
            },
          };
    if (!t) continue;
    if (changed && unitFacts[u.unit]?.active) t.notify = [restartHandler(u.unit)];
    planned.push({ rank: [RANK.units, 0, u.path], task: t, covers: [u.id] });
  }
  const stateByUnit = new Map<string, Array<Extract<DiffItem, { kind: 'unit-state' }>>>();
  for (const s of stateItems) {
    if (!mine(s)) continue;
    const list = stateByUnit.get(s.unit) ?? [];
    list.push(s);
    stateByUnit.set(s.unit, list);
  }
  const startable = /\.(service|socket|timer|path|mount|automount|swap|target)$/;
  for (const unit of new Set([
    ...stateByUnit.keys(),
    ...[...unitFileIds.keys()].filter((u) => unitItems.some((x) => x.unit === u && x.change === 'added')),
  ])) {
    const states = stateByUnit.get(unit) ?? [];
    const args: Obj = { name: lit(unit) };
    const doing: string[] = [];
    if (states.some((s) => s.change === 'masked')) {
      args.masked = true;
      doing.push('Mask');
    } else if (states.some((s) => s.change === 'unmasked')) {
      args.masked = false;
      doing.push('Unmask');
    }
    const enabled = states.filter((s) => s.change === 'enabled').length;
    const disabled = states.filter((s) => s.change === 'disabled').length;
    if (enabled && !disabled) {
      args.enabled = true;
      doing.push('Enable');
    } else if (disabled && !enabled) {
      args.enabled = false;
      doing.push('Disable');
    }
    const fact = unitFacts[unit];
    const isNew = unitItems.some((x) => x.unit === unit && x.change === 'added' && mine(x));
    if (fact && startable.test(unit) && !/\.target$/.test(unit) && !args.masked) {
      if (fact.active && (isNew || enabled)) {
        args.state = 'started';
        doing.push('start');
      } else if (!fact.active && disabled) {
        args.state = 'stopped';
        doing.push('stop');
      }
    }
    if (unitFileIds.has(unit)) args.daemon_reload = true;
    if (!doing.length) {
      if (!unitFileIds.has(unit)) continue;
      doing.push('Reload systemd for');
    }
    const verb = doing.length > 1 ? `${doing.slice(0, -1).join(', ')} and ${doing.at(-1)}` : doing[0]!;
    planned.push({
      rank: [RANK.services, 0, unit],
      task: {
        name: `${verb[0]!.toUpperCase()}${verb.slice(1)} ${label(unit)}`,
        'ansible.builtin.systemd': args,
      },
      covers: states.map((s) => s.id),
    });
  }

  // ---- sysctl and kernel modules ----------------------------------------------------------------
  for (const s of items) {
    if (s.kind !== 'sysctl' || !mine(s)) continue;
    const keyRe = s.name.split('.').map(escapeRe).join('[./]');
    const task: Obj =
      s.after === null
        ? {
            name: `Remove the sysctl setting ${label(s.name)} from ${label(s.file)}`,
            'ansible.builtin.lineinfile': {
              path: lit(s.file),
              regexp: lit(`^\\s*-?${keyRe}\\s*=`),
              state: 'absent',
            },
          }
        : {
            name: `Set ${label(s.name)} = ${label(s.after)} in ${label(s.file)}`,
            'ansible.builtin.lineinfile': {
              path: lit(s.file),
              regexp: lit(`^\\s*-?${keyRe}\\s*=`),
              line: lit(`${s.name} = ${s.after}`),
              create: true,
              owner: 'root',
              group: 'root',
              mode: '0644',
            },
          };
    task.notify = ['Apply sysctl settings'];
    handlers.set('Apply sysctl settings', {
      name: 'Apply sysctl settings',
      task: {
        name: 'Apply sysctl settings',
        'ansible.builtin.systemd': { name: 'systemd-sysctl.service', state: 'restarted' },
      },
    });
    planned.push({ rank: [RANK.sysctl, 0, s.name], task, covers: [s.id] });
  }
  for (const k of items) {
    if (k.kind !== 'kernel-module' || !mine(k)) continue;
    const task: Obj =
      k.change === 'removed'
        ? {
            name: `Stop loading ${label(k.name)} at boot`,
            'ansible.builtin.lineinfile': {
              path: lit(k.file),
              regexp: lit(`^\\s*${escapeRe(k.name)}(\\s|$)`),
              state: 'absent',
            },
          }
        : {
            name: `Load ${label(k.name)} at boot`,
            'ansible.builtin.lineinfile': {
              path: lit(k.file),
              line: lit(k.name),
              create: true,
              owner: 'root',
              group: 'root',
              mode: '0644',
            },
            notify: ['Load kernel modules'],
          };
    if (k.change !== 'removed')
      handlers.set('Load kernel modules', {
        name: 'Load kernel modules',
        task: {
          name: 'Load kernel modules',
          'ansible.builtin.systemd': { name: 'systemd-modules-load.service', state: 'restarted' },
        },
      });
    planned.push({ rank: [RANK.modules, 0, k.name], task, covers: [k.id] });
  }

  // ---- assemble -----------------------------------------------------------------------------------
  const real = planned.filter((p) => p.task !== null);
  const covered: GenerationReport['covered'] = [];
  for (const p of planned)
    for (const id of p.covers) {
      const it = byId.get(id)!;
      covered.push({
        ...ref(it),
        by: 'generated',
        task: p.task ? String(p.task.name) : 'the user tasks (group membership)',
      });
    }
  for (const [id, task] of coveredByWritten) {
    const it = byId.get(id);
    if (it) covered.push({ ...ref(it), by: 'written', task });
  }
  const coveredIds = new Set(covered.map((c) => c.id));
  for (const it of items)
    if (!coveredIds.has(it.id) && !uncovered.some((u) => u.id === it.id))
      uncovered.push({ ...ref(it), reason: 'no task expresses this change (yet)' });

  // Written tasks go where their first covered item would have been; the others at the end.
  const slots = new Map<string, [number, number, string]>();
  for (const it of items) slots.set(it.id, defaultRank(it));
  const withWritten: Array<{ rank: [number, number, string]; node?: Node; task?: Obj }> = [
    ...real.map((p) => ({ rank: p.rank, task: p.task })),
    ...keptWritten.map((w, n) => {
      const ranks = w.covers.map((id) => slots.get(id)).filter((r): r is [number, number, string] => !!r);
      ranks.sort(cmpRank);
      return { rank: ranks[0] ?? ([RANK.written, n, ''] as [number, number, string]), node: w.node };
    }),
  ];
  withWritten.sort((a, b) => cmpRank(a.rank, b.rank));

  const doc: Document = previous ? previous.doc : newDocument([]);
  const pb = previous ?? new PlaybookDoc(doc);
  if (!previous || !pb.plays().length) {
    const fresh = PlaybookDoc.empty({
      name: `Reproduce the change made in sandbox ${label(input.sandboxName)}`,
      hosts: 'all',
      become: true,
    });
    (doc as { contents: unknown }).contents = doc.createNode(fresh.doc.toJSON());
    doc.commentBefore =
      ` Generated by Fluid from the system diff of sandbox ${label(input.sandboxName)} (diff ${diff.id.slice(0, 8)}, sha256 ${diff.sha256.slice(0, 16)}…).\n` +
      ' Review it like code: each task says what it changes. Secrets are variables read from vars/secrets.yml.';
  }
  if (!doc.commentBefore)
    doc.commentBefore =
      ` Generated by Fluid from the system diff of sandbox ${label(input.sandboxName)} (diff ${diff.id.slice(0, 8)}, sha256 ${diff.sha256.slice(0, 16)}…).\n` +
      ' Review it like code: each task says what it changes. Secrets are variables read from vars/secrets.yml.';
  const play = pb.play(0);
  const generatedFingerprints: string[] = [];
  const taskNodes: Node[] = withWritten.map((w) => {
    if (w.node) return w.node;
    const n = toNode(doc, w.task!);
    generatedFingerprints.push(taskFingerprint(n.toJSON()));
    return n;
  });
  const handlerNodes: Node[] = [...writtenHandlers];
  const writtenHandlerNames = new Set(
    writtenHandlers.map((h) => (isMap(h) ? String((h.get('name') as string) ?? '') : '')),
  );
  for (const h of handlers.values()) {
    if (writtenHandlerNames.has(h.name)) continue;
    const n = toNode(doc, h.task);
    generatedFingerprints.push(taskFingerprint(n.toJSON()));
    handlerNodes.push(n);
  }
  setSection(doc, play, 'tasks', taskNodes);
  setSection(doc, play, 'handlers', handlerNodes);
  if (secrets.length) {
    const vf = play.get('vars_files', true);
    const listed = isSeq(vf) && vf.items.some((x) => isScalar(x) && x.value === SECRETS_VARS_FILE);
    if (!listed) {
      const at = play.items.findIndex((p) => ['tasks', 'handlers', 'vars'].includes(keyName(p)));
      const pair = doc.createPair('vars_files', [SECRETS_VARS_FILE]);
      if (at >= 0) play.items.splice(at, 0, pair as (typeof play.items)[number]);
      else play.items.push(pair as (typeof play.items)[number]);
    }
  }
  // Files the kept written tasks ship (templates) come along.
  if (input.previous)
    for (const [path, content] of input.previous.files)
      if (!files.has(path) && renderYaml(doc).includes(path)) files.set(path, content);

  const yaml = renderYaml(doc);
  // The result must read back as Ansible reads it: a list of plays with the tasks just written.
  const check = parseYaml(yaml);
  if (check.errors.length)
    throw new FluidError(
      'INTERNAL',
      `The generated playbook does not parse back: ${check.errors[0]!.message}`,
    );

  const secretVars: SecretVar[] = secrets.map(({ name, description, held }) => ({ name, description, held }));
  return {
    yaml,
    files,
    secrets,
    generatedTasks: generatedFingerprints,
    report: {
      covered,
      excluded: diff.items.filter((i) => excluded.has(i.id)).map(ref),
      uncovered,
      written: writtenReport,
      secrets: secretVars,
      notes,
    },
  };
}

function cronTasksFor(f: Extract<DiffItem, { kind: 'cron' }>): Obj[] | null {
  if (f.entries.removed.length) return null;
  const system = f.user === null;
  const cronFile = /^\/etc\/cron\.d\/([^/]+)$/.exec(f.path)?.[1];
  if (system && !cronFile) return null; // /etc/crontab, cron.daily scripts: copied as files
  const out: Obj[] = [];
  for (const [n, line] of f.entries.added.entries()) {
    const e = parseCronLine(line, system);
    if (!e) return null;
    const where = system ? { cron_file: lit(cronFile!) } : { user: lit(f.user!) };
    if (e.env) {
      out.push({
        name: `Set ${label(e.env.name)} for ${system ? `cron file ${label(cronFile!)}` : `the crontab of ${label(f.user!)}`}`,
        'ansible.builtin.cron': {
          name: lit(e.env.name),
          env: true,
          job: lit(e.env.value),
          ...where,
          ...(system ? { user: 'root' } : {}),
        },
      });
      continue;
    }
    const when = e.special ? `@${e.special}` : `${e.minute} ${e.hour} ${e.day} ${e.month} ${e.weekday}`;
    const title = `${label(e.job!.length > 60 ? e.job!.slice(0, 57) + '…' : e.job!)}`;
    out.push({
      name: `Cron: ${title} (${when}${system ? `, ${label(e.user!)}` : `, crontab of ${label(f.user!)}`})`,
      'ansible.builtin.cron': clean({
        name: lit(
          `${system ? cronFile : f.user}: ${e.job!.length > 80 ? e.job!.slice(0, 80) : e.job!} #${n + 1}`,
        ),
        ...(e.special
          ? { special_time: e.special }
          : { minute: e.minute, hour: e.hour, day: e.day, month: e.month, weekday: e.weekday }),
        job: lit(e.job!),
        ...where,
        ...(system ? { user: lit(e.user!) } : {}),
      }),
    });
  }
  return out.length ? out : null;
}

/** Which items of the diff a written task expresses. */
export function coverage(t: TaskView, items: readonly DiffItem[]): string[] {
  if (!t.module) return [];
  const m = shortModule(t.module);
  const args = (t.args && typeof t.args === 'object' ? t.args : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const list = (v: unknown): string[] =>
    Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',').map((s) => s.trim()) : [];
  const pathOf = str(args.dest) ?? str(args.path) ?? str(args.name);
  const out: string[] = [];
  const add = (pred: (i: DiffItem) => boolean) => out.push(...items.filter(pred).map((i) => i.id));
  switch (m) {
    case 'apt':
    case 'dnf':
    case 'yum':
    case 'package': {
      const names = new Set(
        list(args.name ?? args.pkg).map((n) => n.replace(/[=<>].*$/, '').replace(/-[0-9][^/]*$/, '')),
      );
      add((i) => i.kind === 'package' && names.has(i.name));
      break;
    }
    case 'copy':
    case 'template':
    case 'file':
    case 'lineinfile':
    case 'blockinfile':
    case 'replace':
      if (pathOf) {
        add(
          (i) =>
            (i.kind === 'file' || i.kind === 'unit' || i.kind === 'sudoers' || i.kind === 'cron') &&
            i.path === pathOf,
        );
        add((i) => (i.kind === 'sysctl' || i.kind === 'kernel-module') && i.file === pathOf);
      }
      break;
    case 'user':
      if (str(args.name)) add((i) => i.kind === 'user' && i.name === args.name);
      break;
    case 'group':
      if (str(args.name)) add((i) => i.kind === 'group' && i.name === args.name);
      break;
    case 'systemd':
    case 'systemd_service':
    case 'service':
      if (str(args.name)) {
        const unit = unitOf(String(args.name));
        add((i) => i.kind === 'unit-state' && i.unit === unit);
      }
      break;
    case 'cron': {
      const file = str(args.cron_file);
      if (file)
        add((i) => i.kind === 'cron' && i.path === (file.startsWith('/') ? file : `/etc/cron.d/${file}`));
      else add((i) => i.kind === 'cron' && i.user === (str(args.user) ?? 'root'));
      break;
    }
  }
  return [...new Set(out)];
}

function defaultRank(i: DiffItem): [number, number, string] {
  switch (i.kind) {
    case 'package':
      return [i.change === 'removed' ? RANK.packagesRemoved : RANK.packages, 0, ''];
    case 'group':
      return [i.change === 'removed' ? RANK.groupsRemoved : RANK.groups, 0, i.key];
    case 'user':
      return [i.change === 'removed' ? RANK.usersRemoved : RANK.users, 0, i.key];
    case 'sudoers':
      return [RANK.sudoers, 0, i.key];
    case 'file':
      return i.change === 'deleted'
        ? [RANK.deletions, 0, invertKey(i.key)]
        : [i.after?.type === 'dir' ? RANK.dirs : RANK.files, 0, i.key];
    case 'unit':
      return [RANK.units, 0, i.key];
    case 'unit-state':
      return [RANK.services, 0, i.unit];
    case 'cron':
      return [RANK.cron, 0, i.key];
    case 'sysctl':
      return [RANK.sysctl, 0, i.key];
    case 'kernel-module':
      return [RANK.modules, 0, i.key];
  }
}

function cmpRank(a: [number, number, string], b: [number, number, string]): number {
  return a[0] - b[0] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0) || a[1] - b[1];
}

/** Deletions run deepest first: invert the key so that children sort before their parents. */
function invertKey(k: string): string {
  return [...k].map((c) => String.fromCodePoint(0x10ffff - c.codePointAt(0)!)).join('');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Literal text inside a templated string: raw blocks around anything that looks like Jinja. */
function rawJinja(s: string): string {
  return hasDelimiters(s) || /[{%#]}/.test(s) ? `{% raw %}${s}{% endraw %}` : s;
}

function isTextBytes(b: Buffer): boolean {
  if (b.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

function clean(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** A YAML node for a task object, with Unsafe strings tagged !unsafe. */
function toNode(doc: Document, v: unknown): Node {
  if (v instanceof Unsafe) {
    const s = new Scalar(v.value);
    s.tag = '!unsafe';
    return s;
  }
  if (Array.isArray(v)) {
    const seq = new YAMLSeq();
    for (const x of v) seq.items.push(toNode(doc, x));
    return seq;
  }
  if (v && typeof v === 'object') {
    const map = new YAMLMap();
    let noqa: string | null = null;
    for (const [k, x] of Object.entries(v as Obj)) {
      if (k === '#noqa') noqa = String(x);
      else if (x !== undefined)
        map.items.push(doc.createPair(k, toNode(doc, x)) as (typeof map.items)[number]);
    }
    // ansible-lint reads "# noqa" on the task's first line: the name.
    const name = map.items.find((p) => keyName(p) === 'name');
    if (noqa && name && isScalar(name.value)) name.value.comment = ` noqa: ${noqa}`;
    return map;
  }
  return doc.createNode(v) as Node;
}

function setSection(doc: Document, play: YAMLMap, section: 'tasks' | 'handlers', nodes: Node[]): void {
  const existing = play.get(section, true);
  if (!nodes.length) {
    if (section === 'handlers') play.delete('handlers');
    else if (!isSeq(existing)) play.set('tasks', new YAMLSeq());
    else existing.items = [];
    return;
  }
  if (isSeq(existing)) {
    existing.items = nodes;
    existing.flow = false;
  } else {
    const seq = new YAMLSeq();
    seq.items = nodes;
    if (existing !== undefined) play.set(section, seq);
    else play.items.push(doc.createPair(section, seq) as (typeof play.items)[number]);
  }
}
