/** One host: connection, preflight, capacity, VMs, networks and pools, and what can be done with it. */
import { useMemo, useState } from 'react';
import type { Host } from '../../../../shared/contract/hosts.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, ErrorBox, KV, Section, Spinner } from '../../components/ui.tsx';
import type { ErrorInfo } from '../../lib/errors.ts';
import { formatBytes, formatTime } from '../../lib/format.ts';
import { useBackendQuery, useWatchedTask } from '../../lib/hooks.ts';
import { rpc } from '../../stores/connection.ts';
import { READINESS_LABEL, hostTarget, readiness } from '../../stores/hosts.ts';
import { latestTask, upsertTask, useTasks } from '../../stores/tasks.ts';
import { toastError } from '../../stores/toasts.ts';
import { CapacityPanel } from './CapacityPanel.tsx';
import { EditHostModal } from './EditHostModal.tsx';
import { HostKeyMismatch, mismatchOf } from './HostKeyMismatch.tsx';
import { READINESS_TONE, VirtBadge } from './badges.tsx';
import { PreflightChecks, PreflightTaskStatus } from './PreflightChecks.tsx';
import { RemoveHostModal } from './RemoveHostModal.tsx';
import { SameMachineWarning } from './SameMachine.tsx';
import { VmTable } from './VmTable.tsx';

export async function recheck(host: Host): Promise<void> {
  try {
    upsertTask(await rpc().call('hosts.check', { host: host.id }));
  } catch (err) {
    toastError(err, `Checking ${host.name}`);
  }
}

function authText(h: Host): string {
  if (h.auth.type === 'local') return 'none (this machine)';
  if (h.auth.type === 'key') return `key file ${h.auth.keyPath}`;
  return h.auth.socket ? `SSH agent at ${h.auth.socket}` : 'SSH agent ($SSH_AUTH_SOCK of the backend)';
}

export function HostDetail({ host }: { host: Host }) {
  const lastTask = useTasks((s) => latestTask(s.byId, 'host.check', host.id));
  const watched = useWatchedTask(lastTask?.status === 'running' ? lastTask.id : null);
  const task = watched ?? lastTask;
  const running = task?.status === 'running';
  const [modal, setModal] = useState<'edit' | 'remove' | null>(null);
  const checkedAt = host.lastCheck?.checkedAt ?? null;

  const capacity = useBackendQuery(
    (b, signal) => b.call('hosts.capacity', { host: host.id }, { signal }),
    [host.id],
    [checkedAt],
  );
  const vms = useBackendQuery(
    (b, signal) => b.call('hosts.vms', { host: host.id }, { signal }),
    [host.id],
    [checkedAt],
  );
  // Fluid's base copies on this host, for the VM rows' "Open its base".
  const bases = useBackendQuery(
    (b, signal) => b.call('bases.list', { host: host.id }, { signal }),
    [host.id],
    [checkedAt],
  );
  const baseBySource = useMemo(
    () =>
      Object.fromEntries(
        (bases.data ?? []).filter((b) => b.state !== 'retired').map((b) => [b.sourceName, b]),
      ),
    [bases.data],
  );

  // A changed host key shows up wherever Fluid tried to connect.
  const failures: Array<ErrorInfo | null | undefined> = [
    task && task.status === 'failed' && task.finishedAt && (!checkedAt || task.finishedAt > checkedAt)
      ? task.error
      : null,
    capacity.error,
    vms.error,
  ];
  const mismatch = failures.map((e) => (e ? mismatchOf(e) : null)).find(Boolean) ?? null;
  const r = readiness(host);
  const facts = host.lastCheck?.facts;

  return (
    <article className="host-detail" aria-labelledby="host-title">
      <div className="detail-head">
        <div>
          <h2 id="host-title" className="detail-title">
            {host.name}
          </h2>
          <div className="detail-sub">
            <span className="mono">{hostTarget(host)}</span>
            {mismatch ? (
              <Badge tone="fail">Host key changed</Badge>
            ) : (
              <Badge tone={READINESS_TONE[r]}>{READINESS_LABEL[r]}</Badge>
            )}
            <VirtBadge virtType={facts?.virtType} />
            {host.kind === 'local' && <Badge>built in</Badge>}
          </div>
        </div>
        <div className="detail-actions">
          <button
            type="button"
            className="btn btn-primary"
            disabled={running}
            onClick={() => void recheck(host)}
          >
            <Icon name="refresh" size={14} /> {running ? 'Checking…' : 'Re-check'}
          </button>
          <button type="button" className="btn" onClick={() => setModal('edit')}>
            <Icon name="edit" size={14} /> Edit
          </button>
          <button
            type="button"
            className="btn btn-danger-ghost"
            onClick={() => setModal('remove')}
            aria-describedby={host.kind === 'local' ? 'local-remove-note' : undefined}
          >
            <Icon name="trash" size={14} /> Remove
          </button>
        </div>
      </div>

      {mismatch && <HostKeyMismatch host={host} mismatch={mismatch} onTrusted={() => void recheck(host)} />}
      <SameMachineWarning host={host} />

      <Section title="Preflight">
        {task && (running || task.status !== 'succeeded') && <PreflightTaskStatus task={task} />}
        {host.lastCheck ? (
          <PreflightChecks preflight={host.lastCheck} compact />
        ) : (
          !running && (
            <p className="muted">
              This host was never checked. <strong>Re-check</strong> runs the preflight: libvirt, KVM,
              qemu-img, disk, memory, networks and pools.
            </p>
          )
        )}
      </Section>

      <Section
        title="Capacity"
        actions={
          <button
            type="button"
            className="btn btn-small btn-ghost"
            onClick={capacity.reload}
            aria-label="Refresh capacity"
            disabled={capacity.loading}
          >
            <Icon name="refresh" size={12} />
          </button>
        }
      >
        {capacity.error && mismatchOf(capacity.error) ? (
          <p className="muted">
            Fluid does not connect to this host until its host key is settled (see above).
          </p>
        ) : capacity.error ? (
          <ErrorBox error={capacity.error} title="Could not measure the host" />
        ) : capacity.data ? (
          <CapacityPanel capacity={capacity.data} storageDir={host.storageDir} />
        ) : capacity.loading ? (
          <Spinner label="Measuring capacity" />
        ) : null}
      </Section>

      <Section
        title={vms.data ? `VMs (${vms.data.length})` : 'VMs'}
        actions={
          <button
            type="button"
            className="btn btn-small btn-ghost"
            onClick={vms.reload}
            aria-label="Refresh VMs"
            disabled={vms.loading}
          >
            <Icon name="refresh" size={12} />
          </button>
        }
      >
        {vms.error && mismatchOf(vms.error) ? (
          <p className="muted">
            Fluid does not connect to this host until its host key is settled (see above).
          </p>
        ) : vms.error ? (
          <ErrorBox error={vms.error} title="Could not list the VMs" />
        ) : vms.data ? (
          vms.data.length ? (
            <VmTable vms={vms.data} caption={`VMs on ${host.name}`} bases={baseBySource} />
          ) : (
            <p className="muted">No VMs are defined on this host.</p>
          )
        ) : vms.loading ? (
          <Spinner label="Listing VMs" />
        ) : null}
      </Section>

      <div className="two-col">
        <Section title="Networks">
          {facts ? (
            facts.networks.length ? (
              <table className="table compact" aria-label="Networks">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">State</th>
                    <th scope="col">Bridge</th>
                    <th scope="col">Autostart</th>
                  </tr>
                </thead>
                <tbody>
                  {facts.networks.map((n) => (
                    <tr key={n.name}>
                      <th scope="row">{n.name}</th>
                      <td>{n.active ? <Badge tone="ok">active</Badge> : <Badge>inactive</Badge>}</td>
                      <td className="mono">{n.bridge ?? '—'}</td>
                      <td>{n.autostart ? 'yes' : 'no'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="muted">No libvirt networks.</p>
            )
          ) : (
            <p className="muted">Known after the first preflight.</p>
          )}
        </Section>
        <Section title="Storage pools">
          {facts ? (
            facts.pools.length ? (
              <table className="table compact" aria-label="Storage pools">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">State</th>
                    <th scope="col" className="num">
                      Available
                    </th>
                    <th scope="col" className="num">
                      Capacity
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {facts.pools.map((p) => (
                    <tr key={p.name}>
                      <th scope="row">{p.name}</th>
                      <td>{p.state}</td>
                      <td className="num">{formatBytes(p.availableBytes)}</td>
                      <td className="num">{formatBytes(p.capacityBytes)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="muted">
                None defined. Fluid keeps its images in <code>{host.storageDir}</code>.
              </p>
            )
          ) : (
            <p className="muted">Known after the first preflight.</p>
          )}
        </Section>
      </div>

      <Section title="Connection">
        <dl className="kv">
          <KV label="Kind">{host.kind === 'local' ? 'This machine (built in)' : 'SSH'}</KV>
          <KV label="Target" mono>
            {hostTarget(host)}
          </KV>
          <KV label="Authentication">{authText(host)}</KV>
          <KV label="Host key">
            {host.hostKey ? (
              <span className="fp-inline">
                <span className="muted">{host.hostKey.type}</span>{' '}
                <code data-testid="pinned-fingerprint">{host.hostKey.fingerprint}</code>{' '}
                <Badge tone="ok">pinned</Badge>
              </span>
            ) : host.kind === 'local' ? (
              <span className="muted">not needed (no SSH)</span>
            ) : (
              <Badge tone="fail">none trusted</Badge>
            )}
          </KV>
          <KV label="libvirt URI" mono>
            {host.libvirtUri}
          </KV>
          <KV label="Storage directory" mono>
            {host.storageDir}
          </KV>
          {facts && (
            <>
              <KV label="libvirt">{facts.libvirtVersion ?? '—'}</KV>
              <KV label="Hypervisor">{facts.hypervisorVersion ?? '—'}</KV>
              <KV label="Acceleration">
                {facts.virtType === 'kvm' ? 'KVM' : `TCG (${facts.virtTypeReason})`}
              </KV>
              <KV label="CPU">{facts.cpuModel ?? '—'}</KV>
            </>
          )}
          <KV label="Added">{formatTime(host.createdAt)}</KV>
        </dl>
        {host.kind === 'local' && (
          <p className="muted small" id="local-remove-note">
            This machine is built in: Fluid always has it, so it cannot be removed.
          </p>
        )}
      </Section>

      {modal === 'edit' && <EditHostModal host={host} onClose={() => setModal(null)} />}
      {modal === 'remove' && <RemoveHostModal host={host} onClose={() => setModal(null)} />}
    </article>
  );
}
