/**
 * A sandbox named by id wherever something refers to one (an approval, an audit row): its name, its
 * id (a later sandbox may reuse the name), and whether it still exists. A sandbox not in the list
 * (destroyed, or made by another process) is looked up once.
 */
import { useEffect } from 'react';
import { create } from 'zustand';
import { Badge } from '../../components/ui.tsx';
import { href } from '../../lib/route.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { upsertSandbox, useSandboxes } from '../../stores/sandboxes.ts';

/** Ids the backend does not know (never existed here, or pruned). */
const useMissing = create<{ ids: Record<string, true>; asked: Record<string, true> }>(() => ({
  ids: {},
  asked: {},
}));

export function useSandboxLookup(id: string | null | undefined) {
  const sb = useSandboxes((s) => (id ? s.byId[id] : undefined));
  const missing = useMissing((s) => (id ? !!s.ids[id] : false));
  const generation = useConnection((s) => s.generation);
  useEffect(() => {
    if (!id || sb || useMissing.getState().asked[id]) return;
    useMissing.setState((s) => ({ asked: { ...s.asked, [id]: true } }));
    const forget = () =>
      useMissing.setState((s) => {
        const asked = { ...s.asked };
        delete asked[id];
        return { asked };
      });
    try {
      rpc()
        .call('sandboxes.get', { sandbox: id })
        .then(upsertSandbox, (err: unknown) => {
          // Not known: say so. Anything else (a dropped connection): ask again later.
          if ((err as { code?: string }).code === 'NOT_FOUND')
            useMissing.setState((s) => ({ ids: { ...s.ids, [id]: true } }));
          else forget();
        });
    } catch {
      forget();
    }
  }, [id, sb, generation]);
  return { sandbox: sb ?? null, missing };
}

export function SandboxRef({
  id,
  name,
  exists,
  compact,
}: {
  id: string;
  /** A name the referring record carries (shown while the sandbox is looked up, or when it is gone). */
  name?: string | null;
  /** Whether it still exists, when the referring record says (an approval does). */
  exists?: boolean | null;
  compact?: boolean;
}) {
  const { sandbox, missing } = useSandboxLookup(exists === false ? null : id);
  const shownName = sandbox?.name ?? name ?? null;
  const gone = exists === false || missing || sandbox?.state === 'destroyed';
  const shortId = id.length > 8 ? id.slice(0, 8) : id;
  return (
    <span
      className="sandbox-ref"
      data-sandbox-id={id}
      data-exists={gone ? 'false' : sandbox ? 'true' : 'unknown'}
    >
      {sandbox && !gone ? (
        <a href={href('sandboxes', id)}>{shownName}</a>
      ) : (
        <span className={gone ? 'gone-name' : undefined}>{shownName ?? 'sandbox'}</span>
      )}{' '}
      <code className="muted" title={id}>
        {compact ? shortId : id}
      </code>
      {gone && (
        <>
          {' '}
          <Badge
            tone="neutral"
            title="This id names no sandbox any more; a new one with the same name is another"
          >
            {sandbox ? 'destroyed' : 'no longer exists'}
          </Badge>
        </>
      )}
    </span>
  );
}
