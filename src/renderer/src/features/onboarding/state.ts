/** What the host wizards (onboarding, Add host) know while the user walks through them. */
import { contract } from '../../../../shared/contract/index.ts';
import type { Preflight, Vm } from '../../../../shared/contract/hosts.ts';
import type { Contract } from '../../../../shared/contract/index.ts';
import type { In, Out } from '../../../../shared/rpc.ts';
import { humanizeIssue, type ErrorInfo } from '../../lib/errors.ts';

export type HostProbe = Out<Contract, 'hosts.probe'>;

export interface HostDraft {
  name: string;
  address: string;
  port: string;
  user: string;
  authType: 'key' | 'agent';
  keyPath: string;
  agentSocket: string;
  libvirtUri: string;
}

export interface HostWizardState {
  mode: 'local' | 'remote' | null;
  draft: HostDraft;
  /** Shown on the Connection step: client-side validation or errors sent back from later steps. */
  fieldErrors: Partial<Record<keyof HostDraft, string>>;
  /** The user pressed Continue on Connection once: show validation from then on. */
  touched: boolean;
  probe: HostProbe | null;
  probeError: ErrorInfo | null;
  probing: boolean;
  addError: ErrorInfo | null;
  hostId: string | null;
  checkTaskId: string | null;
  preflight: Preflight | null;
  sources: Vm[] | null;
  sourcesError: ErrorInfo | null;
  /** The key file, checked before the host key is shown: its type and public fingerprint. */
  keyCheck: { keyPath: string; type: string; fingerprint: string } | null;
  checkingKey: boolean;
}

/** What survives a reload of the tab: where the user is and what they typed (no probe, no errors). */
export function persistedPart(s: HostWizardState): Partial<HostWizardState> {
  return {
    mode: s.mode,
    draft: s.draft,
    touched: s.touched,
    hostId: s.hostId,
    checkTaskId: s.checkTaskId,
    preflight: s.preflight,
    keyCheck: s.keyCheck,
  };
}

export const emptyDraft = (): HostDraft => ({
  name: '',
  address: '',
  port: '22',
  user: 'root',
  authType: 'key',
  keyPath: '',
  agentSocket: '',
  libvirtUri: 'qemu:///system',
});

export const initialHostWizard = (mode: HostWizardState['mode'] = null): HostWizardState => ({
  mode,
  draft: emptyDraft(),
  fieldErrors: {},
  touched: false,
  probe: null,
  probeError: null,
  probing: false,
  addError: null,
  hostId: null,
  checkTaskId: null,
  preflight: null,
  sources: null,
  sourcesError: null,
  keyCheck: null,
  checkingKey: false,
});

export type AddInput = In<Contract, 'hosts.add'>;

export function addInput(d: HostDraft, acceptFingerprint: string): AddInput {
  return {
    ...(d.name.trim() ? { name: d.name.trim() } : {}),
    address: d.address.trim(),
    port: d.port.trim() === '' ? Number.NaN : Number(d.port),
    user: d.user.trim(),
    auth:
      d.authType === 'key'
        ? { type: 'key', keyPath: d.keyPath.trim() }
        : { type: 'agent', ...(d.agentSocket.trim() ? { socket: d.agentSocket.trim() } : {}) },
    acceptFingerprint,
    libvirtUri: d.libvirtUri.trim() || 'qemu:///system',
  };
}

const PATH_TO_FIELD: Record<string, keyof HostDraft> = {
  name: 'name',
  address: 'address',
  port: 'port',
  user: 'user',
  auth: 'keyPath',
  'auth.keyPath': 'keyPath',
  'auth.socket': 'agentSocket',
  libvirtUri: 'libvirtUri',
};

/** Validate the draft with the contract's own schema for hosts.add: one validator for every door. */
export function validateDraft(d: HostDraft): Partial<Record<keyof HostDraft, string>> {
  const r = contract['hosts.add'].input.safeParse(addInput(d, 'SHA256:placeholder'));
  const out: Partial<Record<keyof HostDraft, string>> = {};
  const key = d.keyPath.trim();
  if (d.authType === 'key' && key && !key.startsWith('/'))
    out.keyPath = key.startsWith('~')
      ? 'Write the full path (for example /home/you/.ssh/id_ed25519): "~" is not expanded.'
      : 'Use an absolute path on the machine that runs the Fluid backend.';
  if (r.success) return out;
  for (const issue of r.error.issues) {
    const path = issue.path.map(String).join('.');
    const field = PATH_TO_FIELD[path] ?? PATH_TO_FIELD[String(issue.path[0])];
    if (!field) continue;
    let msg = humanizeIssue(issue.message);
    if (field === 'port') msg = 'A port number from 1 to 65535.';
    if (field === 'keyPath' && d.authType === 'key' && !d.keyPath.trim())
      msg = 'The path of a private key file.';
    if (field === 'address' && !d.address.trim()) msg = 'Required: the host name or IP address.';
    out[field] ??= msg;
  }
  return out;
}

/** Which file on the host holds the key of this type, for the "compare with" instruction. */
export function hostKeyFile(type: string): string {
  if (type.includes('ed25519')) return '/etc/ssh/ssh_host_ed25519_key.pub';
  if (type.includes('ecdsa')) return '/etc/ssh/ssh_host_ecdsa_key.pub';
  if (type.includes('rsa')) return '/etc/ssh/ssh_host_rsa_key.pub';
  return '/etc/ssh/ssh_host_ed25519_key.pub';
}
