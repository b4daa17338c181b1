/**
 * Generates awkward shell commands (quoting, escapes, line continuations, comments, heredocs,
 * here-strings, glued words) for the bash-agreement test. Deterministic for a seed. The
 * programs used are harmless readers; file names are relative, so a command run in the scratch
 * directory can only touch that directory.
 */

export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const CHARS = [
  ...'abrmi-E0O12F',
  ' ',
  '\t',
  '\n',
  "'",
  '"',
  '\\',
  '$',
  '`',
  '#',
  '{',
  '}',
  ',',
  '~',
  '=',
  ':',
  ';',
];
const SPECIAL_CHARS = [...'|&<>()*?[]!%@^'];
const PIECES = [
  '\\\\',
  "\\'",
  '\\"',
  '\\$',
  '\\`',
  '\\#',
  '\\ ',
  '\\\n',
  "$'\\\\'",
  "$'\\''",
  '"\\\\"',
  "''",
  '""',
  '$x',
  '"$x"',
  '${x}',
  '~',
  '-',
  '--',
  '#x',
  '{a,b}',
  '{}',
  'a=b',
  'a=~',
];

export function generator(seed: number) {
  const rnd = xorshift(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const chance = (p: number) => rnd() < p;

  const fragment = (): string => {
    let raw = '';
    for (let i = 1 + Math.floor(rnd() * 4); i > 0; i--)
      raw += chance(0.25) ? pick(SPECIAL_CHARS) : pick(CHARS);
    switch (Math.floor(rnd() * 9)) {
      case 0:
        return raw.replace(/[^a-zA-Z0-9]/g, (c) => (c === '\n' ? "$'\\n'" : '\\' + c));
      case 1:
        return "'" + raw.replace(/'/g, "'\\''") + "'";
      case 2:
        return '"' + raw.replace(/(["\\$`])/g, '\\$1') + '"';
      case 3:
        return (
          "$'" +
          raw
            .replace(/(['\\])/g, '\\$1')
            .replace(/\n/g, '\\n')
            .replace(/\t/g, '\\t') +
          "'"
        );
      case 4:
        return '$"' + raw.replace(/(["\\$`])/g, '\\$1') + '"';
      case 5:
        return pick(PIECES);
      default:
        return raw.replace(/[^a-zA-Z0-9_./=,:@%+-]/g, '');
    }
  };
  const word = () => {
    let w = '';
    for (let i = 1 + Math.floor(rnd() * 3); i > 0; i--) w += fragment();
    return w || 'x';
  };
  const heredoc = () => {
    const quoted = chance(0.5);
    const lines = Array.from({ length: Math.floor(rnd() * 3) }, () =>
      pick(['hi', '$x', '${x}', '\\$(rm x)', ' EOF', 'EOF ', 'rm x', 'a\\', '\\\\']),
    );
    return { op: quoted ? "<<'EOF'" : '<<EOF', body: [...lines, 'EOF'].join('\n') };
  };
  const command = (bodies: string[]): string => {
    const parts = [
      pick([
        'echo',
        'cat',
        'grep x',
        "awk '{print}'",
        'sed -n p',
        'head -n1',
        'ls',
        'printf "%s\\n"',
        'wc -l',
        ':',
      ]),
    ];
    for (let i = Math.floor(rnd() * 5); i > 0; i--) parts.push(word());
    if (chance(0.3)) {
      const r = pick(['2>/dev/null', '>/dev/null', '2>&1', '<<<', '<f', '1>&-', '2>&-', '>&2', 'heredoc']);
      if (r === '<<<') parts.push('<<<' + word());
      else if (r === 'heredoc') {
        const h = heredoc();
        parts.push(h.op);
        bodies.push(h.body);
      } else parts.push(r);
    }
    if (chance(0.2)) parts.push(word());
    if (chance(0.1)) parts.push('#' + pick([' c', 'x; rm y', '']));
    return parts.join(pick([' ', ' ', '\t', ' \\\n ']));
  };
  return (): string => {
    const bodies: string[] = [];
    const cmds = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => {
      const c = command(bodies);
      return chance(0.15) ? `echo "$(${c})"` : chance(0.1) ? `( ${c} )` : c;
    });
    let script = cmds.join(pick(['; ', '\n', ' && ', ' | ', ' || ']));
    if (bodies.length) script += '\n' + bodies.join('\n');
    return script;
  };
}
