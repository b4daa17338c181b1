/**
 * VMs on a host: what a sandbox could be cloned from (Fluid never writes to a source), each with what
 * can be done with it: a new sandbox from it, its base copy when Fluid has one, the sandbox a Fluid
 * domain belongs to.
 */
import type { Vm } from '../../../../shared/contract/hosts.ts';
import type { Base } from '../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge } from '../../components/ui.tsx';
import { formatMiB } from '../../lib/format.ts';
import { href } from '../../lib/route.ts';
import { openCreateDialog } from '../sandboxes/createDialog.ts';

function stateTone(vm: Vm): 'ok' | 'neutral' | 'warn' {
  if (vm.running) return 'ok';
  return vm.state === 'shut off' ? 'neutral' : 'warn';
}

export function VmTable({
  vms,
  caption,
  bases,
}: {
  vms: Vm[];
  caption: string;
  /** This host's base copies by source name (for "Open its base"); omit to offer no actions. */
  bases?: Record<string, Base>;
}) {
  const actions = bases !== undefined;
  return (
    <div className="table-wrap">
      <table className="table vm-table" aria-label={caption}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col">Size</th>
            <th scope="col" className="vm-disks-col">
              Disks
            </th>
            <th scope="col" title="QEMU guest agent (Fluid needs it to give a clone its identity)">
              Guest agent
            </th>
            {actions && (
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {vms.map((vm) => {
            const disks = vm.disks.filter((d) => d.device === 'disk');
            const base = bases?.[vm.name];
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
                <td className="nowrap" data-testid="vm-size">
                  {vm.vcpus} vCPU · {formatMiB(vm.memoryMiB)}
                </td>
                <td className="disks vm-disks-col">
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
                {actions && (
                  <td className="vm-actions">
                    <div className="btn-stack">
                      {vm.fluid ? (
                        vm.fluid.kind === 'sandbox' && (
                          <a className="btn btn-small" href={href('sandboxes', vm.fluid.id)}>
                            <Icon name="box" size={12} /> Open the sandbox
                          </a>
                        )
                      ) : (
                        <>
                          <button
                            type="button"
                            className="btn btn-small"
                            aria-label={`New sandbox from ${vm.name}`}
                            title={
                              vm.running
                                ? 'A running VM is copied with libvirt’s backup API: it keeps running, untouched'
                                : undefined
                            }
                            onClick={() =>
                              openCreateDialog({
                                hostId: vm.hostId,
                                source: vm.name,
                                vcpus: null,
                                memoryMiB: null,
                              })
                            }
                          >
                            <Icon name="plus" size={12} /> New sandbox
                          </button>
                          {base && (
                            <a
                              className="btn btn-small"
                              href={href('sandboxes', 'bases', base.id)}
                              aria-label={`Open the base of ${vm.name}`}
                            >
                              <Icon name="layers" size={12} /> Open its base
                            </a>
                          )}
                        </>
                      )}
                    </div>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
