/**
 * Whether this machine can verify playbooks: ansible-core and ansible-lint, from the doctor's checks
 * (shown in onboarding and on the Playbooks page), with how to install what is missing.
 */
import { StatusIcon } from '../../components/ui.tsx';
import { useBackendQuery } from '../../lib/hooks.ts';

export function AnsibleReadiness() {
  const doctor = useBackendQuery((b, signal) => b.call('system.doctor', {}, { signal }), []);
  const checks = doctor.data?.checks.filter((c) => c.id === 'ansible-core' || c.id === 'ansible-lint') ?? [];
  if (!checks.length) return null;
  return (
    <section className="pb-ansible" aria-label="Playbook verification tools" data-testid="ansible-readiness">
      <h3 className="empty-sub">Playbook verification on this machine</h3>
      <ul className="pb-ansible-list">
        {checks.map((c) => (
          <li key={c.id} data-check={c.id} data-status={c.status}>
            <StatusIcon status={c.status} /> <strong>{c.title}</strong>: {c.detail}
            {c.advice && c.status !== 'pass' && <div className="muted small">{c.advice}</div>}
          </li>
        ))}
      </ul>
    </section>
  );
}
