import { LOCAL_HOST_ID } from '../../../../../shared/contract/hosts.ts';
import { Icon } from '../../../components/Icon.tsx';
import { Badge } from '../../../components/ui.tsx';
import { READINESS_LABEL, readiness, useHosts } from '../../../stores/hosts.ts';
import { READINESS_TONE } from '../../hosts/badges.tsx';
import type { HostWizardState } from '../state.ts';
import type { StepContext } from '../wizard.ts';

export function ChooseHostStep({ state, update }: StepContext<HostWizardState>) {
  const local = useHosts((s) => s.byId[LOCAL_HOST_ID]);
  const choose = (mode: 'local' | 'remote') =>
    update({
      mode,
      hostId: mode === 'local' ? LOCAL_HOST_ID : null,
      preflight: null,
      checkTaskId: null,
      sources: null,
    });
  return (
    <fieldset className="choices">
      <legend className="sr-only">Which host?</legend>
      <label className={state.mode === 'local' ? 'choice selected' : 'choice'}>
        <input
          type="radio"
          name="host-mode"
          value="local"
          checked={state.mode === 'local'}
          onChange={() => choose('local')}
        />
        <Icon name="monitor" size={22} />
        <span className="choice-body">
          <span className="choice-title">
            This machine{' '}
            {local && (
              <Badge tone={READINESS_TONE[readiness(local)]}>{READINESS_LABEL[readiness(local)]}</Badge>
            )}
          </span>
          <span className="choice-desc">
            Use the libvirt on the computer that runs Fluid (<code>qemu:///system</code>). Nothing to
            configure.
          </span>
        </span>
      </label>
      <label className={state.mode === 'remote' ? 'choice selected' : 'choice'}>
        <input
          type="radio"
          name="host-mode"
          value="remote"
          checked={state.mode === 'remote'}
          onChange={() => choose('remote')}
        />
        <Icon name="server" size={22} />
        <span className="choice-body">
          <span className="choice-title">A remote host over SSH</span>
          <span className="choice-desc">
            A KVM server you can log in to. Fluid connects with a key file or your SSH agent, checks the host
            key with you, and runs <code>virsh</code> there.
          </span>
        </span>
      </label>
    </fieldset>
  );
}
