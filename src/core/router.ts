/** The one implementation of the contract. Every door reaches core through here. */
import type { Contract } from '../shared/contract/index.ts';
import { FluidError } from '../shared/errors.ts';
import type { Core } from './createCore.ts';
import { runDoctor } from './doctor.ts';
import { parseJsonl, verifyEntries } from './store/audit.ts';
import { schemaVersion } from './store/db.ts';
import type { Router } from './rpc/server.ts';
import { fluidVersion } from './version.ts';

export function createRouter(core: Core): Router<Contract> {
  return {
    // system
    'system.info': (_i, ctx) => ({
      version: fluidVersion(),
      dataDir: core.paths.dataDir,
      dbPath: core.paths.db,
      platform: `${process.platform}/${process.arch}`,
      node: process.versions.node,
      pid: process.pid,
      actor: ctx.actor,
      schemaVersion: schemaVersion(core.db),
    }),
    'system.doctor': () => runDoctor(core),

    // tasks
    'tasks.list': (i) => core.tasks.list(i),
    'tasks.get': (i) => core.tasks.get(i.id),
    'tasks.cancel': (i, ctx) => {
      const t = core.tasks.cancel(i.id);
      core.audit.append({
        actor: ctx.actor,
        action: 'task.cancel',
        target: t.id,
        data: { kind: t.kind, title: t.title },
      });
      return t;
    },
    'tasks.watch': (i, ctx) => core.tasks.watch(i.id, ctx.signal),

    // audit
    'audit.list': (i) => core.audit.list(i),
    'audit.verify': () => core.audit.verify(),
    'audit.export': (_i, ctx) => {
      const e = core.audit.exportJsonl();
      core.audit.append({
        actor: ctx.actor,
        action: 'audit.export',
        target: null,
        data: { count: e.count, headHash: e.headHash },
      });
      return { format: 'jsonl' as const, ...e };
    },
    'audit.verifyExport': (i) => {
      const { entries, problems } = parseJsonl(i.content);
      if (!entries.length && !problems.length) throw new FluidError('VALIDATION', 'The export is empty.');
      const r = verifyEntries(entries);
      return { ...r, ok: r.ok && problems.length === 0, problems: [...problems, ...r.problems] };
    },

    // settings
    'settings.get': () => core.settings.get(),
    'settings.update': (i, ctx) => core.settings.update(i, ctx.actor),

    // hosts
    'hosts.list': () => core.hosts.list(),
    'hosts.get': (i) => core.hosts.get(i.host),
    'hosts.probe': (i) => core.hosts.probe(i.address, i.port),
    'hosts.add': (i, ctx) => core.hosts.add(i, ctx.actor),
    'hosts.update': (i, ctx) => core.hosts.update(i, ctx.actor),
    'hosts.trust': (i, ctx) => core.hosts.trust(i.host, i.acceptFingerprint, ctx.actor),
    'hosts.remove': (i, ctx) => core.hosts.remove(i.host, ctx.actor),
    'hosts.check': (i, ctx) => core.hosts.check(i.host, ctx.actor),
    'hosts.capacity': (i, ctx) => core.hosts.capacity(i.host, ctx.signal),
    'hosts.vms': (i, ctx) => core.hosts.vms(i.host, ctx.signal),
    'sources.list': (i, ctx) => core.hosts.sources(i.host, ctx.signal),
  };
}
