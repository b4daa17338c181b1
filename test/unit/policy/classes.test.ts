/**
 * The read-only policy closed by class, each class tried with generated variants. Every pool
 * must be non-empty: a generator that produced nothing would make these tests pass vacuously.
 *
 * 1. Variable names: every place bash reads a name evaluates `a[subscript]` as arithmetic, which
 *    runs `$(...)`. Every name-taking builtin and keyword x every way to spell a subscript is
 *    denied; real bash shows the payloads are live, and that whatever the policy allows of the
 *    number/text builtins runs nothing.
 * 2. curl and wget: every option of the installed tools and of the checked-in lists (later
 *    releases) x a set of values. Only the reviewed options below may pass, and only with the
 *    values they are reviewed for.
 * 3. Redirections whose target is computed and could name /dev/tcp or /dev/udp.
 * 4. Files and variables that configure a client.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createShellPolicy, type ShellPolicy } from '../../../src/core/policy/shell.ts';
import { BASH_BUILTINS, BASH_KEYWORDS } from '../../../src/core/policy/names.ts';
import { bashAvailable, runForMarkers } from './oracle.ts';

let policy: ShellPolicy;
before(async () => {
  assert.ok(
    bashAvailable(),
    '/bin/bash is needed to check the policy against real bash: install bash (apt-get install bash)',
  );
  policy = await createShellPolicy();
});

const asUser = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') ? 'nobody' : undefined;

function nonEmpty<T>(what: string, pool: T[], min = 1): T[] {
  assert.ok(pool.length >= min, `${what}: the generated pool has ${pool.length} entries (expected ≥ ${min})`);
  return pool;
}

/** Commands from `pool` whose decision is not `want`, for the failure message. */
function wrong(pool: string[], want: 'allow' | 'deny'): string[] {
  return pool
    .map((c) => ({ c, r: policy.check(c) }))
    .filter(({ r }) => r.decision !== want)
    .map(({ c, r }) => `  ${JSON.stringify(c)} → ${r.decision} (${r.reason})`);
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// ---------------------------------------------------------------------------------------------
// 1. Variable names with subscripts

/** Writes the marker `m` in the current directory when bash runs it. */
const PAYLOAD = '$(: >m)';

/** Ways to hand bash a name with a subscript: each gives a word and the setup it needs. */
const NAME_FORMS: Array<{ setup: string; word: string }> = [
  { setup: '', word: `'a[${PAYLOAD}]'` },
  { setup: '', word: `"a[\\${PAYLOAD.slice(1)}]"` },
  { setup: '', word: `a['${PAYLOAD}']` },
  { setup: '', word: `a'[${PAYLOAD}]'` },
  { setup: '', word: `$'a[${PAYLOAD}]'` },
  { setup: '', word: `a\\[\\$\\(:\\ \\>m\\)\\]` },
  { setup: `n='a[${PAYLOAD}]'; `, word: '"$n"' },
  { setup: `n='a[${PAYLOAD}]'; `, word: '$n' },
  { setup: `n='a[${PAYLOAD}]'; `, word: '${n}' },
  { setup: `x='b[${PAYLOAD}]'; `, word: 'a[x]' },
  { setup: `x='b[${PAYLOAD}]'; `, word: "'a[x]'" },
];

/**
 * Where bash reads a name, by builtin or keyword (and `$`-forms grouped under their own keys).
 * `{N}` is the name. Every builtin and keyword the audit marks as taking names must be here.
 */
const NAME_TEMPLATES: Record<string, string[]> = {
  read: ['read {N} < /etc/hostname', 'read -r -a {N} <<< x', 'echo x | read {N}', 'read -ra{N} <<< x'],
  mapfile: ['mapfile -t {N} < /etc/hostname', 'mapfile {N} <<< x'],
  readarray: ['readarray {N} <<< x'],
  printf: ['printf -v {N} x', 'printf -v{N} x', 'builtin printf -v {N} x'],
  wait: [
    'cat <(true) >/dev/null; wait -p {N} $!',
    'cat <(true) >/dev/null; wait -n -p {N}',
    'cat <(true) >/dev/null; wait -np {N}',
    'cat <(true) >/dev/null; wait -fp {N} $!',
    'wait -p{N}',
    'cat <(true) >/dev/null; builtin wait -p {N} $!',
    'cat <(true) >/dev/null; command wait -p {N} $!',
  ],
  getopts: ['getopts a {N} -a', 'getopts ab {N}'],
  declare: ['declare {N}=1', 'declare -p {N}', 'declare -a {N}', 'declare -n {N}', 'declare -F {N}'],
  typeset: ['typeset {N}=1', 'typeset -p {N}'],
  local: ['f() { local {N}=1; }; f'],
  export: ['export {N}', 'export {N}=1', 'export -n {N}'],
  readonly: ['readonly {N}=1', 'readonly -p {N}'],
  unset: ['a=(1); unset {N}', 'a=(1); unset -v {N}', 'unset {N}'],
  let: ['let {N}', 'let y={N}'],
  test: ['test -v {N}', 'test -R {N}'],
  '[': ['[ -v {N} ]', '[ -R {N} ]'],
  for: ['for {N} in 1; do :; done'],
  select: ['select {N} in 1; do break; done'],
  coproc: ['coproc {N} { :; }'],
  '[[': ['[[ -v {N} ]]', '[[ -R {N} ]]', '[[ {N} -eq 1 ]]', '[[ 1 -lt {N} ]]'],
  '((': ['(( {N} ))', '(( y = {N} ))'],
  '$((': ['echo $(( {N} ))', 'y={N}; echo $((y))'],
  '${!': ['y={N}; echo ${!y}', 'y={N}; echo "${!y}"'],
  '${x:offset}': ['y={N}; z=abc; echo "${z:y}"', 'z=(1 2); echo "${z[@]:{N}}"'],
  '${a[i]}': ['z=(1 2); echo "${z[{N}]}"', 'y={N}; z=(1 2); echo "${z[y]}"'],
  'a=([i]=v)': ['z=([{N}]=1)', 'y={N}; z=([y]=1)', 'z=(1); z+=([{N}]=2)'],
  '{NAME}>': [': {{N}}>/dev/null', 'echo x {{N}}</dev/null'],
};

/** Builtins whose arguments are numbers or text: whatever the policy allows here must run nothing. */
const TEXT_TEMPLATES = [
  'cd {N}',
  'type {N}',
  'help {N}',
  'alias {N}',
  'command -v {N}',
  'hash -t {N}',
  'printf %d {N}',
  'printf %s {N}',
  "printf '%(%s)T' {N}",
  "printf '%*d' {N} 1",
  'echo {N}',
  ': {N}',
  'true {N}',
  'shift {N}',
  '(exit {N})',
  'f() { return {N}; }',
  'for i in 1; do break {N}; done',
  'for i in 1; do continue {N}; done',
  'caller {N}',
  'dirs {N}',
  'dirs +{N}',
  'pushd {N}',
  'popd +{N}',
  'jobs {N}',
  'wait {N}',
  'kill -l {N}',
  'read -t {N} x',
  'read -n {N} x',
  'mapfile -n {N} x',
  'ulimit {N}',
  'umask {N}',
  'history {N}',
  'test {N} = x',
  '[ {N} -eq 1 ]',
  '[ 1 -lt {N} ]',
  'test {N} -eq 1',
  'y={N}; [ "$y" -eq 1 ]',
  'y={N}; printf %d "$y"',
  'trap -p {N}',
  'shopt {N}',
  'set -o {N}',
  'pwd {N}',
];

/** Builtins that run code, in the forms that do. */
const CODE_TEMPLATES: Record<string, string[]> = {
  eval: ['eval id'],
  source: ['source /etc/hostname'],
  '.': ['. /etc/hostname'],
  exec: ['exec id', 'exec 3<>/tmp/x'],
  command: ['command eval id'],
  builtin: ['builtin eval id'],
  trap: ["trap 'id' EXIT", 'trap id INT'],
  bind: [`bind -x '"\\C-a": id'`],
  complete: ['complete -C id x', 'complete -F f x'],
  compgen: ['compgen -C id x', 'compgen -F f x'],
  compopt: ['compopt -o default x'],
  enable: ['enable -f /tmp/x.so x', 'enable -n echo'],
  fc: ['fc -s', 'fc -e id'],
  jobs: ['jobs -x id', 'jobs -lx id %1'],
  fg: ['fg'],
  bg: ['bg'],
  disown: ['disown -a'],
  suspend: ['suspend'],
  logout: ['logout'],
  time: ['time eval id'],
  function: ['function f { id; }'],
  mapfile: ['mapfile -C id -c 1 x < /etc/hostname'],
};

function expand(templates: string[], forms = NAME_FORMS): string[] {
  const out: string[] = [];
  for (const t of templates) for (const f of forms) out.push(f.setup + t.replaceAll('{N}', f.word));
  return out;
}

/** Enough forms to show each group is live in real bash (running all of them takes a minute). */
const LIVE_FORMS = [0, 2, 6, 9].map((i) => NAME_FORMS[i]!);

const installedBash = (flag: '-b' | '-k'): string[] =>
  execFileSync('/bin/bash', ['-c', `compgen ${flag}`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);

describe('class 1: variable names with array subscripts', () => {
  test('every builtin and reserved word of the installed bash is in the audit', () => {
    const builtins = nonEmpty('compgen -b', installedBash('-b'), 40);
    const keywords = nonEmpty('compgen -k', installedBash('-k'), 15);
    const missing = [
      ...builtins.filter((b) => !(b in BASH_BUILTINS)),
      ...keywords.filter((k) => !(k in BASH_KEYWORDS)),
    ];
    assert.deepEqual(missing, [], `not in BASH_BUILTINS/BASH_KEYWORDS (src/core/policy/names.ts)`);
  });

  test('every name-taking builtin has generated variants, and the policy denies them all', () => {
    const audited = [...Object.entries(BASH_BUILTINS), ...Object.entries(BASH_KEYWORDS)]
      .filter(([, a]) => a.reads === 'names')
      .map(([n]) => n);
    nonEmpty('name-taking builtins in the audit', audited, 15);
    const untested = audited.filter((n) => !NAME_TEMPLATES[n]?.length);
    assert.deepEqual(untested, [], 'name-taking builtins without generated variants');
    const pool = nonEmpty('name variants', expand(Object.values(NAME_TEMPLATES).flat()), 500);
    const failures = wrong(pool, 'deny');
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${pool.length} allowed:\n${failures.slice(0, 40).join('\n')}`,
    );
  });

  test('every code-running builtin is denied in the forms that run code', () => {
    const code = Object.entries(BASH_BUILTINS)
      .filter(([, a]) => a.reads === 'code')
      .map(([n]) => n);
    const untested = nonEmpty('code builtins', code, 15).filter((n) => !CODE_TEMPLATES[n]?.length);
    assert.deepEqual(untested, [], 'code-running builtins without variants');
    const failures = wrong(nonEmpty('code variants', Object.values(CODE_TEMPLATES).flat(), 25), 'deny');
    assert.deepEqual(failures, []);
  });

  test('real bash runs the payloads of the name variants (they are live), in every evaluating group', () => {
    const groups = [
      'read',
      'printf',
      'wait',
      'declare',
      'local',
      'unset',
      'let',
      'test',
      '[[',
      '((',
      '$((',
      '${!',
      '${x:offset}',
      '${a[i]}',
      'a=([i]=v)',
      '{NAME}>',
    ];
    const cmds: string[] = [];
    const owner: string[] = [];
    for (const g of groups)
      for (const c of expand(NAME_TEMPLATES[g]!, LIVE_FORMS)) {
        cmds.push(c);
        owner.push(g);
      }
    const made = runForMarkers(nonEmpty('evaluating variants', cmds, 60), { asUser });
    const live = new Set(owner.filter((_, i) => made[i]));
    assert.deepEqual(
      groups.filter((g) => !live.has(g)),
      [],
      'groups in which no variant made bash run the payload (the generator lost its teeth)',
    );
  });

  test('what the policy allows of the number and text builtins runs nothing in real bash', () => {
    const pool = nonEmpty('text/number variants', expand(TEXT_TEMPLATES), 300);
    const allowed = nonEmpty(
      'allowed text/number variants',
      pool.filter((c) => policy.check(c).decision === 'allow'),
      50,
    );
    const made = runForMarkers(allowed, { asUser });
    const ran = allowed.filter((_, i) => made[i]);
    assert.deepEqual(ran, [], 'allowed commands in which bash ran the payload');
  });
});

// ---------------------------------------------------------------------------------------------
// 2. curl and wget: every option

interface ToolOption {
  names: string[];
  takesValue: boolean;
}

/** `--long [-s] [<value>]` lines: the checked-in list, plus what the installed binary prints. */
function optionList(file: string, helpArgs: string[] | null, bin: string): ToolOption[] {
  const parse = (line: string): ToolOption | null => {
    const m =
      /^\s*(?:(-[^-\s,]+),?\s+)?(--[A-Za-z0-9][\w.-]*)(?:[\s=]+(<[^>]*>|\[\S*\]|[A-Z][A-Za-z/=]*))?/.exec(
        line,
      );
    if (!m) return null;
    return { names: [m[2]!, ...(m[1] ? [m[1]] : [])], takesValue: !!m[3] };
  };
  const fromFile = readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('--'))
    .map((l) => {
      const [long, ...rest] = l.split(/\s+/);
      const short = rest.find((r) => /^-[^-]/.test(r));
      return { names: [long!, ...(short ? [short] : [])], takesValue: rest.includes('<value>') };
    });
  nonEmpty(`checked-in ${file}`, fromFile, 100);
  const all = new Map<string, ToolOption>();
  for (const o of fromFile) all.set(o.names[0]!, o);
  if (helpArgs) {
    const r = spawnSync(bin, helpArgs, { encoding: 'utf8' });
    if (r.error) {
      // Not installed: the checked-in list stands in for the binary's own.
      console.log(`# ${bin} is not installed; using the checked-in list only (${fromFile.length} options)`);
    } else {
      const fromHelp = r.stdout
        .split('\n')
        .map(parse)
        .filter((o): o is ToolOption => o !== null);
      nonEmpty(`${bin} ${helpArgs.join(' ')}`, fromHelp, 100);
      for (const o of fromHelp) {
        const known = all.get(o.names[0]!);
        all.set(
          o.names[0]!,
          known
            ? {
                names: [...new Set([...known.names, ...o.names])],
                takesValue: known.takesValue || o.takesValue,
              }
            : o,
        );
      }
    }
  }
  return [...all.values()];
}

// eslint-disable-next-line no-control-regex -- control characters are what is checked
const CONTROL = /[\x00-\x1f\x7f]/;
const plain = (v: string) => !CONTROL.test(v);
const nowhere = (v: string) => ['-', '/dev/null', '/dev/stdout', '/dev/stderr'].includes(v);
const keyFile = (v: string) => plain(v) && (!/^[a-z0-9+.-]+:/i.test(v) || /^\.?\//.test(v));
const keyType = (v: string) => /^(PEM|DER|P12)$/i.test(v);
const header = (v: string) =>
  plain(v) &&
  !v.startsWith('@') &&
  !/^\s*(x-(http-)?method(-override)?|content-length|transfer-encoding)\s*:/i.test(v);
const urlLike = (v: string) =>
  plain(v) &&
  (/^https?:\/\//i.test(v) ||
    (/^[a-z0-9.-]+(:\d+)?(\/|$)/i.test(v) && !/^(ftp|dict|ldap|imap|smtp|pop3)\./i.test(v)));

/** Values every valued option is tried with. */
const VALUES = [
  'http://evil.example/',
  '/tmp/fluid-policy-x',
  '-',
  '/dev/null',
  '@/etc/passwd',
  'GET',
  'HEAD',
  'POST',
  'get',
  'x',
  '5',
  'PEM',
  'ENG',
  'pkcs11:token=x',
  'Accept: text/plain',
  'Content-Length: 1',
  'X-HTTP-Method-Override: PUT',
  '%{http_code}',
  '%output{/tmp/x}',
  'a\r\nX: b',
];

/** The reviewed options: a flag, or the values a valued option may take. Everything else is denied. */
type Review = 'flag' | 'info' | ((v: string) => boolean);

const CURL_REVIEWED: Record<string, Review> = {
  ...Object.fromEntries(
    (
      '--silent -s --show-error -S --fail -f --fail-with-body --fail-early --head -I --include -i ' +
      '--show-headers --location -L --verbose -v --insecure -k --ipv4 -4 --ipv6 -6 --no-buffer -N ' +
      '--globoff -g --disable -q --junk-session-cookies -j --compressed --tr-encoding --http0.9 ' +
      '--http1.0 -0 --http1.1 --http2 --http2-prior-knowledge --http3 --http3-only ' +
      '--retry-all-errors --retry-connrefused --no-progress-meter --progress-bar -# --path-as-is ' +
      '--raw --ignore-content-length --tcp-nodelay --tcp-fastopen --no-keepalive --no-sessionid ' +
      '--no-alpn --no-npn --basic --digest --anyauth --ntlm --negotiate --disallow-username-in-url ' +
      '--ssl --ssl-reqd --ssl-allow-beast --ssl-no-revoke --ssl-revoke-best-effort --cert-status ' +
      '--false-start --ca-native --tlsv1 -1 --tlsv1.0 --tlsv1.1 --tlsv1.2 --tlsv1.3 --trace-time ' +
      '--styled-output'
    )
      .split(' ')
      .map((n) => [n, 'flag' as Review]),
  ),
  ...Object.fromEntries('--help -h --manual -M --version -V'.split(' ').map((n) => [n, 'info' as Review])),
  '--output': nowhere,
  '-o': nowhere,
  '--dump-header': nowhere,
  '-D': nowhere,
  '--request': (v) => v === 'GET' || v === 'HEAD',
  '-X': (v) => v === 'GET' || v === 'HEAD',
  '--header': header,
  '-H': header,
  '--write-out': (v) => plain(v) && !v.startsWith('@') && !/%output/i.test(v),
  '-w': (v) => plain(v) && !v.startsWith('@') && !/%output/i.test(v),
  '--url': urlLike,
  '--cert': keyFile,
  '-E': keyFile,
  '--key': keyFile,
  '--cert-type': keyType,
  '--key-type': keyType,
  ...Object.fromEntries(
    (
      '--cacert --capath --crlfile --pinnedpubkey --pass --ciphers --tls13-ciphers --curves ' +
      '--tls-max --user-agent -A --referer -e --user -u --cookie -b --oauth2-bearer --range -r ' +
      '--time-cond -z --max-time -m --connect-timeout --retry --retry-delay --retry-max-time ' +
      '--max-redirs --max-filesize --limit-rate --speed-limit -Y --speed-time -y ' +
      '--expect100-timeout --keepalive-time --happy-eyeballs-timeout-ms --interface --local-port ' +
      '--noproxy'
    )
      .split(' ')
      .map((n) => [n, plain as Review]),
  ),
};

const WGET_REVIEWED: Record<string, Review> = {
  ...Object.fromEntries(
    (
      '--quiet -q --verbose -v --no-verbose --server-response -S --spider --debug -d ' +
      '--no-check-certificate --inet4-only -4 --inet6-only -6 --content-on-error --no-proxy ' +
      '--no-cache --no-cookies --https-only --no-hsts --no-config --no-netrc --ignore-length ' +
      '--no-dns-cache --no-http-keep-alive --auth-no-challenge --no-iri --retry-connrefused ' +
      '--show-progress'
    )
      .split(' ')
      .map((n) => [n, 'flag' as Review]),
  ),
  ...Object.fromEntries('--help -h --version -V'.split(' ').map((n) => [n, 'info' as Review])),
  '-nv': 'flag',
  '--output-document': nowhere,
  '-O': nowhere,
  '--method': (v) => /^(GET|HEAD)$/i.test(v),
  '--header': header,
  '--certificate': keyFile,
  '--private-key': keyFile,
  '--certificate-type': keyType,
  '--private-key-type': keyType,
  ...Object.fromEntries(
    (
      '--ca-certificate --ca-directory --crl-file --pinnedpubkey --ciphers --secure-protocol ' +
      '--user-agent -U --referer --user --password --http-user --http-password --timeout -T ' +
      '--dns-timeout --connect-timeout --read-timeout --tries -t --wait -w --waitretry ' +
      '--limit-rate --max-redirect --retry-on-http-error --compression --bind-address ' +
      '--prefer-family --progress --report-speed --local-encoding --remote-encoding'
    )
      .split(' ')
      .map((n) => [n, plain as Review]),
  ),
};

/** Bash words for a value (ANSI-C quoting when it holds control characters). */
const word = (v: string) =>
  CONTROL.test(v)
    ? `$'${v.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/'/g, "\\'")}'`
    : shq(v);

function optionCases(
  tool: 'curl' | 'wget',
  options: ToolOption[],
  reviewed: Record<string, Review>,
): Array<{ cmd: string; want: 'allow' | 'deny' }> {
  const url = 'http://localhost/';
  const tail = tool === 'wget' ? `-O - ${url}` : url;
  const cases: Array<{ cmd: string; want: 'allow' | 'deny' }> = [];
  for (const o of options)
    for (const name of o.names) {
      const review = reviewed[name];
      if (review === 'info') {
        cases.push(
          { cmd: `${tool} ${name}`, want: 'allow' },
          { cmd: `${tool} ${name} ${url}`, want: 'deny' },
        );
        continue;
      }
      if (review === 'flag' || (!o.takesValue && review === undefined)) {
        cases.push({ cmd: `${tool} ${name} ${tail}`, want: review === 'flag' ? 'allow' : 'deny' });
        if (review === undefined)
          for (const v of VALUES) cases.push({ cmd: `${tool} ${name} ${word(v)} ${tail}`, want: 'deny' });
        continue;
      }
      for (const v of VALUES) {
        const want = typeof review === 'function' && review(v) ? 'allow' : 'deny';
        cases.push({ cmd: `${tool} ${name} ${word(v)} ${tail}`, want });
        if (name.startsWith('--')) cases.push({ cmd: `${tool} ${word(`${name}=${v}`)} ${tail}`, want });
        else if (name.length === 2) cases.push({ cmd: `${tool} ${word(`${name}${v}`)} ${tail}`, want });
      }
    }
  return cases;
}

describe('class 2: curl and wget, every option', () => {
  for (const [tool, file, help, reviewed] of [
    ['curl', 'curl-options.txt', ['--help', 'all'], CURL_REVIEWED],
    ['wget', 'wget-options.txt', ['--help'], WGET_REVIEWED],
  ] as const) {
    test(`${tool}: only reviewed options pass, and only with reviewed values`, () => {
      const options = nonEmpty(`${tool} options`, optionList(file, [...help], tool), 100);
      const cases = nonEmpty(`${tool} cases`, optionCases(tool, options, reviewed), 1000);
      const failures = cases
        .map((c) => ({ ...c, r: policy.check(c.cmd) }))
        .filter((c) => c.r.decision !== c.want)
        .map((c) => `  ${JSON.stringify(c.cmd)}: want ${c.want}, got ${c.r.decision} (${c.r.reason})`);
      assert.equal(
        failures.length,
        0,
        `${failures.length} of ${cases.length}:\n${failures.slice(0, 40).join('\n')}`,
      );
      // Every reviewed option exists in some release, so none of the reviews is dead weight.
      const known = new Set(options.flatMap((o) => o.names));
      assert.deepEqual(
        Object.keys(reviewed).filter((n) => !known.has(n)),
        [],
        'reviewed options missing from the option lists',
      );
    });
  }

  test('abbreviated long options are refused (both tools accept unique prefixes)', () => {
    const pool = nonEmpty('abbreviations', [
      'curl --sil http://localhost/',
      'curl --doh http://evil.example/ http://localhost/',
      'curl --prox evil.example:3128 http://localhost/',
      'curl --conf /tmp/x http://localhost/',
      'wget --spid http://localhost/',
      'wget --post-d=x -O - http://localhost/',
      'wget --exec=x -O - http://localhost/',
    ]);
    assert.deepEqual(wrong(pool, 'deny'), []);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Computed targets of redirections that could name /dev/tcp or /dev/udp

const SOCKET_TARGETS = [
  ...['/dev/tcp/', '/dev/udp/'].flatMap((p) =>
    ['$h/$p', '${h}/80', '1.2.3.4/$p', '1.2.3.4/$(echo 80)', '$h/`echo 80`'].flatMap((rest) => [
      `${p}${rest}`,
      `"${p}${rest}"`,
    ]),
  ),
  '$f',
  '"$f"',
  '${f}',
  '${f:-/dev/tcp/1.2.3.4/80}',
  '"$(echo /dev/tcp/1.2.3.4/80)"',
  '$(echo /dev/tcp/1.2.3.4/80)',
  '`echo /dev/tcp/1.2.3.4/80`',
  '/dev/{tcp,udp}/1.2.3.4/80',
  '/dev/tc?/1.2.3.4/80',
  '/dev/t*/1.2.3.4/80',
  '/de[v]/tcp/1.2.3.4/80',
  "$'\\x2fdev/tcp/1.2.3.4/80'",
  '$x/tcp/1.2.3.4/80',
  '/dev/$x/1.2.3.4/80',
  '~+/tcp/1.2.3.4/80',
  '~-/tcp/1.2.3.4/80',
  '~1/tcp/1.2.3.4/80',
  '~+1/tcp/1.2.3.4/80',
  'tcp/1.2.3.4/80',
  '//dev/tcp/1.2.3.4/80',
  '/dev//tcp/1.2.3.4/80',
  '/dev/tcp/1.2.3.4/80',
  "'/dev/tcp/1.2.3.4/80'",
];

const SOCKET_CONTEXTS = [
  (t: string) => `cat < ${t}`,
  (t: string) => `cat <${t}`,
  (t: string) => `cat 0< ${t}`,
  (t: string) => `read l < ${t}`,
  (t: string) => `while read l; do :; done < ${t}`,
  (t: string) => `{ cat; } < ${t}`,
  (t: string) => `( cat ) < ${t}`,
  (t: string) => `echo "$(< ${t})"`,
  (t: string) => `mapfile a < ${t}`,
  (t: string) => `cd /dev; cat < ${t}`,
  (t: string) => `pushd /dev; cat < ${t}`,
  (t: string) => `timeout 5 cat < ${t}`,
  (t: string) => `echo x > ${t}`,
  (t: string) => `exec 3<> ${t}`,
];

describe('class 3: redirection targets that could name /dev/tcp or /dev/udp', () => {
  test('every computed or socket-like target is denied in every redirection context', () => {
    const pool = nonEmpty(
      'socket variants',
      SOCKET_TARGETS.flatMap((t) => SOCKET_CONTEXTS.map((c) => c(t))),
      400,
    );
    const failures = wrong(pool, 'deny');
    assert.equal(failures.length, 0, failures.slice(0, 40).join('\n'));
  });

  test('redirections from files, /proc and process substitutions stay allowed', () => {
    const pool = nonEmpty('reading redirections', [
      'cat < /etc/hosts',
      'cat < /proc/net/tcp',
      'wc -l < /proc/net/udp6',
      'for f in /etc/*.conf; do wc -l < "$f"; done',
      'while read l; do echo "$l"; done < <(ls /etc)',
      'cat < ~/.profile',
    ]);
    assert.deepEqual(wrong(pool, 'allow'), []);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Files and variables that configure a client

/** Paths a configuration option is tried with, outside the program's own directory. */
const FOREIGN_PATHS = (own: string) => [
  '/tmp/x.conf',
  'x.conf',
  './x.conf',
  '/dev/stdin',
  '/dev/fd/0',
  '/proc/self/fd/0',
  `${own}/../../tmp/x.conf`,
  '~/x.conf',
  '"$f"',
  '"$(echo /tmp/x.conf)"',
];

/** [command with {F} for the file, the program's own directory or null when every file is refused]. */
const CONFIG_OPTIONS: Array<[string, string | null]> = [
  ["mysql --defaults-file={F} -e 'SELECT 1'", null],
  ["mysql --defaults-file {F} -e 'SELECT 1'", null],
  ["mysql --defaults-extra-file={F} -e 'SELECT 1'", null],
  ['mysqladmin --defaults-file={F} status', null],
  ['mysqladmin --defaults-extra-file={F} status', null],
  ["mariadb --defaults-extra-file={F} -e 'SELECT 1'", null],
  ["mysql --character-sets-dir={F} -e 'SELECT 1'", null],
  ["mysql --plugin-dir={F} -e 'SELECT 1'", null],
  ['kubectl --kubeconfig={F} get pods', null],
  ['kubectl --kubeconfig {F} get pods', null],
  ['kubectl get pods --kubeconfig={F}', null],
  ['oc --kubeconfig {F} get pods', null],
  ['helm --kubeconfig {F} list', null],
  ['helm list --registry-config {F}', null],
  ['helm list --repository-config {F}', null],
  ['docker --config {F} ps', null],
  ["psql -f {F} -c 'select 1'", null],
  ['curl -K {F} http://localhost/', null],
  ['curl --config {F} http://localhost/', null],
  ['wget --config={F} -O - http://localhost/', null],
  ['wget -i {F} -O -', null],
  ['ssh -F {F} host', null],
  ['openssl req -config {F} -new', null],
  ['modprobe -n -C {F} loop', null],
  ['git --git-dir={F} -c core.pager=id log', null],
  ['nginx -t -c {F}', '/etc/nginx'],
  ['haproxy -c -f {F}', '/etc/haproxy'],
  ['apachectl -t -f {F}', '/etc/apache2'],
  ['httpd -t -f {F}', '/etc/httpd'],
  ['sshd -t -f {F}', '/etc/ssh'],
  ['named-checkconf {F}', '/etc/bind'],
  ['unbound-checkconf {F}', '/etc/unbound'],
  ['doveconf -n -c {F}', '/etc/dovecot'],
  ['postconf -c {F} -n', '/etc/postfix'],
  ['fail2ban-client -c {F} status', '/etc/fail2ban'],
  ['logrotate -d {F}', '/etc/logrotate.d'],
  ['visudo -c -f {F}', '/etc/sudoers.d'],
  ['mdadm --detail --scan --config={F}', '/etc/mdadm'],
];

/** Variables that name a configuration file (or a directory of them), set every way bash can. */
const CONFIG_VARIABLES = [
  'KUBECONFIG',
  'WGETRC',
  'CURL_HOME',
  'PSQLRC',
  'PGSERVICEFILE',
  'PGSSLKEY',
  'MYSQL_HOME',
  'MYSQL_TEST_LOGIN_FILE',
  'GIT_CONFIG',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_SYSTEM',
  'GIT_EXEC_PATH',
  'OPENSSL_CONF',
  'OPENSSL_MODULES',
  'OPENSSL_ENGINES',
  'DOCKER_CONFIG',
  'DOCKER_HOST',
  'LIBVIRT_DEFAULT_URI',
  'REDISCLI_RCFILE',
  'TERMINFO',
  'TERMINFO_DIRS',
  'LESSKEY',
  'LESSOPEN',
  'RIPGREP_CONFIG_PATH',
  'MAGIC',
  'AWKPATH',
  'XDG_CONFIG_HOME',
  'HOME',
  'BASH_ENV',
  'ENV',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'GCONV_PATH',
  'LOCPATH',
  'NODE_OPTIONS',
  'PYTHONSTARTUP',
  'PERL5OPT',
  'SSLKEYLOGFILE',
  'SYSTEMD_PAGER',
  'PAGER',
  'LC_ALL',
  'LANG',
  'TERM',
];

describe('class 4: files and variables that configure a client', () => {
  test('configuration options outside the program’s own directory are denied', () => {
    const pool: string[] = [];
    for (const [tpl, own] of CONFIG_OPTIONS) {
      const paths = FOREIGN_PATHS(own ?? '/etc');
      if (own === null) paths.push('/etc/x.conf', '/etc/mysql/debian.cnf', '/etc/kubernetes/admin.conf');
      for (const f of paths) pool.push(tpl.replaceAll('{F}', f));
    }
    nonEmpty('config-file variants', pool, 300);
    const failures = wrong(pool, 'deny');
    assert.equal(failures.length, 0, failures.slice(0, 40).join('\n'));
  });

  test('each service’s own configuration stays allowed', () => {
    const pool = nonEmpty(
      'own configuration files',
      CONFIG_OPTIONS.filter(([, own]) => own !== null).map(([tpl, own]) =>
        tpl.replaceAll('{F}', `${own}/x.conf`),
      ),
      10,
    );
    assert.deepEqual(wrong(pool, 'allow'), []);
  });

  test('variables that name configuration files are denied however they are set', () => {
    const cmds = ['kubectl get pods', 'ls /etc', "psql -c 'select 1'", 'git log', 'tput cols'];
    const pool: string[] = [];
    for (const v of CONFIG_VARIABLES)
      for (const value of ['/tmp/x', '/tmp', './x'])
        for (const cmd of cmds)
          pool.push(
            `${v}=${value} ${cmd}`,
            `env ${v}=${value} ${cmd}`,
            `export ${v}=${value}; ${cmd}`,
            `${v}=${value}; export ${v}; ${cmd}`,
            `timeout 5 env ${v}=${value} ${cmd}`,
          );
    nonEmpty('config-variable variants', pool, 1000);
    const failures = wrong(pool, 'deny');
    assert.equal(failures.length, 0, failures.slice(0, 40).join('\n'));
  });

  test('connection strings, URIs and file names that pick another configuration or load code are denied', () => {
    const pool = nonEmpty('connection variants', [
      ...[
        'service=x',
        'sslkey=engine:k',
        'sslcert=/tmp/c',
        'sslrootcert=/tmp/r',
        'passfile=/tmp/p',
        "options='-c x=y'",
      ].flatMap((kv) => [
        `psql -c 'select 1' 'host=db ${kv}'`,
        `psql -d 'dbname=app ${kv}' -c 'select 1'`,
        `psql -c 'select 1' 'postgresql://u@db/app?${kv.replace(/'/g, '')}'`,
      ]),
      ...[
        'qemu+ssh://h/system',
        'qemu+libssh2://h/system',
        'qemu+tcp://h/system',
        'qemu+tls://h/system',
        'qemu+ext:///system?command=/tmp/x',
        'qemu:///system?socket=/tmp/s',
        'qemu://h/system',
      ].flatMap((u) => [`virsh -c ${shq(u)} list`, `virsh --connect=${shq(u)} list`]),
      ...[
        'json:{"file.driver":"ssh","file.host":"h"}',
        'nbd://h/x',
        'ssh://h/x',
        'http://h/x',
        'gluster://h/v/x',
        'iscsi://h/t/0',
        'file:/x',
      ].map((f) => `qemu-img info ${shq(f)}`),
      'qemu-img info --image-opts driver=file,filename=/x',
      'qemu-img info --object secret,id=s,file=/x /x',
      ...['org.openssl.engine:/tmp/x.so:k', 'org.openssl.engine:pkcs11:k', 'ORG.OPENSSL.ENGINE:e:k'].flatMap(
        (u) => [
          `openssl x509 -noout -in ${shq(u)}`,
          `openssl pkey -noout -in ${shq(u)}`,
          `openssl storeutl ${shq(u)}`,
        ],
      ),
      ...[
        '%(id)',
        '%{lua:os.execute("id")}',
        '%{expand:%%(id)}',
        '%{_libdir}',
        '%_libdir',
        '%{uncompress:/tmp/x}',
        '%{getenv:HOME}',
      ].map((f) => `rpm -q --qf ${shq(f)} bash`),
      ...[
        '-c ctx',
        '--context ctx',
        '--config /tmp/x',
        '-H ssh://h',
        '--host=ssh://h',
        '--url ssh://h',
        '--connection c',
        '-r',
      ].map((o) => `docker ${o} ps`),
      ...['-H root@h', '--host=root@h'].flatMap((o) => [`journalctl ${o}`, `systemctl ${o} status`]),
      'tput init',
      'tput reset',
    ]);
    const failures = wrong(pool, 'deny');
    assert.equal(failures.length, 0, failures.slice(0, 40).join('\n'));
  });
});
