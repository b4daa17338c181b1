import { EmptyState } from '../../components/ui.tsx';
import { ReadinessChecklist } from '../../components/ReadinessChecklist.tsx';

export function PlaybooksView() {
  return (
    <EmptyState icon="book" title="No playbooks to review">
      <p>
        When an agent finishes, Fluid turns what it changed into a reviewable change: a diff of files,
        packages and services, and an Ansible playbook verified by replaying it on a fresh clone. You approve
        it here before anything touches production.
      </p>
      <h3 className="empty-sub">What to do now</h3>
      <ReadinessChecklist />
      <p className="muted small">
        Playbooks come from agent sessions in sandboxes; none exist in this version yet.
      </p>
    </EmptyState>
  );
}
