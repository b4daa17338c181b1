/** Reading files and text: coreutils and friends, archives, compressors, checksums, editors. */
import { checkAwk } from '../awk.ts';
import { checkFind } from '../find.ts';
import { has, parseOptions, type OptionSpec } from '../options.ts';
import { checkSed } from '../sed.ts';
import { allow, maxOperands, opts, reader, refuse, type Rule } from '../rule.ts';
import { deny, mayStartWith, show } from '../types.ts';

/** Programs that only read, whatever options they get. */
const PLAIN_READERS = [
  'cat',
  'tac',
  'nl',
  'head',
  'tail',
  'wc',
  'cut',
  'paste',
  'fold',
  'fmt',
  'pr',
  'expand',
  'unexpand',
  'rev',
  'join',
  'comm',
  'column',
  'colrm',
  'col',
  'look',
  'tr',
  'grep',
  'egrep',
  'fgrep',
  'rgrep',
  'zgrep',
  'zegrep',
  'zfgrep',
  'bzgrep',
  'bzegrep',
  'bzfgrep',
  'xzgrep',
  'xzegrep',
  'xzfgrep',
  'lzgrep',
  'zstdgrep',
  'zcat',
  'gzcat',
  'bzcat',
  'xzcat',
  'lzcat',
  'zstdcat',
  'zdiff',
  'zcmp',
  'ls',
  'dir',
  'vdir',
  'stat',
  'readlink',
  'realpath',
  'basename',
  'dirname',
  'namei',
  'pathchk',
  'mountpoint',
  'od',
  'hexdump',
  'hd',
  'strings',
  'base64',
  'base32',
  'basenc',
  'cksum',
  'sum',
  'md5sum',
  'sha1sum',
  'sha224sum',
  'sha256sum',
  'sha384sum',
  'sha512sum',
  'b2sum',
  'shasum',
  'cmp',
  'diff',
  'numfmt',
  'tsort',
  'seq',
  'expr',
  'factor',
  'sleep',
  'yes',
  'getfacl',
  'lsattr',
  'jq',
  'envsubst',
  'locate',
  'mlocate',
  'plocate',
  'readelf',
  'objdump',
  'size',
  'cal',
  'ncal',
  'apropos',
  'whatis',
  'printenv',
];

const SORT_SPEC: OptionSpec = {
  permissive: true,
  short: 'k:t:S:',
  long: [
    'key=',
    'field-separator=',
    'buffer-size=',
    'files0-from=',
    'random-source=',
    'batch-size=',
    'parallel=',
    'sort=',
  ],
  deny: {
    '-o': 'sort -o writes the result to a file',
    '--output': 'sort --output writes the result to a file',
    '-T': 'sort -T writes temporary files',
    '--temporary-directory': 'sort --temporary-directory writes temporary files',
    '--compress-program': 'sort --compress-program runs a program',
  },
};

const GZIP_LIKE_SPEC: OptionSpec = {
  permissive: true,
  short: 'S:',
  long: ['suffix='],
  deny: {
    '-o': 'writes to a file',
    '--output': 'writes to a file',
    '--rm': 'removes the source files',
    '--trace': 'zstd --trace writes a trace file',
    '--train': 'zstd --train writes a dictionary',
    '--train-cover': 'zstd --train-cover writes a dictionary',
    '--train-fastcover': 'zstd --train-fastcover writes a dictionary',
    '--train-legacy': 'zstd --train-legacy writes a dictionary',
    '--output-dir-flat': 'writes files into a directory',
    '--output-dir-mirror': 'writes files into a directory',
  },
};

const INFO_FLAGS = ['-h', '--help', '-V', '--version', '-L', '--license'];

/**
 * gzip, bzip2, xz, zstd...: only when writing to stdout, testing or listing (`ok` lists the
 * flags that do that for this program), or filtering stdin to stdout.
 */
const toStdout =
  (ok: string[], maxOperands = Infinity): Rule =>
  (args, ctx) => {
    const p = parseOptions(args, GZIP_LIKE_SPEC, ctx.name);
    if (p.options.some((o) => INFO_FLAGS.includes(o.name)) && !p.operands.length) return;
    if (p.operands.length > maxOperands || (maxOperands < Infinity && p.operands.some((w) => w.multi)))
      deny(`${ctx.name} with a second file name writes to it`);
    const onlyStdin = p.operands.every((w) => w.value === '-');
    if (!onlyStdin && !p.options.some((o) => ok.includes(o.name)))
      deny(`${ctx.name} without -c replaces files (use ${ctx.name} -c, -t or -l)`);
  };

const GZIP_OK = ['-c', '--stdout', '--to-stdout', '-t', '--test', '-l', '--list'];
const BZIP_OK = ['-c', '--stdout', '-t', '--test'];
const ZSTD_OK = ['-c', '--stdout', '-t', '--test', '-l', '--list'];
const LZ4_OK = ['-c', '--stdout', '--to-stdout', '-t', '--test', '--list'];

const TAR_SPEC: OptionSpec = {
  short: 'tvf:zjJaZb:T:X:C:iwkKOpsSRB',
  long: [
    'list',
    'verbose',
    'file=',
    'gzip',
    'gunzip',
    'bzip2',
    'xz',
    'lzip',
    'lzma',
    'lzop',
    'zstd',
    'compress',
    'uncompress',
    'auto-compress',
    'exclude=',
    'exclude-from=',
    'files-from=',
    'wildcards',
    'no-wildcards',
    'wildcards-match-slash',
    'anchored',
    'no-anchored',
    'ignore-case',
    'no-ignore-case',
    'numeric-owner',
    'full-time',
    'utc',
    'quoting-style=',
    'quote-chars=',
    'no-quote-chars=',
    'show-transformed-names',
    'show-stored-names',
    'blocking-factor=',
    'record-size=',
    'ignore-zeros',
    'occurrence=?',
    'force-local',
    'null',
    'no-null',
    'directory=',
    'block-number',
    'read-full-records',
    'verbatim-files-from',
    'no-verbatim-files-from',
    'format=',
    'totals=?',
    'help',
    'version',
    'usage',
  ],
  deny: {
    '-x': 'tar -x extracts files',
    '--extract': 'tar --extract extracts files',
    '--get': 'tar --get extracts files',
    '-c': 'tar -c creates an archive',
    '--create': 'tar --create creates an archive',
    '-r': 'tar -r appends to an archive',
    '--append': 'tar --append appends to an archive',
    '-u': 'tar -u updates an archive',
    '--update': 'tar --update updates an archive',
    '-A': 'tar -A concatenates archives',
    '--catenate': 'tar --catenate changes an archive',
    '--concatenate': 'tar --concatenate changes an archive',
    '--delete': 'tar --delete changes an archive',
    '-d': 'tar -d compares with the file system',
    '-I': 'tar -I runs a compression program',
    '--use-compress-program': 'tar --use-compress-program runs a program',
    '--to-command': 'tar --to-command runs a program',
    '--checkpoint-action': 'tar --checkpoint-action can run commands',
    '--rsh-command': 'tar --rsh-command runs a program',
    '--info-script': 'tar --info-script runs a program',
    '--new-volume-script': 'tar --new-volume-script runs a program',
    '-F': 'tar -F runs a script',
    '-M': 'tar -M prompts for volumes',
    '-g': 'tar -g writes a snapshot file',
    '--listed-incremental': 'tar --listed-incremental writes a snapshot file',
    '--index-file': 'tar --index-file writes a file',
  },
};

const tarRule: Rule = (args) => {
  let list = args;
  // Old style: `tar tvf file` (first word is a cluster without the dash).
  const first = args[0]?.value;
  if (first && !first.startsWith('-') && /^[a-zA-Z]+$/.test(first)) {
    const rest = args.slice(1);
    const expanded = [];
    let k = 0;
    for (const ch of first) {
      if ('fbTXC'.includes(ch)) {
        const arg = rest[k++];
        if (!arg) deny(`tar ${ch} is missing its argument`);
        expanded.push({ ...args[0]!, value: `-${ch}`, text: `-${ch}`, prefix: `-${ch}` }, arg);
      } else expanded.push({ ...args[0]!, value: `-${ch}`, text: `-${ch}`, prefix: `-${ch}` });
    }
    list = [...expanded, ...rest.slice(k)];
  }
  const p = parseOptions(list, TAR_SPEC, 'tar');
  if (has(p, '--help', '--version', '--usage')) return;
  if (!has(p, '-t', '--list')) deny('tar is only allowed to list archives (tar -t)');
  for (const o of p.options) {
    if ((o.name === '-f' || o.name === '--file') && o.value) {
      if (o.value.value === null || (o.value.value.includes(':') && !has(p, '--force-local')))
        deny(`tar -f ${show(o.value)} may name a remote archive reached through rsh`);
    }
  }
};

const ddRule: Rule = (args) => {
  for (const a of args) {
    const v = a.value;
    if (v === null) deny(`dd: ${show(a)} is computed at run time`);
    if (v === '--help' || v === '--version') continue;
    const m = /^([a-z]+)=/.exec(v);
    if (!m) deny(`dd: unexpected operand ${v}`);
    const key = m[1]!;
    if (key === 'of' || key === 'seek' || key === 'oflag') deny(`dd ${key}= writes to a file`);
    if (!['if', 'bs', 'ibs', 'obs', 'cbs', 'count', 'skip', 'iseek', 'iflag', 'status', 'conv'].includes(key))
      deny(`dd ${key}= is not allowed`);
  }
};

const UNZIP_OK = new Set([
  '-l',
  '-t',
  '-p',
  '-Z',
  '-v',
  '-z',
  '-q',
  '-qq',
  '-1',
  '-2',
  '-s',
  '-m',
  '-h',
  '-x',
  '-C',
]);
const UNZIP_MODES = new Set(['-l', '-t', '-p', '-Z', '-v', '-z']);

/** less, more and their z* wrappers, reading files. */
const pager = opts(
  {
    short: 'NSRrXFiIMmsEefwWJaBcCdDGgKLqQuUVlpz:x:j:b:h:y:P:',
    long: [
      'line-numbers',
      'chop-long-lines',
      'RAW-CONTROL-CHARS',
      'raw-control-chars',
      'no-init',
      'quit-if-one-screen',
      'ignore-case',
      'IGNORE-CASE',
      'quiet',
      'silent',
      'squeeze-blank-lines',
      'squeeze',
      'quit-at-eof',
      'QUIT-AT-EOF',
      'force',
      'pattern=',
      'no-lessopen',
      'tabs=',
      'shift=',
      'jump-target=',
      'prompt=',
      'LONG-PROMPT',
      'long-prompt',
      'version',
      'help',
      'lines=',
      'logical',
      'no-pause',
      'print-over',
      'clean-print',
      'plain',
      'mouse',
      'use-color',
      'status-column',
    ],
    deny: {
      '-o': 'less -o copies its input to a log file',
      '-O': 'less -O writes a log file',
      '--log-file': 'less --log-file writes a log file',
      '--LOG-FILE': 'less --LOG-FILE writes a log file',
      '-k': 'less -k loads key bindings, which can run commands',
      '--lesskey-file': 'less --lesskey-file loads key bindings, which can run commands',
      '--lesskey-src': 'less --lesskey-src loads key bindings, which can run commands',
      '--lesskey-content': 'less --lesskey-content loads key bindings, which can run commands',
      '-t': 'less -t reads a tags file',
      '-T': 'less -T reads a tags file',
      '--tag': 'less --tag reads a tags file',
    },
    numericFlags: true,
  },
  (p, ctx) => {
    for (const w of p.operands) {
      if (
        w.value === null
          ? mayStartWith(w, '+')
          : w.value.startsWith('+') && !/^\+(\d+|G|g|F|\/[^!|]*)$/.test(w.value)
      )
        deny(`${ctx.name} ${show(w)} runs a command when it starts`);
    }
  },
);

/**
 * tree takes each option's value from the next word even inside a cluster (`-Lo 2 out` writes
 * `out`), so an `o` or `R` anywhere in a cluster is refused.
 */
const treeReader = reader(
  { '-o': 'tree -o writes to a file', '-R': 'tree -R writes 00Tree.html files' },
  'L:P:I:H:T:',
  ['charset=', 'filelimit=', 'timefmt=', 'sort='],
);
const tree: Rule = (args, ctx) => {
  for (const w of args) {
    const v = w.value;
    if (v === '--') break;
    if (v !== null && /^-[^-]*[oR]/.test(v))
      deny(`tree ${v}: -o writes to a file and -R writes 00Tree.html files`);
  }
  treeReader(args, ctx);
};

/** xmllint takes its long options with one dash or two (`-shell`, `--output`). */
const XMLLINT_DENY: Record<string, string> = {
  o: 'xmllint -o writes a file',
  output: 'xmllint --output writes a file',
  shell: 'xmllint --shell can save files',
};
const xmllint: Rule = (args) => {
  for (const w of args) {
    if (w.value === null) {
      if (mayStartWith(w)) deny(`xmllint: ${show(w)} is computed at run time and could become an option`);
      continue;
    }
    if (w.value === '--') break;
    const name = /^--?([^=]+)/.exec(w.value)?.[1];
    const reason = name && XMLLINT_DENY[name];
    if (reason) deny(reason);
  }
};

export const fileRules: Record<string, Rule> = {
  ...Object.fromEntries(PLAIN_READERS.map((n) => [n, allow])),
  rg: reader({
    '--pre': 'rg --pre runs a preprocessor program',
    '--pre-glob': 'rg --pre-glob runs a preprocessor program',
    '--hostname-bin': 'rg --hostname-bin runs a program',
  }),
  ag: reader({ '--pager': 'ag --pager runs a program' }),
  file: reader(
    { '-C': 'file -C compiles a magic file', '--compile': 'file --compile writes a magic file' },
    'e:f:F:m:P:',
    ['exclude=', 'files-from=', 'separator=', 'magic-file=', 'parameter='],
  ),
  tree,
  sort: opts(SORT_SPEC),
  shuf: reader({ '-o': 'shuf -o writes to a file', '--output': 'shuf --output writes to a file' }, 'i:n:', [
    'input-range=',
    'head-count=',
    'random-source=',
  ]),
  uniq: opts(
    { permissive: true, short: 'f:s:w:', long: ['skip-fields=', 'skip-chars=', 'check-chars='] },
    (p) => maxOperands(p, 1, 'uniq', 'with a second file name writes the result to it'),
  ),
  // xxd stops at its first file name; the next word, whatever it looks like, is the output file.
  xxd: opts({ permissive: true, short: 'c:g:l:o:s:n:', stopAtOperand: true }, (_p, _ctx, args) => {
    const rest = args.slice(_p.rest);
    if (rest.length > 1 || rest.some((w) => w.multi)) deny('xxd with a second file name writes to it');
  }),
  iconv: reader(
    { '-o': 'iconv -o writes to a file', '--output': 'iconv --output writes to a file' },
    'f:t:',
    ['from-code=', 'to-code='],
  ),
  sdiff: reader({
    '-o': 'sdiff -o merges into a file',
    '--output': 'sdiff --output merges into a file',
    '--diff-program': 'sdiff --diff-program runs a program',
  }),
  diff3: reader({ '--diff-program': 'diff3 --diff-program runs a program' }),
  nm: reader({ '--plugin': 'nm --plugin loads a shared library' }),
  utmpdump: reader({ '-o': 'utmpdump -o writes to a file', '--output': 'utmpdump --output writes a file' }),
  xmllint,
  yq: opts({
    short: 'CMejnNPrvV0o:p:I:',
    long: [
      'colors',
      'no-colors',
      'exit-status',
      'null-input',
      'no-doc',
      'prettyPrint',
      'unwrapScalar',
      'verbose',
      'version',
      'help',
      'output-format=',
      'input-format=',
      'indent=',
      'raw-output',
      'nul-output',
      'header-preprocess',
    ],
    deny: {
      '-i': 'yq -i edits files in place',
      '--inplace': 'yq --inplace edits files in place',
      '--in-place': 'yq --in-place edits files in place',
      '-s': 'yq -s writes files',
      '--split-exp': 'yq --split-exp writes files',
    },
  }),
  sed: (args) => checkSed(args),
  awk: (args, ctx) => checkAwk(args, ctx.name),
  gawk: (args, ctx) => checkAwk(args, ctx.name),
  mawk: (args, ctx) => checkAwk(args, ctx.name),
  nawk: (args, ctx) => checkAwk(args, ctx.name),
  'original-awk': (args, ctx) => checkAwk(args, ctx.name),
  find: (args, ctx) => checkFind(args, ctx),
  tar: tarRule,
  dd: ddRule,
  gzip: toStdout(GZIP_OK),
  gunzip: toStdout(GZIP_OK),
  bzip2: toStdout(BZIP_OK),
  bunzip2: toStdout(BZIP_OK),
  xz: toStdout(GZIP_OK),
  unxz: toStdout(GZIP_OK),
  lzma: toStdout(GZIP_OK),
  unlzma: toStdout(GZIP_OK),
  zstd: toStdout(ZSTD_OK),
  unzstd: toStdout(ZSTD_OK),
  lz4: toStdout(LZ4_OK, 1),
  compress: toStdout(['-c']),
  uncompress: toStdout(['-c']),
  unzip: (args) => {
    let mode = false;
    for (const a of args) {
      if (a.value === null) {
        if (a.prefix === '' || a.prefix.startsWith('-')) deny(`unzip: ${show(a)} could become an option`);
        continue;
      }
      if (!a.value.startsWith('-')) continue;
      if (!UNZIP_OK.has(a.value)) deny(`unzip ${a.value} is not allowed`);
      if (UNZIP_MODES.has(a.value)) mode = true;
    }
    if (!mode) deny('unzip is only allowed to list, test or print archives (-l, -t, -p, -Z)');
  },
  zipinfo: allow,
  '7z': (args) => {
    const verb = args[0]?.value;
    if (verb !== 'l' && verb !== 't') deny('7z is only allowed to list or test archives (7z l, 7z t)');
    for (const a of args.slice(1)) {
      if (a.value === null ? a.prefix === '' || a.prefix.startsWith('-') : /^-(o|so|si|sdel|y)/.test(a.value))
        deny(`7z ${show(a)} is not allowed`);
    }
  },
  ar: (args) => {
    const op = args[0]?.value?.replace(/^-/, '') ?? '';
    if (!/^[tpvOU]*[tp][vOU]*$/.test(op)) deny('ar is only allowed to list or print members (ar t, ar p)');
  },
  rpm2cpio: allow,
  // Writing, moving and deleting files.
  rm: refuse('rm deletes files'),
  rmdir: refuse('rmdir deletes directories'),
  unlink: refuse('unlink deletes files'),
  shred: refuse('shred destroys files'),
  mv: refuse('mv moves files'),
  cp: refuse('cp writes files'),
  ln: refuse('ln creates links'),
  link: refuse('link creates links'),
  touch: refuse('touch changes files'),
  mkdir: refuse('mkdir creates directories'),
  mknod: refuse('mknod creates device files'),
  mkfifo: refuse('mkfifo creates files'),
  mktemp: refuse('mktemp creates files'),
  chmod: refuse('chmod changes permissions'),
  chown: refuse('chown changes ownership'),
  chgrp: refuse('chgrp changes ownership'),
  chattr: refuse('chattr changes file attributes'),
  setfacl: refuse('setfacl changes ACLs'),
  setfattr: refuse('setfattr changes extended attributes'),
  chcon: refuse('chcon changes SELinux contexts'),
  restorecon: refuse('restorecon changes SELinux contexts'),
  truncate: refuse('truncate changes file sizes'),
  fallocate: refuse('fallocate changes files'),
  install: refuse('install copies files'),
  patch: refuse('patch edits files'),
  tee: refuse('tee writes to files'),
  sponge: refuse('sponge writes to files'),
  split: refuse('split writes files'),
  csplit: refuse('csplit writes files'),
  rsync: refuse('rsync copies files'),
  zip: refuse('zip writes archives'),
  cpio: refuse('cpio can extract and write files'),
  dos2unix: refuse('dos2unix edits files in place'),
  unix2dos: refuse('unix2dos edits files in place'),
  updatedb: refuse('updatedb rewrites the locate database'),
  ldd: refuse('ldd may run the program it inspects (use readelf -d or objdump -p)'),
  // Pagers print like cat when their output is not a terminal (it never is here); their options
  // that write a log or load key bindings, and start-up commands, are refused.
  less: pager,
  zless: pager,
  more: pager,
  zmore: pager,
  // Editors and the other pagers can run commands.
  most: refuse('most is interactive and can run commands'),
  pg: refuse('pg is interactive and can run commands'),
  view: refuse('view is an editor and can run commands'),
  vi: refuse('vi is an editor and can write files'),
  vim: refuse('vim is an editor and can write files'),
  nvim: refuse('nvim is an editor and can write files'),
  nano: refuse('nano is an editor and can write files'),
  emacs: refuse('emacs is an editor and can write files'),
  ed: refuse('ed is an editor and can write files'),
  ex: refuse('ex is an editor and can write files'),
  joe: refuse('joe is an editor and can write files'),
  mcedit: refuse('mcedit is an editor and can write files'),
  vimdiff: refuse('vimdiff is an editor and can write files'),
  man: refuse('man runs a pager that can run commands'),
  info: refuse('info is interactive'),
  bc: refuse('bc is an interpreter'),
  dc: refuse('dc can run shell commands'),
};
