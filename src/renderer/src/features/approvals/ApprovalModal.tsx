/**
 * The approval modal: opens when a pending request arrives (approvals.changed) or from the header's
 * indicator. Shows exactly what is asked (the subject), who asked and the risk; Approve or Deny with a
 * note. A request decided elsewhere meanwhile says so (and by whom) instead of failing silently.
 */
import { useEffect, useState } from 'react';
import type { Approval } from '../../../../shared/contract/approvals.ts';
import { Badge, Callout, ErrorBox, Field, KV, Modal } from '../../components/ui.tsx';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import {
  APPROVAL_STATUS_TONE,
  RISK_TONE,
  actorLabel,
  dismissPrompt,
  refreshApproval,
  useApprovals,
} from '../../stores/approvals.ts';
import { useAgent } from '../../stores/agent.ts';
import { rpc } from '../../stores/connection.ts';
import { SandboxRef } from '../sandboxes/SandboxRef.tsx';
import { ToolArgs } from '../agent/ToolArgs.tsx';
import { DecisionButtons, useDecision } from './Decision.tsx';

/** A tool approval's subject: `{ tool, args }` (the agent's tool call, exactly as it would run). */
function toolSubject(a: Approval): { tool: string; args: Record<string, unknown> } | null {
  if (a.kind !== 'tool' || !a.subject || typeof a.subject !== 'object') return null;
  const { tool, args } = a.subject as { tool?: unknown; args?: unknown };
  if (typeof tool !== 'string') return null;
  return { tool, args: args && typeof args === 'object' ? (args as Record<string, unknown>) : {} };
}

export function ApprovalBody({ approval: a }: { approval: Approval }) {
  const session = useAgent((s) => (a.sessionId ? s.byId[a.sessionId] : undefined));
  const now = useNow();
  const tool = toolSubject(a);
  return (
    <div className={`approval approval-risk-${a.risk}`} data-approval={a.id} data-status={a.status}>
      <div className="approval-tags">
        <Badge tone="accent">{a.kind}</Badge>
        <Badge tone={RISK_TONE[a.risk]}>
          <span data-testid="approval-risk">{a.risk} risk</span>
        </Badge>
        <Badge tone={APPROVAL_STATUS_TONE[a.status]}>{a.status}</Badge>
      </div>
      <h3 className="approval-title">{a.title}</h3>
      <p className="approval-detail" data-testid="approval-detail">
        {a.detail}
      </p>
      <dl className="kv">
        <KV label="Asked by" mono>
          {actorLabel(a.requestedBy)}
        </KV>
        <KV label="Asked">
          <span title={formatTime(a.createdAt)}>{formatRelative(a.createdAt, now)}</span>
          {a.expiresAt && <span className="muted"> · expires {formatTime(a.expiresAt)}</span>}
        </KV>
        {a.sandboxId && (
          <KV label="Sandbox">
            <SandboxRef id={a.sandboxId} name={a.sandboxName} exists={a.sandboxExists} />
          </KV>
        )}
        {a.sessionId && (
          <KV label="Agent session">
            <a
              href={href('agent', a.sessionId)}
              onClick={() => dismissPrompt(a.id)}
              data-testid="approval-session"
            >
              {session?.title ?? a.sessionTitle ?? a.sessionId}
            </a>
            {session && <span className="muted"> · {session.mode}</span>}
          </KV>
        )}
        {a.decidedBy && (
          <KV label="Decided by" mono>
            {actorLabel(a.decidedBy)}
            {a.decidedAt && <span className="muted"> · {formatTime(a.decidedAt)}</span>}
          </KV>
        )}
        {a.note && <KV label="Note">{a.note}</KV>}
      </dl>
      {a.kind === 'apply' ? (
        <>
          <p>
            <a href={href('changes', a.id)} onClick={() => dismissPrompt(a.id)} data-testid="approval-review">
              Open the review
            </a>{' '}
            — the diff, the playbook at its revision, the verification and what it will do to production.
          </p>
          <details className="raw-subject">
            <summary>The whole bundle (JSON)</summary>
            <pre className="json" aria-label="Subject">
              {JSON.stringify(a.subject, null, 2)}
            </pre>
          </details>
        </>
      ) : tool ? (
        <>
          <h4 className="sub-title">The tool call</h4>
          <div className="approval-tool" data-testid="approval-tool">
            <span className="tool-name">{tool.tool}</span>
          </div>
          <ToolArgs args={tool.args} label="Tool arguments" />
          <details className="raw-subject">
            <summary>Exactly what is asked (JSON)</summary>
            <pre className="json" aria-label="Subject">
              {JSON.stringify(a.subject, null, 2)}
            </pre>
          </details>
        </>
      ) : (
        <>
          <h4 className="sub-title">Exactly what is asked</h4>
          <pre className="json" aria-label="Subject">
            {JSON.stringify(a.subject, null, 2)}
          </pre>
        </>
      )}
      <p className="muted small">
        Subject hash <code className="hash">{a.subjectHash}</code>: the decision applies to exactly this.
      </p>
    </div>
  );
}

function DecideApproval({ approval: a, queue }: { approval: Approval; queue: number }) {
  const [note, setNote] = useState('');
  const { busy, error, decide } = useDecision(a.id);
  const pending = a.status === 'pending';

  // While it waits, look again now and then: a decision from another process sends no event here.
  useEffect(() => {
    if (!pending) return;
    const t = setInterval(() => {
      try {
        void refreshApproval(rpc(), a.id);
      } catch {
        // disconnected: the snapshot after reconnecting settles it
      }
    }, 2_000);
    return () => clearInterval(t);
  }, [pending, a.id]);

  return (
    <Modal
      title={queue > 1 ? `Approval requested (1 of ${queue})` : 'Approval requested'}
      onClose={() => dismissPrompt(a.id)}
      wide
      footer={
        pending ? (
          <>
            <button
              type="button"
              className="btn"
              onClick={() => dismissPrompt(a.id)}
              disabled={busy !== null}
            >
              Later
            </button>
            <span className="toolbar-spacer" />
            <DecisionButtons busy={busy} onDecide={(d) => void decide(d, note)} />
          </>
        ) : (
          <button type="button" className="btn btn-primary" onClick={() => dismissPrompt(a.id)}>
            Close
          </button>
        )
      }
    >
      <ApprovalBody approval={a} />
      {!pending && !error && (
        <Callout tone="info" title={`Already ${a.status}`}>
          {a.decidedBy
            ? `Decided by ${actorLabel(a.decidedBy)}.`
            : 'Nothing is waiting for a decision any more.'}
        </Callout>
      )}
      {pending && (
        <Field label="Note (optional)" help="Kept with the decision in the audit log; the requester sees it.">
          {(p) => (
            <textarea
              {...p}
              className="input textarea"
              rows={2}
              maxLength={2000}
              value={note}
              onChange={(e) => setNote(e.target.value)}
            />
          )}
        </Field>
      )}
      {error && (
        <ErrorBox
          error={error}
          title={error.code === 'CONFLICT' ? 'Someone else decided first' : 'The decision was not recorded'}
        />
      )}
    </Modal>
  );
}

/** Mounted once by the shell. */
export function ApprovalModal() {
  const prompt = useApprovals((s) => s.prompt);
  const byId = useApprovals((s) => s.byId);
  const id = prompt.find((x) => byId[x]);
  if (!id) return null;
  return <DecideApproval key={id} approval={byId[id]!} queue={prompt.filter((x) => byId[x]).length} />;
}
