/**
 * Sandboxes: the list on the left (live through sandboxes.changed), the selected sandbox on the right,
 * "New sandbox" as a dialog, and the base images a sandbox is cloned from.
 * Routes: #/sandboxes, #/sandboxes/<id>[/<tab>], #/sandboxes/bases.
 */
import { useEffect, useMemo } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { EmptyState, Spinner } from '../../components/ui.tsx';
import { ReadinessChecklist } from '../../components/ReadinessChecklist.tsx';
import { useNow } from '../../lib/hooks.ts';
import { href, redirect } from '../../lib/route.ts';
import { readiness, useHosts } from '../../stores/hosts.ts';
import { sortSandboxes, useSandboxes } from '../../stores/sandboxes.ts';
import { BasesPanel } from './BasesPanel.tsx';
import { openCreateDialog } from './createDialog.ts';
import { SandboxDetail, type DetailTab } from './SandboxDetail.tsx';
import { StateBadge, TimeLeft, sizeText, startPathText } from './badges.tsx';

const TABS: DetailTab[] = ['terminal', 'run', 'files', 'snapshots', 'changes', 'console'];

function NewSandboxButton({ small }: { small?: boolean }) {
  return (
    <button
      type="button"
      className={small ? 'btn btn-small btn-primary' : 'btn btn-primary'}
      onClick={() => openCreateDialog()}
    >
      <Icon name="plus" size={small ? 12 : 14} /> New sandbox
    </button>
  );
}

function SandboxList({ selected, bases }: { selected: string | null; bases: boolean }) {
  const byId = useSandboxes((s) => s.byId);
  const list = useMemo(() => sortSandboxes(byId, selected), [byId, selected]);
  const now = useNow(1000);
  return (
    <div className="list-pane">
      <div className="list-pane-head">
        <span className="muted">{list.length === 1 ? '1 sandbox' : `${list.length} sandboxes`}</span>
        <NewSandboxButton small />
      </div>
      <ul className="host-list sandbox-list" aria-label="Sandboxes">
        {list.map((sb) => {
          const path = startPathText(sb);
          return (
            <li key={sb.id}>
              <a
                className={selected === sb.id ? 'host-item active' : 'host-item'}
                href={href('sandboxes', sb.id)}
                aria-current={selected === sb.id ? 'true' : undefined}
                data-sandbox={sb.name}
                data-state={sb.state}
              >
                <div className="host-item-top">
                  <span className="host-item-name">{sb.name}</span>
                  <StateBadge sandbox={sb} />
                </div>
                <div className="sb-item-line">
                  <span>{sb.hostName}</span>
                  <span className="sep">·</span>
                  <span className="truncate-inline" title={`Source: ${sb.sourceName}`}>
                    {sb.sourceName}
                  </span>
                </div>
                <div className="sb-item-line mono">
                  <span>{sb.ip ?? 'no address yet'}</span>
                  <span className="sep">·</span>
                  <span>{sizeText(sb)}</span>
                </div>
                <div className="host-item-meta sb-item-meta">
                  <span title="Start path and total time" data-testid="start-path">
                    {path ?? (sb.state === 'failed' ? 'failed' : '—')}
                  </span>
                  <span title="Time left">
                    <Icon name="clock" size={11} /> <TimeLeft sandbox={sb} now={now} />
                  </span>
                </div>
              </a>
            </li>
          );
        })}
      </ul>
      <div className="list-pane-foot">
        <a
          className={bases ? 'host-item active list-link' : 'host-item list-link'}
          href={href('sandboxes', 'bases')}
          aria-current={bases ? 'true' : undefined}
        >
          <Icon name="layers" size={14} /> Base images
        </a>
      </div>
    </div>
  );
}

function Empty() {
  const byId = useHosts((s) => s.byId);
  const anyReady = Object.values(byId).some((h) => ['ready', 'warnings'].includes(readiness(h)));
  return (
    <div className="page-pad">
      <EmptyState
        icon="box"
        title="No sandboxes"
        actions={
          <button type="button" className="btn btn-primary" onClick={() => openCreateDialog()}>
            <Icon name="plus" size={14} /> Create a sandbox from a source VM
          </button>
        }
      >
        <p>
          A sandbox is a disposable clone of one of your VMs: same disks, fresh identity, on an isolated
          network with no route out. An agent works there, never on the original, and a sandbox can be thrown
          away at any time.
        </p>
        {!anyReady && (
          <>
            <h3 className="empty-sub">What to do now</h3>
            <ReadinessChecklist />
          </>
        )}
      </EmptyState>
      <div className="empty-bases">
        <BasesPanel hideWhenEmpty />
      </div>
    </div>
  );
}

export function SandboxesView({ sub }: { sub: string[] }) {
  const loaded = useSandboxes((s) => s.loaded);
  const byId = useSandboxes((s) => s.byId);
  const wanted = sub[0];
  const bases = wanted === 'bases';
  const selected = useMemo(() => {
    if (bases) return null;
    if (wanted && byId[wanted]) return wanted;
    if (wanted) return Object.values(byId).find((s) => s.name === wanted)?.id ?? null;
    return sortSandboxes(byId)[0]?.id ?? null;
  }, [wanted, byId, bases]);
  const tab: DetailTab = TABS.includes(sub[1] as DetailTab) ? (sub[1] as DetailTab) : 'terminal';
  const count = useMemo(() => sortSandboxes(byId, selected).length, [byId, selected]);

  // A sandbox that is gone (dropped after a reconnection) falls back to the list.
  useEffect(() => {
    if (loaded && wanted && !bases && !selected) redirect('sandboxes');
  }, [loaded, wanted, bases, selected]);

  let content;
  if (!loaded)
    content = (
      <div className="page-pad">
        <Spinner label="Loading sandboxes" />
      </div>
    );
  else if (!count && !bases) content = <Empty />;
  else
    content = (
      <div className="split">
        <SandboxList selected={selected} bases={bases} />
        <div className="detail-pane">
          {bases ? (
            <div className="host-detail">
              <BasesPanel selected={sub[1]} />
            </div>
          ) : (
            selected &&
            byId[selected] && (
              <SandboxDetail
                key={selected}
                sandbox={byId[selected]}
                tab={tab}
                filesPath={tab === 'files' ? sub[2] : undefined}
              />
            )
          )}
        </div>
      </div>
    );
  // The New sandbox dialog is the shell's (CreateSandboxHost): it opens from any page.
  return content;
}
