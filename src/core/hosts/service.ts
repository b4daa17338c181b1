/**
 * Hosts: registration over SSH with an explicit fingerprint confirmation, pinned keys afterwards,
 * pooled connections, preflight as a task, VM inventory and capacity. The local machine is the
 * embedded default host and needs no configuration.
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import {
  LOCAL_HOST_ID,
  type Capacity,
  type Host,
  type HostAuth,
  type Preflight,
  type Vm,
} from '../../shared/contract/hosts.ts';
import type { Task } from '../../shared/contract/tasks.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { SettingsService } from '../store/settings.ts';
import type { TaskManager } from '../store/tasks.ts';
import type { EventBus } from '../events.ts';
import { LocalConnection, type HostConnection } from './connection.ts';
import { readIdentity, sameLibvirt } from './identity.ts';
import { runPreflight } from './preflight.ts';
import { probeHostKey, SshConnection, type HostKeyInfo } from './ssh.ts';
import { listDomains, parseMemAvailable, parseMemTotal } from './virsh.ts';

interface Row {
  id: string;
  name: string;
  kind: 'local' | 'ssh';
  address: string;
  port: number;
  user: string;
  auth: string;
  host_key_type: string | null;
  host_key_fp: string | null;
  libvirt_uri: string;
  storage_dir: string | null;
  created_at: string;
  last_check: string | null;
}

export interface HostDeps {
  db: Db;
  audit: AuditLog;
  bus: EventBus;
  tasks: TaskManager;
  settings: SettingsService;
  clock: Clock;
  log: Logger;
}

export class HostService {
  private readonly d: HostDeps;
  private readonly pool = new Map<string, Promise<HostConnection>>();

  constructor(deps: HostDeps) {
    this.d = deps;
  }

  /** The local machine is always a host: zero configuration. */
  ensureLocalHost(): void {
    this.d.db
      .prepare(
        `INSERT OR IGNORE INTO hosts (id, name, kind, address, port, user, auth, libvirt_uri, created_at)
         VALUES (?, 'local', 'local', 'localhost', 0, ?, '{"type":"local"}', 'qemu:///system', ?)`,
      )
      .run(LOCAL_HOST_ID, safeUser(), this.d.clock.now().toISOString());
  }

  list(): Host[] {
    const rows = this.d.db
      .prepare("SELECT * FROM hosts ORDER BY kind = 'local' DESC, created_at, name")
      .all() as Row[];
    return rows.map((r) => this.toHost(r));
  }

  get(ref: string): Host {
    const r = this.row(ref);
    return this.toHost(r);
  }

  private row(ref: string): Row {
    const r = this.d.db
      .prepare('SELECT * FROM hosts WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1')
      .get(ref, ref, ref) as Row | undefined;
    if (!r) throw new FluidError('NOT_FOUND', `No host "${ref}". See the list with \`fluid host list\`.`);
    return r;
  }

  private toHost(r: Row): Host {
    return {
      id: r.id,
      name: r.name,
      kind: r.kind,
      address: r.address,
      port: r.port,
      user: r.user,
      auth: JSON.parse(r.auth) as HostAuth,
      hostKey: r.host_key_fp ? { type: r.host_key_type ?? 'unknown', fingerprint: r.host_key_fp } : null,
      libvirtUri: r.libvirt_uri,
      storageDir: r.storage_dir ?? this.d.settings.get().hosts.storageDir,
      createdAt: r.created_at,
      lastCheck: r.last_check ? (JSON.parse(r.last_check) as Preflight) : null,
      sameMachineAs: this.sameMachineAs(r.id, r.last_check),
    };
  }

  /** Names of other host records that reach the same libvirt (by their last checks). */
  private sameMachineAs(id: string, lastCheck: string | null): string[] {
    const mine = lastCheck ? (JSON.parse(lastCheck) as Preflight).identity : null;
    if (!mine) return [];
    const others = this.d.db
      .prepare('SELECT name, last_check FROM hosts WHERE id != ? AND last_check IS NOT NULL')
      .all(id) as Array<{ name: string; last_check: string }>;
    return others
      .filter((o) => sameLibvirt(mine, (JSON.parse(o.last_check) as Preflight).identity))
      .map((o) => o.name);
  }

  private timeoutMs(): number {
    return this.d.settings.get().hosts.connectTimeoutSeconds * 1000;
  }

  async probe(
    address: string,
    port: number,
  ): Promise<{
    address: string;
    port: number;
    hostKey: HostKeyInfo;
    known: { id: string; name: string; matches: boolean } | null;
  }> {
    const hostKey = await probeHostKey(address, port, this.timeoutMs());
    const known = this.d.db
      .prepare("SELECT * FROM hosts WHERE kind = 'ssh' AND address = ? AND port = ? LIMIT 1")
      .get(address, port) as Row | undefined;
    return {
      address,
      port,
      hostKey,
      known: known
        ? { id: known.id, name: known.name, matches: known.host_key_fp === hostKey.fingerprint }
        : null,
    };
  }

  async add(
    input: {
      name?: string;
      address: string;
      port: number;
      user: string;
      auth: HostAuth;
      acceptFingerprint: string;
      libvirtUri: string;
      storageDir?: string;
    },
    actor: Actor,
  ): Promise<Host> {
    const dup = this.d.db
      .prepare("SELECT name FROM hosts WHERE kind = 'ssh' AND address = ? AND port = ? AND user = ?")
      .get(input.address, input.port, input.user) as { name: string } | undefined;
    if (dup)
      throw new FluidError(
        'CONFLICT',
        `${input.user}@${input.address}:${input.port} is already registered as "${dup.name}".`,
      );
    const name =
      input.name ?? this.uniqueName(input.port === 22 ? input.address : `${input.address}-${input.port}`);
    if (this.d.db.prepare('SELECT 1 FROM hosts WHERE name = ?').get(name)) {
      throw new FluidError('CONFLICT', `A host named "${name}" already exists. Choose another name.`);
    }
    const id = randomUUID();
    // Log in once, requiring exactly the confirmed key: proves the key, the credentials and the path.
    const conn = await SshConnection.open({
      hostId: id,
      address: input.address,
      port: input.port,
      user: input.user,
      auth: input.auth,
      fingerprint: input.acceptFingerprint,
      connectTimeoutMs: this.timeoutMs(),
    });
    let keyType: string;
    try {
      const probe = await conn.exec('true', { timeoutMs: this.timeoutMs() });
      if (probe.code !== 0)
        throw new FluidError(
          'HOST_UNREACHABLE',
          `The host accepted the login but cannot run commands: ${probe.stderr.toString().trim()}`,
        );
      keyType =
        (await probeHostKey(input.address, input.port, this.timeoutMs()).catch(() => null))?.type ??
        'unknown';
    } catch (err) {
      conn.close();
      throw err;
    }
    this.d.db
      .prepare(
        `INSERT INTO hosts (id, name, kind, address, port, user, auth, host_key_type, host_key_fp, libvirt_uri, storage_dir, created_at)
         VALUES (?, ?, 'ssh', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        name,
        input.address,
        input.port,
        input.user,
        JSON.stringify(input.auth),
        keyType,
        input.acceptFingerprint,
        input.libvirtUri,
        input.storageDir ?? null,
        this.d.clock.now().toISOString(),
      );
    this.adopt(id, conn);
    this.d.audit.append({
      actor,
      action: 'host.add',
      target: id,
      data: {
        name,
        address: input.address,
        port: input.port,
        user: input.user,
        auth: input.auth.type,
        fingerprint: input.acceptFingerprint,
        libvirtUri: input.libvirtUri,
      },
    });
    this.d.bus.emit('hosts.changed', { hostId: id, change: 'added' });
    return this.get(id);
  }

  update(
    input: { host: string; name?: string; auth?: HostAuth; libvirtUri?: string; storageDir?: string },
    actor: Actor,
  ): Host {
    const r = this.row(input.host);
    if (r.kind === 'local' && input.auth && input.auth.type !== 'local')
      throw new FluidError('VALIDATION', 'The local host needs no credentials.');
    if (r.kind === 'ssh' && input.auth?.type === 'local')
      throw new FluidError('VALIDATION', 'Remote hosts use a key file or the SSH agent.');
    if (
      input.name &&
      input.name !== r.name &&
      this.d.db.prepare('SELECT 1 FROM hosts WHERE name = ?').get(input.name)
    ) {
      throw new FluidError('CONFLICT', `A host named "${input.name}" already exists.`);
    }
    this.d.db
      .prepare('UPDATE hosts SET name = ?, auth = ?, libvirt_uri = ?, storage_dir = ? WHERE id = ?')
      .run(
        input.name ?? r.name,
        input.auth ? JSON.stringify(input.auth) : r.auth,
        input.libvirtUri ?? r.libvirt_uri,
        input.storageDir ?? r.storage_dir,
        r.id,
      );
    this.drop(r.id);
    const changes = Object.fromEntries(
      Object.entries({
        name: input.name,
        auth: input.auth?.type,
        libvirtUri: input.libvirtUri,
        storageDir: input.storageDir,
      }).filter(([, v]) => v !== undefined),
    );
    this.d.audit.append({ actor, action: 'host.update', target: r.id, data: changes });
    this.d.bus.emit('hosts.changed', { hostId: r.id, change: 'updated' });
    return this.get(r.id);
  }

  async trust(ref: string, fingerprint: string, actor: Actor): Promise<Host> {
    const r = this.row(ref);
    if (r.kind !== 'ssh') throw new FluidError('VALIDATION', 'The local host has no SSH host key.');
    const presented = await probeHostKey(r.address, r.port, this.timeoutMs());
    if (presented.fingerprint !== fingerprint) {
      throw new FluidError(
        'HOSTKEY_MISMATCH',
        `${r.address}:${r.port} presents ${presented.fingerprint}, not ${fingerprint}. Nothing was changed.`,
        {
          presented: presented.fingerprint,
        },
      );
    }
    this.d.db
      .prepare('UPDATE hosts SET host_key_fp = ?, host_key_type = ? WHERE id = ?')
      .run(fingerprint, presented.type, r.id);
    this.drop(r.id);
    this.d.audit.append({
      actor,
      action: 'host.trust',
      target: r.id,
      data: { previous: r.host_key_fp, fingerprint, keyType: presented.type },
    });
    this.d.bus.emit('hosts.changed', { hostId: r.id, change: 'updated' });
    return this.get(r.id);
  }

  remove(ref: string, actor: Actor, guard?: (hostId: string) => void): { removed: true; id: string } {
    const r = this.row(ref);
    if (r.kind === 'local')
      throw new FluidError('CONFLICT', 'The local host is built in and cannot be removed.');
    guard?.(r.id);
    this.d.db.prepare('DELETE FROM hosts WHERE id = ?').run(r.id);
    this.drop(r.id);
    this.d.audit.append({
      actor,
      action: 'host.remove',
      target: r.id,
      data: { name: r.name, address: r.address, port: r.port },
    });
    this.d.bus.emit('hosts.changed', { hostId: r.id, change: 'removed' });
    return { removed: true, id: r.id };
  }

  /** A pooled connection that refuses any host key but the pinned one. */
  async connection(ref: string): Promise<HostConnection> {
    const r = this.row(ref);
    const existing = this.pool.get(r.id);
    if (existing) {
      const c = await existing.catch(() => null);
      if (c && !c.closed) return c;
      this.pool.delete(r.id);
    }
    const opening = this.open(r);
    this.pool.set(r.id, opening);
    opening.catch(() => this.pool.delete(r.id));
    return opening;
  }

  private async open(r: Row): Promise<HostConnection> {
    if (r.kind === 'local') return new LocalConnection(r.id);
    if (!r.host_key_fp)
      throw new FluidError(
        'HOSTKEY_MISMATCH',
        `Host "${r.name}" has no trusted host key. Trust one with fluid host trust.`,
      );
    const conn = await SshConnection.open({
      hostId: r.id,
      address: r.address,
      port: r.port,
      user: r.user,
      auth: JSON.parse(r.auth) as HostAuth,
      fingerprint: r.host_key_fp,
      connectTimeoutMs: this.timeoutMs(),
    });
    conn.onClose(() => {
      if (this.pool.get(r.id))
        void this.pool.get(r.id)!.then(
          (c) => c === conn && this.pool.delete(r.id),
          () => {},
        );
    });
    return conn;
  }

  private adopt(id: string, conn: SshConnection): void {
    this.pool.set(id, Promise.resolve(conn));
    conn.onClose(() => {
      void this.pool.get(id)?.then(
        (c) => c === conn && this.pool.delete(id),
        () => {},
      );
    });
  }

  private drop(id: string): void {
    const p = this.pool.get(id);
    this.pool.delete(id);
    void p?.then(
      (c) => c.close(),
      () => {},
    );
  }

  closeAll(): void {
    for (const id of [...this.pool.keys()]) this.drop(id);
  }

  check(ref: string, actor: Actor): Task {
    const host = this.get(ref);
    return this.d.tasks.start({
      kind: 'host.check',
      title: `Preflight of ${host.name}`,
      target: host.id,
      run: async (ctx) => {
        ctx.progress(
          0.05,
          `Connecting to ${host.kind === 'local' ? 'the local machine' : `${host.user}@${host.address}:${host.port}`}`,
        );
        const conn = await this.connection(host.id);
        const s = this.d.settings.get().hosts;
        const { checks, facts } = await runPreflight(
          conn,
          {
            libvirtUri: host.libvirtUri,
            storageDir: host.storageDir,
            user: host.user,
            minFreeDiskGiB: s.minFreeDiskGiB,
            minFreeMemoryMiB: s.minFreeMemoryMiB,
          },
          { signal: ctx.signal, progress: (f, m) => ctx.progress(f, m) },
        );
        const identity = await readIdentity(conn, host.libvirtUri).catch(() => null);
        const twins = this.list().filter(
          (h) => h.id !== host.id && sameLibvirt(identity, h.lastCheck?.identity),
        );
        const sameMachine = twins.length
          ? [
              {
                id: 'same-machine',
                title: 'Registered twice',
                status: 'warn' as const,
                detail: `This is the same libvirt as ${twins.map((h) => `"${h.name}"`).join(', ')} (machine ${identity!.machineId}, libvirt ${identity!.libvirtUuid}). Both work: they share one sandbox network and one egress proxy, which serves the sandboxes of every record.`,
                advice: `Remove one of them unless you mean to reach this machine both ways (fluid host remove ${twins[0]!.name}).`,
              },
            ]
          : [];
        const connectCheck = {
          id: 'connect',
          title: host.kind === 'local' ? 'Local machine' : `SSH to ${host.user}@${host.address}:${host.port}`,
          status: 'pass' as const,
          detail:
            host.kind === 'local'
              ? 'Commands run directly on this machine.'
              : `Logged in; host key ${host.hostKey?.fingerprint} verified.`,
          advice: null,
        };
        const result: Preflight = {
          hostId: host.id,
          checkedAt: this.d.clock.now().toISOString(),
          ok: ![connectCheck, ...checks].some((c) => c.status === 'fail'),
          checks: [connectCheck, ...checks, ...sameMachine],
          facts,
          identity,
        };
        this.d.db
          .prepare('UPDATE hosts SET last_check = ? WHERE id = ?')
          .run(JSON.stringify(result), host.id);
        this.d.audit.append({
          actor,
          action: 'host.check',
          target: host.id,
          data: {
            ok: result.ok,
            failed: result.checks.filter((c) => c.status === 'fail').map((c) => c.id),
            warned: result.checks.filter((c) => c.status === 'warn').map((c) => c.id),
            virtType: facts.virtType,
          },
        });
        this.d.bus.emit('hosts.changed', { hostId: host.id, change: 'checked' });
        return result;
      },
    });
  }

  async vms(ref: string, signal?: AbortSignal): Promise<Vm[]> {
    const host = this.get(ref);
    const conn = await this.connection(host.id);
    try {
      const doms = await listDomains(conn, host.libvirtUri, { signal });
      return doms
        .map((d) => ({ ...d, hostId: host.id, hostName: host.name }))
        .sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      if (err instanceof FluidError) throw err;
      throw new FluidError(
        'UNAVAILABLE',
        `Could not list the VMs of ${host.name}: ${(err as Error).message}. Run the host's preflight for advice.`,
      );
    }
  }

  async sources(ref: string | undefined, signal?: AbortSignal) {
    const hosts = ref ? [this.get(ref)] : this.list();
    const vms: Vm[] = [];
    const errors: Array<{ hostId: string; hostName: string; code: string; message: string }> = [];
    await Promise.all(
      hosts.map(async (h) => {
        try {
          vms.push(...(await this.vms(h.id, signal)).filter((v) => !v.fluid));
        } catch (err) {
          if (ref) throw err;
          const p = toErrorPayload(err);
          errors.push({ hostId: h.id, hostName: h.name, code: p.code, message: p.message });
        }
      }),
    );
    vms.sort((a, b) => a.hostName.localeCompare(b.hostName) || a.name.localeCompare(b.name));
    return { vms, errors };
  }

  /**
   * The host's CPUs and memory, in one cheap round trip (the kernel's counts): what admission needs,
   * without the preflight and domain listing `capacity` runs.
   */
  async memory(
    ref: string,
    signal?: AbortSignal,
  ): Promise<{ cpus: number; memoryMiB: number | null; freeMemoryMiB: number | null }> {
    const conn = await this.connection(this.get(ref).id);
    const r = await conn.exec('grep -c ^processor /proc/cpuinfo; cat /proc/meminfo', {
      signal,
      timeoutMs: 30_000,
    });
    const text = r.stdout.toString();
    if (r.code !== 0)
      throw new FluidError('UNAVAILABLE', `Could not read the host's memory: ${r.stderr.toString().trim()}`);
    return {
      cpus: Number(text.split('\n', 1)[0]) || 1,
      memoryMiB: parseMemTotal(text),
      freeMemoryMiB: parseMemAvailable(text),
    };
  }

  async capacity(ref: string, signal?: AbortSignal): Promise<Capacity> {
    const host = this.get(ref);
    const conn = await this.connection(host.id);
    const s = this.d.settings.get().hosts;
    const [{ facts }, vms] = await Promise.all([
      runPreflight(
        conn,
        {
          libvirtUri: host.libvirtUri,
          storageDir: host.storageDir,
          user: host.user,
          minFreeDiskGiB: s.minFreeDiskGiB,
          minFreeMemoryMiB: s.minFreeMemoryMiB,
        },
        { signal },
      ),
      this.vms(host.id, signal),
    ]);
    const running = vms.filter((v) => v.running);
    const fluidRunning = running.filter((v) => v.fluid?.kind === 'sandbox');
    return {
      hostId: host.id,
      cpus: facts.cpus,
      memoryMiB: facts.memoryMiB,
      freeMemoryMiB: facts.freeMemoryMiB,
      diskFreeBytes: facts.diskFreeBytes,
      diskTotalBytes: facts.diskTotalBytes,
      runningVms: running.length,
      committedVcpus: fluidRunning.reduce((n, v) => n + v.vcpus, 0),
      committedMemoryMiB: fluidRunning.reduce((n, v) => n + v.memoryMiB, 0),
      virtType: facts.virtType,
    };
  }

  private uniqueName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'host';
    let name = clean;
    for (let i = 2; this.d.db.prepare('SELECT 1 FROM hosts WHERE name = ?').get(name); i++)
      name = `${clean}-${i}`;
    return name;
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
