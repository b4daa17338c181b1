/**
 * Verification: a revision is proven before anyone reviews it, in five steps, each stored with its
 * status, log and duration, and the whole run with the revision's sha256 (any newer revision makes
 * it stale):
 *
 *  1. safety and syntax: Fluid's controller-safety check (safety.ts), then
 *     `ansible-playbook --syntax-check`;
 *  2. `ansible-lint --profile production` (Debian's package);
 *  3. replay on a fresh sandbox of the same base (the warm-template path of sandbox creation), with
 *     per-task results read from Fluid's JSON events callback;
 *  4. re-diff: the fresh sandbox's diff against its own baseline must equal the agent's diff (items a
 *     person excluded aside), compared item by item with the diff room's compareDiffs;
 *  5. a second run reports zero changed tasks, read per task from the JSON events.
 *
 * The fresh sandbox is created as VERIFY_ACTOR, which nobody can run commands in, and destroyed
 * afterwards whatever happens (success, failure, cancel). Ansible runs on this machine
 * (ansible.ts), never on production, and installs nothing anywhere.
 */
import { randomUUID } from 'node:crypto';
import { compareDiffs, type Diff, type DiffItem } from '../../shared/contract/diff.ts';
import {
  STEP_TITLE,
  VERIFY_ACTOR,
  VERIFY_STEPS,
  type ItemDifferenceRow,
  type SecretVar,
  type TaskResult,
  type Verification,
  type VerifyStep,
  type VerifyStepId,
} from '../../shared/contract/playbooks.ts';
import type { Sandbox } from '../../shared/contract/sandboxes.ts';
import type { Task } from '../../shared/contract/tasks.ts';
import { FluidError, isAbortError, toErrorPayload } from '../../shared/errors.ts';
import type { Actor } from '../../shared/rpc.ts';
import type { DiffService } from '../diff/service.ts';
import type { EventBus } from '../events.ts';
import type { HostService } from '../hosts/service.ts';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { SecretStore } from '../platform/secrets.ts';
import type { SandboxService } from '../sandboxes/service.ts';
import { sandboxLogin, sandboxPrincipal } from '../sandboxes/identity.ts';
import { GATEWAY } from '../sandboxes/network.ts';
import type { SshCa } from '../ssh/ca.ts';
import type { AuditLog } from '../store/audit.ts';
import type { TaskContext, TaskManager } from '../store/tasks.ts';
import {
  detectAnsible,
  LINT_PROFILE,
  LINT_PROFILE_WHY,
  pinnedHostKey,
  requireTools,
  runTool,
  Workspace,
  type AnsibleEvent,
  type AnsibleTools,
  type RunResult,
} from './ansible.ts';
import { checkIntegrity } from './revisions.ts';
import { safetyDiagnostics } from './safety.ts';
import { heldValues } from './secrets.ts';
import type { PlaybookStore, RevisionRow, VerificationRow } from './store.ts';
import { parseYaml } from './yaml.ts';

export interface VerifyDeps {
  store: PlaybookStore;
  sandboxes: SandboxService;
  diff: DiffService;
  hosts: HostService;
  ca: SshCa;
  tasks: TaskManager;
  audit: AuditLog;
  bus: EventBus;
  clock: Clock;
  log: Logger;
  secrets: SecretStore;
}

/** How long ansible-playbook may run in one step. */
const PLAY_TIMEOUT_MS = 60 * 60_000;
const CHECK_TIMEOUT_MS = 10 * 60_000;
/** Verification sandboxes live this long at most (the host removes them if Fluid cannot). */
const SANDBOX_TTL_MINUTES = 120;

/** Plain group names the plays target (`hosts: web`, `web:db`, `web,&prod`), for the replay's inventory. */
export function playGroups(yaml: string): string[] {
  const out = new Set<string>();
  const js = parseYaml(yaml).toJS() as unknown;
  if (!Array.isArray(js)) return [];
  for (const play of js as Array<{ hosts?: unknown }>) {
    const hosts = Array.isArray(play?.hosts) ? play.hosts : [play?.hosts];
    for (const h of hosts)
      if (typeof h === 'string')
        for (const part of h.split(/[:,]/)) out.add(part.replace(/^[!&]/, '').trim());
  }
  return [...out].filter((g) => /^[A-Za-z_][A-Za-z0-9_-]*$/.test(g));
}

export function verificationOf(r: VerificationRow, headSha: string | null): Verification {
  const body = JSON.parse(r.body) as Pick<Verification, 'replay' | 'tools' | 'steps' | 'timings'>;
  return {
    id: r.id,
    playbookId: r.playbook_id,
    revision: r.revision,
    sha256: r.sha256,
    status: r.status,
    stale: headSha !== null && headSha !== r.sha256,
    taskId: r.task_id,
    requestedBy: { door: r.requested_by_door as Actor['door'], id: r.requested_by_id },
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    ...body,
  };
}

/** Results of one run, per task and host, from the JSON events. */
export function taskResults(events: readonly AnsibleEvent[]): TaskResult[] {
  return events
    .filter((e) => e.event === 'result')
    .map((e) => ({
      play: String(e.play ?? ''),
      task: String(e.task ?? ''),
      action: String(e.action ?? ''),
      host: String(e.host ?? ''),
      status: e.status as TaskResult['status'],
      changed: e.changed === true,
      handler: e.handler === true,
      message: typeof e.message === 'string' ? e.message : null,
      durationMs: typeof e.duration_ms === 'number' ? e.duration_ms : null,
    }));
}

/**
 * The agent's diff against the replay's, item by item. Items a person excluded are left out of the
 * agent's side only: a replay that still makes such a change is reported (the playbook carries it).
 * Cron files whose entries are equal count as equal when only their comments differ (the cron module
 * marks its entries with "#Ansible:" comments).
 */
export function compareReplay(agent: Diff, replay: Diff): ItemDifferenceRow[] {
  const excluded = new Set(agent.excluded);
  const c = compareDiffs({ items: agent.items.filter((i) => !excluded.has(i.id)) }, { items: replay.items });
  const out: ItemDifferenceRow[] = [];
  const describe = (i: DiffItem) => `${i.kind} ${i.key}`;
  for (const i of c.onlyInA)
    out.push({
      id: i.id,
      kind: i.kind,
      key: i.key,
      difference: 'missing',
      fields: [],
      detail: `The agent changed ${describe(i)}; the replay did not.`,
    });
  for (const i of c.onlyInB)
    out.push({
      id: i.id,
      kind: i.kind,
      key: i.key,
      difference: 'extra',
      fields: [],
      detail: excluded.has(i.id)
        ? `The replay changed ${describe(i)}, which a person excluded from the change.`
        : `The replay changed ${describe(i)}; the agent did not.`,
    });
  for (const d of c.differing) {
    if (d.a.kind === 'cron' && d.b.kind === 'cron' && cronEquivalent(d.a, d.b, d.fields)) continue;
    out.push({
      id: d.id,
      kind: d.kind,
      key: d.key,
      difference: 'different',
      fields: d.fields,
      detail: `${describe(d.a)} differs in ${d.fields.join(', ')}: ${d.fields
        .slice(0, 4)
        .map((f) => `${f} ${JSON.stringify(pick(d.a, f))} → ${JSON.stringify(pick(d.b, f))}`)
        .join('; ')}`,
    });
  }
  return out;
}

function pick(o: unknown, path: string): unknown {
  let v: unknown = o;
  for (const k of path.split('.'))
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

function cronEquivalent(
  a: Extract<DiffItem, { kind: 'cron' }>,
  b: Extract<DiffItem, { kind: 'cron' }>,
  fields: string[],
): boolean {
  if (!fields.every((f) => f === 'after.sha256')) return false;
  const norm = (l: string[]) =>
    l
      .map((x) => x.replace(/\s+/g, ' ').trim())
      .sort()
      .join('\n');
  return (
    norm(a.entries.added) === norm(b.entries.added) && norm(a.entries.removed) === norm(b.entries.removed)
  );
}

export class Verifier {
  private readonly d: VerifyDeps;

  constructor(deps: VerifyDeps) {
    this.d = deps;
  }

  /** Start verifying a revision (a task). */
  /**
   * Start verifying a revision (a task). `start` picks how the fresh sandbox starts: 'auto' takes
   * the warm template when there is one (always, for people and agents); 'cold' exists for the
   * benchmark that compares the two.
   */
  start(
    playbookId: string,
    rev: RevisionRow,
    actor: Actor,
    opts: { start?: 'auto' | 'cold' } = {},
  ): { task: Task; verificationId: string } {
    const id = randomUUID();
    const now = this.d.clock.now().toISOString();
    const steps: VerifyStep[] = VERIFY_STEPS.map((s) => ({
      id: s,
      title: STEP_TITLE[s],
      status: 'pending',
      startedAt: null,
      durationMs: null,
      summary: '',
      log: '',
      warnings: [],
    }));
    const body: Pick<Verification, 'replay' | 'tools' | 'steps' | 'timings'> = {
      replay: null,
      tools: { ansibleCore: null, ansibleLint: null },
      steps,
      timings: {},
    };
    this.d.store.insertVerification({
      id,
      playbook_id: playbookId,
      revision: rev.number,
      sha256: rev.sha256,
      status: 'running',
      task_id: null,
      requested_by_door: actor.door,
      requested_by_id: actor.id,
      started_at: now,
      finished_at: null,
      body: JSON.stringify(body),
    });
    const pb = this.d.store.row(playbookId);
    const task = this.d.tasks.start({
      kind: 'playbook.verify',
      title: `Verify ${pb.name} revision ${rev.number}`,
      target: playbookId,
      run: (ctx) => this.run(id, pb.id, rev, body, actor, ctx, opts.start ?? 'auto'),
    });
    this.d.store.updateVerification(id, { task_id: task.id });
    this.d.audit.append({
      actor,
      action: 'playbook.verify.start',
      target: playbookId,
      data: { verification: id, revision: rev.number, sha256: rev.sha256 },
    });
    this.changed(playbookId, id);
    return { task, verificationId: id };
  }

  private changed(playbookId: string, verificationId: string) {
    this.d.bus.emit('playbooks.changed', { playbookId, revision: null, verificationId });
  }

  private async run(
    id: string,
    playbookId: string,
    rev: RevisionRow,
    body: Pick<Verification, 'replay' | 'tools' | 'steps' | 'timings'>,
    actor: Actor,
    ctx: TaskContext,
    startPath: 'auto' | 'cold',
  ): Promise<Verification> {
    const t0 = Date.now();
    const save = () => this.d.store.updateVerification(id, { body: JSON.stringify(body) });
    const step = (s: VerifyStepId) => body.steps.find((x) => x.id === s)!;
    let ws: Workspace | null = null;
    let fresh: Sandbox | null = null;
    let createTask: string | null = null;
    let current: VerifyStep | null = null;
    const begin = (s: VerifyStepId, fraction: number) => {
      current = step(s);
      current.status = 'running';
      current.startedAt = this.d.clock.now().toISOString();
      const n = VERIFY_STEPS.indexOf(s) + 1;
      ctx.progress(fraction, `Step ${n}/5: ${current.title}`);
      save();
      this.changed(playbookId, id);
      return { started: Date.now(), s: current };
    };
    const end = (h: { started: number; s: VerifyStep }, ok: boolean, summary: string) => {
      h.s.status = ok ? 'passed' : 'failed';
      h.s.durationMs = Date.now() - h.started;
      h.s.summary = summary;
      body.timings[h.s.id] = h.s.durationMs;
      current = null;
      save();
      this.changed(playbookId, id);
      return ok;
    };
    const skip = (s: VerifyStepId, why: string) => {
      const x = step(s);
      if (x.status !== 'pending') return;
      x.status = 'skipped';
      x.summary = why;
      save();
    };

    try {
      const files = checkIntegrity(this.d.store, rev);
      const tools = await detectAnsible();
      body.tools = { ansibleCore: tools.coreVersion, ansibleLint: tools.lintVersion };
      ws = Workspace.create(rev.yaml, files);

      // 1. Safety and syntax.
      let h = begin('syntax', 0.02);
      const textFiles = new Map(
        [...files].map(([p, b]) => [p, p.startsWith('templates/') ? b.toString('utf8') : null] as const),
      );
      const unsafe = safetyDiagnostics(rev.yaml, parseYaml(rev.yaml), { files: textFiles }).filter(
        (d) => d.severity === 'error',
      );
      if (unsafe.length) {
        h.s.log = [
          'Fluid refuses to run this revision on this machine:',
          ...unsafe.map((d) => `  line ${d.line}:${d.column}: ${d.message}`),
        ].join('\n');
        end(
          h,
          false,
          `${unsafe.length} construct${unsafe.length === 1 ? '' : 's'} Fluid does not run (${unsafe[0]!.message})`,
        );
        for (const s of ['lint', 'replay', 'rediff', 'idempotence'] as const)
          skip(s, 'Not run: the playbook did not pass the safety check.');
        return this.finish(id, playbookId, body, 'failed', t0, actor);
      }
      requireTools(tools, ['playbook']);
      const syntax = await runTool(ws, tools.playbook!, ['--syntax-check', 'playbook.yml'], {
        signal: ctx.signal,
        timeoutMs: CHECK_TIMEOUT_MS,
      });
      h.s.log = `Safety check: passed (ansible.builtin modules acting on the target; allowed Jinja only).\n$ ansible-playbook --syntax-check playbook.yml\n${syntax.log}`;
      const syntaxOk = end(
        h,
        syntax.code === 0,
        syntax.code === 0
          ? 'The playbook parses.'
          : `ansible-playbook --syntax-check failed (exit ${syntax.code ?? syntax.signal}).`,
      );

      // 2. ansible-lint.
      h = begin('lint', 0.06);
      if (!tools.lint) {
        h.s.log = 'ansible-lint is not installed.';
        end(h, false, 'ansible-lint is not installed on this machine.');
      } else {
        const lint = await runTool(
          ws,
          tools.lint,
          ['--offline', '--nocolor', '--profile', LINT_PROFILE, '-f', 'pep8', 'playbook.yml'],
          { signal: ctx.signal, timeoutMs: CHECK_TIMEOUT_MS },
        );
        h.s.log = `Profile ${LINT_PROFILE_WHY}\n$ ansible-lint --offline --profile ${LINT_PROFILE} -f pep8 playbook.yml\n${lint.log}`;
        const issues = lint.log.split('\n').filter((l) => /^playbook\.yml:\d+/.test(l));
        end(
          h,
          lint.code === 0,
          lint.code === 0
            ? `Passes the ${LINT_PROFILE} profile.`
            : `${issues.length || 'Some'} issue${issues.length === 1 ? '' : 's'}${issues[0] ? `, first: ${issues[0]}` : ''}`,
        );
      }
      if (!syntaxOk) {
        for (const s of ['replay', 'rediff', 'idempotence'] as const)
          skip(s, 'Not run: the syntax check failed.');
        return this.finish(id, playbookId, body, 'failed', t0, actor);
      }

      // 3. Replay on a fresh sandbox of the same base.
      h = begin('replay', 0.1);
      const pb = this.d.store.row(playbookId);
      const generation = rev.generation
        ? (JSON.parse(rev.generation) as { diffId: string; sandboxId: string })
        : null;
      const sandboxId = generation?.sandboxId ?? pb.sandbox_id;
      if (!sandboxId) {
        h.s.log = 'This playbook belongs to no sandbox, so there is no change to reproduce.';
        end(
          h,
          false,
          'No sandbox: nothing to replay against (generate the playbook from a sandbox, or create it with one).',
        );
        skip('rediff', 'Not run: there was no replay.');
        skip('idempotence', 'Not run: there was no replay.');
        return this.finish(id, playbookId, body, 'failed', t0, actor);
      }
      const agent = this.d.sandboxes.store.row(sandboxId);
      const agentDto = this.d.sandboxes.get(sandboxId);
      const agentDiff = this.agentDiff(sandboxId, generation?.diffId ?? null);
      const values = heldValues(this.d.secrets, playbookId, JSON.parse(rev.secrets) as SecretVar[]);
      const missing = (JSON.parse(rev.secrets) as SecretVar[]).filter((v) => !values.has(v.name));
      if (missing.length) {
        h.s.log = `Fluid does not hold the values of: ${missing.map((m) => `${m.name} (${m.description})`).join('; ')}.`;
        end(
          h,
          false,
          `The replay needs values Fluid does not hold: ${missing.map((m) => m.name).join(', ')}.`,
        );
        skip('rediff', 'Not run: there was no replay.');
        skip('idempotence', 'Not run: there was no replay.');
        return this.finish(id, playbookId, body, 'failed', t0, actor);
      }
      requireTools(tools, ['playbook']);
      if (!tools.python)
        throw new FluidError(
          'UNAVAILABLE',
          'Could not tell which Python runs ansible-playbook (ansible-playbook --version).',
        );
      const lines: string[] = [];
      const say = (l: string) => {
        lines.push(l);
        h.s.log = lines.join('\n');
      };
      say(
        `Creating a fresh sandbox from ${agent.source_name} on ${agentDto.hostName} (base ${agentDto.baseFingerprint ?? 'unknown'}).`,
      );
      const created = this.d.sandboxes.create(
        {
          host: agent.host_id,
          source: agent.source_name,
          name: `verify-${agent.name.slice(0, 24)}-${id.slice(0, 6)}`
            .replace(/[^a-z0-9-]/g, '-')
            .replace(/-+/g, '-'),
          vcpus: agent.vcpus || undefined,
          memoryMiB: agent.memory_mib || undefined,
          ttlMinutes: SANDBOX_TTL_MINUTES,
          allow: [],
          start: startPath,
          refreshBase: false,
        },
        VERIFY_ACTOR,
      );
      createTask = created.id;
      const target = created.target;
      if (target) {
        body.replay = {
          sandboxId: target,
          sandboxName: null,
          baseFingerprint: null,
          startPath: null,
          destroyed: false,
          agentDiffId: agentDiff.id,
          replayDiffId: null,
        };
        save();
      }
      const made = await this.waitTask(created.id, ctx, (t) =>
        ctx.progress(0.1 + 0.15 * (t.progress ?? 0), `Step 3/5: fresh sandbox — ${t.message}`),
      );
      fresh = made.result as Sandbox;
      createTask = null;
      body.replay = {
        sandboxId: fresh.id,
        sandboxName: fresh.name,
        baseFingerprint: fresh.baseFingerprint,
        startPath: fresh.startPath,
        destroyed: false,
        agentDiffId: agentDiff.id,
        replayDiffId: null,
      };
      body.timings.sandbox = fresh.timings.total ?? 0;
      say(
        `Sandbox ${fresh.name} ready in ${((fresh.timings.total ?? 0) / 1000).toFixed(1)} s (${fresh.startPath}).`,
      );
      if (fresh.baseFingerprint !== agentDto.baseFingerprint) {
        say(
          `Its base ${fresh.baseFingerprint} is not the agent's base ${agentDto.baseFingerprint}: the source VM was copied again since.`,
        );
        end(h, false, 'The fresh sandbox does not have the same base as the agent’s sandbox.');
        skip('rediff', 'Not run: the replay did not run.');
        skip('idempotence', 'Not run: the replay did not run.');
        return this.finish(id, playbookId, body, 'failed', t0, actor);
      }
      for (const dest of agentDto.egressAllow.filter((x) => !fresh!.egressAllow.includes(x)))
        fresh = await this.d.sandboxes.setEgress(fresh.id, dest, true, VERIFY_ACTOR);
      if (agentDto.egressAllow.length)
        say(`Egress as the agent's sandbox had it: ${agentDto.egressAllow.join(', ')}.`);
      ws.writeSecrets(values);
      await this.aim(ws, fresh, tools, id, playGroups(rev.yaml));
      const first = await this.play(ws, tools, ctx, (msg) => ctx.progress(0.3, `Step 3/5: replay — ${msg}`));
      h.s.log = `${lines.join('\n')}\n$ ansible-playbook playbook.yml\n${first.log}`;
      h.s.tasks = taskResults(first.events);
      const failed = h.s.tasks.filter((r) => r.status === 'failed' || r.status === 'unreachable');
      const skipped = h.s.tasks.filter((r) => r.status === 'skipped');
      h.s.warnings = skipped.map(
        (r) =>
          `"${r.task}" was skipped in the replay: it never ran during verification, so what it does on production is unverified.`,
      );
      const noHost = !h.s.tasks.length && /^\s+- name:/m.test(rev.yaml);
      if (noHost)
        h.s.warnings.push(
          'No task ran: no host matched the plays\' hosts patterns (Fluid puts the sandbox in "all", "sandbox" and each plain group name the plays use).',
        );
      const replayOk = first.code === 0 && !failed.length && !first.timedOut && !noHost;
      end(
        h,
        replayOk,
        replayOk
          ? `${h.s.tasks.length} task results, ${h.s.tasks.filter((r) => r.changed).length} changed, ${skipped.length} skipped.`
          : first.timedOut
            ? 'ansible-playbook took too long and was stopped.'
            : `${failed.length ? `Failed: ${failed.map((f) => `"${f.task}"`).join(', ')}` : `ansible-playbook exited ${first.code ?? first.signal}`}.`,
      );
      if (!replayOk) {
        skip('rediff', 'Not run: the replay failed.');
        skip('idempotence', 'Not run: the replay failed.');
        return this.finish(id, playbookId, body, 'failed', t0, actor);
      }

      // 4. Re-diff.
      h = begin('rediff', 0.6);
      const dtask = this.d.diff.run({ sandbox: fresh.id, method: 'auto' }, VERIFY_ACTOR);
      const ddone = await this.waitTask(dtask.id, ctx, (t) =>
        ctx.progress(0.6 + 0.1 * (t.progress ?? 0), `Step 4/5: re-diff — ${t.message}`),
      );
      const replayDiff = this.d.diff.get(fresh.id, (ddone.result as { id: string }).id, false);
      body.replay.replayDiffId = replayDiff.id;
      const differences = compareReplay(agentDiff, replayDiff);
      h.s.differences = differences;
      h.s.log = [
        `Agent's diff ${agentDiff.id} (${agentDiff.counts.items} items, ${agentDiff.excluded.length} excluded by a person), sha256 ${agentDiff.sha256}.`,
        `Replay's diff ${replayDiff.id} (${replayDiff.counts.items} items, ${replayDiff.counts.noise} paths filtered as noise), sha256 ${replayDiff.sha256}.`,
        differences.length ? 'Differences:' : 'Every item matches.',
        ...differences.map((x) => `  [${x.difference}] ${x.detail}`),
      ].join('\n');
      end(
        h,
        !differences.length,
        differences.length
          ? `${differences.length} difference${differences.length === 1 ? '' : 's'}: ${differences
              .slice(0, 3)
              .map((x) => `${x.difference} ${x.kind} ${x.key}`)
              .join('; ')}`
          : `The replay reproduces all ${agentDiff.items.length - agentDiff.excluded.length} items of the change.`,
      );

      // 5. Second run.
      h = begin('idempotence', 0.72);
      await this.aim(ws, fresh, tools, id, playGroups(rev.yaml));
      const second = await this.play(ws, tools, ctx, (msg) =>
        ctx.progress(0.75, `Step 5/5: second run — ${msg}`),
      );
      h.s.log = `$ ansible-playbook playbook.yml\n${second.log}`;
      h.s.tasks = taskResults(second.events);
      const changedAgain = h.s.tasks.filter((r) => r.changed);
      const failedAgain = h.s.tasks.filter((r) => r.status === 'failed' || r.status === 'unreachable');
      const idemOk = second.code === 0 && !changedAgain.length && !failedAgain.length;
      end(
        h,
        idemOk,
        idemOk
          ? `No task changed anything (${h.s.tasks.length} results).`
          : changedAgain.length
            ? `Changed again: ${changedAgain.map((r) => `"${r.task}"`).join(', ')}.`
            : `The second run failed${failedAgain.length ? `: ${failedAgain.map((r) => `"${r.task}"`).join(', ')}` : ` (exit ${second.code})`}.`,
      );
      const status: Verification['status'] = body.steps.every((s) => s.status === 'passed')
        ? 'passed'
        : 'failed';
      return this.finish(id, playbookId, body, status, t0, actor);
    } catch (err) {
      const cancelled = ctx.signal.aborted || isAbortError(err);
      if (current) {
        const c = current as VerifyStep;
        c.status = cancelled ? 'cancelled' : 'failed';
        c.summary = cancelled ? 'Cancelled.' : toErrorPayload(err).message;
        c.log = `${c.log}${c.log ? '\n' : ''}${cancelled ? 'Cancelled.' : `Error: ${toErrorPayload(err).message}`}`;
      }
      for (const s of body.steps) if (s.status === 'pending') s.status = 'skipped';
      save();
      this.finish(id, playbookId, body, cancelled ? 'cancelled' : 'failed', t0, actor);
      throw err;
    } finally {
      if (createTask) {
        this.d.tasks.cancel(createTask);
        await this.d.tasks.wait(createTask).catch(() => undefined);
      }
      await ws
        ?.dispose()
        .catch((e: unknown) => this.d.log.warn('verification workspace cleanup failed', { err: e }));
      const sbx = fresh?.id ?? body.replay?.sandboxId ?? null;
      if (sbx) {
        try {
          const r = this.d.sandboxes.store.maybe(sbx);
          if (r && r.state !== 'destroyed' && r.state !== 'failed')
            await this.d.sandboxes.destroy(sbx, VERIFY_ACTOR, `verification ${id} ended`);
          if (body.replay) body.replay.destroyed = true;
        } catch (e) {
          this.d.log.warn('destroying the verification sandbox failed', { sandbox: sbx, err: e });
          if (body.replay) body.replay.destroyed = false;
        }
        save();
        this.changed(playbookId, id);
      }
    }
  }

  private finish(
    id: string,
    playbookId: string,
    body: object,
    status: Verification['status'],
    t0: number,
    actor: Actor,
  ): Verification {
    (body as { timings: Record<string, number> }).timings.total = Date.now() - t0;
    this.d.store.updateVerification(id, {
      status,
      finished_at: this.d.clock.now().toISOString(),
      body: JSON.stringify(body),
    });
    const row = this.d.store.verification(id);
    const v = verificationOf(row, this.d.store.head(playbookId)?.sha256 ?? null);
    this.d.audit.append({
      actor,
      action: 'playbook.verify',
      target: playbookId,
      data: {
        verification: id,
        revision: row.revision,
        sha256: row.sha256,
        status,
        steps: Object.fromEntries(v.steps.map((s) => [s.id, s.status])),
      },
    });
    this.changed(playbookId, id);
    return v;
  }

  private agentDiff(sandboxId: string, diffId: string | null): Diff {
    try {
      return this.d.diff.get(sandboxId, diffId ?? undefined, false);
    } catch (e) {
      throw new FluidError(
        'CONFLICT',
        `There is no diff of the agent's sandbox to compare the replay with (${toErrorPayload(e).message}). Run \`fluid diff ${sandboxId}\` or generate the playbook first.`,
      );
    }
  }

  /** A fresh certificate, the pinned host key and the relay, for the next ansible-playbook run. */
  private async aim(
    ws: Workspace,
    sbx: Sandbox,
    tools: AnsibleTools,
    verificationId: string,
    groups: readonly string[],
  ): Promise<void> {
    const row = this.d.sandboxes.store.row(sbx.id);
    if (!row.ip || !row.host_key_fp)
      throw new FluidError('CONFLICT', `Sandbox ${row.name} has no address or host key yet.`);
    const hostConn = await this.d.hosts.connection(row.host_id);
    const key = await pinnedHostKey(hostConn, row.ip, 22, row.host_key_fp);
    const login = sandboxLogin(row.id, GATEWAY);
    const certificate = this.d.ca.issue({
      principals: [sandboxPrincipal(row.id)],
      validitySeconds: 600,
      keyId: `playbook-verify:${verificationId}`,
      purpose: 'playbook-verify',
      sandboxId: row.id,
      sourceAddress: login.sourceAddress,
    });
    await ws.tunnel(() => this.d.hosts.connection(row.host_id), row.ip, 22);
    ws.target(
      { address: row.ip, user: login.user, certificate, hostKey: key, alias: `fluid-sandbox-${row.id}` },
      tools.python!,
      groups,
    );
  }

  private async play(
    ws: Workspace,
    tools: AnsibleTools,
    ctx: TaskContext,
    progress: (msg: string) => void,
  ): Promise<RunResult> {
    let n = 0;
    return runTool(ws, tools.playbook!, ['playbook.yml'], {
      signal: ctx.signal,
      timeoutMs: PLAY_TIMEOUT_MS,
      onEvent: (e) => {
        if (e.event === 'task') progress(`task ${++n}: ${String(e.task)}`);
      },
    });
  }

  private async waitTask(taskId: string, ctx: TaskContext, onProgress: (t: Task) => void): Promise<Task> {
    const off = this.d.bus.subscribe('tasks.changed', (t) => {
      if (t.id === taskId && t.status === 'running') onProgress(t);
    });
    try {
      const t = await this.d.tasks.wait(taskId, ctx.signal);
      if (ctx.signal.aborted) throw new FluidError('CANCELLED', 'Cancelled.');
      if (t.status !== 'succeeded')
        throw new FluidError(
          t.error?.code ?? 'INTERNAL',
          t.error?.message ?? `${t.title} ended ${t.status}.`,
        );
      return t;
    } finally {
      off();
    }
  }
}
