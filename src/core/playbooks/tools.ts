/**
 * The agent's playbook tools (the built-in agent and MCP, through the one tool registry): create a
 * playbook for a sandbox, add / update / remove / move tasks and handlers (each edit is a new
 * revision; comments and order survive), list and read playbooks, generate one from the sandbox's
 * diff, and verify it. The agent writes and checks its work; it never approves or applies anything,
 * and it cannot export the secret values Fluid holds.
 */
import { z } from 'zod';
import { FluidError } from '../../shared/errors.ts';
import type { ToolContext, ToolRegistry } from '../agent/tools/registry.ts';
import type { TaskManager } from '../store/tasks.ts';
import { PlaybookDoc, type Section, type TaskSpec } from './model.ts';
import { checkBundlePath } from './revisions.ts';
import type { PlaybookService } from './service.ts';

const json = (v: unknown) => JSON.stringify(v, null, 2);
const PlaybookRef = z.string().min(1).max(128).describe('Playbook name or id');
const TaskRef = z
  .union([z.number().int().min(1), z.string().min(1).max(300)])
  .describe('The task (or handler) by its 1-based number or its exact name');
const SectionIn = z.enum(['tasks', 'handlers']).default('tasks').describe('tasks (default) or handlers');

const Keywords = {
  when: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe('Condition (a Jinja expression without braces)'),
  notify: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe('Handler name(s) to notify when the task changes something'),
  listen: z.string().optional().describe('Handlers only: a topic to listen to'),
  register: z.string().optional(),
  become: z.boolean().optional(),
  tags: z.array(z.string()).optional(),
  loop: z.unknown().optional(),
  no_log: z.boolean().optional().describe('Hide the task’s output (for tasks handling secrets)'),
  changed_when: z.unknown().optional(),
  failed_when: z.unknown().optional(),
};

function textOfTasks(doc: PlaybookDoc): string {
  const rows = doc
    .all()
    .map(
      (t) =>
        `${t.section === 'handlers' ? 'handler' : 'task'} ${t.index}: ${t.name ?? '(no name)'} [${t.module ?? (t.block ? 'block' : '?')}]`,
    );
  return rows.join('\n') || '(no tasks yet)';
}

export function registerPlaybookTools(
  reg: ToolRegistry,
  deps: { playbooks: PlaybookService; tasks: TaskManager },
): void {
  const { playbooks } = deps;

  async function waitTask(taskId: string, ctx: ToolContext) {
    const t = await deps.tasks.wait(taskId, ctx.signal);
    if (ctx.signal.aborted) {
      deps.tasks.cancel(taskId);
      throw new FluidError('CANCELLED', 'Cancelled.');
    }
    if (t.status !== 'succeeded')
      throw new FluidError(t.error?.code ?? 'INTERNAL', t.error?.message ?? `${t.title} ended ${t.status}.`);
    return t;
  }

  reg.register({
    name: 'create_playbook',
    description:
      "Start an Ansible playbook that reproduces your changes (one play, become: true). Pass sandbox_id so it belongs to the sandbox you work in; generate_playbook later merges the tasks you write here with tasks generated from the sandbox's diff.",
    input: z.object({
      name: z.string().min(1).max(64),
      sandbox_id: z
        .string()
        .min(1)
        .max(128)
        .optional()
        .describe('The sandbox whose change this playbook reproduces'),
      hosts: z.string().min(1).max(200).optional(),
      become: z.boolean().optional(),
    }),
    readOnly: false,
    risk: 'low',
    summarize: (i) => `create_playbook ${i.name}`,
    run: async (i, ctx) => {
      const doc = PlaybookDoc.empty({ name: i.name, hosts: i.hosts, become: i.become });
      const p = playbooks.create(
        { name: i.name, sandbox: i.sandbox_id, yaml: doc.render(), sessionId: ctx.sessionId },
        ctx.actor,
      );
      return {
        content: `Created playbook ${p.name} (id ${p.id}).`,
        data: { id: p.id, name: p.name, sandbox: p.sandboxName, message: `Created playbook ${p.name}.` },
      };
    },
  });

  reg.register({
    name: 'add_playbook_task',
    description:
      'Add a task (or a handler, with section "handlers") to a playbook: a name that says what it does, an Ansible module (prefer ansible.builtin modules such as apt, copy, template, file, user, systemd, cron, lineinfile over command/shell) and its arguments. For ansible.builtin.template, pass the template text in `template` (it is shipped as templates/<name>). Each edit is a new revision.',
    input: z.object({
      playbook: PlaybookRef,
      section: SectionIn,
      name: z.string().min(1).max(300),
      module: z.string().min(1).max(100),
      args: z.record(z.string(), z.unknown()).optional().describe("The module's arguments"),
      params: z.record(z.string(), z.unknown()).optional().describe('Same as args'),
      ...Keywords,
      position: z.number().int().min(1).optional().describe('1-based position; default: at the end'),
      template: z
        .object({ name: z.string().min(1).max(200), content: z.string().max(1024 * 1024) })
        .optional()
        .describe(
          'For template tasks: the template file (e.g. name "nginx.conf.j2"); src is set to templates/<name>',
        ),
    }),
    readOnly: false,
    risk: 'low',
    summarize: (i) =>
      `add_playbook_task ${i.playbook}: ${i.name}${i.section === 'handlers' ? ' (handler)' : ''}`,
    run: async (i, ctx) => {
      const args: Record<string, unknown> = { ...(i.params ?? {}), ...(i.args ?? {}) };
      let template: { path: string; content: string } | undefined;
      if (i.template) {
        const path = `templates/${i.template.name}`;
        checkBundlePath(path);
        template = { path, content: i.template.content };
        args.src = path;
      }
      const spec: TaskSpec = {
        name: i.name,
        module: i.module,
        args,
        when: i.when,
        notify: i.notify,
        listen: i.listen,
        register: i.register,
        become: i.become,
        tags: i.tags,
        loop: i.loop,
        no_log: i.no_log,
        changed_when: i.changed_when,
        failed_when: i.failed_when,
      };
      const section = i.section as Section;
      const { result, revision } = playbooks.edit(
        i.playbook,
        (doc) => {
          const at = doc.add(section, spec, { position: i.position });
          return {
            result: { at, doc },
            message: `Added ${section === 'handlers' ? 'handler' : 'task'} ${at}: ${i.name}`,
            template,
          };
        },
        ctx.actor,
      );
      return {
        content: `Added ${section === 'handlers' ? 'handler' : 'task'} ${result.at} to ${i.playbook} (revision ${revision.number}, sha256 ${revision.sha256.slice(0, 16)}…).\n${textOfTasks(result.doc)}`,
        data: { position: result.at, revision: revision.number, sha256: revision.sha256 },
      };
    },
  });

  reg.register({
    name: 'update_playbook_task',
    description:
      'Change a task or handler in place (its comments stay): a new name, module or args (args replace the old ones), or keywords; a keyword set to null is removed.',
    input: z.object({
      playbook: PlaybookRef,
      section: SectionIn,
      task: TaskRef,
      name: z.string().min(1).max(300).optional(),
      module: z.string().min(1).max(100).optional(),
      args: z.record(z.string(), z.unknown()).nullable().optional(),
      when: z.union([z.string(), z.array(z.string()), z.null()]).optional(),
      notify: z.union([z.string(), z.array(z.string()), z.null()]).optional(),
      register: z.union([z.string(), z.null()]).optional(),
      become: z.union([z.boolean(), z.null()]).optional(),
      tags: z.union([z.array(z.string()), z.null()]).optional(),
      loop: z.unknown().optional(),
      no_log: z.union([z.boolean(), z.null()]).optional(),
      changed_when: z.unknown().optional(),
      failed_when: z.unknown().optional(),
    }),
    readOnly: false,
    risk: 'low',
    summarize: (i) => `update_playbook_task ${i.playbook}: ${i.task}`,
    run: async (i, ctx) => {
      const { playbook, section, task, ...patch } = i;
      const { result, revision } = playbooks.edit(
        playbook,
        (doc) => {
          const at = doc.update(section as Section, task, patch as Parameters<PlaybookDoc['update']>[2]);
          return {
            result: { at, doc },
            message: `Updated ${section === 'handlers' ? 'handler' : 'task'} ${at}`,
          };
        },
        ctx.actor,
      );
      return {
        content: `Updated ${section === 'handlers' ? 'handler' : 'task'} ${result.at} (revision ${revision.number}).\n${textOfTasks(result.doc)}`,
        data: { revision: revision.number, sha256: revision.sha256 },
      };
    },
  });

  reg.register({
    name: 'remove_playbook_task',
    description: 'Remove a task or handler from a playbook (a new revision; earlier revisions keep it).',
    input: z.object({ playbook: PlaybookRef, section: SectionIn, task: TaskRef }),
    readOnly: false,
    risk: 'low',
    summarize: (i) => `remove_playbook_task ${i.playbook}: ${i.task}`,
    run: async (i, ctx) => {
      const { result, revision } = playbooks.edit(
        i.playbook,
        (doc) => {
          const gone = doc.remove(i.section as Section, i.task);
          return {
            result: { gone, doc },
            message: `Removed ${i.section === 'handlers' ? 'handler' : 'task'} ${gone.index}: ${gone.name ?? ''}`,
          };
        },
        ctx.actor,
      );
      return {
        content: `Removed "${result.gone.name}" (revision ${revision.number}).\n${textOfTasks(result.doc)}`,
        data: { revision: revision.number },
      };
    },
  });

  reg.register({
    name: 'move_playbook_task',
    description: 'Move a task or handler to another position (1-based); its comments move with it.',
    input: z.object({
      playbook: PlaybookRef,
      section: SectionIn,
      task: TaskRef,
      to: z.number().int().min(1),
    }),
    readOnly: false,
    risk: 'low',
    summarize: (i) => `move_playbook_task ${i.playbook}: ${i.task} → ${i.to}`,
    run: async (i, ctx) => {
      const { result, revision } = playbooks.edit(
        i.playbook,
        (doc) => {
          const at = doc.move(i.section as Section, i.task, i.to);
          return {
            result: { at, doc },
            message: `Moved ${i.section === 'handlers' ? 'handler' : 'task'} ${i.task} to ${at}`,
          };
        },
        ctx.actor,
      );
      return {
        content: `Moved to position ${result.at} (revision ${revision.number}).\n${textOfTasks(result.doc)}`,
        data: { revision: revision.number },
      };
    },
  });

  reg.register({
    name: 'list_playbooks',
    description:
      'List playbooks (optionally of one sandbox) with their head revision and latest verification.',
    input: z.object({ sandbox_id: z.string().min(1).max(128).optional() }),
    readOnly: true,
    risk: 'low',
    summarize: () => 'list_playbooks',
    run: async (i) => {
      const list = playbooks.list(i.sandbox_id);
      return {
        content: json(
          list.map((p) => ({
            id: p.id,
            name: p.name,
            sandbox: p.sandboxName,
            tasks: p.tasks,
            revision: p.head?.number ?? null,
            verification: p.verification
              ? `${p.verification.status}${p.verification.stale ? ' (stale)' : ''}`
              : 'never',
            updated_at: p.updatedAt,
          })),
        ),
        data: { playbooks: list },
      };
    },
  });

  reg.register({
    name: 'get_playbook',
    description:
      'A playbook revision (default: the head) as YAML, with its tasks, its generation report and its latest verification.',
    input: z.object({ playbook: PlaybookRef, revision: z.number().int().min(1).optional() }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `get_playbook ${i.playbook}`,
    run: async (i) => {
      const { playbook, revision } = playbooks.get(i.playbook, i.revision);
      if (!revision) throw new FluidError('NOT_FOUND', 'The playbook has no revision.');
      const v = playbook.verification;
      const header = [
        `# ${playbook.name} revision ${revision.number} of ${playbook.revisions}, sha256 ${revision.sha256}`,
        `# verification: ${v ? `${v.status}${v.stale ? ' (stale: about revision ' + v.revision + ')' : ''} — ${v.steps.map((s) => `${s.id} ${s.status}`).join(', ')}` : 'never run'}`,
        ...(revision.secrets.length
          ? [`# variables the person supplies: ${revision.secrets.map((s) => s.name).join(', ')}`]
          : []),
        ...(revision.files.length
          ? [`# shipped files: ${revision.files.map((f) => f.path).join(', ')}`]
          : []),
      ].join('\n');
      return { content: `${header}\n${revision.yaml}`, data: { ...playbook, yaml: revision.yaml, revision } };
    },
  });

  reg.register({
    name: 'generate_playbook',
    description:
      'Generate the playbook of a sandbox from its system diff (read again now): packages, users and groups, sudoers, files, units, services, cron, sysctl become tasks, merged with the tasks you wrote that cover the same changes. Secrets become variables. Returns the revision and a report of what each change became. Run verify_playbook next.',
    input: z.object({
      sandbox_id: z.string().min(1).max(128),
      playbook: z
        .string()
        .min(1)
        .max(64)
        .optional()
        .describe("Default: the sandbox's playbook (created if needed)"),
    }),
    readOnly: false,
    risk: 'low',
    summarize: (i) => `generate_playbook ${i.sandbox_id}`,
    run: async (i, ctx) => {
      const task = playbooks.generate(
        { sandbox: i.sandbox_id, playbook: i.playbook },
        ctx.actor,
        ctx.sessionId,
      );
      const t = await waitTask(task.id, ctx);
      const r = t.result as {
        playbook: string;
        revision: number;
        sha256: string;
        report: {
          covered: unknown[];
          uncovered: Array<{ kind: string; key: string; reason: string }>;
          excluded: unknown[];
          secrets: Array<{ name: string; description: string }>;
          notes: string[];
        };
      };
      const { revision } = playbooks.get(r.playbook, r.revision);
      const lines = [
        `Playbook ${r.playbook} revision ${r.revision} (sha256 ${r.sha256.slice(0, 16)}…): ${r.report.covered.length} changes covered, ${r.report.excluded.length} excluded by a person, ${r.report.uncovered.length} not expressed.`,
        ...r.report.uncovered.map((u) => `not expressed: ${u.kind} ${u.key}: ${u.reason}`),
        ...r.report.secrets.map((s) => `secret variable ${s.name}: ${s.description}`),
        ...r.report.notes.map((n) => `note: ${n}`),
        '',
        revision?.yaml ?? '',
      ];
      return { content: lines.join('\n'), data: r };
    },
  });

  reg.register({
    name: 'verify_playbook',
    description:
      "Verify a playbook revision (default: the head) in five steps: safety and syntax check, ansible-lint, replay on a fresh sandbox of the same base, re-diff against your sandbox's diff, and a second run that must change nothing. Takes minutes. Returns each step's result; fix what fails and verify again.",
    input: z.object({ playbook: PlaybookRef, revision: z.number().int().min(1).optional() }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `verify_playbook ${i.playbook}`,
    run: async (i, ctx) => {
      const task = playbooks.verify(i.playbook, i.revision, ctx.actor);
      await deps.tasks.wait(task.id, ctx.signal);
      if (ctx.signal.aborted) {
        deps.tasks.cancel(task.id);
        throw new FluidError('CANCELLED', 'Cancelled.');
      }
      const v = playbooks.verification(i.playbook);
      if (!v) throw new FluidError('INTERNAL', 'The verification left no record.');
      const lines = [
        `Verification of revision ${v.revision}: ${v.status}.`,
        ...v.steps.map((s) => `${s.status.toUpperCase().padEnd(9)} ${s.title}: ${s.summary}`),
        ...v.steps.flatMap((s) => s.warnings.map((w) => `warning: ${w}`)),
        ...v.steps.flatMap((s) =>
          (s.differences ?? []).map((d) => `difference: [${d.difference}] ${d.detail}`),
        ),
      ];
      const failed = v.steps.find((s) => s.status === 'failed');
      if (failed) lines.push('', `Log of "${failed.title}" (end):`, failed.log.slice(-4000));
      return { content: lines.join('\n'), data: v, isError: v.status !== 'passed' };
    },
  });
}
