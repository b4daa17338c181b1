/**
 * What Fluid agrees to run on this machine. Verification runs ansible-playbook and ansible-lint on
 * the Fluid machine (the Ansible controller), and a playbook is code for the controller as much as
 * for the target: Jinja expressions are evaluated here (Ansible does not sandbox them), lookups read
 * local files and run local commands, action plugins such as copy and template read local paths,
 * `delegate_to`, `local_action` or an `ansible_ssh_common_args` variable run things here, and files
 * next to a playbook (library/, filter_plugins/, group_vars/) are loaded as code or variables.
 *
 * The agent writes tasks and is assumed adversarial, so before any tool sees a revision it must pass
 * this check: an allowlist of ansible.builtin modules that act on the target, of task and play
 * keywords, and of a small Jinja subset (variables, attribute and index access, literals,
 * operators, allowlisted filters and tests; no calls, no lookups, no underscored attributes). Shipped
 * files may only live under files/ and templates/ (the contract's BundlePath), templates pass the
 * same Jinja check, and copy/template sources must be shipped files. A refusal names the construct
 * and where it is; a person can still export the playbook and run it with their own Ansible.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type Node, type Pair } from 'yaml';
import type { Diagnostic } from '../../shared/contract/playbooks.ts';
import { isKeyword, shortModule } from './model.ts';
import { diagnosticAt, keyName, lineCol } from './yaml.ts';

/** Modules (ansible.builtin) that act on the target only, or whose controller side is checked here. */
export const ALLOWED_MODULES = new Set([
  'apt',
  'apt_key',
  'apt_repository',
  'dnf',
  'yum',
  'yum_repository',
  'rpm_key',
  'package',
  'package_facts',
  'dpkg_selections',
  'debconf',
  'copy',
  'template',
  'file',
  'lineinfile',
  'blockinfile',
  'replace',
  'user',
  'group',
  'getent',
  'systemd',
  'systemd_service',
  'service',
  'service_facts',
  'sysvinit',
  'cron',
  'command',
  'shell',
  'debug',
  'assert',
  'fail',
  'stat',
  'find',
  'wait_for',
  'get_url',
  'uri',
  'unarchive',
  'git',
  'pip',
  'meta',
  'set_fact',
  'hostname',
  'known_hosts',
  'reboot',
  'setup',
  'gather_facts',
  'slurp',
  'tempfile',
  'iptables',
  'expect',
]);

const PLAY_KEYS = new Set([
  'name',
  'hosts',
  'become',
  'become_user',
  'become_method',
  'gather_facts',
  'gather_subset',
  'vars',
  'vars_files',
  'tasks',
  'handlers',
  'pre_tasks',
  'post_tasks',
  'tags',
  'any_errors_fatal',
  'max_fail_percentage',
  'serial',
  'force_handlers',
  'ignore_errors',
  'ignore_unreachable',
  'environment',
  'check_mode',
  'diff',
  'order',
  'no_log',
  'throttle',
  'run_once',
  'timeout',
]);

const TASK_KEYS = new Set([
  'name',
  'args',
  'become',
  'become_user',
  'become_method',
  'changed_when',
  'check_mode',
  'delay',
  'diff',
  'environment',
  'failed_when',
  'ignore_errors',
  'listen',
  'loop',
  'loop_control',
  'no_log',
  'notify',
  'register',
  'retries',
  'run_once',
  'tags',
  'timeout',
  'until',
  'vars',
  'when',
  'block',
  'rescue',
  'always',
  'throttle',
  'async',
  'poll',
  'ignore_unreachable',
]);

/** Keywords whose string value is a bare Jinja expression. */
const EXPRESSION_KEYS = new Set(['when', 'changed_when', 'failed_when', 'until']);

/** The only vars file a playbook may load: the secrets the person supplies (or Fluid, for verification). */
export const SECRETS_VARS_FILE = 'vars/secrets.yml';

export const ALLOWED_FILTERS = new Set([
  'default',
  'd',
  'bool',
  'int',
  'float',
  'string',
  'lower',
  'upper',
  'capitalize',
  'title',
  'trim',
  'length',
  'count',
  'first',
  'last',
  'join',
  'list',
  'unique',
  'sort',
  'reverse',
  'min',
  'max',
  'sum',
  'abs',
  'round',
  'replace',
  'regex_replace',
  'regex_search',
  'regex_findall',
  'regex_escape',
  'quote',
  'basename',
  'dirname',
  'to_json',
  'to_nice_json',
  'to_yaml',
  'to_nice_yaml',
  'from_json',
  'from_yaml',
  'b64encode',
  'b64decode',
  'hash',
  'password_hash',
  'combine',
  'dict2items',
  'items2dict',
  'mandatory',
  'ternary',
  'split',
  'flatten',
  'difference',
  'intersect',
  'union',
  'indent',
  'center',
  'comment',
  'splitext',
  'zip',
  'urlsplit',
  'format',
  'wordcount',
  'e',
  'escape',
  'checksum',
  'type_debug',
]);

export const ALLOWED_TESTS = new Set([
  'defined',
  'undefined',
  'none',
  'equalto',
  'eq',
  'ne',
  'lt',
  'gt',
  'le',
  'ge',
  'in',
  'string',
  'number',
  'integer',
  'float',
  'boolean',
  'mapping',
  'sequence',
  'iterable',
  'changed',
  'failed',
  'succeeded',
  'success',
  'skipped',
  'finished',
  'started',
  'search',
  'match',
  'regex',
  'version',
  'divisibleby',
  'even',
  'odd',
  'lower',
  'upper',
  'contains',
  'any',
  'all',
  'subset',
  'superset',
  'truthy',
  'falsy',
  'sameas',
]);

/** Names that must not appear at all in an expression (they reach the controller or Python). */
const BANNED_NAMES = new Set([
  'lookup',
  'query',
  'q',
  'self',
  'range',
  'cycler',
  'joiner',
  'namespace',
  'lipsum',
  'dict',
  'config',
]);
const STATEMENTS = new Set(['if', 'elif', 'else', 'endif', 'for', 'endfor', 'set', 'raw', 'endraw']);

export interface SafetyInput {
  /** Paths of the files the revision ships (files/… and templates/…), with text for templates. */
  files: ReadonlyMap<string, string | null>;
}

/** Problems that make Fluid refuse to run a revision, with positions in the YAML. */
export function safetyDiagnostics(text: string, doc: Document.Parsed, input: SafetyInput): Diagnostic[] {
  const out: Diagnostic[] = [];
  const flag = (n: unknown, msg: string) =>
    out.push(
      diagnosticAt(
        text,
        (n as { range?: [number, number] } | null)?.range ?? undefined,
        'error',
        'safety',
        msg,
      ),
    );

  const root = doc.contents;
  if (!isSeq(root)) return out;
  for (const play of root.items) {
    if (!isMap(play)) continue;
    for (const pair of play.items) {
      const k = keyOf(pair);
      if (!PLAY_KEYS.has(k)) {
        flag(
          pair.key,
          `Fluid does not run plays with "${k}"${k === 'roles' ? ' (roles load code from this machine)' : ''}.`,
        );
        continue;
      }
      const v = pair.value as Node;
      if (k === 'tasks' || k === 'handlers' || k === 'pre_tasks' || k === 'post_tasks') {
        if (isSeq(v)) for (const t of v.items) checkTask(t as Node, flag, input, k === 'handlers');
      } else if (k === 'vars') checkVars(v, flag);
      else if (k === 'vars_files') {
        const list = isSeq(v) ? v.items : [v];
        for (const f of list)
          if (!isScalar(f) || f.value !== SECRETS_VARS_FILE)
            flag(
              f,
              `The only vars file Fluid provides is ${SECRETS_VARS_FILE} (the secrets the person supplies).`,
            );
      } else if (k === 'become_method') {
        if (!isScalar(v) || !['sudo', 'su'].includes(String(v.value)))
          flag(v, 'become_method is sudo or su.');
      } else checkStrings(v, flag);
    }
  }
  for (const [path, content] of input.files)
    if (path.startsWith('templates/') && content !== null)
      for (const p of templateProblems(content))
        out.push({
          severity: 'error',
          source: 'safety',
          message: `${path} line ${lineCol(content, p.offset).line}: ${p.message}`,
          line: 1,
          column: 1,
          endLine: 1,
          endColumn: 2,
        });
  return out;
}

type Flag = (n: unknown, msg: string) => void;

const keyOf = (p: Pair) => keyName(p);

function checkVars(v: Node, flag: Flag) {
  if (!isMap(v)) {
    flag(v, 'vars is a mapping of variable names to values.');
    return;
  }
  for (const p of v.items) {
    const name = keyOf(p);
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) flag(p.key, `"${name}" is not a plain variable name.`);
    else if (name.toLowerCase().startsWith('ansible_'))
      flag(p.key, `Variables named ansible_* change how Ansible connects and runs; Fluid sets those itself.`);
    checkStrings(p.value as Node, flag);
  }
}

function checkTask(t: Node, flag: Flag, input: SafetyInput, handler: boolean) {
  if (!isMap(t)) return;
  let module: string | null = null;
  let moduleNode: Pair | null = null;
  for (const pair of t.items) {
    const k = keyOf(pair);
    if (isKeyword(k)) {
      if (!TASK_KEYS.has(k)) {
        flag(
          pair.key,
          `Fluid does not run tasks with "${k}"${k === 'delegate_to' || k === 'local_action' || k === 'connection' ? ' (it would run on this machine)' : k.startsWith('with_') ? ' (use loop)' : ''}.`,
        );
        continue;
      }
      if (k === 'listen' && !handler) flag(pair.key, '"listen" belongs to handlers.');
      const v = pair.value as Node;
      if (k === 'block' || k === 'rescue' || k === 'always') {
        if (isSeq(v)) for (const inner of v.items) checkTask(inner as Node, flag, input, handler);
      } else if (EXPRESSION_KEYS.has(k)) {
        for (const e of isSeq(v) ? v.items : [v]) checkExpressionNode(e as Node, flag);
      } else if (k === 'vars') checkVars(v, flag);
      else if (k === 'register') {
        if (
          !isScalar(v) ||
          !/^[a-z_][a-z0-9_]*$/.test(String(v.value)) ||
          String(v.value).startsWith('ansible_')
        )
          flag(v, 'register names a plain variable (not ansible_*).');
      } else if (k === 'loop_control') {
        if (isMap(v))
          for (const p of v.items)
            if (!['label', 'loop_var', 'index_var', 'extended', 'pause'].includes(keyOf(p)))
              flag(p.key, `loop_control "${keyOf(p)}" is not allowed.`);
        checkStrings(v, flag);
      } else checkStrings(v, flag);
      continue;
    }
    if (module !== null) continue; // several modules: the structure check reports it
    module = k;
    moduleNode = pair;
  }
  if (module === null || !moduleNode) return;
  const bare = /^[a-z0-9_]+$/.test(module);
  const short = shortModule(module);
  if (!(bare || module.startsWith('ansible.builtin.')) || !ALLOWED_MODULES.has(short)) {
    flag(
      moduleNode.key,
      `Fluid does not run the module "${module}": it runs ansible.builtin modules that act on the target (${[...ALLOWED_MODULES].slice(0, 8).join(', ')}, …).`,
    );
    return;
  }
  const args = moduleNode.value as Node;
  const argsMap = isMap(args) ? args : isMap(t.get('args', true)) ? (t.get('args', true) as Node) : null;
  const arg = (name: string): Node | undefined =>
    argsMap && isMap(argsMap) ? (argsMap.get(name, true) as Node | undefined) : undefined;
  const truthy = (n: Node | undefined) =>
    isScalar(n) && (n.value === true || ['yes', 'true', 'on', '1'].includes(String(n.value).toLowerCase()));

  if (short === 'set_fact' && isMap(args))
    for (const p of args.items)
      if (keyOf(p).startsWith('ansible_')) flag(p.key, 'set_fact cannot set ansible_* variables.');
  if (short === 'debug' && arg('var') !== undefined) checkExpressionNode(arg('var')!, flag);
  if (short === 'assert') {
    const that = arg('that');
    if (that) for (const e of isSeq(that) ? that.items : [that]) checkExpressionNode(e as Node, flag);
  }
  if (
    short === 'meta' &&
    !(
      isScalar(args) &&
      ['flush_handlers', 'noop', 'end_play', 'end_host', 'clear_facts', 'refresh_inventory'].includes(
        String(args.value),
      )
    )
  )
    flag(args, 'meta takes flush_handlers, noop, end_play or end_host.');
  if (['copy', 'template', 'unarchive'].includes(short)) {
    const src = arg('src');
    const remote = truthy(arg('remote_src'));
    if (src !== undefined && !remote) {
      const value = isScalar(src) ? String(src.value) : '';
      const want = short === 'template' ? 'templates/' : 'files/';
      if (!value.startsWith(want) || !input.files.has(value))
        flag(
          src,
          `${short} reads src on this machine: it must be a file the revision ships (${want}…)${value ? `; "${value}" is not one` : ''}.`,
        );
    }
    if (short === 'template' && src === undefined)
      flag(moduleNode.key, 'template needs src (a file under templates/).');
    if (
      short === 'unarchive' &&
      src !== undefined &&
      !remote &&
      !String((src as { value?: unknown }).value ?? '').startsWith('files/')
    )
      flag(src, 'unarchive reads src on this machine unless remote_src is true.');
  }
  checkStrings(
    args,
    flag,
    short === 'assert' ? new Set(['that']) : short === 'debug' ? new Set(['var']) : undefined,
  );
}

/** Every string under a node: templated strings must use the allowed Jinja subset. */
function checkStrings(n: Node | null | undefined, flag: Flag, skipKeys?: Set<string>): void {
  if (n === null || n === undefined) return;
  if (isScalar(n)) {
    if (typeof n.value !== 'string' || n.tag === '!unsafe' || n.tag === '!vault') return;
    const problems = templateProblems(n.value);
    if (problems.length) flag(n, problems[0]!.message);
    return;
  }
  if (isMap(n)) {
    for (const p of n.items) {
      if (isScalar(p.key) && typeof p.key.value === 'string' && hasDelimiters(p.key.value))
        flag(p.key, 'Keys may not contain Jinja.');
      if (skipKeys?.has(keyOf(p))) continue;
      checkStrings(p.value as Node, flag);
    }
    return;
  }
  if (isSeq(n)) for (const i of n.items) checkStrings(i as Node, flag);
  else if (isPair(n)) checkStrings(n.value as Node, flag);
}

function checkExpressionNode(n: Node, flag: Flag) {
  if (!isScalar(n)) {
    flag(n, 'A condition is a string (a Jinja expression) or a boolean.');
    return;
  }
  if (typeof n.value === 'boolean' || n.value === null) return;
  const s = String(n.value);
  const problem = hasDelimiters(s) ? templateProblems(s)[0] : expressionProblem(s);
  if (problem) flag(n, problem.message);
}

export const hasDelimiters = (s: string) => /\{\{|\{%|\{#/.test(s);

interface Problem {
  offset: number;
  message: string;
}

/** Problems in a string Ansible templates (task arguments, template files). */
export function templateProblems(s: string): Problem[] {
  const out: Problem[] = [];
  let i = 0;
  let raw = false;
  while (i < s.length) {
    const open = s.slice(i).search(/\{[{%#]/);
    if (open < 0) break;
    const start = i + open;
    const kind = s[start + 1]!;
    const close = kind === '{' ? '}}' : kind === '%' ? '%}' : '#}';
    const end = findClose(s, start + 2, close);
    if (end < 0) {
      if (!raw) out.push({ offset: start, message: `An unclosed "{${kind}" (Jinja) block.` });
      break;
    }
    let inner = s.slice(start + 2, end);
    inner = inner.replace(/^[-+]/, '').replace(/[-+]$/, '');
    if (kind === '%') {
      const stmt = inner.trim();
      const word = /^[a-z]+/.exec(stmt)?.[0] ?? '';
      if (raw) {
        if (word === 'endraw') raw = false;
      } else if (!STATEMENTS.has(word)) {
        out.push({
          offset: start,
          message: `The Jinja statement "{% ${word || stmt.slice(0, 20)} %}" is not allowed (only if, for, set and raw).`,
        });
      } else if (word === 'raw') raw = true;
      else if (word === 'if' || word === 'elif')
        pushIf(out, start, expressionProblem(stmt.slice(word.length)));
      else if (word === 'for') {
        const m = /^for\s+([a-z_][a-z0-9_]*(?:\s*,\s*[a-z_][a-z0-9_]*)?)\s+in\s+([\s\S]+)$/i.exec(stmt);
        if (!m) out.push({ offset: start, message: 'A for loop reads "for x in expression".' });
        else pushIf(out, start, expressionProblem(m[2]!.replace(/\s+recursive\s*$/, '')));
      } else if (word === 'set') {
        const m = /^set\s+([a-z][a-z0-9_]*)\s*=\s*([\s\S]+)$/i.exec(stmt);
        if (!m) out.push({ offset: start, message: 'set reads "set name = expression".' });
        else pushIf(out, start, expressionProblem(m[2]!));
      }
    } else if (kind === '{' && !raw) pushIf(out, start, expressionProblem(inner));
    i = end + 2;
  }
  return out;
}

function pushIf(out: Problem[], offset: number, p: Problem | null) {
  if (p) out.push({ offset: offset + p.offset, message: p.message });
}

function findClose(s: string, from: number, close: string): number {
  let quote: string | null = null;
  for (let i = from; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (s.startsWith(close, i)) return i;
  }
  return -1;
}

interface Token {
  t: 'id' | 'num' | 'str' | 'op' | 'p';
  v: string;
  at: number;
}

const OPERATORS = [
  '==',
  '!=',
  '<=',
  '>=',
  '//',
  '**',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '~',
  '|',
  '.',
  ',',
  '=',
  ':',
];
const WORD_OPS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else']);
const LITERALS = new Set(['true', 'false', 'none', 'True', 'False', 'None', 'omit']);

function tokenize(s: string): Token[] | Problem {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i))![0];
      out.push({ t: 'id', v: m, at: i });
      i += m.length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9][0-9_]*(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(s.slice(i))![0];
      out.push({ t: 'num', v: m, at: i });
      i += m.length;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      while (j < s.length && s[j] !== c) {
        if (s[j] === '\\') {
          v += s[j + 1] ?? '';
          j += 2;
        } else v += s[j++];
      }
      if (j >= s.length) return { offset: i, message: 'An unclosed string in a Jinja expression.' };
      out.push({ t: 'str', v, at: i });
      i = j + 1;
    } else if ('()[]'.includes(c)) {
      out.push({ t: 'p', v: c, at: i });
      i++;
    } else {
      const op = OPERATORS.find((o) => s.startsWith(o, i));
      if (!op) return { offset: i, message: `"${c}" is not allowed in a Jinja expression here.` };
      out.push({ t: 'op', v: op, at: i });
      i += op.length;
    }
  }
  return out;
}

/**
 * Whether a Jinja expression stays within what Fluid runs: variables, attribute and index access,
 * literals, operators, allowlisted filters (with arguments) and tests; nothing callable otherwise.
 */
export function expressionProblem(expr: string): Problem | null {
  const toks = tokenize(expr);
  if (!Array.isArray(toks)) return toks;
  /** Open brackets: 'call' (filter/test arguments), 'group', 'index' or 'list'. */
  const stack: Array<'call' | 'group' | 'index' | 'list'> = [];
  let prev: Token | null = null;
  let callable = false; // prev is a filter or test name
  const bad = (t: Token, message: string): Problem => ({ offset: t.at, message });
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    const next = toks[k + 1];
    if (t.t === 'str' && t.v.includes('__'))
      return bad(t, 'Strings with "__" are not allowed in expressions.');
    if (t.t === 'id' && !WORD_OPS.has(t.v) && !LITERALS.has(t.v)) {
      const after = prev?.v;
      if (after === '.') {
        if (t.v.startsWith('_')) return bad(t, `The attribute "${t.v}" is not allowed.`);
        if (next?.v === '(') return bad(t, `Method calls (".${t.v}(…)") are not allowed; use a filter.`);
        callable = false;
      } else if (after === '|') {
        if (!ALLOWED_FILTERS.has(t.v)) return bad(t, `The filter "${t.v}" is not allowed.`);
        callable = true;
      } else if (after === 'is' || (after === 'not' && toks[k - 2]?.v === 'is')) {
        if (!ALLOWED_TESTS.has(t.v)) return bad(t, `The test "${t.v}" is not allowed.`);
        callable = true;
      } else {
        if (t.v.startsWith('_')) return bad(t, `The name "${t.v}" is not allowed.`);
        if (BANNED_NAMES.has(t.v)) return bad(t, `"${t.v}" is not allowed: it reaches this machine.`);
        if (next?.v === '(') return bad(t, `Calling "${t.v}(…)" is not allowed.`);
        callable = false;
      }
      prev = t;
      continue;
    }
    if (t.t === 'p') {
      if (t.v === '(') {
        if (callable && prev?.t === 'id') stack.push('call');
        else if (
          !prev ||
          prev.t === 'op' ||
          (prev.t === 'p' && '(['.includes(prev.v)) ||
          WORD_OPS.has(prev.v)
        )
          stack.push('group');
        else return bad(t, 'Calls are not allowed in expressions.');
      } else if (t.v === '[') {
        if (
          prev &&
          (prev.t === 'id' || prev.t === 'str' || (prev.t === 'p' && ')]'.includes(prev.v))) &&
          !WORD_OPS.has(prev.v)
        )
          stack.push('index');
        else stack.push('list');
      } else {
        const open = stack.pop();
        if (!open || (t.v === ')') !== (open === 'call' || open === 'group'))
          return bad(t, 'Unbalanced brackets in an expression.');
      }
      callable = false;
      prev = t;
      continue;
    }
    if (t.t === 'op') {
      if (t.v === '=' && stack.at(-1) !== 'call') return bad(t, '"=" only names a filter argument.');
      if (t.v === ':') return bad(t, 'Slices and dictionaries are not allowed in expressions.');
      if (t.v === '**') return bad(t, '"**" is not allowed.');
    }
    callable = false;
    prev = t;
  }
  if (stack.length) return { offset: expr.length, message: 'Unbalanced brackets in an expression.' };
  return null;
}
