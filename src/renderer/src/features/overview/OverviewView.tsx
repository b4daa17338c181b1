/**
 * The landing screen once a host exists: each host with its capacity over time, the sandboxes that
 * run and how long they have left, what waits for a person, and how recent agent sessions ended.
 */
import { useEffect, useMemo } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { Badge, Section } from '../../components/ui.tsx';
import { formatBytes, formatMiB, formatRelative, formatTime, plural } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import { SESSION_STATUS_LABEL, SESSION_STATUS_TONE, sortSessions, useAgent } from '../../stores/agent.ts';
import { RISK_TONE, pendingApprovals, promptApprovals, useApprovals } from '../../stores/approvals.ts';
import { sampleNow, useCapacity } from '../../stores/capacity.ts';
import { READINESS_LABEL, hostTarget, readiness, useHosts } from '../../stores/hosts.ts';
import { LIVE_STATES, useSandboxes } from '../../stores/sandboxes.ts';
import { formatUsd } from '../agent/format.ts';
import { READINESS_TONE, VirtBadge } from '../hosts/badges.tsx';
import { openCreateDialog } from '../sandboxes/createDialog.ts';
import { StateBadge, TimeLeft } from '../sandboxes/badges.tsx';
import { SandboxRef } from '../sandboxes/SandboxRef.tsx';
import { CapacityChart } from './CapacityChart.tsx';

function HostCards() {
  const order = useHosts((s) => s.order);
  const byId = useHosts((s) => s.byId);
  const samples = useCapacity((s) => s.byHost);
  const errors = useCapacity((s) => s.errors);
  const sandboxes = useSandboxes((s) => s.byId);
  const live = useMemo(() => {
    const n: Record<string, number> = {};
    for (const sb of Object.values(sandboxes))
      if (LIVE_STATES.includes(sb.state)) n[sb.hostId] = (n[sb.hostId] ?? 0) + 1;
    return n;
  }, [sandboxes]);
  return (
    <ul className="overview-hosts" aria-label="Hosts">
      {order.map((id) => {
        const h = byId[id];
        if (!h) return null;
        const list = samples[id] ?? [];
        const last = list.at(-1);
        const r = readiness(h);
        return (
          <li key={id} className="overview-host" data-host={h.name}>
            <div className="overview-host-head">
              <span className={`dot dot-${READINESS_TONE[r]}`} aria-hidden="true" />
              <a className="overview-host-name" href={href('hosts', id)}>
                {h.name}
              </a>
              <VirtBadge virtType={h.lastCheck?.facts.virtType} />
              <span className="toolbar-spacer" />
              <Badge tone={READINESS_TONE[r]}>{READINESS_LABEL[r]}</Badge>
            </div>
            <div className="muted small mono truncate">{hostTarget(h)}</div>
            {(h.sameMachineAs?.length ?? 0) > 0 && (
              <div className="small warn-text">
                <Icon name="warn" size={12} /> The same machine as {h.sameMachineAs!.join(', ')}
              </div>
            )}
            <CapacityChart samples={list} label={`Capacity of ${h.name}`} />
            <dl className="overview-host-facts small">
              <div>
                <dt>Free memory</dt>
                <dd>{last ? formatMiB(last.freeMemoryMiB) : '—'}</dd>
              </div>
              <div>
                <dt>Free disk</dt>
                <dd>{last ? formatBytes(last.diskFreeBytes) : '—'}</dd>
              </div>
              <div>
                <dt>Sandboxes</dt>
                <dd>{live[id] ?? 0}</dd>
              </div>
            </dl>
            {errors[id] && (
              <p className="small fail-text" role="status">
                Could not measure it: {errors[id]}
              </p>
            )}
          </li>
        );
      })}
    </ul>
  );
}

function RunningSandboxes() {
  const byId = useSandboxes((s) => s.byId);
  const now = useNow(1000);
  const list = useMemo(
    () =>
      Object.values(byId)
        .filter((sb) => LIVE_STATES.includes(sb.state))
        .sort((a, b) => (a.expiresAt ?? '9').localeCompare(b.expiresAt ?? '9')),
    [byId],
  );
  if (!list.length)
    return (
      <p className="muted">
        No sandbox is running.{' '}
        <button type="button" className="btn btn-small" onClick={() => openCreateDialog()}>
          <Icon name="plus" size={12} /> New sandbox
        </button>
      </p>
    );
  return (
    <div className="table-wrap">
      <table className="table compact" aria-label="Running sandboxes">
        <thead>
          <tr>
            <th scope="col">Sandbox</th>
            <th scope="col">Host · source</th>
            <th scope="col">State</th>
            <th scope="col">Time left</th>
          </tr>
        </thead>
        <tbody>
          {list.map((sb) => (
            <tr key={sb.id} data-sandbox={sb.name}>
              <th scope="row">
                <a href={href('sandboxes', sb.id)}>{sb.name}</a>
              </th>
              <td className="small">
                {sb.hostName} · {sb.sourceName}
              </td>
              <td>
                <StateBadge sandbox={sb} />
              </td>
              <td className="nowrap" title={sb.expiresAt ? `Expires ${formatTime(sb.expiresAt)}` : undefined}>
                <TimeLeft sandbox={sb} now={now} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function PendingApprovals() {
  const byId = useApprovals((s) => s.byId);
  const pending = useMemo(() => pendingApprovals(byId), [byId]);
  const now = useNow();
  if (!pending.length) return <p className="muted">Nothing waits for a decision.</p>;
  return (
    <ul className="overview-list" aria-label="Pending approvals">
      {pending.slice(0, 8).map((a) => (
        <li key={a.id} data-approval={a.id}>
          <div className="overview-list-main">
            <Badge tone="accent">{a.kind}</Badge> <Badge tone={RISK_TONE[a.risk]}>{a.risk}</Badge>{' '}
            <span className="strong">{a.title}</span>
            <div className="muted small">
              {formatRelative(a.createdAt, now)}
              {a.sandboxId && (
                <>
                  {' · '}
                  <SandboxRef id={a.sandboxId} name={a.sandboxName} exists={a.sandboxExists} compact />
                </>
              )}
            </div>
          </div>
          <button type="button" className="btn btn-small" onClick={() => promptApprovals([a.id])}>
            Decide…
          </button>
        </li>
      ))}
      {pending.length > 8 && (
        <li className="muted small">
          and {pending.length - 8} more: <a href={href('audit', 'approvals')}>see them all</a>
        </li>
      )}
    </ul>
  );
}

function RecentSessions() {
  const byId = useAgent((s) => s.byId);
  const error = useAgent((s) => s.error);
  const list = useMemo(() => sortSessions(byId).slice(0, 6), [byId]);
  const now = useNow();
  if (error) return <p className="muted">Agent sessions could not be listed: {error.message}</p>;
  if (!list.length)
    return (
      <p className="muted">
        No agent session yet. <a href={href('agent')}>Start one</a> from a task in plain words.
      </p>
    );
  return (
    <ul className="overview-list" aria-label="Recent agent sessions">
      {list.map((s) => (
        <li key={s.id} data-session={s.id} data-status={s.status}>
          <div className="overview-list-main">
            <a href={href('agent', s.id)} className="strong">
              {s.title}
            </a>
            <div className="muted small">
              {formatRelative(s.updatedAt, now)} · {plural(s.steps, 'step')} · {formatUsd(s.usage.costUsd)}
              {s.source ? ` · ${s.source}` : ''}
            </div>
            {s.status === 'failed' && s.lastError && (
              <div className="small fail-text truncate" title={s.lastError.message}>
                {s.lastError.message}
              </div>
            )}
          </div>
          <Badge tone={SESSION_STATUS_TONE[s.status]}>{SESSION_STATUS_LABEL[s.status]}</Badge>
        </li>
      ))}
    </ul>
  );
}

export function OverviewView() {
  const hostCount = useHosts((s) => s.order.length);
  const running = useSandboxes(
    (s) => Object.values(s.byId).filter((sb) => LIVE_STATES.includes(sb.state)).length,
  );
  const pending = useApprovals((s) => Object.values(s.byId).filter((a) => a.status === 'pending').length);
  // Opening the overview measures the hosts at once (then once a minute while the window is visible).
  useEffect(() => sampleNow(), [hostCount]);
  return (
    <div className="page-pad overview">
      <div className="overview-grid">
        <Section
          title={`Hosts (${hostCount})`}
          actions={
            <a className="btn btn-small btn-ghost" href={href('hosts')}>
              All hosts
            </a>
          }
        >
          <HostCards />
        </Section>
        <Section
          title={`Running sandboxes (${running})`}
          actions={
            <a className="btn btn-small btn-ghost" href={href('sandboxes')}>
              All sandboxes
            </a>
          }
        >
          <RunningSandboxes />
        </Section>
        <Section title={`Pending approvals (${pending})`}>
          <PendingApprovals />
        </Section>
        <Section
          title="Recent agent sessions"
          actions={
            <a className="btn btn-small btn-ghost" href={href('agent')}>
              Agent
            </a>
          }
        >
          <RecentSessions />
        </Section>
      </div>
    </div>
  );
}
