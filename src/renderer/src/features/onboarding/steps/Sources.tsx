import { Icon } from '../../../components/Icon.tsx';
import { Callout, EmptyState, ErrorBox, Spinner } from '../../../components/ui.tsx';
import { plural } from '../../../lib/format.ts';
import { useHosts } from '../../../stores/hosts.ts';
import { VmTable } from '../../hosts/VmTable.tsx';
import { loadSources } from '../actions.ts';
import type { HostWizardState } from '../state.ts';
import type { StepContext } from '../wizard.ts';

export function SourcesStep(ctx: StepContext<HostWizardState>) {
  const { state } = ctx;
  const host = useHosts((s) => (state.hostId ? s.byId[state.hostId] : undefined));
  return (
    <div className="sources-step">
      <Callout tone="info" icon="shield" title="Fluid never writes to a source VM">
        <p>
          It does not snapshot, pause or change them. A sandbox starts from a copy of a source&apos;s disk
          that Fluid keeps in its own cache on the host.
        </p>
      </Callout>
      {state.sourcesError ? (
        <ErrorBox error={state.sourcesError} title="Could not list the VMs">
          <div className="row-actions">
            <button type="button" className="btn btn-small" onClick={() => void loadSources(ctx)}>
              <Icon name="refresh" size={12} /> Try again
            </button>
          </div>
        </ErrorBox>
      ) : state.sources === null ? (
        <div className="probing" role="status">
          <Spinner label="Listing VMs" /> Listing the VMs on {host?.name ?? 'the host'}…
        </div>
      ) : state.sources.length === 0 ? (
        <EmptyState icon="box" title="No VMs on this host yet">
          <p>
            Sandboxes are cloned from existing VMs. Define one with virt-manager, cockpit or{' '}
            <code>virt-install</code>, then come back to Hosts to see it.
          </p>
        </EmptyState>
      ) : (
        <>
          <p>
            {plural(state.sources.length, 'VM')} on <strong>{host?.name}</strong> can be cloned into
            sandboxes:
          </p>
          <VmTable vms={state.sources} caption="Source VMs" />
        </>
      )}
    </div>
  );
}
