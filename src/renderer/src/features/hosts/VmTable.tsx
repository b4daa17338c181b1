/** VMs on a host: what a sandbox could be cloned from. Fluid never writes to a source. */
import type { Vm } from '../../../../shared/contract/hosts.ts';
import { Badge } from '../../components/ui.tsx';
import { formatMiB } from '../../lib/format.ts';

function stateTone(vm: Vm): 'ok' | 'neutral' | 'warn' {
  if (vm.running) return 'ok';
  return vm.state === 'shut off' ? 'neutral' : 'warn';
}

export function VmTable({ vms, caption }: { vms: Vm[]; caption: string }) {
  return (
    <div className="table-wrap">
      <table className="table" aria-label={caption}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col" className="num">
              vCPUs
            </th>
            <th scope="col" className="num">
              Memory
            </th>
            <th scope="col">Disks</th>
            <th scope="col">Guest agent</th>
          </tr>
        </thead>
        <tbody>
          {vms.map((vm) => {
            const disks = vm.disks.filter((d) => d.device === 'disk');
            return (
              <tr key={vm.uuid} data-vm={vm.name}>
                <th scope="row" className="vm-name">
                  {vm.name}
                  {vm.title && <div className="muted small">{vm.title}</div>}
                  {vm.fluid && (
                    <div>
                      <Badge tone="accent">Fluid {vm.fluid.kind}</Badge>
                    </div>
                  )}
                </th>
                <td>
                  <Badge tone={stateTone(vm)}>{vm.state}</Badge>
                </td>
                <td className="num">{vm.vcpus}</td>
                <td className="num">{formatMiB(vm.memoryMiB)}</td>
                <td className="disks">
                  {disks.length === 0 ? (
                    <span className="muted">none</span>
                  ) : (
                    disks.map((d) => (
                      <div key={d.target} className="mono small" title={d.source ?? undefined}>
                        {d.target}
                        {d.format ? ` · ${d.format}` : ''}
                        {d.source ? ` · ${d.source.split('/').pop()}` : ''}
                      </div>
                    ))
                  )}
                </td>
                <td>{vm.hasGuestAgent ? <Badge tone="ok">yes</Badge> : <span className="muted">no</span>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
