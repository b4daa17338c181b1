/**
 * A getopt_long-compatible option scanner that errs on the side of denial.
 *
 * It follows GNU rules (options may follow operands, `--` ends options, long options may be
 * abbreviated, short options cluster) so that an option cannot hide where the real program
 * would still see it. A word the shell computes at run time and that could start with `-`
 * is an option as far as this scanner is concerned.
 */
import { deny, mayStartWith, show, type Word } from './types.ts';

export interface OptionSpec {
  /** getopt style: 'ab:c::' (`:` takes an argument, `::` an optional attached one). */
  short?: string;
  /** 'name' flag, 'name=' required argument, 'name=?' optional argument. */
  long?: string[];
  /** '-i' or '--in-place' → why it is unsafe. Abbreviations of denied long options are denied too. */
  deny?: Record<string, string>;
  /** Every option of this program is harmless: unknown options are accepted. */
  permissive?: boolean;
  /** Options end at the first operand (getopt '+', wrappers like env/timeout/xargs). */
  stopAtOperand?: boolean;
  /** getopt_long accepts unique prefixes of long options. Default true. */
  abbreviations?: boolean;
  /** `-5` style numeric options (head -5, nice -10) are options, not operands. */
  numericFlags?: boolean;
}

export interface ParsedOption {
  /** Canonical name: '-n' or '--lines'. */
  name: string;
  value: Word | null;
}

export interface ParsedArgs {
  options: ParsedOption[];
  operands: Word[];
  /** Index in the input where option parsing stopped (for stopAtOperand), else args.length. */
  rest: number;
}

type Arity = 'flag' | 'arg' | 'opt';

interface Compiled {
  short: Map<string, Arity>;
  long: Map<string, Arity>;
  deny: Map<string, string>;
  spec: OptionSpec;
}

const cache = new WeakMap<OptionSpec, Compiled>();

function compile(spec: OptionSpec): Compiled {
  let c = cache.get(spec);
  if (c) return c;
  const short = new Map<string, Arity>();
  const s = spec.short ?? '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (s[i + 1] === ':' && s[i + 2] === ':') {
      short.set(ch, 'opt');
      i += 2;
    } else if (s[i + 1] === ':') {
      short.set(ch, 'arg');
      i += 1;
    } else short.set(ch, 'flag');
  }
  const long = new Map<string, Arity>();
  for (const l of spec.long ?? []) {
    if (l.endsWith('=?')) long.set(l.slice(0, -2), 'opt');
    else if (l.endsWith('=')) long.set(l.slice(0, -1), 'arg');
    else long.set(l, 'flag');
  }
  c = { short, long, deny: new Map(Object.entries(spec.deny ?? {})), spec };
  cache.set(spec, c);
  return c;
}

/** Does the compiled spec deny anything at all (so computed option-like words matter)? */
const strict = (c: Compiled) => !c.spec.permissive || c.deny.size > 0;

function matchLong(c: Compiled, name: string, raw: string): { name: string; arity: Arity } | null {
  const abbrev = c.spec.abbreviations !== false;
  const exact = c.long.get(name);
  if (exact) return { name: `--${name}`, arity: exact };
  for (const [d, reason] of c.deny) {
    if (!d.startsWith('--')) continue;
    const dn = d.slice(2);
    if (dn === name || (abbrev && dn.startsWith(name))) deny(reason);
  }
  if (abbrev) {
    const hits = [...c.long.keys()].filter((k) => k.startsWith(name));
    if (hits.length === 1) return { name: `--${hits[0]}`, arity: c.long.get(hits[0]!)! };
    if (hits.length > 1 && !c.spec.permissive) deny(`ambiguous option ${raw}`);
  }
  if (c.spec.permissive) return null;
  return deny(`unknown option ${raw}`);
}

/**
 * Scan `args` (the words after the command name). `who` names the program in reasons.
 */
export function parseOptions(args: Word[], spec: OptionSpec, who: string): ParsedArgs {
  const c = compile(spec);
  const options: ParsedOption[] = [];
  const operands: Word[] = [];
  let i = 0;
  let ended = false;
  const computedOption = (w: Word) =>
    deny(`${who}: ${show(w)} is computed at run time and could become an option`);
  for (; i < args.length; i++) {
    const w = args[i]!;
    if (ended) {
      operands.push(w);
      continue;
    }
    if (w.value === null) {
      if ((mayStartWith(w) || (w.multi && w.prefix === '')) && strict(c)) computedOption(w);
      if (spec.stopAtOperand) break;
      operands.push(w);
      continue;
    }
    const v = w.value;
    if (v === '--') {
      if (spec.stopAtOperand) {
        i++;
        break;
      }
      ended = true;
      continue;
    }
    if (!v.startsWith('-') || v === '-') {
      if (spec.stopAtOperand) break;
      operands.push(w);
      continue;
    }
    if (spec.numericFlags && /^-\d+$/.test(v)) {
      options.push({ name: v, value: null });
      continue;
    }
    const takeNext = (): Word => {
      const next = args[++i];
      if (!next) deny(`${who}: option ${v} is missing its argument`);
      if (next.multi && next.prefix === '' && strict(c)) computedOption(next);
      return next;
    };
    if (v.startsWith('--')) {
      const eq = v.indexOf('=');
      const name = eq < 0 ? v.slice(2) : v.slice(2, eq);
      const m = matchLong(c, name, v);
      if (!m) {
        options.push({ name: `--${name}`, value: null });
        continue;
      }
      if (m.arity === 'flag') {
        if (eq >= 0 && !spec.permissive) deny(`${who}: option --${name} takes no value`);
        options.push({ name: m.name, value: null });
      } else if (eq >= 0) {
        const val = v.slice(eq + 1);
        options.push({ name: m.name, value: { ...w, text: val, value: val, prefix: val } });
      } else if (m.arity === 'arg') options.push({ name: m.name, value: takeNext() });
      else options.push({ name: m.name, value: null });
      continue;
    }
    // A cluster of short options.
    for (let j = 1; j < v.length; j++) {
      const ch = v[j]!;
      const reason = c.deny.get(`-${ch}`);
      if (reason) deny(reason);
      const arity = c.short.get(ch);
      if (!arity) {
        if (!spec.permissive) deny(`${who}: unknown option -${ch}`);
        options.push({ name: `-${ch}`, value: null });
        continue;
      }
      if (arity === 'flag') {
        options.push({ name: `-${ch}`, value: null });
        continue;
      }
      const attached = v.slice(j + 1);
      if (attached) {
        options.push({ name: `-${ch}`, value: { ...w, text: attached, value: attached, prefix: attached } });
      } else if (arity === 'arg') options.push({ name: `-${ch}`, value: takeNext() });
      else options.push({ name: `-${ch}`, value: null });
      break;
    }
  }
  return { options, operands, rest: i };
}

export const has = (p: ParsedArgs, ...names: string[]): boolean =>
  p.options.some((o) => names.includes(o.name));

export const valuesOf = (p: ParsedArgs, ...names: string[]): Array<Word | null> =>
  p.options.filter((o) => names.includes(o.name)).map((o) => o.value);
