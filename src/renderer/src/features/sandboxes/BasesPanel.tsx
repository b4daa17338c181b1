/**
 * Base images: Fluid's cached copies of source VMs (what sandboxes are cloned from) and their warm
 * templates. Warm and Refresh run as tasks; the list reloads when one of them ends.
 */
import { useCallback, useMemo, useState } from 'react';
import type { Base } from '../../../../shared/contract/sandboxes.ts';
import type { Task } from '../../../../shared/contract/tasks.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, ErrorBox, Section, Spinner } from '../../components/ui.tsx';
import { formatBytes, formatRelative, formatTime, shortHash } from '../../lib/format.ts';
import { useBackendQuery, useNow } from '../../lib/hooks.ts';
import { rpc } from '../../stores/connection.ts';
import { useHosts } from '../../stores/hosts.ts';
import { upsertTask, useTasks } from '../../stores/tasks.ts';
import { toastError } from '../../stores/toasts.ts';

const BASE_TASKS = ['base.warm', 'base.refresh', 'template.build'];

const STATE_TONE = {
  building: 'info',
  ready: 'ok',
  failed: 'fail',
  retired: 'neutral',
  none: 'neutral',
} as const;

/** The running task working on this base (its warm-up, its refresh, or its template build). */
function taskFor(b: Base, tasks: Task[]): Task | null {
  const running = tasks.filter((t) => t.status === 'running');
  // The template build says what is happening; the warm-up task that waits for it only says "Starting".
  return (
    running.find((t) => t.kind === 'template.build' && t.target === b.id) ??
    running.find(
      (t) => t.kind !== 'template.build' && t.target === b.hostId && t.title.includes(b.sourceName),
    ) ??
    null
  );
}

export function BasesPanel({ hideWhenEmpty, selected }: { hideWhenEmpty?: boolean; selected?: string }) {
  const byId = useTasks((s) => s.byId);
  const relevant = useMemo(() => Object.values(byId).filter((t) => BASE_TASKS.includes(t.kind)), [byId]);
  // Reload whenever one of them starts or ends.
  const epoch = relevant
    .map((t) => `${t.id}:${t.status}`)
    .sort()
    .join(',');
  const bases = useBackendQuery((b, signal) => b.call('bases.list', {}, { signal }), [], [epoch]);
  const hosts = useHosts((s) => s.byId);
  const now = useNow();
  const [starting, setStarting] = useState<string | null>(null);
  // The base a link named (#/sandboxes/bases/<id>) comes into view once.
  const scrollTo = useCallback(
    (el: HTMLTableRowElement | null) => el?.scrollIntoView({ block: 'nearest' }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [selected],
  );

  async function act(b: Base, what: 'warm' | 'refresh') {
    setStarting(`${b.id}:${what}`);
    try {
      const t =
        what === 'warm'
          ? await rpc().call('bases.warm', { host: b.hostId, source: b.sourceName })
          : await rpc().call('bases.refresh', { host: b.hostId, source: b.sourceName });
      upsertTask(t);
    } catch (err) {
      toastError(err, what === 'warm' ? `Warming ${b.sourceName}` : `Refreshing ${b.sourceName}`);
    } finally {
      setStarting(null);
    }
  }

  const list = (bases.data ?? []).filter((b) => b.state !== 'retired');
  if (hideWhenEmpty && (!bases.data || !list.length)) return null;
  return (
    <Section
      title="Base images"
      actions={
        <button
          type="button"
          className="btn btn-small btn-ghost"
          aria-label="Reload base images"
          onClick={bases.reload}
          disabled={bases.loading}
        >
          <Icon name="refresh" size={12} />
        </button>
      }
    >
      <p className="muted small section-help">
        Fluid copies a source VM&rsquo;s disks once into a base; every sandbox of that source is a thin
        overlay on it. A <strong>warm template</strong> is the base booted once and saved with its memory, so
        new sandboxes restore in seconds instead of booting. <strong>Refresh</strong> takes a new copy when
        the source changed.
      </p>
      {bases.error ? (
        <ErrorBox error={bases.error} title="Could not list the base images" />
      ) : !bases.data ? (
        <Spinner label="Loading base images" />
      ) : !list.length ? (
        <p className="muted">No base images yet: the first sandbox of a source makes one.</p>
      ) : (
        <div className="table-wrap">
          <table className="table bases-table" aria-label="Base images">
            <thead>
              <tr>
                <th scope="col">Source</th>
                <th scope="col">Method</th>
                <th scope="col">Fingerprint</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Base</th>
                <th scope="col">Warm template</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((b) => {
                const task = taskFor(b, relevant);
                return (
                  <tr
                    key={b.id}
                    data-base={b.sourceName}
                    className={selected === b.id ? 'selected' : undefined}
                    aria-current={selected === b.id ? 'true' : undefined}
                    ref={selected === b.id ? scrollTo : undefined}
                  >
                    <th scope="row">
                      {b.sourceName}
                      <div className="muted small">
                        on {hosts[b.hostId]?.name ?? b.hostId} ·{' '}
                        <span title={formatTime(b.createdAt)}>{formatRelative(b.createdAt, now)}</span>
                      </div>
                    </th>
                    <td>
                      <Badge
                        title={
                          b.method === 'backup' ? 'libvirt backup of the running VM' : 'copied while shut off'
                        }
                      >
                        {b.method}
                      </Badge>
                    </td>
                    <td>
                      <code title={b.fingerprint}>{shortHash(b.fingerprint, 12)}</code>
                    </td>
                    <td className="num">{formatBytes(b.sizeBytes)}</td>
                    <td>
                      <Badge tone={STATE_TONE[b.state]}>{b.state}</Badge>
                    </td>
                    <td>
                      <Badge tone={STATE_TONE[b.templateState]}>{b.templateState}</Badge>
                      {b.templateError && <div className="small fail-text">{b.templateError}</div>}
                      {task && (
                        <div className="small muted base-task" aria-live="polite">
                          <span className="spinner small" aria-hidden="true" /> {task.message || task.title}
                        </div>
                      )}
                    </td>
                    <td className="base-actions">
                      <div className="btn-stack">
                        <button
                          type="button"
                          className="btn btn-small"
                          disabled={!!task || starting !== null || b.state !== 'ready'}
                          onClick={() => void act(b, 'warm')}
                        >
                          <Icon name="power" size={12} />{' '}
                          {b.templateState === 'ready' ? 'Rebuild template' : 'Warm template'}
                        </button>
                        <button
                          type="button"
                          className="btn btn-small"
                          disabled={!!task || starting !== null}
                          onClick={() => void act(b, 'refresh')}
                        >
                          <Icon name="refresh" size={12} /> Refresh
                        </button>
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}
