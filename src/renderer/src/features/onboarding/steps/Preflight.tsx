import { useEffect } from 'react';
import { Icon } from '../../../components/Icon.tsx';
import { Callout, Spinner } from '../../../components/ui.tsx';
import { useWatchedTask } from '../../../lib/hooks.ts';
import { useHosts } from '../../../stores/hosts.ts';
import { toastError } from '../../../stores/toasts.ts';
import { PreflightChecks, PreflightTaskStatus } from '../../hosts/PreflightChecks.tsx';
import { SameMachineWarning } from '../../hosts/SameMachine.tsx';
import { startCheck, taskFinished } from '../actions.ts';
import type { HostWizardState } from '../state.ts';
import type { StepContext } from '../wizard.ts';

export function PreflightStep(ctx: StepContext<HostWizardState>) {
  const { state } = ctx;
  const task = useWatchedTask(state.checkTaskId);
  const host = useHosts((s) => (state.hostId ? s.byId[state.hostId] : undefined));
  const ctxStatus = task?.status;

  useEffect(() => {
    if (task && task.status !== 'running' && !state.preflight) taskFinished(ctx, task);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ctxStatus, task?.id]);

  const rerun = () => void startCheck(ctx).catch((err: unknown) => toastError(err, 'Starting the preflight'));
  const running = task?.status === 'running';
  return (
    <div className="preflight-step">
      <p>
        Fluid checks that <strong>{host?.name ?? 'the host'}</strong> can run sandboxes: libvirt, hardware
        acceleration, <code>qemu-img</code>, free disk and memory, networks and storage pools. It only reads;
        nothing is changed on the host.
      </p>
      {!task && !state.preflight && (
        <div className="probing" role="status">
          <Spinner label="Starting" /> Starting the preflight…
        </div>
      )}
      {task && <PreflightTaskStatus task={task} />}
      {state.preflight && <PreflightChecks preflight={state.preflight} />}
      {state.preflight && host && <SameMachineWarning host={host} />}
      {state.preflight && !state.preflight.ok && (
        <Callout tone="warn" title="Some checks failed">
          <p>
            Fix what the failed checks advise on the host, then run the checks again. You can also continue
            and fix it later.
          </p>
        </Callout>
      )}
      {!running && (task || state.preflight) && (
        <div className="row-actions">
          <button type="button" className="btn btn-small" onClick={rerun}>
            <Icon name="refresh" size={12} /> Run the checks again
          </button>
        </div>
      )}
    </div>
  );
}
