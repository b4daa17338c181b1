/**
 * The control protocol between Fluid and the egress proxy: newline-delimited JSON over the proxy
 * process's stdin (Fluid → proxy) and stdout (proxy → Fluid).
 */

/** Fluid's answer to an ask: let it through, refuse it, or refuse it for now (an approval waits for a person). */
export type EgressDecision = 'allow' | 'deny' | 'pending';

/** What the proxy did with one request. */
export type EventDecision = 'allow' | 'deny';

export type EgressReason =
  | 'allowlist'
  | 'approved'
  | 'denied'
  /** Refused for now: an approval request waits for a person (the response names it). */
  | 'pending'
  | 'timeout'
  | 'unknown-client'
  | 'bad-request'
  /**
   * Loopback, link-local, metadata, the host's own addresses or (by default) private networks, reached
   * by name or by an IP that is not allowlisted exactly.
   */
  | 'blocked';

// ---------------------------------------------------------------- Fluid → proxy

export interface ConfigMessage {
  type: 'config';
  /** Echoed in the proxy's `configured` acknowledgement. */
  seq?: number;
  /** Client (sandbox) IP → allowlist entries. Full replacement. */
  allow: Record<string, string[]>;
  /** Client IP → sandbox id. An IP missing here is an unknown client: everything it asks is denied. */
  sandboxes: Record<string, string>;
}
export interface DecisionMessage {
  type: 'decision';
  id: string;
  decision: EgressDecision;
  /** The approval request behind this answer (the refused client is told its id). */
  approval?: string;
  /** A short note for the refused client (a denial's reason). */
  note?: string;
}
export interface PingMessage {
  type: 'ping';
  id?: string;
}
export interface ShutdownMessage {
  type: 'shutdown';
}
/** Ask for the proxy's status (answered with a `status` message). */
export interface StatusRequestMessage {
  type: 'status';
  id?: string;
}
export type ControlMessage =
  ConfigMessage | DecisionMessage | PingMessage | ShutdownMessage | StatusRequestMessage;

// ---------------------------------------------------------------- proxy → Fluid

export interface ReadyMessage {
  type: 'ready';
  /** ip:port (IPv6 in brackets) the proxy listens on. */
  listen: string;
  pid?: number;
  version?: number;
  python?: string;
  /** True when this process joined a proxy another Fluid process runs for the same bridge. */
  shared?: boolean;
}
export interface AskMessage {
  type: 'ask';
  id: string;
  client: string;
  /** The sandbox the proxy mapped the client to. */
  sandbox?: string;
  host: string;
  port: number;
  method: string;
}
export interface EventMessage {
  type: 'event';
  /** Request id, unique within one proxy process. */
  id?: string;
  client: string;
  sandbox: string | null;
  host: string;
  port: number;
  method: string;
  decision: EventDecision;
  reason: EgressReason;
  bytesUp: number;
  bytesDown: number;
  durationMs?: number;
  /** HTTP status the proxy returned to the client (200 for an established tunnel). */
  status?: number;
  /** Path of a plain HTTP request (truncated). */
  path?: string;
  /** The ask this decision came from, when one was raised. */
  askId?: string;
  /** Why a request failed or was blocked (upstream unreachable, blocked address, malformed request). */
  error?: string;
  /** What failed upstream: dns, dns-timeout, refused, timeout, unreachable, connect. */
  failure?: string;
  /** The approval request the client was told about. */
  approvalId?: string;
  note?: string;
}
/** The proxy applied a config message (sent for every one, including the first). */
export interface ConfiguredMessage {
  type: 'configured';
  seq: number | null;
  /** How many client IPs are mapped to sandboxes now. */
  clients?: number;
}
/**
 * Which of this controller's sandbox addresses the proxy serves for it, and which it cannot serve
 * because another controller (another Fluid installation sharing the bridge) claims the address for
 * another sandbox. Sent whenever that changes, before the `configured` acknowledgement.
 */
export interface RoutesMessage {
  type: 'routes';
  served: string[];
  conflicts: Array<{ client: string; sandbox: string; servedAs: string }>;
}
/** The proxy serving a bridge address: who it serves (or, from a probe, that none runs). */
export interface StatusMessage {
  type: 'status';
  id: string | null;
  running: boolean;
  listen: string;
  pid?: number;
  version?: number;
  controllers?: number;
  /** Client IP → sandbox id, for every sandbox address it serves. */
  clients?: Record<string, string>;
  /** From a probe when no Fluid proxy answers: something else listens on the address. */
  portInUse?: boolean;
}
export interface PongMessage {
  type: 'pong';
  id?: string | null;
}
export interface ErrorMessage {
  type: 'error';
  message: string;
}
export type ProxyMessage =
  | ReadyMessage
  | AskMessage
  | EventMessage
  | ConfiguredMessage
  | RoutesMessage
  | StatusMessage
  | PongMessage
  | ErrorMessage;

const REASONS: ReadonlySet<string> = new Set([
  'allowlist',
  'approved',
  'denied',
  'pending',
  'timeout',
  'unknown-client',
  'bad-request',
  'blocked',
]);

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): v is string => typeof v === 'string';
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optStr = (v: unknown): string | undefined => (str(v) ? v : undefined);
const optNum = (v: unknown): number | undefined => (num(v) ? v : undefined);

/** Parse one line from the proxy. Returns null for anything that is not a well-formed message. */
export function parseProxyMessage(line: string): ProxyMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isObj(v)) return null;
  switch (v.type) {
    case 'ready':
      if (!str(v.listen)) return null;
      return {
        type: 'ready',
        listen: v.listen,
        pid: optNum(v.pid),
        version: optNum(v.version),
        python: optStr(v.python),
        shared: v.shared === true,
      };
    case 'ask':
      if (!str(v.id) || !str(v.client) || !str(v.host) || !num(v.port) || !str(v.method)) return null;
      return {
        type: 'ask',
        id: v.id,
        client: v.client,
        sandbox: optStr(v.sandbox),
        host: v.host,
        port: v.port,
        method: v.method,
      };
    case 'event': {
      if (!str(v.client) || !str(v.host) || !num(v.port) || !str(v.method)) return null;
      if (v.decision !== 'allow' && v.decision !== 'deny') return null;
      if (!str(v.reason) || !REASONS.has(v.reason)) return null;
      const e: EventMessage = {
        type: 'event',
        id: optStr(v.id),
        client: v.client,
        sandbox: str(v.sandbox) ? v.sandbox : null,
        host: v.host,
        port: v.port,
        method: v.method,
        decision: v.decision,
        reason: v.reason as EgressReason,
        bytesUp: optNum(v.bytesUp) ?? 0,
        bytesDown: optNum(v.bytesDown) ?? 0,
      };
      if (num(v.durationMs)) e.durationMs = v.durationMs;
      if (num(v.status)) e.status = v.status;
      if (str(v.path)) e.path = v.path;
      if (str(v.askId)) e.askId = v.askId;
      if (str(v.error)) e.error = v.error;
      if (str(v.failure)) e.failure = v.failure;
      if (str(v.approvalId)) e.approvalId = v.approvalId;
      if (str(v.note)) e.note = v.note;
      return e;
    }
    case 'configured':
      return { type: 'configured', seq: num(v.seq) ? v.seq : null, clients: optNum(v.clients) };
    case 'routes': {
      if (!Array.isArray(v.served) || !Array.isArray(v.conflicts)) return null;
      return {
        type: 'routes',
        served: v.served.filter(str),
        conflicts: v.conflicts
          .filter(isObj)
          .filter((c) => str(c.client) && str(c.sandbox))
          .map((c) => ({
            client: c.client as string,
            sandbox: c.sandbox as string,
            servedAs: str(c.servedAs) ? c.servedAs : '',
          })),
      };
    }
    case 'status': {
      if (typeof v.running !== 'boolean' || !str(v.listen)) return null;
      const st: StatusMessage = {
        type: 'status',
        id: str(v.id) ? v.id : null,
        running: v.running,
        listen: v.listen,
      };
      if (num(v.pid)) st.pid = v.pid;
      if (num(v.version)) st.version = v.version;
      if (num(v.controllers)) st.controllers = v.controllers;
      if (isObj(v.clients))
        st.clients = Object.fromEntries(
          Object.entries(v.clients).filter((e): e is [string, string] => str(e[1])),
        );
      if (typeof v.portInUse === 'boolean') st.portInUse = v.portInUse;
      return st;
    }
    case 'pong':
      return { type: 'pong', id: str(v.id) ? v.id : null };
    case 'error':
      return str(v.message) ? { type: 'error', message: v.message } : null;
    default:
      return null;
  }
}

/** One control line (with its newline) for the proxy's stdin. */
export function encodeControl(msg: ControlMessage): string {
  return JSON.stringify(msg) + '\n';
}
