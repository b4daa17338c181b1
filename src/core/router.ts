/** The one implementation of the contract. Every door reaches core through here. */
import type { Contract } from '../shared/contract/index.ts';
import { FluidError } from '../shared/errors.ts';
import type { Core } from './createCore.ts';
import { runDoctor } from './doctor.ts';
import { destinationWarning } from './egress/reach.ts';
import { verifyExport } from './audit/export.ts';
import { schemaVersion } from './store/db.ts';
import type { Router } from './rpc/server.ts';
import { fluidVersion } from './version.ts';
import { agentRoutes } from './agent/routes.ts';
import { sandboxSessionRoutes } from './sandboxes/routes.ts';
import { hostFileChecks, removalPlan, removeHost } from './hosts/cleanup.ts';
import { withNames } from './approvals/names.ts';
import { playbookRoutes } from './playbooks/routes.ts';
import { changeRoutes } from './changes/routes.ts';
import { AsyncQueue } from './util/queue.ts';
import { checkKeyFile } from './hosts/ssh.ts';
import { randomUUID } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { GuestShell } from './ssh/guest.ts';
import { egressPurpose, purposeFor } from './presence/purposes.ts';
import type { ApprovalRequest } from './approvals/service.ts';
import type { Actor, ParsedIn } from '../shared/rpc.ts';

const shells = new Map<string, GuestShell>();

/** A question an agent asks a person: an approval request of kind "ask", bound to its subject. */
function askRequest(core: Core, i: ParsedIn<Contract, 'approvals.ask'>, actor: Actor): ApprovalRequest {
  return {
    kind: 'ask',
    title: i.title,
    detail: i.detail,
    risk: i.risk,
    subject: { question: i.title, detail: i.detail, subject: i.subject ?? null },
    requestedBy: actor,
    sandboxId: i.sandboxId ? core.sandboxes.get(i.sandboxId).id : null,
    expiresInMs: i.timeoutSeconds * 1000,
  };
}

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
      now: core.clock.now().toISOString(),
    }),
    'system.doctor': async () => {
      const local = runDoctor(core);
      const [egress, files] = await Promise.all([core.sandboxes.egressDoctor(), hostFileChecks(core)]);
      return {
        ok: local.ok && ![...egress, ...files].some((c) => c.status === 'fail'),
        checks: [...local.checks, ...egress, ...files],
      };
    },

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
    'audit.verify': (i) => (i.hosts ? core.audit.verifyWithHosts() : core.audit.verify()),
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
    'audit.verifyExport': (i) => verifyExport(i.content),

    // settings
    'settings.get': () => core.settings.get(),
    'settings.update': async (i, ctx) => {
      const { presence: proof, ...patch } = i;
      const presence = await core.presence.verify(ctx.actor, purposeFor(core, 'settings.update', i), proof);
      return core.settings.update(patch, ctx.actor, presence);
    },

    // hosts
    'hosts.list': () => core.hosts.list(),
    'hosts.get': (i) => core.hosts.get(i.host),
    'hosts.probe': (i) => core.hosts.probe(i.address, i.port),
    'hosts.checkKey': (i) => checkKeyFile(i.keyPath),
    'hosts.add': (i, ctx) => core.hosts.add(i, ctx.actor),
    'hosts.update': (i, ctx) => core.hosts.update(i, ctx.actor),
    'hosts.trust': (i, ctx) => core.hosts.trust(i.host, i.acceptFingerprint, ctx.actor),
    'hosts.remove': (i, ctx) =>
      removeHost(core, i.host, ctx.actor, {
        clean: i.clean,
        guard: (hostId) => {
          const live = core.sandboxes.store.list({ hostId }).filter((r) => r.state !== 'failed');
          if (live.length)
            throw new FluidError(
              'CONFLICT',
              `The host still has ${live.length} sandbox${live.length === 1 ? '' : 'es'} (${live.map((r) => r.name).join(', ')}). Destroy them first.`,
            );
        },
      }),
    'hosts.removePreview': async (i) => {
      const p = await removalPlan(core, i.host);
      return {
        host: p.host.name,
        storageDir: p.host.storageDir,
        reachable: p.reachable,
        error: p.error,
        sharedWith: p.sharedWith,
        files: p.files,
        totalBytes: p.totalBytes,
      };
    },
    'hosts.check': (i, ctx) => core.hosts.check(i.host, ctx.actor),
    'hosts.capacity': (i, ctx) => core.hosts.capacity(i.host, ctx.signal),
    'hosts.vms': (i, ctx) => core.hosts.vms(i.host, ctx.signal),
    'sources.list': (i, ctx) => core.hosts.sources(i.host, ctx.signal),

    // approvals
    'approvals.list': (i) => withNames(core.db, core.approvals.list(i)),
    'approvals.get': (i) => withNames(core.db, [core.approvals.get(i.id)])[0]!,
    'approvals.decide': async (i, ctx) => {
      const purpose = purposeFor(core, 'approvals.decide', i);
      const presence = await core.presence.verify(ctx.actor, purpose, i.presence);
      return core.approvals.decide(i.id, i.decision, i.note, ctx.actor, presence);
    },
    'approvals.request': (i, ctx) => core.approvals.request(askRequest(core, i, ctx.actor)),
    'approvals.ask': async (i, ctx) => {
      const asked = core.approvals.request(askRequest(core, i, ctx.actor));
      try {
        return await core.approvals.wait(asked.id, ctx.signal);
      } catch (err) {
        // nobody is waiting for the answer any more: withdraw the question
        if (ctx.signal.aborted) core.approvals.cancel(asked.id, ctx.actor, 'The asker stopped waiting.');
        throw err;
      }
    },

    // API tokens (the HTTP door's): a person creates and revokes them
    'tokens.list': (i) => core.tokens.list(i.includeRevoked),
    'tokens.create': async (i, ctx) => {
      const purpose = purposeFor(core, 'tokens.create', i);
      const presence = await core.presence.verify(ctx.actor, purpose, i.presence);
      return core.tokens.create(i.name, i.scope, ctx.actor, presence);
    },
    'tokens.revoke': (i, ctx) => core.tokens.revoke(i.name, ctx.actor),

    // human presence
    'presence.status': (_i, ctx) => core.presence.status(ctx.actor),
    'presence.challenge': (i, ctx) => core.presence.challenge(ctx.actor, purposeFor(core, i.member, i.input)),
    'presence.registerBegin': async (i, ctx) => {
      const purpose = purposeFor(core, 'presence.registerBegin', i);
      return core.presence.registerBegin(
        ctx.actor,
        i.name,
        await core.presence.verify(ctx.actor, purpose, i.presence),
      );
    },
    'presence.registerFinish': (i, ctx) => core.presence.registerFinish(ctx.actor, i.challengeId, i.response),
    'presence.remove': async (i, ctx) => {
      const purpose = purposeFor(core, 'presence.remove', i);
      core.presence.remove(ctx.actor, i.id, await core.presence.verify(ctx.actor, purpose, i.presence));
      return { ok: true as const };
    },

    // sandboxes
    'sandboxes.create': (i, ctx) => core.sandboxes.createPlaced(i, ctx.actor, ctx.signal),
    'sandboxes.list': (i) => core.sandboxes.list(i),
    'sandboxes.get': (i) => core.sandboxes.get(i.sandbox),
    'sandboxes.start': (i, ctx) => core.sandboxes.start(i.sandbox, ctx.actor),
    'sandboxes.stop': (i, ctx) => core.sandboxes.stop(i.sandbox, i.force, ctx.actor),
    'sandboxes.destroy': (i, ctx) => core.sandboxes.destroy(i.sandbox, ctx.actor),
    'sandboxes.extend': (i, ctx) => core.sandboxes.extend(i.sandbox, i.ttlMinutes, ctx.actor),
    'sandboxes.exec': (i, ctx) =>
      core.sandboxes.exec(
        i.sandbox,
        i.command,
        {
          timeoutSeconds: i.timeoutSeconds,
          maxOutputBytes: i.maxOutputBytes,
          stdin: i.stdin,
          signal: ctx.signal,
        },
        ctx.actor,
      ),
    'sandboxes.execStream': (i, ctx) => {
      const q = new AsyncQueue<
        | { kind: 'stdout'; data: string }
        | { kind: 'stderr'; data: string }
        | { kind: 'exit'; result: Awaited<ReturnType<typeof core.sandboxes.exec>> }
      >();
      const out = new StringDecoder('utf8');
      const err = new StringDecoder('utf8');
      core.sandboxes
        .exec(
          i.sandbox,
          i.command,
          {
            timeoutSeconds: i.timeoutSeconds,
            maxOutputBytes: i.maxOutputBytes,
            signal: ctx.signal,
            onStdout: (c) => q.push({ kind: 'stdout', data: out.write(c) }),
            onStderr: (c) => q.push({ kind: 'stderr', data: err.write(c) }),
          },
          ctx.actor,
        )
        .then(
          (result) => {
            q.push({ kind: 'exit', result });
            q.end();
          },
          (e: unknown) => q.fail(e),
        );
      return q;
    },
    'sandboxes.readFile': (i) => core.sandboxes.readFile(i.sandbox, i.path, i.maxBytes, i.head),
    'sandboxes.listDir': (i) => core.sandboxes.listDir(i.sandbox, i.path, i.maxEntries),
    'sandboxes.writeFile': (i, ctx) =>
      core.sandboxes.writeFile(i.sandbox, i.path, i.content, i.encoding, i.mode, ctx.actor),
    'sandboxes.editFile': (i, ctx) =>
      core.sandboxes.editFile(i.sandbox, i.path, i.oldString, i.newString, ctx.actor),
    'sandboxes.shell': (i, ctx) => {
      const sessionId = randomUUID();
      let shell: GuestShell | null = null;
      const q = new AsyncQueue<
        | { kind: 'open'; sessionId: string }
        | { kind: 'data'; data: string }
        | { kind: 'exit'; code: number | null }
      >(() => {
        shell?.close();
        shells.delete(sessionId);
      });
      const dec = new StringDecoder('utf8');
      core.sandboxes.shell(i.sandbox, i.cols, i.rows, ctx.actor).then(
        (sh) => {
          shell = sh;
          shells.set(sessionId, sh);
          q.push({ kind: 'open', sessionId });
          sh.onData((c) => q.push({ kind: 'data', data: dec.write(c) }));
          sh.onExit((e) => {
            shells.delete(sessionId);
            q.push({ kind: 'exit', code: e.exitCode });
            q.end();
          });
          ctx.signal.addEventListener('abort', () => sh.close(), { once: true });
        },
        (e: unknown) => q.fail(e),
      );
      return q;
    },
    'sandboxes.shellInput': (i) => {
      const sh = shells.get(i.sessionId);
      if (!sh) throw new FluidError('NOT_FOUND', 'That shell session has ended.');
      if (i.cols && i.rows) sh.resize(i.cols, i.rows);
      if (i.data) sh.write(i.data);
      return { ok: true as const };
    },
    'sandboxes.egressAllow': async (i, ctx) => {
      // New reach for a root sandbox: a person decides it, with presence (like approving egress).
      const sandbox = core.sandboxes.get(i.sandbox);
      const purpose = egressPurpose(sandbox.id, i.destination);
      // an exact IP entry opens what no name reaches: the person reads why before confirming
      const warning = destinationWarning(i.destination);
      core.presence.demand(
        ctx.actor,
        {
          purpose,
          required: true,
          what: `let ${sandbox.name} reach ${i.destination}${warning ? ` (WARNING: ${warning})` : ''}`,
        },
        await core.presence.verify(ctx.actor, purpose, i.presence),
      );
      return core.sandboxes.setEgress(sandbox.id, i.destination, true, ctx.actor);
    },
    'sandboxes.egressRevoke': (i, ctx) =>
      core.sandboxes.setEgress(i.sandbox, i.destination, false, ctx.actor),
    'sandboxes.reconcile': (i, ctx) => core.reconcile(i.host, ctx.actor),
    'sandboxes.pool': async () => (await core.sandboxes.pool.plan()).status,
    'bases.list': (i) => core.sandboxes.listBases(i.host),
    'bases.refresh': (i, ctx) => core.sandboxes.refreshBase(i.host, i.source, ctx.actor),
    'bases.prune': (i, ctx) => core.sandboxes.pruneBases(i.host, ctx.actor),
    'bases.warm': (i, ctx) =>
      core.sandboxes.warm(i.host, i.source, { vcpus: i.vcpus, memoryMiB: i.memoryMiB }, ctx.actor),
    'snapshots.create': (i, ctx) => core.sandboxes.snapshotCreate(i.sandbox, i.name, i.memory, ctx.actor),
    'snapshots.list': (i) => core.sandboxes.snapshotList(i.sandbox),
    'snapshots.restore': (i, ctx) => core.sandboxes.snapshotRestore(i.sandbox, i.snapshot, ctx.actor),
    'snapshots.delete': (i, ctx) => core.sandboxes.snapshotDelete(i.sandbox, i.snapshot, ctx.actor),

    // the system diff
    'diff.run': (i, ctx) => core.diff.run(i, ctx.actor),
    'diff.get': (i) => core.diff.get(i.sandbox, i.diff, i.showNoise),
    'diff.list': (i) => core.diff.list(i.sandbox),
    'diff.select': (i, ctx) => core.diff.select(i.sandbox, i.items, i.included, ctx.actor),
    'diff.baseline': (i) => core.diff.baseline(i.sandbox),

    ...agentRoutes(core),
    ...sandboxSessionRoutes(core),
    ...playbookRoutes(core),
    ...changeRoutes(core),

    // agent tools and the read-only shell policy
    'tools.list': (i) => core.tools.info(i.mode),
    'policy.check': async (i) => {
      const d = (await core.shellPolicy()).check(i.command, i.mode);
      return { command: i.command, decision: d.decision, reason: d.reason };
    },
  };
}
