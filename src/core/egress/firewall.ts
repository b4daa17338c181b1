/**
 * Host firewall for the sandbox bridge (nftables, table `inet fluid_egress`).
 *
 * Sandboxes may reach the host only for DHCP and the egress proxy; replies to connections the host
 * opened (Fluid's SSH into sandboxes through the host) still flow. Nothing is forwarded to or from
 * the bridge: libvirt's isolated network already refuses that, this is belt and braces. The table is
 * deleted and recreated in one nft transaction, so the script is idempotent and atomic.
 *
 * A frame sent to an IEEE 802.1 link-local group address (01:80:c2:00:00:0X: STP, LACP, 802.1X,
 * LLDP) is not forwarded by the bridge: the host's stack receives it on the port it came in on (the
 * sandbox's tap), not on the bridge. Those frames pass neither libvirt's address filter nor the
 * `iifname` rules here, so a sandbox could send UDP with any source address to any host service in
 * them. They carry bridge control protocols, never IP: dropped first, whichever interface they
 * arrive on.
 */
import { FluidError } from '../../shared/errors.ts';
import { canonicalIp } from './destinations.ts';

export const FIREWALL_TABLE = 'fluid_egress';
/** Exit code of the firewall script when nft is missing (the caller decides whether that is fatal). */
export const NFT_MISSING_EXIT = 3;

export interface HostFirewallOptions {
  /** The isolated network's bridge (e.g. virbr-fluid). */
  bridge: string;
  /** The bridge's own address on the host, where the proxy listens (e.g. 10.239.0.1). */
  gatewayIp: string;
  proxyPort: number;
}

function validate(o: HostFirewallOptions): {
  bridge: string;
  ip: string;
  family: 'ip' | 'ip6';
  port: number;
} {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(o.bridge))
    throw new FluidError('VALIDATION', `"${o.bridge}" is not a valid bridge interface name.`);
  const ip = canonicalIp(o.gatewayIp);
  if (!ip) throw new FluidError('VALIDATION', `"${o.gatewayIp}" is not an IP address.`);
  if (!Number.isInteger(o.proxyPort) || o.proxyPort < 1 || o.proxyPort > 65535)
    throw new FluidError('VALIDATION', `${o.proxyPort} is not a valid port.`);
  return { bridge: o.bridge, ip, family: ip.includes(':') ? 'ip6' : 'ip', port: o.proxyPort };
}

/** IP in a frame to a link-local group address (see above): the mask keeps 01:80:c2:00:00:00–0f. */
const LINK_LOCAL = 'ether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00';

/** nftables ruleset text (what the script feeds to `nft -f -`). */
export function hostFirewallRuleset(o: HostFirewallOptions): string {
  const v = validate(o);
  const b = `iifname "${v.bridge}"`;
  return `table inet ${FIREWALL_TABLE}
delete table inet ${FIREWALL_TABLE}
table inet ${FIREWALL_TABLE} {
  chain input {
    type filter hook input priority -10; policy accept;
    ${LINK_LOCAL} counter drop
    ${b} ct state established,related accept
    ${b} udp dport 67 accept
    ${b} ${v.family} daddr ${v.ip} tcp dport ${v.port} accept
    ${b} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    ${b} counter drop
  }
  chain forward {
    type filter hook forward priority -10; policy accept;
    ${b} counter drop
    oifname "${v.bridge}" counter drop
  }
}
`;
}

/** POSIX sh script (run as root on the host) that installs the ruleset; exits 3 when nft is missing. */
export function hostFirewallScript(o: HostFirewallOptions): string {
  const rules = hostFirewallRuleset(o);
  return `#!/bin/sh
# Fluid: sandboxes on ${o.bridge} may reach this host only for DHCP and the egress proxy (${o.gatewayIp}:${o.proxyPort}).
set -eu
if ! command -v nft >/dev/null 2>&1; then
  echo "fluid-egress: nft (nftables) is not installed on this host, so the sandbox firewall was not applied (apt install nftables)" >&2
  exit ${NFT_MISSING_EXIT}
fi
nft -f - <<'FLUID_EOF'
${rules}FLUID_EOF
echo "fluid-egress: firewall table inet ${FIREWALL_TABLE} applied to ${o.bridge}"
`;
}

/** POSIX sh script that removes the table (idempotent; exit 0 when nft or the table is missing). */
export function hostFirewallTeardownScript(): string {
  return `#!/bin/sh
# Fluid: remove the sandbox bridge firewall.
set -eu
if ! command -v nft >/dev/null 2>&1; then
  echo "fluid-egress: nft is not installed; no firewall to remove"
  exit 0
fi
if nft list table inet ${FIREWALL_TABLE} >/dev/null 2>&1; then
  nft delete table inet ${FIREWALL_TABLE}
  echo "fluid-egress: firewall table inet ${FIREWALL_TABLE} removed"
else
  echo "fluid-egress: no firewall table to remove"
fi
`;
}
