/** What a host's capacity chart shows, in words (its accessible name, and the caption). */
import type { CapacitySample } from '../../stores/capacity.ts';

function range(values: number[]): string {
  const lo = Math.round(Math.min(...values));
  const hi = Math.round(Math.max(...values));
  return lo === hi ? `${lo} %` : `${lo}–${hi} %`;
}

export function describe(samples: CapacitySample[]): string {
  if (!samples.length) return 'No samples yet.';
  const last = samples.at(-1)!;
  const mins = Math.max(1, Math.round((last.at - samples[0]!.at) / 60_000));
  const mem = samples.map((s) => s.memUsedPct).filter((v): v is number => v !== null);
  const disk = samples.map((s) => s.diskUsedPct).filter((v): v is number => v !== null);
  const parts = [
    mem.length ? `memory in use ${Math.round(mem.at(-1)!)} % now (${range(mem)})` : 'memory unknown',
    disk.length ? `disk ${Math.round(disk.at(-1)!)} % (${range(disk)})` : 'disk unknown',
  ];
  return `${samples.length === 1 ? 'One sample' : `${samples.length} samples over ${mins} min`}: ${parts.join(', ')}.`;
}
