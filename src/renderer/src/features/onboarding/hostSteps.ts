/**
 * The host wizard as data. Onboarding uses every step; "Add host" in Hosts starts at Connection.
 * The local host skips Connection and Verify: it needs no SSH and has no host key.
 */
import { LOCAL_HOST_ID } from '../../../../shared/contract/hosts.ts';
import { navigate } from '../../lib/route.ts';
import { useHosts, readiness } from '../../stores/hosts.ts';
import { openCreateDialog } from '../sandboxes/createDialog.ts';
import { checkKeyFile, loadSources, probeHost, registerHost, startCheck } from './actions.ts';
import { validateDraft, type HostWizardState } from './state.ts';
import { ChooseHostStep } from './steps/ChooseHost.tsx';
import { ConnectionStep } from './steps/Connection.tsx';
import { DoneStep } from './steps/Done.tsx';
import { PreflightStep } from './steps/Preflight.tsx';
import { SourcesStep } from './steps/Sources.tsx';
import { VerifyKeyStep } from './steps/VerifyKey.tsx';
import { WelcomeStep } from './steps/Welcome.tsx';
import type { WizardStep } from './wizard.ts';

type Step = WizardStep<HostWizardState>;
const isLocal = (s: HostWizardState) => s.mode === 'local';

export const welcomeStep: Step = {
  id: 'welcome',
  title: 'Welcome',
  description: 'What Fluid does, in three lines.',
  component: WelcomeStep,
  canContinue: () => true,
  continueLabel: 'Get started',
};

export const chooseHostStep: Step = {
  id: 'choose',
  title: 'Choose a host',
  description: 'Sandboxes run on a libvirt/KVM host, next to the VMs they are cloned from.',
  component: ChooseHostStep,
  canContinue: (s) => s.mode !== null,
  // This machine, when it is ready and the only host: preselected (a choice is still one click away).
  onEnter: (ctx) => {
    const hosts = useHosts.getState();
    const local = hosts.byId[LOCAL_HOST_ID];
    if (
      ctx.get().mode === null &&
      hosts.order.length === 1 &&
      local &&
      ['ready', 'warnings'].includes(readiness(local))
    )
      ctx.update({ mode: 'local', hostId: LOCAL_HOST_ID });
  },
  complete: (ctx) => {
    if (ctx.get().mode === 'local') ctx.update({ hostId: LOCAL_HOST_ID });
  },
};

export const connectionStep: Step = {
  id: 'connection',
  title: 'Connection',
  description: 'How Fluid reaches the host over SSH.',
  component: ConnectionStep,
  skip: isLocal,
  // Continue is always there: it shows every problem at once rather than staying greyed out.
  canContinue: (s) => !s.checkingKey,
  busyLabel: 'Checking the key file…',
  complete: async (ctx) => {
    const errors = validateDraft(ctx.get().draft);
    ctx.update({ touched: true, fieldErrors: {} });
    if (Object.keys(errors).length) return false;
    // The key file first: the host key is worth checking only once Fluid can log in with it.
    if (!(await checkKeyFile(ctx))) return false;
    const s = ctx.get();
    // A new address or port means a new key to verify.
    if (s.probe && (s.probe.address !== s.draft.address.trim() || s.probe.port !== Number(s.draft.port)))
      ctx.update({ probe: null });
    ctx.update({ addError: null, fieldErrors: {} });
  },
};

export const verifyStep: Step = {
  id: 'verify',
  title: 'Verify host key',
  description: 'Confirm that Fluid is talking to the right machine before it logs in.',
  component: VerifyKeyStep,
  skip: isLocal,
  onEnter: (ctx) => {
    const s = ctx.get();
    if (!s.probe || s.probeError) return probeHost(ctx);
  },
  canContinue: (s) => !!s.probe && !s.probing,
  complete: (ctx) => registerHost(ctx),
  continueLabel: 'I trust this host key',
  busyLabel: 'Logging in…',
};

export const preflightStep: Step = {
  id: 'preflight',
  title: 'Preflight',
  description: 'Check that the host can run sandboxes, and what to fix if not.',
  component: PreflightStep,
  onEnter: (ctx) => {
    const s = ctx.get();
    if (!s.checkTaskId && !s.preflight) return startCheck(ctx);
  },
  canContinue: (s) => !!s.preflight,
  // The host is registered now: going back to Connection would register it twice.
  noBack: (s) => s.mode === 'remote',
};

export const sourcesStep: Step = {
  id: 'sources',
  title: 'Sources',
  description: 'The VMs on this host that sandboxes can be cloned from.',
  component: SourcesStep,
  onEnter: (ctx) => loadSources(ctx),
  canContinue: () => true,
};

export const doneStep: Step = {
  id: 'done',
  title: 'Done',
  description: 'The host is set up.',
  component: DoneStep,
  canContinue: (s) => !!s.hostId,
  continueLabel: 'Create your first sandbox',
  noBack: true,
  complete: (ctx) => {
    const id = ctx.get().hostId;
    if (!id) return;
    navigate('sandboxes');
    openCreateDialog({ hostId: id, source: '', vcpus: null, memoryMiB: null });
  },
};

export const onboardingSteps: Step[] = [
  welcomeStep,
  chooseHostStep,
  connectionStep,
  verifyStep,
  preflightStep,
  sourcesStep,
  doneStep,
];

export const addHostSteps: Step[] = [connectionStep, verifyStep, preflightStep, sourcesStep, doneStep];
