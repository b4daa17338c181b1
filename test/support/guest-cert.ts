/**
 * Log in to a sandbox as Fluid does (its principal, from the gateway) with a certificate issued an hour
 * ago (now expired) and with a fresh one.
 */
import type { Core } from '../../src/core/createCore.ts';
import type { HostConnection } from '../../src/core/hosts/connection.ts';
import { SshCa } from '../../src/core/ssh/ca.ts';
import { GuestSsh } from '../../src/core/ssh/guest.ts';
import { sandboxLogin } from '../../src/core/sandboxes/identity.ts';
import { GATEWAY } from '../../src/core/sandboxes/network.ts';

export async function expiredCertificateLogin(
  core: Core,
  host: HostConnection,
  sandboxId: string,
  ip: string,
  fingerprint: string,
): Promise<{ valid: string; expired: string; sshdLog: string }> {
  const anHourAgo = new SshCa({
    secrets: core.secrets,
    db: core.db,
    clock: { now: () => new Date(Date.now() - 3600_000) },
  });
  // as Fluid logs in: the sandbox's own principal, from the sandbox network's gateway
  const login = sandboxLogin(sandboxId, GATEWAY);
  const target = (key: string) => ({ key, host, address: ip, ...login, hostKey: { fingerprint } });
  const old = new GuestSsh(target('expired-cert'), { ca: anHourAgo });
  let expired = 'logged in';
  try {
    await old.exec('true', { timeoutMs: 30_000 });
  } catch (e) {
    expired = (e as Error).message;
  } finally {
    old.close();
  }
  const fresh = new GuestSsh(target('fresh-cert'), { ca: core.ca });
  try {
    const r = await fresh.exec("journalctl -u ssh --no-pager | grep -i 'certificate invalid' | tail -n 3", {
      root: true,
      timeoutMs: 30_000,
    });
    return { valid: r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`, expired, sshdLog: r.stdout };
  } finally {
    fresh.close();
  }
}
