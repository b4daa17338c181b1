/**
 * One tool call in the transcript: the tool, a one-line summary of its arguments (all of them on
 * demand), its status, and its output. A call waiting for a person offers Approve / Deny right here;
 * the global approval modal asks too, and a decision taken in either place updates both.
 */
import { useEffect, useState } from 'react';
import type { Approval } from '../../../../shared/contract/approvals.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, ErrorBox, ExitBadge } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { RISK_TONE, actorLabel, refreshApproval, useApprovals } from '../../stores/approvals.ts';
import { rpc } from '../../stores/connection.ts';
import { useSandboxes } from '../../stores/sandboxes.ts';
import { CARD_STATUS_LABEL, CARD_STATUS_TONE, argSummary } from './format.ts';
import type { CardStatus, ToolCallView } from './sessionState.ts';
import { ToolArgs } from './ToolArgs.tsx';
import { DecisionButtons, useDecision } from '../approvals/Decision.tsx';

const OUTPUT_PAGE = 256 * 1024;

export function ToolStatusChip({ status, exitCode }: { status: CardStatus; exitCode?: number | null }) {
  // A command that ran and exited non-zero is an answer ("exit 3"), shown neutral, not an error.
  if (status === 'exited' && exitCode !== null && exitCode !== undefined)
    return (
      <span title="The command ran and exited with this code (not a failure of the tool)">
        <ExitBadge code={exitCode} />
      </span>
    );
  return (
    <Badge tone={CARD_STATUS_TONE[status]}>
      {status === 'running' && <span className="spinner tiny" aria-hidden="true" />}
      <span data-testid="tool-status">{CARD_STATUS_LABEL[status]}</span>
    </Badge>
  );
}

/** Approve / Deny for the call's approval request, in place. */
function InlineApproval({
  approvalId,
  approval,
  tool,
}: {
  approvalId: string;
  approval: Approval | undefined;
  tool: string;
}) {
  const { busy, error, decide } = useDecision(approvalId);

  // The request may not have reached the approvals store yet (or was made before this window opened).
  useEffect(() => {
    if (approval) return;
    try {
      void refreshApproval(rpc(), approvalId);
    } catch {
      // disconnected: the store's snapshot brings it
    }
  }, [approval, approvalId]);

  return (
    <div
      className="tool-approval"
      role="group"
      aria-label={`Approval for ${tool}`}
      data-approval={approvalId}
    >
      <div className="tool-approval-text">
        <Icon name="bell" size={14} />
        <span>
          <strong>Waiting for your approval.</strong> {approval?.detail ?? ''}
        </span>
        {approval && <Badge tone={RISK_TONE[approval.risk]}>{approval.risk} risk</Badge>}
      </div>
      <div className="tool-approval-actions">
        <DecisionButtons busy={busy} onDecide={(d) => void decide(d)} small />
      </div>
      {error && (
        <ErrorBox
          error={error}
          title={error.code === 'CONFLICT' ? 'Someone else decided first' : 'The decision was not recorded'}
        />
      )}
    </div>
  );
}

/**
 * The output as the model saw it; when it was cut or redacted, the whole output (kept behind a handle)
 * replaces it on demand, fetched with agent.toolOutput page by page.
 */
function ToolOutput({
  sessionId,
  output,
  handle,
  isError,
}: {
  sessionId: string;
  output: string;
  handle: string | null;
  isError: boolean;
}) {
  const [data, setData] = useState<{ content: string; total: number } | null>(null);
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);

  async function load(offset: number) {
    if (!handle) return;
    setBusy(true);
    setError(null);
    try {
      const r = await rpc().call('agent.toolOutput', { sessionId, handle, offset, limit: OUTPUT_PAGE });
      setData((d) => ({ content: (offset && d ? d.content : '') + r.content, total: r.total }));
      setOpen(true);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }

  const full = open && data;
  const more = data && data.content.length < data.total;
  return (
    <div className={isError ? 'tool-output is-error' : 'tool-output'}>
      {full ? (
        <pre className="code-block tool-output-pre full" aria-label="Full output">
          {data.content}
        </pre>
      ) : (
        <pre className="code-block tool-output-pre" aria-label="Output">
          {output || '(no output)'}
        </pre>
      )}
      {handle && (
        <div className="full-output-bar">
          {!full ? (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => void (data ? setOpen(true) : load(0))}
              disabled={busy}
              title="The agent saw a shortened (or redacted) copy; the whole output is kept"
            >
              <Icon name="file" size={12} /> {busy ? 'Loading…' : 'Show full output'}
            </button>
          ) : (
            <button type="button" className="btn btn-small" onClick={() => setOpen(false)}>
              Show what the agent saw
            </button>
          )}
          {full && (
            <span className="muted small">
              {data.content.length.toLocaleString()} of {data.total.toLocaleString()} characters
            </span>
          )}
          {full && more && (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => void load(data.content.length)}
              disabled={busy}
            >
              {busy ? 'Loading…' : 'Load more'}
            </button>
          )}
        </div>
      )}
      {error && <ErrorBox error={error} title="The full output could not be loaded" />}
    </div>
  );
}

/** Who decided the call's approval request, once someone did. */
function DecisionNote({ approval }: { approval: Approval }) {
  const approved = approval.status === 'approved';
  return (
    <div className={approved ? 'tool-decision ok' : 'tool-decision fail'} data-testid="tool-decision">
      <Icon name={approved ? 'check' : 'x'} size={12} />
      {approved ? 'Approved' : approval.status === 'denied' ? 'Denied' : `Request ${approval.status}`}
      {approval.decidedBy ? ` by ${actorLabel(approval.decidedBy)}` : ''}
      {approval.note ? `: ${approval.note}` : ''}
    </div>
  );
}

export function ToolCallCard({ call, sessionId }: { call: ToolCallView; sessionId: string }) {
  const [open, setOpen] = useState(false);
  const approval = useApprovals((s) => (call.approvalId ? s.byId[call.approvalId] : undefined));
  // The stream says "running" or "done" only once the tool has run; a decision shows at once.
  let status = call.status;
  if (status === 'waiting-approval' && approval && approval.status !== 'pending')
    status = approval.status === 'approved' ? 'running' : 'denied';
  // Sandboxes by name, not by id (the id stays in the arguments).
  const sandboxId = typeof call.input.sandbox_id === 'string' ? call.input.sandbox_id : null;
  const sandboxName = useSandboxes((s) => (sandboxId ? s.byId[sandboxId]?.name : undefined));
  const summary = argSummary(sandboxName ? { ...call.input, sandbox_id: sandboxName } : call.input);
  const argsId = `args-${call.id}`;
  return (
    <article
      className={`tool-card tool-${status}`}
      aria-label={`Tool call ${call.name}`}
      data-tool={call.name}
      data-status={status}
      data-call={call.id}
    >
      <div className="tool-head">
        <button
          type="button"
          className="tool-toggle"
          aria-expanded={open}
          aria-controls={argsId}
          title={open ? 'Hide the arguments' : 'Show the arguments'}
          onClick={() => setOpen((o) => !o)}
        >
          <span className={open ? 'chevron open' : 'chevron'} aria-hidden="true">
            ›
          </span>
          <Icon name="tasks" size={13} />
          <span className="tool-name">{call.name}</span>
          <span className="tool-summary" data-testid="tool-summary">
            {summary}
          </span>
        </button>
        <ToolStatusChip status={status} exitCode={call.exitCode} />
      </div>
      {open && (
        <div className="tool-body" id={argsId}>
          <ToolArgs args={call.input} />
        </div>
      )}
      {status === 'waiting-approval' && call.approvalId && (
        <InlineApproval approvalId={call.approvalId} approval={approval} tool={call.name} />
      )}
      {approval && approval.status !== 'pending' && <DecisionNote approval={approval} />}
      {call.output !== null && (
        <ToolOutput
          sessionId={sessionId}
          output={call.output}
          handle={call.handle}
          isError={call.isError && status !== 'exited'}
        />
      )}
    </article>
  );
}
