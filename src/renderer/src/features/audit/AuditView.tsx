/**
 * The audit log: newest first, paged, filterable by action, live. Verify the chain, export it as
 * JSON lines, or review an exported file offline.
 */
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type { AuditEntry, AuditVerify } from '../../../../shared/contract/audit.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, EmptyState, ErrorBox, Spinner } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatTime, plural, shortHash } from '../../lib/format.ts';
import { href, navigate } from '../../lib/route.ts';
import { loadOlderAudit, setAuditFilter, useAudit } from '../../stores/audit.ts';
import { rpc } from '../../stores/connection.ts';
import { useHosts } from '../../stores/hosts.ts';
import { useSandboxes } from '../../stores/sandboxes.ts';
import { toast, toastError } from '../../stores/toasts.ts';
import { ApprovalsList } from '../approvals/ApprovalsList.tsx';
import { pendingApprovals, useApprovals } from '../../stores/approvals.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { useAgent } from '../../stores/agent.ts';
import { ActorName, AuditDetail } from './AuditDetail.tsx';
import { auditRefs } from './refs.ts';
import { reviewRows, type Review } from './review.ts';

/** Audit has two views: the hash-chained log, and the approval requests with their decisions. */
function AuditTabs({ current }: { current: 'log' | 'approvals' }) {
  const byId = useApprovals((s) => s.byId);
  const pending = useMemo(() => pendingApprovals(byId).length, [byId]);
  return (
    <nav className="tabs page-tabs" aria-label="Audit views">
      <a
        className={current === 'log' ? 'tab active' : 'tab'}
        href={href('audit')}
        aria-current={current === 'log' ? 'page' : undefined}
      >
        <Icon name="list" size={14} /> Log
      </a>
      <a
        className={current === 'approvals' ? 'tab active' : 'tab'}
        href={href('audit', 'approvals')}
        aria-current={current === 'approvals' ? 'page' : undefined}
      >
        <Icon name="bell" size={14} /> Approvals
        {pending > 0 && <Badge tone="info">{pending} pending</Badge>}
      </a>
    </nav>
  );
}

const ROW_KINDS = new Set(['content', 'chain', 'gap', 'malformed']);

const COPY_TONE = {
  ok: 'ok',
  behind: 'info',
  unused: 'neutral',
  unreachable: 'warn',
  disagrees: 'fail',
  missing: 'fail',
} as const;

/** The signed checkpoint, the key's fingerprint, and each copy of the checkpoints (file, hosts). */
function CheckpointStatus({ result }: { result: AuditVerify }) {
  const c = result.checkpoint;
  const key = result.signingKey;
  return (
    <div className="verify-checkpoint" data-testid="verify-checkpoint">
      {c ? (
        <p>
          Signed checkpoint <span className="mono">#{c.n}</span> covers entries 1–{c.seq}
          {result.uncovered > 0 && (
            <> ({plural(result.uncovered, 'newer entry', 'newer entries')} not signed yet)</>
          )}{' '}
          <Badge tone={c.signature === 'valid' && c.matchesChain ? 'ok' : 'fail'}>
            {c.signature !== 'valid'
              ? `signature ${c.signature}`
              : c.matchesChain
                ? 'signature valid'
                : 'does not match the log'}
          </Badge>
        </p>
      ) : (
        result.count > 0 && <p className="muted">No signed checkpoint covers this log.</p>
      )}
      {key?.fingerprint && (
        <p className="muted">
          Signing key <code className="hash">{key.fingerprint}</code>
        </p>
      )}
      {key?.problem && <p>{key.problem}</p>}
      {result.copies.length > 0 && (
        <ul className="problems" aria-label="Copies of the checkpoints">
          {result.copies.map((k) => (
            <li key={`${k.kind}:${k.name}`} data-copy={k.kind === 'file' ? 'file' : `host:${k.name}`}>
              <Badge tone={COPY_TONE[k.status]}>{k.status}</Badge>{' '}
              {k.kind === 'file' ? 'Checkpoint file' : `Host ${k.name}`}
              {k.latest && <span className="mono"> at #{k.latest.n}</span>}{' '}
              <span className="muted">— {k.detail}</span>
            </li>
          ))}
        </ul>
      )}
      {result.notes.map((n) => (
        <p key={n} className="muted small">
          {n}
        </p>
      ))}
    </div>
  );
}

export function VerifyResult({ result, label }: { result: AuditVerify; label: string }) {
  if (result.ok)
    return (
      <div className="callout callout-ok" role="status" data-testid="verify-result" data-ok="true">
        <Icon name="shield" size={16} />
        <div className="callout-body">
          <div className="callout-title">
            {label}: intact, {plural(result.count, 'entry', 'entries')}
          </div>
          <p className="muted">
            Head hash <code className="hash">{result.headHash}</code>
          </p>
          <CheckpointStatus result={result} />
        </div>
      </div>
    );
  return (
    <div className="callout callout-fail" role="alert" data-testid="verify-result" data-ok="false">
      <Icon name="x" size={16} />
      <div className="callout-body">
        <div className="callout-title">
          {label}: {plural(result.problems.length, 'problem')} in {plural(result.count, 'entry', 'entries')}
        </div>
        <ul className="problems">
          {result.problems.map((p, i) => (
            <li key={i}>
              {ROW_KINDS.has(p.kind) && (
                <span className="mono">{p.seq < 0 ? `line ${-p.seq}` : `row ${p.seq}`}</span>
              )}{' '}
              <Badge tone="fail">{p.kind}</Badge> {p.message}
            </li>
          ))}
        </ul>
        <CheckpointStatus result={result} />
      </div>
    </div>
  );
}

function download(name: string, content: string) {
  const url = URL.createObjectURL(new Blob([content], { type: 'application/x-ndjson' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Toolbar() {
  const action = useAudit((s) => s.action);
  const actions = useAudit((s) => s.actions);
  const [verify, setVerify] = useState<AuditVerify | null>(null);
  const [review, setReview] = useState<{ name: string; result: AuditVerify; content: string } | null>(null);
  const [reviewError, setReviewError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState<'verify' | 'export' | 'review' | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const filterId = useId();

  async function runVerify() {
    setBusy('verify');
    try {
      setVerify(await rpc().call('audit.verify', {}));
    } catch (err) {
      toastError(err, 'Verifying the audit chain');
    } finally {
      setBusy(null);
    }
  }
  async function runExport() {
    setBusy('export');
    try {
      const r = await rpc().call('audit.export', {});
      const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
      download(`fluid-audit-${stamp}.jsonl`, r.content);
      toast({
        kind: 'success',
        title: 'Audit log exported',
        message: `${plural(r.count, 'entry', 'entries')}, head ${shortHash(r.headHash, 16)}.`,
      });
    } catch (err) {
      toastError(err, 'Exporting the audit log');
    } finally {
      setBusy(null);
    }
  }
  async function runReview(file: File) {
    setBusy('review');
    setReview(null);
    setReviewError(null);
    try {
      const content = await file.text();
      setReview({ name: file.name, content, result: await rpc().call('audit.verifyExport', { content }) });
    } catch (err) {
      setReviewError(toErrorInfo(err));
    } finally {
      setBusy(null);
      if (fileRef.current) fileRef.current.value = '';
    }
  }

  return (
    <div className="audit-tools">
      <div className="toolbar">
        <label className="toolbar-label" htmlFor={filterId}>
          Action
        </label>
        <select
          id={filterId}
          className="input select"
          value={action}
          onChange={(e) => {
            setAuditFilter(e.target.value);
            navigate('audit');
          }}
        >
          <option value="">All actions</option>
          {actions.map((a) => (
            <option key={a} value={a}>
              {a}
            </option>
          ))}
        </select>
        <span className="toolbar-spacer" />
        <button type="button" className="btn" onClick={() => void runVerify()} disabled={busy !== null}>
          <Icon name="shield" size={14} /> {busy === 'verify' ? 'Verifying…' : 'Verify chain'}
        </button>
        <button type="button" className="btn" onClick={() => void runExport()} disabled={busy !== null}>
          <Icon name="download" size={14} /> Export
        </button>
        <label className={busy ? 'btn disabled' : 'btn'}>
          <Icon name="upload" size={14} /> {busy === 'review' ? 'Reviewing…' : 'Review an exported file'}
          <input
            ref={fileRef}
            type="file"
            accept=".jsonl,.ndjson,application/x-ndjson,application/json,text/plain"
            className="visually-hidden-input"
            aria-label="Review an exported audit file"
            disabled={busy !== null}
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void runReview(f);
            }}
          />
        </label>
      </div>
      {verify && <VerifyResult result={verify} label="This log" />}
      {review && (
        <>
          <VerifyResult result={review.result} label={`Exported file ${review.name}`} />
          <ReviewTable name={review.name} review={reviewRows(review.content, review.result)} />
        </>
      )}
      {reviewError && <ErrorBox error={reviewError} title="Could not review the file" />}
    </div>
  );
}

/** Targets are ids: the name of what they name where Fluid knows it, with the id beside it. */
function TargetName({ entry }: { entry: AuditEntry }) {
  const refs = auditRefs(entry);
  const target = entry.target;
  const host = useHosts((s) => (target ? s.byId[target] : undefined));
  const sandbox = useSandboxes((s) => (target ? s.byId[target] : undefined));
  const approval = useApprovals((s) => (target ? s.byId[target] : undefined));
  const session = useAgent((s) => (target ? s.byId[target] : undefined));
  if (!target) return <span className="muted">—</span>;
  const short = (
    <code className="muted target-id">{target.length > 12 ? `${target.slice(0, 8)}…` : target}</code>
  );
  if (host) return <span>{host.name}</span>;
  if (sandbox || refs.sandbox === target)
    return (
      <span title={target}>
        {sandbox ? sandbox.name : 'sandbox'} {short}
      </span>
    );
  if (approval)
    return (
      <span title={target}>
        {approval.kind}: {approval.title} {short}
      </span>
    );
  if (session)
    return (
      <span title={target}>
        {session.title} {short}
      </span>
    );
  return <span className="mono">{target}</span>;
}

/** An exported file's rows, each with what the verification found on it. */
function ReviewTable({ name, review }: { name: string; review: Review }) {
  const [onlyProblems, setOnlyProblems] = useState(false);
  const [limit, setLimit] = useState(300);
  const bad = review.rows.filter((r) => r.problems.length).length;
  const unsigned = review.rows.filter((r) => r.unsigned).length;
  const rows = onlyProblems ? review.rows.filter((r) => r.problems.length || r.unsigned) : review.rows;
  return (
    <section className="panel review-rows" aria-label={`Rows of ${name}`}>
      <div className="panel-head">
        <h3>
          Rows of {name}{' '}
          <span className="muted small">
            {plural(review.rows.length, 'row')}, {plural(review.checkpoints, 'checkpoint')}
            {bad ? `, ${plural(bad, 'row')} with problems` : ''}
            {unsigned ? `, ${unsigned} not signed` : ''}
          </span>
        </h3>
        <label className="check-label small">
          <input type="checkbox" checked={onlyProblems} onChange={(e) => setOnlyProblems(e.target.checked)} />{' '}
          Only rows with problems
        </label>
      </div>
      {review.general.length > 0 && (
        <ul className="problems pad-x">
          {review.general.map((p, i) => (
            <li key={i}>
              <Badge tone="fail">{p.kind}</Badge> {p.message}
            </li>
          ))}
        </ul>
      )}
      <div className="table-wrap review-table-wrap">
        <table className="table compact audit-table" aria-label={`Rows of the exported file ${name}`}>
          <thead>
            <tr>
              <th scope="col" className="num">
                Line
              </th>
              <th scope="col" className="num">
                #
              </th>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Check</th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, limit).map((r) => (
              <tr
                key={r.line}
                className={r.problems.length ? 'row-problem' : r.unsigned ? 'row-unsigned' : undefined}
                data-line={r.line}
                data-seq={r.seq ?? ''}
                data-status={r.problems.length ? 'problem' : r.unsigned ? 'unsigned' : 'ok'}
              >
                <td className="num mono">{r.line}</td>
                <td className="num mono">{r.seq ?? '—'}</td>
                <td className="nowrap">{r.ts ? formatTime(r.ts) : '—'}</td>
                <td className="mono small">{r.actor ?? '—'}</td>
                <td>
                  {r.action ? (
                    <Badge tone="accent">{r.action}</Badge>
                  ) : (
                    <span className="muted">not an entry</span>
                  )}
                </td>
                <td className="small mono truncate" title={r.target ?? undefined}>
                  {r.target ?? '—'}
                </td>
                <td className="review-check">
                  {r.problems.length ? (
                    r.problems.map((p, i) => (
                      <div key={i} className="small">
                        <Badge tone="fail">{p.kind}</Badge> {p.message}
                      </div>
                    ))
                  ) : r.unsigned ? (
                    <Badge
                      tone="warn"
                      title="After the file's last signed checkpoint: nothing vouches for it"
                    >
                      not signed
                    </Badge>
                  ) : (
                    <Badge tone="ok">ok</Badge>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length > limit && (
          <div className="table-foot">
            <span className="muted">
              Showing {limit} of {rows.length}
            </span>
            <button type="button" className="btn btn-small" onClick={() => setLimit((n) => n + 1000)}>
              Show more
            </button>
          </div>
        )}
        {!rows.length && <p className="muted pad">No row has a problem.</p>}
      </div>
    </section>
  );
}

/** The selected entry, over the log on the right; Escape or the close button goes back to the log. */
function EntryDrawer({ entry }: { entry: AuditEntry }) {
  const close = () => navigate('audit');
  useEffect(() => {
    const onKey = (e: KeyboardEvent) =>
      e.key === 'Escape' && !document.querySelector('dialog[open]') && close();
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);
  return (
    <aside className="drawer" role="complementary" aria-label={`Audit entry ${entry.seq}`}>
      <AuditDetail entry={entry} onClose={close} />
    </aside>
  );
}

export function AuditView({ sub }: { sub: string[] }) {
  if (sub[0] === 'approvals')
    return (
      <div className="page-pad audit">
        <AuditTabs current="approvals" />
        <ApprovalsList selectedId={sub[1] ?? null} />
      </div>
    );
  return <AuditLogView sub={sub} />;
}

function AuditLogView({ sub }: { sub: string[] }) {
  const loaded = useAudit((s) => s.loaded);
  const loading = useAudit((s) => s.loading);
  const entries = useAudit((s) => s.entries);
  const total = useAudit((s) => s.total);
  const action = useAudit((s) => s.action);
  const selectedSeq = sub[0] ? Number(sub[0]) : null;
  const loadedEntry = useMemo(
    () => (selectedSeq ? (entries.find((e) => e.seq === selectedSeq) ?? null) : null),
    [entries, selectedSeq],
  );
  // An entry not among those loaded (older, or hidden by the filter) is fetched on its own.
  const fetched = useBackendQuery(
    selectedSeq && !loadedEntry && Number.isSafeInteger(selectedSeq)
      ? (b, signal) => b.call('audit.list', { limit: 1, beforeSeq: selectedSeq + 1 }, { signal })
      : null,
    [selectedSeq, !!loadedEntry],
  );
  const selected = loadedEntry ?? fetched.data?.entries.find((e) => e.seq === selectedSeq) ?? null;

  return (
    <div className={selected ? 'page-pad audit audit-with-drawer' : 'page-pad audit'}>
      <AuditTabs current="log" />
      <Toolbar />
      {!loaded ? (
        <Spinner label="Loading the audit log" />
      ) : entries.length === 0 ? (
        <EmptyState icon="list" title={action ? `No “${action}” entries` : 'The audit log is empty'}>
          <p>
            Every change made through Fluid (hosts added or checked, settings, and later approvals and
            applies) is recorded here, hash-chained so that any edit is detectable.
          </p>
        </EmptyState>
      ) : (
        <div className="audit-log">
          <p className="muted small">
            Click an entry to see who did what, what it concerns, its data and its place in the hash chain.
          </p>
          <div className="audit-table-wrap">
            <table className="table audit-table" aria-label="Audit entries">
              <thead>
                <tr>
                  <th scope="col" className="num">
                    #
                  </th>
                  <th scope="col">Time</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <tr
                    key={e.seq}
                    className={selected?.seq === e.seq ? 'selected clickable' : 'clickable'}
                    data-action={e.action}
                    data-seq={e.seq}
                    onClick={(ev) => {
                      // The whole row opens the entry (its number stays a real link for the keyboard).
                      if ((ev.target as Element).closest('a, button')) return;
                      navigate('audit', String(e.seq));
                    }}
                  >
                    <td className="num mono">
                      <a
                        href={href('audit', String(e.seq))}
                        aria-label={`Entry ${e.seq}: ${e.action}`}
                        aria-current={selected?.seq === e.seq ? 'true' : undefined}
                      >
                        {e.seq}
                      </a>
                    </td>
                    <td className="nowrap">{formatTime(e.ts)}</td>
                    <td className="small">
                      <ActorName actor={e.actor} />
                    </td>
                    <td>
                      <Badge tone="accent">{e.action}</Badge>
                    </td>
                    <td className="small truncate" title={e.target ?? undefined}>
                      <TargetName entry={e} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div className="table-foot">
              <span className="muted">
                Showing {entries.length} of {total}
              </span>
              {entries.length < total && (
                <button
                  type="button"
                  className="btn btn-small"
                  disabled={loading}
                  onClick={() => void loadOlderAudit()}
                >
                  {loading ? 'Loading…' : 'Load older entries'}
                </button>
              )}
            </div>
          </div>
        </div>
      )}
      {selected && <EntryDrawer key={selected.seq} entry={selected} />}
    </div>
  );
}
