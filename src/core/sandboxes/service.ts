/**
 * Sandboxes: disposable copies of real VMs. Create = admission → isolated network → base copy →
 * reserved address → overlay → (restore a warm template | cold boot) → fresh identity through the
 * guest agent → certificate SSH through the host. Every step is recorded with its timing; a failure
 * or a cancel cleans up what the step created; a crash is cleaned up by reconcile at the next start.
 * With a warm pool (pool.ts), the same pipeline makes members ahead of time and a create that
 * matches one only resumes it (`takeFromPool` → `runHandout`).
 */
import { randomUUID } from 'node:crypto';
import type { Host, Vm } from '../../shared/contract/hosts.ts';
import type { EgressHealth, Sandbox, Snapshot } from '../../shared/contract/sandboxes.ts';
import type { Task } from '../../shared/contract/tasks.ts';
import { VERIFY_ACTOR } from '../../shared/contract/playbooks.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import { canonicalDestinations, destinationWarning } from '../egress/reach.ts';
import { formatDestination, tryParseDestination } from '../egress/destinations.ts';
import { requestEgressApproval, type DoctorCheck } from './egress.ts';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import type { HostService } from '../hosts/service.ts';
import { fingerprintOf } from '../hosts/ssh.ts';
import { virsh, listDomains } from '../hosts/virsh.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { SettingsService } from '../store/settings.ts';
import { pidAlive, type TaskContext, type TaskManager } from '../store/tasks.ts';
import type { EventBus } from '../events.ts';
import type { SshCa } from '../ssh/ca.ts';
import type { GuestSsh, GuestSshPool, GuestTarget } from '../ssh/guest.ts';
import { BaseStore, buildBase, publicBase, type BaseRecord, type TemplateInfo } from './bases.ts';
import { deriveDomain, pinNicAddress } from './domain-xml.ts';
import { guestExec, syncClock, waitForAgent } from './guest-agent.ts';
import {
  FLUID_USER,
  ROOT_USER,
  generateHostKeys,
  identityScript,
  parseIdentityOutput,
  principalSection,
  runtimeScript,
  sandboxLogin,
  sandboxPrincipal,
  type HostKeySet,
} from './identity.ts';
import { hostLayout, sandboxDomainName } from './layout.ts';
import {
  claimSlot,
  ensureNetwork,
  GATEWAY,
  NETWORK_NAME,
  PREFIX,
  releaseSlot,
  slotIp,
  slotMac,
} from './network.ts';
import { armExpiry, disarmExpiry, entryOf, SWEPT_STATES } from './expiry.ts';
import { syncHostExpiry } from './reconcile.ts';
import {
  collectGarbage,
  parseDetail,
  restoreSnapshot,
  takeSnapshot,
  type SnapshotDetail,
} from './snapshots.ts';
import { LIVE_STATES, SandboxStore, toSandbox, type SandboxRow } from './store.ts';
import { buildTemplate, BOOT_TIMEOUT_MS, restoreFromTemplate } from './templates.ts';
import { RunManager } from './runs.ts';
import { TerminalManager } from './terminals.ts';
import { BootLog, ConsoleInput, followConsole, serialLogPath } from './console.ts';
import { choosePlacement, gatherFacts } from './placement.ts';
import {
  clockSetScript,
  clockWaiterScript,
  isPoolMember,
  MEMBER_TTL_MINUTES,
  POOL_ACTOR,
  WarmPool,
} from './pool.ts';
import type { Placement } from '../../shared/contract/sandboxes.ts';

export interface EgressHooks {
  /** Make sure the host's proxy runs and knows every sandbox's allowlist. */
  sync(hostId: string): Promise<void>;
  /** Make sure the host's proxy runs (cheap when it does). */
  ensure(hostId: string): Promise<void>;
  /** The script that points a guest's package managers and shells at the proxy. */
  guestSetup(): string;
  /** Whether the host's proxy serves this sandbox, as far as this process knows. */
  health?(row: SandboxRow): EgressHealth;
  /** `fluid doctor`: ask each host's proxy whether it serves every live sandbox. */
  doctor?(): Promise<DoctorCheck[]>;
}

/** The system diff's baseline (src/core/diff): the last phase of every creation, on both start paths. */
export interface BaselineHook {
  record(r: SandboxRow, host: Host, conn: HostConnection, signal: AbortSignal): Promise<unknown>;
}

export interface SandboxDeps {
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  tasks: TaskManager;
  hosts: HostService;
  settings: SettingsService;
  approvals: ApprovalService;
  clock: Clock;
  log: Logger;
  ca: SshCa;
  guests: GuestSshPool;
  installation: string;
  egress: EgressHooks | null;
  baseline?: BaselineHook | null;
}

export interface CreateInput {
  host?: string;
  source: string;
  name?: string;
  vcpus?: number;
  memoryMiB?: number;
  ttlMinutes?: number;
  allow: string[];
  start: 'auto' | 'restore' | 'cold';
  refreshBase: boolean;
  /** The host was the agent session's (recorded as the placement's reason). */
  hostFromSession?: boolean;
}

class Phases {
  readonly timings: Record<string, number> = {};
  private readonly t0 = Date.now();
  private last = Date.now();
  mark(name: string): void {
    const now = Date.now();
    this.timings[name] = now - this.last;
    this.last = now;
  }
  total(): number {
    this.timings.total = Date.now() - this.t0;
    return this.timings.total;
  }
}

/** A template's NIC (left out of its memory image) with this sandbox's MAC, on Fluid's network. */
function templateNic(t: TemplateInfo, r: SandboxRow): string {
  return t.nicXml.replace('@@MAC@@', r.mac!).replace('@@NETWORK@@', NETWORK_NAME);
}

const WAIT_SSH_MS = 120_000;
/** The identity step's first try (it takes seconds even emulated); the second one gets twice this. */
const IDENTITY_TIMEOUT_MS = 60_000;
/** The janitor tries again what it could not destroy after this long. */
const JANITOR_RETRY_MS = 5_000;

export class SandboxService {
  readonly store: SandboxStore;
  readonly bases: BaseStore;
  private readonly d: SandboxDeps;
  /** Template builds in flight, per base+size, so concurrent creations do not build twice. */
  private readonly templateBuilds = new Map<string, Promise<void>>();
  /** One stable connection getter per host: the SSH pool keeps a session only while its target is unchanged. */
  private readonly hostGetters = new Map<string, () => Promise<HostConnection>>();
  private janitor: NodeJS.Timeout | null = null;
  private janitorOn = false;
  private janitorBusy = false;
  private janitorInterval = 30_000;
  private janitorOff: (() => void) | null = null;
  private janitorLastPass = 0;
  private poolOff: (() => void) | null = null;
  /** Snapshot work per sandbox, in order (see serialize). */
  private readonly snapshotQueues = new Map<string, Promise<void>>();
  /** Long-running doors (the app, web mode) build warm templates in the background after a cold boot. */
  backgroundTemplates = false;
  /** Commands from every door, as runs with ids, audit rows and re-attachable output (runs.ts). */
  readonly runs: RunManager;
  /** Terminals that outlive the page (terminals.ts). */
  readonly terminals: TerminalManager;
  /** Keys for serial consoles (console.ts). */
  private readonly consoleKeys = new ConsoleInput();
  /** Sandboxes made ahead of time (pool.ts); long-running doors keep it filled. */
  readonly pool: WarmPool;

  constructor(deps: SandboxDeps) {
    this.d = deps;
    this.store = new SandboxStore(deps.db);
    this.bases = new BaseStore(deps.db);
    this.runs = new RunManager({
      db: deps.db,
      bus: deps.bus,
      audit: deps.audit,
      clock: deps.clock,
      log: deps.log,
      instance: deps.tasks.instance,
      exec: async (r, command, o) => {
        await this.egressUp(r.host_id);
        return this.guest(r).exec(command, {
          root: true,
          timeoutMs: o.timeoutMs,
          maxOutputBytes: o.maxOutputBytes,
          stdin: o.stdin,
          signal: o.signal,
          onStdout: o.onStdout,
          onStderr: o.onStderr,
        });
      },
    });
    this.terminals = new TerminalManager({
      audit: deps.audit,
      clock: deps.clock,
      log: deps.log,
      shell: async (r, cols, rows) => {
        await this.egressUp(r.host_id);
        return this.guest(r).shell({ cols, rows });
      },
      idleMinutes: () => deps.settings.get().sandboxes.terminalIdleMinutes,
    });
    this.pool = new WarmPool({
      log: deps.log,
      settings: () => {
        const s = deps.settings.get().sandboxes;
        return { lines: s.warmPool, minHostMemoryMiB: s.warmPoolMinHostMemoryMiB };
      },
      hosts: () => deps.hosts.list(),
      sources: async (hostId) => {
        try {
          return (await deps.hosts.vms(hostId)).map((v) => v.name);
        } catch {
          return null;
        }
      },
      latestBase: (hostId, source) => this.latestBaseOf(hostId, source),
      members: () => this.store.list().filter(isPoolMember),
      memberAlive: (r) =>
        !!r.owner_pid && (r.owner_instance === deps.tasks.instance || pidAlive(r.owner_pid)),
      fill: (hostId, source) => this.fillMember(hostId, source),
      drain: (id, reason) => this.drainMember(id, reason),
      warm: async (hostId, source) => {
        const t = await this.d.tasks.wait(this.warm(hostId, source, {}, POOL_ACTOR).id);
        if (t.status !== 'succeeded') throw new FluidError('INTERNAL', t.error?.message ?? t.status);
      },
      release: (ids) => {
        for (const id of ids) {
          const r = this.store.maybe(id);
          if (r?.ip && r.host_key_fp) this.guest(r).hold(false);
        }
      },
    });
  }

  // ---- queries ----------------------------------------------------------------------------------

  dto(r: SandboxRow): Sandbox {
    let hostName = r.host_id;
    try {
      hostName = this.d.hosts.get(r.host_id).name;
    } catch {
      /* host removed */
    }
    let fp: string | null = null;
    if (r.base_id) {
      try {
        fp = this.bases.get(r.base_id).fingerprint || null;
      } catch {
        /* base row gone */
      }
    }
    const allowed = JSON.parse(r.egress_allow) as string[];
    return {
      ...toSandbox(r, hostName, fp),
      egressWarnings: allowed.flatMap((destination) => {
        try {
          const warning = destinationWarning(destination);
          return warning ? [{ destination, warning }] : [];
        } catch {
          return [];
        }
      }),
      egressHealth: this.d.egress?.health?.(r) ?? { status: 'unknown', message: null },
      placement: r.placement ? (JSON.parse(r.placement) as Placement) : null,
      session: r.created_by_door === 'agent' ? this.sessionOf(r.created_by_id) : null,
    };
  }

  /** The agent session a sandbox was made by (its title), when it still exists. */
  private sessionOf(id: string): { id: string; title: string; status: string } | null {
    try {
      return (
        (this.d.db.prepare('SELECT id, title, status FROM agent_sessions WHERE id = ?').get(id) as
          { id: string; title: string; status: string } | undefined) ?? null
      );
    } catch {
      return null;
    }
  }

  get(ref: string): Sandbox {
    return this.dto(this.store.row(ref));
  }

  list(opts: { host?: string; includeDestroyed?: boolean }): Sandbox[] {
    const hostId = opts.host ? this.d.hosts.get(opts.host).id : undefined;
    return this.store
      .list({ hostId, includeDestroyed: opts.includeDestroyed })
      .filter((r) => !isPoolMember(r))
      .map((r) => this.dto(r));
  }

  private changed(id: string): void {
    const r = this.store.maybe(id);
    if (r) this.d.bus.emit('sandboxes.changed', { sandboxId: id, state: r.state });
  }

  // ---- create -----------------------------------------------------------------------------------

  create(input: CreateInput, actor: Actor, placed: { host: Host; placement: Placement } | null = null): Task {
    const host = placed?.host ?? this.resolveHost(input.host, input.source);
    const placement: Placement | null =
      placed?.placement ??
      (input.hostFromSession
        ? { score: 0, reason: `placed on ${host.name}: the session's host`, by: 'session', candidates: [] }
        : null);
    const settings = this.d.settings.get().sandboxes;
    const ttl = sessionMade(actor)
      ? Math.min(input.ttlMinutes ?? settings.sessionTtlMinutes, settings.sessionTtlMinutes)
      : (input.ttlMinutes ?? settings.defaultTtlMinutes);
    // Destinations a person passes (or the settings give) are allowed at once; an agent's door widens
    // nothing by itself: each of its destinations becomes an approval request once the row exists.
    const asked = canonicalDestinations(input.allow);
    const person = isPersonDoor(actor);
    const allow = [...new Set([...settings.egressAllow, ...(person ? asked : [])])];
    const member = this.takeFromPool(host, input, actor, { ttl, allow, placement });
    const id = member?.id ?? randomUUID();
    const name = member?.name ?? input.name ?? `${slug(input.source)}-${id.slice(0, 6)}`;
    if (!member)
      this.insertRow({
        id,
        name,
        host,
        source: input.source,
        vcpus: input.vcpus ?? 0,
        memoryMiB: input.memoryMiB ?? 0,
        ttl,
        allow,
        actor,
        placement,
      });
    const task = this.d.tasks.start({
      kind: 'sandbox.create',
      title: `Create sandbox ${name} from ${input.source}`,
      target: id,
      run: (ctx) =>
        member
          ? this.runHandout(id, host, actor, ctx, member.allowChanged)
          : this.runCreate(id, host, input, actor, ctx),
    });
    this.store.update(id, { task_id: task.id });
    this.d.audit.append({
      actor,
      action: 'sandbox.create.start',
      target: id,
      data: {
        name,
        host: host.name,
        source: input.source,
        vcpus: input.vcpus ?? null,
        memoryMiB: input.memoryMiB ?? null,
        ttlMinutes: ttl,
        allow,
        ...(member ? { pool: true } : {}),
        ...(person ? {} : { asked }),
        ...(placement ? { placement: placement.reason } : {}),
      },
    });
    if (!person)
      for (const destination of asked.filter((x) => !allow.includes(x)))
        requestEgressApproval(this.d.approvals, {
          sandboxId: id,
          sandboxName: name,
          destination,
          requestedBy: actor,
          why: `Asked for by ${actor.door}:${actor.id} when it created the sandbox.`,
        });
    this.changed(id);
    return task;
  }

  private insertRow(o: {
    id: string;
    name: string;
    host: Host;
    source: string;
    vcpus: number;
    memoryMiB: number;
    ttl: number;
    allow: string[];
    actor: Actor;
    placement: Placement | null;
  }): void {
    const now = this.d.clock.now();
    this.store.insert({
      id: o.id,
      name: o.name,
      host_id: o.host.id,
      source_name: o.source,
      base_id: null,
      state: 'creating',
      domain_name: sandboxDomainName(o.name, o.id),
      domain_uuid: randomUUID(),
      dir: hostLayout(o.host.storageDir, this.d.installation).sandbox(o.id),
      vcpus: o.vcpus,
      memory_mib: o.memoryMiB,
      slot: null,
      ip: null,
      mac: null,
      ttl_minutes: o.ttl,
      expires_at: new Date(now.getTime() + o.ttl * 60_000).toISOString(),
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      created_by_door: o.actor.door,
      created_by_id: o.actor.id,
      start_path: null,
      start_path_reason: null,
      timings: '{}',
      host_key_fp: null,
      egress_allow: JSON.stringify(o.allow),
      error: null,
      task_id: null,
      owner_pid: process.pid,
      owner_instance: this.d.tasks.instance,
      placement: o.placement ? JSON.stringify(o.placement) : null,
    });
  }

  // ---- the warm pool (pool.ts) --------------------------------------------------------------------

  /**
   * Take a paused member of this source for this create, if one matches (same size when one was
   * asked for, made from the source's current base). The row changes owner in one conditional
   * update, so two creates — in this process or another — never take the same member.
   */
  private takeFromPool(
    host: Host,
    input: CreateInput,
    actor: Actor,
    o: { ttl: number; allow: string[]; placement: Placement | null },
  ): { id: string; name: string; allowChanged: boolean } | null {
    if (input.start === 'cold' || input.refreshBase) return null;
    const candidates = this.store
      .list({ hostId: host.id })
      .filter(
        (r) =>
          r.state === 'pooled' &&
          isPoolMember(r) &&
          r.source_name === input.source &&
          (input.vcpus === undefined || input.vcpus === r.vcpus) &&
          (input.memoryMiB === undefined || input.memoryMiB === r.memory_mib) &&
          this.memberCurrent(r),
      )
      .reverse(); // the oldest first
    for (const m of candidates) {
      const now = this.d.clock.now();
      const name = input.name ?? m.name;
      let won: boolean;
      try {
        won = this.store.claim(m.id, ['pooled'], {
          state: 'creating',
          name,
          created_by_door: actor.door,
          created_by_id: actor.id,
          created_at: now.toISOString(),
          ttl_minutes: o.ttl,
          expires_at: new Date(now.getTime() + o.ttl * 60_000).toISOString(),
          egress_allow: JSON.stringify(o.allow),
          placement: o.placement ? JSON.stringify(o.placement) : null,
          owner_pid: process.pid,
          owner_instance: this.d.tasks.instance,
        });
      } catch (e) {
        if (/UNIQUE constraint failed: sandboxes.name/.test((e as Error).message))
          throw new FluidError('CONFLICT', `A sandbox named "${name}" already exists. Choose another name.`);
        throw e;
      }
      if (won) return { id: m.id, name, allowChanged: m.egress_allow !== JSON.stringify(o.allow) };
    }
    return null;
  }

  /** A member is handed out only while it is of its source's latest base (a refresh outdates it). */
  private memberCurrent(r: SandboxRow): boolean {
    if (!r.base_id) return false;
    try {
      const b = this.bases.get(r.base_id);
      return this.bases.latestReady(r.host_id, b.sourceUuid)?.id === b.id;
    } catch {
      return false;
    }
  }

  private latestBaseOf(hostId: string, source: string): BaseRecord | null {
    return this.bases.list(hostId).find((b) => b.sourceName === source && b.state === 'ready') ?? null;
  }

  /**
   * Hand a taken member out: resume it (with its own expiry and allowlist on the host meanwhile), set
   * the clock that stood still while it was paused, and it runs. With the connection this process
   * kept, that is two round trips; after a restart the clock goes through the guest agent and the
   * login is a fresh one.
   */
  private async runHandout(
    id: string,
    host: Host,
    actor: Actor,
    ctx: TaskContext,
    allowChanged: boolean,
  ): Promise<Sandbox> {
    const p = new Phases();
    let conn: HostConnection | null = null;
    try {
      conn = await this.d.hosts.connection(host.id);
      const r = this.store.byId(id);
      const { connected, rootLogin } = this.guest(r).stats;
      const held = connected || rootLogin === 'connected';
      ctx.progress(0.3, 'Resuming a sandbox from the warm pool');
      // Its own expiry and allowlist reach the host meanwhile (settled before it is handed out).
      const beside = Promise.all([
        this.armHostExpiry(conn, host, r),
        allowChanged
          ? this.d.egress
              ?.sync(host.id)
              .catch((e: unknown) => this.d.log.warn('egress proxy unavailable', { host: host.name, err: e }))
          : null,
      ]).then(
        () => null,
        (e: unknown) => e,
      );
      await run(conn, virsh(host.libvirtUri, `resume ${shq(r.domain_name)}`), {
        what: 'Resuming the sandbox',
      });
      p.mark('resume');
      if (ctx.signal.aborted) throw new FluidError('CANCELLED', 'The sandbox creation was cancelled.');
      ctx.progress(0.7, 'Setting the clock');
      // A kept connection that does not answer is dropped for a new login, not a failed create.
      const kept =
        held &&
        (await this.setMemberClock(this.guest(r), ctx.signal).then(
          () => true,
          (e: unknown) => {
            if (ctx.signal.aborted) throw e;
            this.d.log.warn('a pool member’s kept connection failed; logging in anew', { id, err: e });
            this.d.guests.close(id);
            return false;
          },
        ));
      if (kept) p.mark('clock');
      else {
        // Without the kept connection the clock must be right before a login (certificates).
        await syncClock(conn, host.libvirtUri, r.domain_name, ctx.signal);
        p.mark('clock');
        await this.waitSsh(r, ctx.signal);
        p.mark('ssh');
        // The member's clock waiter (pool.ts) ends here too, instead of waiting forever.
        await this.guest(r).exec(clockSetScript(Date.now()), {
          root: true,
          timeoutMs: 30_000,
          signal: ctx.signal,
        });
      }
      const failed = await beside;
      if (failed) throw failed;
      p.mark('expiry');
      this.guest(r).hold(false);
      this.pool.forget(id);
      p.total();
      this.store.update(id, {
        state: 'running',
        start_path: 'pool',
        start_path_reason: kept ? 'taken from the warm pool' : 'taken from the warm pool (a new login)',
        timings: JSON.stringify(p.timings),
        owner_pid: null,
        owner_instance: null,
      });
      const done = this.store.byId(id);
      this.d.audit.append({
        actor,
        action: 'sandbox.create',
        target: id,
        data: {
          host: host.name,
          source: done.source_name,
          base: done.base_id,
          ip: done.ip,
          path: 'pool',
          reason: done.start_path_reason,
          timings: p.timings,
          hostKey: done.host_key_fp,
        },
      });
      this.changed(id);
      this.pool.kick();
      return this.get(id);
    } catch (err) {
      throw await this.createFailed(id, host, conn, actor, err, p, this.store.byId(id).slot, { pool: true });
    }
  }

  /**
   * Set a resumed member's clock through its waiter, over the kept connection: root's, or the login
   * user's when the guest refused root (no sudo either way); with sudo when it has no waiter.
   */
  private async setMemberClock(g: GuestSsh, signal: AbortSignal): Promise<void> {
    let res = await g.exec(clockSetScript(Date.now()), {
      root: g.stats.rootLogin === 'connected',
      timeoutMs: 15_000,
      signal,
    });
    if (res.exitCode === 3)
      res = await g.exec(`date -u -s @${(Date.now() / 1000).toFixed(3)} >/dev/null`, {
        root: true,
        timeoutMs: 30_000,
        signal,
      });
    if (res.exitCode !== 0)
      throw new FluidError(
        'INTERNAL',
        `Could not set the guest clock (exit ${res.exitCode}): ${res.stderr.trim().slice(-300)}`,
      );
  }

  /**
   * Make one member of a source: the create pipeline on the restore path, as the pool, within the
   * host's limits (a member that does not fit is not made; nobody is asked).
   */
  async fillMember(hostId: string, source: string): Promise<void> {
    const host = this.d.hosts.get(hostId);
    const base = this.latestBaseOf(hostId, source);
    const t = base?.templateState === 'ready' ? base.template : null;
    if (!t) throw new FluidError('CONFLICT', `No warm template of ${source} is ready on ${host.name}.`);
    const over = await this.overLimits(host, null, t.vcpus, t.memoryMiB);
    if (over.reasons.length)
      throw new FluidError('CONFLICT', `Over the host's limits: ${over.reasons.join('; ')}.`);
    const id = randomUUID();
    this.insertRow({
      id,
      name: `${slug(source)}-${id.slice(0, 6)}`,
      host,
      source,
      vcpus: t.vcpus,
      memoryMiB: t.memoryMiB,
      ttl: MEMBER_TTL_MINUTES,
      allow: this.d.settings.get().sandboxes.egressAllow,
      actor: POOL_ACTOR,
      placement: null,
    });
    const input: CreateInput = {
      source,
      vcpus: t.vcpus,
      memoryMiB: t.memoryMiB,
      allow: [],
      start: 'restore',
      refreshBase: false,
    };
    const task = this.d.tasks.start({
      kind: 'sandbox.pool',
      title: `Warm pool: a sandbox of ${source} on ${host.name}`,
      target: id,
      run: (ctx) => this.runCreate(id, host, input, POOL_ACTOR, ctx, true),
    });
    this.store.update(id, { task_id: task.id });
    const done = await this.d.tasks.wait(task.id);
    if (done.status !== 'succeeded')
      throw new FluidError(done.error?.code ?? 'INTERNAL', done.error?.message ?? `It ${done.status}.`);
  }

  /** Remove a paused member (stale, too many, or its source left the pool). */
  async drainMember(id: string, reason: string): Promise<void> {
    const claimed = this.store.claim(id, ['pooled'], {
      state: 'destroying',
      owner_pid: process.pid,
      owner_instance: this.d.tasks.instance,
    });
    if (!claimed) return;
    this.pool.forget(id);
    await this.destroyRow(this.store.byId(id), POOL_ACTOR, reason);
  }

  /**
   * Create where the sandbox fits: the named host; else the only host; else the machine that has the
   * source and the most memory free (placement.ts), with the reason recorded on the sandbox.
   */
  async createPlaced(input: CreateInput, actor: Actor, signal?: AbortSignal): Promise<Task> {
    if (input.host) return this.create(input, actor);
    const hosts = this.d.hosts.list();
    if (hosts.length <= 1) return this.create(input, actor);
    return this.create(input, actor, await this.place(hosts, input.source, input.memoryMiB, signal));
  }

  /** Choose a host for a source among several (placement.ts). */
  async place(
    hosts: Host[],
    source: string,
    memoryMiB?: number,
    signal?: AbortSignal,
  ): Promise<{ host: Host; placement: Placement }> {
    const pending = (hostIds: string[]) =>
      this.store
        .list()
        .filter((r) => hostIds.includes(r.host_id) && r.state === 'creating')
        .reduce((n, r) => n + r.memory_mib, 0);
    const facts = await gatherFacts(
      hosts,
      source,
      {
        vms: (id, sig) => this.d.hosts.vms(id, sig),
        freeMemoryMiB: async (id, sig) => (await this.d.hosts.capacity(id, sig)).freeMemoryMiB,
        pendingMiB: pending,
      },
      signal,
    );
    return choosePlacement(source, facts, memoryMiB);
  }

  private resolveHost(ref: string | undefined, source: string): Host {
    if (ref) return this.d.hosts.get(ref);
    const hosts = this.d.hosts.list();
    if (hosts.length === 1) return hosts[0]!;
    throw new FluidError(
      'VALIDATION',
      `Which host? ${hosts.length} hosts are registered (${hosts.map((h) => h.name).join(', ')}); pass host for source "${source}".`,
    );
  }

  private async runCreate(
    id: string,
    host: Host,
    input: CreateInput,
    actor: Actor,
    ctx: TaskContext,
    member = false,
  ): Promise<Sandbox> {
    const p = new Phases();
    const created: { domain?: boolean; dir?: boolean; slot?: number } = {};
    let conn: HostConnection | null = null;
    /** Host work that runs beside the first login (finishRestored): settled before any cleanup. */
    let finished: Promise<unknown> | null = null;
    try {
      ctx.progress(0.01, `Connecting to ${host.name}`);
      // The clone's new host keys are made on the thread pool while the clone is being prepared.
      const hostKeys = generateHostKeys(this.store.byId(id).name.slice(0, 63));
      hostKeys.catch(() => undefined);
      conn = await this.d.hosts.connection(host.id);
      const c = conn;
      // The isolated network is made ready while the source is inspected and admitted.
      const [vm, { pinAddresses }] = await Promise.all([
        (async () => {
          const vm = await this.findSource(c, host, input.source, ctx.signal);
          this.store.update(id, {
            vcpus: input.vcpus ?? vm.vcpus,
            memory_mib: input.memoryMiB ?? vm.memoryMiB,
          });
          p.mark('inspect');
          // A pool member was admitted before its row was made (fillMember), without asking anyone.
          if (!member)
            await this.admit(
              host,
              id,
              vm.name,
              input.vcpus ?? vm.vcpus,
              input.memoryMiB ?? vm.memoryMiB,
              actor,
              ctx,
            );
          p.mark('admission');
          return vm;
        })(),
        ensureNetwork(c, host.libvirtUri, ctx.signal),
      ]);
      const vcpus = input.vcpus ?? vm.vcpus;
      const memoryMiB = input.memoryMiB ?? vm.memoryMiB;
      const virtType = host.lastCheck?.facts.virtType ?? (await this.detectVirtType(host));
      p.mark('network');

      let base = input.refreshBase ? null : await this.usableBase(conn, host.id, vm.uuid);
      if (!base) {
        ctx.progress(0.1, `Copying ${vm.name}'s disks into Fluid's base cache`);
        base = await this.copyBase(conn, host, vm, sub(ctx, 0.1, 0.45), actor);
      }
      this.store.update(id, { base_id: base.id });
      p.mark('base');

      ctx.progress(0.46, 'Reserving an address');
      const slot = await claimSlot(
        conn,
        host.storageDir,
        { installation: this.d.installation, sandboxId: id },
        ctx.signal,
      );
      created.slot = slot;
      const ip = slotIp(slot);
      const mac = slotMac(slot);
      this.store.update(id, { slot, ip, mac });
      this.changed(id);
      p.mark('reserve');

      const row = this.store.byId(id);
      const template = this.pickTemplate(base, vcpus, memoryMiB, virtType, input.start);
      created.dir = true;
      created.domain = true;
      if (template.use) {
        ctx.progress(0.5, 'Restoring the warm template');
        await this.startFromTemplate(conn, host, row, base, template.use, ctx.signal);
        p.mark('restore');
      } else {
        ctx.progress(0.5, `Booting (${template.reason})`);
        await this.coldDefine(conn, host, row, base, virtType, pinAddresses, ctx.signal);
        p.mark('define');
        // Not cancelled midway (seconds): a cancel that only closed the connection could leave the
        // start finishing on the host after the cleanup, and a VM running that nobody owns.
        await run(conn, virsh(host.libvirtUri, `start ${shq(row.domain_name)}`), {
          what: 'Starting the sandbox',
        });
        if (ctx.signal.aborted) throw new FluidError('CANCELLED', 'The sandbox creation was cancelled.');
        // The guest's serial console shows in the progress while it boots (and in the error if it does not).
        await this.bootWatched(conn, host, row, ctx.signal, (f, line) =>
          ctx.progress(0.5 + 0.28 * f, `Booting (${template.reason}): ${line}`),
        );
        p.mark('boot');
      }
      this.store.update(id, {
        start_path: template.use ? 'restore' : 'cold',
        start_path_reason: template.reason,
      });

      ctx.progress(0.8, 'Giving the clone its own identity');
      // The host's proxy learns the new address meanwhile.
      const egress = this.d.egress
        ?.sync(host.id)
        .catch((e: unknown) => this.d.log.warn('egress proxy unavailable', { host: host.name, err: e }));
      this.store.update(id, {
        host_key_fp: await this.applyIdentity(
          conn,
          host,
          this.store.byId(id),
          await hostKeys,
          ctx.signal,
          template.use,
        ),
      });
      p.mark('identity');
      // A restored sandbox gets its address filter and is made persistent during the first login:
      // libvirt runs them one after the other with the guest agent's work and the baseline, not with
      // the network. Nobody else can log in before the create ends.
      finished = template.use
        ? this.finishRestored(conn, host, row, template.use, pinAddresses).then(
            () => null,
            (e: unknown) => e,
          )
        : null;
      await egress;
      p.mark('egress');

      ctx.progress(0.9, 'Logging in over SSH with a Fluid certificate');
      // A member's connection is kept while it is paused: no keepalives, no idle close (pool.ts).
      if (member) this.guest(this.store.byId(id)).hold(true);
      await this.waitSsh(this.store.byId(id), ctx.signal);
      if (member) {
        const w = await this.guest(this.store.byId(id)).exec(clockWaiterScript(FLUID_USER), {
          root: true,
          timeoutMs: 60_000,
          signal: ctx.signal,
        });
        if (w.exitCode !== 0)
          throw new FluidError(
            'INTERNAL',
            `Could not prepare the member's clock: ${w.stderr.trim().slice(-300)}`,
          );
      }
      p.mark('ssh');
      if (finished) {
        const unfinished = await finished;
        if (unfinished) throw unfinished;
        p.mark('filter+define');
      }

      // The host removes the sandbox by itself if no Fluid process does it in time (expiry.ts);
      // armed while the baseline is recorded.
      const expiry = this.armHostExpiry(conn, host, this.store.byId(id)).then(
        () => null,
        (e: unknown) => e,
      );
      if (this.d.baseline) {
        // After Fluid's own work (identity, CA trust, proxy, first login): the diff's reference point.
        ctx.progress(0.95, 'Recording the baseline for the system diff');
        await this.d.baseline.record(this.store.byId(id), host, conn, ctx.signal);
        p.mark('baseline');
      }
      const notArmed = await expiry;
      if (notArmed) throw notArmed;
      p.mark('expiry');

      if (member) {
        await run(conn, virsh(host.libvirtUri, `suspend ${shq(this.store.byId(id).domain_name)}`), {
          what: 'Pausing the pool member',
        });
        p.mark('pause');
        p.total();
        this.store.update(id, {
          state: 'pooled',
          start_path: 'restore',
          start_path_reason: 'made for the warm pool',
          timings: JSON.stringify(p.timings),
          owner_pid: null,
          owner_instance: null,
        });
        this.pool.noteHeld(id);
        this.d.audit.append({
          actor,
          action: 'sandbox.pool.add',
          target: id,
          data: { host: host.name, source: vm.name, base: base.id, ip, timings: p.timings },
        });
        return this.dto(this.store.byId(id));
      }

      p.total();
      this.store.update(id, {
        state: 'running',
        timings: JSON.stringify(p.timings),
        owner_pid: null,
        owner_instance: null,
      });
      this.d.audit.append({
        actor,
        action: 'sandbox.create',
        target: id,
        data: {
          host: host.name,
          source: vm.name,
          base: base.id,
          fingerprint: base.fingerprint,
          ip,
          path: template.use ? 'restore' : 'cold',
          reason: template.reason,
          timings: p.timings,
          hostKey: this.store.byId(id).host_key_fp,
        },
      });
      this.changed(id);
      if (!template.use && template.build && this.backgroundTemplates)
        this.buildTemplate(host, base, { vcpus, memoryMiB, virtType }, actor);
      return this.get(id);
    } catch (err) {
      // A define still running would bring back the domain the cleanup removes.
      await finished;
      throw await this.createFailed(id, host, conn, actor, err, p, created.slot ?? null, created);
    }
  }

  /** After a failed or cancelled creation: remove what it made, record why, return the error to throw. */
  private async createFailed(
    id: string,
    host: Host,
    conn: HostConnection | null,
    actor: Actor,
    err: unknown,
    p: Phases,
    slot: number | null,
    cleaned: object,
  ): Promise<unknown> {
    const payload = toErrorPayload(err);
    this.d.log.warn('sandbox create failed', { id, err: payload });
    this.d.guests.close(id);
    this.pool.forget(id);
    if (conn)
      await this.teardown(conn, host, this.store.byId(id), slot).catch((e: unknown) =>
        this.d.log.error('cleanup after failed create', { id, err: e }),
      );
    this.store.update(id, {
      state: 'failed',
      error: JSON.stringify(payload),
      timings: JSON.stringify(p.timings),
      owner_pid: null,
      owner_instance: null,
    });
    this.d.audit.append({
      actor,
      action: 'sandbox.create.failed',
      target: id,
      data: { error: payload, cleaned },
    });
    this.changed(id);
    return err;
  }

  private copyBase(
    conn: HostConnection,
    host: Host,
    vm: Vm,
    ctx: TaskContext,
    actor: Actor,
  ): Promise<BaseRecord> {
    const deps = {
      db: this.d.db,
      store: this.bases,
      audit: this.d.audit,
      clock: this.d.clock,
      installation: this.d.installation,
      instance: this.d.tasks.instance,
    };
    return buildBase(deps, conn, host, vm, ctx, actor);
  }

  /** The latest ready base of a source whose files are still on the host (a vanished one is retired). */
  private async usableBase(
    conn: HostConnection,
    hostId: string,
    sourceUuid: string,
  ): Promise<BaseRecord | null> {
    for (;;) {
      const b = this.bases.latestReady(hostId, sourceUuid);
      if (!b) return null;
      const r = await conn.exec(b.disks.map((d) => `test -f ${shq(d.path)}`).join(' && ') || 'false');
      if (r.code === 0) return b;
      this.bases.update(b.id, { state: 'failed', error: 'its files are gone from the host' });
      this.d.log.warn('base files missing; taking a new copy', { base: b.id });
    }
  }

  private async findSource(
    conn: HostConnection,
    host: Host,
    source: string,
    signal: AbortSignal,
  ): Promise<Vm> {
    const doms = await listDomains(conn, host.libvirtUri, { signal });
    const d = doms.find((x) => x.name === source || x.uuid === source);
    if (!d)
      throw new FluidError(
        'NOT_FOUND',
        `No VM "${source}" on ${host.name}. See \`fluid source list --host ${host.name}\`.`,
      );
    if (d.fluid)
      throw new FluidError(
        'VALIDATION',
        `"${source}" is one of Fluid's own VMs (${d.fluid.kind}); clone a source VM instead.`,
      );
    return { ...d, hostId: host.id, hostName: host.name };
  }

  private async detectVirtType(host: Host): Promise<'kvm' | 'qemu'> {
    const t = this.d.hosts.check(host.id, { door: 'system', id: 'sandbox-create' });
    const done = await this.d.tasks.wait(t.id);
    const v = (done.result as { facts?: { virtType?: 'kvm' | 'qemu' } } | null)?.facts?.virtType;
    if (!v)
      throw new FluidError(
        'UNAVAILABLE',
        `The preflight of ${host.name} failed; run \`fluid host check ${host.name}\` for details.`,
      );
    return v;
  }

  /** What a sandbox of this size would exceed on the host (pool members count like sandboxes). */
  private async overLimits(
    host: Host,
    id: string | null,
    vcpus: number,
    memoryMiB: number,
    signal?: AbortSignal,
  ) {
    const s = this.d.settings.get().sandboxes;
    const live = this.store
      .list({ hostId: host.id })
      .filter(
        (r) => r.id !== id && ['creating', 'starting', 'running', 'stopping', 'pooled'].includes(r.state),
      );
    const committed = {
      vcpus: live.reduce((n, r) => n + r.vcpus, 0),
      memoryMiB: live.reduce((n, r) => n + r.memory_mib, 0),
      sandboxes: live.length,
    };
    let cap;
    try {
      cap = await this.d.hosts.memory(host.id, signal);
    } catch {
      cap = null;
    }
    const hostCpus = cap?.cpus ?? host.lastCheck?.facts.cpus ?? 1;
    const hostMem = cap?.memoryMiB ?? host.lastCheck?.facts.memoryMiB ?? 0;
    const freeMem = cap?.freeMemoryMiB ?? host.lastCheck?.facts.freeMemoryMiB ?? 0;
    const limits = {
      vcpus: s.maxCommittedVcpus ?? hostCpus * 4,
      memoryMiB: s.maxCommittedMemoryMiB ?? Math.max(0, hostMem - s.reserveMemoryMiB),
      sandboxes: s.maxSandboxesPerHost,
    };
    const reasons: string[] = [];
    if (committed.vcpus + vcpus > limits.vcpus)
      reasons.push(`${committed.vcpus} + ${vcpus} vCPUs exceeds the limit of ${limits.vcpus}`);
    if (committed.memoryMiB + memoryMiB > limits.memoryMiB)
      reasons.push(`${committed.memoryMiB} + ${memoryMiB} MiB exceeds the limit of ${limits.memoryMiB} MiB`);
    if (committed.sandboxes + 1 > limits.sandboxes)
      reasons.push(`${committed.sandboxes + 1} sandboxes exceeds the limit of ${limits.sandboxes}`);
    if (freeMem && memoryMiB > freeMem - s.reserveMemoryMiB)
      reasons.push(
        `${memoryMiB} MiB requested but only ${freeMem} MiB is free on the host (keeping ${s.reserveMemoryMiB} MiB in reserve)`,
      );
    return { reasons, committed, limits, freeMem };
  }

  /** Capacity admission: over the limits, the request waits for a person's decision. */
  private async admit(
    host: Host,
    id: string,
    source: string,
    vcpus: number,
    memoryMiB: number,
    actor: Actor,
    ctx: TaskContext,
  ): Promise<void> {
    let over = await this.overLimits(host, id, vcpus, memoryMiB, ctx.signal);
    // The warm pool gives way: its paused members (of other sources) go before anyone is asked.
    for (;;) {
      if (!over.reasons.length) return;
      const member = this.store
        .list({ hostId: host.id })
        .filter((r) => r.state === 'pooled' && isPoolMember(r))
        .at(-1);
      if (!member) break;
      await this.drainMember(member.id, `made room for sandbox ${id}`);
      over = await this.overLimits(host, id, vcpus, memoryMiB, ctx.signal);
    }
    const { reasons, committed, limits, freeMem } = over;
    const a = this.d.approvals.request({
      kind: 'capacity',
      title: `Create a ${vcpus} vCPU / ${memoryMiB} MiB sandbox from ${source} on ${host.name}`,
      detail: `Over the host's limits: ${reasons.join('; ')}.`,
      risk: 'medium',
      subject: { host: host.id, source, vcpus, memoryMiB, committed, limits, freeMemoryMiB: freeMem },
      requestedBy: actor,
      sandboxId: id,
      sessionId: actor.door === 'agent' ? actor.id : null,
    });
    ctx.progress(null, `Waiting for approval: ${reasons.join('; ')}`);
    const decided = await this.d.approvals.wait(a.id, ctx.signal).catch((e: unknown) => {
      this.d.approvals.cancel(a.id, actor, 'the sandbox creation was cancelled');
      throw e;
    });
    if (decided.status !== 'approved') {
      throw new FluidError(
        'DENIED',
        `Creating the sandbox over the host's limits was ${decided.status}${decided.decidedBy ? ` by ${decided.decidedBy.door}:${decided.decidedBy.id}` : ''}${decided.note ? `: ${decided.note}` : ''}.`,
        { approvalId: a.id },
      );
    }
  }

  private pickTemplate(
    base: BaseRecord,
    vcpus: number,
    memoryMiB: number,
    virtType: 'kvm' | 'qemu',
    mode: CreateInput['start'],
  ): { use: TemplateInfo | null; reason: string; build: boolean } {
    const warm = this.d.settings.get().sandboxes.warmTemplates;
    if (mode === 'cold') return { use: null, reason: 'cold boot requested', build: false };
    const t = base.template;
    if (base.templateState === 'ready' && t) {
      if (t.vcpus === vcpus && t.memoryMiB === memoryMiB && t.virtType === virtType)
        return { use: t, reason: 'restored the warm template', build: false };
      const why = `the template is ${t.vcpus} vCPU / ${t.memoryMiB} MiB, this sandbox ${vcpus} / ${memoryMiB}`;
      if (mode === 'restore') throw new FluidError('CONFLICT', `Cannot restore: ${why}.`);
      return { use: null, reason: `cold boot: ${why}`, build: false };
    }
    if (mode === 'restore')
      throw new FluidError(
        'CONFLICT',
        `No warm template is ready for ${base.sourceName} (${base.templateState}${base.templateError ? `: ${base.templateError}` : ''}).`,
      );
    if (base.templateState === 'building')
      return { use: null, reason: 'cold boot: the warm template is still being built', build: false };
    if (/<nvram/.test(base.sourceXml))
      return { use: null, reason: 'cold boot: UEFI guests have no memory template yet', build: false };
    if (!warm) return { use: null, reason: 'cold boot: warm templates are off in Settings', build: false };
    if (base.templateState === 'failed')
      return { use: null, reason: `cold boot: the template failed (${base.templateError})`, build: false };
    return {
      use: null,
      reason: 'cold boot: first sandbox of this source (a warm template is built next)',
      build: true,
    };
  }

  private async coldDefine(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    base: BaseRecord,
    virtType: 'kvm' | 'qemu',
    pinAddress: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const disks: Record<string, string> = {};
    for (const d of base.disks) disks[d.target] = `${r.dir}/${d.target}.qcow2`;
    const hasNvram = /<nvram/.test(base.sourceXml);
    const derived = deriveDomain(base.sourceXml, {
      name: r.domain_name,
      uuid: r.domain_uuid,
      genid: randomUUID(),
      virtType,
      vcpus: r.vcpus,
      memoryMiB: r.memory_mib,
      disks,
      nvramPath: hasNvram ? `${r.dir}/nvram.fd` : null,
      nic: { network: NETWORK_NAME, mac: r.mac!, pinIp: pinAddress ? r.ip : null },
      serialLog: `${r.dir}/serial.log`,
      label: {
        kind: 'sandbox',
        id: r.id,
        installation: this.d.installation,
        source: r.source_name,
        base: base.id,
      },
    });
    const srcNvram = /<nvram[^>]*>([^<]+)<\/nvram>/.exec(base.sourceXml)?.[1];
    await run(
      conn,
      `set -e; mkdir -p ${shq(r.dir)}; chmod 755 ${shq(r.dir)} ${shq(hostLayout(host.storageDir, this.d.installation).sandboxes)}
${base.disks.map((d) => `qemu-img create -q -f qcow2 -F qcow2 -b ${shq(d.path)} ${shq(disks[d.target]!)}`).join('\n')}
${hasNvram && srcNvram ? `cp ${shq(srcNvram)} ${shq(`${r.dir}/nvram.fd`)}` : ':'}
cat > ${shq(r.dir + '/domain.xml')}
${virsh(host.libvirtUri, `define ${shq(r.dir + '/domain.xml')}`)} >/dev/null`,
      { stdin: derived.xml, what: 'Defining the sandbox VM', signal, timeoutMs: 120_000 },
    );
  }

  private async startFromTemplate(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    base: BaseRecord,
    t: TemplateInfo,
    signal: AbortSignal,
  ): Promise<void> {
    const V = (a: string) => virsh(host.libvirtUri, a);
    await run(conn, `mkdir -p ${shq(r.dir)} && chmod 755 ${shq(r.dir)}`, { signal });
    const layerOf = (target: string) => `${t.dir}/${target}.qcow2`;
    await restoreFromTemplate(
      conn,
      host,
      t,
      {
        name: r.domain_name,
        uuid: r.domain_uuid,
        genid: randomUUID(),
        dir: r.dir,
        disks: base.disks.map((d) => [layerOf(d.target), `${r.dir}/${d.target}.qcow2`]),
        serialLog: `${r.dir}/serial.log`,
        label: { id: r.id, installation: this.d.installation, source: r.source_name, base: base.id },
      },
      signal,
    );
    // The NIC was left out of the template: plug the sandbox's own in, without its address filter
    // for now (finishRestored). The guest clock, frozen at save time, is set by the identity step.
    await run(
      conn,
      `f=${shq(r.dir + '/nic.xml')}; cat > "$f" && ${V(`attach-device ${shq(r.domain_name)} "$f" --live`)} >/dev/null`,
      { stdin: templateNic(t, r), what: 'Attaching the network card', signal },
    );
  }

  /**
   * What a restored sandbox still needs on the host, done during Fluid's first login (before the
   * create ends, so before anyone else can log in): the address filter on its NIC (libvirt's nwfilter
   * takes seconds to set up, as long as the restore itself), then the domain made persistent (a stop
   * and start later boot it from its own overlay), with the filter. Not cancelled midway (seconds): a
   * define finishing on the host after the cleanup would leave a domain nobody owns.
   */
  private async finishRestored(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    t: TemplateInfo,
    pinAddress: boolean,
  ): Promise<void> {
    const V = (a: string) => virsh(host.libvirtUri, a);
    if (pinAddress)
      await run(
        conn,
        `f=${shq(r.dir + '/nic.xml')}; cat > "$f" && ${V(`update-device ${shq(r.domain_name)} "$f" --live`)} >/dev/null`,
        { stdin: pinNicAddress(templateNic(t, r), r.ip!), what: "Filtering the sandbox's address" },
      );
    await run(
      conn,
      `f=${shq(r.dir + '/domain.xml')}; ${V(`dumpxml --inactive ${shq(r.domain_name)}`)} > "$f" && ${V(`define "$f"`)} >/dev/null`,
      { what: 'Defining the restored sandbox' },
    );
  }

  /** The identity step (new host keys and all), run once per sandbox through the guest agent. */
  private async applyIdentity(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    keys: HostKeySet,
    signal: AbortSignal,
    fromTemplate: TemplateInfo | null = null,
  ): Promise<string> {
    const attempt = (timeoutMs: number) =>
      guestExec(conn, host.libvirtUri, r.domain_name, '/bin/sh', ['-s'], {
        stdin: identityScript({
          hostname: r.name.slice(0, 63),
          caPublicKey: this.d.ca.publicKey(),
          ip: r.ip!,
          prefix: PREFIX,
          mac: r.mac!,
          gateway: GATEWAY,
          proxySetup: this.d.egress?.guestSetup() ?? '',
          hostKeys: keys,
          principal: sandboxPrincipal(r.id),
          nowMs: Date.now(),
          // A clone of a template made under this CA (and with the proxy set up) only needs what is unique.
          includeTrust: !(
            fromTemplate?.caFingerprint === this.d.ca.fingerprint() &&
            (fromTemplate.proxyConfigured || !this.d.egress)
          ),
        }),
        timeoutMs,
        signal,
        what: 'The identity step in the guest',
        diagnose: true,
      });
    // It takes seconds, even emulated. One that hangs is stopped (guestExec says where it stood, for
    // the log) and run once more: the script is idempotent, and a second hang fails the create.
    const res = await attempt(IDENTITY_TIMEOUT_MS).catch((e: unknown) => {
      if (!(e instanceof FluidError) || e.code !== 'TIMEOUT' || signal.aborted) throw e;
      this.d.log.warn('the identity step hung in the guest; running it again', { id: r.id, err: e });
      return attempt(2 * IDENTITY_TIMEOUT_MS);
    });
    if (res.exitCode !== 0)
      throw new FluidError(
        'INTERNAL',
        `The identity step failed in the guest (exit ${res.exitCode}): ${(res.stderr || res.stdout).trim().slice(-1500)}`,
      );
    const out = parseIdentityOutput(res.stdout);
    if (out.hostKey.split(/\s+/)[1] !== keys.ed25519.public.split(/\s+/)[1]) {
      throw new FluidError(
        'INTERNAL',
        'The guest reports a different SSH host key than the one Fluid installed.',
      );
    }
    return fingerprintOf(keyBlob(keys.ed25519.public));
  }

  /**
   * Wait for the guest agent while following the guest's serial log: its newest line goes to `say`
   * (at most every 2 s) with a fraction that grows with the time spent, and a boot that fails says
   * what the console printed last.
   */
  private async bootWatched(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    signal: AbortSignal,
    say?: (fraction: number, line: string) => void,
  ): Promise<void> {
    try {
      await this.bootWatchedOnce(conn, host, r, signal, say);
    } catch (err) {
      // A VM that crashed while booting (its QEMU died, or the guest panicked: libvirt tells these
      // from a guest that powered off) is started once more; a second crash fails with its reason.
      const stopped =
        (err instanceof FluidError && (err.data as { stopped?: string } | undefined)?.stopped) || '';
      if (signal.aborted || !/\bcrashed\b/.test(stopped)) throw err;
      this.d.log.warn('the VM crashed while booting; starting it once more', { id: r.id, err });
      say?.(0, 'The VM crashed while booting; starting it once more');
      // Not cancelled midway, like the first start (a start finishing after the cleanup).
      await run(conn, virsh(host.libvirtUri, `start ${shq(r.domain_name)}`), {
        what: 'Starting the sandbox again',
      });
      if (signal.aborted) throw new FluidError('CANCELLED', 'The boot was cancelled.');
      await this.bootWatchedOnce(conn, host, r, signal, say);
    }
  }

  private async bootWatchedOnce(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    signal: AbortSignal,
    say?: (fraction: number, line: string) => void,
  ): Promise<void> {
    const log = new BootLog(conn, serialLogPath(r.dir));
    const ac = new AbortController();
    const stop = () => ac.abort();
    signal.addEventListener('abort', stop, { once: true });
    const t0 = Date.now();
    // Cold boots take tens of seconds under emulation: the fraction approaches 1 without reaching it.
    const following = log.follow((line) => say?.(1 - Math.exp(-(Date.now() - t0) / 45_000), line), ac.signal);
    try {
      await waitForAgent(conn, host.libvirtUri, r.domain_name, BOOT_TIMEOUT_MS, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      await log.poll().catch(() => null);
      const lines = log.lines();
      const e = toErrorPayload(err);
      throw new FluidError(
        e.code,
        lines.length
          ? `${e.message}\nThe serial console printed last:\n${lines.map((l) => `  ${l}`).join('\n')}`
          : `${e.message} The serial console printed nothing.`,
        e.data,
      );
    } finally {
      ac.abort();
      signal.removeEventListener('abort', stop);
      await following;
    }
  }

  /** Runtime state (pinned address, proxy settings) after a boot of an existing sandbox. */
  private async applyRuntime(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    signal: AbortSignal,
  ): Promise<void> {
    // The principal line too: a sandbox made before principals were per sandbox gets its own at restart.
    const script = `#!/bin/sh\nset -eu\nexport PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n${runtimeScript({ ip: r.ip!, prefix: PREFIX, mac: r.mac! })}\n${principalSection(sandboxPrincipal(r.id), GATEWAY)}\n`;
    const res = await guestExec(conn, host.libvirtUri, r.domain_name, '/bin/sh', ['-s'], {
      stdin: script,
      timeoutMs: 120_000,
      signal,
      what: 'Configuring the sandbox after boot',
      diagnose: true,
    });
    if (res.exitCode !== 0)
      throw new FluidError(
        'INTERNAL',
        `Configuring the sandbox after boot failed (exit ${res.exitCode}): ${(res.stderr || res.stdout).trim().slice(-1500)}`,
      );
  }

  private guest(r: SandboxRow): GuestSsh {
    return this.d.guests.get(this.guestTarget(r));
  }

  private guestTarget(r: SandboxRow): GuestTarget {
    if (!r.ip || !r.host_key_fp)
      throw new FluidError('CONFLICT', `Sandbox ${r.name} is not reachable yet (${r.state}).`);
    return {
      key: r.id,
      host: this.hostGetter(r.host_id),
      address: r.ip,
      // This sandbox's own principal, valid only from the gateway (where the host's connections come from).
      ...sandboxLogin(r.id, GATEWAY),
      // Root commands log in as root (identity.ts, rootLoginSection), not through a sudo each.
      rootUser: ROOT_USER,
      hostKey: { fingerprint: r.host_key_fp },
      sandboxId: r.id,
    };
  }

  private hostGetter(hostId: string): () => Promise<HostConnection> {
    let g = this.hostGetters.get(hostId);
    if (!g) {
      g = () => this.d.hosts.connection(hostId);
      this.hostGetters.set(hostId, g);
    }
    return g;
  }

  private async waitSsh(r: SandboxRow, signal: AbortSignal): Promise<void> {
    const end = Date.now() + WAIT_SSH_MS;
    let last: unknown = null;
    while (Date.now() < end) {
      signal.throwIfAborted();
      try {
        // As root: the connection root commands use is the one made here (guestTarget). Its spare
        // runner starts meanwhile, so the first command after the create needs no new channel.
        await this.guest(r).prepare({ root: true });
        signal.throwIfAborted();
        return;
      } catch (e) {
        last = e;
        if ((e as FluidError).code === 'HOSTKEY_MISMATCH' || (e as FluidError).code === 'CANCELLED') throw e;
        this.d.guests.close(r.id);
      }
      // Refused: sshd is re-executing itself after the identity step's reload (sshdReloadSection),
      // which takes a tenth of a second or two; a refusal costs the guest next to nothing.
      const refused = /connection refused/i.test((last as Error | null)?.message ?? '');
      await new Promise((res) => setTimeout(res, refused ? 50 : 300));
    }
    throw new FluidError(
      'TIMEOUT',
      `SSH to the sandbox at ${r.ip} did not come up within ${WAIT_SSH_MS / 1000} s: ${(last as Error)?.message ?? 'no answer'}`,
    );
  }

  private buildTemplate(
    host: Host,
    base: BaseRecord,
    spec: { vcpus: number; memoryMiB: number; virtType: 'kvm' | 'qemu' },
    actor: Actor,
  ): Task | null {
    const key = `${base.id}/${spec.vcpus}x${spec.memoryMiB}`;
    if (this.templateBuilds.has(key)) return null;
    this.bases.update(base.id, {
      template_state: 'building',
      template_error: null,
      owner_pid: process.pid,
      owner_instance: this.d.tasks.instance,
    });
    const task = this.d.tasks.start({
      kind: 'template.build',
      title: `Warm template of ${base.sourceName} (${spec.vcpus} vCPU, ${spec.memoryMiB} MiB)`,
      target: base.id,
      run: async (ctx) => {
        try {
          const conn = await this.d.hosts.connection(host.id);
          const t = await buildTemplate(
            conn,
            host,
            this.d.installation,
            base,
            spec,
            this.d.ca,
            this.d.egress?.guestSetup() ?? '',
            ctx,
          );
          this.bases.update(base.id, {
            template_state: 'ready',
            template: JSON.stringify(t),
            owner_pid: null,
            owner_instance: null,
          });
          this.d.audit.append({
            actor,
            action: 'template.create',
            target: base.id,
            data: {
              source: base.sourceName,
              vcpus: t.vcpus,
              memoryMiB: t.memoryMiB,
              bootMs: t.bootMs,
              saveMs: t.saveMs,
            },
          });
          return { bootMs: t.bootMs, saveMs: t.saveMs };
        } catch (err) {
          this.bases.update(base.id, {
            template_state: 'failed',
            template_error: toErrorPayload(err).message,
            owner_pid: null,
            owner_instance: null,
          });
          throw err;
        }
      },
    });
    const done = this.d.tasks.wait(task.id).then(
      () => undefined,
      () => undefined,
    );
    this.templateBuilds.set(key, done);
    void done.finally(() => this.templateBuilds.delete(key));
    return task;
  }

  /** Build (or rebuild) a source's warm template now. */
  warm(
    hostRef: string | undefined,
    source: string,
    size: { vcpus?: number; memoryMiB?: number },
    actor: Actor,
  ): Task {
    const host = this.resolveHost(hostRef, source);
    return this.d.tasks.start({
      kind: 'base.warm',
      title: `Warm template of ${source}`,
      target: host.id,
      run: async (ctx) => {
        const conn = await this.d.hosts.connection(host.id);
        const vm = await this.findSource(conn, host, source, ctx.signal);
        let base = await this.usableBase(conn, host.id, vm.uuid);
        if (!base) {
          ctx.progress(0.05, `Copying ${vm.name} into the base cache first`);
          base = await this.copyBase(conn, host, vm, sub(ctx, 0.05, 0.4), actor);
        }
        const virtType = host.lastCheck?.facts.virtType ?? (await this.detectVirtType(host));
        const spec = { vcpus: size.vcpus ?? vm.vcpus, memoryMiB: size.memoryMiB ?? vm.memoryMiB, virtType };
        const t = this.buildTemplate(host, base, spec, actor);
        if (!t) throw new FluidError('CONFLICT', `A warm template of ${source} is already being built.`);
        const done = await this.d.tasks.wait(t.id, ctx.signal);
        if (done.status !== 'succeeded')
          throw new FluidError(
            done.error?.code ?? 'INTERNAL',
            done.error?.message ?? `The template build ${done.status}.`,
          );
        return { baseId: base.id, ...(done.result as object) };
      },
    });
  }

  /** Wait for background template builds (tests, shutdown). */
  async settleTemplates(): Promise<void> {
    await Promise.allSettled([...this.templateBuilds.values()]);
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  /** Destroy a sandbox and everything of it on its host; `reason` goes to the audit log. */
  async destroy(ref: string, actor: Actor, reason?: string): Promise<Sandbox> {
    return this.destroyRow(this.store.row(ref), actor, reason);
  }

  private async destroyRow(r: SandboxRow, actor: Actor, reason?: string): Promise<Sandbox> {
    if (r.state === 'destroyed') return this.dto(r);
    if (r.state === 'creating' && r.task_id && r.owner_instance === this.d.tasks.instance) {
      // Our own creation in flight: cancel it; its cleanup removes what it made.
      this.d.tasks.cancel(r.task_id);
      await this.d.tasks.wait(r.task_id);
    }
    const fresh = this.store.byId(r.id);
    if (
      fresh.state === 'creating' &&
      fresh.owner_pid &&
      fresh.owner_instance !== this.d.tasks.instance &&
      pidAlive(fresh.owner_pid)
    ) {
      throw new FluidError(
        'CONFLICT',
        `Sandbox ${r.name} is being created by another Fluid process (pid ${fresh.owner_pid}); cancel that task first.`,
      );
    }
    this.store.update(r.id, { state: 'destroying' });
    this.changed(r.id);
    const host = this.d.hosts.get(r.host_id);
    const conn = await this.d.hosts.connection(host.id);
    this.d.guests.close(r.id);
    this.endInteractive(r.id, 'the sandbox was destroyed');
    const cleaned = await this.teardown(conn, host, fresh, fresh.slot);
    this.store.update(r.id, { state: 'destroyed' });
    this.d.audit.append({
      actor,
      action: 'sandbox.destroy',
      target: r.id,
      data: { name: r.name, host: host.name, cleaned, ...(reason ? { reason } : {}) },
    });
    await this.d.egress?.sync(host.id).catch(() => {});
    this.changed(r.id);
    return this.dto(this.store.byId(r.id));
  }

  /** Remove everything of a sandbox from its host. Idempotent. */
  private async teardown(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    slot: number | null,
  ): Promise<string[]> {
    const V = (a: string) => virsh(host.libvirtUri, a);
    const out = await run(
      conn,
      `cleaned=""
if ${V(`domstate ${shq(r.domain_name)}`)} >/dev/null 2>&1; then
  ${V(`destroy ${shq(r.domain_name)}`)} >/dev/null 2>&1 || true
  ${V(`undefine ${shq(r.domain_name)} --nvram --snapshots-metadata`)} >/dev/null 2>&1 || ${V(`undefine ${shq(r.domain_name)} --snapshots-metadata`)} >/dev/null 2>&1 || true
  cleaned="$cleaned domain"
fi
if [ -d ${shq(r.dir)} ]; then rm -rf ${shq(r.dir)}; cleaned="$cleaned files"; fi
echo $cleaned`,
      { what: `Removing sandbox ${r.name} from ${host.name}`, timeoutMs: 120_000 },
    );
    const cleaned = out.trim().split(/\s+/).filter(Boolean);
    await disarmExpiry(conn, hostLayout(host.storageDir, this.d.installation), [r.id]).catch((err: unknown) =>
      this.d.log.warn('could not remove the host-side expiry entry', { sandbox: r.id, err }),
    );
    if (
      slot &&
      (await releaseSlot(conn, host.storageDir, slot, { installation: this.d.installation, sandboxId: r.id }))
    )
      cleaned.push(`address ${slotIp(slot)}`);
    return cleaned;
  }

  async stop(ref: string, force: boolean, actor: Actor): Promise<Sandbox> {
    const r = this.store.row(ref);
    if (r.state === 'stopped') return this.dto(r);
    if (r.state !== 'running')
      throw new FluidError(
        'CONFLICT',
        `Sandbox ${r.name} is ${r.state}; only a running sandbox can be stopped.`,
      );
    const host = this.d.hosts.get(r.host_id);
    const conn = await this.d.hosts.connection(host.id);
    this.store.update(r.id, { state: 'stopping' });
    this.changed(r.id);
    this.d.guests.close(r.id);
    this.endInteractive(r.id, 'the sandbox was stopped');
    const V = (a: string) => virsh(host.libvirtUri, a);
    await run(
      conn,
      `d=${shq(r.domain_name)}
${
  force
    ? ''
    : `${V('shutdown "$d"')} >/dev/null 2>&1 || true
i=0; while [ $i -lt 600 ]; do [ "$(${V('domstate "$d"')} 2>/dev/null)" = "shut off" ] && exit 0; sleep 0.1; i=$((i+1)); done`
}
${V('destroy "$d"')} >/dev/null 2>&1 || true`,
      { what: `Stopping ${r.name}`, timeoutMs: 120_000 },
    ).catch((e: unknown) => {
      this.store.update(r.id, { state: 'running' });
      throw e;
    });
    this.store.update(r.id, { state: 'stopped' });
    this.d.audit.append({ actor, action: 'sandbox.stop', target: r.id, data: { force } });
    this.changed(r.id);
    return this.get(r.id);
  }

  start(ref: string, actor: Actor): Task {
    const r = this.store.row(ref);
    if (r.state !== 'stopped')
      throw new FluidError(
        'CONFLICT',
        `Sandbox ${r.name} is ${r.state}; only a stopped sandbox can be started.`,
      );
    this.store.update(r.id, { state: 'starting' });
    this.changed(r.id);
    return this.d.tasks.start({
      kind: 'sandbox.start',
      title: `Start sandbox ${r.name}`,
      target: r.id,
      run: async (ctx) => {
        const p = new Phases();
        const host = this.d.hosts.get(r.host_id);
        try {
          const conn = await this.d.hosts.connection(host.id);
          ctx.progress(0.1, 'Booting');
          await this.bootExisting(conn, host, r, ctx.signal, p, (f, line) =>
            ctx.progress(0.1 + 0.6 * f, `Booting: ${line}`),
          );
          p.total();
          this.store.update(r.id, {
            state: 'running',
            start_path: 'cold',
            start_path_reason: 'started a stopped sandbox',
            timings: JSON.stringify(p.timings),
          });
          this.d.audit.append({ actor, action: 'sandbox.start', target: r.id, data: { timings: p.timings } });
          this.changed(r.id);
          return this.get(r.id);
        } catch (err) {
          this.store.update(r.id, { state: 'stopped', error: JSON.stringify(toErrorPayload(err)) });
          this.changed(r.id);
          throw err;
        }
      },
    });
  }

  /** Boot a sandbox's defined domain and make it usable again (address, proxy settings, SSH). */
  private async bootExisting(
    conn: HostConnection,
    host: Host,
    r: SandboxRow,
    signal: AbortSignal,
    p: Phases,
    say?: (fraction: number, line: string) => void,
  ): Promise<void> {
    await ensureNetwork(conn, host.libvirtUri, signal);
    await run(conn, virsh(host.libvirtUri, `start ${shq(r.domain_name)}`), {
      what: 'Starting the sandbox',
      signal,
    });
    await this.bootWatched(conn, host, r, signal, say);
    p.mark('boot');
    // The reserved address and the proxy settings are runtime state: apply them again.
    await this.applyRuntime(conn, host, r, signal);
    p.mark('identity');
    await this.d.egress?.sync(host.id).catch(() => {});
    await this.waitSsh(this.store.row(r.id), signal);
    p.mark('ssh');
  }

  async extend(ref: string, ttlMinutes: number, actor: Actor): Promise<Sandbox> {
    const r = this.store.row(ref);
    if (!LIVE_STATES.includes(r.state)) throw new FluidError('CONFLICT', `Sandbox ${r.name} is ${r.state}.`);
    const expires = new Date(this.d.clock.now().getTime() + ttlMinutes * 60_000).toISOString();
    this.store.update(r.id, { ttl_minutes: ttlMinutes, expires_at: expires });
    this.d.audit.append({
      actor,
      action: 'sandbox.extend',
      target: r.id,
      data: { ttlMinutes, expiresAt: expires },
    });
    // The host's own expiry moves with it (a creation still in flight arms it when it ends).
    if (r.state !== 'creating') {
      const host = this.d.hosts.get(r.host_id);
      await this.armHostExpiry(await this.d.hosts.connection(host.id), host, this.store.row(r.id));
    }
    this.changed(r.id);
    this.armJanitor();
    return this.get(r.id);
  }

  /** Write (or move) the sandbox's entry for the host's watchdog; a host that cannot take one is logged. */
  private async armHostExpiry(conn: HostConnection, host: Host, r: SandboxRow): Promise<void> {
    const entry = entryOf(r, host.libvirtUri, this.d.settings.get().sandboxes.hostExpiryGraceMinutes);
    if (!entry) return;
    const why = await armExpiry(conn, hostLayout(host.storageDir, this.d.installation), [entry]).then(
      (res) => res.refused[0]?.problem ?? null,
      (err: unknown) => toErrorPayload(err).message,
    );
    if (why)
      this.d.log.warn('host-side expiry unavailable; the sandbox expires only while Fluid runs', {
        sandbox: r.id,
        host: host.name,
        why,
      });
  }

  // ---- access -------------------------------------------------------------------------------------

  private running(ref: string): SandboxRow {
    const r = this.store.row(ref);
    if (r.created_by_door === VERIFY_ACTOR.door && r.created_by_id === VERIFY_ACTOR.id)
      throw new FluidError(
        'DENIED',
        `Sandbox ${r.name} replays a playbook for verification: nobody runs commands or touches files in it.`,
      );
    if (r.state !== 'running')
      throw new FluidError('CONFLICT', `Sandbox ${r.name} is ${r.state}; start it first.`);
    return r;
  }

  async exec(
    ref: string,
    command: string,
    opts: {
      timeoutSeconds: number;
      maxOutputBytes: number;
      stdin?: string;
      signal?: AbortSignal;
      onStdout?: (c: Buffer) => void;
      onStderr?: (c: Buffer) => void;
    },
    actor: Actor,
  ) {
    // One run per command, whatever the door: audited at its start and its end (runs.ts).
    const r = this.running(ref);
    const { result } = this.runs.start(
      r,
      {
        command,
        timeoutSeconds: opts.timeoutSeconds,
        maxOutputBytes: opts.maxOutputBytes,
        stdin: opts.stdin,
        origin: 'exec',
        signal: opts.signal,
        onStdout: opts.onStdout,
        onStderr: opts.onStderr,
      },
      actor,
    );
    return result;
  }

  /** Start a command that belongs to this backend (it outlives the page that started it). */
  runStart(
    ref: string,
    command: string,
    opts: { timeoutSeconds: number; maxOutputBytes: number },
    actor: Actor,
  ) {
    const r = this.running(ref);
    return this.runs.start(r, { command, ...opts, origin: 'run' }, actor).run;
  }

  /** Open a terminal that outlives the page (a person's: the router refuses agent doors). */
  terminalOpen(ref: string, cols: number, rows: number, actor: Actor) {
    return this.terminals.open(this.running(ref), cols, rows, actor);
  }

  /** The serial console's log from an offset, then live (console.ts). */
  async console(ref: string, offset: number, signal: AbortSignal) {
    const r = this.store.row(ref);
    if (!LIVE_STATES.includes(r.state) || (r.state === 'creating' && !r.base_id))
      throw new FluidError('CONFLICT', `Sandbox ${r.name} is ${r.state}: it has no console.`);
    const host = this.d.hosts.get(r.host_id);
    const conn = await this.d.hosts.connection(host.id);
    return followConsole(conn, {
      logPath: serialLogPath(r.dir),
      offset,
      running: r.state === 'running' || r.state === 'creating' || r.state === 'starting',
      signal,
    });
  }

  /** Keys for the serial console (virsh console on the host); the first of a console is audited. */
  async consoleInput(ref: string, data: string, actor: Actor): Promise<void> {
    const r = this.store.row(ref);
    if (!['running', 'creating', 'starting'].includes(r.state))
      throw new FluidError(
        'CONFLICT',
        `Sandbox ${r.name} is ${r.state}; its console takes keys while it runs.`,
      );
    const host = this.d.hosts.get(r.host_id);
    const conn = await this.d.hosts.connection(host.id);
    const opened = await this.consoleKeys.write(conn, r.id, host.libvirtUri, r.domain_name, data);
    if (opened)
      this.d.audit.append({
        actor,
        action: 'sandbox.console',
        target: r.id,
        data: { domain: r.domain_name },
      });
  }

  /** End what belongs to a sandbox's guest session here: terminals and the console's connection. */
  private endInteractive(id: string, reason: string): void {
    this.terminals.closeSandbox(id, reason);
    this.consoleKeys.close(id);
  }

  /** Shutdown: kill this process's runs, end its terminals and consoles. */
  async closeInteractive(): Promise<void> {
    this.terminals.closeAll();
    this.consoleKeys.closeAll();
    await this.runs.close();
  }

  /** A file's bytes; with `head`, a file over maxBytes gives its first maxBytes (truncated: true). */
  async readFile(ref: string, path: string, maxBytes: number, head = false) {
    const r = this.running(ref);
    const got = head
      ? await this.guest(r).readHead(path, maxBytes)
      : { data: await this.guest(r).readFile(path, { maxBytes }), size: null, truncated: false };
    const buf = got.data;
    const text = isText(buf);
    return {
      path,
      size: got.size ?? buf.length,
      encoding: text ? ('utf8' as const) : ('base64' as const),
      content: text ? buf.toString('utf8') : buf.toString('base64'),
      ...(head ? { truncated: got.truncated } : {}),
    };
  }

  /** One level of a directory in the sandbox, as root. */
  async listDir(ref: string, path: string, maxEntries: number) {
    const r = this.running(ref);
    return { path, ...(await this.guest(r).listDir(path, { maxEntries })) };
  }

  async writeFile(
    ref: string,
    path: string,
    content: string,
    encoding: 'utf8' | 'base64',
    mode: string | undefined,
    actor: Actor,
  ) {
    const r = this.running(ref);
    const data = encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');
    await this.guest(r).writeFile(path, data, { mode, maxBytes: 64 * 1024 * 1024 });
    this.d.audit.append({ actor, action: 'sandbox.write', target: r.id, data: { path, size: data.length } });
    return { path, size: data.length };
  }

  async editFile(ref: string, path: string, oldString: string, newString: string, actor: Actor) {
    const r = this.running(ref);
    const res = await this.guest(r).editFile(path, oldString, newString);
    const size = typeof res === 'object' && res && 'size' in res ? Number((res as { size: number }).size) : 0;
    this.d.audit.append({ actor, action: 'sandbox.edit', target: r.id, data: { path } });
    return { path, size };
  }

  async shell(ref: string, cols: number, rows: number, actor: Actor) {
    const r = this.running(ref);
    await this.egressUp(r.host_id);
    const sh = await this.guest(r).shell({ cols, rows });
    this.d.audit.append({ actor, action: 'sandbox.shell', target: r.id, data: {} });
    return sh;
  }

  // ---- egress allowlist ---------------------------------------------------------------------------

  /** Doctor checks of sandbox egress (none when egress is off). */
  async egressDoctor(): Promise<DoctorCheck[]> {
    return (await this.d.egress?.doctor?.()) ?? [];
  }

  /** Commands may download: make sure this host's proxy is up while this process runs them. */
  private async egressUp(hostId: string): Promise<void> {
    await this.d.egress
      ?.ensure(hostId)
      .catch((e: unknown) => this.d.log.warn('egress proxy unavailable', { hostId, err: e }));
  }

  async setEgress(ref: string, destination: string, allow: boolean, actor: Actor): Promise<Sandbox> {
    const r = this.store.row(ref);
    const list = new Set(JSON.parse(r.egress_allow) as string[]);
    // canonical entries only ("Deb.Debian.org." and "deb.debian.org" are one); a bad one is refused
    const [canonical] = allow ? canonicalDestinations([destination]) : [];
    if (canonical) list.add(canonical);
    else {
      list.delete(destination.toLowerCase());
      const parsed = tryParseDestination(destination);
      if (parsed) list.delete(formatDestination(parsed));
    }
    this.store.update(r.id, { egress_allow: JSON.stringify([...list]) });
    this.d.audit.append({
      actor,
      action: allow ? 'egress.allow' : 'egress.revoke',
      target: r.id,
      data: { destination },
    });
    await this.d.egress?.sync(r.host_id);
    this.changed(r.id);
    return this.get(r.id);
  }

  // ---- snapshots (how they are layered: snapshots.ts) ---------------------------------------------

  /** Snapshot work on one sandbox runs one at a time in this process (the host lock covers others). */
  private serialize<T>(sandboxId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.snapshotQueues.get(sandboxId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.snapshotQueues.set(sandboxId, tail);
    void tail.then(() => {
      if (this.snapshotQueues.get(sandboxId) === tail) this.snapshotQueues.delete(sandboxId);
    });
    return next;
  }

  async snapshotCreate(ref: string, name: string, memory: boolean, actor: Actor): Promise<Snapshot> {
    const id0 = this.store.row(ref).id;
    return this.serialize(id0, async () => {
      const r = this.store.row(id0);
      if (r.state !== 'running' && r.state !== 'stopped')
        throw new FluidError(
          'CONFLICT',
          `Sandbox ${r.name} is ${r.state}; snapshots are taken of a running or a stopped sandbox.`,
        );
      const host = this.d.hosts.get(r.host_id);
      const conn = await this.d.hosts.connection(host.id);
      const snap: Snapshot = {
        id: randomUUID(),
        sandboxId: r.id,
        name,
        kind: memory && r.state === 'running' ? 'disk+memory' : 'disk',
        createdAt: this.d.clock.now().toISOString(),
        createdBy: actor,
      };
      this.store.addSnapshot(snap); // takes the name; removed again if the host step fails
      let taken;
      try {
        taken = await takeSnapshot(conn, host.libvirtUri, r.domain_name, r.dir, snap.id, memory);
      } catch (err) {
        this.store.deleteSnapshot(snap.id);
        throw err;
      }
      snap.kind = taken.withMemory ? 'disk+memory' : 'disk';
      this.store.setSnapshot(snap.id, snap.kind, JSON.stringify(taken.detail));
      this.d.audit.append({
        actor,
        action: 'snapshot.create',
        target: r.id,
        data: { name, kind: snap.kind, quiesced: taken.quiesced },
      });
      this.changed(r.id);
      return snap;
    });
  }

  snapshotList(ref: string): Snapshot[] {
    return this.store.snapshots(this.store.row(ref).id);
  }

  /**
   * Roll a sandbox back to a snapshot. A memory snapshot comes back running, as it was; a disk
   * snapshot boots when the sandbox was running and stays shut off when it was stopped.
   */
  async snapshotRestore(ref: string, snapshot: string, actor: Actor): Promise<Sandbox> {
    const id0 = this.store.row(ref).id;
    return this.serialize(id0, async () => {
      const r = this.store.row(id0);
      const s = this.store.snapshot(r.id, snapshot);
      if (r.state !== 'running' && r.state !== 'stopped')
        throw new FluidError(
          'CONFLICT',
          `Sandbox ${r.name} is ${r.state}; a snapshot is restored into a running or a stopped sandbox.`,
        );
      const detail = parseDetail(this.store.snapshotDetails(r.id).get(s.id) ?? '{}');
      if (!detail)
        throw new FluidError(
          'CONFLICT',
          `Snapshot ${s.name} was taken by an earlier build of Fluid (inside libvirt, which cannot restore every kind); take a new snapshot instead.`,
        );
      const host = this.d.hosts.get(r.host_id);
      const conn = await this.d.hosts.connection(host.id);
      const signal = new AbortController().signal;
      const p = new Phases();
      this.store.update(r.id, {
        state: 'starting',
        owner_pid: process.pid,
        owner_instance: this.d.tasks.instance,
      });
      this.changed(r.id);
      this.d.guests.close(r.id);
      this.endInteractive(r.id, 'a snapshot was restored');
      let booted = false;
      try {
        const plan = await restoreSnapshot(conn, host.libvirtUri, r.domain_name, r.dir, detail);
        p.mark('restore');
        if (detail.memory) {
          // A memory snapshot wakes up with the clock it was taken at.
          await syncClock(conn, host.libvirtUri, r.domain_name).catch(() => {});
          await this.waitSsh(r, signal);
          p.mark('ssh');
        } else if (plan.wasRunning) {
          await this.bootExisting(conn, host, r, signal, p);
          booted = true;
        }
      } catch (err) {
        const st = await conn
          .exec(virsh(host.libvirtUri, `domstate ${shq(r.domain_name)}`))
          .then((x) => x.stdout.toString().trim())
          .catch(() => '');
        this.store.update(r.id, {
          state: st === 'running' ? 'running' : 'stopped',
          error: JSON.stringify(toErrorPayload(err)),
          owner_pid: null,
          owner_instance: null,
        });
        this.changed(r.id);
        throw err;
      }
      p.total();
      const running = !!detail.memory || booted;
      this.store.update(r.id, {
        state: running ? 'running' : 'stopped',
        error: null,
        owner_pid: null,
        owner_instance: null,
      });
      await this.snapshotGarbage(conn, host, r);
      this.d.audit.append({
        actor,
        action: 'snapshot.restore',
        target: r.id,
        data: { name: s.name, kind: s.kind, booted, timings: p.timings },
      });
      this.changed(r.id);
      return this.get(r.id);
    });
  }

  async snapshotDelete(ref: string, snapshot: string, actor: Actor): Promise<{ deleted: true }> {
    const id0 = this.store.row(ref).id;
    return this.serialize(id0, async () => {
      const r = this.store.row(id0);
      const s = this.store.snapshot(r.id, snapshot);
      const detail = parseDetail(this.store.snapshotDetails(r.id).get(s.id) ?? '{}');
      this.store.deleteSnapshot(s.id);
      if (LIVE_STATES.includes(r.state)) {
        const host = this.d.hosts.get(r.host_id);
        const conn = await this.d.hosts.connection(host.id);
        if (detail) await this.snapshotGarbage(conn, host, r);
        else
          // Taken by an earlier build, inside libvirt.
          await conn.exec(virsh(host.libvirtUri, `snapshot-delete ${shq(r.domain_name)} ${shq(s.name)}`));
      }
      this.d.audit.append({ actor, action: 'snapshot.delete', target: r.id, data: { name: s.name } });
      this.changed(r.id);
      return { deleted: true as const };
    });
  }

  /** Remove snapshot layers and memory images no snapshot and no current disk needs (never fails the caller). */
  private async snapshotGarbage(conn: HostConnection, host: Host, r: SandboxRow): Promise<void> {
    const remaining = [...this.store.snapshotDetails(r.id).values()]
      .map(parseDetail)
      .filter((x): x is SnapshotDetail => !!x);
    await collectGarbage(conn, host.libvirtUri, r.domain_name, r.dir, remaining).catch((err: unknown) =>
      this.d.log.warn('could not remove unused snapshot files', { sandbox: r.id, err }),
    );
  }

  // ---- bases --------------------------------------------------------------------------------------

  listBases(host?: string) {
    return this.bases
      .list(host ? this.d.hosts.get(host).id : undefined)
      .filter((b) => b.state !== 'retired')
      .map(publicBase);
  }

  /** Free the host's disk: base copies and templates that no live sandbox stands on. */
  async pruneBases(hostRef: string, actor: Actor): Promise<{ removed: string[]; freedBytes: number }> {
    const host = this.d.hosts.get(hostRef);
    const conn = await this.d.hosts.connection(host.id);
    const layout = hostLayout(host.storageDir, this.d.installation);
    const inUse = new Set(
      this.store
        .list({ hostId: host.id })
        .filter((r) => LIVE_STATES.includes(r.state))
        .map((r) => r.base_id),
    );
    const removed: string[] = [];
    let freed = 0;
    for (const b of this.bases.list(host.id)) {
      if (
        inUse.has(b.id) ||
        b.state === 'building' ||
        [...this.templateBuilds.keys()].some((k) => k.startsWith(b.id))
      )
        continue;
      if (b.state === 'retired' && b.templateState === 'none') continue;
      const out = await run(
        conn,
        `du -sbc ${shq(b.dir)} ${shq(layout.templates)}/${b.id}-* 2>/dev/null | tail -n1 | cut -f1; rm -rf ${shq(b.dir)} ${shq(layout.templates)}/${b.id}-*`,
        {
          what: `Removing the base copy of ${b.sourceName}`,
        },
      );
      freed += Number(out.trim()) || 0;
      this.bases.update(b.id, { state: 'retired', template_state: 'none', template: null });
      removed.push(`${b.sourceName} (${b.fingerprint.slice(0, 12)})`);
    }
    await conn.exec(
      `rmdir ${shq(layout.bases)} ${shq(layout.templates)} ${shq(layout.sandboxes)} ${shq(layout.root)} 2>/dev/null; true`,
    );
    if (removed.length)
      this.d.audit.append({
        actor,
        action: 'base.prune',
        target: host.id,
        data: { removed, freedBytes: freed },
      });
    return { removed, freedBytes: freed };
  }

  refreshBase(hostRef: string | undefined, source: string, actor: Actor): Task {
    const host = this.resolveHost(hostRef, source);
    return this.d.tasks.start({
      kind: 'base.refresh',
      title: `Copy ${source} into the base cache`,
      target: host.id,
      run: async (ctx) => {
        const conn = await this.d.hosts.connection(host.id);
        const vm = await this.findSource(conn, host, source, ctx.signal);
        const previous = this.bases.latestReady(host.id, vm.uuid);
        const b = await this.copyBase(conn, host, vm, ctx, actor);
        if (previous) this.bases.update(previous.id, { state: 'retired' });
        return publicBase(b);
      },
    });
  }

  // ---- janitor (and the other two places expiry happens: expiry.ts) ------------------------------

  /**
   * Destroy sandboxes past their time to live; returns the ids destroyed. Each is claimed in the
   * database first, so two processes sweeping at once (a CLI's background sweep and the app's
   * janitor) never both act on one.
   */
  async sweepExpired(actor: Actor = { door: 'system', id: 'janitor' }): Promise<string[]> {
    const now = this.d.clock.now().toISOString();
    const isDue = (r: SandboxRow) =>
      !!r.expires_at && r.expires_at <= now && (SWEPT_STATES as readonly string[]).includes(r.state);
    // First what the hosts' watchdogs already destroyed: those rows close as expired on the host.
    for (const hostId of new Set(
      this.store
        .list()
        .filter(isDue)
        .map((r) => r.host_id),
    ))
      await this.closeHostExpired(hostId).catch((err: unknown) =>
        this.d.log.warn("could not read the host's expiry", { hostId, err }),
      );
    const due = this.store.list().filter(isDue);
    const out: string[] = [];
    for (const r of due) {
      try {
        if (r.state === 'failed') {
          // A failed creation cleaned up after itself: only the row is left to close.
          if (this.store.claim(r.id, ['failed'], { state: 'destroyed' })) {
            this.changed(r.id);
            out.push(r.id);
          }
          continue;
        }
        const claimed = this.store.claim(r.id, ['running', 'stopped', 'pooled'], {
          state: 'destroying',
          owner_pid: process.pid,
          owner_instance: this.d.tasks.instance,
        });
        if (!claimed) continue;
        if (r.state === 'pooled') this.pool.forget(r.id);
        await this.destroyRow(this.store.byId(r.id), actor, `expired at ${r.expires_at}`).catch(
          (err: unknown) => {
            // Unreachable host, say: hand the row back, so a later pass tries again (teardown is idempotent).
            this.store.claim(r.id, ['destroying'], { state: r.state, owner_pid: null, owner_instance: null });
            this.changed(r.id);
            throw err;
          },
        );
        out.push(r.id);
      } catch (e) {
        this.d.log.warn('could not destroy an expired sandbox', { id: r.id, err: e });
      }
    }
    return out;
  }

  /** Close the rows of sandboxes a host's watchdog destroyed by itself (expiry.ts); re-arm the rest. */
  async closeHostExpired(hostId: string): Promise<string[]> {
    const host = this.d.hosts.get(hostId);
    const conn = await this.d.hosts.connection(host.id);
    return syncHostExpiry(
      {
        sandboxes: this.store,
        audit: this.d.audit,
        installation: this.d.installation,
        expiryGraceMinutes: this.d.settings.get().sandboxes.hostExpiryGraceMinutes,
        changed: (id) => this.changed(id),
      },
      conn,
      host,
    );
  }

  /**
   * The janitor of a long-running door: wakes at the next expiry (and at least every interval),
   * destroys what is due. Sandboxes extended or created elsewhere re-arm it through events.
   */
  startJanitor(intervalMs = 30_000): void {
    if (this.janitorOn) return;
    this.janitorOn = true;
    this.janitorInterval = intervalMs;
    this.janitorOff = this.d.bus.subscribe('sandboxes.changed', () => this.armJanitor());
    this.armJanitor();
  }

  private armJanitor(): void {
    if (!this.janitorOn || this.janitorBusy) return; // a pass in progress re-arms when it ends
    if (this.janitor) clearTimeout(this.janitor);
    const now = this.d.clock.now().getTime();
    const next = this.store
      .list()
      .filter((r) => r.expires_at && (SWEPT_STATES as readonly string[]).includes(r.state))
      .reduce((m, r) => Math.min(m, Date.parse(r.expires_at!)), Infinity);
    // What a pass could not destroy is tried again a little later, not in a tight loop.
    const earliest = this.janitorLastPass + JANITOR_RETRY_MS;
    const wait = Math.max(0, earliest - now, Math.min(this.janitorInterval, next - now));
    this.janitor = setTimeout(() => {
      this.janitor = null;
      this.janitorBusy = true;
      this.sweepExpired()
        .catch((err: unknown) => this.d.log.warn('janitor pass failed', { err }))
        .finally(() => {
          this.janitorBusy = false;
          this.janitorLastPass = this.d.clock.now().getTime();
          this.armJanitor();
        });
    }, wait);
    this.janitor.unref();
  }

  /** Keep the warm pool as Settings say (long-running doors). */
  startPool(): void {
    if (this.poolOff) return;
    this.poolOff = this.d.bus.subscribe('settings.changed', () => this.pool.kick());
    this.pool.start();
  }

  /** Stop making and draining members; wait for the pass in flight (its fill is cancelled by then). */
  async stopPool(): Promise<void> {
    this.poolOff?.();
    this.poolOff = null;
    this.pool.stop();
    await this.pool.settle();
  }

  stopJanitor(): void {
    this.janitorOn = false;
    this.janitorOff?.();
    this.janitorOff = null;
    if (this.janitor) clearTimeout(this.janitor);
    this.janitor = null;
  }
}

function sub(ctx: TaskContext, from: number, to: number): TaskContext {
  return { ...ctx, progress: (f, m) => ctx.progress(f === null ? null : from + (to - from) * f, m) };
}

/** Sandboxes an agent makes (a built-in session, an MCP client) get the shorter session TTL. */
function sessionMade(actor: Actor): boolean {
  return actor.door === 'agent' || actor.door === 'mcp';
}

function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 32) || 'sandbox'
  );
}

function keyBlob(line: string): Buffer {
  return Buffer.from(line.trim().split(/\s+/)[1] ?? '', 'base64');
}

function isText(buf: Buffer): boolean {
  if (buf.includes(0)) return false;
  const s = buf.toString('utf8');
  return !s.includes('\uFFFD');
}
