/**
 * Playbooks: the list (with the sandbox each one reproduces), and a playbook's page: the editor
 * (Monaco, schema and Fluid's checks inline; saving makes a new revision and leaves the earlier
 * verification stale), its revision history with diffs, and its verification report with each
 * step's status and log, and "Verify again".
 */
import { useEffect, useMemo, useState } from 'react';
import type { PlaybookSummary, VerificationBrief } from '../../../../shared/contract/playbooks.ts';
import type { Task } from '../../../../shared/contract/tasks.ts';
import { Icon } from '../../components/Icon.tsx';
import { TaskProgress } from '../../components/TaskProgress.tsx';
import { Badge, EmptyState, ErrorBox, Field, Modal, Spinner } from '../../components/ui.tsx';
import { ReadinessChecklist } from '../../components/ReadinessChecklist.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { formatRelative, shortHash } from '../../lib/format.ts';
import { useBackendQuery, useNow, useWatchedTask } from '../../lib/hooks.ts';
import { href, navigate } from '../../lib/route.ts';
import { rpc, useConnection } from '../../stores/connection.ts';
import { useSandboxes } from '../../stores/sandboxes.ts';
import { upsertTask } from '../../stores/tasks.ts';
import { toast, toastError } from '../../stores/toasts.ts';
import { PlaybookEditor, ProblemList, type Problem } from './PlaybookEditor.tsx';
import { RevisionHistory } from './RevisionHistory.tsx';
import { VerificationReport } from './VerificationReport.tsx';
import { AnsibleReadiness } from './AnsibleReadiness.tsx';
import './playbooks.css';

/** Reload when the backend says this playbook (or any, for the list) changed. */
function usePlaybookEvents(playbookId: string | null, reload: () => void): void {
  const backend = useConnection((s) => s.backend);
  useEffect(() => {
    if (!backend) return;
    return backend.on('playbooks.changed', (e) => {
      if (!playbookId || e.playbookId === playbookId) reload();
    });
  }, [backend, playbookId, reload]);
}

export function VerificationBadge({ v }: { v: VerificationBrief | null }) {
  if (!v) return <Badge tone="neutral">never verified</Badge>;
  if (v.status === 'running') return <Badge tone="info">verifying…</Badge>;
  if (v.stale)
    return (
      <Badge tone="warn" title={`The last verification was of revision ${v.revision}`}>
        {v.status} · stale
      </Badge>
    );
  return <Badge tone={v.status === 'passed' ? 'ok' : 'fail'}>{v.status}</Badge>;
}

export function PlaybooksView({ sub = [] }: { sub?: string[] }) {
  const [id, tab] = sub;
  if (id) return <PlaybookPage id={decodeURIComponent(id)} tab={tab ?? 'editor'} />;
  return <PlaybookList />;
}

// ---- the list -------------------------------------------------------------------------------------

function PlaybookList() {
  const list = useBackendQuery((b, signal) => b.call('playbooks.list', {}, { signal }), []);
  usePlaybookEvents(null, list.reload);
  const [creating, setCreating] = useState(false);
  const [generating, setGenerating] = useState(false);
  const now = useNow();
  const actions = (
    <>
      <button type="button" className="btn btn-primary" onClick={() => setGenerating(true)}>
        <Icon name="book" size={14} /> Generate from a sandbox
      </button>
      <button type="button" className="btn" onClick={() => setCreating(true)}>
        New playbook
      </button>
    </>
  );
  const dialogs = (
    <>
      {creating && <NewPlaybookDialog onClose={() => setCreating(false)} />}
      {generating && <GenerateDialog onClose={() => setGenerating(false)} />}
    </>
  );
  if (list.error) return <ErrorBox error={list.error} title="Could not load the playbooks" />;
  if (!list.data) return <Spinner label="Loading playbooks" />;
  if (!list.data.length)
    return (
      <>
        <EmptyState icon="book" title="No playbooks yet" actions={actions}>
          <p>
            When an agent has worked in a sandbox, Fluid turns what really changed there into an Ansible
            playbook, verifies it by replaying it on a fresh clone, and you review it here before anything
            touches production.
          </p>
          <h3 className="empty-sub">What to do now</h3>
          <ReadinessChecklist />
          <AnsibleReadiness />
        </EmptyState>
        {dialogs}
      </>
    );
  return (
    <div className="page-pad pb-list">
      <div className="pb-list-actions">{actions}</div>
      <table className="table" aria-label="Playbooks">
        <thead>
          <tr>
            <th>Name</th>
            <th>Sandbox</th>
            <th>Revision</th>
            <th>Tasks</th>
            <th>Verification</th>
            <th>Changed</th>
          </tr>
        </thead>
        <tbody>
          {list.data.map((p: PlaybookSummary) => (
            <tr key={p.id} data-testid="playbook-row" data-name={p.name}>
              <td>
                <a href={href('playbooks', p.id)}>{p.name}</a>
              </td>
              <td>
                {p.sandboxId ? (
                  <a href={href('sandboxes', p.sandboxId)}>{p.sandboxName ?? shortHash(p.sandboxId, 8)}</a>
                ) : (
                  <span className="muted">none</span>
                )}
              </td>
              <td className="mono">
                {p.head ? (
                  <>
                    {p.head.number} · {shortHash(p.head.sha256, 10)}
                  </>
                ) : (
                  '-'
                )}
              </td>
              <td>{p.tasks}</td>
              <td>
                <VerificationBadge v={p.verification} />
              </td>
              <td className="muted">{formatRelative(p.updatedAt, now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {dialogs}
    </div>
  );
}

function NewPlaybookDialog({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    try {
      const p = await rpc().call('playbooks.create', { name });
      onClose();
      navigate('playbooks', p.id);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      title="New playbook"
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="btn btn-primary"
            disabled={!name || busy}
            onClick={() => void submit()}
          >
            Create
          </button>
        </>
      }
    >
      <Field label="Name" help="Letters, digits, “.”, “-” or “_”." error={error?.message}>
        {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} autoFocus />}
      </Field>
    </Modal>
  );
}

function GenerateDialog({ onClose }: { onClose: () => void }) {
  const byId = useSandboxes((s) => s.byId);
  const running = useMemo(
    () => Object.values(byId).filter((s) => s.state === 'running' || s.state === 'stopped'),
    [byId],
  );
  const [sandbox, setSandbox] = useState('');
  const [taskId, setTaskId] = useState<string | null>(null);
  const task = useWatchedTask(taskId);
  useEffect(() => {
    if (task?.status === 'succeeded') {
      const r = task.result as { playbookId: string; revision: number };
      toast({
        kind: 'success',
        title: `Generated revision ${r.revision}`,
        message: 'Verify it before anyone relies on it.',
      });
      onClose();
      navigate('playbooks', r.playbookId);
    }
  }, [task, onClose]);
  const start = async () => {
    try {
      const t = await rpc().call('playbooks.generate', { sandbox });
      upsertTask(t);
      setTaskId(t.id);
    } catch (err) {
      toastError(err, 'Generating the playbook');
    }
  };
  return (
    <Modal
      title="Generate a playbook from a sandbox"
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Close
          </button>
          <button
            type="button"
            className="btn btn-primary"
            disabled={!sandbox || !!taskId}
            onClick={() => void start()}
          >
            Generate
          </button>
        </>
      }
    >
      <p className="muted">
        Fluid reads what changed on the sandbox’s disk (the Changes of that sandbox, with your include/exclude
        choices) and writes the tasks that reproduce it, keeping the tasks the agent wrote.
      </p>
      <Field label="Sandbox">
        {(p) => (
          <select {...p} value={sandbox} onChange={(e) => setSandbox(e.target.value)}>
            <option value="">Choose a sandbox</option>
            {running.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} ({s.sourceName}, {s.state})
              </option>
            ))}
          </select>
        )}
      </Field>
      {task && <TaskProgress task={task} label="Generation" log />}
    </Modal>
  );
}

// ---- one playbook ----------------------------------------------------------------------------------

const TABS = [
  ['editor', 'Editor'],
  ['history', 'History'],
  ['verification', 'Verification'],
] as const;

function PlaybookPage({ id, tab }: { id: string; tab: string }) {
  const data = useBackendQuery((b, signal) => b.call('playbooks.get', { playbook: id }, { signal }), [id]);
  usePlaybookEvents(data.data?.playbook.id ?? null, data.reload);
  const [verifyTask, setVerifyTask] = useState<string | null>(null);
  const task = useWatchedTask(verifyTask);
  if (data.error) return <ErrorBox error={data.error} title="Could not load the playbook" />;
  if (!data.data) return <Spinner label="Loading the playbook" />;
  const { playbook, revision } = data.data;
  const verifyAgain = async () => {
    try {
      const t = await rpc().call('playbooks.verify', { playbook: playbook.id });
      upsertTask(t);
      setVerifyTask(t.id);
      navigate('playbooks', playbook.id, 'verification');
    } catch (err) {
      toastError(err, 'Starting the verification');
    }
  };
  return (
    <div className="page-pad pb-page">
      <header className="pb-head">
        <div>
          <a href={href('playbooks')} className="muted small">
            ← Playbooks
          </a>
          <h2 className="pb-title" data-testid="playbook-title">
            {playbook.name}
          </h2>
          <div className="pb-meta muted small">
            {revision && (
              <span data-testid="playbook-revision">
                revision {revision.number} of {playbook.revisions} · sha256{' '}
                <span className="mono">{shortHash(revision.sha256, 16)}</span> · {revision.origin} by{' '}
                {revision.author.door}:{revision.author.id}
              </span>
            )}
            {playbook.sandboxId && (
              <>
                {' '}
                · sandbox{' '}
                <a href={href('sandboxes', playbook.sandboxId)}>
                  {playbook.sandboxName ?? playbook.sandboxId}
                </a>
              </>
            )}
            {playbook.sessionId && (
              <>
                {' '}
                · agent session{' '}
                <a href={href('agent', playbook.sessionId)}>{shortHash(playbook.sessionId, 8)}</a>
              </>
            )}
          </div>
        </div>
        <div className="pb-head-actions">
          <span data-testid="playbook-verification-badge">
            <VerificationBadge v={playbook.verification} />
          </span>
          <button
            type="button"
            className="btn"
            onClick={() => void verifyAgain()}
            disabled={task?.status === 'running' || playbook.verification?.status === 'running'}
          >
            Verify again
          </button>
        </div>
      </header>
      <nav className="tabs page-tabs" aria-label="Playbook views">
        {TABS.map(([t, label]) => (
          <a
            key={t}
            className={tab === t ? 'tab active' : 'tab'}
            href={href('playbooks', playbook.id, t)}
            aria-current={tab === t ? 'page' : undefined}
          >
            {label}
          </a>
        ))}
      </nav>
      {tab === 'history' ? (
        <RevisionHistory key={revision?.number ?? 0} playbookId={playbook.id} head={revision?.number ?? 0} />
      ) : tab === 'verification' ? (
        <VerificationReport
          playbookId={playbook.id}
          headSha={revision?.sha256 ?? null}
          task={task as Task | null}
          onVerify={() => void verifyAgain()}
        />
      ) : revision ? (
        <EditorTab
          key={`${playbook.id}@${revision.number}`}
          playbookId={playbook.id}
          number={revision.number}
          yaml={revision.yaml}
          reload={data.reload}
        />
      ) : (
        <p className="muted">This playbook has no revision.</p>
      )}
    </div>
  );
}

function EditorTab({
  playbookId,
  number,
  yaml,
  reload,
}: {
  playbookId: string;
  number: number;
  yaml: string;
  reload: () => void;
}) {
  const [text, setText] = useState(yaml);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [message, setMessage] = useState('');
  const [saving, setSaving] = useState(false);
  const [conflict, setConflict] = useState<string | null>(null);
  const errors = problems.filter((p) => p.severity === 'error').length;
  const dirty = text !== yaml;
  const save = async () => {
    setSaving(true);
    try {
      const r = await rpc().call('playbooks.save', {
        playbook: playbookId,
        yaml: text,
        baseRevision: number,
        message: message || undefined,
      });
      toast({
        kind: 'success',
        title: `Saved revision ${r.number}`,
        message: 'Its earlier verification is now stale: verify again.',
      });
      setMessage('');
      reload();
    } catch (err) {
      const e = toErrorInfo(err);
      if (e.code === 'CONFLICT') setConflict(e.message);
      else toastError(err, 'Saving the playbook');
    } finally {
      setSaving(false);
    }
  };
  return (
    <div className="pb-editor-tab">
      {conflict && (
        <p className="callout callout-warn" role="alert">
          {conflict}
        </p>
      )}
      <PlaybookEditor
        modelKey={`${playbookId}@${number}`}
        value={yaml}
        onChange={setText}
        onProblems={setProblems}
      />
      <ProblemList problems={problems} />
      <div className="pb-save">
        <input
          aria-label="What changed"
          placeholder="What changed (optional)"
          value={message}
          onChange={(e) => setMessage(e.target.value)}
          maxLength={500}
        />
        <button
          type="button"
          className="btn btn-primary"
          data-testid="playbook-save"
          disabled={!dirty || saving || errors > 0}
          onClick={() => void save()}
        >
          Save as revision {number + 1}
        </button>
        {errors > 0 && <span className="muted small">Fix the errors first.</span>}
        {!dirty && <span className="muted small">No changes.</span>}
      </div>
    </div>
  );
}
