/**
 * Sandbox egress: a default-deny HTTP proxy on each libvirt host, driven by Fluid over its stdin/stdout.
 * See controller.ts (lifecycle and protocol), destinations.ts (allowlist rules), guest.ts (what the
 * sandbox is configured with), firewall.ts (the host's nftables guard) and proxy.py (the proxy, read by proxy-script.ts).
 */
export {
  EgressController,
  PYTHON_MISSING_MESSAGE,
  probeEgressProxy,
  proxyCommand,
  proxyStdinPreamble,
  type EgressControllerOptions,
  type EgressEvent,
  type EgressLog,
  type EgressRequest,
  type EgressRoutes,
  type EgressState,
  type EgressVerdict,
  type ProxyCommandOptions,
} from './controller.ts';
export {
  DEFAULT_PORTS,
  canonicalIp,
  destinationMatches,
  formatDestination,
  isAllowed,
  normalizeHost,
  parseDestination,
  splitHostPort,
  tryParseDestination,
  type Destination,
} from './destinations.ts';
export {
  FIREWALL_TABLE,
  NFT_MISSING_EXIT,
  hostFirewallRuleset,
  hostFirewallScript,
  hostFirewallTeardownScript,
  type HostFirewallOptions,
} from './firewall.ts';
export {
  NO_PROXY,
  guestProxyFiles,
  guestProxySetupScript,
  guestProxyTeardownScript,
  normalizeProxyUrl,
  type GuestFile,
} from './guest.ts';
export { addressKind, canonicalDestinations, destinationWarning, type AddressKind } from './reach.ts';
export {
  encodeControl,
  parseProxyMessage,
  type AskMessage,
  type ControlMessage,
  type EgressDecision,
  type EgressReason,
  type EventDecision,
  type EventMessage,
  type ProxyMessage,
  type RoutesMessage,
  type StatusMessage,
} from './protocol.ts';
export { PROXY_SCRIPT_VERSION, PROXY_SOURCE_URL, proxyScript } from './proxy-script.ts';
