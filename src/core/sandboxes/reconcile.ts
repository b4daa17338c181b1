/**
 * Reconcile the database with a host: everything Fluid creates there is labelled (domain metadata
 * with this installation's id, files under this installation's directory, slots with its id), so
 * after a crash Fluid can adopt what is still wanted and remove what is not — and never touch
 * anything that is not its own.
 */
import type { Host } from '../../shared/contract/hosts.ts';
import type { Actor } from '../../shared/rpc.ts';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import { listDomains, virsh } from '../hosts/virsh.ts';
import type { AuditLog } from '../store/audit.ts';
import { pidAlive } from '../store/tasks.ts';
import type { BaseStore } from './bases.ts';
import { hostLayout } from './layout.ts';
import { listSlots, releaseSlot, slotIp } from './network.ts';
import { armExpiry, disarmExpiry, entryOf, type HostExpired } from './expiry.ts';
import { LIVE_STATES, type SandboxStore } from './store.ts';

export interface ReconcileDeps {
  sandboxes: SandboxStore;
  bases: BaseStore;
  audit: AuditLog;
  installation: string;
  /** This process's task-manager instance: its in-flight work is alive by definition. */
  instance: string;
  /** Settings: how long after a sandbox's expiry the host destroys it by itself (expiry.ts). */
  expiryGraceMinutes: number;
  changed: (sandboxId: string) => void;
}

export interface ReconcileReport {
  cleaned: string[];
  adopted: string[];
}

export function ownerAlive(pid: number | null, instance: string | null, ours: string): boolean {
  if (!pid || !instance) return false;
  if (instance === ours) return true;
  return pid !== process.pid && pidAlive(pid);
}

export async function reconcileHost(
  d: ReconcileDeps,
  conn: HostConnection,
  host: Host,
  actor: Actor,
): Promise<ReconcileReport> {
  const V = (a: string) => virsh(host.libvirtUri, a);
  const layout = hostLayout(host.storageDir, d.installation);
  const cleaned: string[] = [];
  const adopted: string[] = [];
  await syncHostExpiry(d, conn, host, cleaned);
  const doms = (await listDomains(conn, host.libvirtUri)).filter(
    (x) => x.fluid && x.fluid.installation === d.installation,
  );
  const ls = async (dir: string) =>
    (await run(conn, `[ -d ${shq(dir)} ] && ls -1 ${shq(dir)} || true`))
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean);
  const [sandboxDirs, templateDirs, baseDirs, slots] = await Promise.all([
    ls(layout.sandboxes),
    ls(layout.templates),
    ls(layout.bases),
    listSlots(conn, host.storageDir, d.installation),
  ]);

  // Two registered hosts can be the same libvirt (the local machine added over SSH as well): only
  // judge what belongs to this host or to nobody; another host's sandboxes are its own business.
  const everywhere = new Map(d.sandboxes.list({ includeDestroyed: true }).map((r) => [r.id, r]));
  const foreign = (id: string) => everywhere.has(id) && everywhere.get(id)!.host_id !== host.id;
  const rows = new Map([...everywhere].filter(([, r]) => r.host_id === host.id));
  const inFlight = (id: string) => {
    const r = rows.get(id);
    return (
      !!r &&
      (r.state === 'creating' || r.state === 'starting' || r.state === 'destroying') &&
      ownerAlive(r.owner_pid, r.owner_instance, d.instance)
    );
  };
  const wanted = (id: string) => {
    const r = rows.get(id);
    if (!r) return false;
    if (inFlight(id)) return true;
    return ['running', 'stopped', 'stopping', 'starting', 'pooled'].includes(r.state);
  };

  const removeDomain = async (name: string) => {
    await conn.exec(
      `${V(`destroy ${shq(name)}`)} >/dev/null 2>&1; ${V(`undefine ${shq(name)} --nvram --snapshots-metadata`)} >/dev/null 2>&1 || ${V(`undefine ${shq(name)} --snapshots-metadata`)} >/dev/null 2>&1; true`,
    );
  };

  // Domains
  const domainOf = new Map<string, (typeof doms)[number]>();
  for (const dom of doms) {
    const id = dom.fluid!.id;
    if (dom.fluid!.kind === 'sandbox') {
      if (foreign(id)) continue;
      domainOf.set(id, dom);
      const member = rows.get(id);
      // A warm pool member stays only as it was left: paused (one that runs is no longer pristine).
      const keepMember = member?.state !== 'pooled' || dom.state === 'paused';
      if (wanted(id) && keepMember) {
        const r = rows.get(id)!;
        if (r.state === 'pooled') continue;
        if (!inFlight(id)) {
          const state = dom.running ? 'running' : 'stopped';
          if (r.state !== state) {
            d.sandboxes.update(id, { state });
            d.changed(id);
            adopted.push(`sandbox ${r.name}: ${r.state} → ${state}`);
          }
        }
        continue;
      }
      await removeDomain(dom.name);
      cleaned.push(`domain ${dom.name}`);
      const r = rows.get(id);
      if (r && LIVE_STATES.includes(r.state)) {
        const why =
          r.state === 'creating'
            ? 'Fluid stopped while this sandbox was being created'
            : r.state === 'pooled'
              ? `this warm pool member was found ${dom.state}, not paused`
              : `it was ${r.state} when its owner stopped`;
        d.sandboxes.update(id, {
          state: r.state === 'destroying' ? 'destroyed' : 'failed',
          error: JSON.stringify({ code: 'INTERNAL', message: `Reconciled: ${why}.` }),
          owner_pid: null,
          owner_instance: null,
        });
        d.changed(id);
      }
    } else if (dom.fluid!.kind === 'template') {
      let building = false;
      try {
        const b = d.bases.get(id);
        if (b.hostId !== host.id) continue;
        building = b.templateState === 'building' && ownerAlive(b.ownerPid, b.ownerInstance, d.instance);
      } catch {
        /* unknown base */
      }
      if (!building) {
        await removeDomain(dom.name);
        cleaned.push(`template domain ${dom.name}`);
      }
    }
  }

  // Rows whose VM is gone
  for (const r of rows.values()) {
    if (!LIVE_STATES.includes(r.state) || domainOf.has(r.id)) continue;
    if (inFlight(r.id)) continue;
    const why =
      r.state === 'creating'
        ? 'Fluid stopped while this sandbox was being created'
        : r.state === 'destroying'
          ? 'destroyed'
          : 'its VM disappeared from the host';
    if (r.state === 'destroying') d.sandboxes.update(r.id, { state: 'destroyed' });
    else
      d.sandboxes.update(r.id, {
        state: 'failed',
        error: JSON.stringify({ code: 'INTERNAL', message: `Reconciled: ${why}.` }),
        owner_pid: null,
        owner_instance: null,
      });
    d.changed(r.id);
    cleaned.push(`sandbox ${r.name} (${why})`);
  }

  // Files
  for (const id of sandboxDirs) {
    if (wanted(id) || foreign(id)) continue;
    await run(conn, `rm -rf ${shq(layout.sandbox(id))}`);
    cleaned.push(`files of sandbox ${id}`);
  }
  const allBases = new Map(d.bases.list().map((b) => [b.id, b]));
  const foreignBase = (id: string) => allBases.has(id) && allBases.get(id)!.hostId !== host.id;
  const bases = new Map([...allBases].filter(([, b]) => b.hostId === host.id));
  const liveBaseIds = new Set([...rows.values()].filter((r) => wanted(r.id)).map((r) => r.base_id));
  for (const name of templateDirs) {
    const baseId = name.slice(0, 36);
    if (foreignBase(baseId)) continue;
    const b = bases.get(baseId);
    const keep =
      b &&
      ((b.templateState === 'ready' && b.template?.dir === layout.template(name)) ||
        (b.templateState === 'building' && ownerAlive(b.ownerPid, b.ownerInstance, d.instance)));
    if (keep) continue;
    await run(conn, `rm -rf ${shq(layout.template(name))}`);
    if (b && b.templateState === 'building')
      d.bases.update(b.id, {
        template_state: 'failed',
        template_error: 'interrupted',
        owner_pid: null,
        owner_instance: null,
      });
    cleaned.push(`template files ${name}`);
  }
  for (const id of baseDirs) {
    if (foreignBase(id)) continue;
    const b = bases.get(id);
    const keep =
      b &&
      (b.state === 'ready' ||
        (b.state === 'building' && ownerAlive(b.ownerPid, b.ownerInstance, d.instance)) ||
        (b.state === 'retired' && liveBaseIds.has(b.id)));
    if (keep) continue;
    await run(conn, `rm -rf ${shq(layout.base(id))}`);
    if (b && b.state === 'building')
      d.bases.update(b.id, { state: 'failed', error: 'interrupted', owner_pid: null, owner_instance: null });
    cleaned.push(`base copy ${id}${b ? ` of ${b.sourceName}` : ''}`);
  }

  // Address reservations
  for (const [slot, sandboxId] of slots) {
    if (wanted(sandboxId) || foreign(sandboxId)) continue;
    if (await releaseSlot(conn, host.storageDir, slot, { installation: d.installation, sandboxId }))
      cleaned.push(`address ${slotIp(slot)} (slot ${slot})`);
  }

  if (cleaned.length || adopted.length)
    d.audit.append({
      actor,
      action: 'reconcile',
      target: host.id,
      data: { host: host.name, cleaned, adopted },
    });
  return { cleaned, adopted };
}

/**
 * The host's own expiry: hand the watchdog the entries of every live sandbox here (starting it again
 * after a host reboot), and close the rows of sandboxes it destroyed by itself, audited as
 * `sandbox.expire`. A host without the watchdog (no python3) is left as it is.
 */
export async function syncHostExpiry(
  d: Pick<ReconcileDeps, 'sandboxes' | 'audit' | 'installation' | 'expiryGraceMinutes' | 'changed'>,
  conn: HostConnection,
  host: Host,
  cleaned: string[] = [],
): Promise<string[]> {
  const layout = hostLayout(host.storageDir, d.installation);
  const rows = d.sandboxes.list({ hostId: host.id }).filter((r) => LIVE_STATES.includes(r.state));
  const entries = rows
    .filter((r) => r.state !== 'destroying')
    .flatMap((r) => entryOf(r, host.libvirtUri, d.expiryGraceMinutes) ?? []);
  let expired: HostExpired[];
  try {
    expired = (await armExpiry(conn, layout, entries, { replace: true })).expired;
  } catch {
    return cleaned;
  }
  const read: string[] = [];
  for (const t of expired) {
    const r = d.sandboxes.maybe(t.id);
    // Two registered hosts can be one libvirt: another host's sandbox is closed by its own reconcile.
    if (r && r.host_id !== host.id) continue;
    read.push(t.id);
    if (!r || !LIVE_STATES.includes(r.state)) continue;
    d.sandboxes.update(r.id, { state: 'destroyed', owner_pid: null, owner_instance: null });
    d.audit.append({
      actor: { door: 'system', id: 'host-expiry' },
      action: 'sandbox.expire',
      target: r.id,
      data: {
        name: r.name,
        host: host.name,
        expiresAt: r.expires_at,
        destroyedAt: t.expiredAt ? new Date(t.expiredAt * 1000).toISOString() : null,
        domainDestroyed: t.destroyed ?? null,
        by: "the host's watchdog, while no Fluid process removed it",
      },
    });
    d.changed(r.id);
    cleaned.push(`sandbox ${r.name} (expired; destroyed by the host's watchdog)`);
  }
  // Tombstones go once the rows say what they record (read again next time if this fails).
  if (read.length) await disarmExpiry(conn, layout, read).catch(() => {});
  return cleaned;
}
