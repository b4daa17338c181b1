import { EmptyState } from '../../components/ui.tsx';
import { ReadinessChecklist } from '../../components/ReadinessChecklist.tsx';

export function SandboxesView() {
  return (
    <EmptyState icon="box" title="No sandboxes">
      <p>
        A sandbox is a disposable clone of one of your VMs: same disks, fresh identity, on an isolated network
        with no route out. An agent works there, never on the original, and a sandbox can be thrown away at
        any time.
      </p>
      <h3 className="empty-sub">What to do now</h3>
      <ReadinessChecklist />
      <p className="muted small">
        Sandboxes are cloned from the VMs a checked host lists under Sources; creating them from this page is
        not part of this version yet.
      </p>
    </EmptyState>
  );
}
