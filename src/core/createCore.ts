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
import { openDatabase, type Db } from './store/db.ts';
import { SettingsService } from './store/settings.ts';
import { TaskManager } from './store/tasks.ts';
import { EventBus } from './events.ts';
import { HostService } from './hosts/service.ts';
import { createRouter } from './router.ts';
import { serve, type Router, type Served } from './rpc/server.ts';

export interface CoreOptions {
  dataDir?: string;
  secrets?: SecretStore;
  clock?: Clock;
  logger?: Logger;
  /** Log to stderr as well as the log file. */
  verbose?: boolean;
}

export interface Core {
  readonly paths: Paths;
  readonly db: Db;
  readonly bus: EventBus;
  readonly audit: AuditLog;
  readonly settings: SettingsService;
  readonly tasks: TaskManager;
  readonly hosts: HostService;
  readonly secrets: SecretStore;
  readonly log: Logger;
  readonly clock: Clock;
  readonly router: Router<Contract>;
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
  const audit = new AuditLog(db, clock, bus, paths.auditHead);
  const settings = new SettingsService(db, audit, bus, clock);
  const tasks = new TaskManager(db, bus, clock, log);
  const hosts = new HostService({ db, audit, bus, tasks, settings, clock, log });

  hosts.ensureLocalHost();
  for (const t of tasks.recoverInterrupted()) {
    audit.append({
      actor: { door: 'system', id: 'startup' },
      action: 'task.interrupted',
      target: t.id,
      data: { kind: t.kind, title: t.title },
    });
  }

  const served = new Set<Served>();
  const core: Core = {
    paths,
    db,
    bus,
    audit,
    settings,
    tasks,
    hosts,
    secrets,
    log,
    clock,
    router: undefined as unknown as Router<Contract>,
    serve(port, actor) {
      const s = serve(contract, core.router, bus, port, {
        actor,
        onInternalError: (member, err) => log.error('internal error', { member, err }),
      });
      served.add(s);
      port.onClose(() => served.delete(s));
      return s;
    },
    async close() {
      for (const s of served) s.close();
      tasks.abortAll();
      await tasks.drain();
      tasks.close();
      hosts.closeAll();
      db.close();
    },
  };
  (core as { router: Router<Contract> }).router = createRouter(core);
  return core;
}
