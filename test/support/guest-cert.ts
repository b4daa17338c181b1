/** Log in to a sandbox with a certificate issued an hour ago (now expired) and with a fresh one. */
import type { Core } from '../../src/core/createCore.ts';
import type { HostConnection } from '../../src/core/hosts/connection.ts';
import { SshCa } from '../../src/core/ssh/ca.ts';
import { GuestSsh } from '../../src/core/ssh/guest.ts';
import { FLUID_USER } from '../../src/core/sandboxes/identity.ts';

export async function expiredCertificateLogin(
  core: Core,
  host: HostConnection,
  ip: string,
  fingerprint: string,
): Promise<{ valid: string; expired: string; sshdLog: string }> {
  const anHourAgo = new SshCa({
    secrets: core.secrets,
    db: core.db,
    clock: { now: () => new Date(Date.now() - 3600_000) },
  });
  const target = (key: string) => ({ key, host, address: ip, user: FLUID_USER, hostKey: { fingerprint } });
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
