import type { IconName } from '../components/Icon.tsx';

export interface SectionDef {
  id: string;
  label: string;
  icon: IconName;
}

export const SECTIONS: SectionDef[] = [
  { id: 'overview', label: 'Overview', icon: 'home' },
  { id: 'onboarding', label: 'Onboarding', icon: 'compass' },
  { id: 'hosts', label: 'Hosts', icon: 'server' },
  { id: 'sandboxes', label: 'Sandboxes', icon: 'box' },
  { id: 'agent', label: 'Agent', icon: 'agent' },
  { id: 'playbooks', label: 'Playbooks', icon: 'book' },
  { id: 'changes', label: 'Changes', icon: 'layers' },
  { id: 'audit', label: 'Audit', icon: 'list' },
  { id: 'settings', label: 'Settings', icon: 'gear' },
];
