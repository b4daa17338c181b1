/**
 * What Fluid leaves on a host, and taking it away.
 *
 * Everything this installation keeps on a host lives under `<storage dir>/<installation id>/` (base
 * copies, warm templates, sandbox directories, the watchdog's expiry entries, the copy of the signed
 * audit checkpoints), plus its claims in the shared `<storage dir>/slots`. Removing a host offers to
 * delete them (the default), with their size shown first. Another host record that reaches the same
 * machine with the same storage dir shares that directory: then only what belongs to the removed
 * record (its base copies, their templates, its sandboxes' directories) goes. Other installations'
 * directories are never touched.
 *
 * `fluid doctor` reads the same listing on every registered host, read-only: base copies, templates
 * and sandbox directories of this installation that no registered host record owns, and other
 * installations' directories (each named by its installation id; the `audit-checkpoints.jsonl` in
 * one is that installation's witness copy). Hosts removed with their files kept are remembered from
 * the audit log.
 */
import type { Host, HostIdentity } from '../../shared/contract/hosts.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import { run, shq, type HostConnection } from './connection.ts';
import { readIdentity, sameLibvirt } from './identity.ts';
import type { HostService } from './service.ts';
import { hostLayout } from '../sandboxes/layout.ts';
import { slotsDir } from '../sandboxes/network.ts';

export interface HostFilesDeps {
  db: Db;
  audit: AuditLog;
  hosts: HostService;
  installation: string;
}

export interface FileItem {
  path: string;
  bytes: number;
  what: string;
}

export interface RemovalPlan {
  host: Host;
  reachable: boolean;
  error: string | null;
  /** Other host records of this installation that use the same directory on the same machine. */
  sharedWith: string[];
  files: FileItem[];
  totalBytes: number;
}

const UUIDISH = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function safeRoot(storageDir: string, installation: string): string {
  const root = hostLayout(storageDir, installation).root;
  if (!storageDir.startsWith('/') || storageDir.replace(/\/+$/, '') === '' || !UUIDISH.test(installation))
    throw new FluidError('INTERNAL', `Refusing to work on ${root}: not a Fluid installation directory.`);
  return root;
}

/** Rows of this installation's database that name files on a host record. */
function ownedBy(
  db: Db,
  hostIds: string[],
): { bases: Array<{ id: string; dir: string }>; sandboxes: string[] } {
  const q = hostIds.map(() => '?').join(',');
  if (!hostIds.length) return { bases: [], sandboxes: [] };
  const bases = db
    .prepare(`SELECT id, dir FROM bases WHERE host_id IN (${q}) AND state != 'retired'`)
    .all(...hostIds) as Array<{ id: string; dir: string }>;
  const sandboxes = (
    db
      .prepare(`SELECT id FROM sandboxes WHERE host_id IN (${q}) AND state != 'destroyed'`)
      .all(...hostIds) as Array<{
      id: string;
    }>
  ).map((r) => r.id);
  return { bases, sandboxes };
}

/** A host record's libvirt identity: from its last check, else asked now (null when it cannot be told). */
async function identityOf(hosts: HostService, h: Host): Promise<HostIdentity | null> {
  if (h.lastCheck?.identity) return h.lastCheck.identity;
  try {
    const conn = await withTimeout(hosts.connection(h.id), 10_000);
    return await readIdentity(conn, h.libvirtUri);
  } catch {
    return null;
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        t = setTimeout(() => reject(new FluidError('TIMEOUT', 'timed out')), ms);
      }),
    ]);
  } finally {
    if (t) clearTimeout(t);
  }
}

/** Sizes of paths on the host (globs expand there), one round trip: "bytes<TAB>path" per existing path. */
async function sizes(conn: HostConnection, paths: string[]): Promise<Map<string, number>> {
  if (!paths.length) return new Map();
  const out = await run(
    conn,
    `for p in ${paths.join(' ')}; do [ -e "$p" ] && du -sb -- "$p" 2>/dev/null; done; true`,
    { what: 'Measuring Fluid files', timeoutMs: 120_000 },
  );
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) m.set(line.slice(tab + 1), Number(line.slice(0, tab)) || 0);
  }
  return m;
}

/** What removing a host would delete there (nothing is changed). */
export async function removalPlan(d: HostFilesDeps, ref: string): Promise<RemovalPlan> {
  const host = d.hosts.get(ref);
  const root = safeRoot(host.storageDir, d.installation);
  let conn: HostConnection;
  let identity: HostIdentity | null;
  try {
    conn = await d.hosts.connection(host.id);
    identity = await readIdentity(conn, host.libvirtUri);
  } catch (err) {
    return {
      host,
      reachable: false,
      error: toErrorPayload(err).message,
      sharedWith: [],
      files: [],
      totalBytes: 0,
    };
  }
  const norm = (s: string) => s.replace(/\/+$/, '');
  const sharedWith: string[] = [];
  for (const other of d.hosts.list()) {
    if (other.id === host.id || norm(other.storageDir) !== norm(host.storageDir)) continue;
    const id = await identityOf(d.hosts, other);
    // Unknown counts as shared: never delete what another record might still use.
    if (!id || sameLibvirt(identity, id)) sharedWith.push(other.name);
  }
  const mine = ownedBy(d.db, [host.id]);
  let wanted: Array<{ pattern: string; what: string }>;
  if (!sharedWith.length) {
    wanted = [
      {
        pattern: shq(root),
        what: "this installation's directory (base copies, templates, sandboxes, audit checkpoint copy)",
      },
    ];
    // Address claims of this installation for sandboxes that no longer live.
    const live = new Set(
      (
        d.db.prepare("SELECT id FROM sandboxes WHERE state != 'destroyed'").all() as Array<{ id: string }>
      ).map((r) => r.id),
    );
    const claims = await run(
      conn,
      `for f in ${shq(slotsDir(host.storageDir))}/*/owner; do [ -f "$f" ] && echo "$(dirname "$f") $(cat "$f")"; done; true`,
    );
    for (const line of claims.split('\n')) {
      const [dir, owner] = line.trim().split(/\s+/);
      if (!dir || !owner) continue;
      const [inst, sandbox] = owner.split(':');
      if (inst === d.installation && (!sandbox || !live.has(sandbox)))
        wanted.push({ pattern: shq(dir), what: 'a network address claim of this installation' });
    }
  } else {
    const layout = hostLayout(host.storageDir, d.installation);
    wanted = [
      ...mine.bases.map((b) => ({ pattern: shq(b.dir), what: 'base copy' })),
      ...mine.bases.map((b) => ({
        pattern: `${shq(layout.templates)}/${shq(b.id)}-*`,
        what: 'warm template',
      })),
      ...mine.sandboxes.map((id) => ({ pattern: shq(layout.sandbox(id)), what: 'sandbox directory' })),
    ];
  }
  const measured = await sizes(
    conn,
    wanted.map((w) => w.pattern),
  );
  const files: FileItem[] = [];
  for (const [path, bytes] of measured) {
    const w =
      wanted.find((x) => x.pattern === shq(path)) ??
      wanted.find((x) => x.what === 'warm template' && path.includes('/templates/'));
    if (!path.startsWith(`${norm(host.storageDir)}/`)) continue; // never anything outside Fluid's storage dir
    files.push({ path, bytes, what: w?.what ?? 'Fluid file' });
  }
  return {
    host,
    reachable: true,
    error: null,
    sharedWith,
    files,
    totalBytes: files.reduce((n, f) => n + f.bytes, 0),
  };
}

/** Delete what the plan lists (paths re-checked to be under this installation's or the slots directory). */
export async function cleanHost(
  d: HostFilesDeps,
  plan: RemovalPlan,
  conn: HostConnection,
): Promise<{ removed: string[]; bytes: number }> {
  const root = safeRoot(plan.host.storageDir, d.installation);
  const slots = slotsDir(plan.host.storageDir);
  const paths = plan.files
    .map((f) => f.path)
    .filter((p) => p === root || p.startsWith(`${root}/`) || p.startsWith(`${slots}/`))
    .filter((p) => !p.includes('/../') && !p.endsWith('/..'));
  if (!paths.length) return { removed: [], bytes: 0 };
  await run(conn, `rm -rf -- ${paths.map(shq).join(' ')}`, {
    what: `Removing Fluid's files from ${plan.host.name}`,
    timeoutMs: 300_000,
  });
  const bytes = plan.files.filter((f) => paths.includes(f.path)).reduce((n, f) => n + f.bytes, 0);
  return { removed: paths, bytes };
}

export interface RemoveResult {
  removed: true;
  id: string;
  cleaned: { paths: string[]; bytes: number } | null;
  kept: { paths: string[]; bytes: number } | null;
  note: string | null;
}

/**
 * Forget a host (the guard refuses while it has sandboxes) and, with `clean`, delete this
 * installation's files there. An unreachable host is still forgotten; its files are said to be left.
 */
export async function removeHost(
  d: HostFilesDeps,
  ref: string,
  actor: Actor,
  opts: { clean: boolean; guard?: (hostId: string) => void },
): Promise<RemoveResult> {
  const host = d.hosts.get(ref);
  opts.guard?.(host.id);
  if (host.kind === 'local')
    throw new FluidError('CONFLICT', 'The local host is built in and cannot be removed.');
  const plan = await removalPlan(d, host.id);
  const files = { paths: plan.files.map((f) => f.path), bytes: plan.totalBytes };
  let cleaned: RemoveResult['cleaned'] = null;
  let kept: RemoveResult['kept'] = null;
  let note: string | null = null;
  // Files first, while the record (and its pinned connection) exists; a failure keeps the record,
  // so nothing is left behind unnamed.
  if (!plan.reachable) {
    note = `${host.name} could not be reached (${plan.error}); any Fluid files there were left.`;
  } else if (!opts.clean) {
    kept = files.paths.length ? files : null;
    if (kept) note = `Kept ${mib(files.bytes)} of Fluid files on ${host.name} (${host.storageDir}).`;
  } else {
    const conn = await d.hosts.connection(host.id);
    try {
      const done = await cleanHost(d, plan, conn);
      cleaned = { paths: done.removed, bytes: done.bytes };
    } catch (err) {
      throw new FluidError(
        'INTERNAL',
        `Could not remove Fluid's files from ${host.name}: ${toErrorPayload(err).message}. The host is still registered; try again, or remove it keeping its files.`,
      );
    }
    d.db.prepare("UPDATE bases SET state = 'retired' WHERE host_id = ?").run(host.id);
    if (plan.sharedWith.length)
      note = `${host.name} shares ${host.storageDir} with ${plan.sharedWith.join(', ')} (the same machine): only this record's base copies, templates and sandboxes were removed.`;
  }
  const out = d.hosts.remove(host.id, actor, opts.guard);
  d.audit.append({
    actor,
    action: 'host.clean',
    target: host.id,
    data: {
      name: host.name,
      address: host.address,
      port: host.port,
      storageDir: host.storageDir,
      clean: opts.clean,
      reachable: plan.reachable,
      cleaned,
      kept,
      sharedWith: plan.sharedWith,
      ...(note ? { note } : {}),
    },
  });
  return {
    removed: out.removed,
    id: out.id,
    cleaned,
    kept,
    note,
  };
}

export const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(bytes < 10 * 1024 ** 2 ? 1 : 0)} MiB`;

// ---- fluid doctor: Fluid files nobody owns ------------------------------------------------------

export interface FilesCheck {
  id: string;
  title: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  advice: string | null;
}

interface Listing {
  installations: Map<string, { bytes: number; checkpoints: boolean }>;
  entries: Array<{
    installation: string;
    kind: 'bases' | 'templates' | 'sandboxes';
    name: string;
    bytes: number;
  }>;
}

/** Fluid's directories under a storage dir, one round trip. */
async function listStorage(conn: HostConnection, storageDir: string): Promise<Listing> {
  const d = storageDir.replace(/\/+$/, '');
  const out = await run(
    conn,
    `d=${shq(d)}
[ -d "$d" ] || exit 0
for i in "$d"/*/; do
  [ -d "$i" ] || continue
  n=$(basename "$i")
  case "$n" in slots|bin) continue;; esac
  printf 'I\\t%s\\t%s\\t%s\\n' "$n" "$(du -sb "$i" 2>/dev/null | cut -f1)" "$([ -f "$i/audit-checkpoints.jsonl" ] && echo c)"
  for k in bases templates sandboxes; do
    for e in "$i$k"/*; do
      [ -e "$e" ] && printf 'E\\t%s\\t%s\\t%s\\t%s\\n' "$n" "$k" "$(basename "$e")" "$(du -sb "$e" 2>/dev/null | cut -f1)"
    done
  done
done
true`,
    { what: `Listing ${d}`, timeoutMs: 120_000 },
  );
  const l: Listing = { installations: new Map(), entries: [] };
  for (const line of out.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'I' && f[1])
      l.installations.set(f[1], { bytes: Number(f[2]) || 0, checkpoints: f[3] === 'c' });
    else if (f[0] === 'E' && f[1] && f[3])
      l.entries.push({
        installation: f[1],
        kind: f[2] as 'bases' | 'templates' | 'sandboxes',
        name: f[3],
        bytes: Number(f[4]) || 0,
      });
  }
  return l;
}

/**
 * For every registered machine (one per libvirt and storage dir, however many records reach it):
 * this installation's files that no host record owns, and other installations' directories. Also the
 * hosts removed with their files kept (from the audit log). Read-only.
 */
export async function hostFileChecks(d: HostFilesDeps): Promise<FilesCheck[]> {
  const checks: FilesCheck[] = [];
  const hosts = d.hosts.list();
  const groups: Array<{ hosts: Host[]; identity: HostIdentity | null }> = [];
  for (const h of hosts) {
    const id = await identityOf(d.hosts, h);
    const norm = (s: string) => s.replace(/\/+$/, '');
    const g = groups.find(
      (x) => norm(x.hosts[0]!.storageDir) === norm(h.storageDir) && id && sameLibvirt(x.identity, id),
    );
    if (g) g.hosts.push(h);
    else groups.push({ hosts: [h], identity: id });
  }
  const liveSandboxes = new Set(
    (
      d.db.prepare("SELECT id FROM sandboxes WHERE state NOT IN ('destroyed', 'failed')").all() as Array<{
        id: string;
      }>
    ).map((r) => r.id),
  );
  await Promise.all(
    groups.map(async (g) => {
      const names = g.hosts.map((h) => h.name).join(' = ');
      const host = g.hosts[0]!;
      const id = `host-files:${host.name}`;
      const title = `Fluid files on ${names} (${host.storageDir})`;
      try {
        const conn = await withTimeout(d.hosts.connection(host.id), 20_000);
        const listing = await listStorage(conn, host.storageDir);
        const owned = ownedBy(
          d.db,
          g.hosts.map((h) => h.id),
        );
        const baseIds = new Set(owned.bases.map((b) => b.id));
        const orphans = listing.entries.filter((e) => {
          if (e.installation !== d.installation) return false;
          if (e.kind === 'bases') return !baseIds.has(e.name);
          if (e.kind === 'templates') return ![...baseIds].some((b) => e.name.startsWith(`${b}-`));
          return !liveSandboxes.has(e.name);
        });
        const others = [...listing.installations].filter(([inst]) => inst !== d.installation);
        const root = `${host.storageDir.replace(/\/+$/, '')}/${d.installation}`;
        const lines: string[] = [];
        const mine = listing.installations.get(d.installation);
        lines.push(
          mine
            ? `This installation (${d.installation}): ${mib(mine.bytes)} in ${root}.`
            : `This installation keeps nothing here yet.`,
        );
        if (orphans.length)
          lines.push(
            `Not owned by any registered host record: ${orphans
              .map((o) => `${root}/${o.kind}/${o.name} (${o.kind.replace(/s$/, '')}, ${mib(o.bytes)})`)
              .join('; ')}.`,
          );
        if (others.length)
          lines.push(
            `Other installations' directories (never deleted by this one): ${others
              .map(
                ([inst, v]) =>
                  `${inst}: ${mib(v.bytes)}${v.checkpoints ? ', with its audit checkpoint copy (audit-checkpoints.jsonl)' : ''}`,
              )
              .join('; ')}.`,
          );
        checks.push({
          id,
          title,
          status: orphans.length ? 'warn' : 'pass',
          detail: lines.join(' '),
          advice: orphans.length
            ? `They belong to this installation and nothing uses them (a host record removed with its files kept, or a crash). Delete them on the host: rm -rf ${orphans.map((o) => shq(`${root}/${o.kind}/${o.name}`)).join(' ')}`
            : null,
        });
      } catch (err) {
        checks.push({
          id,
          title,
          status: 'warn',
          detail: `Could not list them: ${toErrorPayload(err).message}`,
          advice: `Check the host with \`fluid host check ${host.name}\`.`,
        });
      }
    }),
  );
  // Hosts removed with their files kept: this installation cannot reach them any more.
  const registered = new Set(hosts.map((h) => h.id));
  const keptRows = d.db
    .prepare("SELECT target, ts, data FROM audit_log WHERE action = 'host.clean' ORDER BY seq")
    .all() as Array<{ target: string; ts: string; data: string }>;
  type Cleaned = {
    name?: string;
    address?: string;
    port?: number;
    kept?: { paths: string[]; bytes: number } | null;
    reachable?: boolean;
    storageDir?: string;
    sharedWith?: string[];
  };
  const latest = new Map<string, { ts: string; data: Cleaned }>();
  for (const r of keptRows) latest.set(r.target, { ts: r.ts, data: JSON.parse(r.data) as never });
  for (const [hostId, r] of latest) {
    // A record that shared a machine with a registered one, or registered again since: its files
    // show in that machine's check.
    const again = hosts.some(
      (h) =>
        h.address === r.data.address &&
        h.port === r.data.port &&
        h.storageDir.replace(/\/+$/, '') === r.data.storageDir?.replace(/\/+$/, ''),
    );
    if (registered.has(hostId) || again || r.data.sharedWith?.length) continue;
    const left = r.data.kept?.paths.length ? r.data.kept : null;
    if (!left && r.data.reachable !== false) continue;
    checks.push({
      id: `host-files-removed:${hostId}`,
      title: `Files left on removed host ${r.data.name ?? hostId}`,
      status: 'warn',
      detail: left
        ? `Removed on ${r.ts} keeping ${mib(left.bytes)}: ${left.paths.join(', ')}.`
        : `Removed on ${r.ts} while unreachable: whatever Fluid kept in ${r.data.storageDir ?? 'its storage dir'}/${d.installation} is still there.`,
      advice:
        'Register the host again and remove it without --keep-files, or delete those paths on the machine.',
    });
  }
  return checks.sort((a, b) => a.id.localeCompare(b.id));
}
