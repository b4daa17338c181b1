/**
 * One libvirt registered twice (say, locally and over SSH to the same machine): Fluid works with it,
 * since both records share one sandbox network and one egress proxy, but a person should know, and
 * probably keep only one.
 */
import type { Host } from '../../../../shared/contract/hosts.ts';
import { Callout } from '../../components/ui.tsx';
import { href } from '../../lib/route.ts';
import { useHosts } from '../../stores/hosts.ts';

export function SameMachineWarning({ host }: { host: Host }) {
  const byId = useHosts((s) => s.byId);
  const others = host.sameMachineAs ?? [];
  if (!others.length) return null;
  const named = others.map((ref) => byId[ref] ?? Object.values(byId).find((h) => h.name === ref) ?? null);
  return (
    <div data-testid="same-machine">
      <Callout tone="warn" title="The same machine is registered twice">
        <p>
          {host.name} is the same libvirt on the same machine as{' '}
          {named.map((h, i) => (
            <span key={others[i]}>
              {i > 0 && ', '}
              {h ? <a href={href('hosts', h.id)}>{h.name}</a> : others[i]}
            </span>
          ))}{' '}
          (their machine id, network namespace and libvirt UUID match). Both work and share one sandbox
          network and one egress proxy, but their capacity is one machine&apos;s, counted twice. Keep one of
          them unless you need both ways in.
        </p>
      </Callout>
    </div>
  );
}
