/**
 * Settings → Agent: the session limits (settings.agent) and the approval rules (allow / ask / deny
 * per tool glob, argument patterns and mode; first match wins). One Save; settings.update validates.
 */
import { useState } from 'react';
import type { ToolInfo } from '../../../../shared/contract/agent.ts';
import type { Settings } from '../../../../shared/contract/settings.ts';
import { Icon } from '../../components/Icon.tsx';
import { Badge, Section, Spinner } from '../../components/ui.tsx';
import { useBackendQuery, type AsyncState } from '../../lib/hooks.ts';
import { RISK_TONE } from '../../stores/approvals.ts';
import { useSettings } from '../../stores/settings.ts';
import { SETTINGS_SECTIONS, SettingsForm, type FormExtension } from './SettingsForm.tsx';

type Rule = Settings['agent']['rules'][number];
type Decision = Rule['decision'];
type RuleMode = '' | 'edit' | 'read-only';

interface RuleDraft {
  key: number;
  tool: string;
  /** One `name=regular expression` per line. */
  args: string;
  mode: RuleMode;
  decision: Decision;
}

const AGENT_SECTIONS = SETTINGS_SECTIONS.filter((s) => s.key === 'agent');
const DECISIONS: Decision[] = ['allow', 'ask', 'deny'];
const DECISION_TONE = { allow: 'ok', ask: 'warn', deny: 'fail' } as const;

let nextKey = 1;

function toDraft(r: Rule): RuleDraft {
  return {
    key: nextKey++,
    tool: r.tool,
    args: Object.entries(r.args ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    mode: r.mode ?? '',
    decision: r.decision,
  };
}

const comparable = (list: RuleDraft[]) =>
  JSON.stringify(list.map((d) => [d.tool.trim(), d.args.trim(), d.mode, d.decision]));

/** The drafts as rules, or what is wrong with them ("<index>.<field>" → message). */
export function parseRules(drafts: RuleDraft[]): { rules: Rule[]; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const rules = drafts.map((d, i) => {
    const tool = d.tool.trim();
    if (!tool) errors[`${i}.tool`] = 'A tool name or a glob such as run_* or *.';
    else if (!/^[a-z0-9_*?]+$/.test(tool))
      errors[`${i}.tool`] = 'Tool names are lower case: letters, digits, _, * and ?.';
    const args: Record<string, string> = {};
    for (const line of d.args.split('\n')) {
      if (!line.trim()) continue;
      const m = /^\s*([A-Za-z_][\w-]*)\s*=(.*)$/.exec(line);
      if (!m) {
        errors[`${i}.args`] =
          `“${line.trim()}”: write name=pattern, e.g. command=^systemctl (restart|reload) `;
        continue;
      }
      const pattern = m[2]!.trim();
      try {
        new RegExp(pattern);
      } catch (err) {
        errors[`${i}.args`] = `${m[1]}: not a valid regular expression (${(err as Error).message}).`;
      }
      args[m[1]!] = pattern;
    }
    const rule: Rule = { tool, decision: d.decision };
    if (Object.keys(args).length) rule.args = args;
    if (d.mode) rule.mode = d.mode;
    return rule;
  });
  return { rules, errors };
}

function RulesEditor({
  rules,
  onChange,
  errors,
  toolNames,
}: {
  rules: RuleDraft[];
  onChange: (next: RuleDraft[]) => void;
  errors: Record<string, string>;
  toolNames: string[];
}) {
  const patch = (i: number, p: Partial<RuleDraft>) =>
    onChange(rules.map((r, j) => (j === i ? { ...r, ...p } : r)));
  const move = (i: number, by: number) => {
    const next = rules.slice();
    const [r] = next.splice(i, 1);
    next.splice(i + by, 0, r!);
    onChange(next);
  };
  return (
    <Section
      title="Approval rules"
      actions={
        <button
          type="button"
          className="btn btn-small"
          onClick={() =>
            onChange([...rules, { key: nextKey++, tool: '', args: '', mode: '', decision: 'ask' }])
          }
        >
          <Icon name="plus" size={12} /> Add rule
        </button>
      }
    >
      <p className="muted section-help">
        What happens when the agent calls a tool. The first rule that matches decides; when none does, tools
        of high risk ask a person and the rest are allowed. Tool: a name or a glob (<code>run_*</code>,{' '}
        <code>*</code>). Arguments: one <code>name=regular expression</code> per line, all must match.
        Read-only sessions never get tools that change something, whatever the rules say.
      </p>
      <datalist id="agent-tool-names">
        {toolNames.map((t) => (
          <option key={t} value={t} />
        ))}
      </datalist>
      {rules.length === 0 ? (
        <p className="muted pad rules-empty">No rules: the defaults apply.</p>
      ) : (
        <div className="table-wrap">
          <table className="table rules-table" aria-label="Approval rules">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Tool</th>
                <th scope="col">Arguments</th>
                <th scope="col">Mode</th>
                <th scope="col">Decision</th>
                <th scope="col">
                  <span className="sr-only">Order and remove</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r, i) => {
                const n = i + 1;
                const toolErr = errors[`${i}.tool`];
                const argsErr = errors[`${i}.args`];
                return (
                  <tr key={r.key} data-rule={n}>
                    <td className="muted">{n}</td>
                    <td className={toolErr ? 'field has-error' : 'field'}>
                      <input
                        className="input mono"
                        aria-label={`Rule ${n}: tool`}
                        aria-invalid={toolErr ? true : undefined}
                        list="agent-tool-names"
                        spellCheck={false}
                        placeholder="run_command"
                        value={r.tool}
                        onChange={(e) => patch(i, { tool: e.target.value })}
                      />
                      {toolErr && <div className="field-error">{toolErr}</div>}
                    </td>
                    <td className={argsErr ? 'field has-error' : 'field'}>
                      <textarea
                        className="input textarea mono rule-args"
                        aria-label={`Rule ${n}: argument patterns`}
                        aria-invalid={argsErr ? true : undefined}
                        rows={Math.max(1, r.args.split('\n').length)}
                        spellCheck={false}
                        placeholder="any arguments"
                        value={r.args}
                        onChange={(e) => patch(i, { args: e.target.value })}
                      />
                      {argsErr && <div className="field-error">{argsErr}</div>}
                    </td>
                    <td>
                      <select
                        className="input"
                        aria-label={`Rule ${n}: mode`}
                        value={r.mode}
                        onChange={(e) => patch(i, { mode: e.target.value as RuleMode })}
                      >
                        <option value="">any mode</option>
                        <option value="edit">edit</option>
                        <option value="read-only">read-only</option>
                      </select>
                    </td>
                    <td>
                      <select
                        className={`input decision-select decision-${r.decision}`}
                        aria-label={`Rule ${n}: decision`}
                        value={r.decision}
                        onChange={(e) => patch(i, { decision: e.target.value as Decision })}
                      >
                        {DECISIONS.map((d) => (
                          <option key={d} value={d}>
                            {d}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td className="rule-actions">
                      <button
                        type="button"
                        className="btn btn-icon btn-ghost"
                        aria-label={`Move rule ${n} up`}
                        disabled={i === 0}
                        onClick={() => move(i, -1)}
                      >
                        ↑
                      </button>
                      <button
                        type="button"
                        className="btn btn-icon btn-ghost"
                        aria-label={`Move rule ${n} down`}
                        disabled={i === rules.length - 1}
                        onClick={() => move(i, 1)}
                      >
                        ↓
                      </button>
                      <button
                        type="button"
                        className="btn btn-icon btn-ghost btn-danger-ghost"
                        aria-label={`Remove rule ${n}`}
                        onClick={() => onChange(rules.filter((_, j) => j !== i))}
                      >
                        <Icon name="trash" size={13} />
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted small rules-legend">
        {DECISIONS.map((d) => (
          <Badge key={d} tone={DECISION_TONE[d]}>
            {d}
          </Badge>
        ))}{' '}
        allow runs it, ask waits for a person, deny refuses it (the agent is told why).
      </p>
    </Section>
  );
}

function ToolsReference({ tools }: { tools: AsyncState<ToolInfo[]> }) {
  return (
    <Section title="The agent’s tools">
      {tools.error ? (
        <p className="muted">{tools.error.message}</p>
      ) : !tools.data ? (
        <Spinner label="Loading tools" />
      ) : (
        <ul className="tools-ref" aria-label="Tools">
          {tools.data.map((t) => (
            <li key={t.name} title={t.description}>
              <span className="mono">{t.name}</span>
              <span className="tools-ref-tags">
                {t.readOnly ? <Badge tone="neutral">read-only</Badge> : null}
                <Badge tone={RISK_TONE[t.risk]}>{t.risk}</Badge>
              </span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

export function AgentSettings() {
  const settings = useSettings((s) => s.settings);
  const [drafts, setDrafts] = useState<RuleDraft[] | null>(null);
  const [base, setBase] = useState<{ from: Rule[] | null; drafts: RuleDraft[] }>({ from: null, drafts: [] });
  const [localErrors, setLocalErrors] = useState<Record<string, string>>({});
  const tools = useBackendQuery((b, signal) => b.call('tools.list', {}, { signal }), []);
  const current = settings?.agent.rules ?? null;
  // Drafts of the saved rules, rebuilt when they change (keys stay stable otherwise).
  if (current !== base.from) setBase({ from: current, drafts: (current ?? []).map(toDraft) });
  const shown = drafts ?? base.drafts;
  const dirty = drafts && comparable(drafts) !== comparable(base.drafts) ? 1 : 0;

  const extension: FormExtension = {
    dirty,
    owns: 'agent.rules',
    patch() {
      const { rules, errors } = parseRules(shown);
      setLocalErrors(errors);
      return Object.keys(errors).length ? null : { agent: { rules } };
    },
    reset() {
      setDrafts(null);
      setLocalErrors({});
    },
    render(errors) {
      const backend: Record<string, string> = {};
      for (const [path, msg] of Object.entries(errors)) {
        const m = /^agent\.rules\.(\d+)\.(\w+)/.exec(path);
        if (m) backend[`${m[1]}.${m[2]}`] ??= msg;
      }
      return (
        <RulesEditor
          rules={shown}
          onChange={(next) => {
            setDrafts(next);
            setLocalErrors({});
          }}
          errors={{ ...backend, ...localErrors }}
          toolNames={(tools.data ?? []).map((t) => t.name)}
        />
      );
    },
  };

  return (
    <div className="settings-page agent-settings">
      <div className="settings-main">
        <SettingsForm sections={AGENT_SECTIONS} label="Agent settings" extension={extension} />
      </div>
      <div className="settings-side">
        <ToolsReference tools={tools} />
      </div>
    </div>
  );
}
