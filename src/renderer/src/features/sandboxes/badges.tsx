/** How a sandbox's state and start path read everywhere (list, detail, dialogs). */
import type { Sandbox } from '../../../../shared/contract/sandboxes.ts';
import { Badge } from '../../components/ui.tsx';
import { formatDuration, formatTimeLeft } from '../../lib/format.ts';
import { BUSY_STATES, STATE_TONE } from '../../stores/sandboxes.ts';

export function StateBadge({ sandbox }: { sandbox: Pick<Sandbox, 'state'> }) {
  const busy = BUSY_STATES.includes(sandbox.state);
  return (
    <Badge tone={STATE_TONE[sandbox.state]}>
      {busy && <span className="spinner tiny" aria-hidden="true" />}
      {sandbox.state}
    </Badge>
  );
}

/** "restore · 14.2 s" or "cold · 63 s"; null before the sandbox ever started. */
export function startPathText(sb: Pick<Sandbox, 'startPath' | 'timings'>): string | null {
  if (!sb.startPath) return null;
  const total = sb.timings.total;
  return total ? `${sb.startPath} · ${formatDuration(total)}` : sb.startPath;
}

export function sizeText(sb: Pick<Sandbox, 'vcpus' | 'memoryMiB'>): string {
  if (!sb.vcpus && !sb.memoryMiB) return 'size from the source';
  const mem = sb.memoryMiB >= 1024 ? `${(sb.memoryMiB / 1024).toFixed(1)} GiB` : `${sb.memoryMiB} MiB`;
  return `${sb.vcpus} vCPU · ${mem}`;
}

export function TimeLeft({ sandbox, now }: { sandbox: Pick<Sandbox, 'expiresAt' | 'state'>; now: number }) {
  if (sandbox.state === 'destroyed' || sandbox.state === 'failed') return <span className="muted">—</span>;
  const text = formatTimeLeft(sandbox.expiresAt, now);
  const left = sandbox.expiresAt ? new Date(sandbox.expiresAt).getTime() - now : Infinity;
  const tone = left <= 0 ? 'fail' : left < 15 * 60_000 ? 'warn' : '';
  return (
    <span className={`time-left ${tone}`} data-testid="time-left">
      {text}
    </span>
  );
}
