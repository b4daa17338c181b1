/**
 * Sandbox egress, wired to the rest of Fluid: one proxy per host bridge (started on demand, restarted
 * by its controller, shared with every other Fluid process, host record or installation that uses the
 * same bridge), allowlists from each sandbox's row, every decision in the audit log, and anything not
 * allowlisted turned into an approval request that only a person decides.
 *
 * An approval, once a person approves it, is applied once: the deciding process puts the destination
 * on the sandbox's allowlist (its event reaches this manager synchronously). From then on only the
 * allowlist counts, so revoking a destination stops the next request — and cuts open tunnels to it.
 * While a request for a destination is pending, retries do not raise new ones; the refused client is
 * told the approval's id.
 *
 * A proxy that cannot serve a sandbox (it cannot start, another installation holds the sandbox's
 * address) is an egress health problem of that sandbox (`health`, the sandbox DTO, `fluid doctor`),
 * never a silent 403.
 */
import type { Approval } from '../../shared/contract/approvals.ts';
import type { EgressHealth } from '../../shared/contract/sandboxes.ts';
import type { z } from 'zod';
import type { DoctorCheckSchema } from '../../shared/contract/system.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import {
  destinationWarning,
  EgressController,
  guestProxySetupScript,
  hostFirewallScript,
  isAllowed,
  NFT_MISSING_EXIT,
  probeEgressProxy,
  type EgressEvent,
  type EgressRequest,
  type EgressVerdict,
  type StatusMessage,
} from '../egress/index.ts';
import type { HostService } from '../hosts/service.ts';
import type { Logger } from '../platform/logger.ts';
import type { AuditLog } from '../store/audit.ts';
import type { EventBus } from '../events.ts';
import { BRIDGE, GATEWAY, PROXY_PORT } from './network.ts';
import type { EgressHooks } from './service.ts';
import type { SandboxRow, SandboxStore } from './store.ts';

export const PROXY_URL = `http://${GATEWAY}:${PROXY_PORT}`;

export type DoctorCheck = z.infer<typeof DoctorCheckSchema>;

/** host:port as the allowlist writes it (IPv6 in brackets). */
const dest = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

const SERVED_STATES = new Set(['creating', 'starting', 'running', 'stopping', 'pooled']);

export interface EgressDeps {
  hosts: HostService;
  sandboxes: () => SandboxStore;
  approvals: ApprovalService;
  audit: AuditLog;
  bus: EventBus;
  log: Logger;
  /** Add a destination to a sandbox's allowlist (after an approval). */
  allow: (sandboxId: string, destination: string, actor: Actor) => Promise<void>;
  /** How often the proxy owner re-reads allowlists other processes changed. Default 2 s. */
  pollMs?: number;
}

/**
 * Raise (or reuse) the approval request for letting a sandbox reach `destination`: high risk, with
 * the warning an exact IP entry deserves.
 */
export function requestEgressApproval(
  approvals: ApprovalService,
  o: {
    sandboxId: string;
    sandboxName: string;
    destination: string;
    requestedBy: Actor;
    /** Why it is asked, for the detail: "The sandbox connected to …" or "Requested when …". */
    why: string;
    method?: string | null;
  },
): Approval {
  const pending = approvals
    .list({ status: 'pending', sandboxId: o.sandboxId, limit: 200 })
    .find(
      (a) => a.kind === 'egress' && (a.subject as { destination?: string }).destination === o.destination,
    );
  if (pending) return pending;
  let warning: string | null = null;
  try {
    warning = destinationWarning(o.destination);
  } catch {
    /* not a destination: the caller validated it */
  }
  return approvals.request({
    kind: 'egress',
    title: `Let sandbox ${o.sandboxName} reach ${o.destination}`,
    detail:
      `${o.why} Egress is denied by default; approving adds ${o.destination} to this sandbox's allowlist` +
      ` (revoke it any time: the next request is refused).${warning ? ` WARNING: ${warning}` : ''}`,
    risk: 'high',
    subject: { sandboxId: o.sandboxId, destination: o.destination, method: o.method ?? null },
    requestedBy: o.requestedBy,
    sandboxId: o.sandboxId,
  });
}

interface HostEgress {
  controller: Promise<EgressController>;
  /** Set once the controller is up. */
  ready: EgressController | null;
}

export class EgressManager implements EgressHooks {
  private readonly d: EgressDeps;
  private readonly hosts = new Map<string, HostEgress>();
  /** Why a host's proxy is not serving (it could not start), by host id. */
  private readonly hostProblems = new Map<string, string>();
  /** Sandboxes the proxy reported as unknown clients (they got a 403 nobody asked about). */
  private readonly unserved = new Map<string, string>();
  private readonly unsubscribe: Array<() => void> = [];
  private poller: NodeJS.Timeout | null = null;
  private readonly applied = new Set<string>();

  constructor(deps: EgressDeps) {
    this.d = deps;
    // An approved egress request puts the destination on the sandbox's allowlist, once.
    this.unsubscribe.push(deps.bus.subscribe('approvals.changed', (a) => void this.onDecision(a)));
    // A sandbox that is gone withdraws its open requests: nobody should approve reach for nothing.
    this.unsubscribe.push(
      deps.bus.subscribe('sandboxes.changed', (e) => {
        if (e.state === 'destroyed' || e.state === 'failed') this.withdraw(e.sandboxId);
      }),
    );
  }

  guestSetup(): string {
    return guestProxySetupScript(PROXY_URL);
  }

  /** Make sure the host's proxy runs (for commands run through this process), without a full sync. */
  async ensure(hostId: string): Promise<void> {
    if (!this.hosts.has(hostId)) await this.sync(hostId);
  }

  /** Start (or join) the host's proxy if needed and give it every sandbox's allowlist. */
  async sync(hostId: string): Promise<void> {
    const rows = this.d
      .sandboxes()
      .list({ hostId })
      .filter((r) => r.ip && SERVED_STATES.has(r.state));
    const allow: Record<string, string[]> = {};
    const byIp: Record<string, string> = {};
    for (const r of rows) {
      allow[r.ip!] = JSON.parse(r.egress_allow) as string[];
      byIp[r.ip!] = r.id;
    }
    if (!rows.length && !this.hosts.has(hostId)) return;
    let c: EgressController;
    try {
      c = await this.controller(hostId);
      this.hostProblems.delete(hostId);
    } catch (e) {
      const message = (e as Error).message;
      if (this.hostProblems.get(hostId) !== message) {
        this.hostProblems.set(hostId, message);
        for (const r of rows) this.d.bus.emit('sandboxes.changed', { sandboxId: r.id, state: r.state });
      }
      throw e;
    }
    await c.update(allow, byIp);
  }

  /**
   * Egress health of a sandbox as this process sees it: `unknown` when this process runs no proxy
   * for its host (`fluid doctor` probes the host instead).
   */
  health(row: SandboxRow): EgressHealth {
    if (!row.ip || !SERVED_STATES.has(row.state)) return { status: 'ok', message: null };
    const problem = this.hostProblems.get(row.host_id);
    if (problem) return { status: 'problem', message: `Sandbox egress does not work: ${problem}` };
    const c = this.hosts.get(row.host_id)?.ready;
    if (!c) return { status: 'unknown', message: null };
    if (c.state === 'restarting')
      return {
        status: 'problem',
        message:
          'The egress proxy on this host stopped unexpectedly and is restarting: requests fail until it is back.',
      };
    if (c.state === 'closed' || c.state === 'stopped')
      return {
        status: 'problem',
        message: 'The egress proxy on this host is not running (the host connection closed).',
      };
    const routes = c.routes;
    const conflict = routes?.conflicts.find((x) => x.client === row.ip && x.sandbox === row.id);
    if (conflict)
      return {
        status: 'problem',
        message: `Another Fluid (another installation sharing this host) holds ${row.ip} for its sandbox ${conflict.servedAs}: this sandbox has no egress until one of them is destroyed.`,
      };
    const unserved = this.unserved.get(row.id);
    if (routes && !routes.served.has(row.ip))
      return {
        status: 'problem',
        message:
          unserved ??
          `The egress proxy does not serve ${row.ip} yet: requests from this sandbox are refused.`,
      };
    if (unserved && !routes) return { status: 'problem', message: unserved };
    return { status: 'ok', message: null };
  }

  /**
   * Ask the host which proxy serves its bridge and whether it serves these sandboxes (for `fluid
   * doctor`): starts nothing.
   */
  async probe(hostId: string): Promise<StatusMessage> {
    const conn = await this.d.hosts.connection(hostId);
    return probeEgressProxy(conn, { listenAddress: GATEWAY, port: PROXY_PORT });
  }

  /**
   * `fluid doctor`: for each host with live sandboxes, ask its proxy whom it serves and say which
   * sandboxes have no egress, and why.
   */
  async doctor(): Promise<DoctorCheck[]> {
    const live = this.d
      .sandboxes()
      .list()
      .filter((r) => r.ip && SERVED_STATES.has(r.state));
    if (!live.length)
      return [
        {
          id: 'egress',
          title: 'Sandbox egress',
          status: 'pass',
          detail: 'No running sandboxes: nothing to check.',
          advice: null,
        },
      ];
    const byHost = new Map<string, SandboxRow[]>();
    for (const r of live) byHost.set(r.host_id, [...(byHost.get(r.host_id) ?? []), r]);
    const out: DoctorCheck[] = [];
    for (const [hostId, rows] of byHost) {
      let hostName = hostId;
      try {
        hostName = this.d.hosts.get(hostId).name;
      } catch {
        /* host removed */
      }
      const id = `egress:${hostName}`;
      const title = `Sandbox egress on ${hostName}`;
      const names = (rs: SandboxRow[]) => rs.map((r) => `${r.name} (${r.ip})`).join(', ');
      let st: StatusMessage;
      try {
        st = await this.probe(hostId);
      } catch (e) {
        out.push({
          id,
          title,
          status: 'warn',
          detail: `Could not ask the host: ${(e as Error).message}`,
          advice: null,
        });
        continue;
      }
      if (!st.running) {
        out.push(
          st.portInUse
            ? {
                id,
                title,
                status: 'fail',
                detail: `Another program listens on ${st.listen}, where the egress proxy belongs: ${names(rows)} cannot reach anything.`,
                advice: `Find and stop it on ${hostName}: ss -ltnp 'sport = :${PROXY_PORT}'.`,
              }
            : {
                id,
                title,
                status: 'warn',
                detail: `No egress proxy runs on ${hostName}: ${names(rows)} reach nothing until a Fluid process serves them (a CLI command serves them only while it runs).`,
                advice: 'Keep the app or `fluid serve` running while sandboxes need the network.',
              },
        );
        continue;
      }
      const unserved = rows.filter((r) => !st.clients?.[r.ip!]);
      const taken = rows.filter((r) => st.clients?.[r.ip!] && st.clients[r.ip!] !== r.id);
      if (!unserved.length && !taken.length) {
        out.push({
          id,
          title,
          status: 'pass',
          detail: `The proxy on ${st.listen} (pid ${st.pid ?? '?'}, ${st.controllers ?? 1} Fluid process${st.controllers === 1 ? '' : 'es'}) serves all ${rows.length} sandbox${rows.length === 1 ? '' : 'es'}.`,
          advice: null,
        });
        continue;
      }
      const parts: string[] = [];
      if (unserved.length)
        parts.push(
          `${names(unserved)}: not served (its requests get a 403 naming the problem, and no approval)`,
        );
      if (taken.length)
        parts.push(
          `${taken.map((r) => `${r.name} (${r.ip}) is held for another Fluid's sandbox ${st.clients![r.ip!]}`).join('; ')}`,
        );
      out.push({
        id,
        title,
        status: 'fail',
        detail: `The proxy on ${st.listen} does not serve every sandbox: ${parts.join('; ')}.`,
        advice: unserved.length
          ? 'Start the app or `fluid serve`: a running Fluid gives the proxy its sandboxes.'
          : 'Destroy one of the sandboxes that share the address (two installations claimed the same slot).',
      });
    }
    return out;
  }

  /**
   * The proxy owner follows changes made by other processes sharing the database (allowlists edited
   * or revoked from the CLI or another window).
   */
  private startPolling(): void {
    if (this.poller) return;
    let last = '';
    this.poller = setInterval(() => {
      void (async () => {
        const sig = JSON.stringify(
          this.d
            .sandboxes()
            .list()
            .map((r) => [r.id, r.state, r.ip, r.egress_allow]),
        );
        if (sig === last) return;
        last = sig;
        for (const hostId of this.hosts.keys())
          await this.sync(hostId).catch((e: unknown) =>
            this.d.log.warn('egress sync failed', { hostId, err: e }),
          );
      })();
    }, this.d.pollMs ?? 2000);
    this.poller.unref();
  }

  private controller(hostId: string): Promise<EgressController> {
    const have = this.hosts.get(hostId);
    if (have) return have.controller;
    const entry: HostEgress = { controller: null as unknown as Promise<EgressController>, ready: null };
    entry.controller = (async () => {
      const conn = await this.d.hosts.connection(hostId);
      const fw = await conn.exec(
        hostFirewallScript({ bridge: BRIDGE, gatewayIp: GATEWAY, proxyPort: PROXY_PORT }),
        { timeoutMs: 30_000 },
      );
      if (fw.code !== 0) {
        this.d.log.warn(
          fw.code === NFT_MISSING_EXIT
            ? 'nft is missing on the host: sandboxes can reach host services on the bridge'
            : 'host firewall for sandboxes failed',
          {
            hostId,
            stderr: fw.stderr.toString().slice(0, 500),
          },
        );
      }
      const c = new EgressController({
        conn,
        listenAddress: GATEWAY,
        port: PROXY_PORT,
        decide: (req) => this.decide(req),
        onEvent: (e) => this.record(hostId, e),
        onRoutes: () => this.routesChanged(hostId),
        log: {
          debug: (m, f) => this.d.log.debug(m, { hostId, ...f }),
          info: (m, f) => this.d.log.info(m, { hostId, ...f }),
          warn: (m, f) => this.d.log.warn(m, { hostId, ...f }),
          error: (m, f) => this.d.log.error(m, { hostId, ...f }),
        },
        onClose: () => {
          if (this.hosts.get(hostId) === entry) this.hosts.delete(hostId);
        },
      });
      await c.start();
      entry.ready = c;
      this.startPolling();
      return c;
    })();
    this.hosts.set(hostId, entry);
    entry.controller.catch(() => {
      if (this.hosts.get(hostId) === entry) this.hosts.delete(hostId);
    });
    return entry.controller;
  }

  /** Not on the allowlist: raise (or reuse) an approval request and refuse this attempt, naming it. */
  private async decide(req: EgressRequest): Promise<EgressVerdict> {
    const destination = dest(req.host, req.port);
    const row = this.d.sandboxes().maybe(req.sandboxId);
    if (!row || !SERVED_STATES.has(row.state)) return { decision: 'deny', note: 'the sandbox is gone' };
    // On the allowlist now (a person just approved it; the proxy's copy is being updated): let it
    // through. This reads the current allowlist, never a past approval.
    if (isAllowed(JSON.parse(row.egress_allow) as string[], req.host, req.port)) return { decision: 'allow' };
    const a = requestEgressApproval(this.d.approvals, {
      sandboxId: req.sandboxId,
      sandboxName: row.name,
      destination,
      requestedBy: { door: 'system', id: `sandbox:${row.name}` },
      why: `The sandbox connected to ${destination} (${req.method}).`,
      method: req.method,
    });
    return { decision: 'pending', approvalId: a.id };
  }

  private record(hostId: string, e: EgressEvent): void {
    let sandboxId = e.sandboxId;
    if (e.reason === 'unknown-client') {
      // The proxy served nobody at this address. If it is one of ours, that is a health problem.
      const mine = this.d
        .sandboxes()
        .list({ hostId })
        .find((r) => r.ip === e.client && SERVED_STATES.has(r.state));
      if (!mine) {
        if (this.hosts.get(hostId)?.ready?.shared) return; // another Fluid's business
      } else {
        sandboxId = mine.id;
        const message = `The egress proxy refused a request from this sandbox (${e.client}) because it did not know the sandbox; Fluid is re-sending its allowlists.`;
        if (this.unserved.get(mine.id) !== message) {
          this.unserved.set(mine.id, message);
          this.d.log.warn('egress: the proxy does not know a sandbox of this installation', {
            hostId,
            sandboxId: mine.id,
            client: e.client,
          });
          this.d.bus.emit('sandboxes.changed', { sandboxId: mine.id, state: mine.state });
          void this.sync(hostId).catch(() => {});
        }
      }
    }
    this.d.audit.append({
      actor: { door: 'system', id: 'egress-proxy' },
      action: `egress.${e.decision}`,
      target: sandboxId,
      data: {
        destination: dest(e.host, e.port),
        method: e.method,
        reason: e.reason,
        status: e.status ?? null,
        bytesUp: e.bytesUp,
        bytesDown: e.bytesDown,
        client: e.client,
        ...(e.approvalId ? { approval: e.approvalId } : {}),
        ...(e.error ? { error: e.error } : {}),
      },
    });
  }

  private routesChanged(hostId: string): void {
    const routes = this.hosts.get(hostId)?.ready?.routes;
    if (!routes) return;
    for (const r of this.d.sandboxes().list({ hostId })) {
      if (!r.ip) continue;
      const wasUnserved = this.unserved.has(r.id);
      if (routes.served.has(r.ip)) this.unserved.delete(r.id);
      if (wasUnserved || routes.conflicts.some((c) => c.sandbox === r.id))
        this.d.bus.emit('sandboxes.changed', { sandboxId: r.id, state: r.state });
    }
  }

  private withdraw(sandboxId: string): void {
    this.unserved.delete(sandboxId);
    for (const a of this.d.approvals.list({ status: 'pending', sandboxId, limit: 500 }))
      if (a.kind === 'egress')
        this.d.approvals.cancel(a.id, { door: 'system', id: 'egress' }, 'The sandbox is gone.');
  }

  /**
   * Apply an approved request: put the destination on the allowlist, once. Runs synchronously up to
   * the allowlist write (so the process that decides has applied it when `decide` returns); other
   * processes see the same event through the event feed and find the destination there already.
   * An approval is never consulted again afterwards: a revoked destination needs a new one.
   */
  private async onDecision(a: Approval): Promise<void> {
    if (a.kind !== 'egress' || a.status !== 'approved' || !a.sandboxId || this.applied.has(a.id)) return;
    this.applied.add(a.id);
    const destination = (a.subject as { destination?: string }).destination;
    const row = this.d.sandboxes().maybe(a.sandboxId);
    if (!destination || !row || row.state === 'destroyed' || row.state === 'failed') return;
    if ((JSON.parse(row.egress_allow) as string[]).includes(destination)) return;
    try {
      await this.d.allow(a.sandboxId, destination, a.decidedBy ?? { door: 'system', id: 'approval' });
    } catch (e) {
      this.d.log.warn('could not apply an approved egress destination', { approval: a.id, err: e });
    }
  }

  async close(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    const all = [...this.hosts.values()];
    this.hosts.clear();
    await Promise.allSettled(all.map(async (h) => (await h.controller).stop()));
  }
}
