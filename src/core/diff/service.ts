/**
 * The diff service: record a sandbox's baseline at creation, read what changed since (or between two
 * snapshots) on the host, store the result, and keep the person's include/exclude choices.
 *
 * A diff is a task: resolve the two sides → one round trip to the host program (collect.py: export,
 * mount, compare, classify) → validate and shape the answer (model.ts) → store, audit, announce.
 */
import { randomUUID } from 'node:crypto';
import type { Baseline, Diff, DiffSide, DiffSummary } from '../../shared/contract/diff.ts';
import type { Task } from '../../shared/contract/tasks.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { EventBus } from '../events.ts';
import type { HostConnection } from '../hosts/connection.ts';
import type { HostService } from '../hosts/service.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SandboxService } from '../sandboxes/service.ts';
import type { SandboxRow } from '../sandboxes/store.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { TaskContext, TaskManager } from '../store/tasks.ts';
import { takeBaseline } from './baseline.ts';
import { runCollect, type DiffRequest, type ViewSpec } from './host.ts';
import { buildDiff, countLine } from './model.ts';
import { DiffStore, type StoredDiff } from './store.ts';

export interface DiffDeps {
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  tasks: TaskManager;
  hosts: HostService;
  sandboxes: () => SandboxService;
  clock: Clock;
  log: Logger;
}

export interface RunInput {
  sandbox: string;
  from?: string;
  to?: string;
  method: 'auto' | 'fast' | 'walk';
}

/** Where a sandbox's diff keeps its files on the host (all inside the sandbox's directory). */
export const diffPaths = (dir: string, disk: string) => ({
  root: `${dir}/diff`,
  index: `${dir}/diff/${disk}.index.sqlite`,
  lock: `${dir}/diff/lock`,
  workdir: `${dir}/diff/run`,
  tmpdir: `${dir}/diff/tmp`,
});

export class DiffService {
  readonly store: DiffStore;
  private readonly d: DiffDeps;

  constructor(deps: DiffDeps) {
    this.d = deps;
    this.store = new DiffStore(deps.db);
  }

  // ---- baseline (a creation phase) ---------------------------------------------------------------

  /** Freeze the sandbox's disks as its baseline: called by creation once Fluid's own work is done. */
  async recordBaseline(
    r: SandboxRow,
    host: { libvirtUri: string },
    conn: HostConnection,
    signal?: AbortSignal,
  ): Promise<Baseline> {
    const b = await takeBaseline(conn, host, r.domain_name, r.dir, signal);
    const baseline: Baseline = { sandboxId: r.id, createdAt: this.d.clock.now().toISOString(), ...b };
    this.store.setBaseline(baseline);
    if (b.mode !== 'quiesced')
      this.d.log.warn('baseline taken without quiescing (the guest agent did not freeze)', { sandbox: r.id });
    return baseline;
  }

  baseline(ref: string): Baseline | null {
    return this.store.baseline(this.d.sandboxes().store.row(ref).id);
  }

  // ---- diffs --------------------------------------------------------------------------------------

  run(input: RunInput, actor: Actor): Task {
    const r = this.d.sandboxes().store.row(input.sandbox);
    const baseline = this.store.baseline(r.id);
    if (!baseline)
      throw new FluidError(
        'CONFLICT',
        `Sandbox ${r.name} has no baseline (it was created before Fluid recorded baselines, or its creation did not finish), so Fluid cannot tell its changes from its own. Create a new sandbox.`,
      );
    if (!input.to && !['running', 'stopped'].includes(r.state))
      throw new FluidError(
        'CONFLICT',
        `Sandbox ${r.name} is ${r.state}; a diff needs it running or stopped.`,
      );
    const snap = (ref: string) => this.d.sandboxes().store.snapshot(r.id, ref);
    const from: DiffSide = input.from
      ? { kind: 'snapshot', ...pick(snap(input.from)) }
      : { kind: 'baseline' };
    const to: DiffSide = input.to ? { kind: 'snapshot', ...pick(snap(input.to)) } : { kind: 'now' };
    const label = (s: DiffSide) => (s.kind === 'snapshot' ? `snapshot ${s.name}` : s.kind);
    return this.d.tasks.start({
      kind: 'diff.run',
      title: `Diff of ${r.name}: ${label(from)} → ${label(to)}`,
      target: r.id,
      run: (ctx) => this.runDiff(r.id, baseline, from, to, input.method, actor, ctx),
    });
  }

  private async runDiff(
    sandboxId: string,
    baseline: Baseline,
    from: DiffSide,
    to: DiffSide,
    method: RunInput['method'],
    actor: Actor,
    ctx: TaskContext,
  ): Promise<DiffSummary> {
    const r = this.d.sandboxes().store.row(sandboxId);
    const host = this.d.hosts.get(r.host_id);
    ctx.progress(0.05, `Connecting to ${host.name}`);
    const conn = await this.d.hosts.connection(host.id);
    const disk = baseline.disks[0]!;
    const paths = diffPaths(r.dir, disk.target);
    const side = (s: DiffSide): ViewSpec => {
      if (s.kind === 'baseline') return { kind: 'baseline' };
      if (s.kind === 'snapshot') {
        // A snapshot is the layer it froze (snapshots.ts); older kinds are looked up in libvirt.
        const layer = this.store.snapshotLayer(s.snapshotId, disk.target);
        if (layer) return { kind: 'image', image: layer, label: `snapshot ${s.name}` };
        return {
          kind: 'snapshot',
          name: s.name,
          uri: host.libvirtUri,
          domain: r.domain_name,
          image: disk.top,
        };
      }
      const state = this.d.sandboxes().store.row(sandboxId).state;
      if (state !== 'running' && state !== 'stopped')
        throw new FluidError(
          'CONFLICT',
          `Sandbox ${r.name} is ${state}; a diff needs it running or stopped.`,
        );
      return {
        kind: 'live',
        uri: host.libvirtUri,
        domain: r.domain_name,
        disk: disk.target,
        image: disk.top,
        otherDisks: baseline.disks.slice(1).map((x) => x.target),
        running: state === 'running',
        snapshotLock: `${r.dir}/snapshots/.lock`,
      };
    };
    const request: DiffRequest = {
      workdir: paths.workdir,
      tmpdir: paths.tmpdir,
      lock: paths.lock,
      disk: disk.target,
      baseline: disk.baseline,
      index: paths.index,
      from: side(from),
      to: side(to),
      method,
    };
    ctx.progress(0.15, 'Reading the disk on the host');
    const answer = await runCollect(conn, { op: 'diff', ...request }, { signal: ctx.signal });
    ctx.progress(0.9, 'Storing the diff');
    const diff = buildDiff(answer, {
      id: randomUUID(),
      sandboxId,
      from,
      to,
      createdAt: this.d.clock.now().toISOString(),
      createdBy: actor,
    });
    if (baseline.disks.length > 1)
      diff.warnings.push(
        `Only disk ${disk.target} was read; the sandbox's other disks (${baseline.disks
          .slice(1)
          .map((x) => x.target)
          .join(', ')}) are not part of this diff.`,
      );
    this.store.insert(diff);
    this.d.audit.append({
      actor,
      action: 'diff.run',
      target: sandboxId,
      data: {
        diff: diff.id,
        from,
        to,
        method: diff.method,
        consistency: diff.consistency.mode,
        items: diff.counts.items,
        noise: diff.counts.noise,
        sha256: diff.sha256,
      },
    });
    this.d.bus.emit('diff.changed', { sandboxId, diffId: diff.id, excluded: this.store.excluded(sandboxId) });
    this.d.log.info('diff', { sandbox: sandboxId, summary: countLine(diff), timings: diff.timings });
    return summary(diff);
  }

  get(ref: string, diffId: string | undefined, showNoise: boolean): Diff {
    const r = this.d.sandboxes().store.row(ref);
    return this.view(this.store.get(r.id, diffId), showNoise);
  }

  list(ref: string): DiffSummary[] {
    return this.store.list(this.d.sandboxes().store.row(ref).id);
  }

  view(d: StoredDiff, showNoise: boolean): Diff {
    return { ...d, excluded: this.store.excluded(d.sandboxId), noise: showNoise ? d.noise : null };
  }

  /**
   * Include or exclude items: what the change carries is a person's decision (the app, the web UI,
   * an interactive terminal). Agents, MCP clients and scripts — an agent's shell — are refused.
   */
  select(ref: string, items: string[], included: boolean, actor: Actor): { excluded: string[] } {
    const r = this.d.sandboxes().store.row(ref);
    if (!isPersonDoor(actor))
      throw new FluidError(
        'DENIED',
        'Only a person decides what a change carries (in the app, or `fluid diff --exclude` on an interactive terminal); agents and scripts cannot.',
      );
    this.store.setIncluded(r.id, [...new Set(items)], included, actor, this.d.clock.now().toISOString());
    const excluded = this.store.excluded(r.id);
    this.d.audit.append({
      actor,
      action: included ? 'diff.include' : 'diff.exclude',
      target: r.id,
      data: { items },
    });
    this.d.bus.emit('diff.changed', { sandboxId: r.id, diffId: null, excluded });
    return { excluded };
  }
}

function pick(s: { id: string; name: string }): { name: string; snapshotId: string } {
  return { name: s.name, snapshotId: s.id };
}

export function summary(d: StoredDiff | Diff): DiffSummary {
  return {
    id: d.id,
    sandboxId: d.sandboxId,
    from: d.from,
    to: d.to,
    createdAt: d.createdAt,
    method: d.method,
    counts: d.counts,
    sha256: d.sha256,
  };
}
