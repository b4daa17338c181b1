/**
 * The playbook model: plays (hosts, become, vars, vars_files), tasks and handlers, each task one
 * module call with its keywords (name, when, notify, register, become, tags, loop, …).
 *
 * The source of truth is the YAML document itself, not a table of rows: every operation (add,
 * update, remove, move a task or handler; set a variable) edits the parsed Document in place, so a
 * person's comments, key order and formatting survive the agent's edits and the other way round.
 * Tasks are addressed by their 1-based position in the play's section or by their exact name.
 */
import { isMap, isScalar, isSeq, YAMLMap, YAMLSeq, type Document, type Node } from 'yaml';
import type { Diagnostic } from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import { diagnosticAt, keyName, newDocument, parseYaml, renderYaml, yamlDiagnostics } from './yaml.ts';

export const MODULE_NAME = /^[a-z0-9_]+(\.[a-z0-9_]+){0,2}$/;
export type Section = 'tasks' | 'handlers';

/** Task keywords Ansible knows (everything else in a task is its module). */
export const TASK_KEYWORDS = new Set([
  'name',
  'action',
  'args',
  'async',
  'become',
  'become_exe',
  'become_flags',
  'become_method',
  'become_user',
  'changed_when',
  'check_mode',
  'collections',
  'connection',
  'debugger',
  'delay',
  'delegate_facts',
  'delegate_to',
  'diff',
  'environment',
  'failed_when',
  'ignore_errors',
  'ignore_unreachable',
  'listen',
  'local_action',
  'loop',
  'loop_control',
  'module_defaults',
  'no_log',
  'notify',
  'poll',
  'port',
  'register',
  'remote_user',
  'retries',
  'run_once',
  'tags',
  'throttle',
  'timeout',
  'until',
  'vars',
  'when',
  'block',
  'rescue',
  'always',
]);

/** The order keywords are written in after the module (Ansible style: name, module, then these). */
const KEYWORD_ORDER = [
  'args',
  'loop',
  'loop_control',
  'when',
  'register',
  'changed_when',
  'failed_when',
  'notify',
  'listen',
  'become',
  'become_user',
  'environment',
  'no_log',
  'tags',
];

export interface TaskSpec {
  name: string;
  module: string;
  /** The module's arguments (a mapping), or null for modules without any. */
  args?: Record<string, unknown> | null;
  when?: string | string[];
  notify?: string | string[];
  listen?: string;
  register?: string;
  become?: boolean;
  tags?: string[];
  loop?: unknown;
  no_log?: boolean;
  changed_when?: unknown;
  failed_when?: unknown;
  environment?: Record<string, string>;
}

export interface TaskView {
  /** 1-based position in its section. */
  index: number;
  name: string | null;
  module: string | null;
  args: unknown;
  keywords: Record<string, unknown>;
  /** A block (block/rescue/always) rather than a module call. */
  block: boolean;
}

export const isKeyword = (k: string) => TASK_KEYWORDS.has(k) || k.startsWith('with_');

export function validateTaskSpec(t: TaskSpec): void {
  if (!t.name || !t.name.trim())
    throw new FluidError('VALIDATION', 'A task needs a name that says what it does (e.g. "Install nginx").');
  if (t.name.length > 300) throw new FluidError('VALIDATION', 'A task name is at most 300 characters.');
  if (!MODULE_NAME.test(t.module) || isKeyword(t.module))
    throw new FluidError(
      'VALIDATION',
      `"${t.module}" is not an Ansible module name (e.g. ansible.builtin.apt, ansible.builtin.copy).`,
    );
  if (t.args !== undefined && t.args !== null && (typeof t.args !== 'object' || Array.isArray(t.args)))
    throw new FluidError('VALIDATION', "A task's args are a mapping of the module's parameters.");
  if (t.register !== undefined && !/^[a-z_][a-z0-9_]{0,63}$/.test(t.register))
    throw new FluidError('VALIDATION', 'register names a variable: lowercase letters, digits and _.');
}

/** The plain mapping of a task, keys in Ansible's usual order. */
export function taskObject(t: TaskSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { name: t.name };
  o[t.module] = t.args && Object.keys(t.args).length ? t.args : null;
  const kw: Record<string, unknown> = {
    loop: t.loop,
    when: t.when,
    register: t.register,
    changed_when: t.changed_when,
    failed_when: t.failed_when,
    notify: t.notify,
    listen: t.listen,
    become: t.become,
    environment: t.environment,
    no_log: t.no_log,
    tags: t.tags,
  };
  for (const k of KEYWORD_ORDER) if (kw[k] !== undefined) o[k] = kw[k];
  return o;
}

export class PlaybookDoc {
  readonly doc: Document;

  constructor(doc: Document) {
    this.doc = doc;
    // A comment right above the first task belongs to that task (it moves with it), not to the list.
    for (const p of this.plays())
      for (const s of ['tasks', 'handlers']) {
        const seq = p.get(s, true);
        if (isSeq(seq) && seq.commentBefore && seq.items[0] && !(seq.items[0] as Node).commentBefore) {
          (seq.items[0] as Node).commentBefore = seq.commentBefore;
          seq.commentBefore = undefined;
        }
      }
  }

  /** Parse YAML; refuses text that is not YAML or not a list of plays. */
  static parse(text: string): PlaybookDoc {
    const doc = parseYaml(text);
    const errors = yamlDiagnostics(text, doc).filter((d) => d.severity === 'error');
    if (errors.length)
      throw new FluidError(
        'VALIDATION',
        `The playbook is not valid YAML: ${errors.map((e) => `line ${e.line}:${e.column} ${e.message}`).join('; ')}`,
        { diagnostics: errors },
      );
    const structure = structureDiagnostics(text, doc).filter((d) => d.severity === 'error');
    if (structure.length)
      throw new FluidError(
        'VALIDATION',
        `The playbook's structure is wrong: ${structure.map((e) => `line ${e.line}: ${e.message}`).join('; ')}`,
        { diagnostics: structure },
      );
    return new PlaybookDoc(doc);
  }

  /** A new playbook with one play. */
  static empty(play: { name: string; hosts?: string; become?: boolean; comment?: string }): PlaybookDoc {
    const doc = newDocument([
      {
        // ansible-lint (name[casing]) wants names to start with an uppercase letter.
        name: /^[a-z]/.test(play.name) ? `Apply ${play.name}` : play.name,
        hosts: play.hosts ?? 'all',
        become: play.become ?? true,
        gather_facts: false,
        tasks: [],
      },
    ]);
    if (play.comment) doc.commentBefore = play.comment;
    return new PlaybookDoc(doc);
  }

  render(): string {
    return renderYaml(this.doc);
  }

  plays(): YAMLMap[] {
    const root = this.doc.contents;
    if (!isSeq(root)) return [];
    return root.items.filter((p): p is YAMLMap => isMap(p));
  }

  play(index = 0): YAMLMap {
    const p = this.plays()[index];
    if (!p)
      throw new FluidError(
        'NOT_FOUND',
        `The playbook has ${this.plays().length} play(s); play ${index + 1} does not exist.`,
      );
    return p;
  }

  /** The section's sequence, created (empty) when asked to. */
  section(section: Section, play = 0, create = false): YAMLSeq | null {
    const p = this.play(play);
    const node = p.get(section, true);
    if (isSeq(node)) {
      // An empty flow list ("tasks: []") becomes a block list once it has tasks.
      if (create && node.flow && !node.items.length) node.flow = false;
      return node;
    }
    if (node !== undefined && !(isScalar(node) && node.value === null))
      throw new FluidError('VALIDATION', `The play's ${section} is not a list.`);
    if (!create) return null;
    const seq = new YAMLSeq();
    p.set(section, seq);
    // Handlers come after tasks in a play, by convention.
    if (section === 'tasks' && p.has('handlers')) {
      const items = p.items;
      const t = items.findIndex((x) => keyName(x) === 'tasks');
      const h = items.findIndex((x) => keyName(x) === 'handlers');
      if (t > h) items.splice(h, 0, items.splice(t, 1)[0]!);
    }
    return seq;
  }

  list(section: Section, play = 0): TaskView[] {
    const seq = this.section(section, play);
    if (!seq) return [];
    return seq.items.map((n, i) => viewOf(n as Node, i + 1));
  }

  /** All tasks and handlers of every play, with where they are. */
  all(): Array<TaskView & { play: number; section: Section }> {
    const out: Array<TaskView & { play: number; section: Section }> = [];
    this.plays().forEach((_, p) => {
      for (const s of ['tasks', 'handlers'] as const)
        for (const t of this.list(s, p)) out.push({ ...t, play: p, section: s });
    });
    return out;
  }

  taskCount(): number {
    return this.all().length;
  }

  private resolve(section: Section, ref: number | string, play: number): number {
    const list = this.list(section, play);
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref < 1 || ref > list.length)
        throw new FluidError(
          'NOT_FOUND',
          `There is no ${section === 'tasks' ? 'task' : 'handler'} ${ref}: the play has ${list.length}.`,
        );
      return ref - 1;
    }
    const hits = list.filter((t) => t.name === ref);
    if (hits.length === 1) return hits[0]!.index - 1;
    if (!hits.length)
      throw new FluidError(
        'NOT_FOUND',
        `No ${section === 'tasks' ? 'task' : 'handler'} named "${ref}". Names: ${list.map((t) => `"${t.name}"`).join(', ') || 'none'}.`,
      );
    throw new FluidError(
      'VALIDATION',
      `${hits.length} ${section} are named "${ref}"; address one by its number (${hits.map((t) => t.index).join(', ')}).`,
    );
  }

  add(section: Section, spec: TaskSpec, opts: { play?: number; position?: number } = {}): number {
    validateTaskSpec(spec);
    if (section === 'handlers' && this.list('handlers', opts.play ?? 0).some((h) => h.name === spec.name))
      throw new FluidError('CONFLICT', `A handler named "${spec.name}" exists; notify it or update it.`);
    const seq = this.section(section, opts.play ?? 0, true)!;
    const node = this.doc.createNode(taskObject(spec)) as Node;
    const at = opts.position === undefined ? seq.items.length : opts.position - 1;
    if (at < 0 || at > seq.items.length)
      throw new FluidError('VALIDATION', `Position ${opts.position} is outside 1..${seq.items.length + 1}.`);
    seq.items.splice(at, 0, node);
    return at + 1;
  }

  /** Change a task in place: a new module and args, or keywords (null removes a keyword). */
  update(
    section: Section,
    ref: number | string,
    patch: { name?: string; module?: string; args?: Record<string, unknown> | null } & Record<
      string,
      unknown
    >,
    play = 0,
  ): number {
    const i = this.resolve(section, ref, play);
    const seq = this.section(section, play)!;
    const node = seq.items[i];
    if (!isMap(node)) throw new FluidError('VALIDATION', `Item ${i + 1} of ${section} is not a mapping.`);
    const view = viewOf(node as Node, i + 1);
    if (view.block)
      throw new FluidError('VALIDATION', 'Blocks are edited as YAML, not through task updates.');
    if (patch.name !== undefined) {
      if (!patch.name || typeof patch.name !== 'string')
        throw new FluidError('VALIDATION', 'A task needs a name.');
      node.set(this.doc.createNode('name'), patch.name);
    }
    if (patch.module !== undefined || patch.args !== undefined) {
      const module = patch.module ?? view.module;
      if (!module || !MODULE_NAME.test(module) || isKeyword(module))
        throw new FluidError('VALIDATION', `"${module}" is not an Ansible module name.`);
      const args = patch.args !== undefined ? patch.args : (view.args as Record<string, unknown> | null);
      const at = node.items.findIndex((p) => keyName(p) === view.module);
      const pair = this.doc.createPair(module, args && Object.keys(args).length ? args : null);
      if (at >= 0) node.items.splice(at, 1, pair as (typeof node.items)[number]);
      else node.items.splice(1, 0, pair as (typeof node.items)[number]);
    }
    for (const [k, v] of Object.entries(patch)) {
      if (k === 'name' || k === 'module' || k === 'args' || v === undefined) continue;
      if (!isKeyword(k)) throw new FluidError('VALIDATION', `"${k}" is not a task keyword.`);
      if (v === null) node.delete(k);
      else if (node.has(k)) node.set(k, this.doc.createNode(v));
      else node.items.push(this.doc.createPair(k, v) as (typeof node.items)[number]);
    }
    return i + 1;
  }

  remove(section: Section, ref: number | string, play = 0): TaskView {
    const i = this.resolve(section, ref, play);
    const seq = this.section(section, play)!;
    const view = viewOf(seq.items[i] as Node, i + 1);
    seq.items.splice(i, 1);
    return view;
  }

  /** Move a task to a new 1-based position (its comments travel with it). */
  move(section: Section, ref: number | string, to: number, play = 0): number {
    const i = this.resolve(section, ref, play);
    const seq = this.section(section, play)!;
    if (!Number.isInteger(to) || to < 1 || to > seq.items.length)
      throw new FluidError('VALIDATION', `Position ${to} is outside 1..${seq.items.length}.`);
    const [node] = seq.items.splice(i, 1);
    seq.items.splice(to - 1, 0, node);
    return to;
  }

  setVar(name: string, value: unknown, play = 0): void {
    if (!/^[a-z_][a-z0-9_]{0,99}$/.test(name))
      throw new FluidError('VALIDATION', 'A variable name is lowercase letters, digits and _.');
    const p = this.play(play);
    let vars: unknown = p.get('vars', true);
    if (!isMap(vars)) {
      vars = new YAMLMap();
      // vars before tasks, by convention.
      const at = p.items.findIndex((x) => ['tasks', 'handlers'].includes(keyName(x)));
      const pair = this.doc.createPair('vars', vars);
      if (at >= 0) p.items.splice(at, 0, pair as (typeof p.items)[number]);
      else p.items.push(pair as (typeof p.items)[number]);
    }
    (vars as YAMLMap).set(name, this.doc.createNode(value));
  }
}

function viewOf(n: Node, index: number): TaskView {
  if (!isMap(n)) return { index, name: null, module: null, args: null, keywords: {}, block: false };
  let name: string | null = null;
  let module: string | null = null;
  let args: unknown = null;
  const keywords: Record<string, unknown> = {};
  let block = false;
  for (const pair of n.items) {
    const k = keyName(pair);
    const v =
      pair.value && typeof (pair.value as Node).toJSON === 'function'
        ? (pair.value as Node).toJSON()
        : pair.value;
    if (k === 'name') name = typeof v === 'string' ? v : v === null || v === undefined ? null : String(v);
    else if (k === 'block') block = true;
    else if (isKeyword(k)) keywords[k] = v;
    else if (module === null) {
      module = k;
      args = v;
    }
  }
  return { index, name, module, args, keywords, block };
}

/** The short name of a module ('ansible.builtin.copy' → 'copy'), for matching. */
export const shortModule = (m: string) => m.replace(/^ansible\.(builtin|legacy)\./, '');

/** Structural problems Ansible would refuse (or Fluid cannot address), with positions. */
export function structureDiagnostics(text: string, doc: Document.Parsed): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (n: unknown, msg: string, severity: Diagnostic['severity'] = 'error') =>
    out.push(
      diagnosticAt(
        text,
        (n as { range?: [number, number] } | null)?.range ?? undefined,
        severity,
        'structure',
        msg,
      ),
    );
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    at(root, 'The playbook is empty: it is a list of plays.');
    return out;
  }
  if (!isSeq(root)) {
    at(root, 'A playbook is a list of plays (each item starts with "- ").');
    return out;
  }
  for (const play of root.items) {
    if (!isMap(play)) {
      at(play, 'Each play is a mapping (hosts, tasks, …).');
      continue;
    }
    if (!play.has('hosts') && !play.has('import_playbook') && !play.has('ansible.builtin.import_playbook'))
      at(play, 'A play needs "hosts".');
    for (const section of ['tasks', 'handlers', 'pre_tasks', 'post_tasks']) {
      const s = play.get(section, true);
      if (s === undefined || (isScalar(s) && s.value === null)) continue;
      if (!isSeq(s)) {
        at(s, `"${section}" is a list of tasks.`);
        continue;
      }
      checkTasks(s, section, at);
    }
  }
  return out;
}

function checkTasks(
  s: YAMLSeq,
  section: string,
  at: (n: unknown, msg: string, sev?: Diagnostic['severity']) => void,
) {
  for (const t of s.items) {
    if (!isMap(t)) {
      at(t, `Each item of "${section}" is a task (a mapping).`);
      continue;
    }
    const keys = t.items.map((p) => keyName(p));
    if (keys.includes('block')) {
      for (const k of ['block', 'rescue', 'always']) {
        const inner = t.get(k, true);
        if (inner === undefined) continue;
        if (!isSeq(inner)) at(inner, `"${k}" is a list of tasks.`);
        else checkTasks(inner, k, at);
      }
      continue;
    }
    const modules = keys.filter((k) => k && !isKeyword(k));
    if (!modules.length) at(t, 'This task calls no module.');
    else if (modules.length > 1)
      at(t, `This task names several modules (${modules.join(', ')}); a task calls exactly one.`);
    if (!keys.includes('name')) at(t, 'Give the task a name that says what it does.', 'warning');
  }
}
