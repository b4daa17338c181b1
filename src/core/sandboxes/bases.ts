/**
 * The base cache: a consistent, point-in-time copy of a source VM's disks in Fluid's storage on the
 * same host. The source is never written to, snapshotted, paused or overlaid:
 *  - shut off: its disks are read (qemu-img convert, shared lock so a start is never blocked) and the
 *    state is checked before and after; if it started meanwhile, the copy is discarded and redone;
 *  - running: libvirt's backup API (push mode) copies a point-in-time view while the VM keeps running.
 * Each base gets a fingerprint (sha256 over the source identity and each copied disk's sha256), so a
 * sandbox — and later a production apply — can tell which baseline it came from.
 */
import { randomUUID } from 'node:crypto';
import type { Base } from '../../shared/contract/sandboxes.ts';
import type { Host, Vm } from '../../shared/contract/hosts.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';
import type { Clock } from '../platform/clock.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { TaskContext } from '../store/tasks.ts';
import { canonicalJson, sha256Hex } from '../util/canonical.ts';
import { hostLayout } from './layout.ts';

export interface BaseDisk {
  target: string;
  path: string;
  sha256: string | null;
  virtualSize: number | null;
}

export interface TemplateInfo {
  dir: string;
  disk: string;
  save: string;
  vcpus: number;
  memoryMiB: number;
  virtType: 'kvm' | 'qemu';
  /** The saved domain's own disk path (what the save image's XML references). */
  domainName: string;
  nicXml: string;
  serialLog: string;
  bootMs: number;
  saveMs: number;
  /** The CA the template's guest trusts; clones of a template made under another CA re-apply trust. */
  caFingerprint?: string;
  /** The guest was pointed at the egress proxy before it was saved. */
  proxyConfigured?: boolean;
}

interface Row {
  id: string;
  host_id: string;
  source_name: string;
  source_uuid: string;
  fingerprint: string;
  method: 'copy' | 'backup';
  state: Base['state'];
  dir: string;
  disks: string;
  source_xml: string;
  size_bytes: number | null;
  template_state: Base['templateState'];
  template_error: string | null;
  template: string | null;
  error: string | null;
  owner_pid: number | null;
  owner_instance: string | null;
  created_at: string;
}

export interface BaseRecord extends Base {
  dir: string;
  sourceXml: string;
  template: TemplateInfo | null;
  ownerPid: number | null;
  ownerInstance: string | null;
}

const toBase = (r: Row): BaseRecord => ({
  id: r.id,
  hostId: r.host_id,
  sourceName: r.source_name,
  sourceUuid: r.source_uuid,
  fingerprint: r.fingerprint,
  method: r.method,
  state: r.state,
  sizeBytes: r.size_bytes,
  disks: JSON.parse(r.disks) as BaseDisk[],
  templateState: r.template_state,
  templateError: r.template_error,
  createdAt: r.created_at,
  dir: r.dir,
  sourceXml: r.source_xml,
  template: r.template ? (JSON.parse(r.template) as TemplateInfo) : null,
  ownerPid: r.owner_pid,
  ownerInstance: r.owner_instance,
});

export const publicBase = (b: BaseRecord): Base => ({
  id: b.id,
  hostId: b.hostId,
  sourceName: b.sourceName,
  sourceUuid: b.sourceUuid,
  fingerprint: b.fingerprint,
  method: b.method,
  state: b.state,
  sizeBytes: b.sizeBytes,
  disks: b.disks,
  templateState: b.templateState,
  templateError: b.templateError,
  createdAt: b.createdAt,
});

export class BaseStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }
  get(id: string): BaseRecord {
    const r = this.db.prepare('SELECT * FROM bases WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No base ${id}.`);
    return toBase(r);
  }
  list(hostId?: string): BaseRecord[] {
    const rows = (
      hostId
        ? this.db.prepare('SELECT * FROM bases WHERE host_id = ? ORDER BY created_at DESC').all(hostId)
        : this.db.prepare('SELECT * FROM bases ORDER BY created_at DESC').all()
    ) as Row[];
    return rows.map(toBase);
  }
  latestReady(hostId: string, sourceUuid: string): BaseRecord | null {
    const r = this.db
      .prepare(
        "SELECT * FROM bases WHERE host_id = ? AND source_uuid = ? AND state = 'ready' ORDER BY created_at DESC LIMIT 1",
      )
      .get(hostId, sourceUuid) as Row | undefined;
    return r ? toBase(r) : null;
  }
  update(id: string, fields: Partial<Record<keyof Row, unknown>>): void {
    const keys = Object.keys(fields);
    if (!keys.length) return;
    this.db
      .prepare(`UPDATE bases SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`)
      .run(...keys.map((k) => fields[k as keyof Row]), id);
  }
  insert(
    r: Omit<Row, 'fingerprint' | 'size_bytes' | 'template_state' | 'template_error' | 'template' | 'error'>,
  ): void {
    this.db
      .prepare(
        `INSERT INTO bases (id, host_id, source_name, source_uuid, method, state, dir, disks, source_xml, owner_pid, owner_instance, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.id,
        r.host_id,
        r.source_name,
        r.source_uuid,
        r.method,
        r.state,
        r.dir,
        r.disks,
        r.source_xml,
        r.owner_pid,
        r.owner_instance,
        r.created_at,
      );
  }
}

export interface BaseDeps {
  db: Db;
  store: BaseStore;
  audit: AuditLog;
  clock: Clock;
  installation: string;
  instance: string;
}

/** Copy the source's disks into a new base. */
export async function buildBase(
  d: BaseDeps,
  conn: HostConnection,
  host: Host,
  vm: Vm,
  ctx: TaskContext,
  actor: Actor,
): Promise<BaseRecord> {
  const V = (a: string) => virsh(host.libvirtUri, a);
  const layout = hostLayout(host.storageDir, d.installation);
  const disks = vm.disks.filter((x) => x.device === 'disk');
  if (!disks.length) throw new FluidError('VALIDATION', `${vm.name} has no disks to copy.`);
  for (const x of disks) {
    if (!x.source)
      throw new FluidError(
        'VALIDATION',
        `${vm.name}'s disk ${x.target} has no source Fluid can copy (type ${x.type}).`,
      );
  }
  const sourceXml = await run(conn, V(`dumpxml --inactive ${shq(vm.uuid)}`), {
    what: `Reading ${vm.name}'s definition`,
    signal: ctx.signal,
  });
  const id = randomUUID();
  const dir = layout.base(id);
  const running = vm.running;
  d.store.insert({
    id,
    host_id: host.id,
    source_name: vm.name,
    source_uuid: vm.uuid,
    method: running ? 'backup' : 'copy',
    state: 'building',
    dir,
    disks: '[]',
    source_xml: sourceXml,
    owner_pid: process.pid,
    owner_instance: d.instance,
    created_at: d.clock.now().toISOString(),
  });
  const targets = disks.map((x) => ({ target: x.target, from: x.source!, to: `${dir}/${x.target}.qcow2` }));
  try {
    await run(
      conn,
      `mkdir -p ${shq(dir)} && chmod 755 ${shq(host.storageDir)} ${shq(layout.root)} ${shq(layout.bases)} ${shq(dir)}`,
      { what: 'Preparing the base directory', signal: ctx.signal },
    );
    let method: 'copy' | 'backup' = running ? 'backup' : 'copy';
    if (!running) {
      const ok = await copyShutOff(conn, host, vm, targets, ctx);
      if (!ok) {
        ctx.progress(null, `${vm.name} started during the copy; taking a point-in-time backup instead`);
        method = 'backup';
      }
    }
    if (method === 'backup') await backupRunning(conn, host, vm, targets, ctx);
    ctx.progress(0.92, 'Fingerprinting the copy');
    const info = await run(
      conn,
      targets
        .map(
          (t) =>
            `chmod 0444 ${shq(t.to)}; printf '%s ' ${shq(t.target)}; sha256sum ${shq(t.to)} | cut -d' ' -f1 | tr '\\n' ' '; qemu-img info -U --output=json ${shq(t.to)} | tr -d '\\n'; echo`,
        )
        .join('\n') + `\ndu -sb ${shq(dir)} | cut -f1`,
      { what: 'Fingerprinting the base', signal: ctx.signal, timeoutMs: 30 * 60_000 },
    );
    const lines = info.trim().split('\n');
    const size = Number(lines.pop());
    const baseDisks: BaseDisk[] = lines.map((l) => {
      const [target, sha, ...json] = l.split(' ');
      const q = JSON.parse(json.join(' ')) as { 'virtual-size'?: number };
      return {
        target: target!,
        path: targets.find((t) => t.target === target)!.to,
        sha256: sha!,
        virtualSize: q['virtual-size'] ?? null,
      };
    });
    const fingerprint = sha256Hex(
      canonicalJson({
        source: vm.uuid,
        disks: baseDisks.map((b) => ({ target: b.target, sha256: b.sha256 })),
      }),
    );
    d.store.update(id, {
      state: 'ready',
      method,
      disks: JSON.stringify(baseDisks),
      fingerprint,
      size_bytes: Number.isFinite(size) ? size : null,
      owner_pid: null,
      owner_instance: null,
    });
    d.audit.append({
      actor,
      action: 'base.create',
      target: id,
      data: { host: host.name, source: vm.name, method, fingerprint, sizeBytes: size },
    });
    return d.store.get(id);
  } catch (err) {
    await conn.exec(`rm -rf ${shq(dir)}`).catch(() => {});
    d.store.update(id, {
      state: 'failed',
      error: (err as Error).message,
      owner_pid: null,
      owner_instance: null,
    });
    throw err;
  }
}

async function domState(conn: HostConnection, host: Host, uuid: string): Promise<string> {
  return (await run(conn, virsh(host.libvirtUri, `domstate ${shq(uuid)}`))).trim();
}

/** Returns false when the VM was started during the copy (the copy is then discarded). */
async function copyShutOff(
  conn: HostConnection,
  host: Host,
  vm: Vm,
  targets: Array<{ target: string; from: string; to: string }>,
  ctx: TaskContext,
): Promise<boolean> {
  if ((await domState(conn, host, vm.uuid)) !== 'shut off') return false;
  for (const [i, t] of targets.entries()) {
    ctx.progress((i / targets.length) * 0.9, `Copying ${vm.name}'s disk ${t.target}`);
    // -U: shared lock, so starting the source is never blocked by the copy; -p: progress on stdout.
    const r = await conn.exec(
      `qemu-img convert -U -p -O qcow2 ${shq(t.from)} ${shq(t.to + '.part')} && mv ${shq(t.to + '.part')} ${shq(t.to)}`,
      {
        signal: ctx.signal,
        timeoutMs: 6 * 3600_000,
        onStdout: (chunk) => {
          const m = /\((\d+(?:\.\d+)?)\/100%\)/g;
          let last: RegExpExecArray | null = null;
          for (let x = m.exec(chunk.toString()); x; x = m.exec(chunk.toString())) last = x;
          if (last)
            ctx.progress(
              ((i + Number(last[1]) / 100) / targets.length) * 0.9,
              `Copying ${vm.name}'s disk ${t.target}: ${Math.round(Number(last[1]))}%`,
            );
        },
      },
    );
    if (r.code !== 0) {
      await conn.exec(`rm -f ${shq(t.to + '.part')}`).catch(() => {});
      throw new FluidError(
        'INTERNAL',
        `Copying ${t.from} failed: ${r.stderr.toString().trim().slice(0, 500)}`,
      );
    }
  }
  if ((await domState(conn, host, vm.uuid)) !== 'shut off') {
    await conn.exec(targets.map((t) => `rm -f ${shq(t.to)}`).join('; ')).catch(() => {});
    return false;
  }
  return true;
}

async function backupRunning(
  conn: HostConnection,
  host: Host,
  vm: Vm,
  targets: Array<{ target: string; from: string; to: string }>,
  ctx: TaskContext,
): Promise<void> {
  const V = (a: string) => virsh(host.libvirtUri, a);
  const xml = `<domainbackup mode='push'><disks>${targets
    .map(
      (t) =>
        `<disk name='${t.target}' backup='yes' type='file'><target file='${t.to}'/><driver type='qcow2'/></disk>`,
    )
    .join('')}</disks></domainbackup>`;
  ctx.progress(0.02, `Starting a point-in-time backup of ${vm.name} (it keeps running)`);
  const file = `${targets[0]!.to}.backup.xml`;
  await run(
    conn,
    `cat > ${shq(file)} && ${V(`backup-begin ${shq(vm.uuid)} --backupxml ${shq(file)}`)}; rc=$?; rm -f ${shq(file)}; exit $rc`,
    {
      stdin: xml,
      what: `Starting the backup of ${vm.name}`,
      signal: ctx.signal,
    },
  );
  const abort = () => conn.exec(V(`domjobabort ${shq(vm.uuid)}`)).catch(() => {});
  try {
    for (;;) {
      ctx.signal.throwIfAborted();
      await new Promise((r) => setTimeout(r, 500));
      const info = (await conn.exec(V(`domjobinfo ${shq(vm.uuid)}`))).stdout.toString();
      const type = /Job type:\s+(\S+)/.exec(info)?.[1];
      if (!type || type === 'None') break;
      const total = Number(/Data total:\s+([\d.]+)\s+(\S+)/.exec(info)?.[1] ?? 0);
      const processed = Number(/Data processed:\s+([\d.]+)\s+(\S+)/.exec(info)?.[1] ?? 0);
      if (total > 0)
        ctx.progress(
          0.05 + 0.85 * Math.min(1, processed / total),
          `Backing up ${vm.name}: ${Math.round((processed / total) * 100)}%`,
        );
    }
  } catch (err) {
    await abort();
    await conn.exec(targets.map((t) => `rm -f ${shq(t.to)}`).join('; ')).catch(() => {});
    throw err;
  }
  const done = (await conn.exec(V(`domjobinfo ${shq(vm.uuid)} --completed`))).stdout.toString();
  if (!/Job type:\s+Completed/.test(done)) {
    await conn.exec(targets.map((t) => `rm -f ${shq(t.to)}`).join('; ')).catch(() => {});
    throw new FluidError('INTERNAL', `The backup of ${vm.name} did not complete:\n${done.trim()}`);
  }
}
