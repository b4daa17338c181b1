import type { AuditEntry } from '../../../../shared/contract/audit.ts';
import { Badge, KV } from '../../components/ui.tsx';
import { formatTime } from '../../lib/format.ts';
import { href } from '../../lib/route.ts';
import { useHosts } from '../../stores/hosts.ts';

export function AuditDetail({ entry: e }: { entry: AuditEntry }) {
  const host = useHosts((s) => (e.target ? s.byId[e.target] : undefined));
  return (
    <article className="audit-detail" aria-labelledby="audit-entry-title">
      <h2 id="audit-entry-title" className="detail-title">
        Entry {e.seq} <Badge tone="accent">{e.action}</Badge>
      </h2>
      <dl className="kv">
        <KV label="When">{formatTime(e.ts)}</KV>
        <KV label="Actor" mono>
          {e.actor.door}:{e.actor.id}
        </KV>
        <KV label="Action" mono>
          {e.action}
        </KV>
        <KV label="Target" mono>
          {e.target ?? '—'}
          {host && (
            <>
              {' '}
              (<a href={href('hosts', host.id)}>{host.name}</a>)
            </>
          )}
        </KV>
        <KV label="Hash" mono>
          <span className="hash">{e.hash}</span>
        </KV>
        <KV label="Previous hash" mono>
          <span className="hash">{e.prevHash}</span>
        </KV>
      </dl>
      <h3 className="sub-title">Data</h3>
      <pre className="json" aria-label="Entry data">
        {JSON.stringify(e.data, null, 2)}
      </pre>
    </article>
  );
}
