/**
 * Where a new sandbox goes when nobody named a host: on a machine that has the source VM and the
 * most memory free after it, with the score and a reason a person can read ("placed on kvm2: has
 * web-01, 6.1 GiB free (kvm1: 2.0 GiB)"). Host records that reach one machine (`sameMachineAs`: the
 * local host and the same libvirt over SSH) are one candidate, asked once.
 */
import type { Host, Vm } from '../../shared/contract/hosts.ts';
import type { Placement } from '../../shared/contract/sandboxes.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';

/** What was learnt about one machine (its representative host record). */
export interface MachineFacts {
  host: Host;
  /** Other records of the same machine. */
  twins: Host[];
  /** null: the machine could not be asked. */
  source: Vm | null;
  hasSource: boolean | null;
  freeMemoryMiB: number | null;
  /** Memory of Fluid sandboxes on the machine that are still being created (not yet using it). */
  pendingMiB: number;
  error: string | null;
}

/** Group host records by machine; the representative is the local record, else the oldest. */
export function machines(hosts: Host[]): Array<{ host: Host; twins: Host[] }> {
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const seen = new Set<string>();
  const out: Array<{ host: Host; twins: Host[] }> = [];
  for (const h of hosts) {
    if (seen.has(h.id)) continue;
    // Everything reachable through sameMachineAs, either way.
    const group: Host[] = [];
    const stack = [h];
    while (stack.length) {
      const x = stack.pop()!;
      if (seen.has(x.id)) continue;
      seen.add(x.id);
      group.push(x);
      for (const n of x.sameMachineAs ?? []) {
        const t = byName.get(n);
        if (t && !seen.has(t.id)) stack.push(t);
      }
      for (const o of hosts) if (!seen.has(o.id) && (o.sameMachineAs ?? []).includes(x.name)) stack.push(o);
    }
    const order = (a: Host, b: Host) =>
      (a.kind === 'local' ? 0 : 1) - (b.kind === 'local' ? 0 : 1) || a.createdAt.localeCompare(b.createdAt);
    group.sort(order);
    out.push({ host: group[0]!, twins: group.slice(1) });
  }
  return out;
}

export const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`;

/**
 * The choice among machines (pure): those with the source, by free memory after the sandbox (its
 * size when known, else the source's). Throws NOT_FOUND naming what was checked when none has it.
 */
export function choosePlacement(
  source: string,
  facts: MachineFacts[],
  memoryMiB?: number,
): { host: Host; placement: Placement } {
  const scored = facts.map((f) => {
    const need = memoryMiB ?? f.source?.memoryMiB ?? 0;
    const free = f.freeMemoryMiB === null ? null : Math.max(0, f.freeMemoryMiB - f.pendingMiB);
    return { f, free, score: free === null ? -Infinity : free - need };
  });
  const fit = scored
    .filter((s) => s.f.hasSource)
    .sort((a, b) => b.score - a.score || a.f.host.name.localeCompare(b.f.host.name));
  const note = (s: (typeof scored)[number]): string =>
    s.f.error
      ? `unreachable (${s.f.error.slice(0, 120)})`
      : s.f.hasSource === false
        ? `no ${source}`
        : s.free === null
          ? 'free memory unknown'
          : `${gib(s.free)} free`;
  const candidates = scored.flatMap((s) => [
    {
      host: s.f.host.name,
      hasSource: s.f.hasSource,
      freeMemoryMiB: s.free,
      note:
        s.f.error ??
        (s.f.twins.length ? `also registered as ${s.f.twins.map((t) => t.name).join(', ')}` : null),
    },
    ...s.f.twins.map((t) => ({
      host: t.name,
      hasSource: s.f.hasSource,
      freeMemoryMiB: s.free,
      note: `same machine as ${s.f.host.name}: counted once`,
    })),
  ]);
  const best = fit[0];
  if (!best) {
    const checked = scored.map((s) => `${s.f.host.name}: ${note(s)}`).join('; ');
    throw new FluidError(
      'NOT_FOUND',
      `No registered host has a VM "${source}" (${checked}). See \`fluid source list\`, or name the host with --host.`,
      { candidates },
    );
  }
  const others = [
    ...best.f.twins.map((t) => `${t.name}: the same machine, counted once`),
    ...scored.filter((s) => s !== best).map((s) => `${s.f.host.name}: ${note(s)}`),
  ];
  const reason =
    `placed on ${best.f.host.name}: has ${source}, ${best.free === null ? 'free memory unknown' : `${gib(best.free)} free`}` +
    (others.length ? ` (${others.join('; ')})` : '');
  return {
    host: best.f.host,
    placement: {
      score: Number.isFinite(best.score) ? Math.round(best.score) : 0,
      reason,
      by: 'capacity',
      candidates,
    },
  };
}

/** Ask each machine once (in parallel) whether it has the source and how much memory it has free. */
export async function gatherFacts(
  hosts: Host[],
  source: string,
  ask: {
    vms(hostId: string, signal?: AbortSignal): Promise<Vm[]>;
    freeMemoryMiB(hostId: string, signal?: AbortSignal): Promise<number | null>;
    pendingMiB(hostIds: string[]): number;
  },
  signal?: AbortSignal,
): Promise<MachineFacts[]> {
  return Promise.all(
    machines(hosts).map(async ({ host, twins }) => {
      try {
        const [vms, free] = await Promise.all([ask.vms(host.id, signal), ask.freeMemoryMiB(host.id, signal)]);
        const vm = vms.find((v) => !v.fluid && (v.name === source || v.uuid === source)) ?? null;
        return {
          host,
          twins,
          source: vm,
          hasSource: !!vm,
          freeMemoryMiB: free,
          pendingMiB: ask.pendingMiB([host.id, ...twins.map((t) => t.id)]),
          error: null,
        };
      } catch (err) {
        return {
          host,
          twins,
          source: null,
          hasSource: null,
          freeMemoryMiB: null,
          pendingMiB: 0,
          error: toErrorPayload(err).message,
        };
      }
    }),
  );
}
