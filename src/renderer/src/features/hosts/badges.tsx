import { Badge } from '../../components/ui.tsx';
import type { Readiness } from '../../stores/hosts.ts';

export const READINESS_TONE: Record<Readiness, 'ok' | 'warn' | 'fail' | 'neutral'> = {
  ready: 'ok',
  warnings: 'warn',
  failed: 'fail',
  unchecked: 'neutral',
};

export function VirtBadge({ virtType }: { virtType: 'kvm' | 'qemu' | null | undefined }) {
  if (!virtType) return null;
  return virtType === 'kvm' ? (
    <Badge tone="ok" title="Hardware virtualisation (KVM)">
      KVM
    </Badge>
  ) : (
    <Badge tone="warn" title="Software emulation (TCG): sandboxes work but run several times slower">
      TCG
    </Badge>
  );
}
