/**
 * The composition root: every service is built here, once, from explicit dependencies. Doors
 * (Electron, web mode, CLI, MCP, HTTP) get a Core and serve its router; they hold no policy.
 */
import type { Actor, Port } from '../shared/rpc.ts';
import { contract, type Contract } from '../shared/contract/index.ts';
import { systemClock, type Clock } from './platform/clock.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { defaultDataDir, ensureDataDir, resolvePaths, type Paths } from './platform/paths.ts';
import { FileSecretStore, type SecretStore } from './platform/secrets.ts';
import { AuditLog } from './store/audit.ts';
import { AuditSigner } from './audit/signer.ts';
import { CHECKPOINT_FILE, CheckpointLog } from './audit/checkpoints.ts';
import { HostWitness } from './audit/witness.ts';
import { join } from 'node:path';
import { openDatabase, type Db } from './store/db.ts';
import { SettingsService } from './store/settings.ts';
import { TaskManager } from './store/tasks.ts';
import { EventBus } from './events.ts';
import { HostService } from './hosts/service.ts';
import { ApprovalService } from './approvals/service.ts';
import { PresenceService } from './presence/service.ts';
import { DemoService } from './agent/demo.ts';
import { TokenService } from './tokens/service.ts';
import { authorize, ownSandboxOnly } from './tokens/scopes.ts';
import { SandboxService, type EgressHooks } from './sandboxes/service.ts';
import { EgressManager } from './sandboxes/egress.ts';
import { DiffService } from './diff/index.ts';
import { PlaybookService } from './playbooks/index.ts';
import { TargetService } from './targets/index.ts';
import { ChangeService } from './changes/index.ts';
import { ToolRegistry } from './agent/tools/registry.ts';
import { AgentService } from './agent/service.ts';
import { registerBuiltinTools } from './agent/tools/builtin.ts';
import type { ShellPolicy } from './policy/shell.ts';
import { SshCa } from './ssh/ca.ts';
import { GuestSshPool } from './ssh/guest.ts';
import { randomUUID } from 'node:crypto';
import { reconcileHost } from './sandboxes/reconcile.ts';
import { toErrorPayload } from '../shared/errors.ts';
import { createRouter } from './router.ts';
import { serve, type Router, type Served } from './rpc/server.ts';

export interface CoreOptions {
  dataDir?: string;
  secrets?: SecretStore;
  clock?: Clock;
  logger?: Logger;
  /** Log to stderr as well as the log file. */
  verbose?: boolean;
  /** Egress integration (default: the host proxy manager); null turns sandbox egress off. */
  egress?: EgressHooks | null;
}

export interface Core {
  readonly paths: Paths;
  readonly db: Db;
  readonly bus: EventBus;
  readonly audit: AuditLog;
  readonly settings: SettingsService;
  readonly tasks: TaskManager;
  readonly hosts: HostService;
  readonly approvals: ApprovalService;
  /** Who may decide, and how a person proves presence (passkeys, confirmations). */
  readonly presence: PresenceService;
  /** API tokens of the HTTP door (created by a person, kept hashed). */
  readonly tokens: TokenService;
  readonly sandboxes: SandboxService;
  /** The system diff: baselines, diffs, include/exclude choices. */
  readonly diff: DiffService;
  /** Playbooks: revisions, generation from the diff, verification, export. */
  readonly playbooks: PlaybookService;
  /** Production targets: machines approved changes are applied to over SSH. */
  readonly targets: TargetService;
  /** Changes: sealed bundles, their previews and approvals, and applies of exactly them. */
  readonly changes: ChangeService;
  readonly ca: SshCa;
  readonly guests: GuestSshPool;
  /** This data dir's identity on shared hosts: everything Fluid creates on a host is labelled with it. */
  readonly installation: string;
  readonly secrets: SecretStore;
  /** The agent tools: one registry for the built-in agent, MCP and HTTP. */
  readonly tools: ToolRegistry;
  /** Agent sessions and model providers. */
  readonly agent: AgentService;
  /** The shipped demo, started from the Agent view. */
  readonly demo: DemoService;
  /** The read-only shell policy (loaded on first use). */
  shellPolicy(): Promise<ShellPolicy>;
  readonly log: Logger;
  readonly clock: Clock;
  readonly router: Router<Contract>;
  /** Compare the database with each host (or one) and clean Fluid's orphans there. */
  reconcile(
    hostRef: string | undefined,
    actor: Actor,
  ): Promise<{
    hosts: Array<{
      hostId: string;
      hostName: string;
      cleaned: string[];
      adopted: string[];
      error: string | null;
    }>;
  }>;
  /** Start background duties of a long-running door (janitor, reconcile): the app and web mode. */
  startBackground(): void;
  /** Serve the router over a port (one per connected client). */
  serve(port: Port, actor: Actor): Served;
  close(): Promise<void>;
}

export function createCore(opts: CoreOptions = {}): Core {
  const paths = resolvePaths(opts.dataDir ?? defaultDataDir());
  ensureDataDir(paths);
  const clock = opts.clock ?? systemClock;
  const secrets = opts.secrets ?? new FileSecretStore(paths.secrets);
  const log =
    opts.logger ?? createLogger({ dir: paths.logs, stderr: opts.verbose, secrets: () => secrets.values() });
  const db = openDatabase(paths.db);
  const bus = new EventBus();
  bus.attachFeed(db, randomUUID(), false);
  const audit = new AuditLog(db, clock, bus, paths.auditHead);
  const settings: SettingsService = new SettingsService(db, audit, bus, clock, () => presence);
  const presence = new PresenceService({ db, audit, bus, settings, clock });
  const tasks = new TaskManager(db, bus, clock, log);
  const hosts = new HostService({ db, audit, bus, tasks, settings, clock, log });
  const approvals = new ApprovalService(db, bus, audit, clock, presence);
  const tokens = new TokenService({ db, audit, bus, clock, presence });
  const installation = installationId(db);
  // Signed checkpoints of the audit chain: beside the database, and copied to every host.
  const checkpoints = new CheckpointLog({
    db,
    clock,
    signer: new AuditSigner(secrets, db),
    installation,
    file: join(paths.dataDir, CHECKPOINT_FILE),
    log,
  });
  const witness = new HostWitness({ db, checkpoints, installation, hosts, audit, clock, log });
  audit.attach(checkpoints, witness);
  const ca = new SshCa({ secrets, db, clock });
  const guests = new GuestSshPool({ ca });
  let sandboxes: SandboxService | null = null;
  const egress =
    opts.egress === null
      ? null
      : (opts.egress ??
        new EgressManager({
          hosts,
          sandboxes: () => sandboxes!.store,
          approvals,
          audit,
          bus,
          log,
          allow: async (id, destination, actor) =>
            void (await sandboxes!.setEgress(id, destination, true, actor)),
        }));
  const diff = new DiffService({ db, bus, audit, tasks, hosts, clock, log, sandboxes: () => sandboxes! });
  sandboxes = new SandboxService({
    db,
    bus,
    audit,
    tasks,
    hosts,
    settings,
    approvals,
    clock,
    log,
    ca,
    guests,
    installation,
    egress,
    baseline: { record: (r, host, conn, signal) => diff.recordBaseline(r, host, conn, signal) },
  });

  const playbooks = new PlaybookService({
    db,
    bus,
    audit,
    clock,
    log,
    tasks,
    secrets,
    hosts,
    ca,
    diff,
    sandboxes: () => sandboxes!,
  });

  const targets = new TargetService({ db, audit, bus, clock, log, secrets, hosts, settings, presence });
  const changes = new ChangeService({
    db,
    bus,
    audit,
    clock,
    log,
    tasks,
    settings,
    secrets,
    approvals,
    presence,
    playbooks,
    diff,
    targets,
    sandboxes: () => sandboxes!,
  });

  hosts.ensureLocalHost();
  for (const t of tasks.recoverInterrupted()) {
    audit.append({
      actor: { door: 'system', id: 'startup' },
      action: 'task.interrupted',
      target: t.id,
      data: { kind: t.kind, title: t.title },
    });
  }

  const tools = new ToolRegistry({ approvals, audit, settings, knownSecrets: () => secrets.values() });
  const agent = new AgentService({
    db,
    bus,
    audit,
    settings,
    secrets,
    approvals,
    presence,
    tools,
    clock,
    log,
    instance: tasks.instance,
  });
  const demo = new DemoService({ targets, agent });
  let shellPolicy: Promise<ShellPolicy> | null = null;
  const served = new Set<Served>();
  let closed = false;
  const core: Core = {
    paths,
    db,
    bus,
    audit,
    settings,
    tasks,
    hosts,
    approvals,
    presence,
    tokens,
    sandboxes,
    diff,
    playbooks,
    targets,
    changes,
    ca,
    guests,
    installation,
    secrets,
    demo,
    tools,
    agent,
    // Loaded on first use: the parser (wasm) costs startup time every command would pay.
    shellPolicy: () => (shellPolicy ??= import('./policy/shell.ts').then((m) => m.createShellPolicy())),
    log,
    clock,
    router: undefined as unknown as Router<Contract>,
    async reconcile(hostRef, actor) {
      const targets = hostRef ? [hosts.get(hostRef)] : hosts.list();
      const out = [];
      for (const h of targets) {
        try {
          const conn = await hosts.connection(h.id);
          const r = await reconcileHost(
            {
              sandboxes: sandboxes.store,
              bases: sandboxes.bases,
              audit,
              installation,
              instance: tasks.instance,
              expiryGraceMinutes: settings.get().sandboxes.hostExpiryGraceMinutes,
              changed: (id) =>
                bus.emit('sandboxes.changed', { sandboxId: id, state: sandboxes.store.byId(id).state }),
            },
            conn,
            h,
            actor,
          );
          out.push({ hostId: h.id, hostName: h.name, ...r, error: null });
        } catch (err) {
          out.push({
            hostId: h.id,
            hostName: h.name,
            cleaned: [],
            adopted: [],
            error: toErrorPayload(err).message,
          });
        }
      }
      return { hosts: out };
    },
    startBackground() {
      bus.follow();
      checkpoints.startTimer();
      witness.schedule();
      sandboxes.startJanitor();
      sandboxes.backgroundTemplates = true;
      sandboxes.startPool();
      const actor = { door: 'system' as const, id: 'startup' };
      void core
        .reconcile(undefined, actor)
        .then((r) => {
          for (const h of r.hosts)
            if (h.error && !closed) log.warn('reconcile failed', { host: h.hostName, error: h.error });
        })
        .then(() => (closed ? [] : sandboxes.sweepExpired()))
        .catch((err: unknown) => {
          // Shutting down while this runs is normal; anything else is worth a line in the log.
          if (!closed) log.warn('startup reconcile failed', { err });
        });
    },
    serve(port, actor) {
      const s = serve(contract, core.router, bus, port, {
        actor,
        onInternalError: (member, err) => log.error('internal error', { member, err }),
        // an API token reaches only what its scope allows (src/core/tokens/scopes.ts)
        authorize: (member, kind) => authorize(actor, member, kind),
        // …and an agent token works only in the sandboxes it created (agents cannot touch each other's)
        authorizeInput: (member, input) => ownSandboxOnly(actor, member, input, (ref) => sandboxes.get(ref)),
      });
      served.add(s);
      port.onClose(() => served.delete(s));
      return s;
    },
    async close() {
      closed = true;
      for (const s of served) s.close();
      bus.detachFeed();
      sandboxes.stopJanitor();
      await agent.close();
      await demo.close();
      // Commands, terminals and consoles of this process end with it (recorded as such).
      await sandboxes.closeInteractive();
      const pool = sandboxes.stopPool();
      tasks.abortAll();
      await tasks.drain();
      await pool;
      changes.close();
      tasks.close();
      guests.closeAll();
      if (egress && 'close' in egress) await (egress as EgressManager).close();
      // A last checkpoint, and its delivery to the hosts (bounded: an unreachable host stays pending).
      await audit.close();
      hosts.closeAll();
      db.close();
    },
  };
  registerBuiltinTools(tools, { core, shellPolicy: core.shellPolicy });
  (core as { router: Router<Contract> }).router = createRouter(core);
  return core;
}

function installationId(db: Db): string {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'installation'").get() as
    { value: string } | undefined;
  if (row) return row.value;
  const id = randomUUID();
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('installation', ?)").run(id);
  return (db.prepare("SELECT value FROM meta WHERE key = 'installation'").get() as { value: string }).value;
}
