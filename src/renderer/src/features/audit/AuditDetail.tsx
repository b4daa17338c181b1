/**
 * One audit entry in full: who (with the session's title for an agent), what, when, the thing it
 * concerns by name with its id (sandbox, agent session, approval, host, change), the data, and its
 * place in the hash chain.
 */
import type { AuditEntry } from '../../../../shared/contract/audit.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, KV } from '../../components/ui.tsx';
import { formatTime } from '../../lib/format.ts';
import { href } from '../../lib/route.ts';
import { useAgent } from '../../stores/agent.ts';
import { useApprovals } from '../../stores/approvals.ts';
import { useHosts } from '../../stores/hosts.ts';
import { SandboxRef } from '../sandboxes/SandboxRef.tsx';
import { auditRefs } from './refs.ts';

export function SessionName({ id }: { id: string }) {
  const session = useAgent((s) => s.byId[id]);
  return (
    <span className="ref" data-session-id={id}>
      <a href={href('agent', id)}>{session?.title ?? 'agent session'}</a> <code className="muted">{id}</code>
    </span>
  );
}

export function ApprovalName({ id }: { id: string }) {
  const a = useApprovals((s) => s.byId[id]);
  return (
    <span className="ref" data-approval-id={id}>
      <a href={href('audit', 'approvals', id)}>{a ? `${a.kind}: ${a.title}` : 'approval request'}</a>{' '}
      {a && (
        <Badge tone={a.status === 'approved' ? 'ok' : a.status === 'pending' ? 'info' : 'neutral'}>
          {a.status}
        </Badge>
      )}{' '}
      <code className="muted">{id}</code>
    </span>
  );
}

export function HostName({ id }: { id: string }) {
  const h = useHosts((s) => s.byId[id] ?? Object.values(s.byId).find((x) => x.name === id));
  return (
    <span className="ref" data-host-id={id}>
      {h ? <a href={href('hosts', h.id)}>{h.name}</a> : <span className="gone-name">host</span>}{' '}
      {(!h || h.id !== h.name) && <code className="muted">{id}</code>}
      {!h && <Badge tone="neutral">no longer registered</Badge>}
    </span>
  );
}

/** "web:browser:root", and for the built-in agent the session it works for. */
export function ActorName({ actor }: { actor: { door: string; id: string } }) {
  const session = useAgent((s) => (actor.door === 'agent' ? s.byId[actor.id] : undefined));
  return (
    <span className="mono">
      {actor.door}:{actor.id}
      {session && <span className="actor-session"> ({session.title})</span>}
    </span>
  );
}

export function AuditDetail({ entry: e, onClose }: { entry: AuditEntry; onClose?: () => void }) {
  const refs = auditRefs(e);
  const any = Object.values(refs).some(Boolean);
  return (
    <article className="audit-detail" aria-labelledby="audit-entry-title" data-seq={e.seq}>
      <div className="drawer-head">
        <h2 id="audit-entry-title" className="detail-title">
          Entry {e.seq} <Badge tone="accent">{e.action}</Badge>
        </h2>
        {onClose && (
          <button
            type="button"
            className="btn btn-icon btn-ghost"
            aria-label="Close the entry"
            onClick={onClose}
          >
            <Icon name="x" />
          </button>
        )}
      </div>
      <dl className="kv">
        <KV label="When">{formatTime(e.ts)}</KV>
        <KV label="Actor">
          <ActorName actor={e.actor} />
        </KV>
        <KV label="Action" mono>
          {e.action}
        </KV>
        <KV label="Target" mono>
          {e.target ?? '—'}
        </KV>
      </dl>
      {any && (
        <>
          <h3 className="sub-title">Concerns</h3>
          <dl className="kv refs" aria-label="What this entry concerns">
            {refs.sandbox && (
              <KV label="Sandbox">
                <SandboxRef id={refs.sandbox} />
              </KV>
            )}
            {refs.session && (
              <KV label="Agent session">
                <SessionName id={refs.session} />
              </KV>
            )}
            {refs.approval && (
              <KV label="Approval">
                <ApprovalName id={refs.approval} />
              </KV>
            )}
            {refs.host && (
              <KV label="Host">
                <HostName id={refs.host} />
              </KV>
            )}
            {refs.change && (
              <KV label="Change">
                <a href={href('changes', refs.change)}>change</a> <code className="muted">{refs.change}</code>
              </KV>
            )}
            {refs.playbook && (
              <KV label="Playbook">
                <a href={href('playbooks')}>playbook</a> <code className="muted">{refs.playbook}</code>
              </KV>
            )}
          </dl>
        </>
      )}
      <h3 className="sub-title">Data</h3>
      <pre className="json" aria-label="Entry data">
        {JSON.stringify(e.data, null, 2)}
      </pre>
      <h3 className="sub-title">Hash chain</h3>
      <dl className="kv">
        <KV label="Hash" mono>
          <span className="hash" data-testid="entry-hash">
            {e.hash}
          </span>
        </KV>
        <KV label="Previous hash" mono>
          <span className="hash">{e.prevHash}</span>
        </KV>
      </dl>
      <p className="muted small">
        Each entry&apos;s hash covers its content and the previous entry&apos;s hash: changing any entry
        breaks every hash after it, which <strong>Verify chain</strong> finds.
      </p>
    </article>
  );
}
