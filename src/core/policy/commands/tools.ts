/** Tools with subcommands: git, containers, Kubernetes, libvirt, package managers, openssl, servers. */
import { has, parseOptions, type OptionSpec, type ParsedArgs } from '../options.ts';
import {
  allow,
  configFile,
  literalVerb,
  opts,
  refuse,
  refuseButVersion,
  requireLiteral,
  verbTool,
  type Rule,
} from '../rule.ts';
import { deny, literalWord, mayStartWith, show, type Word } from '../types.ts';

// ---------------------------------------------------------------------------------------------
// git

const GIT_DENY: Record<string, string> = {
  '--output': 'git --output writes to a file',
  '--ext-diff': 'git --ext-diff runs an external diff program',
  '--exec': 'git --exec runs a program',
  '--upload-pack': 'git --upload-pack runs a program',
  '--receive-pack': 'git --receive-pack runs a program',
  '--open-files-in-pager': 'git grep --open-files-in-pager runs a pager',
  '--output-directory': 'git --output-directory writes files',
  '--paginate': 'git --paginate runs a pager',
};

const gitRead = (extra: Record<string, string> = {}, then?: (p: ParsedArgs) => void): Rule =>
  opts({ permissive: true, deny: { ...GIT_DENY, ...extra } }, then && ((p) => then(p)));

/**
 * `git stash|worktree|notes|reflog|submodule VERB`: git takes the verb from the first word, after
 * only a few options of the command itself (`lead`: name → takes a separate value). Anything else
 * in front changes the meaning (`git stash -m list` stashes with the message "list").
 */
const subverb =
  (
    who: string,
    verbs: string[],
    bare: boolean,
    lead: Record<string, boolean> = {},
    /** Options in front of any verb select the default read verb (`git reflog --all` is show). */
    optionsMeanDefault = false,
  ): Rule =>
  (args) => {
    parseOptions(args, { permissive: true, deny: GIT_DENY }, who);
    let i = 0;
    for (; i < args.length; i++) {
      const v = requireLiteral(args[i]!, who, 'argument');
      if (!v.startsWith('-')) break;
      const name = v.split('=')[0]!;
      if (!(name in lead)) {
        if (optionsMeanDefault) return;
        deny(`${who} ${v}: options go after the subcommand (${verbs.join(', ')})`);
      }
      if (lead[name] && !v.includes('=')) i++;
    }
    const verb = i < args.length ? literalVerb(args[i], who) : null;
    if (verb === null ? bare : verbs.includes(verb)) return;
    deny(
      `${who} ${verb ?? ''} changes the repository (only ${verbs.join(', ')} are allowed)`.replace('  ', ' '),
    );
  };

const gitBranch = opts(
  {
    short: 'arlvi',
    long: [
      'all',
      'remotes',
      'list',
      'verbose',
      'contains=?',
      'no-contains=?',
      'merged=?',
      'no-merged=?',
      'points-at=',
      'sort=',
      'format=',
      'column=?',
      'no-column',
      'color=?',
      'no-color',
      'show-current',
      'ignore-case',
      'abbrev=?',
      'no-abbrev',
      'omit-empty',
    ],
  },
  (p) => {
    if (
      p.operands.length &&
      !has(p, '-l', '--list', '--contains', '--no-contains', '--merged', '--no-merged', '--points-at')
    )
      deny('git branch with a name creates a branch (use git branch --list PATTERN)');
  },
);

const gitTag = opts(
  {
    short: 'lvin::',
    long: [
      'list',
      'verify',
      'contains=?',
      'no-contains=?',
      'merged=?',
      'no-merged=?',
      'points-at=',
      'sort=',
      'format=',
      'column=?',
      'no-column',
      'color=?',
      'ignore-case',
      'omit-empty',
    ],
  },
  (p) => {
    if (
      p.operands.length &&
      !has(
        p,
        '-l',
        '--list',
        '-v',
        '--verify',
        '--contains',
        '--no-contains',
        '--merged',
        '--no-merged',
        '--points-at',
      )
    )
      deny('git tag with a name creates a tag (use git tag --list PATTERN)');
  },
);

const gitConfig = opts(
  {
    short: 'lzf:',
    long: [
      'get',
      'get-all',
      'get-regexp',
      'get-urlmatch',
      'get-color',
      'get-colorbool',
      'list',
      'show-origin',
      'show-scope',
      'name-only',
      'null',
      'global',
      'system',
      'local',
      'worktree',
      'file=',
      'blob=',
      'type=',
      'bool',
      'int',
      'bool-or-int',
      'path',
      'expiry-date',
      'default=',
      'includes',
      'no-includes',
      'all',
      'regexp',
      'value=',
      'fixed-value',
      'url=',
      'show-names',
      'no-show-names',
    ],
  },
  (p) => {
    const first = p.operands[0]?.value;
    if (first === 'get' || first === 'list') return;
    if (
      has(
        p,
        '--get',
        '--get-all',
        '--get-regexp',
        '--get-urlmatch',
        '--get-color',
        '--get-colorbool',
        '-l',
        '--list',
      )
    )
      return;
    if (p.operands.length === 1 && typeof first === 'string' && first.includes('.')) return; // git config key: a read
    deny('git config without --get or --list changes configuration');
  },
);

const gitRemote: Rule = (args) => {
  const words = args.map((a) => requireLiteral(a, 'git remote', 'argument'));
  const ops = words.filter((w) => !w.startsWith('-'));
  const flags = words.filter((w) => w.startsWith('-'));
  if (!ops.length && flags.every((f) => f === '-v' || f === '--verbose')) return;
  if (ops[0] === 'get-url' && flags.every((f) => f === '--push' || f === '--all')) return;
  deny(
    `git remote ${ops[0] ?? words.join(' ')} changes remotes or contacts them (only git remote -v and get-url)`,
  );
};

/** `git -c key=value` settings that only change formatting, each with the values it may take. */
const BOOL = /^(true|false|yes|no|on|off|1|0)?$/i;
const GIT_SAFE_CONFIG: Array<[RegExp, RegExp]> = [
  [/^color\.[a-z.]+$/i, /^[a-z0-9 #]*$/i],
  [/^core\.quotepath$/i, BOOL],
  [/^core\.pager$/i, /^cat$/],
  [/^core\.fsmonitor$/i, /^(false|no|off|0)$/i],
  [/^log\.showsignature$/i, BOOL],
  [/^diff\.noprefix$/i, BOOL],
  [/^log\.date$/i, /^[a-z0-9:%. -]*$/i],
  [/^i18n\.logoutputencoding$/i, /^[a-z0-9_.-]+$/i],
  [/^core\.abbrev$/i, /^(\d+|auto|no)$/i],
];
const gitSafeSetting = (s: string): boolean => {
  const eq = s.indexOf('=');
  const key = eq < 0 ? s : s.slice(0, eq);
  const value = eq < 0 ? '' : s.slice(eq + 1);
  return GIT_SAFE_CONFIG.some(([k, v]) => k.test(key) && v.test(value));
};

const GIT_SUBCOMMANDS: Record<string, Rule> = {
  log: gitRead(),
  show: gitRead(),
  diff: gitRead(),
  whatchanged: gitRead(),
  shortlog: gitRead(),
  blame: gitRead(),
  annotate: gitRead(),
  'diff-tree': gitRead(),
  'diff-index': gitRead(),
  'diff-files': gitRead(),
  'rev-list': gitRead(),
  'rev-parse': gitRead(),
  'ls-files': gitRead(),
  'ls-tree': gitRead(),
  'cat-file': gitRead(),
  describe: gitRead(),
  'name-rev': gitRead(),
  'merge-base': gitRead(),
  'for-each-ref': gitRead(),
  'show-ref': gitRead(),
  'show-branch': gitRead(),
  'count-objects': gitRead(),
  grep: gitRead({ '-O': 'git grep -O opens files in a pager' }),
  status: gitRead(),
  cherry: gitRead(),
  'range-diff': gitRead(),
  'check-ignore': gitRead(),
  'check-attr': gitRead(),
  'check-ref-format': gitRead(),
  'check-mailmap': gitRead(),
  var: gitRead(),
  version: gitRead(),
  'verify-commit': gitRead(),
  'verify-tag': gitRead(),
  'verify-pack': gitRead(),
  fsck: gitRead({ '--lost-found': 'git fsck --lost-found writes files' }),
  'hash-object': gitRead({ '-w': 'git hash-object -w writes objects', '--stdin-paths': 'not needed' }),
  branch: gitBranch,
  tag: gitTag,
  config: gitConfig,
  remote: gitRemote,
  stash: subverb('git stash', ['list', 'show'], false),
  worktree: subverb('git worktree', ['list'], false),
  notes: subverb('git notes', ['list', 'show'], true, { '--ref': true }),
  reflog: subverb('git reflog', ['show', 'exists'], true, {}, true),
  submodule: subverb('git submodule', ['status'], false, {
    '--quiet': false,
    '-q': false,
    '--cached': false,
  }),
  'symbolic-ref': opts({ short: 'q', long: ['quiet', 'short', 'no-recurse', 'recurse'] }, (p) => {
    if (p.operands.length > 1) deny('git symbolic-ref with two names changes a ref');
  }),
};

const gitRule: Rule = (args, ctx) => {
  let i = 0;
  for (; i < args.length; i++) {
    const w = args[i]!;
    const v = requireLiteral(w, 'git', 'argument');
    if (!v.startsWith('-')) break;
    if (v === '-c') {
      const setting = args[++i];
      if (!setting || setting.value === null || !gitSafeSetting(setting.value))
        deny(
          `git -c ${setting ? show(setting) : ''} sets configuration that can run programs`.replace(
            '  ',
            ' ',
          ),
        );
      continue;
    }
    if (v === '--version' || v === '-v' || v === '--exec-path' || /^--(html|man|info)-path$/.test(v)) return;
    if (v === '-p' || v === '--paginate') deny('git --paginate runs a pager');
    if (v === '--help' || v === '-h') deny('git --help opens a pager or browser');
    if (/^--(config-env|exec-path=|super-prefix)/.test(v)) deny(`git ${v} can run other programs`);
    if (
      v === '-C' ||
      v === '--git-dir' ||
      v === '--work-tree' ||
      v === '--namespace' ||
      v === '--attr-source'
    ) {
      i++;
      continue;
    }
    if (/^--(git-dir|work-tree|namespace|attr-source|list-cmds)=/.test(v)) continue;
    if (
      [
        '-P',
        '--no-pager',
        '--bare',
        '--no-replace-objects',
        '--no-lazy-fetch',
        '--literal-pathspecs',
        '--glob-pathspecs',
        '--noglob-pathspecs',
        '--icase-pathspecs',
        '--no-optional-locks',
        '--no-advice',
      ].includes(v)
    )
      continue;
    deny(`git: unknown option ${v}`);
  }
  const sub = args[i];
  if (!sub) deny('git without a subcommand');
  const name = sub.value!;
  const rule = GIT_SUBCOMMANDS[name];
  if (!rule) deny(`git ${name} is not a read-only git command`);
  rule(args.slice(i + 1), { ...ctx, name: `git ${name}` });
};

// ---------------------------------------------------------------------------------------------
// Generic `tool [global options] command [subcommand] [args]` (docker, kubectl, helm, crictl...)

type Commands = Record<string, true | Rule | Record<string, true | Rule>>;

interface CliTool {
  /** Options that take a separate value, wherever they appear before the command words. */
  valued: Set<string>;
  /** Options refused anywhere. */
  denied?: Record<string, string>;
  commands: Commands;
  /** Why other commands are refused. */
  refused: string;
  /** Computed words after the command words that could be options are refused. */
  strictRest?: boolean;
  /** How the tool spells option names (kubectl reads `--log_file` as `--log-file`). */
  normalize?: (name: string) => string;
  /** Checks for the values of some options. */
  values?: Record<string, (w: Word, who: string) => void>;
}

/**
 * A file given to `kubectl -f` or `docker compose -f`: a local path, never a URL (another host,
 * or a git repository to clone) or stdin.
 */
const localFile = (w: Word, who: string): void => {
  const v = requireLiteral(w, who, 'file');
  if (v === '-' || /^[a-z][a-z0-9+.-]*:/i.test(v) || /^[^/]*@[^/]*:/.test(v))
    deny(`${who}: ${v} is not a local file`);
};

function cliTool(cfg: CliTool): Rule {
  return (args, ctx) => {
    const norm = cfg.normalize ?? ((n: string) => n);
    const deniedFor = (v: string) => {
      const name = norm(v.split('=')[0]!);
      const reason = cfg.denied?.[name];
      if (reason) deny(`${ctx.name} ${reason}`);
      // A cluster of short flags (`-Ak./dir`) or a value glued to a short option (`-kdir`).
      if (/^-[^-]/.test(v))
        for (const ch of v.slice(1)) {
          const r = cfg.denied?.[`-${ch}`];
          if (r) deny(`${ctx.name} ${r}`);
        }
    };
    const checkValue = (v: string, next: Word | undefined) => {
      const eq = v.indexOf('=');
      const name = norm(eq < 0 ? v : v.slice(0, eq));
      const check = cfg.values?.[name];
      if (!check) return;
      const value = eq < 0 ? next : literalWord(v.slice(eq + 1));
      if (!value) deny(`${ctx.name} ${name} is missing its value`);
      check(value, ctx.name);
    };
    let i = 0;
    const nextWord = (): string | null => {
      for (; i < args.length; i++) {
        const w = args[i]!;
        const v = requireLiteral(w, ctx.name, 'argument');
        if (v === '--') return null;
        if (!v.startsWith('-')) return v;
        deniedFor(v);
        checkValue(v, args[i + 1]);
        if (cfg.valued.has(v)) i++;
        if (v === '--version' || v === '-v' || v === '--help' || v === '-h') return '--version';
      }
      return null;
    };
    const cmd = nextWord();
    if (cmd === '--version') return;
    if (cmd === null) deny(`${ctx.name} without a command`);
    i++;
    const entry = cfg.commands[cmd];
    if (!entry) deny(`${ctx.name} ${cmd} ${cfg.refused}`);
    let rule: true | Rule = entry as true | Rule;
    let label = `${ctx.name} ${cmd}`;
    if (typeof entry === 'object') {
      const sub = nextWord();
      if (sub === '--version') return;
      const subEntry = sub === null ? entry[''] : entry[sub];
      if (!subEntry) deny(`${ctx.name} ${cmd} ${sub ?? ''} ${cfg.refused}`.replace('  ', ' '));
      if (sub !== null) i++;
      rule = subEntry;
      label = `${label} ${sub ?? ''}`.trim();
    }
    const rest = args.slice(i);
    for (const [j, w] of rest.entries()) {
      if (w.value !== null) {
        deniedFor(w.value);
        if (w.value.startsWith('-')) checkValue(w.value, rest[j + 1]);
      } else if (cfg.strictRest && mayStartWith(w)) deny(`${label}: ${show(w)} could become an option`);
    }
    if (rule !== true) rule(rest, { ...ctx, name: label });
  };
}

const DOCKER_READ: Commands = {
  ps: true,
  images: true,
  inspect: true,
  logs: true,
  stats: true,
  top: true,
  port: true,
  version: true,
  info: true,
  events: true,
  history: true,
  diff: true,
  search: true,
  container: {
    ls: true,
    ps: true,
    list: true,
    inspect: true,
    logs: true,
    stats: true,
    top: true,
    port: true,
    diff: true,
  },
  image: { ls: true, list: true, inspect: true, history: true },
  network: { ls: true, list: true, inspect: true },
  volume: { ls: true, list: true, inspect: true },
  system: { df: true, info: true, events: true },
  context: { ls: true, list: true, show: true, inspect: true },
  node: { ls: true, list: true, inspect: true, ps: true },
  service: { ls: true, list: true, ps: true, inspect: true, logs: true },
  stack: { ls: true, list: true, ps: true, services: true },
  secret: { ls: true, list: true, inspect: true },
  config: { ls: true, list: true, inspect: true },
  plugin: { ls: true, list: true, inspect: true },
  pod: { ps: true, ls: true, list: true, inspect: true, top: true, stats: true, logs: true },
  compose: {
    ps: true,
    ls: true,
    logs: true,
    images: true,
    top: true,
    version: true,
    config: opts({
      permissive: true,
      deny: {
        '-o': 'docker compose config -o writes a file',
        '--output': 'docker compose config --output writes a file',
      },
    }),
  },
};

const docker = cliTool({
  valued: new Set([
    '--config',
    '-c',
    '--context',
    '-l',
    '--log-level',
    '--tlscacert',
    '--tlscert',
    '--tlskey',
    '-f',
    '--file',
    '-p',
    '--project-name',
    '--profile',
    '--env-file',
    '--project-directory',
    '--ansi',
    '--progress',
    '--parallel',
    '--url',
    '--connection',
    '--identity',
    '--root',
    '--runroot',
    '--storage-driver',
    '--cgroup-manager',
  ]),
  denied: {
    '-H': 'connects to another docker host',
    '--host': 'connects to another docker host',
    // config.json names credential helpers and CLI plugin directories: programs to run.
    '--config': '--config loads a configuration that names programs (credential helpers, plugins)',
    '-c': '-c picks a context or connection, which can reach another host over ssh',
    '--context': '--context picks a context, which can reach another host over ssh',
    '--url': '--url connects to another host',
    '--connection': '--connection connects to another host',
    '-r': '-r connects to a remote host',
    '--identity': '--identity is for connecting to another host',
    '--remote': 'connects to another host',
    '--dry-run': 'not needed',
    '--root': 'podman --root creates container storage there',
    '--runroot': 'podman --runroot creates container state there',
  },
  values: { '-f': localFile, '--file': localFile, '--env-file': localFile, '--project-directory': localFile },
  commands: DOCKER_READ,
  refused: 'changes containers or images (only ps, images, inspect, logs, stats, top, ... are allowed)',
});

const crictl = cliTool({
  valued: new Set([
    '-r',
    '--runtime-endpoint',
    '-i',
    '--image-endpoint',
    '-t',
    '--timeout',
    '-c',
    '--config',
  ]),
  commands: {
    ps: true,
    pods: true,
    images: true,
    img: true,
    inspect: true,
    inspectp: true,
    inspecti: true,
    logs: true,
    stats: true,
    statsp: true,
    info: true,
    version: true,
    imagefsinfo: true,
  },
  refused: 'changes containers (only ps, pods, images, inspect*, logs, stats, info are allowed)',
});

const KUBE_VALUED = new Set([
  '-n',
  '--namespace',
  '--context',
  '--cluster',
  '--user',
  '--kubeconfig',
  '-s',
  '--server',
  '--token',
  '--as',
  '--as-group',
  '--as-uid',
  '--request-timeout',
  '--certificate-authority',
  '--client-certificate',
  '--client-key',
  '--tls-server-name',
  '--cache-dir',
  '-o',
  '--output',
  '-l',
  '--selector',
  '--field-selector',
  '-c',
  '--container',
  '--tail',
  '--since',
  '--since-time',
  '--sort-by',
  '-L',
  '--label-columns',
  '--template',
  '-f',
  '--filename',
  '-k',
  '--kustomize',
  '--chunk-size',
  '-v',
  '--v',
  '--username',
  '--password',
  '--raw',
  '--subresource',
  '--limit-bytes',
  '--max-log-requests',
  '--pod-running-timeout',
  '--api-group',
  '--for',
  '--timeout',
  '--kube-context',
  '--max',
  '--offset',
  '--revision',
  '--version',
]);

const KUBE_DENY = {
  '--log-file': 'writes a log file',
  '--log-dir': 'writes log files',
  '--profile': 'writes a profile file',
  '--profile-output': 'writes a profile file',
  // A kubeconfig can name exec credential plugins and auth providers: programs to run.
  '--kubeconfig': '--kubeconfig loads a configuration that can run programs (exec credential plugins)',
  '--cache-dir': 'writes a cache',
  // Kustomize fetches remote bases with git and can run plugin functions.
  '-k': '-k runs kustomize, which can fetch with git and run plugins',
  '--kustomize': '--kustomize can fetch with git and run plugins',
};

const kubectl = cliTool({
  valued: KUBE_VALUED,
  denied: KUBE_DENY,
  strictRest: true,
  normalize: (v) => v.replace(/_/g, '-'),
  values: { '-f': localFile, '--filename': localFile },
  commands: {
    get: true,
    describe: true,
    logs: true,
    top: { node: true, nodes: true, no: true, pod: true, pods: true, po: true },
    explain: true,
    version: true,
    'cluster-info': { '': true },
    'api-resources': true,
    'api-versions': true,
    config: {
      view: true,
      'get-contexts': true,
      'current-context': true,
      'get-clusters': true,
      'get-users': true,
    },
    auth: { 'can-i': true, whoami: true },
    events: true,
    rollout: { status: true, history: true },
    wait: true,
    plugin: { list: true },
  },
  refused: 'changes the cluster or runs commands in it (only get, describe, logs, top, ... are allowed)',
});

const helm = cliTool({
  valued: KUBE_VALUED,
  strictRest: true,
  normalize: (v) => v.replace(/_/g, '-'),
  denied: {
    ...KUBE_DENY,
    '--output-dir': 'writes files',
    '--post-renderer': 'runs a program',
    '--registry-config': 'loads registry credentials, whose helpers are programs',
    '--repository-config': 'loads another repository configuration',
    '--repository-cache': 'writes a cache',
    '--plugins': 'loads plugins (programs) from another directory',
  },
  commands: {
    list: true,
    ls: true,
    status: true,
    history: true,
    hist: true,
    version: true,
    env: true,
    get: { all: true, values: true, manifest: true, notes: true, hooks: true, metadata: true },
    show: { all: true, chart: true, readme: true, values: true, crds: true },
    inspect: { all: true, chart: true, readme: true, values: true, crds: true },
    search: { hub: true, repo: true },
    repo: { list: true, ls: true },
    plugin: { list: true, ls: true },
    dependency: { list: true, ls: true },
  },
  refused: 'changes releases or repositories',
});

// ---------------------------------------------------------------------------------------------
// libvirt

const VIRSH_READ = new Set([
  'list',
  'dominfo',
  'domstate',
  'domid',
  'domname',
  'domuuid',
  'dumpxml',
  'domblklist',
  'domiflist',
  'domblkinfo',
  'domblkstat',
  'domblkerror',
  'domifstat',
  'domifaddr',
  'domstats',
  'domcontrol',
  'domjobinfo',
  'domdisplay',
  'domhostname',
  'domfsinfo',
  'guestinfo',
  'vcpuinfo',
  'vcpucount',
  'iothreadinfo',
  'snapshot-list',
  'snapshot-info',
  'snapshot-dumpxml',
  'snapshot-parent',
  'checkpoint-list',
  'checkpoint-info',
  'checkpoint-dumpxml',
  'net-list',
  'net-info',
  'net-dumpxml',
  'net-dhcp-leases',
  'net-uuid',
  'net-name',
  'pool-list',
  'pool-info',
  'pool-dumpxml',
  'pool-uuid',
  'pool-name',
  'vol-list',
  'vol-info',
  'vol-dumpxml',
  'vol-path',
  'vol-key',
  'vol-name',
  'vol-pool',
  'iface-list',
  'iface-dumpxml',
  'iface-mac',
  'iface-name',
  'nodedev-list',
  'nodedev-dumpxml',
  'nwfilter-list',
  'nwfilter-dumpxml',
  'secret-list',
  'nodeinfo',
  'nodememstats',
  'nodecpustats',
  'nodecpumap',
  'capabilities',
  'domcapabilities',
  'sysinfo',
  'version',
  'hostname',
  'uri',
  'freecell',
  'maxvcpus',
  'cpu-models',
  'pool-capabilities',
  'help',
]);

/**
 * A local system connection URI (`qemu:///system`, `lxc:///`): no host, no remote transport (+ssh
 * and +libssh run ssh with the user's configuration, +tcp/+tls reach another host, +ext runs a
 * program), no parameters (`?command=`, `?netcat=`, `?socket=`...) and no session URIs (they
 * start a per-user daemon).
 */
function virshUri(w: Word | undefined): void {
  const uri = w ? requireLiteral(w, 'virsh', 'connection URI') : '';
  if (!/^[a-z0-9]+(\+unix)?:\/\/\/(system)?$/i.test(uri) && uri !== 'test:///default')
    deny(
      `virsh: the connection URI ${uri || '(missing)'} reaches another host or runs a program (only local URIs such as qemu:///system)`,
    );
}

const virsh: Rule = (args) => {
  let i = 0;
  for (; i < args.length; i++) {
    const v = requireLiteral(args[i]!, 'virsh', 'argument');
    if (!v.startsWith('-')) break;
    if (
      v === '-c' ||
      v === '--connect' ||
      v === '-d' ||
      v === '--debug' ||
      v === '-k' ||
      v === '--keepalive-interval' ||
      v === '-K' ||
      v === '--keepalive-count'
    ) {
      i++;
      if (v === '-c' || v === '--connect') virshUri(args[i]);
      continue;
    }
    if (v.startsWith('--connect=')) virshUri(literalWord(v.slice('--connect='.length)));
    if (/^--(connect|debug|keepalive-interval|keepalive-count)=/.test(v)) continue;
    if (['-r', '--readonly', '-q', '--quiet', '-t', '--timing'].includes(v)) continue;
    if (['-v', '-V', '--version', '-h', '--help'].includes(v)) return;
    if (v === '-l' || v.startsWith('--log')) deny('virsh --log writes a log file');
    deny(`virsh ${v} is not allowed`);
  }
  const cmd = args[i];
  if (!cmd) deny('virsh without a command starts an interactive shell');
  for (const w of args.slice(i)) {
    const v = requireLiteral(w, 'virsh', 'argument');
    if (/[;\n]/.test(v)) deny('virsh: one argument holds several commands');
  }
  if (!VIRSH_READ.has(cmd.value!))
    deny(`virsh ${cmd.value} changes domains or the host (only list, dominfo, dumpxml, ... are allowed)`);
};

// ---------------------------------------------------------------------------------------------
// Package managers

const DPKG_READ = [
  '-l',
  '--list',
  '-L',
  '--listfiles',
  '-s',
  '--status',
  '-S',
  '--search',
  '-p',
  '--print-avail',
  '-V',
  '--verify',
  '-C',
  '--audit',
  '--get-selections',
  '--print-architecture',
  '--print-foreign-architectures',
  '--compare-versions',
  '-c',
  '--contents',
  '-I',
  '--info',
  '-f',
  '--field',
  '-W',
  '--show',
  '--version',
  '--help',
  '-?',
  '--yet-to-unpack',
];

const dpkg = opts(
  {
    short: 'lLsSpVCcIfW?',
    long: [
      ...DPKG_READ.filter((o) => o.startsWith('--')).map((o) => o.slice(2)),
      'admindir=',
      'root=',
      'instdir=',
      'no-pager',
      'verify-format=',
      'showformat=',
    ],
    abbreviations: false,
  },
  (p) => {
    if (!p.options.some((o) => DPKG_READ.includes(o.name)))
      deny('dpkg without a query option installs or removes packages');
  },
);

const dpkgDeb = opts(
  {
    short: 'cIfW',
    long: ['contents', 'info', 'field', 'show', 'showformat=', 'fsys-tarfile', 'version', 'help'],
  },
  (p) => {
    if (!p.options.length) deny('dpkg-deb without a query option builds or extracts packages');
  },
);

const APT_QUERY_OPTIONS: OptionSpec = {
  short: 'aqnt:vif',
  long: [
    'no-generate',
    'all-versions',
    'installed',
    'upgradable',
    'upgradeable',
    'manual-installed',
    'full',
    'names-only',
    'recurse',
    'quiet=?',
    'target-release=',
    'no-all-versions',
    'important',
    'no-pre-depends',
    'no-depends',
    'no-recommends',
    'no-suggests',
    'no-conflicts',
    'no-breaks',
    'no-replaces',
    'no-enhances',
    'all-names',
    'verbose',
    'help',
    'version',
    'color',
    'no-color',
  ],
  deny: {
    '-o': 'apt -o can set hooks that run commands',
    '--option': 'apt --option can set hooks that run commands',
    '-c': 'apt -c loads a configuration file that can run commands',
    '--config-file': 'apt --config-file loads a configuration that can run commands',
    '-p': 'apt-cache -p writes a cache file',
    '--pkg-cache': 'apt-cache --pkg-cache writes a cache file',
    '-s': 'apt-cache -s writes a cache file',
    '--src-cache': 'apt-cache --src-cache writes a cache file',
  },
};

const APT_CONFIG_DENY: Record<string, string> = {
  '-o': 'apt -o can set hooks that run commands',
  '--option': 'apt --option can set hooks that run commands',
  '-c': 'apt -c loads a configuration file that can run commands',
  '--config-file': 'apt --config-file loads a configuration that can run commands',
};

const apt = verbTool({
  options: APT_QUERY_OPTIONS,
  verbs: {
    list: true,
    show: true,
    policy: true,
    depends: true,
    rdepends: true,
    search: true,
    showsrc: true,
    madison: true,
    showpkg: true,
  },
  denied: 'changes packages (only list, show, policy, depends, rdepends, search are allowed)',
});

const aptCache = verbTool({
  options: APT_QUERY_OPTIONS,
  verbs: {
    policy: true,
    show: true,
    showpkg: true,
    showsrc: true,
    depends: true,
    rdepends: true,
    search: true,
    pkgnames: true,
    dump: true,
    dumpavail: true,
    stats: true,
    unmet: true,
    madison: true,
    showauto: true,
  },
  denied: 'changes the package cache',
});

const aptGet: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'sqyVufmt:',
      long: [
        'simulate',
        'just-print',
        'dry-run',
        'recon',
        'no-act',
        'quiet=?',
        'yes',
        'assume-yes',
        'verbose-versions',
        'show-upgraded',
        'fix-broken',
        'fix-missing',
        'target-release=',
        'no-install-recommends',
        'install-recommends',
        'with-new-pkgs',
        'only-upgrade',
        'purge',
        'auto-remove',
        'autoremove',
        'version',
        'help',
      ],
      deny: APT_CONFIG_DENY,
      abbreviations: false,
    },
    'apt-get',
  );
  if (has(p, '--version', '--help')) return;
  const verb = literalVerb(p.operands[0], 'apt-get');
  if (verb === 'check' || verb === 'changelog' || verb === 'download' || verb === 'source')
    deny(`apt-get ${verb} writes files or downloads`);
  if (!has(p, '-s', '--simulate', '--just-print', '--dry-run', '--recon', '--no-act'))
    deny(`apt-get ${verb ?? ''} changes packages (apt-get -s only simulates)`.replace('  ', ' '));
  if (
    ![
      'install',
      'remove',
      'purge',
      'upgrade',
      'dist-upgrade',
      'full-upgrade',
      'autoremove',
      'reinstall',
      'build-dep',
    ].includes(verb ?? '')
  )
    deny(`apt-get ${verb ?? ''} is not allowed`);
};

const aptMark = verbTool({
  options: { short: 'q', long: ['help', 'version'] },
  verbs: {
    showauto: true,
    showmanual: true,
    showhold: true,
    showinstall: true,
    showremove: true,
    showpurge: true,
  },
  denied: 'changes package marks',
});

const aptConfig = verbTool({
  options: { short: '', long: ['help', 'version', 'empty', 'format='], deny: APT_CONFIG_DENY },
  verbs: { dump: true, shell: true },
  denied: 'is not allowed',
});

const RPM_MODES = [
  '-q',
  '--query',
  '-V',
  '--verify',
  '-K',
  '--checksig',
  '--querytags',
  '--showrc',
  '--version',
  '--help',
];

const rpm = opts(
  {
    short: 'qVaflcdsRipKvg:',
    long: [
      'query',
      'verify',
      'all',
      'file',
      'package',
      'info',
      'list',
      'configfiles',
      'docfiles',
      'licensefiles',
      'artifactfiles',
      'state',
      'requires',
      'provides',
      'whatprovides',
      'whatrequires',
      'whatrecommends',
      'whatsuggests',
      'whatsupplements',
      'whatenhances',
      'whatconflicts',
      'whatobsoletes',
      'changelog',
      'changes',
      'last',
      'qf=',
      'queryformat=',
      'scripts',
      'triggers',
      'triggerscripts',
      'filetriggers',
      'filesbypkg',
      'dump',
      'conflicts',
      'obsoletes',
      'recommends',
      'suggests',
      'supplements',
      'enhances',
      'dbpath=',
      'root=',
      'nosignature',
      'nodigest',
      'nofiles',
      'nodeps',
      'noscripts',
      'nofiledigest',
      'nosize',
      'nolinkto',
      'nouser',
      'nogroup',
      'nomode',
      'nomtime',
      'nordev',
      'nocaps',
      'noconfig',
      'noghost',
      'noartifact',
      'xml',
      'fileprovide',
      'filecaps',
      'fileclass',
      'filecolor',
      'checksig',
      'querytags',
      'showrc',
      'version',
      'help',
      'quiet',
      'verbose',
      'group=',
    ],
  },
  (p) => {
    if (!p.options.some((o) => RPM_MODES.includes(o.name)))
      deny('rpm without -q or -V installs or removes packages');
    for (const o of p.options) if (o.name === '--qf' || o.name === '--queryformat') rpmQueryFormat(o.value);
  },
);

/**
 * rpm expands macros in a query format before reading its tags, and macros run code: `%(cmd)` runs
 * a shell, `%{lua:...}` Lua, `%{expand:...}`, `%{uncompress:...}` and friends more. So every `%`
 * must start a tag (`%{NAME}`, `%-20{NAME:date}`, `%{=NAME}`, `%{#NAME}`), a conditional
 * (`%|NAME?{`) or be doubled; tag names hold no `_` (macro names usually do).
 */
const RPM_TAG = /^%(%|-?\d*\{[=#]?[A-Za-z][A-Za-z0-9]*(:[a-z]+)?\}|\|[A-Za-z][A-Za-z0-9]*\?\{)/;

function rpmQueryFormat(w: Word | null): void {
  const v = w ? requireLiteral(w, 'rpm', 'query format') : '';
  for (let i = v.indexOf('%'); i >= 0; i = v.indexOf('%', i + 1)) {
    const m = RPM_TAG.exec(v.slice(i));
    if (!m)
      deny(`rpm --queryformat ${v}: only %{TAG} fields (macros such as %(...) and %{lua:...} run code)`);
    i += m[0].length - 1;
  }
}

const DNF_VALUED = [
  'enablerepo=',
  'disablerepo=',
  'repo=',
  'repoid=',
  'releasever=',
  'exclude=',
  'qf=',
  'queryformat=',
  'color=',
  'advisory=',
  'arch=',
  'latest-limit=',
  'sec-severity=',
  'whatprovides=',
  'whatrequires=',
];

const dnf = verbTool({
  options: {
    permissive: true,
    short: 'x:',
    long: DNF_VALUED,
    deny: {
      '--setopt': 'dnf --setopt can change configuration',
      '-c': 'dnf -c loads another configuration',
      '--config': 'dnf --config loads another configuration',
      '--installroot': 'dnf --installroot is not needed for reading',
      '--enableplugin': 'dnf --enableplugin loads plugin code',
      '--repofrompath': 'dnf --repofrompath adds a repository from a path or URL',
      '--setopt=': 'dnf --setopt can change configuration',
      '--downloadonly': 'dnf --downloadonly downloads packages',
      '--destdir': 'writes files',
      '--downloaddir': 'writes files',
    },
  },
  verbs: {
    list: true,
    info: true,
    repolist: true,
    repoinfo: true,
    repoquery: true,
    search: true,
    provides: true,
    whatprovides: true,
    deplist: true,
    'check-update': true,
    'check-upgrade': true,
    updateinfo: (rest) => {
      const v = rest[0] ? requireLiteral(rest[0], 'dnf', 'argument') : undefined;
      if (v !== undefined && !['list', 'info', 'summary'].includes(v)) deny(`updateinfo ${v} is not allowed`);
    },
    history: (rest) => {
      const v = rest[0] ? requireLiteral(rest[0], 'dnf', 'argument') : undefined;
      if (v !== undefined && !['list', 'info'].includes(v) && !/^\d+$/.test(v))
        deny(`history ${v} changes packages`);
    },
    module: (rest) => {
      if (!['list', 'info'].includes(rest[0]?.value ?? '')) deny('only module list/info are allowed');
    },
    group: (rest) => {
      if (!['list', 'info', 'summary'].includes(rest[0]?.value ?? ''))
        deny('only group list/info are allowed');
    },
    grouplist: true,
    groupinfo: true,
    version: true,
  },
  denied: 'changes packages (only list, info, search, repolist, repoquery, history list are allowed)',
});

const zypper = verbTool({
  options: {
    permissive: true,
    deny: {
      '--root': 'zypper --root reads repositories (and their URL plugins) from another tree',
      '-R': 'zypper -R reads repositories (and their URL plugins) from another tree',
      '--reposd-dir': 'zypper --reposd-dir reads repositories (and their URL plugins) from elsewhere',
      '-D': 'zypper -D reads repositories (and their URL plugins) from elsewhere',
      '--cache-dir': 'zypper --cache-dir writes a cache',
      '-C': 'zypper -C writes a cache',
      '--raw-cache-dir': 'zypper --raw-cache-dir writes a cache',
      '--solv-cache-dir': 'zypper --solv-cache-dir writes a cache',
      '--pkg-cache-dir': 'zypper --pkg-cache-dir writes a cache',
      '--config': 'zypper --config loads another configuration',
      '-c': 'zypper -c loads another configuration',
      '--plus-repo': 'zypper --plus-repo adds a repository from a URL',
      '-p': 'zypper -p adds a repository from a URL',
    },
  },
  verbs: Object.fromEntries(
    [
      'search',
      'se',
      'info',
      'if',
      'packages',
      'pa',
      'patterns',
      'pt',
      'products',
      'pd',
      'repos',
      'lr',
      'services',
      'ls',
      'list-updates',
      'lu',
      'list-patches',
      'lp',
      'patch-check',
      'pchk',
      'locks',
      'll',
      'what-provides',
      'wp',
      'patches',
      'search-packages',
    ].map((v) => [v, true]),
  ),
  denied: 'changes packages',
});

const snap = verbTool({
  options: { permissive: true },
  verbs: {
    list: true,
    info: true,
    services: true,
    version: true,
    changes: true,
    tasks: true,
    connections: true,
    interfaces: true,
    warnings: true,
    find: true,
    search: true,
    known: true,
    logs: true,
  },
  noVerb: true,
  denied: 'changes snaps',
});

const flatpak = verbTool({
  options: { permissive: true },
  verbs: { list: true, info: true, remotes: true, 'remote-ls': true, history: true, ps: true, search: true },
  noVerb: true,
  denied: 'changes applications',
});

const pip = verbTool({
  options: {
    permissive: true,
    long: ['path=', 'exclude='],
    deny: {
      '--log': 'pip --log writes a file',
      '--log-file': 'pip --log-file writes a file',
      '--report': 'pip --report writes a file',
      '--python': 'pip --python runs another program as the interpreter',
      '--cache-dir': 'pip --cache-dir writes its cache there',
    },
  },
  verbs: {
    list: true,
    show: true,
    freeze: true,
    check: true,
    inspect: true,
    debug: true,
    config: (rest) => {
      if (!['list', 'get', 'debug'].includes(rest[0]?.value ?? '')) deny('pip config changes configuration');
    },
  },
  noVerb: true,
  denied: 'installs or changes packages (only list, show, freeze, check are allowed)',
});

const gem = verbTool({
  options: {
    permissive: true,
    deny: { '--config-file': 'gem --config-file loads a configuration that can run code' },
  },
  verbs: {
    list: true,
    info: true,
    specification: true,
    contents: true,
    environment: true,
    which: true,
    search: true,
    query: true,
  },
  noVerb: true,
  denied: 'installs or changes gems',
});

// Every npm setting can be given as --name=value, and several run programs or write files (--git,
// --script-shell, --userconfig, --cache, --logs-dir): only display options are accepted.
const npm = verbTool({
  options: {
    short: 'lpagsqdw:',
    long: [
      'json',
      'long',
      'parseable',
      'all',
      'global',
      'depth=',
      'prod',
      'production',
      'dev',
      'omit=',
      'include=',
      'location=',
      'workspace=',
      'workspaces',
      'registry=',
      'color=?',
      'no-color',
      'loglevel=',
      'silent',
      'quiet',
      'unicode',
      'no-unicode',
      'offline',
      'prefer-offline',
      'fetch-timeout=',
      'help',
      'version',
      'link',
      'package-lock-only',
      'before=',
      'tag=',
      'browser=',
    ],
    deny: { '--browser': 'npm --browser runs a program' },
  },
  verbs: {
    ls: true,
    list: true,
    la: true,
    ll: true,
    view: true,
    info: true,
    show: true,
    outdated: true,
    root: true,
    prefix: true,
    config: (rest) => {
      if (!['get', 'list', 'ls'].includes(rest[0]?.value ?? '')) deny('npm config changes configuration');
    },
  },
  noVerb: true,
  denied: 'installs packages or runs scripts (only ls, view, outdated are allowed)',
});

// ---------------------------------------------------------------------------------------------
// openssl, keys, certificates

const OPENSSL_ALWAYS_DENY = new Set([
  '-out',
  '-keyout',
  '-engine',
  '-provider',
  '-provider-path',
  '-propquery',
  '-writerand',
  '-rand',
  '-signkey',
  '-CA',
  '-CAkey',
  '-CAcreateserial',
  '-CAserial',
  '-set_serial',
  '-new',
  '-newkey',
  '-x509',
  '-x509toreq',
  '-req',
  '-sess_out',
  '-keylogfile',
  '-msgfile',
  '-passout',
  '-sign',
  '-sigfile',
  '-extfile',
  '-config',
  '-trace',
  '-ssl_config',
  '-nameopt_file',
  '-proxy',
  '-proxy_user',
  '-proxy_pass',
]);

const OPENSSL_SUBCOMMANDS = new Set([
  'x509',
  'req',
  'crl',
  'verify',
  'rsa',
  'ec',
  'pkey',
  'pkcs12',
  'pkcs7',
  's_client',
  'version',
  'ciphers',
  'list',
  'dgst',
  'sha256',
  'sha1',
  'md5',
  'sha512',
  'asn1parse',
  'storeutl',
  'crl2pkcs7',
  'help',
  'errstr',
  'prime',
  'rand',
  'base64',
  'enc',
]);

const openssl: Rule = (args, ctx) => {
  const sub = literalVerb(args[0], 'openssl');
  if (sub === null) deny('openssl without a command is interactive');
  if (!OPENSSL_SUBCOMMANDS.has(sub)) deny(`openssl ${sub} is not a read-only command`);
  if (sub === 's_client' && !ctx.stdinData)
    deny('openssl s_client sends its input to the server; add < /dev/null');
  if (
    sub === 'pkcs12' &&
    !args.some((a) => a.value === '-info' || a.value === '-nokeys' || a.value === '-noout')
  )
    deny('openssl pkcs12 without -info/-noout can write keys');
  // Every word is checked, option values included: a value that looks like a denied option is
  // refused rather than risk skipping a real one.
  for (const w of args.slice(1)) {
    const v = w.value;
    if (v === null) {
      if (mayStartWith(w)) deny(`openssl: ${show(w)} could become an option`);
      continue;
    }
    const name = v.startsWith('--') ? v.slice(1) : v;
    if (OPENSSL_ALWAYS_DENY.has(name)) deny(`openssl ${sub} ${v} writes files, signs, or loads code`);
    // A file argument may be a store URI: `org.openssl.engine:/path/lib.so:key` loads a shared
    // library; `-keyform engine` and the like need an engine.
    if (/engine:/i.test(v)) deny(`openssl ${sub}: ${v} loads an engine (a shared library)`);
    if (/^engine$/i.test(v)) deny(`openssl ${sub}: the engine key format loads an engine`);
  }
};

const sshKeygen = opts({ short: 'lLyvqF:f:E:', long: [] }, (p) => {
  if (!has(p, '-l', '-L', '-y', '-F'))
    deny('ssh-keygen is only allowed to show fingerprints and keys (-l, -L, -y, -F)');
});

// ---------------------------------------------------------------------------------------------
// Servers: configuration tests

const nginx = opts(
  {
    short: 'tTvVqc:',
    long: [],
    deny: {
      '-s': 'nginx -s signals the running server',
      '-g': 'nginx -g sets directives, which can load modules',
      '-p': 'nginx -p moves the prefix that modules and includes are loaded from',
      '-e': 'nginx -e writes an error log',
    },
  },
  (p) => {
    if (!has(p, '-t', '-T', '-v', '-V', '-h', '-?')) deny('nginx without -t or -T starts the server');
    // A configuration can load modules (load_module) and name log files to create.
    for (const o of p.options)
      if (o.name === '-c') configFile(o.value ?? undefined, 'nginx', '-c', ['/etc/nginx']);
  },
);

const APACHE_CONFIG = ['/etc/apache2', '/etc/httpd'];
const APACHE_READ = ['-S', '-t', '-M', '-V', '-v', '-l', '-L', '-h', '-T', 'configtest'];

const apachectl: Rule = (args, ctx) => {
  for (let i = 0; i < args.length; i++) {
    const v = requireLiteral(args[i]!, ctx.name, 'argument');
    if (APACHE_READ.includes(v) || /^-D[A-Za-z_]+$/.test(v)) continue;
    if (v === '-D') {
      i++;
      continue;
    }
    // The configuration loads modules (LoadModule) and starts piped loggers: only Apache's own.
    if (v === '-f' || v.startsWith('-f')) {
      configFile(v === '-f' ? args[++i] : literalWord(v.slice(2)), ctx.name, '-f', APACHE_CONFIG);
      continue;
    }
    if (v.startsWith('-d')) deny(`${ctx.name} -d moves the server root that modules are loaded from`);
    deny(`${ctx.name} ${v} starts, stops or reconfigures the server (only -t, -S, -M, -V are allowed)`);
  }
  if (!args.some((a) => APACHE_READ.includes(a.value ?? '')))
    deny(`${ctx.name} without -t starts the server`);
};

const sshd = opts({ short: 'tTGVf:C:46', long: [] }, (p) => {
  if (!has(p, '-t', '-T', '-G', '-V')) deny('sshd without -t or -T starts a server');
  for (const o of p.options)
    if (o.name === '-f') configFile(o.value ?? undefined, 'sshd', '-f', ['/etc/ssh']);
});

const namedCheckzone = opts({
  permissive: true,
  short: 'c:f:F:i:J:k:l:L:m:M:n:r:s:S:t:T:w:D',
  deny: { '-o': 'named-checkzone -o writes a zone file' },
});

const haproxy = opts(
  { short: 'cvVqf:L:', long: [], deny: { '-C': 'haproxy -C changes the directory files are loaded from' } },
  (p) => {
    if (!has(p, '-c', '-v', '-V', '-vv')) deny('haproxy without -c starts the proxy');
    // lua-load runs Lua while the configuration is parsed, even under -c: only HAProxy's own.
    for (const o of p.options)
      if (o.name === '-f') configFile(o.value ?? undefined, 'haproxy', '-f', ['/etc/haproxy']);
  },
);

const postconf = opts(
  {
    permissive: true,
    short: 'c:o:',
    deny: {
      '-e': 'postconf -e edits main.cf',
      '-X': 'postconf -X edits main.cf',
      '-#': 'postconf -# edits main.cf',
      '-P': 'postconf -P can edit master.cf',
    },
  },
  (p) => {
    for (const o of p.options)
      if (o.name === '-c') configFile(o.value ?? undefined, 'postconf', '-c', ['/etc/postfix']);
    for (const w of p.operands)
      if (w.value === null || w.value.includes('=')) deny('postconf with name=value edits the configuration');
  },
);

const postqueue = opts({ short: 'pjc:' }, (p) => {
  if (!has(p, '-p', '-j')) deny('postqueue is only allowed to list the queue (-p, -j)');
});

const php: Rule = (args) => {
  if (
    args.length &&
    args.every((a) =>
      ['-v', '--version', '-m', '--modules', '-i', '--info', '--ini', '-h', '--help'].includes(a.value ?? ''),
    )
  )
    return;
  deny('php runs code (only php -v, -m, -i, --ini are allowed)');
};

const phpFpm: Rule = (args) => {
  if (
    args.length &&
    args.every((a) =>
      ['-t', '--test', '-tt', '-v', '--version', '-i', '--info', '-m', '--modules'].includes(a.value ?? ''),
    )
  )
    return;
  deny('php-fpm is only allowed to test its configuration (-t)');
};

const rndc: Rule = (args) => {
  const ops = args.filter((a) => !(a.value ?? '-').startsWith('-'));
  if (ops.length === 1 && ops[0]!.value === 'status' && args.length === 1) return;
  deny('rndc controls the name server (only rndc status is allowed)');
};

/** Interpreters and shells: only asking for the version. */
const versionOnly =
  (...flags: string[]): Rule =>
  (args, ctx) => {
    if (args.length === 1 && args[0]!.value !== null && ['--version', ...flags].includes(args[0]!.value))
      return;
    deny(`${ctx.name} runs code (only ${ctx.name} --version is allowed)`);
  };

const INTERPRETERS: Record<string, string[]> = {
  bash: [],
  sh: [],
  dash: [],
  zsh: [],
  ksh: [],
  mksh: [],
  fish: [],
  csh: [],
  tcsh: [],
  ash: [],
  python: ['-V'],
  python2: ['-V'],
  python3: ['-V'],
  pypy: ['-V'],
  pypy3: ['-V'],
  perl: ['-v', '-V'],
  ruby: ['-v'],
  irb: [],
  node: ['-v'],
  nodejs: ['-v'],
  deno: [],
  bun: [],
  lua: ['-v'],
  luajit: ['-v'],
  tclsh: [],
  wish: [],
  Rscript: [],
  R: [],
  java: ['-version'],
  jshell: [],
  groovy: [],
  scala: [],
  julia: [],
  guile: [],
  racket: [],
  sbcl: [],
  erl: [],
  elixir: [],
  iex: [],
  pwsh: [],
  go: ['version'],
  gcc: [],
  cc: [],
  make: [],
  cargo: [],
  rustc: [],
};

export const toolRules: Record<string, Rule> = {
  git: gitRule,
  docker,
  podman: docker,
  nerdctl: docker,
  'docker-compose': (args, ctx) => docker([literalWord('compose'), ...args], ctx),
  crictl,
  kubectl,
  oc: kubectl,
  helm,
  virsh,
  dpkg,
  'dpkg-deb': dpkgDeb,
  apt,
  'apt-cache': aptCache,
  'apt-get': aptGet,
  'apt-mark': aptMark,
  'apt-config': aptConfig,
  aptitude: refuse('aptitude is interactive and changes packages (use apt list or apt-cache)'),
  rpm,
  dnf,
  yum: dnf,
  microdnf: dnf,
  zypper,
  snap,
  flatpak,
  pip,
  pip3: pip,
  gem,
  npm,
  openssl,
  'ssh-keygen': sshKeygen,
  nginx,
  apachectl,
  apache2ctl: apachectl,
  httpd: apachectl,
  apache2: apachectl,
  sshd,
  'named-checkzone': namedCheckzone,
  'named-compilezone': refuse('named-compilezone writes a zone file'),
  haproxy,
  postconf,
  postqueue,
  php,
  'php-fpm': phpFpm,
  rndc,
  service: (args) => {
    const words = args.map((a) => requireLiteral(a, 'service', 'argument'));
    if (words.length === 1 && words[0] === '--status-all') return;
    // service runs /etc/init.d/NAME: a name with a slash (../../tmp/x) would run any program.
    if (
      words.length === 2 &&
      words[1] === 'status' &&
      /^[A-Za-z0-9@_:.+-]+$/.test(words[0]!) &&
      !words[0]!.startsWith('.')
    )
      return;
    if (words.length === 1 && (words[0] === '--version' || words[0] === '--help')) return;
    deny(`service ${words.join(' ')} changes services (only service NAME status and --status-all)`);
  },
  'rc-service': (args) => {
    const words = args.map((a) => requireLiteral(a, 'rc-service', 'argument'));
    if (words.length === 2 && words[1] === 'status') return;
    if (words.length === 1 && (words[0] === '-l' || words[0] === '--list')) return;
    deny('rc-service only with NAME status or --list');
  },
  'rc-status': allow,
  'rc-update': (args) => {
    if (
      args.length === 0 ||
      (args.length === 1 && ['show', '-v', '--verbose'].includes(args[0]!.value ?? ''))
    )
      return;
    deny('rc-update changes runlevels (only rc-update show)');
  },
  chkconfig: (args) => {
    if (args.length === 0 || ['--list'].includes(args[0]!.value ?? '')) return;
    deny('chkconfig changes services (only chkconfig --list)');
  },
  initctl: (args) => {
    const verb = literalVerb(args[0], 'initctl');
    if (verb === 'list' || verb === 'status' || verb === 'version' || verb === 'show-config') return;
    deny(`initctl ${verb ?? ''} changes jobs`.trimEnd());
  },
  getsebool: allow,
  ...Object.fromEntries(Object.entries(INTERPRETERS).map(([n, f]) => [n, versionOnly(...f)])),
  // Network clients: they can download, upload and write files.
  nc: (args) => {
    // Only a port check: `nc -z [-v] [-w N] [-n] [-4|-6] host port`, which sends no data.
    const p = parseOptions(args, { short: 'zvnu46w:' }, 'nc');
    if (!has(p, '-z') || p.operands.length !== 2 || p.operands.some((w) => w.value === null))
      deny('nc opens network connections (only nc -z HOST PORT checks a port)');
  },
  ncat: refuse('ncat opens network connections and can run commands'),
  netcat: (args, ctx) => toolRules.nc!(args, ctx),
  socat: refuse('socat opens connections and can run commands'),
  telnet: refuse('telnet opens network connections'),
  ssh: refuseButVersion('ssh runs commands on other hosts', '-V'),
  scp: refuse('scp copies files'),
  sftp: refuse('sftp copies files'),
  sshpass: refuse('sshpass runs ssh with a password'),
  ftp: refuse('ftp transfers files'),
  lftp: refuse('lftp transfers files'),
  tftp: refuse('tftp transfers files'),
  aria2c: refuse('aria2c downloads files'),
  http: refuse('httpie makes network requests'),
  https: refuse('httpie makes network requests'),
  xh: refuse('xh makes network requests'),
  lynx: refuse('lynx is an interactive browser'),
  links: refuse('links is an interactive browser'),
  w3m: refuse('w3m is an interactive browser'),
  // Databases and orchestration: they can change data anywhere.
  sqlite3: refuseButVersion('sqlite3 can change databases', '-version'),
  mongo: refuse('database clients can change data'),
  mongosh: refuseButVersion('database clients can change data'),
  cqlsh: refuse('database clients can change data'),
  aws: refuseButVersion('cloud CLIs can change cloud resources'),
  gcloud: refuseButVersion('cloud CLIs can change cloud resources'),
  az: refuseButVersion('cloud CLIs can change cloud resources'),
  terraform: refuseButVersion('terraform changes infrastructure', 'version', '-version'),
  ansible: refuseButVersion('ansible runs commands on hosts'),
  'ansible-playbook': refuseButVersion('ansible-playbook changes hosts'),
  salt: refuse('salt runs commands on hosts'),
  puppet: refuse('puppet changes hosts'),
  gpg: refuse('gpg writes its keyring and trust database'),
  gpg2: refuse('gpg writes its keyring and trust database'),
};
