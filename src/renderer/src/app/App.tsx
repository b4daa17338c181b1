/** The shell: navigation, header (connection, tasks), banner, the routed view, toasts. */
import { useEffect, useRef } from 'react';
import { AgentView } from '../features/agent/AgentView.tsx';
import { ApprovalModal } from '../features/approvals/ApprovalModal.tsx';
import { PresenceDialog } from '../features/presence/PresenceDialog.tsx';
import { AuditView } from '../features/audit/AuditView.tsx';
import { HostsView } from '../features/hosts/HostsView.tsx';
import { OnboardingView } from '../features/onboarding/OnboardingView.tsx';
import { OverviewView } from '../features/overview/OverviewView.tsx';
import { PlaybooksView } from '../features/playbooks/PlaybooksView.tsx';
import { ChangesView } from '../features/changes/ChangesView.tsx';
import { SandboxesView } from '../features/sandboxes/SandboxesView.tsx';
import { CreateSandboxHost } from '../features/sandboxes/CreateSandboxDialog.tsx';
import { SettingsView } from '../features/settings/SettingsView.tsx';
import { redirect, useRoute } from '../lib/route.ts';
import { useConnection, useOnline } from '../stores/connection.ts';
import { isFirstRun, useHosts } from '../stores/hosts.ts';
import { ConnectScreen } from './ConnectScreen.tsx';
import { Header } from './Header.tsx';
import { Nav, useNavCollapsed } from './Nav.tsx';
import { ReconnectBanner } from './ReconnectBanner.tsx';
import { SECTIONS } from './sections.ts';
import { useThemeSync } from './theme.ts';
import { Toasts } from './Toasts.tsx';

function useLanding(route: string[]): void {
  const loaded = useHosts((s) => s.loaded);
  const firstRun = useHosts(isFirstRun);
  const decided = useRef(false);
  useEffect(() => {
    if (decided.current || !loaded) return;
    decided.current = true;
    if (route.length === 0) redirect(firstRun ? 'onboarding' : 'overview');
  }, [loaded, firstRun, route.length]);
}

function View({ route }: { route: string[] }) {
  const [section, ...rest] = route;
  switch (section) {
    case 'overview':
      return <OverviewView />;
    case 'onboarding':
      return <OnboardingView />;
    case 'hosts':
      return <HostsView sub={rest} />;
    case 'sandboxes':
      return <SandboxesView sub={rest} />;
    case 'agent':
      return <AgentView sub={rest} />;
    case 'playbooks':
      return <PlaybooksView sub={rest} />;
    case 'changes':
      return <ChangesView sub={rest} />;
    case 'audit':
      return <AuditView sub={rest} />;
    case 'settings':
      return <SettingsView sub={rest} />;
    case undefined:
      return null;
    default:
      return (
        <div className="page-pad">
          <p>
            There is no page at <code>#{location.hash.slice(1)}</code>.{' '}
            <a href="#/overview">Go to the overview</a>.
          </p>
        </div>
      );
  }
}

export function App() {
  const state = useConnection((s) => s.state);
  const everConnected = useConnection((s) => s.generation > 0);
  const online = useOnline();
  const navCollapsed = useNavCollapsed();
  const route = useRoute();
  useThemeSync();
  useLanding(route);
  const mainRef = useRef<HTMLElement>(null);
  const section = route[0] ?? '';

  // Move focus to the content when the section changes (not on the first render).
  const lastSection = useRef(section);
  useEffect(() => {
    if (lastSection.current !== section && lastSection.current !== '') mainRef.current?.focus();
    lastSection.current = section;
  }, [section]);

  useEffect(() => {
    const label = SECTIONS.find((s) => s.id === section)?.label;
    document.title = label ? `${label} · Fluid` : 'Fluid';
  }, [section]);

  if (!everConnected) return <ConnectScreen />;
  const title = SECTIONS.find((s) => s.id === section)?.label ?? 'Fluid';
  return (
    <div className="shell" data-connection={state} data-nav={navCollapsed ? 'collapsed' : 'expanded'}>
      <a className="skip-link" href="#main" onClick={(e) => (e.preventDefault(), mainRef.current?.focus())}>
        Skip to content
      </a>
      <Nav current={section} />
      <div className="main-col">
        <Header title={title} />
        <ReconnectBanner />
        <main className="content" id="main" ref={mainRef} tabIndex={-1} aria-label={title}>
          {/* Offline, every action that needs the backend is disabled at once (a disabled fieldset
              disables the buttons and fields inside it); links and what is on screen stay. */}
          <fieldset className="offline-guard" disabled={!online} data-offline={online ? undefined : 'true'}>
            <View route={route} />
            <CreateSandboxHost />
          </fieldset>
        </main>
      </div>
      <Toasts />
      <ApprovalModal />
      <PresenceDialog />
    </div>
  );
}
