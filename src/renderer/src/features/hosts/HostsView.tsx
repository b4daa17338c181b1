/** Hosts: the list on the left, the selected host's detail on the right; "Add host" is the wizard. */
import { useEffect, useMemo } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { Badge, EmptyState, Spinner } from '../../components/ui.tsx';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import { href, redirect } from '../../lib/route.ts';
import { READINESS_LABEL, hostTarget, readiness, useHosts } from '../../stores/hosts.ts';
import { latestTask, useTasks } from '../../stores/tasks.ts';
import { Wizard } from '../onboarding/Wizard.tsx';
import { addHostSteps } from '../onboarding/hostSteps.ts';
import { initialHostWizard, persistedPart } from '../onboarding/state.ts';
import { createWizardStore } from '../onboarding/wizard.ts';
import { HostDetail } from './HostDetail.tsx';
import { READINESS_TONE, VirtBadge } from './badges.tsx';

export const addHostStore = createWizardStore('connection', () => initialHostWizard('remote'), {
  key: 'fluid.addHost',
  pick: persistedPart,
});

function AddHost() {
  return (
    <div className="page-pad narrow">
      <p className="crumbs">
        <a href={href('hosts')}>Hosts</a> / Add a host over SSH
      </p>
      <Wizard
        steps={addHostSteps}
        store={addHostStore}
        label="Add host"
        onFinish={() => addHostStore.reset()}
      />
    </div>
  );
}

function HostList({ selected }: { selected: string | null }) {
  const order = useHosts((s) => s.order);
  const byId = useHosts((s) => s.byId);
  const tasks = useTasks((s) => s.byId);
  const now = useNow();
  return (
    <div className="list-pane">
      <div className="list-pane-head">
        <span className="muted">{order.length === 1 ? '1 host' : `${order.length} hosts`}</span>
        <a className="btn btn-small btn-primary" href={href('hosts', 'add')}>
          <Icon name="plus" size={12} /> Add host
        </a>
      </div>
      <ul className="host-list" aria-label="Hosts">
        {order.map((id) => {
          const h = byId[id];
          if (!h) return null;
          const r = readiness(h);
          const running = latestTask(tasks, 'host.check', h.id)?.status === 'running';
          return (
            <li key={id}>
              <a
                className={selected === id ? 'host-item active' : 'host-item'}
                href={href('hosts', id)}
                aria-current={selected === id ? 'true' : undefined}
                data-host={h.name}
              >
                <div className="host-item-top">
                  <span className={`dot dot-${READINESS_TONE[r]}`} aria-hidden="true" />
                  <span className="host-item-name">{h.name}</span>
                  <VirtBadge virtType={h.lastCheck?.facts.virtType} />
                  {(h.sameMachineAs?.length ?? 0) > 0 && (
                    <Badge tone="warn" title={`The same machine as ${h.sameMachineAs!.join(', ')}`}>
                      twice
                    </Badge>
                  )}
                </div>
                <div className="host-item-target mono">{hostTarget(h)}</div>
                <div className="host-item-meta">
                  {running ? (
                    <span>
                      <span className="spinner small" aria-hidden="true" /> Checking…
                    </span>
                  ) : (
                    <span>{READINESS_LABEL[r]}</span>
                  )}
                  <span title={formatTime(h.lastCheck?.checkedAt)}>
                    {h.lastCheck ? `checked ${formatRelative(h.lastCheck.checkedAt, now)}` : 'never checked'}
                  </span>
                </div>
              </a>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

export function HostsView({ sub }: { sub: string[] }) {
  const loaded = useHosts((s) => s.loaded);
  const order = useHosts((s) => s.order);
  const byId = useHosts((s) => s.byId);
  const wanted = sub[0];
  const selected = useMemo(() => {
    if (wanted && byId[wanted]) return wanted;
    if (wanted) return Object.values(byId).find((h) => h.name === wanted)?.id ?? null;
    return order[0] ?? null;
  }, [wanted, byId, order]);

  // A removed host's address falls back to the list.
  useEffect(() => {
    if (loaded && wanted && wanted !== 'add' && !selected) redirect('hosts');
  }, [loaded, wanted, selected]);

  if (wanted === 'add') return <AddHost />;
  if (!loaded)
    return (
      <div className="page-pad">
        <Spinner label="Loading hosts" />
      </div>
    );
  if (!order.length)
    return (
      <EmptyState
        icon="server"
        title="No hosts"
        actions={
          <a className="btn btn-primary" href={href('hosts', 'add')}>
            Add a host
          </a>
        }
      >
        <p>Add a libvirt/KVM host to clone its VMs into sandboxes.</p>
      </EmptyState>
    );
  return (
    <div className="split">
      <HostList selected={selected} />
      <div className="detail-pane">{selected && byId[selected] && <HostDetail host={byId[selected]} />}</div>
    </div>
  );
}
