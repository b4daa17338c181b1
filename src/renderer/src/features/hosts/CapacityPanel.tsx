import type { Capacity } from '../../../../shared/contract/hosts.ts';
import { UsageBar } from '../../components/ui.tsx';
import { formatBytes, formatMiB } from '../../lib/format.ts';

export function CapacityPanel({ capacity: c, storageDir }: { capacity: Capacity; storageDir: string }) {
  const memUsed = c.memoryMiB !== null && c.freeMemoryMiB !== null ? c.memoryMiB - c.freeMemoryMiB : null;
  const diskUsed =
    c.diskTotalBytes !== null && c.diskFreeBytes !== null ? c.diskTotalBytes - c.diskFreeBytes : null;
  return (
    <div className="capacity" data-testid="capacity">
      <div className="stats">
        <div className="stat">
          <div className="stat-value">{c.cpus ?? '—'}</div>
          <div className="stat-label">CPUs</div>
        </div>
        <div className="stat">
          <div className="stat-value">{formatMiB(c.memoryMiB)}</div>
          <div className="stat-label">Memory</div>
        </div>
        <div className="stat">
          <div className="stat-value">{c.runningVms}</div>
          <div className="stat-label">Running VMs</div>
        </div>
        <div className="stat">
          <div className="stat-value">
            {c.committedVcpus} <span className="stat-unit">vCPU</span> · {formatMiB(c.committedMemoryMiB)}
          </div>
          <div className="stat-label">Committed to sandboxes</div>
        </div>
      </div>
      <UsageBar
        label="Memory in use"
        used={memUsed}
        total={c.memoryMiB}
        caption={`${formatMiB(c.freeMemoryMiB)} available of ${formatMiB(c.memoryMiB)}`}
      />
      <UsageBar
        label={`Disk at ${storageDir}`}
        used={diskUsed}
        total={c.diskTotalBytes}
        caption={`${formatBytes(c.diskFreeBytes)} free of ${formatBytes(c.diskTotalBytes)}`}
      />
      <UsageBar
        label="vCPUs committed to sandboxes"
        used={c.committedVcpus}
        total={c.cpus}
        caption={`${c.committedVcpus} of ${c.cpus ?? '—'} CPUs`}
      />
    </div>
  );
}
