/**
 * A clone's fresh identity, applied inside the guest as root through qemu-guest-agent — a channel
 * that does not depend on the guest's network or on trusting its sshd. It gives the clone its own
 * hostname, machine-id and SSH host keys, reseeds its RNG (clones of one memory image share RNG
 * state), makes sshd accept Fluid's certificates for this sandbox only (its own principal, from the
 * address Fluid connects from), creates Fluid's sudo user, pins the reserved address on the NIC with
 * the sandbox's MAC, points package managers at the egress proxy, and reports the new host key so
 * the first SSH connection can already be verified.
 *
 * Guests without the agent: the documented route is a cloud-init NoCloud seed carrying the same
 * steps (see README, "Sandbox identity"); the source needs the agent or cloud-init.
 */
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';

export const FLUID_USER = 'fluid';
/** The user root commands log in as (rootLoginSection); FLUID_USER with sudo when a guest refuses. */
export const ROOT_USER = 'root';

/**
 * The certificate principal only this sandbox's sshd accepts. A certificate issued for one sandbox
 * opens no other: each clone's AuthorizedPrincipalsFile names its own principal alone.
 */
export function sandboxPrincipal(sandboxId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(sandboxId))
    throw new Error(`invalid sandbox id for a principal: ${sandboxId}`);
  return `fluid-${sandboxId}`;
}

/**
 * How Fluid logs into a sandbox: as FLUID_USER, with a certificate for the sandbox's own principal
 * that is valid only from `from` (the address the guest sees Fluid's connections come from: the
 * sandbox network's gateway, since every connection is opened from the host that runs the sandbox).
 */
export function sandboxLogin(
  sandboxId: string,
  from: string,
): { user: string; principal: string; sourceAddress: string } {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(from)) throw new Error(`invalid source address ${from}`);
  return { user: FLUID_USER, principal: sandboxPrincipal(sandboxId), sourceAddress: `${from}/32` };
}

export interface IdentityInput {
  hostname: string;
  caPublicKey: string;
  ip: string;
  prefix: number;
  mac: string;
  gateway: string;
  /** Shell script that configures the egress proxy inside the guest (may be empty). */
  proxySetup: string;
  /** New SSH host keys (made on the Fluid side: emulated guests take seconds per RSA key). */
  hostKeys: HostKeySet;
  /** Also create Fluid's user and the CA trust (a warm template already has them). */
  includeTrust: boolean;
  /** The one certificate principal this clone accepts (sandboxPrincipal). Written per clone. */
  principal: string;
  /**
   * The host's time when the script is sent (ms since the epoch): set first, since a clone restored
   * from a memory image wakes up at the time it was saved, and certificates would not be valid yet.
   * Cheaper here than the guest agent's guest-set-time, which also runs hwclock.
   */
  nowMs?: number;
}

export interface HostKeySet {
  ed25519: { private: string; public: string };
  ecdsa: { private: string; public: string };
  rsa: { private: string; public: string };
}

/**
 * A clone's new host keys, made on Fluid's side on libuv's thread pool (an RSA key takes a tenth of
 * a second or more: not on the event loop, and started while the clone is still being restored).
 */
export async function generateHostKeys(hostname: string): Promise<HostKeySet> {
  const comment = `root@${hostname}`;
  const g = (type: 'ed25519' | 'ecdsa' | 'rsa', extra: object) =>
    new Promise<{ private: string; public: string }>((resolve, reject) =>
      ssh2.utils.generateKeyPair(type as 'ed25519', { comment, ...extra } as never, (err, k) =>
        err ? reject(err) : resolve({ private: k.private, public: k.public }),
      ),
    );
  const [ed25519, ecdsa, rsa] = await Promise.all([
    g('ed25519', {}),
    g('ecdsa', { bits: 256 }),
    g('rsa', { bits: 3072 }),
  ]);
  return { ed25519, ecdsa, rsa };
}

export const HOSTKEY_MARK = '@@fluid-hostkey@@';

export function identityScript(i: IdentityInput): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(i.hostname)) throw new Error(`invalid hostname ${i.hostname}`);
  if (!/^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$/.test(i.caPublicKey.trim()))
    throw new Error('invalid CA public key');
  if (!/^[0-9a-f:]{17}$/.test(i.mac)) throw new Error('invalid MAC');
  if (!/^[0-9.]+$/.test(i.ip)) throw new Error('invalid IP');
  const seed = randomBytes(64).toString('hex');
  // Every external command costs a fork and an exec, a fifth of a second in an emulated guest: this
  // script sticks to shell builtins and /proc and /sys wherever it can.
  return `#!/bin/sh
# Fluid sandbox identity (idempotent)
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HN='${i.hostname}'
${i.nowMs === undefined ? '' : `\n# The clock (a restored clone wakes up at its save time; the certificates check it)\ndate -u -s @${(i.nowMs / 1000).toFixed(3)} >/dev/null 2>&1 || true\n`}
# The new NIC's udev events (its rename, then the guest's network manager configuring it) first.
if command -v udevadm >/dev/null 2>&1; then udevadm settle -t 3 2>/dev/null || :; fi

# Entropy: mix fresh host randomness into the pool (clones of one memory image share RNG state).
printf '%s' '${seed}' > /dev/urandom 2>/dev/null || true

${hostnameSection()}

# machine-id: random (systemd-machine-id-setup would derive it from the VM's SMBIOS UUID, which
# clones restored from one memory image share).
IFS=- read -r u1 u2 u3 u4 u5 < /proc/sys/kernel/random/uuid
printf '%s%s%s%s%s\n' "$u1" "$u2" "$u3" "$u4" "$u5" > /etc/machine-id
if [ -d /var/lib/dbus ] && [ ! -L /var/lib/dbus/machine-id ]; then ln -sf /etc/machine-id /var/lib/dbus/machine-id; fi

# SSH host keys, made by Fluid (served once sshd reloads, below).
umask 077
${(['ed25519', 'ecdsa', 'rsa'] as const)
  .map((t) => `printf '%s\n' '${i.hostKeys[t].private.trim()}' > /etc/ssh/ssh_host_${t}_key`)
  .join('\n')}
umask 022
${(['ed25519', 'ecdsa', 'rsa'] as const).map((t) => `printf '%s\n' '${i.hostKeys[t].public.trim()}' > /etc/ssh/ssh_host_${t}_key.pub`).join('\n')}
for f in /etc/ssh/ssh_host_dsa_key /etc/ssh/ssh_host_dsa_key.pub; do [ -e "$f" ] && rm -f "$f"; done

${i.includeTrust ? trustSection(i.caPublicKey) + "\n# Egress through Fluid's proxy\n" + (i.proxySetup || ':') : '# (Fluid user, CA trust and proxy settings come with the warm template)'}
${principalSection(i.principal, i.gateway)}
${rootLoginSection(i.gateway)}
${runtimeScript(i)}
${sshdReloadSection(i.includeTrust)}

echo '${HOSTKEY_MARK}'
read -r pub < /etc/ssh/ssh_host_ed25519_key.pub; printf '%s\n' "$pub"
echo "iface=$IFACE"
read -r mid < /etc/machine-id; printf '%s\n' "$mid"
`;
}

/**
 * The hostname in $HN: the kernel's, /etc/hostname, and the 127.0.1.1 line of /etc/hosts (the rest
 * of that file kept as it is). Shell builtins only.
 */
export function hostnameSection(): string {
  return `# Hostname (the kernel's, /etc/hostname, and the 127.0.1.1 line)
printf '%s' "$HN" > /proc/sys/kernel/hostname
printf '%s\\n' "$HN" > /etc/hostname
H=
if [ -f /etc/hosts ]; then
  while IFS= read -r l || [ -n "$l" ]; do
    case $l in 127.0.1.1[[:space:]]*) ;; *) H="$H$l
" ;; esac
  done < /etc/hosts
fi
printf '%s127.0.1.1\\t%s\\n' "$H" "$HN" > /etc/hosts`;
}

export interface IdentityResult {
  hostKey: string;
  iface: string | null;
  machineId: string;
}

export function parseIdentityOutput(out: string): IdentityResult {
  const after = out.split(HOSTKEY_MARK)[1];
  if (!after) throw new Error(`the identity step printed no host key:\n${out.slice(-2000)}`);
  const lines = after.trim().split('\n');
  const hostKey = lines[0]!.trim();
  if (!hostKey.startsWith('ssh-ed25519 ')) throw new Error(`unexpected host key line: ${hostKey}`);
  return {
    hostKey,
    iface: (lines[1] ?? '').replace(/^iface=/, '').trim() || null,
    machineId: (lines[2] ?? '').trim(),
  };
}

/**
 * What a sandbox needs at every boot (runtime state, not persisted in the guest): its reserved
 * address pinned on the NIC with its MAC, even if the clone has a static configuration of its own,
 * and the egress proxy settings.
 */
export function runtimeScript(i: Pick<IdentityInput, 'ip' | 'prefix' | 'mac'>): string {
  return `# The reserved address, on whichever interface carries the sandbox's MAC (also when the clone has a
# static configuration of its own). Runtime state: applied after every boot.
IFACE=
for f in /sys/class/net/*/address; do
  read -r a < "$f" || continue
  if [ "$a" = '${i.mac}' ]; then IFACE=\${f#/sys/class/net/}; IFACE=\${IFACE%/address}; fi
done
if [ -n "$IFACE" ]; then
  read -r st < "/sys/class/net/$IFACE/operstate" || st=unknown
  L=; [ "$st" = up ] || L="link set $IFACE up"
  # One ip for both (a blank line is skipped; an address already there is no error worth stopping for)
  ip -force -batch - >/dev/null 2>&1 <<FLUID_IP || true
$L
addr add ${i.ip}/${i.prefix} dev $IFACE
FLUID_IP
fi
`;
}

/**
 * This clone's principal, accepted only from Fluid's address (sshd checks `from=` on top of the
 * certificate's own source-address). Replaces whatever the file held: a template's empty file, or a
 * clone's earlier principal. sshd reads the file at each login, so no reload is needed. Written in
 * place, not renamed into place (a fork in an emulated guest): it runs before Fluid's first login
 * after a create or a boot, and nothing else logs in with Fluid's certificates.
 */
export function principalSection(principal: string, from: string): string {
  if (!/^fluid-[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(principal))
    throw new Error(`invalid principal ${principal}`);
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(from)) throw new Error(`invalid source address ${from}`);
  // For Fluid's user and for root (root commands log in directly, without a sudo each: rootLoginSection).
  return `# The one principal this sandbox accepts, from Fluid's address only
umask 022
[ -d /etc/ssh/fluid ] || mkdir -p /etc/ssh/fluid
for u in ${FLUID_USER} ${ROOT_USER}; do
  printf '%s\\n' 'from="${from}" ${principal}' > /etc/ssh/fluid/principals_$u
done`;
}

/**
 * sshd takes up the new host keys and settings. A running listener is told to reload (SIGHUP: it
 * re-executes itself and reads its configuration and keys anew, what `systemctl reload` does) and
 * is not waited for: the first login retries until it listens again. That is most of a second
 * cheaper in an emulated guest than a restart through systemd, which stops it, checks the
 * configuration and starts it. Without a listener that answers to its pid file (a clone that booted
 * without host keys and hit systemd's start limit, which `reset-failed` clears first), sshd is
 * restarted and a failure reported with its journal.
 */
export function sshdReloadSection(clearFailed: boolean): string {
  return `# sshd serves the new keys and settings: reloaded if its listener runs, restarted otherwise
P= T= R=
if [ -r /run/sshd.pid ]; then read -r P < /run/sshd.pid || :; fi
case "$P" in ''|*[!0-9]*) P=;; esac
if [ -n "$P" ] && [ -r "/proc/$P/cmdline" ]; then IFS= read -r T < "/proc/$P/cmdline" || :; fi
case "$T" in *sshd*'[listener]'*) kill -HUP "$P" 2>/dev/null && R=reloaded;; esac
if [ -z "$R" ]; then
  if [ -d /run/systemd/system ]; then
    UNIT=ssh; [ -f /lib/systemd/system/ssh.service ] || [ -f /usr/lib/systemd/system/ssh.service ] || [ -f /etc/systemd/system/ssh.service ] || UNIT=sshd
    ${clearFailed ? 'systemctl reset-failed "$UNIT" 2>/dev/null || true' : ':'}
    systemctl restart "$UNIT" || { journalctl -u "$UNIT" --no-pager -n 20 >&2 2>/dev/null; exit 4; }
  else
    service ssh restart 2>/dev/null || service sshd restart
  fi
  R=restarted
fi
echo "sshd=$R"`;
}

/** The drop-in that lets root log in (rootLoginSection): Fluid's file, apart from the image's sshd_config. */
export const ROOT_LOGIN_CONF = '/etc/ssh/sshd_config.d/10-fluid-root.conf';

/**
 * Root logs in with a certificate for this sandbox's principal (principalSection), from Fluid's
 * address only, whatever the image's PermitRootLogin says: a Match block in a drop-in of its own,
 * where it overrides the global settings (a Match in an included file ends with that file). Root
 * commands then need no sudo each. The image's sshd_config is not touched, so a change the agent
 * makes to it carries nothing of Fluid's into a playbook; an sshd without the drop-in directory
 * keeps root out and Fluid uses sudo. Shell builtins only (a fork costs a fifth of a second in an
 * emulated guest); idempotent; sshd reloads after it (sshdReloadSection).
 */
export function rootLoginSection(from: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(from)) throw new Error(`invalid source address ${from}`);
  return `# Root logins with this sandbox's certificate, from Fluid's address only
inc=
while IFS= read -r l; do case $l in [Ii]nclude*/etc/ssh/sshd_config.d/*) inc=1;; esac; done < /etc/ssh/sshd_config
[ -z "$inc" ] || [ ! -d /etc/ssh/sshd_config.d ] || printf 'Match User ${ROOT_USER} Address ${from}\\n\\tPermitRootLogin prohibit-password\\n' > ${ROOT_LOGIN_CONF}`;
}

/**
 * Fluid's sudo user and sshd's trust in Fluid's CA. The principals file starts empty: no certificate
 * is accepted until the identity step names this clone's own principal (principalSection), so a
 * template and its clones never share one. Idempotent.
 */
export function trustSection(caPublicKey: string): string {
  if (!/^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$/.test(caPublicKey.trim()))
    throw new Error('invalid CA public key');
  return `# Fluid's user and CA trust
if ! id ${FLUID_USER} >/dev/null 2>&1; then useradd -m -s /bin/bash ${FLUID_USER} 2>/dev/null || adduser -D -s /bin/sh ${FLUID_USER}; fi
usermod -p '*' ${FLUID_USER} 2>/dev/null || true
mkdir -p /etc/sudoers.d
printf '%s ALL=(ALL) NOPASSWD:ALL\\n' ${FLUID_USER} > /etc/sudoers.d/90-fluid
chmod 0440 /etc/sudoers.d/90-fluid
mkdir -p /etc/ssh/fluid
printf '%s\\n' '${caPublicKey.trim()}' > /etc/ssh/fluid/user_ca.pub
: > /etc/ssh/fluid/principals_${FLUID_USER}
chmod 0644 /etc/ssh/fluid/user_ca.pub /etc/ssh/fluid/principals_${FLUID_USER}
CONF='TrustedUserCAKeys /etc/ssh/fluid/user_ca.pub
AuthorizedPrincipalsFile /etc/ssh/fluid/principals_%u'
if [ -d /etc/ssh/sshd_config.d ] && grep -qi '^Include /etc/ssh/sshd_config.d' /etc/ssh/sshd_config; then
  printf '%s\\n' "$CONF" > /etc/ssh/sshd_config.d/10-fluid.conf
else
  sed -i '/# fluid-begin/,/# fluid-end/d' /etc/ssh/sshd_config
  printf '# fluid-begin\\n%s\\n# fluid-end\\n' "$CONF" >> /etc/ssh/sshd_config
fi
`;
}

/**
 * For a warm template: what every clone shares (Fluid's user, the CA trust, the proxy settings),
 * applied and live (sshd reloaded) before the memory is saved.
 */
export function templateTrustScript(caPublicKey: string, proxySetup = ''): string {
  return `#!/bin/sh
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
${trustSection(caPublicKey)}
${proxySetup || ':'}
if command -v systemctl >/dev/null 2>&1; then systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true; fi
sync
`;
}
