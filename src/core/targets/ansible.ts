/**
 * Running Ansible against a production target, on this machine, with the playbooks room's private
 * workspace (src/core/playbooks/ansible.ts: the revision's files, Fluid's own ansible.cfg and HOME,
 * the JSON events callback, the ProxyCommand relay).
 *
 * What changes for a target: the inventory is the change's inventory slice (the target's name, user
 * and become method, nothing machine-specific); ssh logs in with the key Fluid holds for the target
 * (written 0600 into the workspace for the run, removed with it), trusts only the target's pinned
 * host key (checked again here before anything runs), and reaches the target's sshd through Fluid's
 * relay: the jump host's pinned connection forwards the channel, or a direct TCP connection does.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BecomeMethod } from '../../shared/contract/changes.ts';
import { FluidError } from '../../shared/errors.ts';
import type { HostConnection } from '../hosts/connection.ts';
import { pinnedHostKey, type Workspace } from '../playbooks/ansible.ts';

export const PREVIEW_CALLBACK_URL = new URL('./fluid_preview.py', import.meta.url);

/** The inventory slice a change carries: the target and how to become root there. */
export function inventorySlice(t: { name: string; user: string; become: BecomeMethod }): string {
  const become = t.become === 'none' ? 'ansible_become=false' : `ansible_become_method=${t.become}`;
  return [
    `# The production target of this change (Fluid supplies the address, key and host key).`,
    '[production]',
    `${t.name} ansible_user=${t.user} ${become}`,
    '',
  ].join('\n');
}

/** Host patterns a play may use for the slice to match it. */
export function playMatches(hosts: unknown, targetName: string): boolean {
  const patterns = (Array.isArray(hosts) ? hosts.map(String) : String(hosts ?? '').split(/[,:]/))
    .map((p) => p.trim())
    .filter(Boolean);
  return patterns.length > 0 && patterns.every((p) => p === 'all' || p === 'production' || p === targetName);
}

export interface TargetAccess {
  name: string;
  id: string;
  address: string;
  port: number;
  fingerprint: string;
  privateKey: string;
  inventory: string;
  /** The connection that opens the stream to the target's sshd (the jump host, or the local machine). */
  route: () => Promise<HostConnection>;
}

function readSource(url: URL): string {
  try {
    return readFileSync(url, 'utf8');
  } catch (e) {
    throw new FluidError(
      'INTERNAL',
      `${fileURLToPath(url)} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): this Fluid installation is incomplete; reinstall or rebuild it.`,
    );
  }
}

/** Point a workspace at a target. Verifies the pinned host key over the route first. */
export async function aimAtTarget(ws: Workspace, t: TargetAccess, python: string): Promise<void> {
  const hostKey = await pinnedHostKey(await t.route(), t.address, t.port, t.fingerprint);
  const d = ws.dir;
  const alias = `fluid-target-${t.id}`;
  writeFileSync(join(d, 'id'), t.privateKey.endsWith('\n') ? t.privateKey : t.privateKey + '\n', {
    mode: 0o600,
  });
  writeFileSync(join(d, 'known_hosts'), `${alias} ${hostKey}\n`, { mode: 0o600 });
  writeFileSync(join(d, 'inventory.ini'), t.inventory, { mode: 0o600 });
  writeFileSync(join(d, 'callback_plugins', 'fluid_preview.py'), readSource(PREVIEW_CALLBACK_URL), {
    mode: 0o600,
  });
  await ws.tunnel(t.route, t.address, t.port);
  const ssh = [
    '-F /dev/null',
    '-o ControlMaster=auto',
    '-o ControlPersist=120s',
    `-o ControlPath=${d}/cp/master`,
    `-o 'ProxyCommand=${python} ${d}/ssh_relay.py ${d}/guest.sock'`,
    `-o HostKeyAlias=${alias}`,
    `-o UserKnownHostsFile=${d}/known_hosts`,
    '-o GlobalKnownHostsFile=/dev/null',
    '-o StrictHostKeyChecking=yes',
    '-o IdentitiesOnly=yes',
    '-o IdentityAgent=none',
    '-o PasswordAuthentication=no',
    '-o KbdInteractiveAuthentication=no',
    '-o BatchMode=yes',
    '-o ServerAliveInterval=15',
    '-o LogLevel=ERROR',
  ].join(' ');
  writeFileSync(
    join(d, 'ansible.cfg'),
    [
      '[defaults]',
      `inventory = ${d}/inventory.ini`,
      `private_key_file = ${d}/id`,
      'host_key_checking = True',
      'retry_files_enabled = False',
      `callback_plugins = ${d}/callback_plugins`,
      'callbacks_enabled = fluid_json, fluid_preview',
      'stdout_callback = default',
      'nocolor = True',
      `local_tmp = ${d}/local-tmp`,
      'interpreter_python = auto_silent',
      'forks = 1',
      'timeout = 60',
      'deprecation_warnings = False',
      'display_skipped_hosts = True',
      '',
      '[ssh_connection]',
      'pipelining = True',
      `ssh_args = ${ssh}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}
