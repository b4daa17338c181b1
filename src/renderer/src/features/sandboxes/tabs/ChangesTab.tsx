/**
 * What changed on the sandbox, read from its disk on the host: grouped by kind with counts, text
 * diffs with syntax highlighting, binary and sensitive markers, the noise filtered (and shown on
 * request), and a per-item include/exclude choice that playbook generation honours.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import {
  KIND_ORDER,
  KIND_TITLE,
  type Diff,
  type DiffItem,
  type DiffKind,
  type FileMeta,
} from '../../../../../shared/contract/diff.ts';
import type { Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../../components/Icon.tsx';
import { TaskProgress } from '../../../components/TaskProgress.tsx';
import { Badge, Callout, ErrorBox, Spinner } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatDuration, formatRelative, formatTime, plural } from '../../../lib/format.ts';
import { useBackendQuery, useNow } from '../../../lib/hooks.ts';
import { rpc, useConnection } from '../../../stores/connection.ts';
import { showTaskInView, upsertTask, useTasks } from '../../../stores/tasks.ts';
import { toastError } from '../../../stores/toasts.ts';
import { highlightLine, languageOf, parseUnified } from './highlight.ts';
import './changes.css';

type Side = string; // '' = baseline (from) / now (to); otherwise a snapshot id

export const CHANGE_TONE: Record<string, 'ok' | 'fail' | 'info' | 'warn' | 'neutral'> = {
  added: 'ok',
  installed: 'ok',
  enabled: 'ok',
  deleted: 'fail',
  removed: 'fail',
  disabled: 'warn',
  masked: 'warn',
  unmasked: 'info',
  modified: 'info',
  upgraded: 'info',
  downgraded: 'warn',
};

export function changeOf(i: DiffItem): string {
  return 'change' in i ? i.change : 'set';
}

function who(m: FileMeta | null): string {
  if (!m) return '';
  return `${m.user ?? m.uid}:${m.group ?? m.gid}`;
}

/** One line that says what the item is. */
export function title(i: DiffItem): string {
  switch (i.kind) {
    case 'package':
      return `${i.name}${i.arch ? ` (${i.arch})` : ''}`;
    case 'user':
    case 'group':
      return i.name;
    case 'unit-state':
      return i.unit;
    case 'sysctl':
    case 'kernel-module':
      return i.name;
    default:
      return i.path;
  }
}

export function detail(i: DiffItem): string {
  switch (i.kind) {
    case 'package':
      return i.change === 'installed'
        ? i.after!.version
        : i.change === 'removed'
          ? i.before!.version
          : `${i.before!.version} → ${i.after!.version}`;
    case 'user': {
      const u = i.after ?? i.before!;
      const parts = [`uid ${u.uid}`, `group ${u.group ?? u.gid}`, u.home, u.shell];
      if (u.groups.length) parts.push(`groups ${u.groups.join(', ')}`);
      if (i.passwordChanged) parts.push('password set (the value is never shown)');
      if (i.change === 'modified') parts.unshift(`changed: ${i.fields.join(', ')}`);
      return parts.join(' · ');
    }
    case 'group': {
      const g = i.after ?? i.before!;
      return [`gid ${g.gid}`, g.members.length ? `members ${g.members.join(', ')}` : 'no members'].join(
        ' · ',
      );
    }
    case 'unit-state':
      return i.target && i.target !== 'alias' ? `wanted by ${i.target}` : i.link;
    case 'sysctl':
      return `${i.before ?? '(unset)'} → ${i.after ?? '(unset)'} · ${i.file}`;
    case 'kernel-module':
      return i.file;
    default: {
      const m = i.after ?? i.before;
      const bits = [m ? `${m.type} ${m.mode} ${who(m)}` : ''];
      if (i.change === 'modified' && i.aspects.length) bits.unshift(i.aspects.join(', '));
      if (m?.type === 'symlink') bits.push(`→ ${m.target}`);
      if (i.kind === 'unit') bits.push(`${i.unitType}${i.dropIn ? ' drop-in' : ''}`);
      if (i.kind === 'cron' && i.user) bits.push(`crontab of ${i.user}`);
      if (i.package) bits.push(`package ${i.package}`);
      if (i.change === 'modified' && i.aspects.includes('mode')) bits.push(`was ${i.before!.mode}`);
      if (i.change === 'modified' && i.aspects.includes('owner')) bits.push(`was ${who(i.before)}`);
      return bits.filter(Boolean).join(' · ');
    }
  }
}

export function TextDiff({ path, diff }: { path: string; diff: string }) {
  const language = languageOf(path);
  const lines = useMemo(() => parseUnified(diff), [diff]);
  return (
    <div
      className="diff-view"
      role="region"
      aria-label={`Changes in ${path}`}
      data-language={language ?? 'text'}
    >
      <table className="diff-table">
        <tbody>
          {lines.map((l, n) =>
            l.kind === 'hunk' ? (
              <tr key={n} className="diff-hunk">
                <td colSpan={3}>{l.text}</td>
              </tr>
            ) : l.kind === 'note' ? (
              <tr key={n} className="diff-note">
                <td colSpan={3}>{l.text}</td>
              </tr>
            ) : (
              <tr key={n} className={`diff-line diff-${l.kind}`}>
                <td className="diff-num">{l.old ?? ''}</td>
                <td className="diff-num">{l.new ?? ''}</td>
                <td className="diff-code">
                  <span className="diff-mark" aria-hidden="true">
                    {l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : ' '}
                  </span>
                  <span className="sr-only">
                    {l.kind === 'add' ? 'added: ' : l.kind === 'del' ? 'removed: ' : ''}
                  </span>
                  <code
                    className="hljs"
                    // highlight.js escapes the text it highlights (highlightLine escapes it otherwise)
                    dangerouslySetInnerHTML={{ __html: highlightLine(l.text, language) }}
                  />
                </td>
              </tr>
            ),
          )}
        </tbody>
      </table>
    </div>
  );
}

function Body({ item }: { item: DiffItem }) {
  if (!('content' in item) || !item.content) {
    if (item.kind === 'cron' || item.kind === 'sudoers') return null;
    return null;
  }
  const c = item.content;
  if (c.kind === 'binary')
    return (
      <p className="diff-binary small">
        <Badge tone="warn">binary</Badge> {c.sizeBefore} → {c.sizeAfter} bytes · sha256{' '}
        <code>{item.before?.sha256?.slice(0, 12) ?? '—'}</code> →{' '}
        <code>{item.after?.sha256?.slice(0, 12) ?? '—'}</code>
      </p>
    );
  if (c.kind === 'hidden')
    return (
      <p className="diff-binary small">
        <Badge tone="warn">sensitive</Badge> {c.reason} ({c.sizeBefore} → {c.sizeAfter} bytes)
      </p>
    );
  return (
    <>
      <TextDiff path={item.path} diff={c.diff} />
      {c.truncated && (
        <p className="muted small">
          Cut at the size limit: {c.added} added and {c.removed} removed lines in all.
        </p>
      )}
    </>
  );
}

function ItemRow({
  item,
  included,
  onToggle,
  openByDefault,
}: {
  item: DiffItem;
  included: boolean;
  onToggle: (included: boolean) => void;
  openByDefault: boolean;
}) {
  const hasBody = 'content' in item && !!item.content;
  const [open, setOpen] = useState(openByDefault && hasBody);
  const change = changeOf(item);
  const label = title(item);
  return (
    <li
      className={included ? 'change-item' : 'change-item excluded'}
      data-item={item.id}
      data-kind={item.kind}
    >
      <div className="change-row">
        <label
          className="change-include"
          title={included ? 'Included in the change' : 'Left out of the change'}
        >
          <input
            type="checkbox"
            checked={included}
            onChange={(e) => onToggle(e.target.checked)}
            aria-label={`Include ${item.kind} ${label}`}
          />
        </label>
        <Badge tone={CHANGE_TONE[change] ?? 'neutral'}>{change}</Badge>
        <span className="change-title mono">{label}</span>
        {'content' in item && item.content?.kind === 'binary' && <Badge tone="warn">binary</Badge>}
        {'sensitive' in item && item.sensitive && <Badge tone="warn">sensitive</Badge>}
        {!included && <Badge tone="neutral">excluded</Badge>}
        <span className="change-detail muted small">{detail(item)}</span>
        {hasBody && (
          <button
            type="button"
            className="btn btn-small btn-ghost change-expand"
            aria-expanded={open}
            onClick={() => setOpen((o) => !o)}
          >
            {open ? 'Hide' : 'Show'} {item.content!.kind === 'text' ? 'diff' : 'details'}
          </button>
        )}
      </div>
      {open && <Body item={item} />}
    </li>
  );
}

function NoiseList({ diff }: { diff: Diff }) {
  const byRule = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const n of diff.noise ?? []) m.set(n.rule, [...(m.get(n.rule) ?? []), n.path]);
    return [...m.entries()].sort((a, b) => b[1].length - a[1].length);
  }, [diff.noise]);
  if (!diff.noise) return <Spinner label="Loading the filtered paths" />;
  return (
    <div className="noise-list" aria-label="Paths filtered as noise">
      {byRule.map(([rule, paths]) => (
        <details key={rule} className="noise-rule" data-rule={rule}>
          <summary>
            <strong>{rule}</strong> <Badge>{paths.length}</Badge>{' '}
            <span className="muted small">{diff.noiseRules[rule] ?? ''}</span>
          </summary>
          <ul className="mono small">
            {paths.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </details>
      ))}
    </div>
  );
}

export function ChangesTab({ sandbox }: { sandbox: Sandbox }) {
  const now = useNow();
  const [from, setFrom] = useState<Side>('');
  const [to, setTo] = useState<Side>('');
  const [showNoise, setShowNoise] = useState(false);
  const [taskId, setTaskId] = useState<string | null>(null);
  const [runError, setRunError] = useState<ErrorInfo | null>(null);
  // The person's choices as this window last saw them (for the diff they were seen with).
  const [choices, setChoices] = useState<{ diffId: string; excluded: Set<string> } | null>(null);
  const task = useTasks((st) => (taskId ? (st.byId[taskId] ?? null) : null));
  const generation = useConnection((s) => s.generation);

  const snapshots = useBackendQuery(
    (b, signal) => b.call('snapshots.list', { sandbox: sandbox.id }, { signal }),
    [sandbox.id],
  );
  const diff = useBackendQuery(
    async (b, signal) => {
      try {
        return await b.call('diff.get', { sandbox: sandbox.id, showNoise }, { signal });
      } catch (err) {
        if (toErrorInfo(err).code === 'NOT_FOUND') return null;
        throw err;
      }
    },
    [sandbox.id, showNoise],
  );
  const d = diff.data ?? null;
  const excl = useMemo(
    () => (choices && d && choices.diffId === d.id ? choices.excluded : new Set(d?.excluded ?? [])),
    [choices, d],
  );
  const setExcluded = (ids: Iterable<string>) => d && setChoices({ diffId: d.id, excluded: new Set(ids) });

  // Another door (the CLI, another window) stored a diff or changed what is included.
  useEffect(() => {
    let off = () => {};
    try {
      off = rpc().on('diff.changed', (e) => {
        if (e.sandboxId !== sandbox.id) return;
        if (e.diffId) diff.reload();
        else setExcluded(e.excluded);
      });
    } catch {
      /* not connected: the generation change re-subscribes */
    }
    return off;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sandbox.id, generation]);

  /** Start a diff (a task), follow it to its end, then show the new diff or say why there is none. */
  async function read() {
    let unshow = () => {};
    try {
      const t = await rpc().call('diff.run', {
        sandbox: sandbox.id,
        from: from || undefined,
        to: to || undefined,
      });
      setRunError(null);
      upsertTask(t);
      unshow = showTaskInView(t.id);
      setTaskId(t.id);
      let last = t;
      for await (const x of rpc().stream('tasks.watch', { id: t.id })) {
        upsertTask(x);
        last = x;
      }
      if (last.status === 'succeeded') diff.reload();
      else setRunError(last.error ?? { code: 'CANCELLED', message: `The diff ${last.status}.` });
    } catch (err) {
      setRunError(toErrorInfo(err));
    } finally {
      setTaskId(null);
      unshow();
    }
  }

  // The first visit reads the changes once (a click reads them again).
  const autoRead = useRef(false);
  useEffect(() => {
    if (!autoRead.current && diff.data === null && !diff.loading && !diff.error) {
      autoRead.current = true;
      void read();
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [diff.data, diff.loading, diff.error]);

  async function toggle(ids: string[], include: boolean) {
    const before = excl;
    const next = new Set(excl);
    for (const id of ids) {
      if (include) next.delete(id);
      else next.add(id);
    }
    setExcluded(next);
    try {
      const r = await rpc().call('diff.select', { sandbox: sandbox.id, items: ids, included: include });
      setExcluded(r.excluded);
    } catch (err) {
      setExcluded(before);
      toastError(err, include ? 'Including the change' : 'Excluding the change');
    }
  }

  const groups = useMemo(() => {
    const m = new Map<DiffKind, DiffItem[]>();
    for (const i of d?.items ?? []) m.set(i.kind, [...(m.get(i.kind) ?? []), i]);
    return KIND_ORDER.filter((k) => m.has(k)).map((k) => [k, m.get(k)!] as const);
  }, [d]);
  const includedCount = (d?.items ?? []).filter((i) => !excl.has(i.id)).length;
  const side = (s: Diff['from']) => (s.kind === 'snapshot' ? `snapshot ${s.name}` : s.kind);
  const running = task?.status === 'running';

  return (
    <div className="changes-tab">
      <div className="changes-toolbar">
        <label className="field-inline">
          From{' '}
          <select
            className="input"
            value={from}
            onChange={(e) => setFrom(e.target.value)}
            aria-label="Compare from"
          >
            <option value="">baseline (as Fluid handed it over)</option>
            {(snapshots.data ?? []).map((s) => (
              <option key={s.id} value={s.id}>
                snapshot {s.name}
              </option>
            ))}
          </select>
        </label>
        <label className="field-inline">
          to{' '}
          <select
            className="input"
            value={to}
            onChange={(e) => setTo(e.target.value)}
            aria-label="Compare to"
          >
            <option value="">now</option>
            {(snapshots.data ?? []).map((s) => (
              <option key={s.id} value={s.id}>
                snapshot {s.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="btn btn-primary" disabled={running} onClick={() => void read()}>
          <Icon name="refresh" size={12} /> {running ? 'Reading…' : d ? 'Read again' : 'Read changes'}
        </button>
      </div>

      {running && task && <TaskProgress task={task} label="Reading the disk on the host" />}
      {runError && <ErrorBox error={runError} title="The changes could not be read" />}
      {diff.error && <ErrorBox error={diff.error} title="Could not load the changes" />}

      {!d ? (
        diff.loading || running ? (
          <Spinner label="Loading the changes" />
        ) : (
          <p className="muted pad">No changes read yet.</p>
        )
      ) : (
        <>
          <div className="changes-summary" data-testid="changes-summary">
            <p>
              <strong>
                {plural(d.counts.items, 'change')} from {side(d.from)} to {side(d.to)}
              </strong>{' '}
              ({includedCount} included) · {plural(d.counts.noise, 'path')} filtered as noise ·{' '}
              <span title={formatTime(d.createdAt)}>read {formatRelative(d.createdAt, now)}</span> in{' '}
              {formatDuration(d.timings.total)}
            </p>
            <p className="muted small">
              Read on the host from the disk, never through the guest (
              {d.method === 'fast' ? 'blocks written since the baseline' : 'every file compared'};{' '}
              {d.consistency.detail}).
            </p>
            <ul className="changes-counts" aria-label="Changes by kind">
              {groups.map(([k, items]) => (
                <li key={k}>
                  <a
                    href={`#changes-${k}`}
                    onClick={(e) => {
                      e.preventDefault();
                      document.getElementById(`changes-${k}`)?.scrollIntoView({ block: 'start' });
                    }}
                  >
                    {KIND_TITLE[k]} <Badge>{items.length}</Badge>
                  </a>
                </li>
              ))}
            </ul>
          </div>
          {d.warnings.map((w) => (
            <Callout key={w} tone="warn" title="Note">
              {w}
            </Callout>
          ))}
          {!d.items.length && <p className="muted pad">Nothing changed.</p>}
          {groups.map(([kind, items]) => {
            const allIn = items.every((i) => !excl.has(i.id));
            return (
              <section
                key={kind}
                className="change-group"
                aria-labelledby={`changes-${kind}`}
                data-kind={kind}
              >
                <h3 id={`changes-${kind}`} className="change-group-title">
                  <label className="change-include">
                    <input
                      type="checkbox"
                      checked={allIn}
                      onChange={(e) =>
                        void toggle(
                          items.map((i) => i.id),
                          e.target.checked,
                        )
                      }
                      aria-label={`Include all ${KIND_TITLE[kind].toLowerCase()}`}
                    />
                  </label>
                  {KIND_TITLE[kind]} <Badge>{items.length}</Badge>
                </h3>
                <ul className="change-list">
                  {items.map((i) => (
                    <ItemRow
                      key={i.id}
                      item={i}
                      included={!excl.has(i.id)}
                      onToggle={(inc) => void toggle([i.id], inc)}
                      openByDefault={d.items.length <= 30}
                    />
                  ))}
                </ul>
              </section>
            );
          })}
          <div className="noise-toggle">
            <button
              type="button"
              className="btn btn-small"
              aria-expanded={showNoise}
              onClick={() => setShowNoise((s) => !s)}
              disabled={!d.counts.noise}
            >
              {showNoise ? 'Hide' : 'Show'} the {plural(d.counts.noise, 'path')} filtered as noise
            </button>
            <span className="muted small">
              {Object.entries(d.counts.noiseByRule)
                .map(([r, n]) => `${r} ${n}`)
                .join(' · ')}
            </span>
          </div>
          {showNoise && <NoiseList diff={d} />}
        </>
      )}
    </div>
  );
}
