/**
 * Approval rules: allow / ask / deny per tool, argument pattern and mode. The user's rules (Settings)
 * come first, first match wins; then the built-in default: tools with risk "high" ask, the rest are
 * allowed. (Read-only mode already hides every tool that changes something.)
 */
export interface Rule {
  tool: string;
  args?: Record<string, string>;
  mode?: 'edit' | 'read-only';
  decision: 'allow' | 'ask' | 'deny';
}

export interface RuleDecision {
  decision: 'allow' | 'ask' | 'deny';
  reason: string;
}

function globToRegExp(glob: string): RegExp {
  return compiled(
    `glob:${glob}`,
    () =>
      new RegExp(
        `^${glob
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      ),
  )!;
}

/**
 * Every tool call is decided against every rule: a rule's patterns are compiled once and kept (a
 * RegExp without the g or y flag keeps no state between tests, so one can be shared). null: the
 * pattern does not compile.
 */
const regexps = new Map<string, RegExp | null>();
const MAX_REGEXPS = 1024;

function compiled(key: string, make: () => RegExp): RegExp | null {
  let re = regexps.get(key);
  if (re === undefined) {
    try {
      re = make();
    } catch {
      re = null;
    }
    if (regexps.size >= MAX_REGEXPS) regexps.clear();
    regexps.set(key, re);
  }
  return re;
}

function argText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v ?? null);
}

export function ruleMatches(
  rule: Rule,
  call: { tool: string; args: Record<string, unknown>; mode: string },
): boolean {
  if (!globToRegExp(rule.tool).test(call.tool)) return false;
  if (rule.mode && rule.mode !== call.mode) return false;
  for (const [name, pattern] of Object.entries(rule.args ?? {})) {
    const re = compiled(`arg:${pattern}`, () => new RegExp(pattern));
    if (!re) return false; // an invalid pattern never matches (Settings validation reports it)
    if (!(name in call.args) || !re.test(argText(call.args[name]))) return false;
  }
  return true;
}

export function decideRule(
  rules: Rule[],
  call: { tool: string; args: Record<string, unknown>; mode: string; risk: 'low' | 'medium' | 'high' },
): RuleDecision {
  for (const [i, r] of rules.entries()) {
    if (ruleMatches(r, call)) {
      const args = r.args
        ? ` with ${Object.entries(r.args)
            .map(([k, v]) => `${k}~/${v}/`)
            .join(', ')}`
        : '';
      return {
        decision: r.decision,
        reason: `rule ${i + 1} (${r.tool}${args}${r.mode ? ` in ${r.mode} mode` : ''}: ${r.decision})`,
      };
    }
  }
  return call.risk === 'high'
    ? { decision: 'ask', reason: 'high-risk tools ask by default' }
    : { decision: 'allow', reason: 'allowed by default' };
}
