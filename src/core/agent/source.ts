/**
 * Read-only access to source and production VMs. Two gates: the shell policy (only programs and
 * options that read pass), and the account — commands run as nobody with no_new_privs, so even a
 * command that slipped past the policy could not write anything root owns. The channel is the guest
 * agent (virtio-serial): nothing has to be installed or opened on the VM, and no network path or SSH
 * trust to production is needed.
 */
import { FluidError } from '../../shared/errors.ts';
import type { Host, Vm } from '../../shared/contract/hosts.ts';
import type { HostService } from '../hosts/service.ts';
import { guestExec } from '../sandboxes/guest-agent.ts';
import { machines } from '../sandboxes/placement.ts';

export const SOURCE_TIMEOUT_S = 60;
const UNPRIVILEGED = [
  '/usr/bin/setpriv',
  '--reuid=65534',
  '--regid=65534',
  '--clear-groups',
  '--no-new-privs',
  '--reset-env',
  '--',
];

export interface SourceResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export class SourceAccess {
  private readonly hosts: HostService;

  constructor(hosts: HostService) {
    this.hosts = hosts;
  }

  /**
   * The running, non-Fluid VM on a host (or the only one with that name on any host). Among several,
   * `prefer` (the session's host) wins, and records of one machine (sameMachineAs) are one VM.
   */
  async resolve(
    vmName: string,
    hostRef?: string,
    signal?: AbortSignal,
    prefer?: string,
  ): Promise<{ host: Host; vm: Vm }> {
    const { vms, errors } = await this.hosts.sources(hostRef, signal);
    const matches = vms.filter((v) => v.name === vmName || v.uuid === vmName);
    if (!matches.length) {
      const unreachable = errors.length ? ` (unreachable: ${errors.map((e) => e.hostName).join(', ')})` : '';
      throw new FluidError(
        'NOT_FOUND',
        `No source VM "${vmName}"${hostRef ? ` on ${hostRef}` : ''}${unreachable}.`,
      );
    }
    let vm = matches[0]!;
    if (matches.length > 1) {
      const preferred = prefer
        ? matches.find((m) => m.hostId === prefer || m.hostName === prefer)
        : undefined;
      const groups = machines(matches.map((m) => this.hosts.get(m.hostId)));
      if (preferred) vm = preferred;
      else if (groups.length === 1) vm = matches.find((m) => m.hostId === groups[0]!.host.id) ?? vm;
      else
        throw new FluidError(
          'VALIDATION',
          `"${vmName}" exists on ${matches.map((m) => m.hostName).join(' and ')}: say which host.`,
        );
    }
    if (!vm.running)
      throw new FluidError('CONFLICT', `${vm.name} is ${vm.state}; read-only access needs it running.`);
    if (!vm.hasGuestAgent)
      throw new FluidError(
        'UNAVAILABLE',
        `${vm.name} has no qemu-guest-agent channel; Fluid reads sources through the guest agent.`,
      );
    return { host: this.hosts.get(vm.hostId), vm };
  }

  async run(
    vmName: string,
    hostRef: string | undefined,
    command: string,
    opts: { maxOutputChars?: number; signal?: AbortSignal; prefer?: string } = {},
  ): Promise<SourceResult> {
    const { host, vm } = await this.resolve(vmName, hostRef, opts.signal, opts.prefer);
    const conn = await this.hosts.connection(host.id);
    const r = await guestExec(
      conn,
      host.libvirtUri,
      vm.name,
      UNPRIVILEGED[0]!,
      [
        ...UNPRIVILEGED.slice(1),
        '/usr/bin/timeout',
        '--kill-after=5',
        String(SOURCE_TIMEOUT_S),
        '/bin/bash',
        '--noprofile',
        '--norc',
        '-c',
        `cd / && PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin; ${command}`,
      ],
      { timeoutMs: (SOURCE_TIMEOUT_S + 20) * 1000, signal: opts.signal },
    );
    if (r.exitCode === 127 && /setpriv/.test(r.stderr))
      throw new FluidError(
        'UNAVAILABLE',
        `${vm.name} has no setpriv (util-linux); Fluid will not run commands there as root.`,
      );
    const cap = opts.maxOutputChars ?? 64 * 1024;
    const cut = (s: string) =>
      s.length > cap
        ? `${s.slice(0, cap / 2)}\n…[truncated ${s.length - cap} chars]…\n${s.slice(-cap / 2)}`
        : s;
    return {
      exitCode: r.exitCode,
      stdout: cut(r.stdout),
      stderr: cut(r.stderr),
      truncated: r.stdout.length > cap || r.stderr.length > cap,
    };
  }
}
