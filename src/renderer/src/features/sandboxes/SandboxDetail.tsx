/**
 * One sandbox: identity, lifetime, how it started and how long each phase took, egress, what went
 * wrong, and the work tabs (Terminal, Run, Files, Snapshots, Changes).
 */
import { lazy, Suspense, useState, type FormEvent, type ReactNode } from 'react';
import type { Sandbox } from '../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../components/Icon.tsx';
import { TaskProgress } from '../../components/TaskProgress.tsx';
import { Badge, Callout, ErrorBox, KV, Section, Spinner } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatDuration, formatRelative, formatTime, shortHash } from '../../lib/format.ts';
import { useNow, useWatchedTask } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import { rpc } from '../../stores/connection.ts';
import { BUSY_STATES, upsertSandbox } from '../../stores/sandboxes.ts';
import { latestTask, upsertTask, useTasks } from '../../stores/tasks.ts';
import { toastError } from '../../stores/toasts.ts';
import { DestroyModal, StopModal } from './SandboxModals.tsx';
import { EgressHealthNote, EgressPanel } from './EgressPanel.tsx';
import { StateBadge, TimeLeft, sizeText } from './badges.tsx';
import { TimingsChart } from './TimingsChart.tsx';
import { FilesTab } from './tabs/FilesTab.tsx';
import { RunTab } from './tabs/RunTab.tsx';
import { SnapshotsTab } from './tabs/SnapshotsTab.tsx';
import { ChangesTab } from './tabs/ChangesTab.tsx';

// xterm is most of the bundle: load it when a terminal is first opened.
const TerminalTab = lazy(() => import('./tabs/TerminalTab.tsx').then((m) => ({ default: m.TerminalTab })));
const ConsoleTab = lazy(() => import('./tabs/ConsoleTab.tsx').then((m) => ({ default: m.ConsoleTab })));

export type DetailTab = 'terminal' | 'run' | 'files' | 'snapshots' | 'changes' | 'console';

const TAB_LABEL: Record<DetailTab, { label: string; icon: string }> = {
  terminal: { label: 'Terminal', icon: 'terminal' },
  run: { label: 'Run', icon: 'run' },
  files: { label: 'Files', icon: 'file' },
  snapshots: { label: 'Snapshots', icon: 'camera' },
  changes: { label: 'Changes', icon: 'layers' },
  console: { label: 'Console', icon: 'monitor' },
};

async function startSandbox(sb: Sandbox): Promise<void> {
  try {
    upsertTask(await rpc().call('sandboxes.start', { sandbox: sb.id }));
  } catch (err) {
    toastError(err, `Starting ${sb.name}`);
  }
}

function ExtendForm({ sandbox }: { sandbox: Sandbox }) {
  const [minutes, setMinutes] = useState(String(sandbox.ttlMinutes ?? 60));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const n = Number(minutes);
    if (!/^\d+$/.test(minutes.trim()) || n < 1) {
      setError({ code: 'VALIDATION', message: 'Enter a whole number of minutes (at least 1).' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      upsertSandbox(await rpc().call('sandboxes.extend', { sandbox: sandbox.id, ttlMinutes: n }));
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="inline-form" onSubmit={(e) => void submit(e)} noValidate>
      <label className="field-label" htmlFor={`extend-${sandbox.id}`}>
        Keep it for
      </label>
      <div className="input-row">
        <input
          id={`extend-${sandbox.id}`}
          className="input input-num"
          inputMode="numeric"
          value={minutes}
          aria-invalid={error?.code === 'VALIDATION' ? true : undefined}
          onChange={(e) => setMinutes(e.target.value)}
        />
        <span className="unit">minutes from now</span>
        <button type="submit" className="btn" disabled={busy}>
          <Icon name="clock" size={12} /> {busy ? 'Extending…' : 'Extend'}
        </button>
      </div>
      {error && <ErrorBox error={error} title="The time to live was not changed" />}
    </form>
  );
}

function Tabs({ sandbox, tab, filesPath }: { sandbox: Sandbox; tab: DetailTab; filesPath?: string }) {
  // The terminal stays mounted once opened, so switching tabs keeps the shell session.
  const [terminalOpened, setTerminalOpened] = useState(tab === 'terminal');
  if (tab === 'terminal' && !terminalOpened) setTerminalOpened(true);
  const running = sandbox.state === 'running';
  const needsRunning = (body: ReactNode, what: string) =>
    running ? (
      body
    ) : (
      <p className="muted pad">
        {what} needs a running sandbox; this one is <strong>{sandbox.state}</strong>.
      </p>
    );
  return (
    <section className="panel tabs-panel" aria-label="Work in the sandbox">
      <div className="tabs" role="tablist" aria-label="Sandbox tools">
        {(Object.keys(TAB_LABEL) as DetailTab[]).map((t) => (
          <a
            key={t}
            role="tab"
            id={`tab-${t}`}
            aria-selected={tab === t}
            aria-controls={`panel-${t}`}
            className={tab === t ? 'tab active' : 'tab'}
            href={href('sandboxes', sandbox.id, t)}
          >
            <Icon name={TAB_LABEL[t].icon} size={14} /> {TAB_LABEL[t].label}
          </a>
        ))}
      </div>
      <div role="tabpanel" id="panel-terminal" aria-labelledby="tab-terminal" hidden={tab !== 'terminal'}>
        {running && terminalOpened ? (
          <Suspense fallback={<Spinner label="Loading the terminal" />}>
            <TerminalTab sandbox={sandbox} visible={tab === 'terminal'} />
          </Suspense>
        ) : (
          needsRunning(null, 'The terminal')
        )}
      </div>
      {tab === 'console' && (
        <div role="tabpanel" id="panel-console" aria-labelledby="tab-console">
          {/* The serial log exists from the first boot on, so it is readable while a creation boots. */}
          {sandbox.state === 'destroying' ? (
            <p className="muted pad">The sandbox is being destroyed.</p>
          ) : (
            <Suspense fallback={<Spinner label="Loading the console" />}>
              <ConsoleTab sandbox={sandbox} visible={tab === 'console'} />
            </Suspense>
          )}
        </div>
      )}
      {tab === 'run' && (
        <div role="tabpanel" id="panel-run" aria-labelledby="tab-run">
          {needsRunning(<RunTab sandbox={sandbox} />, 'Running commands')}
        </div>
      )}
      {tab === 'files' && (
        <div role="tabpanel" id="panel-files" aria-labelledby="tab-files">
          {needsRunning(<FilesTab sandbox={sandbox} path={filesPath} />, 'Reading and writing files')}
        </div>
      )}
      {tab === 'changes' && (
        <div role="tabpanel" id="panel-changes" aria-labelledby="tab-changes">
          {['running', 'stopped'].includes(sandbox.state) ? (
            <ChangesTab sandbox={sandbox} />
          ) : (
            <p className="muted pad">
              Changes need a running or stopped sandbox; this one is <strong>{sandbox.state}</strong>.
            </p>
          )}
        </div>
      )}
      {tab === 'snapshots' && (
        <div role="tabpanel" id="panel-snapshots" aria-labelledby="tab-snapshots">
          {['running', 'stopped'].includes(sandbox.state) ? (
            <SnapshotsTab sandbox={sandbox} />
          ) : (
            <p className="muted pad">
              Snapshots need a running or stopped sandbox; this one is <strong>{sandbox.state}</strong>.
            </p>
          )}
        </div>
      )}
    </section>
  );
}

export function SandboxDetail({
  sandbox: sb,
  tab,
  filesPath,
}: {
  sandbox: Sandbox;
  tab: DetailTab;
  /** The Files tab's place (#/sandboxes/<id>/files/<path>). */
  filesPath?: string;
}) {
  const [modal, setModal] = useState<'stop' | 'destroy' | null>(null);
  const now = useNow(1000);
  const startTask = useTasks((s) => latestTask(s.byId, 'sandbox.start', sb.id));
  const createTask = useTasks((s) => (sb.taskId ? (s.byId[sb.taskId] ?? null) : null));
  const following =
    sb.state === 'creating' ? sb.taskId : startTask?.status === 'running' ? startTask.id : null;
  const watched = useWatchedTask(following);
  const live = watched ?? (sb.state === 'creating' ? createTask : startTask);
  const busy = BUSY_STATES.includes(sb.state);
  const destroyed = sb.state === 'destroyed';
  const reason = sb.startPathReason;

  return (
    <article className="host-detail sandbox-detail" aria-labelledby="sandbox-title" data-state={sb.state}>
      <div className="detail-head">
        <div>
          <h2 id="sandbox-title" className="detail-title">
            {sb.name}
          </h2>
          <div className="detail-sub">
            <StateBadge sandbox={sb} />
            <span>
              on <a href={href('hosts', sb.hostId)}>{sb.hostName}</a>, cloned from{' '}
              <strong>{sb.sourceName}</strong>
            </span>
          </div>
        </div>
        {!destroyed && (
          <div className="detail-actions">
            {sb.state === 'stopped' && (
              <button type="button" className="btn btn-primary" onClick={() => void startSandbox(sb)}>
                <Icon name="play" size={14} /> Start
              </button>
            )}
            {sb.state === 'running' && (
              <button type="button" className="btn" onClick={() => setModal('stop')}>
                <Icon name="stop" size={14} /> Stop
              </button>
            )}
            <button
              type="button"
              className="btn btn-danger-ghost"
              disabled={sb.state === 'destroying'}
              onClick={() => setModal('destroy')}
            >
              <Icon name="trash" size={14} /> Destroy
            </button>
          </div>
        )}
      </div>

      {live && (live.status === 'running' || (sb.state === 'creating' && live.status !== 'succeeded')) && (
        <TaskProgress task={live} label={live.title} />
      )}
      {startTask?.status === 'failed' && sb.state === 'stopped' && startTask.error && (
        <ErrorBox error={startTask.error} title="The last start failed" />
      )}
      {sb.error && sb.state === 'failed' && (
        <ErrorBox error={sb.error} title="This sandbox failed">
          <p className="muted small">
            Fluid cleaned up what it had made on the host. Destroy it to take it off the list, or create a new
            one.
          </p>
        </ErrorBox>
      )}
      {!destroyed && sb.state !== 'failed' && <EgressHealthNote sandbox={sb} compact />}
      {destroyed && (
        <Callout tone="info" title="Destroyed">
          This sandbox and everything of it on {sb.hostName} is gone (since {formatTime(sb.updatedAt)}).
        </Callout>
      )}

      <div className="stats sandbox-stats">
        <div className="stat">
          <div className="stat-value mono small-value" data-testid="sandbox-ip">
            {sb.ip ?? '—'}
          </div>
          <div className="stat-label">Address</div>
        </div>
        <div className="stat">
          <div className="stat-value small-value">{sizeText(sb)}</div>
          <div className="stat-label">Size</div>
        </div>
        <div className="stat">
          <div className="stat-value small-value">
            <TimeLeft sandbox={sb} now={now} />
          </div>
          <div className="stat-label">Time left</div>
        </div>
        <div className="stat">
          <div className="stat-value small-value" data-testid="sandbox-start-path">
            {sb.startPath ? (
              <>
                {sb.startPath} · {formatDuration(sb.timings.total)}
              </>
            ) : busy ? (
              'starting…'
            ) : (
              '—'
            )}
          </div>
          <div className="stat-label">Start path</div>
        </div>
      </div>

      {!destroyed && sb.state !== 'failed' && <Tabs sandbox={sb} tab={tab} filesPath={filesPath} />}

      <div className="two-col">
        <Section title="Identity">
          <dl className="kv">
            <KV label="Address" mono>
              {sb.ip ?? '—'}
            </KV>
            <KV label="MAC" mono>
              {sb.mac ?? '—'}
            </KV>
            <KV label="Host key">
              {sb.hostKeyFingerprint ? (
                <span className="fp-inline">
                  <code data-testid="sandbox-hostkey">{sb.hostKeyFingerprint}</code>{' '}
                  <Badge tone="ok">pinned</Badge>
                </span>
              ) : (
                <span className="muted">not yet known</span>
              )}
            </KV>
            <KV label="Base">
              {sb.baseFingerprint ? (
                <code title={sb.baseFingerprint}>{shortHash(sb.baseFingerprint, 16)}</code>
              ) : (
                <span className="muted">—</span>
              )}
            </KV>
            <KV label="libvirt domain" mono>
              {sb.domainName}
            </KV>
            <KV label="Created">
              <span title={formatTime(sb.createdAt)}>{formatRelative(sb.createdAt, now)}</span> by{' '}
              {sb.session ? (
                <a href={href('agent', sb.session.id)} data-testid="sandbox-session" title={sb.session.id}>
                  agent session “{sb.session.title}”
                </a>
              ) : (
                <span className="mono">
                  {sb.createdBy.door}:{sb.createdBy.id}
                </span>
              )}
            </KV>
          </dl>
        </Section>
        <Section title="How it started">
          {sb.startPath ? (
            <p className="start-path-line">
              <Badge tone={sb.startPath === 'cold' ? 'info' : 'ok'}>{sb.startPath}</Badge>{' '}
              <strong>{formatDuration(sb.timings.total)}</strong>
              {reason && <span className="muted"> — {reason}</span>}
            </p>
          ) : (
            <p className="muted">{busy ? 'Not started yet.' : 'It never finished starting.'}</p>
          )}
          {sb.placement && (
            <p className="muted small" data-testid="sandbox-placement">
              {sb.placement.reason}
            </p>
          )}
          <TimingsChart timings={sb.timings} />
        </Section>
      </div>

      {!destroyed && sb.state !== 'failed' && (
        <div className="two-col">
          <Section title="Lifetime">
            <dl className="kv">
              <KV label="Time to live">{sb.ttlMinutes ? `${sb.ttlMinutes} min` : 'no limit'}</KV>
              <KV label="Expires">
                {sb.expiresAt ? (
                  <>
                    {formatTime(sb.expiresAt)} (<TimeLeft sandbox={sb} now={now} />)
                  </>
                ) : (
                  '—'
                )}
              </KV>
            </dl>
            {['creating', 'starting', 'running', 'stopping', 'stopped'].includes(sb.state) && (
              <ExtendForm sandbox={sb} />
            )}
          </Section>
          <Section title="Egress allowlist">
            <EgressPanel sandbox={sb} />
          </Section>
        </div>
      )}

      {modal === 'stop' && <StopModal sandbox={sb} onClose={() => setModal(null)} />}
      {modal === 'destroy' && <DestroyModal sandbox={sb} onClose={() => setModal(null)} />}
    </article>
  );
}
