/**
 * Sandbox egress, wired to the rest of Fluid: one proxy per host (started on demand, restarted by its
 * controller), allowlists from each sandbox's row, every decision in the audit log, and anything not
 * allowlisted turned into an approval request. An approved request adds the destination to that
 * sandbox's allowlist, so the next attempt goes through; a denied one stays denied. While a request
 * for a destination is pending, retries do not raise new ones.
 */
import type { Approval } from '../../shared/contract/approvals.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { ApprovalService } from '../approvals/service.ts';
import {
  EgressController,
  guestProxySetupScript,
  hostFirewallScript,
  NFT_MISSING_EXIT,
  type EgressEvent,
  type EgressRequest,
} from '../egress/index.ts';
import type { HostService } from '../hosts/service.ts';
import type { Logger } from '../platform/logger.ts';
import type { AuditLog } from '../store/audit.ts';
import type { EventBus } from '../events.ts';
import { BRIDGE, GATEWAY, PROXY_PORT } from './network.ts';
import type { EgressHooks } from './service.ts';
import type { SandboxStore } from './store.ts';

export const PROXY_URL = `http://${GATEWAY}:${PROXY_PORT}`;

/** host:port as the allowlist writes it (IPv6 in brackets). */
const dest = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

export interface EgressDeps {
  hosts: HostService;
  sandboxes: () => SandboxStore;
  approvals: ApprovalService;
  audit: AuditLog;
  bus: EventBus;
  log: Logger;
  /** Add a destination to a sandbox's allowlist (after an approval). */
  allow: (sandboxId: string, destination: string, actor: Actor) => Promise<void>;
}

export class EgressManager implements EgressHooks {
  private readonly d: EgressDeps;
  private readonly controllers = new Map<string, Promise<EgressController>>();
  private readonly unsubscribe: () => void;
  private poller: NodeJS.Timeout | null = null;
  private readonly applied = new Set<string>();

  constructor(deps: EgressDeps) {
    this.d = deps;
    // An approved egress request puts the destination on the sandbox's allowlist.
    this.unsubscribe = deps.bus.subscribe('approvals.changed', (a) => void this.onDecision(a));
  }

  guestSetup(): string {
    return guestProxySetupScript(PROXY_URL);
  }

  /** Make sure the host's proxy runs (for commands run through this process), without a full sync. */
  async ensure(hostId: string): Promise<void> {
    if (!this.controllers.has(hostId)) await this.sync(hostId);
  }

  /** Start the host's proxy if needed and give it every sandbox's allowlist. */
  async sync(hostId: string): Promise<void> {
    const rows = this.d
      .sandboxes()
      .list({ hostId })
      .filter((r) => r.ip && ['creating', 'starting', 'running', 'stopping'].includes(r.state));
    const allow: Record<string, string[]> = {};
    const byIp: Record<string, string> = {};
    for (const r of rows) {
      allow[r.ip!] = JSON.parse(r.egress_allow) as string[];
      byIp[r.ip!] = r.id;
    }
    if (!rows.length && !this.controllers.has(hostId)) return;
    let c: EgressController;
    try {
      c = await this.controller(hostId);
    } catch (e) {
      // Another Fluid process on this machine may already serve this host's proxy (the port is
      // taken); it follows the shared database. Anything else is worth a warning.
      if (/cannot listen|in use/i.test((e as Error).message))
        this.d.log.info('egress proxy served by another Fluid process', { hostId });
      else throw e;
      return;
    }
    await c.update(allow, byIp);
  }

  /**
   * The proxy owner follows changes made by other processes sharing the database (allowlists edited,
   * egress requests approved from the CLI or another window).
   */
  private startPolling(): void {
    if (this.poller) return;
    let last = '';
    this.poller = setInterval(() => {
      void (async () => {
        for (const a of this.d.approvals.list({ status: 'approved', limit: 100 }))
          if (!this.applied.has(a.id)) await this.onDecision(a);
        const sig = JSON.stringify(
          this.d
            .sandboxes()
            .list()
            .map((r) => [r.id, r.state, r.ip, r.egress_allow]),
        );
        if (sig === last) return;
        last = sig;
        for (const hostId of this.controllers.keys())
          await this.sync(hostId).catch((e: unknown) =>
            this.d.log.warn('egress sync failed', { hostId, err: e }),
          );
      })();
    }, 2000);
    this.poller.unref();
  }

  private controller(hostId: string): Promise<EgressController> {
    let p = this.controllers.get(hostId);
    if (p) return p;
    p = (async () => {
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
        onEvent: (e) => this.record(e),
        log: {
          debug: (m, f) => this.d.log.debug(m, { hostId, ...f }),
          info: (m, f) => this.d.log.info(m, { hostId, ...f }),
          warn: (m, f) => this.d.log.warn(m, { hostId, ...f }),
          error: (m, f) => this.d.log.error(m, { hostId, ...f }),
        },
        onClose: () => this.controllers.delete(hostId),
      });
      await c.start();
      this.startPolling();
      return c;
    })();
    this.controllers.set(hostId, p);
    p.catch(() => this.controllers.delete(hostId));
    return p;
  }

  /** Not on the allowlist: raise (or reuse) an approval request and deny this attempt. */
  private async decide(req: EgressRequest): Promise<'allow' | 'deny'> {
    const destination = dest(req.host, req.port);
    const mine = (status: 'pending' | 'approved') =>
      this.d.approvals
        .list({ status, sandboxId: req.sandboxId, limit: 200 })
        .find(
          (a) => a.kind === 'egress' && (a.subject as { destination?: string }).destination === destination,
        );
    // Approved elsewhere (another window, the CLI) but not applied here yet: apply it and let this through.
    const approved = mine('approved');
    if (approved) {
      await this.onDecision(approved);
      return 'allow';
    }
    const pending = mine('pending');
    if (!pending) {
      const row = this.d.sandboxes().maybe(req.sandboxId);
      this.d.approvals.request({
        kind: 'egress',
        title: `Let sandbox ${row?.name ?? req.sandboxId} reach ${destination}`,
        detail: `The sandbox asked to connect to ${destination} (${req.method}). Egress is denied by default; approving adds ${destination} to this sandbox's allowlist.`,
        risk: 'medium',
        subject: { sandboxId: req.sandboxId, destination, method: req.method },
        requestedBy: { door: 'system', id: `sandbox:${row?.name ?? req.sandboxId}` },
        sandboxId: req.sandboxId,
      });
    }
    return 'deny';
  }

  private record(e: EgressEvent): void {
    this.d.audit.append({
      actor: { door: 'system', id: 'egress-proxy' },
      action: `egress.${e.decision}`,
      target: e.sandboxId,
      data: {
        destination: dest(e.host, e.port),
        method: e.method,
        reason: e.reason,
        status: e.status ?? null,
        bytesUp: e.bytesUp,
        bytesDown: e.bytesDown,
        client: e.client,
      },
    });
  }

  private async onDecision(a: Approval): Promise<void> {
    if (a.kind !== 'egress' || a.status !== 'approved' || !a.sandboxId || this.applied.has(a.id)) return;
    this.applied.add(a.id);
    const destination = (a.subject as { destination?: string }).destination;
    const row = this.d.sandboxes().maybe(a.sandboxId);
    if (!destination || !row || row.state === 'destroyed') return;
    if ((JSON.parse(row.egress_allow) as string[]).includes(destination)) return;
    try {
      await this.d.allow(a.sandboxId, destination, a.decidedBy ?? { door: 'system', id: 'approval' });
    } catch (e) {
      this.d.log.warn('could not apply an approved egress destination', { approval: a.id, err: e });
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    const all = [...this.controllers.values()];
    this.controllers.clear();
    await Promise.allSettled(all.map(async (p) => (await p).stop()));
  }
}
