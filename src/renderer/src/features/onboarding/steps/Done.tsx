import { Icon } from '../../../components/Icon.tsx';
import { Badge } from '../../../components/ui.tsx';
import { AnsibleReadiness } from '../../playbooks/AnsibleReadiness.tsx';
import { href } from '../../../lib/route.ts';
import { READINESS_LABEL, hostTarget, readiness, useHosts } from '../../../stores/hosts.ts';
import { SameMachineWarning } from '../../hosts/SameMachine.tsx';
import type { HostWizardState } from '../state.ts';
import type { StepContext } from '../wizard.ts';

export function DoneStep({ state }: StepContext<HostWizardState>) {
  const host = useHosts((s) => (state.hostId ? s.byId[state.hostId] : undefined));
  if (!host) return null;
  const r = readiness(host);
  return (
    <div className="done">
      <div className="done-host">
        <Icon name="server" size={22} />
        <div>
          <div className="done-name">{host.name}</div>
          <div className="muted mono small">{hostTarget(host)}</div>
        </div>
        <Badge tone={r === 'ready' ? 'ok' : r === 'warnings' ? 'warn' : r === 'failed' ? 'fail' : 'neutral'}>
          {READINESS_LABEL[r]}
        </Badge>
      </div>
      <SameMachineWarning host={host} />
      <p>
        Next: <strong>create your first sandbox</strong> — a disposable clone of one of {host.name}&apos;s VMs
        where you (or an agent) can work as root without touching the original.
      </p>
      <ul className="next-list">
        <li>
          <a href={href('hosts', host.id)}>Open {host.name} in Hosts</a>: capacity, VMs, networks, and the
          checks again whenever you need them.
        </li>
        <li>
          <a href={href('hosts', 'add')}>Add another host</a> over SSH.
        </li>
        <li>
          <a href={href('sandboxes')}>Sandboxes</a>: where an agent&apos;s disposable clones of these VMs will
          live.
        </li>
      </ul>
      <AnsibleReadiness />
    </div>
  );
}
