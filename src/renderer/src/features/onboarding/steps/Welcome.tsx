import { Icon } from '../../../components/Icon.tsx';
import type { StepContext } from '../wizard.ts';
import type { HostWizardState } from '../state.ts';

export function WelcomeStep(_: StepContext<HostWizardState>) {
  return (
    <div className="welcome">
      <ul className="welcome-points">
        <li>
          <Icon name="box" size={18} />
          <span>
            An AI agent works on a <strong>disposable clone</strong> of one of your real VMs, never on the VM
            itself.
          </span>
        </li>
        <li>
          <Icon name="book" size={18} />
          <span>
            When it is done, you get a <strong>reviewable change</strong>: what changed on the system, and an
            Ansible playbook that reproduces it.
          </span>
        </li>
        <li>
          <Icon name="shield" size={18} />
          <span>
            <strong>Nothing reaches production until you approve it</strong>, and every decision lands in a
            tamper-evident audit log.
          </span>
        </li>
      </ul>
      <p className="muted">
        First, connect Fluid to a libvirt/KVM host: this machine, or a server you reach over SSH. It takes a
        minute.
      </p>
    </div>
  );
}
