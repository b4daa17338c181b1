/**
 * The review of one change: what the agent changed (the diff), the playbook at that revision, the
 * verification report, what it would do to production (the check-mode preview with diffs), the
 * target's baseline and the bundle's hash — then Approve (the enrolled key, or an in-window
 * confirmation), Apply with the live log, and every apply of this change.
 */
import { useEffect, useMemo, useState } from 'react';
import type { Change, ChangeBundle, ChangeStatus } from '../../../../shared/contract/changes.ts';
import { KIND_ORDER, KIND_TITLE, type Diff } from '../../../../shared/contract/diff.ts';
import type { Verification } from '../../../../shared/contract/playbooks.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, Callout, ErrorBox, Section, Spinner } from '../../components/ui.tsx';
import { toErrorInfo } from '../../lib/errors.ts';
import { formatDuration, formatTime, plural } from '../../lib/format.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { toast } from '../../stores/toasts.ts';
import { DecisionButtons, useDecision } from '../approvals/Decision.tsx';
import { CHANGE_TONE, changeOf, detail, TextDiff, title } from '../sandboxes/tabs/ChangesTab.tsx';
import { ApplyLog, ApplyResult, APPLY_TONE } from './ApplyLog.tsx';

export const STATUS_TONE: Record<ChangeStatus, 'ok' | 'fail' | 'info' | 'warn' | 'neutral' | 'accent'> = {
  submitting: 'info',
  'submit-failed': 'fail',
  'awaiting-approval': 'accent',
  approved: 'ok',
  denied: 'fail',
  applying: 'info',
  applied: 'ok',
  'apply-failed': 'fail',
  void: 'warn',
};

/** Reload when this change, its approval or its applies move (in any door or process). */
function useChangeEvents(change: Change | null, reload: () => void): void {
  const generation = useConnection((s) => s.generation);
  const id = change?.id ?? null;
  const approvalId = change?.approval?.id ?? null;
  const playbookId = change?.playbook.id ?? null;
  useEffect(() => {
    if (!id) return;
    const b = rpc();
    const offs = [
      b.on('changes.changed', (e) => e.changeId === id && reload()),
      b.on('approvals.changed', (a) => a.id === approvalId && reload()),
      b.on('playbooks.changed', (e) => e.playbookId === playbookId && reload()),
    ];
    return () => offs.forEach((off) => off());
  }, [id, approvalId, playbookId, generation, reload]);
}

function DiffSection({ bundle }: { bundle: ChangeBundle }) {
  const d = bundle.diff;
  const q = useBackendQuery<Diff>(
    d ? (b) => b.call('diff.get', { sandbox: d.sandboxId, diff: d.diffId }) : null,
    [d?.diffId],
  );
  const [open, setOpen] = useState<Record<string, boolean>>({});
  if (!d) return <p className="muted">This change came from no stored diff.</p>;
  if (q.error) return <ErrorBox error={q.error} title="The diff cannot be read" />;
  if (!q.data) return <Spinner label="Loading the diff" />;
  const excluded = new Set(d.excluded);
  const items = q.data.items.filter((i) => !excluded.has(i.id));
  return (
    <div className="review-diff">
      <p className="muted small">
        Read from the disk of sandbox <strong>{d.sandboxName}</strong> on its host (diff{' '}
        <code>{d.diffId.slice(0, 8)}</code>, sha256 <code className="hash">{d.sha256.slice(0, 16)}…</code>):{' '}
        {plural(items.length, 'item')}
        {excluded.size > 0 && `, ${excluded.size} left out by a person`}.
      </p>
      {KIND_ORDER.map((kind) => {
        const group = items.filter((i) => i.kind === kind);
        if (!group.length) return null;
        return (
          <div key={kind} className="review-kind">
            <h4>
              {KIND_TITLE[kind]} <Badge>{group.length}</Badge>
            </h4>
            <ul className="review-items">
              {group.map((i) => {
                const body = 'content' in i && i.content?.kind === 'text' ? i.content.diff : null;
                return (
                  <li key={i.id} data-item={i.id}>
                    <Badge tone={CHANGE_TONE[changeOf(i)] ?? 'neutral'}>{changeOf(i)}</Badge>{' '}
                    <span className="mono">{title(i)}</span> <span className="muted small">{detail(i)}</span>
                    {body && (
                      <button
                        type="button"
                        className="btn btn-small btn-ghost"
                        aria-expanded={!!open[i.id]}
                        onClick={() => setOpen((o) => ({ ...o, [i.id]: !o[i.id] }))}
                      >
                        {open[i.id] ? 'Hide' : 'Show'} diff
                      </button>
                    )}
                    {body && open[i.id] && 'path' in i && <TextDiff path={i.path} diff={body} />}
                  </li>
                );
              })}
            </ul>
          </div>
        );
      })}
    </div>
  );
}

function VerificationSection({ change, bundle }: { change: Change; bundle: ChangeBundle }) {
  const q = useBackendQuery<Verification | null>(
    (b) => b.call('playbooks.verification', { playbook: bundle.playbook.id, id: bundle.verification.id }),
    [bundle.verification.id],
  );
  const v = q.data;
  return (
    <div data-testid="verification">
      {change.verification?.stale && (
        <Callout tone="warn" title="Stale">
          The playbook has a newer revision than {bundle.playbook.revision}: this change can no longer be
          approved or applied.
        </Callout>
      )}
      {q.error && <ErrorBox error={q.error} />}
      {!v && !q.error && <Spinner label="Loading the verification" />}
      {v && (
        <ol className="verify-steps">
          {v.steps.map((s) => (
            <li key={s.id} data-step={s.id} data-status={s.status}>
              <Badge tone={s.status === 'passed' ? 'ok' : s.status === 'failed' ? 'fail' : 'neutral'}>
                {s.status}
              </Badge>{' '}
              <strong>{s.title}</strong> <span className="muted small">{s.summary}</span>
              {s.durationMs !== null && (
                <span className="muted small"> · {formatDuration(s.durationMs)}</span>
              )}
              {s.warnings.map((w) => (
                <p key={w} className="small">
                  <Icon name="warn" size={12} /> {w}
                </p>
              ))}
              {s.log && (
                <details>
                  <summary className="small">Log</summary>
                  <pre className="apply-log small">{s.log}</pre>
                </details>
              )}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

function PreviewSection({ change }: { change: Change }) {
  const p = change.preview;
  const [open, setOpen] = useState<Record<number, boolean>>({});
  if (!p) return <p className="muted">No preview yet.</p>;
  return (
    <div className="review-preview">
      <p>
        <strong data-testid="preview-changed">{plural(p.changed, 'task')}</strong> would change{' '}
        <strong>{change.target.name}</strong> (check mode with --diff, {formatTime(p.takenAt)},{' '}
        {formatDuration(p.durationMs)}; nothing was changed there).
      </p>
      <ol className="preview-tasks">
        {p.tasks.map((t, n) => (
          <li key={n} data-testid="preview-task" data-changed={t.changed} data-status={t.status}>
            <Badge
              tone={
                t.changed ? 'accent' : t.status === 'ok' ? 'ok' : t.status === 'failed' ? 'warn' : 'neutral'
              }
            >
              {t.changed ? 'will change' : t.status}
            </Badge>{' '}
            {t.task}
            {t.diff && (
              <button
                type="button"
                className="btn btn-small btn-ghost"
                aria-expanded={!!open[n]}
                onClick={() => setOpen((o) => ({ ...o, [n]: !o[n] }))}
              >
                {open[n] ? 'Hide' : 'Show'} diff
              </button>
            )}
            {t.diff && open[n] && <pre className="preview-diff mono small">{t.diff}</pre>}
          </li>
        ))}
      </ol>
      {p.warnings.map((w) => (
        <p key={w} className="small">
          <Icon name="warn" size={12} /> {w}
        </p>
      ))}
      <details>
        <summary className="small">The preview’s log</summary>
        <pre className="apply-log small">{p.log}</pre>
      </details>
    </div>
  );
}

function Approval({ change, onDecided }: { change: Change; onDecided: () => void }) {
  const a = change.approval;
  const { busy, error, decide } = useDecision(a?.id ?? '');
  if (!a) return null;
  return (
    <div className="review-approval" data-testid="review-approval" data-approval={a.status}>
      <p>
        Approval{' '}
        <Badge tone={a.status === 'approved' ? 'ok' : a.status === 'pending' ? 'accent' : 'warn'}>
          {a.status}
        </Badge>
        {a.decidedBy && (
          <>
            {' '}
            by {a.decidedBy.door}:{a.decidedBy.id} ({a.decidedVia}) {formatTime(a.decidedAt)}
          </>
        )}
        {a.usableUntil && !a.usedBy && <> · usable once until {formatTime(a.usableUntil)}</>}
        {a.usedBy && <> · used by apply {a.usedBy.slice(0, 8)}</>}
      </p>
      {change.status === 'awaiting-approval' && (
        <div className="review-actions">
          <p className="muted small">
            Approving names exactly bundle <code className="hash">{change.sha256}</code>: any edit makes
            another bundle that needs its own approval. It is good for one apply.
          </p>
          <div className="btn-row">
            <DecisionButtons busy={busy} onDecide={(d) => void decide(d).then(onDecided)} />
          </div>
        </div>
      )}
      {error && <ErrorBox error={error} title="Not decided" />}
    </div>
  );
}

export function ReviewPage({ changeRef }: { changeRef: string }) {
  const q = useBackendQuery<Change>((b) => b.call('changes.get', { change: changeRef }), [changeRef]);
  const change = q.data;
  const bq = useBackendQuery<{ sha256: string; bundle: ChangeBundle } | null>(
    change?.sha256 ? (b) => b.call('changes.bundle', { change: change.id }) : null,
    [change?.id, change?.sha256],
  );
  const reload = q.reload;
  useChangeEvents(change ?? null, reload);
  const [applyId, setApplyId] = useState<string | null>(null);
  const [applying, setApplying] = useState(false);
  const bundle = bq.data?.bundle ?? null;
  const running = useMemo(
    () =>
      change?.applies.find((a) =>
        ['queued', 'waiting', 'checking', 'running', 'post-check'].includes(a.status),
      ),
    [change],
  );
  const live = applyId ?? running?.id ?? null;

  async function apply() {
    if (!change) return;
    setApplying(true);
    try {
      const r = await rpc().call('changes.apply', { change: change.id });
      setApplyId(r.apply.id);
    } catch (err) {
      const info = toErrorInfo(err);
      toast({ kind: 'error', title: 'Not applied', message: info.message, code: info.code });
    } finally {
      setApplying(false);
    }
  }

  if (q.error)
    return (
      <div className="page-pad">
        <ErrorBox error={q.error} title="No such change" />
      </div>
    );
  if (!change)
    return (
      <div className="page-pad">
        <Spinner label="Loading the change" />
      </div>
    );
  return (
    <div className="page-pad review" data-testid="review" data-change={change.id}>
      <p className="muted small">
        <a href={href('changes')}>Changes</a> / {change.target.name}
      </p>
      <h2 className="review-title">{change.title}</h2>
      <div className="review-status">
        <Badge tone={STATUS_TONE[change.status]}>
          <span data-testid="change-status">{change.status}</span>
        </Badge>{' '}
        <span data-testid="status-detail">{change.statusDetail}</span>
      </div>
      <dl className="kv review-facts">
        <dt>Bundle</dt>
        <dd className="mono" data-testid="bundle-sha">
          {change.sha256 ?? 'not sealed yet'}
        </dd>
        <dt>Target</dt>
        <dd>
          <a href={href('changes', 'targets', change.target.name)}>{change.target.name}</a>
          {bundle && (
            <span className="muted small">
              {' '}
              {bundle.target.user}@{bundle.target.address}:{bundle.target.port}
              {bundle.target.jump ? ` through ${bundle.target.jump.name}` : ''} · host key{' '}
              <code>{bundle.target.hostKeyFingerprint}</code>
            </span>
          )}
        </dd>
        <dt>Playbook</dt>
        <dd>
          {change.playbook.name} revision {change.playbook.revision} · sha256{' '}
          <code className="hash">{change.playbook.sha256}</code>
        </dd>
        <dt>From</dt>
        <dd>{change.sandbox ? `sandbox ${change.sandbox.name}` : '—'}</dd>
        <dt>Submitted</dt>
        <dd>
          {formatTime(change.createdAt)} by {change.createdBy.door}:{change.createdBy.id}
        </dd>
        {bundle && (
          <>
            <dt>Tools</dt>
            <dd>ansible-core {bundle.tools.ansibleCore}</dd>
          </>
        )}
      </dl>
      {change.error && <ErrorBox error={toErrorInfo(change.error)} title="The submission failed" />}
      {change.warnings.map((w) => (
        <Callout key={w} tone="warn">
          {w}
        </Callout>
      ))}

      <Approval change={change} onDecided={reload} />

      {change.status === 'approved' && !live && (
        <div className="review-actions">
          <button
            type="button"
            className="btn btn-primary"
            data-testid="review-apply"
            disabled={applying}
            onClick={() => void apply()}
          >
            <Icon name="play" size={14} /> {applying ? 'Starting…' : `Apply to ${change.target.name}`}
          </button>
          <p className="muted small">
            Fluid re-reads the target first and refuses if anything it fingerprinted moved since the review.
          </p>
        </div>
      )}
      {live && (
        <Section title="Apply">
          <ApplyLog key={live} applyId={live} onEnd={() => reload()} />
        </Section>
      )}

      <Section title="What the agent changed">
        {bundle ? <DiffSection bundle={bundle} /> : <Spinner label="Loading the bundle" />}
      </Section>
      <Section title={`The playbook at revision ${change.playbook.revision}`}>
        {bundle ? (
          <>
            <pre className="review-yaml mono small" data-testid="playbook-yaml">
              {bundle.playbook.yaml}
            </pre>
            {bundle.playbook.files.length > 0 && (
              <ul className="small">
                {bundle.playbook.files.map((f) => (
                  <li key={f.path}>
                    <code>{f.path}</code> · sha256 <code className="hash">{f.sha256.slice(0, 16)}…</code>
                  </li>
                ))}
              </ul>
            )}
            {bundle.vars.secrets.length > 0 && (
              <p className="small">
                Secrets by reference: {bundle.vars.secrets.map((s) => s.name).join(', ')} (values held by
                Fluid, never shown).
              </p>
            )}
          </>
        ) : (
          <Spinner label="Loading the playbook" />
        )}
      </Section>
      <Section title="Verification">
        {bundle ? <VerificationSection change={change} bundle={bundle} /> : <Spinner label="Loading" />}
      </Section>
      <Section title={`What it will do to ${change.target.name}`}>
        <PreviewSection change={change} />
      </Section>
      <Section title="Baseline of the target">
        {change.baseline ? (
          <div>
            <p>
              Fingerprint <code className="hash">{change.baseline.sha256}</code> taken{' '}
              {formatTime(change.baseline.takenAt)} over{' '}
              {Object.entries(change.baseline.counts)
                .filter(([, n]) => n)
                .map(([k, n]) => `${n} ${k}`)
                .join(', ')}
              . An apply is refused if any of it moved.
            </p>
            {change.baseline.unscoped.map((u) => (
              <p key={u} className="small">
                <Icon name="warn" size={12} /> Not fingerprinted: {u}
              </p>
            ))}
          </div>
        ) : (
          <p className="muted">Not taken yet.</p>
        )}
      </Section>
      {change.applies.length > 0 && (
        <Section title="Applies of this change">
          <ul className="apply-history">
            {change.applies.map((a) => (
              <li key={a.id} data-apply={a.id}>
                <Badge tone={APPLY_TONE[a.status]}>{a.status}</Badge> {formatTime(a.startedAt)} — {a.summary}
                {a.id !== live && (
                  <details>
                    <summary className="small">Details</summary>
                    <ApplyResult apply={a} />
                  </details>
                )}
              </li>
            ))}
          </ul>
        </Section>
      )}
    </div>
  );
}
