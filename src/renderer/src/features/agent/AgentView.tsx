/**
 * Agent: the sessions on the left (live through agent.changed and the watched session), the selected
 * session or the new-session form on the right.
 * Routes: #/agent, #/agent/new, #/agent/<session id>.
 */
import { useEffect, useMemo } from 'react';
import type { Session } from '../../../../shared/contract/agent.ts';
import { Icon } from '../../components/Icon.tsx';
import { ReadinessChecklist } from '../../components/ReadinessChecklist.tsx';
import { EmptyState, ErrorBox, Spinner } from '../../components/ui.tsx';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import { href, navigate, redirect } from '../../lib/route.ts';
import { sortSessions, useAgent } from '../../stores/agent.ts';
import { useProviders } from '../../stores/providers.ts';
import { formatUsd } from './format.ts';
import { DemoCard } from './DemoCard.tsx';
import { NewSessionForm } from './NewSessionForm.tsx';
import { ModeChip, SessionStatusBadge, SessionView } from './SessionView.tsx';

function NewSessionButton({ small }: { small?: boolean }) {
  return (
    <a className={small ? 'btn btn-small btn-primary' : 'btn btn-primary'} href={href('agent', 'new')}>
      <Icon name="plus" size={small ? 12 : 14} /> New session
    </a>
  );
}

function SessionItem({ s, selected, now }: { s: Session; selected: boolean; now: number }) {
  return (
    <a
      className={selected ? 'host-item session-item active' : 'host-item session-item'}
      href={href('agent', s.id)}
      aria-current={selected ? 'true' : undefined}
      data-session={s.id}
      data-status={s.status}
    >
      <div className="session-item-title" title={s.title}>
        {s.title}
      </div>
      <div className="sb-item-line">
        <SessionStatusBadge status={s.status} />
        <ModeChip mode={s.mode} />
        <span className="mono truncate-inline" title={`Model: ${s.model}`}>
          {s.model}
        </span>
      </div>
      <div className="host-item-meta session-item-meta">
        <span title="Model turns">
          {s.steps}/{s.maxSteps} steps
        </span>
        <span title="Estimated cost">{formatUsd(s.usage.costUsd)}</span>
        <span title={`Updated ${formatTime(s.updatedAt)}`}>{formatRelative(s.updatedAt, now)}</span>
      </div>
    </a>
  );
}

function SessionList({
  list,
  selected,
  creating,
}: {
  list: Session[];
  selected: string | null;
  creating: boolean;
}) {
  const now = useNow(10_000);
  return (
    <div className="list-pane">
      <div className="list-pane-head">
        <span className="muted">{list.length === 1 ? '1 session' : `${list.length} sessions`}</span>
        {!creating && <NewSessionButton small />}
      </div>
      <ul className="host-list session-list" aria-label="Agent sessions">
        {creating && (
          <li>
            <span className="host-item session-item active new-item" aria-current="true">
              <Icon name="plus" size={12} /> New session
            </span>
          </li>
        )}
        {list.map((s) => (
          <li key={s.id}>
            <SessionItem s={s} selected={selected === s.id} now={now} />
          </li>
        ))}
      </ul>
    </div>
  );
}

function Empty() {
  const providers = useProviders((s) => s.list);
  const loaded = useProviders((s) => s.loaded);
  return (
    <div className="page-pad">
      <EmptyState icon="agent" title="No agent sessions" actions={<NewSessionButton />}>
        <p>
          Give an agent a task (“upgrade nginx and keep the config”, “find why the disk fills up”) and watch
          it work in a sandbox: every command it runs, every file it changes. Anything risky waits for your
          approval.
        </p>
        {loaded && !providers.length && (
          <p>
            First, <a href={href('settings', 'providers')}>add a model provider</a> in Settings → Providers.
          </p>
        )}
        <DemoCard />
        <h3 className="empty-sub">What to do now</h3>
        <ReadinessChecklist />
        <p className="muted small">
          An agent works in sandboxes, so a checked host with source VMs comes first; in read-only mode it can
          also just look around.
        </p>
      </EmptyState>
    </div>
  );
}

export function AgentView({ sub }: { sub: string[] }) {
  const loaded = useAgent((s) => s.loaded);
  const error = useAgent((s) => s.error);
  const byId = useAgent((s) => s.byId);
  const list = useMemo(() => sortSessions(byId), [byId]);
  const wanted = sub[0];
  const creating = wanted === 'new';
  const selected = creating ? null : wanted && byId[wanted] ? wanted : wanted ? null : (list[0]?.id ?? null);

  // #/agent lands on the newest session; an unknown id falls back to the list.
  useEffect(() => {
    if (!loaded) return;
    if (!wanted && list[0]) redirect('agent', list[0].id);
  }, [loaded, wanted, list]);

  if (!loaded)
    return (
      <div className="page-pad">
        <Spinner label="Loading agent sessions" />
      </div>
    );
  if (error && !list.length)
    return (
      <div className="page-pad">
        <ErrorBox error={error} title="The agent sessions could not be loaded" />
      </div>
    );
  if (!list.length && !creating && !wanted) return <Empty />;
  return (
    <div className="split agent-split">
      <SessionList list={list} selected={selected} creating={creating} />
      <div className="detail-pane agent-detail">
        {creating ? (
          <div className="host-detail new-session-pane">
            <h2 className="detail-title">New agent session</h2>
            <p className="muted section-help">
              The agent works through Fluid’s tools only: it clones VMs into sandboxes, works there, and asks
              you before anything risky.
            </p>
            <DemoCard />
            <NewSessionForm onCancel={() => (list[0] ? navigate('agent', list[0].id) : navigate('agent'))} />
          </div>
        ) : wanted && !selected ? (
          // Not in the list (yet): a session started elsewhere, or a mistyped address. The stream says.
          <SessionView key={wanted} sessionId={wanted} />
        ) : selected ? (
          <SessionView key={selected} sessionId={selected} />
        ) : null}
      </div>
    </div>
  );
}
