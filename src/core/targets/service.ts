/**
 * TargetService: production machines Fluid applies approved changes to.
 *
 * A target is reached over SSH the way hosts are (src/core/hosts/ssh.ts: the same probe, the same
 * pinned host key, the same refusal of any other key), optionally through a registered host as a
 * jump (that host's own pinned connection forwards the channel), and logged in with a private key
 * Fluid keeps in its secret store. Registering, re-pinning and removing a target are a person's
 * decisions: agents' doors and processes without a terminal may not.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { BecomeMethod, Target, TargetCheck } from '../../shared/contract/changes.ts';
import { FluidError, toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { EventBus } from '../events.ts';
import type { HostConnection } from '../hosts/connection.ts';
import type { HostService } from '../hosts/service.ts';
import { fingerprintOf, probeHostKey, SshConnection, type Via } from '../hosts/ssh.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { PresenceService } from '../presence/service.ts';
import { purposeOf } from '../presence/service.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { SettingsService } from '../store/settings.ts';
import { asRoot } from './state.ts';
import { TargetStore, type TargetCredential, type TargetRow } from './store.ts';

export interface TargetDeps {
  db: Db;
  audit: AuditLog;
  bus: EventBus;
  clock: Clock;
  log: Logger;
  secrets: SecretStore;
  hosts: HostService;
  settings: SettingsService;
  presence: PresenceService;
}

/** The secret-store entry holding a target's private key. */
export const credentialEntry = (targetId: string) => `targets/${targetId}/key`;

/** A private key as text: refused when it is encrypted or not a private key at all. */
export function parsePrivateKey(pem: string): { publicKey: string; fingerprint: string; type: string } {
  const k = ssh2.utils.parseKey(Buffer.from(pem, 'utf8'));
  if (k instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(k.message);
    throw new FluidError(
      'VALIDATION',
      encrypted
        ? 'The key is protected by a passphrase. Fluid keeps an unencrypted copy in its secret store for the target; make one (ssh-keygen -p -N "" -f a-copy) or create a dedicated key for Fluid.'
        : `That is not a private key Fluid can read: ${k.message}`,
    );
  }
  const key = Array.isArray(k) ? k[0] : k;
  if (!key || !key.isPrivateKey())
    throw new FluidError('VALIDATION', 'That is a public key; the target needs the private half.');
  const blob = key.getPublicSSH();
  return {
    publicKey: `${key.type} ${Buffer.from(blob).toString('base64')}`,
    fingerprint: fingerprintOf(Buffer.from(blob)),
    type: key.type,
  };
}

export class TargetService {
  readonly store: TargetStore;
  private readonly d: TargetDeps;

  constructor(deps: TargetDeps) {
    this.d = deps;
    this.store = new TargetStore(deps.db);
  }

  private timeoutMs(): number {
    return this.d.settings.get().hosts.connectTimeoutSeconds * 1000;
  }

  /** Only a person registers, re-pins or removes production targets. */
  private person(actor: Actor, what: string): void {
    this.d.presence.demand(actor, { purpose: purposeOf('targets', { what }), required: false, what }, null);
  }

  private emit(targetId: string, change: 'added' | 'updated' | 'removed' | 'checked' | 'locked') {
    this.d.bus.emit('targets.changed', { targetId, change });
  }

  // ---- reading --------------------------------------------------------------------------------------

  toTarget(r: TargetRow): Target {
    const cred = JSON.parse(r.credential) as TargetCredential;
    const hostName = (id: string | null) => {
      if (!id) return null;
      try {
        return this.d.hosts.get(id).name;
      } catch {
        return '(removed host)';
      }
    };
    const lock = this.store.lock(r.id);
    return {
      id: r.id,
      name: r.name,
      address: r.address,
      port: r.port,
      user: r.user,
      become: r.become,
      credential: { type: 'key', publicKey: cred.publicKey, fingerprint: cred.fingerprint },
      jump: r.jump_host_id ? { hostId: r.jump_host_id, hostName: hostName(r.jump_host_id)! } : null,
      hostKey: r.host_key_fp ? { type: r.host_key_type ?? 'unknown', fingerprint: r.host_key_fp } : null,
      sourceVm:
        r.source_host_id && r.source_vm
          ? { hostId: r.source_host_id, hostName: hostName(r.source_host_id)!, vm: r.source_vm }
          : null,
      createdAt: r.created_at,
      createdBy: { door: r.created_by_door as Actor['door'], id: r.created_by_id },
      lastCheck: r.last_check ? (JSON.parse(r.last_check) as TargetCheck) : null,
      lockedBy: lock ? { applyId: lock.apply_id, since: lock.acquired_at } : null,
      lastBaseline: r.last_baseline
        ? (JSON.parse(r.last_baseline) as { sha256: string; takenAt: string; applyId: string })
        : null,
    };
  }

  list(): Target[] {
    return this.store.list().map((r) => this.toTarget(r));
  }

  get(ref: string): Target {
    return this.toTarget(this.store.row(ref));
  }

  // ---- reaching a target --------------------------------------------------------------------------

  /** How to open a stream to address:port: through the jump host's pinned connection, or directly. */
  via(jumpHostId: string | null): Via | undefined {
    if (!jumpHostId) return undefined;
    return async (address, port) => (await this.d.hosts.connection(jumpHostId)).forwardOut(address, port);
  }

  /** A stream to the target's sshd (for Ansible's relay): through the jump, or a direct TCP socket. */
  route(r: TargetRow): () => Promise<HostConnection> {
    if (r.jump_host_id) {
      const id = r.jump_host_id;
      return () => this.d.hosts.connection(id);
    }
    return () => this.d.hosts.connection('local');
  }

  /** The private key Fluid holds for the target. */
  privateKey(r: TargetRow): string {
    const cred = JSON.parse(r.credential) as TargetCredential;
    const pem = this.d.secrets.get(cred.secret);
    if (!pem)
      throw new FluidError(
        'AUTH_FAILED',
        `Fluid no longer holds the key of target ${r.name} (secret ${cred.secret} is missing or cannot be opened here). Remove the target and add it again with its key.`,
      );
    return pem;
  }

  /** A connection that refuses any host key but the pinned one. The caller closes it. */
  async connect(ref: string | TargetRow): Promise<SshConnection> {
    const r = typeof ref === 'string' ? this.store.row(ref) : ref;
    if (!r.host_key_fp)
      throw new FluidError(
        'HOSTKEY_MISMATCH',
        `Target ${r.name} has no trusted host key. Trust one with fluid target trust.`,
      );
    return SshConnection.open({
      hostId: r.id,
      address: r.address,
      port: r.port,
      user: r.user,
      auth: { type: 'key', keyPath: `(the key Fluid holds for ${r.name})` },
      privateKey: Buffer.from(this.privateKey(r), 'utf8'),
      fingerprint: r.host_key_fp,
      connectTimeoutMs: this.timeoutMs(),
      via: this.via(r.jump_host_id),
    });
  }

  // ---- registering ------------------------------------------------------------------------------------

  async probe(address: string, port: number, jump: string | undefined) {
    const jumpId = jump ? this.d.hosts.get(jump).id : null;
    const hostKey = await probeHostKey(address, port, this.timeoutMs(), this.via(jumpId));
    const known = this.store.byAddress(address, port);
    return {
      address,
      port,
      hostKey,
      known: known
        ? { id: known.id, name: known.name, matches: known.host_key_fp === hostKey.fingerprint }
        : null,
    };
  }

  async add(
    input: {
      name: string;
      address: string;
      port: number;
      user: string;
      credential: { type: 'key'; privateKey: string } | { type: 'keyFile'; path: string };
      jump?: string;
      become: BecomeMethod;
      acceptFingerprint: string;
      sourceVm?: { host: string; vm: string };
    },
    actor: Actor,
  ): Promise<Target> {
    this.person(actor, `register the production target ${input.name}`);
    if (this.store.maybe(input.name))
      throw new FluidError('CONFLICT', `A target named "${input.name}" exists. Choose another name.`);
    let pem: string;
    if (input.credential.type === 'keyFile') {
      try {
        pem = readFileSync(input.credential.path, 'utf8');
      } catch (e) {
        throw new FluidError(
          'VALIDATION',
          `Cannot read the key file ${input.credential.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
    } else pem = input.credential.privateKey;
    const key = parsePrivateKey(pem);
    const jump = input.jump ? this.d.hosts.get(input.jump) : null;
    if (jump && jump.kind === 'local')
      throw new FluidError('VALIDATION', 'The local host is no jump: leave --jump out.');
    let source: { hostId: string; vm: string } | null = null;
    if (input.sourceVm) {
      const h = this.d.hosts.get(input.sourceVm.host);
      const vms = await this.d.hosts.vms(h.id);
      if (!vms.some((v) => v.name === input.sourceVm!.vm))
        throw new FluidError('NOT_FOUND', `Host ${h.name} has no VM named ${input.sourceVm.vm}.`);
      source = { hostId: h.id, vm: input.sourceVm.vm };
    }
    const id = randomUUID();
    const row: TargetRow = {
      id,
      name: input.name,
      address: input.address,
      port: input.port,
      user: input.user,
      become: input.become,
      credential: JSON.stringify({
        type: 'key',
        secret: credentialEntry(id),
        publicKey: key.publicKey,
        fingerprint: key.fingerprint,
      } satisfies TargetCredential),
      jump_host_id: jump?.id ?? null,
      host_key_type: null,
      host_key_fp: input.acceptFingerprint,
      source_host_id: source?.hostId ?? null,
      source_vm: source?.vm ?? null,
      created_at: this.d.clock.now().toISOString(),
      created_by_door: actor.door,
      created_by_id: actor.id,
      last_check: null,
      last_baseline: null,
    };
    // Log in once, requiring exactly the confirmed key; prove the credential and becoming root.
    this.d.secrets.set(credentialEntry(id), pem);
    let check: TargetCheck;
    try {
      check = await this.runCheck(row);
      const failed = check.checks.filter((c) => c.status === 'fail');
      if (failed.length)
        throw new FluidError(
          'VALIDATION',
          `${input.user}@${input.address} cannot be a target yet: ${failed.map((c) => `${c.title}: ${c.detail}${c.advice ? ` (${c.advice})` : ''}`).join('; ')}`,
        );
      const presented = await probeHostKey(
        input.address,
        input.port,
        this.timeoutMs(),
        this.via(row.jump_host_id),
      );
      row.host_key_type = presented.type;
      this.store.insert({ ...row, actor });
      this.store.setCheck(id, check);
    } catch (e) {
      this.d.secrets.delete(credentialEntry(id));
      throw e;
    }
    this.d.audit.append({
      actor,
      action: 'target.add',
      target: id,
      data: {
        name: row.name,
        address: row.address,
        port: row.port,
        user: row.user,
        become: row.become,
        fingerprint: input.acceptFingerprint,
        credential: key.fingerprint,
        jump: jump ? { id: jump.id, name: jump.name } : null,
        sourceVm: source,
      },
    });
    this.emit(id, 'added');
    return this.get(id);
  }

  async trust(ref: string, fingerprint: string, actor: Actor): Promise<Target> {
    const r = this.store.row(ref);
    this.person(actor, `trust a new host key for the production target ${r.name}`);
    const presented = await probeHostKey(r.address, r.port, this.timeoutMs(), this.via(r.jump_host_id));
    if (presented.fingerprint !== fingerprint)
      throw new FluidError(
        'HOSTKEY_MISMATCH',
        `${r.address}:${r.port} presents ${presented.fingerprint}, not ${fingerprint}. Nothing was changed.`,
        { presented: presented.fingerprint },
      );
    this.store.setHostKey(r.id, presented.type, fingerprint);
    this.d.audit.append({
      actor,
      action: 'target.trust',
      target: r.id,
      data: { name: r.name, previous: r.host_key_fp, fingerprint, keyType: presented.type },
    });
    this.emit(r.id, 'updated');
    return this.get(r.id);
  }

  async check(ref: string, actor: Actor): Promise<Target> {
    const r = this.store.row(ref);
    const check = await this.runCheck(r);
    this.store.setCheck(r.id, check);
    this.d.audit.append({
      actor,
      action: 'target.check',
      target: r.id,
      data: {
        name: r.name,
        ok: check.ok,
        failed: check.checks.filter((c) => c.status === 'fail').map((c) => c.id),
      },
    });
    this.emit(r.id, 'checked');
    return this.get(r.id);
  }

  remove(ref: string, actor: Actor, guard?: (targetId: string) => void): { removed: true; id: string } {
    const r = this.store.row(ref);
    this.person(actor, `remove the production target ${r.name}`);
    const lock = this.store.lock(r.id);
    if (lock)
      throw new FluidError(
        'CONFLICT',
        `An apply (${lock.apply_id}) holds target ${r.name}. Wait for it to end or cancel it first.`,
      );
    guard?.(r.id);
    const cred = JSON.parse(r.credential) as TargetCredential;
    this.store.delete(r.id);
    this.d.secrets.delete(cred.secret);
    this.d.audit.append({
      actor,
      action: 'target.remove',
      target: r.id,
      data: { name: r.name, address: r.address, port: r.port, credential: cred.fingerprint },
    });
    this.emit(r.id, 'removed');
    return { removed: true, id: r.id };
  }

  /** Log in (pinned key, held credential), then check becoming root and Python, in one round trip. */
  private async runCheck(r: TargetRow): Promise<TargetCheck> {
    const checks: TargetCheck['checks'] = [];
    const facts: TargetCheck['facts'] = { hostname: null, os: null, python: null };
    const at = this.d.clock.now().toISOString();
    let conn: SshConnection;
    try {
      conn = await this.connect(r);
    } catch (e) {
      const p = toErrorPayload(e);
      if (p.code === 'HOSTKEY_MISMATCH' || p.code === 'AUTH_FAILED' || p.code === 'VALIDATION') throw e;
      checks.push({
        id: 'connect',
        title: `SSH to ${r.user}@${r.address}:${r.port}`,
        status: 'fail',
        detail: p.message,
        advice: r.jump_host_id
          ? 'Check the jump host and that it reaches the target.'
          : 'Check the address and the network path.',
      });
      return { checkedAt: at, ok: false, checks, facts };
    }
    try {
      checks.push({
        id: 'connect',
        title: `SSH to ${r.user}@${r.address}:${r.port}`,
        status: 'pass',
        detail: `Logged in with the held key; host key ${r.host_key_fp} verified${r.jump_host_id ? ' (through the jump host)' : ''}.`,
        advice: null,
      });
      const script = [
        'printf "hostname=%s\\n" "$(hostname 2>/dev/null)"',
        'printf "os=%s\\n" "$( . /etc/os-release 2>/dev/null; echo "$PRETTY_NAME")"',
        'printf "python=%s\\n" "$(python3 -c "import sys; print(sys.version.split()[0])" 2>/dev/null)"',
        // read-only: the answer is captured, nothing is written on the target
        `if out=$(${asRoot(r.become, 'id -u')} 2>&1 </dev/null); then printf "root=%s\\n" "$out"; else printf "root=fail:%s\\n" "$(printf %s "$out" | tr '\\n' ' ')"; fi`,
      ].join('\n');
      const out = await conn.exec(`sh -s`, { stdin: script, timeoutMs: 60_000 });
      const kv = Object.fromEntries(
        out.stdout
          .toString('utf8')
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      facts.hostname = kv.hostname || null;
      facts.os = kv.os || null;
      facts.python = kv.python || null;
      checks.push({
        id: 'python',
        title: 'Python 3 (Ansible runs its modules with it)',
        status: facts.python ? 'pass' : 'fail',
        detail: facts.python ? `Python ${facts.python}.` : 'python3 is not on the target.',
        advice: facts.python ? null : 'Install python3 on the target.',
      });
      const root = kv.root ?? 'fail:no answer';
      checks.push({
        id: 'become',
        title: r.become === 'none' ? 'Logged in as root' : `Become root with ${r.become}`,
        status: root === '0' ? 'pass' : 'fail',
        detail:
          root === '0'
            ? r.become === 'none'
              ? 'The user is root.'
              : `${r.become} -n works without a password.`
            : `Not root: ${root.replace(/^fail:/, '').trim() || `uid ${root}`}`,
        advice:
          root === '0'
            ? null
            : r.become === 'none'
              ? 'Log in as root, or choose sudo or doas.'
              : `Let ${r.user} run commands as root with ${r.become} without a password (for example "${r.user} ALL=(ALL) NOPASSWD: ALL" in /etc/sudoers.d/).`,
      });
    } finally {
      conn.close();
    }
    return { checkedAt: at, ok: checks.every((c) => c.status !== 'fail'), checks, facts };
  }
}
