/** The e2e kit: a real backend in web mode, Chromium, page objects, screenshots. */
export { openApp, type App, type OpenAppOptions } from './app.ts';
export { startServer, assertUiBuilt, ROOT, type FluidServer } from './server.ts';
export { launchBrowser, CHROMIUM, CHROMIUM_ARGS } from './browser.ts';
export { Screenshots, ARTIFACTS, slug } from './artifacts.ts';
export { waitFor, waitForText } from './wait.ts';
export { readLab, prodTargetOf, onLabVm, LAB_JSON, type Lab, type ProdTarget } from './lab.ts';
export { AppShell, type Overflow, type SectionName } from './pages/AppShell.ts';
export { OverviewPage, type OverviewHost } from './pages/OverviewPage.ts';
export { OnboardingPage, type CheckRow, type SourceRow } from './pages/OnboardingPage.ts';
export { HostsPage } from './pages/HostsPage.ts';
export { AuditPage } from './pages/AuditPage.ts';
export { SettingsPage } from './pages/SettingsPage.ts';
export {
  SandboxesPage,
  CreateSandboxDialog,
  type FileEntry,
  type SandboxItem,
} from './pages/SandboxesPage.ts';
export { ApprovalModal, ApprovalsPage, type ApprovalRow } from './pages/ApprovalsPage.ts';
export { prepareLabData, type LabData } from './labData.ts';
export { AgentPage, ToolCard, type Meter, type NewSession, type SessionItem } from './pages/AgentPage.ts';
export {
  AgentSettingsPage,
  ProvidersPage,
  openSettingsTab,
  type ProviderForm,
  type RuleForm,
  type SettingsTab,
  type TestOutcome,
} from './pages/ProvidersPage.ts';
export { offeredTools, startModelServer, type ScenarioInput, type ScriptedModelServer } from './model.ts';
export { PresenceDialog, SecurityPage, addVirtualAuthenticator } from './pages/SecurityPage.ts';
export { holdRpcAnswers, type HeldAnswers } from './rpcHold.ts';
