/**
 * One ansible-playbook run of a bundle against its target: a private workspace with the bundle's
 * bytes, the secret values for this run only, Fluid's own configuration aimed at the target
 * (src/core/targets/ansible.ts), per-task results from the JSON events and, with --diff, each task's
 * diff. The workspace (key, secrets, control socket) is gone when the run ends, whatever happens.
 */
import type { PreviewTask } from '../../shared/contract/changes.ts';
import type { TaskResult } from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import {
  runTool,
  Workspace,
  type AnsibleEvent,
  type AnsibleTools,
  type RunResult,
} from '../playbooks/ansible.ts';
import { taskResults } from '../playbooks/verify.ts';
import { parseYaml, renderYaml } from '../playbooks/yaml.ts';
import { aimAtTarget, type TargetAccess } from '../targets/ansible.ts';
import { isMap, isSeq, type YAMLMap } from 'yaml';

export interface PlayOptions {
  /** The playbook.yml bytes (the bundle's). */
  yaml: string;
  files: ReadonlyMap<string, Buffer>;
  secrets: ReadonlyMap<string, string>;
  access: TargetAccess;
  tools: AnsibleTools;
  /** Check mode with --diff (the preview and the post-apply check). */
  check: boolean;
  /**
   * The preview only: every play gets `ignore_errors: true`, so a task that fails only because an
   * earlier change was simulated (a service its package would install) does not end the preview.
   */
  previewAll?: boolean;
  signal?: AbortSignal;
  timeoutMs: number;
  onLog?: (text: string) => void;
  onEvent?: (e: AnsibleEvent) => void;
}

export interface PlayOutcome {
  run: RunResult;
  tasks: PreviewTask[];
  /** Tasks that started, in order (a cancelled run names what ran). */
  started: string[];
}

/** The bundle's playbook with `ignore_errors: true` on every play (the preview's reading only). */
export function previewYaml(yaml: string): string {
  const doc = parseYaml(yaml);
  if (!isSeq(doc.contents)) return yaml;
  for (const play of doc.contents.items) if (isMap(play)) (play as YAMLMap).set('ignore_errors', true);
  return renderYaml(doc);
}

/** Ansible names its temporary copy in a diff header; the run's own paths say nothing of the change. */
export function stablePaths(diff: string): string {
  return diff.replace(/^(\+\+\+ after|--- before): \S*\/fluid-pb-[^/\s]+\/\S*$/gm, '$1');
}

/** Results with each task's diff attached (a diff event comes before its task's result). */
export function withDiffs(events: readonly AnsibleEvent[]): PreviewTask[] {
  const results = taskResults(events);
  const pending: Array<{ task: string; host: string; diff: string }> = [];
  const out: PreviewTask[] = [];
  let r = 0;
  for (const e of events) {
    if ((e.event as string) === 'diff')
      pending.push({ task: String(e.task ?? ''), host: String(e.host ?? ''), diff: String(e.diff ?? '') });
    else if (e.event === 'result') {
      const res = results[r++]!;
      const i = pending.findIndex((p) => p.task === res.task && p.host === res.host);
      const diff = i >= 0 ? stablePaths(pending.splice(i, 1)[0]!.diff) : null;
      out.push({ ...res, diff });
    }
  }
  return out;
}

/** Replace every secret value in text (logs are stored; values never are). */
export function scrub(text: string, values: Iterable<string>): string {
  let out = text;
  for (const v of values) if (v.length >= 4) out = out.split(v).join('[secret]');
  return out;
}

export async function playOnTarget(o: PlayOptions): Promise<PlayOutcome> {
  if (!o.tools.playbook || !o.tools.python)
    throw new FluidError(
      'UNAVAILABLE',
      'ansible-playbook is not installed on this machine (or its Python is unknown).',
    );
  const yaml = o.check && o.previewAll ? previewYaml(o.yaml) : o.yaml;
  const ws = Workspace.create(yaml, o.files);
  const started: string[] = [];
  try {
    ws.writeSecrets(o.secrets);
    await aimAtTarget(ws, o.access, o.tools.python);
    const args = ['playbook.yml', '--diff', ...(o.check ? ['--check'] : [])];
    const values = [...o.secrets.values()];
    const run = await runTool(ws, o.tools.playbook, args, {
      signal: o.signal,
      timeoutMs: o.timeoutMs,
      // raw chunks: the caller scrubs whole lines (a value may straddle two chunks)
      onLog: o.onLog,
      onEvent: (e) => {
        if (e.event === 'task') started.push(String(e.task ?? ''));
        o.onEvent?.(e);
      },
    });
    run.log = scrub(run.log, values);
    return { run, tasks: withDiffs(run.events), started };
  } finally {
    await ws.dispose();
  }
}

export const changedTasks = (tasks: readonly TaskResult[]) => tasks.filter((t) => t.changed);
export const failedTasks = (tasks: readonly TaskResult[]) =>
  tasks.filter((t) => t.status === 'failed' || t.status === 'unreachable');
