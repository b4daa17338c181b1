import { EmptyState } from '../../components/ui.tsx';
import { ReadinessChecklist } from '../../components/ReadinessChecklist.tsx';

export function AgentView() {
  return (
    <EmptyState icon="agent" title="No agent sessions">
      <p>
        Here you will give an agent a task (“upgrade nginx and keep the config”, “find why the disk fills up”)
        and watch it work in a sandbox: every command it runs, every file it changes. Anything risky waits for
        your approval.
      </p>
      <h3 className="empty-sub">What to do now</h3>
      <ReadinessChecklist />
      <p className="muted small">
        An agent always works in a sandbox, so a checked host with source VMs comes first. Starting sessions
        is not part of this version yet.
      </p>
    </EmptyState>
  );
}
