/** System inspection: processes, hardware, systemd, logs, networking, storage, users, time. */
import { has, parseOptions, type OptionSpec, type ParsedArgs } from '../options.ts';
import {
  allow,
  configFile,
  literalVerb,
  maxOperands,
  noOperands,
  opts,
  reader,
  refuse,
  refuseButVersion,
  requireLiteral,
  verbTool,
  type Rule,
} from '../rule.ts';
import { deny, mayStartWith, show, type Word } from '../types.ts';
import { prefixVerb } from './daemons.ts';

const PLAIN = [
  'df',
  'du',
  'free',
  'uptime',
  'ps',
  'pgrep',
  'pidof',
  'pstree',
  'pmap',
  'pwdx',
  'prtstat',
  'id',
  'whoami',
  'groups',
  'users',
  'who',
  'w',
  'pinky',
  'finger',
  'last',
  'lastb',
  'logname',
  'tty',
  'uname',
  'arch',
  'nproc',
  'hostid',
  'getconf',
  'locale',
  'getent',
  'lsb_release',
  'lsblk',
  'findmnt',
  'lscpu',
  'lsmem',
  'lsmod',
  'modinfo',
  'lspci',
  'lsusb',
  'lsns',
  'lslocks',
  'lsipc',
  'lsirq',
  'lsscsi',
  'lslogins',
  'vmstat',
  'iostat',
  'mpstat',
  'lsof',
  'netstat',
  'runlevel',
  'getenforce',
  'sestatus',
  'aa-status',
  'apparmor_status',
  'virt-what',
  'systemd-detect-virt',
  'systemd-delta',
  'systemd-cgls',
  'dumpe2fs',
  'xfs_info',
  'pvs',
  'vgs',
  'lvs',
  'pvdisplay',
  'vgdisplay',
  'lvdisplay',
  'ping',
  'ping6',
  'traceroute',
  'traceroute6',
  'tracepath',
  'tracepath6',
  'dig',
  'host',
  'nslookup',
  'showmount',
  'atq',
  'ntpstat',
  'debconf-show',
  'aureport',
  'clear',
  'uptime',
  'dpkg-query',
];

// ---------------------------------------------------------------------------------------------
// systemd

const SYSTEMCTL_OPTIONS: OptionSpec = {
  short: 'arlqt:p:Pn:o:M:hH:',
  long: [
    'all',
    'recursive',
    'reverse',
    'after',
    'before',
    'with-dependencies',
    'full',
    'value',
    'show-types',
    'quiet',
    'no-warn',
    'user',
    'system',
    'global',
    'no-ask-password',
    'lines=',
    'output=',
    'timestamp=',
    'no-pager',
    'no-legend',
    'legend=',
    'machine=',
    'type=',
    'state=',
    'property=',
    'plain',
    'failed',
    'help',
    'version',
    'root=',
  ],
  deny: {
    '-H': 'systemctl -H connects to another host',
    '--host': 'systemctl --host connects to another host',
    '--image': 'systemctl --image mounts a disk image',
  },
};

const SYSTEMCTL_READ = [
  'status',
  'show',
  'cat',
  'is-active',
  'is-enabled',
  'is-failed',
  'is-system-running',
  'list-units',
  'list-unit-files',
  'list-timers',
  'list-sockets',
  'list-dependencies',
  'list-jobs',
  'list-machines',
  'list-paths',
  'list-automounts',
  'get-default',
  'show-environment',
  'whoami',
];

const systemctl = verbTool({
  options: SYSTEMCTL_OPTIONS,
  verbs: Object.fromEntries(SYSTEMCTL_READ.map((v) => [v, true])),
  noVerb: true,
  denied: 'changes the service manager (only status, show, cat, is-*, list-* are allowed)',
});

const JOURNALCTL_OPTIONS: OptionSpec = {
  permissive: true,
  short: 'u:t:T:p:g:S:U:o:c:D:M:F:i:n::b::',
  long: [
    'user',
    'system',
    'unit=',
    'user-unit=',
    'identifier=',
    'exclude-identifier=',
    'priority=',
    'facility=',
    'grep=',
    'case-sensitive=?',
    'since=',
    'until=',
    'output=',
    'output-fields=',
    'cursor=',
    'after-cursor=',
    'directory=',
    'file=',
    'root=',
    'namespace=',
    'machine=',
    'field=',
    'lines=?',
    'boot=?',
    'invocation=',
    'interval=',
  ],
  deny: {
    '--vacuum-size': 'journalctl --vacuum-size deletes journal files',
    '--vacuum-time': 'journalctl --vacuum-time deletes journal files',
    '--vacuum-files': 'journalctl --vacuum-files deletes journal files',
    '--rotate': 'journalctl --rotate rotates journal files',
    '--flush': 'journalctl --flush moves journal files',
    '--sync': 'journalctl --sync writes the journal to disk',
    '--relinquish-var': 'journalctl --relinquish-var changes where the journal is written',
    '--smart-relinquish-var': 'journalctl --smart-relinquish-var changes where the journal is written',
    '--setup-keys': 'journalctl --setup-keys writes sealing keys',
    '--update-catalog': 'journalctl --update-catalog rewrites the catalog',
    '--cursor-file': 'journalctl --cursor-file writes a file',
    '--image': 'journalctl --image mounts a disk image',
    '--force': 'journalctl --force is only used when writing',
    '-H': 'journalctl -H connects to another host over ssh',
    '--host': 'journalctl --host connects to another host over ssh',
  },
};

const systemdTool = (
  options: OptionSpec,
  verbs: Record<string, true | ((rest: Word[]) => void)>,
  denied: string,
): Rule =>
  verbTool({
    options,
    verbs: Object.fromEntries(
      Object.entries(verbs).map(([k, v]) => [k, v === true ? true : (rest) => v(rest)]),
    ),
    noVerb: true,
    denied,
  });

const COMMON_SYSTEMD = [
  'no-pager',
  'no-legend',
  'no-ask-password',
  'help',
  'version',
  'json=',
  'machine=',
  'quiet',
  'all',
  'full',
  'value',
  'property=',
  'user',
  'system',
];
const SYSTEMD_DENY = {
  '-H': 'connects to another host',
  '--host': 'connects to another host',
};

const noArgs = (what: string) => (rest: Word[]) => {
  if (rest.length) deny(`${what} with a value changes the system`);
};
const atMost = (n: number, what: string) => (rest: Word[]) => {
  if (rest.length > n) deny(`${what} with a value changes the system`);
};

const hostnamectl = systemdTool(
  { short: 'hM:j', long: [...COMMON_SYSTEMD, 'transient', 'static', 'pretty'], deny: SYSTEMD_DENY },
  {
    status: true,
    hostname: noArgs('hostnamectl hostname'),
    'icon-name': noArgs('hostnamectl icon-name'),
    chassis: noArgs('hostnamectl chassis'),
    deployment: noArgs('hostnamectl deployment'),
    location: noArgs('hostnamectl location'),
  },
  'changes the host name (only status and queries are allowed)',
);

const timedatectl = systemdTool(
  { short: 'hM:ap:', long: [...COMMON_SYSTEMD, 'monitor', 'adjust-system-clock'], deny: SYSTEMD_DENY },
  { status: true, show: true, 'show-timesync': true, 'timesync-status': true, 'list-timezones': true },
  'changes the clock or time zone',
);

const localectl = systemdTool(
  { short: 'hM:', long: [...COMMON_SYSTEMD, 'no-convert'], deny: SYSTEMD_DENY },
  {
    status: true,
    'list-locales': true,
    'list-keymaps': true,
    'list-x11-keymap-models': true,
    'list-x11-keymap-layouts': true,
    'list-x11-keymap-variants': true,
    'list-x11-keymap-options': true,
  },
  'changes the locale',
);

const loginctl = systemdTool(
  {
    short: 'hM:p:Palln:o:j',
    long: [...COMMON_SYSTEMD, 'lines=', 'output='],
    deny: SYSTEMD_DENY,
  },
  {
    'list-sessions': true,
    'session-status': true,
    'show-session': true,
    'list-users': true,
    'user-status': true,
    'show-user': true,
    'list-seats': true,
    'seat-status': true,
    'show-seat': true,
  },
  'changes sessions or users (only list-*, *-status and show-* are allowed)',
);

const networkctl = systemdTool(
  { short: 'hasln:', long: [...COMMON_SYSTEMD, 'stats', 'lines='], deny: SYSTEMD_DENY },
  { list: true, status: true, lldp: true, label: true, cat: true },
  'changes network links',
);

/** Lookup options shared by resolvectl and its predecessor systemd-resolve. */
const RESOLVE_QUERY = [
  'interface=',
  'protocol=',
  'type=',
  'class=',
  'service-address=',
  'service-txt=',
  'cname=',
  'search=',
  'raw=?',
  'legend=',
];

const resolvectl = systemdTool(
  {
    short: 'h46i:p:t:c:j',
    long: [
      ...COMMON_SYSTEMD,
      ...RESOLVE_QUERY,
      'validate=',
      'synthesize=',
      'cache=',
      'zone=',
      'trust-anchor=',
      'network=',
      'stale-data=',
      'relax-single-label=',
    ],
    deny: SYSTEMD_DENY,
  },
  {
    status: true,
    query: true,
    service: true,
    openpgp: true,
    tlsa: true,
    statistics: true,
    monitor: true,
    'show-cache': true,
    'show-server-state': true,
    dns: atMost(1, 'resolvectl dns'),
    domain: atMost(1, 'resolvectl domain'),
    'default-route': atMost(1, 'resolvectl default-route'),
    llmnr: atMost(1, 'resolvectl llmnr'),
    mdns: atMost(1, 'resolvectl mdns'),
    dnssec: atMost(1, 'resolvectl dnssec'),
    dnsovertls: atMost(1, 'resolvectl dnsovertls'),
    nta: atMost(1, 'resolvectl nta'),
    'log-level': noArgs('resolvectl log-level'),
  },
  'changes the resolver',
);

/** busctl calls that name a service would start it on demand (bus activation) unless told not to. */
const noActivation = (rest: Word[], p: ParsedArgs): void => {
  const v = p.options.filter((o) => o.name === '--auto-start').at(-1)?.value?.value;
  if (rest.length && !(v && /^(no|false|0|off)$/i.test(v)))
    deny('busctl would start the service if it is not running (add --auto-start=no)');
};
const busctl = verbTool({
  options: {
    short: 'hlqjM:',
    long: [
      ...COMMON_SYSTEMD,
      'show-machine',
      'unique',
      'acquired',
      'activatable',
      'match=',
      'list',
      'verbose',
      'xml-interface',
      'augment-creds=',
      'watch-bind=',
      'timeout=',
      'size=',
      'auto-start=',
    ],
    deny: {
      ...SYSTEMD_DENY,
      '--address': 'busctl --address can start a program to carry the bus connection',
    },
  },
  verbs: {
    list: true,
    status: true,
    tree: noActivation,
    introspect: noActivation,
    'get-property': noActivation,
    monitor: true,
  },
  noVerb: true,
  denied: 'calls or changes services on the bus',
});

const coredumpctl = systemdTool(
  {
    short: 'hn:S:U:F:D:qrj1',
    long: [...COMMON_SYSTEMD, 'since=', 'until=', 'field=', 'directory=', 'file=', 'reverse', 'root=', 'all'],
    deny: {
      ...SYSTEMD_DENY,
      '-o': 'coredumpctl -o writes a file',
      '--output': 'coredumpctl --output writes a file',
    },
  },
  { list: true, info: true },
  'dumps or debugs core files',
);

const systemdAnalyze = systemdTool(
  {
    short: 'h',
    long: [
      ...COMMON_SYSTEMD,
      'global',
      'order',
      'require',
      'from-pattern=',
      'to-pattern=',
      'fuzz=',
      'root=',
      'offline=',
      'threshold=',
      'security-policy=',
      'iterations=',
      'base-time=',
      'unit=',
      'table',
      'detailed',
      'tldr',
      'scale-svg=',
    ],
    deny: SYSTEMD_DENY,
  },
  {
    time: true,
    blame: true,
    'critical-chain': true,
    dot: true,
    plot: true,
    dump: true,
    'cat-config': true,
    'unit-files': true,
    'unit-paths': true,
    'exit-status': true,
    capability: true,
    condition: true,
    'syscall-filter': true,
    filesystems: true,
    calendar: true,
    timestamp: true,
    timespan: true,
    security: true,
    'inspect-elf': true,
    fdstore: true,
    'image-policy': true,
    'has-tpm2': true,
    pcrs: true,
    'log-level': noArgs('systemd-analyze log-level'),
    'log-target': noArgs('systemd-analyze log-target'),
    'service-watchdogs': noArgs('systemd-analyze service-watchdogs'),
  },
  'changes the system or runs programs',
);

const machinectl = systemdTool(
  {
    short: 'hp:alo:n:',
    long: [...COMMON_SYSTEMD, 'lines=', 'output=', 'max-addresses='],
    deny: SYSTEMD_DENY,
  },
  { list: true, status: true, show: true, 'list-images': true, 'image-status': true, 'show-image': true },
  'changes machines',
);

const bootctl = systemdTool(
  {
    short: 'hpxRq',
    long: [
      ...COMMON_SYSTEMD,
      'esp-path=',
      'boot-path=',
      'root=',
      'print-esp-path',
      'print-boot-path',
      'print-root-device',
      'no-variables',
      'graceful',
    ],
  },
  { status: true, list: true, 'is-installed': true },
  'changes the boot loader',
);

const udevadm: Rule = (args) => {
  const verb = literalVerb(
    args.find((a) => !mayStartWith(a)),
    'udevadm',
  );
  const first = args[0]?.value;
  if (first === '--version' || first === '-V' || first === '--help' || first === '-h') return;
  if (args[0] !== undefined && args[0].value !== verb) deny('udevadm: options go after the subcommand');
  if (verb === 'info') {
    parseOptions(
      args.slice(1),
      {
        permissive: true,
        short: 'q:p:n:',
        long: ['query=', 'path=', 'name=', 'property=', 'device-id-of-file='],
        deny: {
          '-c': 'udevadm info --cleanup-db deletes the database',
          '--cleanup-db': 'udevadm info --cleanup-db deletes the database',
        },
      },
      'udevadm info',
    );
    return;
  }
  if (verb === 'monitor' || verb === 'verify' || verb === 'cat') return;
  deny(
    `udevadm ${verb ?? ''} changes devices (only info, monitor, verify, cat are allowed)`.replace('  ', ' '),
  );
};

// ---------------------------------------------------------------------------------------------
// Logs and kernel

const dmesg = reader(
  {
    '-c': 'dmesg -c clears the kernel ring buffer',
    '--read-clear': 'dmesg --read-clear clears the kernel ring buffer',
    '-C': 'dmesg -C clears the kernel ring buffer',
    '--clear': 'dmesg --clear clears the kernel ring buffer',
    '-D': 'dmesg -D changes console logging',
    '--console-off': 'dmesg --console-off changes console logging',
    '-E': 'dmesg -E changes console logging',
    '--console-on': 'dmesg --console-on changes console logging',
    '-n': 'dmesg -n changes the console log level',
    '--console-level': 'dmesg --console-level changes the console log level',
  },
  'f:l:s:F:K:',
  [
    'facility=',
    'level=',
    'buffer-size=',
    'file=',
    'kmsg-file=',
    'since=',
    'until=',
    'time-format=',
    'color=?',
  ],
);

const sysctl: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'aAXbeNnqr:hVd',
      long: [
        'all',
        'binary',
        'ignore',
        'names',
        'values',
        'quiet',
        'pattern=',
        'deprecated',
        'help',
        'version',
      ],
      deny: {
        '-w': 'sysctl -w changes kernel parameters',
        '--write': 'sysctl --write changes kernel parameters',
        '-p': 'sysctl -p loads and applies settings',
        '--load': 'sysctl --load applies settings',
        '-f': 'sysctl -f loads and applies settings',
        '--system': 'sysctl --system applies settings',
      },
    },
    'sysctl',
  );
  for (const w of p.operands) {
    if (w.value === null) deny(`sysctl: ${show(w)} is computed at run time and could be a setting`);
    if (w.value.includes('=')) deny(`sysctl ${w.value} changes a kernel parameter`);
  }
};

// ---------------------------------------------------------------------------------------------
// Networking

const IP_OBJECTS: Record<string, string> = {};
for (const [full, min] of [
  ['address', 1],
  ['route', 1],
  ['link', 1],
  ['neighbour', 1],
  ['neighbor', 1],
  ['rule', 2],
  ['maddress', 1],
  ['mroute', 2],
  ['nexthop', 3],
  ['netconf', 4],
  ['ntable', 2],
  ['tcp_metrics', 4],
  ['token', 2],
  ['vrf', 1],
  ['stats', 2],
  ['monitor', 3],
  ['netns', 4],
  ['tunnel', 3],
  ['tuntap', 4],
  ['mptcp', 2],
] as const) {
  for (let k = min; k <= full.length; k++) IP_OBJECTS[full.slice(0, k)] ??= full;
}
IP_OBJECTS.a = 'address';
IP_OBJECTS.addr = 'address';
IP_OBJECTS.r = 'route';
IP_OBJECTS.l = 'link';
IP_OBJECTS.n = 'neighbour';
IP_OBJECTS.neigh = 'neighbour';
IP_OBJECTS.nh = 'nexthop';
IP_OBJECTS.tcpm = 'tcp_metrics';

const IP_SHOW = new Set(['show', 'sh', 'sho', 'list', 'lst', 'ls']);
const IP_ABBREVIATED_READS: Record<string, string[]> = { address: ['s'], route: ['s', 'g', 'ge'] };
const IP_GET = new Set(['route', 'neighbour', 'nexthop', 'netconf', 'token']);

const IP_FLAGS = new Set([
  '-4',
  '-6',
  '-B',
  '-0',
  '-M',
  '-s',
  '-stats',
  '-statistics',
  '-d',
  '-details',
  '-r',
  '-resolve',
  '-o',
  '-oneline',
  '-t',
  '-timestamp',
  '-ts',
  '-tshort',
  '-j',
  '-json',
  '-p',
  '-pretty',
  '-br',
  '-brief',
  '-c',
  '-color',
  '-h',
  '-human',
  '-human-readable',
  '-iec',
  '-N',
  '-Numeric',
  '-V',
  '-Version',
  '-a',
  '-all',
]);
const IP_ARGS = new Set(['-f', '-family', '-n', '-netns', '-l', '-loops', '-rc', '-rcvbuf']);

const ipRule: Rule = (args) => {
  let i = 0;
  for (; i < args.length; i++) {
    const w = args[i]!;
    const v = w.value;
    if (v === null) deny(`ip: ${show(w)} is computed at run time`);
    if (!v.startsWith('-')) break;
    const opt = v.startsWith('--') ? v.slice(1) : v;
    if (IP_FLAGS.has(opt) || /^-c(olor)?=/.test(opt)) continue;
    if (IP_ARGS.has(opt)) {
      i++;
      continue;
    }
    if (opt === '-V' || opt === '-Version' || opt === '-help') return;
    if (/^-b/.test(opt) || opt === '-force') deny(`ip ${v} runs commands from a batch file`);
    deny(`ip: unknown option ${v}`);
  }
  const objWord = args[i];
  if (!objWord) deny('ip without an object');
  const obj = IP_OBJECTS[objWord.value!];
  if (objWord.value === 'help') return;
  if (!obj) deny(`ip ${objWord.value} is not a read-only object`);
  const cmdWord = args[i + 1];
  const rest = args.slice(i + 2);
  for (const w of args.slice(i + 1))
    if (w.value === null && w.multi) deny(`ip: ${show(w)} may expand to several words`);
  if (obj === 'monitor') return;
  if (obj === 'netns') {
    if (!cmdWord || ['list', 'list-id', 'identify', 'pids', 'show'].includes(cmdWord.value ?? '')) return;
    deny(`ip netns ${show(cmdWord)} changes namespaces or runs commands`);
  }
  if (!cmdWord) return;
  const cmd = requireLiteral(cmdWord, 'ip', 'command');
  if (IP_SHOW.has(cmd) || cmd === 'help') return;
  // Single letters that iproute2 resolves to a read for these objects (it tries show/get before
  // save/set there); elsewhere `s` may be set.
  if (IP_ABBREVIATED_READS[obj]?.includes(cmd)) return;
  if (cmd === 'get' && IP_GET.has(obj)) return;
  // `ip addr dev eth0` style selectors without a command word are shows, but ip matches
  // command words by prefix (`ip link s` is `set`), so only spelled-out reads are allowed.
  void rest;
  deny(`ip ${objWord.value} ${cmd} changes the network configuration (only show/list/get are allowed)`);
};

const ssRule = reader(
  {
    '-K': 'ss -K closes sockets',
    '--kill': 'ss --kill closes sockets',
    '-D': 'ss -D writes a raw dump to a file',
    '--diag': 'ss --diag writes a raw dump to a file',
  },
  'f:A:F:N:',
  ['family=', 'query=', 'socket=', 'filter=', 'net='],
);

const ETHTOOL_READ = new Set([
  '-i',
  '--driver',
  '-k',
  '--show-features',
  '--show-offload',
  '-g',
  '--show-ring',
  '-a',
  '--show-pause',
  '-c',
  '--show-coalesce',
  '-S',
  '--statistics',
  '-T',
  '--show-time-stamping',
  '-P',
  '--show-permaddr',
  '-l',
  '--show-channels',
  '-m',
  '--dump-module-eeprom',
  '--module-info',
  '-n',
  '-u',
  '--show-nfc',
  '--show-ntuple',
  '-x',
  '--show-rxfh-indir',
  '--show-rxfh',
  '-d',
  '--register-dump',
  '-e',
  '--eeprom-dump',
  '--show-eee',
  '--show-priv-flags',
  '--show-fec',
  '--show-tunnels',
  '--show-module',
  '--show-pse',
  '--show-mm',
  '--show-plca',
  '--json',
  '--debug',
  '-h',
  '--help',
  '--version',
  '-I',
  '--include-statistics',
  '--all-groups',
  '--groups',
]);

const ethtoolRule: Rule = (args) => {
  for (const a of args) {
    if (a.value === null) {
      if (mayStartWith(a)) deny(`ethtool: ${show(a)} could become an option`);
      continue;
    }
    if (a.value.startsWith('-') && !ETHTOOL_READ.has(a.value))
      deny(`ethtool ${a.value} changes the interface`);
  }
  const operands = args.filter((a) => a.value === null || !a.value.startsWith('-'));
  if (operands.length > 2) deny('ethtool with settings changes the interface');
};

const iptables: Rule = (args, ctx) => {
  const p = parseOptions(
    args,
    {
      short: 'LSnvxt:w::W:46',
      long: [
        'list',
        'list-rules',
        'numeric',
        'verbose',
        'exact',
        'line-numbers',
        'table=',
        'wait=?',
        'wait-interval=',
        'help',
        'version',
      ],
    },
    ctx.name,
  );
  if (has(p, '--help', '--version', '-h')) return;
  if (!has(p, '-L', '--list', '-S', '--list-rules'))
    deny(`${ctx.name} is only allowed to list rules (-L, -S)`);
  maxOperands(p, 1, ctx.name, 'takes at most a chain name when listing');
};

const iptablesSave = reader(
  {
    '-f': 'writes the rules to a file',
    '--file': 'writes the rules to a file',
    '-M': 'runs a modprobe program',
    '--modprobe': 'runs a modprobe program',
  },
  't:',
  ['table='],
);

const nftRule: Rule = (args) => {
  let verb: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const w = args[i]!;
    if (w.value === null) deny(`nft: ${show(w)} is computed at run time`);
    const v = w.value;
    if (/[;\n{}]/.test(v)) deny('nft: one argument holds several commands');
    if (verb === null) {
      if (
        /^-[anNsjtSye]+$/.test(v) ||
        [
          '--handle',
          '--numeric',
          '--stateless',
          '--json',
          '--terse',
          '--service',
          '--echo',
          '--guid',
          '--numeric-priority',
          '--numeric-protocol',
          '--numeric-time',
        ].includes(v)
      )
        continue;
      if (v === '-v' || v === '--version' || v === '-V' || v === '-h' || v === '--help') return;
      if (v.startsWith('-')) deny(`nft ${v} is not allowed`);
      verb = v;
    }
  }
  if (verb !== 'list' && verb !== 'describe')
    deny(`${verb ? `nft ${verb}` : 'nft without list'} changes the firewall (only nft list is allowed)`);
};

const ufwRule: Rule = (args) => {
  const words = args.map((a) => requireLiteral(a, 'ufw', 'argument'));
  const [verb, ...rest] = words;
  if (verb === '--version' || verb === 'version' || verb === '--help' || verb === 'help') return;
  if (verb === 'status' && rest.every((r) => r === 'verbose' || r === 'numbered')) return;
  if (verb === 'show' && rest.length <= 1) return;
  if (verb === 'app' && (rest[0] === 'list' || rest[0] === 'info')) return;
  deny(`ufw ${words.join(' ')} changes the firewall (only status, show, app list/info are allowed)`);
};

const firewallCmd: Rule = (args) => {
  for (const a of args) {
    const v = requireLiteral(a, 'firewall-cmd', 'argument');
    if (
      /^--(state|version|help|permanent|check-config|list-[a-z-]+|get-[a-z-]+|query-[a-z-]+|info-[a-z-]+)$/.test(
        v,
      )
    )
      continue;
    if (/^--(zone|policy|ipset|service|helper|icmptype)=[^=]*$/.test(v)) continue;
    if (/^--(query|info|list|get)-[a-z-]+=.*$/.test(v)) continue;
    deny(`firewall-cmd ${v} changes the firewall`);
  }
};

const nmcliRule: Rule = (args) => {
  let i = 0;
  for (; i < args.length; i++) {
    const v = requireLiteral(args[i]!, 'nmcli', 'argument');
    if (!v.startsWith('-')) break;
    if (/^-(t|terse|p|pretty|s|show-secrets|v|version|h|help|o|overview)$/.test(v.replace(/^--/, '-')))
      continue;
    if (/^-(f|fields|m|mode|c|colors|e|escape|g|get-values|w|wait)$/.test(v.replace(/^--/, '-'))) {
      i++;
      continue;
    }
    deny(`nmcli ${v} is not allowed`);
  }
  const obj = args[i] ? requireLiteral(args[i]!, 'nmcli', 'object') : undefined;
  const cmd = args[i + 1] ? requireLiteral(args[i + 1]!, 'nmcli', 'command') : undefined;
  const rest = args.slice(i + 2).map((a) => requireLiteral(a, 'nmcli', 'argument'));
  const is = (word: string | undefined, full: string) => !!word && full.startsWith(word);
  if (obj === undefined) return;
  if (is(obj, 'general')) {
    if (cmd === undefined || ['status', 'permissions'].some((c) => is(cmd, c))) return;
    if ((is(cmd, 'hostname') || is(cmd, 'logging')) && !rest.length) return;
  } else if (is(obj, 'networking') || is(obj, 'radio')) {
    if (cmd === undefined || (is(obj, 'networking') && is(cmd, 'connectivity'))) return;
    if (is(obj, 'radio') && ['all', 'wifi', 'wwan'].some((c) => is(cmd, c)) && !rest.length) return;
  } else if (is(obj, 'connection') || is(obj, 'device')) {
    if (cmd === undefined || is(cmd, 'show') || (is(obj, 'device') && (is(cmd, 'status') || cmd === 'lldp')))
      return;
  } else if (is(obj, 'monitor')) return;
  deny(`nmcli ${[obj, cmd].filter(Boolean).join(' ')} changes the network configuration`);
};

const IPROUTE_FLAGS =
  /^-(s|stats|statistics|d|details|r|raw|p|pretty|i|iec|g|graph|j|json|t|timestamp|ts|tshort|c|color|h|human|4|6|o|oneline|V|Version)$/;

/** tc and bridge: `tool [options] object [show|list|ls]`; batch files and unknown options are denied. */
const iprouteShowOnly =
  (who: string): Rule =>
  (args) => {
    const words = args.map((a) => requireLiteral(a, who, 'argument'));
    let i = 0;
    for (; i < words.length; i++) {
      const w = words[i]!.replace(/^--/, '-');
      if (!w.startsWith('-')) break;
      if (IPROUTE_FLAGS.test(w) || /^-c(olor)?=/.test(w)) continue;
      if (w === '-n' || w === '-netns') {
        i++;
        continue;
      }
      deny(`${who} ${words[i]} is not allowed`);
    }
    const cmd = words[i + 1];
    if (i >= words.length || cmd === undefined || cmd === 'show' || cmd === 'ls' || cmd === 'list') return;
    deny(`${who} ${words[i]} ${cmd} changes the network configuration (only show is allowed)`);
  };

const ifconfigRule: Rule = (args) => {
  const operands = args.filter((a) => a.value === null || !a.value.startsWith('-'));
  for (const a of args)
    if (a.value !== null && a.value.startsWith('-') && !['-a', '-s', '-v', '--help'].includes(a.value))
      deny(`ifconfig ${a.value} is not allowed`);
  if (operands.length > 1 || operands.some((o) => o.multi))
    deny('ifconfig with settings changes an interface');
};

const arpRule = reader(
  {
    '-s': 'arp -s changes the ARP table',
    '--set': 'arp --set changes the ARP table',
    '-d': 'arp -d changes the ARP table',
    '--delete': 'arp --delete changes the ARP table',
    '-f': 'arp -f loads entries into the ARP table',
    '--file': 'arp --file loads entries into the ARP table',
  },
  'H:i:A:p:',
  ['hw-type=', 'device=', 'protocol='],
);

const tcpdumpOptions = reader(
  {
    '-w': 'tcpdump -w writes a capture file',
    '-z': 'tcpdump -z runs a command on capture files',
    '-C': 'tcpdump -C rotates capture files',
    '-G': 'tcpdump -G rotates capture files',
    '-W': 'tcpdump -W rotates capture files',
    '--print': 'tcpdump --print is only used with -w',
  },
  'c:i:s:r:E:F:j:m:M:T:y:Z:B:Q:V:',
  [
    'interface=',
    'snapshot-length=',
    'buffer-size=',
    'time-stamp-type=',
    'time-stamp-precision=',
    'direction=',
    'count=',
  ],
);

const tcpdump: Rule = (args, ctx) => {
  tcpdumpOptions(args, ctx);
  const p = parseOptions(args, { permissive: true, short: 'c:i:s:r:E:F:j:m:M:T:y:Z:B:Q:V:' }, 'tcpdump');
  if (!has(p, '-p', '--no-promiscuous-mode', '-r', '-D', '--list-interfaces', '-h', '--help', '--version'))
    deny('tcpdump puts the interface into promiscuous mode (add -p, or read a file with -r)');
};

// ---------------------------------------------------------------------------------------------
// Storage

const fdisk: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      permissive: true,
      short: 'b:o:u::x::',
      long: ['sector-size=', 'output=', 'units=?', 'list', 'list-details', 'help', 'version'],
    },
    'fdisk',
  );
  if (!has(p, '-l', '--list', '-x', '--list-details', '--help', '-h', '-V', '--version'))
    deny('fdisk without -l edits partition tables');
};

const sfdisk: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'ldJsVFghvqo:',
      long: [
        'list',
        'dump',
        'json',
        'show-size',
        'verify',
        'list-free',
        'show-geometry',
        'show-pt-geometry',
        'help',
        'version',
        'quiet',
        'output=',
        'sector-size=',
        'label=',
        'color=?',
      ],
    },
    'sfdisk',
  );
  const reads = [
    '-l',
    '--list',
    '-d',
    '--dump',
    '-J',
    '--json',
    '-s',
    '--show-size',
    '-V',
    '--verify',
    '-F',
    '--list-free',
    '-g',
    '--show-geometry',
    '--show-pt-geometry',
    '-h',
    '--help',
    '-v',
    '--version',
  ];
  if (!p.options.some((o) => reads.includes(o.name)))
    deny('sfdisk without a listing option edits partition tables');
};

const parted: Rule = (args) => {
  const words = args.map((a) => requireLiteral(a, 'parted', 'argument'));
  const opts = words.filter((w) => w.startsWith('-'));
  const rest = words.filter((w) => !w.startsWith('-'));
  for (const o of opts)
    if (
      ![
        '-l',
        '--list',
        '-s',
        '--script',
        '-m',
        '--machine',
        '-h',
        '--help',
        '-v',
        '--version',
        '-f',
        '--fix',
      ].includes(o)
    )
      deny(`parted ${o} is not allowed`);
  if (opts.includes('-f') || opts.includes('--fix')) deny('parted --fix changes partition tables');
  if (opts.some((o) => ['-l', '--list', '-h', '--help', '-v', '--version'].includes(o)) && !rest.length)
    return;
  const [, ...cmds] = rest;
  const joined = cmds.join(' ');
  if (/^(print|p)( (all|free|devices|list))?$/.test(joined) || /^unit \S+ (print|p)( free)?$/.test(joined))
    return;
  deny('parted is only allowed to print partition tables (parted -l or parted DEVICE print)');
};

const blkid = reader(
  {
    '-g': 'blkid -g garbage-collects the cache',
    '--garbage-collect': 'blkid --garbage-collect changes the cache',
  },
  'c:o:s:t:L:U:n:u:O:S:p',
  [
    'cache-file=',
    'output=',
    'match-tag=',
    'match-token=',
    'label=',
    'uuid=',
    'match-types=',
    'usages=',
    'offset=',
    'size=',
  ],
);

const blkidRule: Rule = (args, ctx) => {
  blkid(args, ctx);
  for (let i = 0; i < args.length; i++) {
    const v = args[i]!.value;
    if (v === '-c' || v === '--cache-file') {
      if (args[i + 1]?.value !== '/dev/null') deny('blkid -c other than /dev/null may write a cache file');
    } else if (v?.startsWith('-c') && v !== '-c' && v.slice(2) !== '/dev/null')
      deny('blkid -c other than /dev/null may write a cache file');
  }
};

const LVM_DENY = {
  '--config': 'LVM --config can change settings (and name programs to run)',
  '--commandprofile': 'LVM --commandprofile loads another configuration profile',
  '--profile': 'LVM --profile loads another configuration profile',
  '--metadataprofile': 'LVM --metadataprofile loads another configuration profile',
  '--driverloaded': 'not needed for reading',
};
const lvmReport = reader(LVM_DENY);

const blockdev: Rule = (args) => {
  for (const a of args) {
    const v = a.value;
    if (v === null) {
      if (mayStartWith(a)) deny(`blockdev: ${show(a)} could become an option`);
      continue;
    }
    if (!v.startsWith('-')) continue;
    if (/^--get[a-z0-9]*$/.test(v) || ['--report', '-v', '-q', '--help', '-V', '--version'].includes(v))
      continue;
    deny(`blockdev ${v} changes a block device`);
  }
};

const mdadm = opts(
  {
    short: 'DEQsbvYVhc:',
    long: [
      'detail',
      'examine',
      'query',
      'detail-platform',
      'scan',
      'brief',
      'verbose',
      'export',
      'version',
      'help',
      'config=',
      'test',
    ],
  },
  (p) => {
    if (
      !has(
        p,
        '-D',
        '--detail',
        '-E',
        '--examine',
        '-Q',
        '--query',
        '--detail-platform',
        '-V',
        '--version',
        '-h',
        '--help',
      )
    )
      deny('mdadm is only allowed to inspect arrays (--detail, --examine, --query)');
    // mdadm.conf names a PROGRAM to run on events.
    for (const o of p.options)
      if (o.name === '-c' || o.name === '--config')
        configFile(o.value ?? undefined, 'mdadm', o.name, ['/etc/mdadm', '/etc/mdadm.conf']);
  },
);

const smartctl = opts({
  short: 'axiHAcl:jd:n:q:T:f:r:g:VhP:',
  long: [
    'all',
    'xall',
    'info',
    'health',
    'attributes',
    'capabilities',
    'log=',
    'json=?',
    'device=',
    'scan',
    'scan-open',
    'nocheck=',
    'quietmode=',
    'tolerance=',
    'format=',
    'report=',
    'get=',
    'identify=?',
    'version',
    'help',
    'presets=',
  ],
  deny: {
    '-s': 'smartctl -s changes drive settings',
    '--smart': 'smartctl --smart changes drive settings',
    '-o': 'smartctl -o changes drive settings',
    '--offlineauto': 'smartctl --offlineauto changes drive settings',
    '-S': 'smartctl -S changes drive settings',
    '--saveauto': 'smartctl --saveauto changes drive settings',
    '-t': 'smartctl -t starts a drive self-test',
    '--test': 'smartctl --test starts a drive self-test',
    '-C': 'smartctl -C runs a captive self-test',
    '-X': 'smartctl -X aborts a self-test',
    '--abort': 'smartctl --abort aborts a self-test',
    '--set': 'smartctl --set changes drive settings',
  },
});

const zpool = verbTool({
  options: {
    permissive: true,
    short: 'o:T:',
    long: ['help', 'version'],
    deny: { '-c': 'zpool -c runs scripts or clears the event log' },
  },
  verbs: { status: true, list: true, iostat: true, history: true, get: true, version: true, events: true },
  denied: 'changes storage pools',
});

const zfs = verbTool({
  options: { permissive: true, short: 'd:o:s:S:t:', long: ['help', 'version'] },
  verbs: {
    list: true,
    get: true,
    version: true,
    holds: true,
    userspace: true,
    groupspace: true,
    projectspace: true,
    diff: true,
  },
  denied: 'changes datasets',
});

const tune2fs: Rule = (args) => {
  const opts = args.filter((a) => a.value === null || a.value.startsWith('-'));
  if (!opts.length || opts.some((a) => a.value !== '-l'))
    deny('tune2fs is only allowed to list (tune2fs -l)');
  if (args.length - opts.length > 1) deny('tune2fs -l takes one device');
};

/** Image formats qemu-img may open (never a protocol driver such as nbd, ssh, http or vvfat). */
const QEMU_FORMATS = /^(raw|qcow2|qcow|qed|vmdk|vdi|vhdx|vpc|parallels|dmg|cloop|bochs)$/;

/**
 * qemu-img opens what a file name names: `nbd://`, `ssh://`, `http://`, `json:{...}` (any driver
 * and its options), `--image-opts` and `--object` reach other hosts, read other files or create
 * objects. Only plain paths and image formats.
 */
function qemuImgArgs(args: Word[]): void {
  for (let i = 1; i < args.length; i++) {
    const w = args[i]!;
    const v = requireLiteral(w, 'qemu-img', 'argument');
    if (/^--(image-opts|object|target-image-opts)/.test(v))
      deny(`qemu-img ${v} opens drivers or creates objects the file name does not show`);
    if (/^-[fFO]$/.test(v) || /^--(format|backing-format)$/.test(v)) {
      const fmt = requireLiteral(args[++i] ?? w, 'qemu-img', 'format');
      if (!QEMU_FORMATS.test(fmt)) deny(`qemu-img ${v} ${fmt}: only image formats (raw, qcow2, vmdk...)`);
      continue;
    }
    if (v === '-o' || v.startsWith('-o')) {
      const o = v === '-o' ? requireLiteral(args[++i] ?? w, 'qemu-img', 'options') : v.slice(2);
      if (/file|:/.test(o)) deny(`qemu-img -o ${o}: options that name files or protocols`);
      continue;
    }
    if (/^-[fFO]./.test(v) && !QEMU_FORMATS.test(v.slice(2)))
      deny(`qemu-img ${v}: only image formats (raw, qcow2, vmdk...)`);
    if (!v.startsWith('-') && /^[^/]*:/.test(v))
      deny(`qemu-img: ${v} names a protocol (nbd:, ssh:, http:, json:...), not a file; give a path`);
  }
}

const qemuImg: Rule = (args) => {
  const verb = literalVerb(args[0], 'qemu-img');
  if (verb === '--version' || verb === '--help' || verb === '-V' || verb === '-h') return;
  qemuImgArgs(args);
  if (verb === 'info' || verb === 'measure' || verb === 'map' || verb === 'compare') return;
  if (verb === 'check') {
    if (args.some((a) => (a.value === null ? mayStartWith(a) : /^(-r|--repair)/.test(a.value))))
      deny('qemu-img check -r repairs images');
    return;
  }
  if (
    verb === 'snapshot' &&
    args.slice(1).some((a) => a.value === '-l') &&
    !args.slice(1).some((a) => /^-[acd]$/.test(a.value ?? ''))
  )
    return;
  deny(`qemu-img ${verb ?? ''} changes images (only info, check, measure, map, compare are allowed)`);
};

// ---------------------------------------------------------------------------------------------
// Time, users, hosts

const dateRule: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'd:f:r:uRI::',
      long: [
        'date=',
        'file=',
        'reference=',
        'utc',
        'universal',
        'rfc-email',
        'rfc-2822',
        'rfc-822',
        'rfc-3339=',
        'iso-8601=?',
        'resolution',
        'debug',
        'help',
        'version',
      ],
      deny: { '-s': 'date -s sets the clock', '--set': 'date --set sets the clock' },
    },
    'date',
  );
  for (const w of p.operands) {
    if (w.value === null ? !w.prefix.startsWith('+') : !w.value.startsWith('+'))
      deny(`date ${show(w)}: an operand other than +FORMAT sets the clock`);
  }
};

const hwclock: Rule = (args) => {
  for (const a of args) {
    const v = requireLiteral(a, 'hwclock', 'argument');
    if (
      ![
        '-r',
        '--show',
        '--get',
        '--verbose',
        '-v',
        '--utc',
        '-u',
        '--localtime',
        '-l',
        '--debug',
        '-V',
        '--version',
        '-h',
        '--help',
        '--test',
      ].includes(v)
    )
      deny(`hwclock ${v} changes the clock`);
  }
};

const hostnameRule: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'aAdfiIsyvV',
      long: [
        'alias',
        'all-fqdns',
        'domain',
        'fqdn',
        'long',
        'ip-address',
        'all-ip-addresses',
        'short',
        'yp',
        'nis',
        'verbose',
        'version',
        'help',
      ],
      deny: {
        '-F': 'hostname -F sets the host name',
        '--file': 'hostname --file sets the host name',
        '-b': 'hostname -b sets the host name',
        '--boot': 'hostname --boot sets the host name',
      },
    },
    'hostname',
  );
  noOperands(p, 'hostname', 'with a name sets the host name');
};

const chronyc: Rule = (args) => {
  const words = args.map((a) => requireLiteral(a, 'chronyc', 'argument'));
  const cmds = words.filter((w) => !w.startsWith('-'));
  for (const o of words.filter((w) => w.startsWith('-')))
    if (!/^-[nNc46ma]+$/.test(o) && o !== '-h' && o !== '--help' && o !== '-v' && o !== '--version')
      deny(`chronyc ${o} is not allowed`);
  if (!cmds.length) {
    if (words.some((w) => ['-h', '--help', '-v', '--version'].includes(w))) return;
    deny('chronyc without a command is interactive');
  }
  const read = [
    'tracking',
    'sources',
    'sourcestats',
    'activity',
    'ntpdata',
    'serverstats',
    'clients',
    'rtcdata',
    'smoothing',
    'selectdata',
    'authdata',
    'manual',
    'waitsync',
  ];
  const check = (cmd: string, rest: string[]) => {
    if (cmd === 'manual' && !(rest.length === 1 && rest[0] === 'list'))
      deny('chronyc manual changes the clock');
    if (!read.includes(cmd)) deny(`chronyc ${cmd} changes time synchronisation`);
  };
  // With -m every argument is a command of its own.
  if (words.some((w) => /^-[nNc46a]*m/.test(w)))
    for (const c of cmds) {
      const [cmd = '', ...rest] = c.trim().split(/\s+/);
      check(cmd, rest);
    }
  else check(cmds[0]!, cmds.slice(1));
};

/** ntpq -c with the commands that read variables and peers (not :config, writevar, keyid...). */
const NTPQ_READ =
  /^(rv|readvar|cv|clockvar|pe|peers|lpeers|opeers|as|associations|lassociations|sysinfo|sysstats|iostats|kerninfo|monstats|mrulist|ifstats|reslist|timerstats|version|rl|readlist)(\s+[\w.=,-]*)*$/;
const ntpq: Rule = (args) => {
  for (let i = 0; i < args.length; i++) {
    const v = requireLiteral(args[i]!, 'ntpq', 'argument');
    if (!v.startsWith('-')) continue;
    const c = /^-[pn46w]*c(.*)$/.exec(v);
    if (c) {
      const cmd = c[1] || (args[++i] ? requireLiteral(args[i]!, 'ntpq', 'command') : '');
      if (!NTPQ_READ.test(cmd.trim()))
        deny(`ntpq -c ${cmd} is not a reading command (rv, peers, sysinfo...)`);
      continue;
    }
    if (!/^-[pn46w]+$/.test(v)) deny(`ntpq ${v} is not allowed (only -p, -n and -c with reading commands)`);
  }
};

const crontab: Rule = (args) => {
  const p = parseOptions(args, { short: 'lu:', deny: {} }, 'crontab');
  if (!has(p, '-l')) deny('crontab is only allowed to list (crontab -l)');
  noOperands(p, 'crontab', 'with a file installs a crontab');
};

const chage = opts({ short: 'li:h', long: ['list', 'iso8601', 'help'] }, (p) => {
  if (!has(p, '-l', '--list', '-h', '--help')) deny('chage without -l changes password aging');
});

const passwd = opts({ short: 'Sa', long: ['status', 'all'] }, (p) => {
  if (!has(p, '-S', '--status')) deny('passwd changes passwords');
});

const lastlog = reader(
  {
    '-C': 'lastlog -C clears records',
    '--clear': 'lastlog --clear clears records',
    '-S': 'lastlog -S sets records',
    '--set': 'lastlog --set sets records',
  },
  'b:t:u:R:',
  ['before=', 'time=', 'user=', 'root='],
);

const faillog = reader(
  {
    '-r': 'faillog -r resets counters',
    '--reset': 'faillog --reset resets counters',
    '-l': 'faillog -l sets lockout times',
    '--lock-secs': 'faillog --lock-secs sets lockout times',
    '-m': 'faillog -m sets the maximum',
    '--maximum': 'faillog --maximum sets the maximum',
  },
  't:u:R:',
  ['time=', 'user=', 'root='],
);

const topRule: Rule = (args) => {
  const p = parseOptions(args, { permissive: true, short: 'n:d:p:u:U:o:O:w::E:e:', long: [] }, 'top');
  if (!has(p, '-b')) deny('top is interactive and can kill or renice processes (use top -b -n 1)');
};

const slabtop = opts({ permissive: true, short: 'd:s:' }, (p) => {
  if (!has(p, '-o', '--once')) deny('slabtop is interactive (use slabtop -o)');
});

const ionice: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'p:P:u:c:n:tVh',
      long: ['pid=', 'pgid=', 'uid=', 'class=', 'classdata=', 'ignore', 'help', 'version'],
      stopAtOperand: true,
    },
    'ionice',
  );
  if (has(p, '-c', '--class', '-n', '--classdata') || p.rest < args.length)
    deny('ionice changes I/O priorities or runs a command');
};

const taskset: Rule = (args) => {
  const p = parseOptions(
    args,
    { short: 'pcaVh', long: ['pid', 'cpu-list', 'all-tasks', 'help', 'version'], stopAtOperand: false },
    'taskset',
  );
  if (!has(p, '-p', '--pid') || p.operands.length !== 1)
    deny('taskset changes CPU affinity or runs a command');
};

const fuser = reader(
  {
    '-k': 'fuser -k kills processes',
    '--kill': 'fuser --kill kills processes',
    '-i': 'fuser -i prompts',
    '--interactive': 'fuser -i prompts',
  },
  'n:',
  ['namespace='],
);

const sensors = reader(
  { '-s': 'sensors -s writes chip settings', '--set': 'sensors --set writes chip settings' },
  'c:',
  ['config-file='],
);

const hdparm: Rule = (args) => {
  for (const a of args) {
    const v = requireLiteral(a, 'hdparm', 'argument');
    if (v.startsWith('-') && !/^-[IigtTC]+$/.test(v)) deny(`hdparm ${v} can change drive settings`);
  }
};

const modprobe = opts(
  {
    short: 'nDcRvqaS:V',
    long: [
      'dry-run',
      'show',
      'show-depends',
      'showconfig',
      'show-config',
      'resolve-alias',
      'verbose',
      'quiet',
      'all',
      'set-version=',
      'version',
      'help',
      'show-modversions',
      'dump-modversions',
      'show-exports',
      'first-time',
    ],
  },
  (p) => {
    if (
      !has(
        p,
        '-n',
        '--dry-run',
        '--show',
        '-D',
        '--show-depends',
        '-c',
        '--showconfig',
        '--show-config',
        '-R',
        '--resolve-alias',
        '--show-modversions',
        '--dump-modversions',
        '--show-exports',
        '-V',
        '--version',
        '-h',
        '--help',
      )
    )
      deny('modprobe loads or unloads kernel modules (use modprobe -n or -D)');
  },
);

const auditctl = opts({ short: 'lsvh', long: ['help', 'version'] }, (p) => {
  if (!p.options.length) deny('auditctl without -l or -s changes audit rules');
});

const ausearch = reader({ '--checkpoint': 'ausearch --checkpoint writes a file' });

const ldconfig = opts({ short: 'pvNXVC:r:', long: ['print-cache', 'verbose', 'version', 'help'] }, (p) => {
  if (!has(p, '-p', '--print-cache', '--version', '-V', '--help'))
    deny('ldconfig rebuilds the linker cache (use ldconfig -p)');
});

const alternatives: Rule = (args, ctx) => {
  const p = parseOptions(
    args,
    {
      long: [
        'display',
        'query',
        'list',
        'get-selections',
        'altdir=',
        'admindir=',
        'verbose',
        'quiet',
        'help',
        'version',
        'config',
      ],
      abbreviations: false,
    },
    ctx.name,
  );
  if (!has(p, '--display', '--query', '--list', '--get-selections', '--help', '--version'))
    deny(
      `${ctx.name} changes the selected alternatives (only --display, --query, --list, --get-selections are allowed)`,
    );
};

const logrotate = opts(
  { short: 'dvs:l:', long: ['debug', 'verbose', 'state=', 'log=', 'usage', 'help', 'version'] },
  (p) => {
    if (!has(p, '-d', '--debug', '--usage', '--help', '--version'))
      deny('logrotate rotates logs (use logrotate -d to test)');
    if (has(p, '-s', '--state', '-l', '--log')) deny('logrotate -s/-l writes files');
    // A logrotate configuration holds scripts (postrotate, firstaction...): only the system's own.
    for (const w of p.operands)
      configFile(w, 'logrotate', 'configuration', ['/etc/logrotate.conf', '/etc/logrotate.d']);
  },
);

const visudo = opts(
  { short: 'cf:qsh', long: ['check', 'file=', 'quiet', 'strict', 'help', 'version'] },
  (p) => {
    if (!has(p, '-c', '--check', '--help', '--version', '-h'))
      deny('visudo edits the sudoers file (use visudo -c)');
    for (const o of p.options)
      if (o.name === '-f' || o.name === '--file')
        configFile(o.value ?? undefined, 'visudo', o.name, ['/etc/sudoers', '/etc/sudoers.d']);
  },
);

/** `tput CAPNAME...`: init and reset run the terminal's init program (iprog) and send its files. */
const tput = opts({ short: 'T:xV', long: [] }, (p) => {
  for (const w of p.operands) {
    const v = requireLiteral(w, 'tput', 'capability');
    if (/^(init|reset|-S)$/.test(v)) deny(`tput ${v} runs the terminal's initialization program`);
  }
});

/** named-checkconf [-chjlvz] [-p [-x]] [file]: BIND loads plugins (shared libraries) named in the file. */
const namedCheckconf = opts(
  { short: 'chjlvzpx', deny: { '-t': 'named-checkconf -t chroots to a directory' } },
  (p) => {
    for (const w of p.operands)
      configFile(w, 'named-checkconf', 'configuration', ['/etc/bind', '/etc/named', '/etc/named.conf']);
  },
);

/** unbound-checkconf [-fhq] [-o option] [file]: modules (python, dynlib) named in the file are loaded. */
const unboundCheckconf = opts({ short: 'fhqo:' }, (p) => {
  for (const w of p.operands) configFile(w, 'unbound-checkconf', 'configuration', ['/etc/unbound']);
});

/** doveconf: the configuration may import the environment and include other files: Dovecot's own only. */
const doveconf = opts({ short: 'aCdhinNPsSUxc:f:m:' }, (p) => {
  for (const o of p.options)
    if (o.name === '-c') configFile(o.value ?? undefined, 'doveconf', '-c', ['/etc/dovecot']);
});

const domainname = opts(
  { permissive: true, deny: { '-F': 'sets the name', '--file': 'sets the name', '-b': 'sets the name' } },
  (p, ctx) => noOperands(p, ctx.name, 'with a name sets it'),
);

const exportfs: Rule = (args) => {
  for (const a of args) {
    const v = requireLiteral(a, 'exportfs', 'argument');
    if (!['-v', '-s'].includes(v)) deny('exportfs changes NFS exports (only exportfs, -v, -s are allowed)');
  }
};

const mountRule: Rule = (args) => {
  const p = parseOptions(
    args,
    { short: 'lvt:h', long: ['show-labels', 'verbose', 'types=', 'help', 'version'] },
    'mount',
  );
  noOperands(p, 'mount', 'with a device or directory mounts file systems');
};

const routeRule: Rule = (args) => {
  const p = parseOptions(
    args,
    { short: 'nevCFA:', long: ['numeric', 'extend', 'verbose', 'cache', 'fib', 'help', 'version'] },
    'route',
  );
  noOperands(p, 'route', 'with a command changes the routing table');
};

const brctl: Rule = (args) => {
  const verb = literalVerb(args[0], 'brctl');
  if (verb === null || verb === 'show' || verb === 'showmacs' || verb === 'showstp') return;
  deny(`brctl ${verb} changes bridges`);
};

const conntrack: Rule = (args) => {
  const first = args[0]?.value;
  const ok = [
    '-L',
    '--dump',
    '-S',
    '--stats',
    '-C',
    '--count',
    '-G',
    '--get',
    '-E',
    '--event',
    '-V',
    '--version',
    '-h',
    '--help',
  ];
  if (!first || !ok.includes(first)) deny('conntrack is only allowed to list (-L, -S, -C, -G, -E)');
  for (const a of args.slice(1)) {
    const v = a.value;
    if (v !== null && /^-[DFIURA]$|^--(delete|flush|create|update|load-file|add)$/.test(v))
      deny(`conntrack ${v} changes the table`);
  }
};

/** ipset list/save/test/version: the command is the first word that is not an option; -file writes. */
const IPSET_FLAGS = [
  'n',
  'name',
  't',
  'terse',
  's',
  'sorted',
  'r',
  'resolve',
  'q',
  'quiet',
  'e',
  'exist',
  'h',
  'help',
  'v',
  'version',
];
const ipset: Rule = (args) => {
  const words = args.map((a) => requireLiteral(a, 'ipset', 'argument'));
  let verb: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const name = w.replace(/^--?/, '');
    if (!w.startsWith('-')) verb ??= w;
    else if (name === 'L' || name === 'list') verb ??= 'list';
    else if (name === 'o' || name === 'output') i++;
    else if (!IPSET_FLAGS.includes(name)) deny(`ipset ${w} is not allowed (-file writes a file)`);
  }
  if (verb === 'list' || verb === 'save' || verb === 'version' || verb === 'help' || verb === 'test') return;
  deny(`ipset ${verb ?? ''} changes IP sets`.trimEnd());
};

const auditSimple =
  (who: string, verbs: string[], reason: string): Rule =>
  (args) => {
    const verb = literalVerb(
      args.find((a) => a.value === null || !a.value.startsWith('-')),
      who,
    );
    if (verb === null || verbs.includes(verb)) return;
    deny(`${who} ${verb} ${reason}`);
  };

// ---------------------------------------------------------------------------------------------
// Swap, resource limits, file systems and power: the reporting side of tools that also change

const swapon = opts(
  { short: 'shV', long: ['summary', 'show=?', 'noheadings', 'raw', 'bytes', 'help', 'version'] },
  (p) => {
    noOperands(p, 'swapon', 'with a device enables swap');
    if (p.options.length && !has(p, '-s', '--summary', '--show', '-h', '--help', '-V', '--version'))
      deny('swapon enables swap (only swapon --show or swapon -s)');
  },
);

const systemdResolve = opts({
  short: 'h46i:p:t:c:',
  long: [
    'status',
    'statistics',
    'service',
    'openpgp',
    'tlsa=?',
    'no-pager',
    'version',
    'help',
    ...RESOLVE_QUERY,
  ],
  deny: {
    '--flush-caches': 'systemd-resolve --flush-caches changes the resolver',
    '--reset-statistics': 'systemd-resolve --reset-statistics changes the resolver',
    '--reset-server-features': 'systemd-resolve --reset-server-features changes the resolver',
    '--revert': 'systemd-resolve --revert changes the resolver',
    '--set-dns': 'systemd-resolve --set-dns changes the resolver',
    '--set-domain': 'systemd-resolve --set-domain changes the resolver',
  },
});

/** prlimit prints limits unless a resource option carries a value or it runs a command. */
const PRLIMIT_RESOURCES = [
  'core',
  'data',
  'fsize',
  'memlock',
  'rss',
  'nofile',
  'stack',
  'cpu',
  'nproc',
  'as',
  'locks',
  'sigpending',
  'msgqueue',
  'nice',
  'rtprio',
  'rttime',
];
const prlimit = opts(
  {
    short: 'p:o:hVc::d::e::f::i::l::m::n::q::r::s::t::u::v::x::y::',
    long: [
      'pid=',
      'output=',
      'noheadings',
      'raw',
      'verbose',
      'help',
      'version',
      ...PRLIMIT_RESOURCES.map((r) => `${r}=?`),
    ],
  },
  (p) => {
    noOperands(p, 'prlimit', 'runs a command');
    const set = p.options.find(
      (o) => o.value !== null && !['-p', '--pid', '-o', '--output'].includes(o.name),
    );
    if (set)
      deny(
        `prlimit ${set.name} ${show(set.value!)} changes a limit (give resources without values to print them)`,
      );
  },
);

/** btrfs accepts unique prefixes of its groups and commands (`btrfs fi df`). */
const BTRFS_READ: Record<string, Record<string, true | ((args: Word[]) => void)>> = {
  filesystem: { show: true, df: true, usage: true, du: true },
  subvolume: { list: true, show: true, 'get-default': true },
  device: {
    stats: (a) => {
      if (
        a.some(
          (w) =>
            w.value === null || w.value === '-z' || w.value.startsWith('--r') || /^-[a-z]*z/.test(w.value),
        )
      )
        deny('btrfs device stats -z resets the counters');
    },
    usage: true,
  },
  scrub: { status: true },
  balance: { status: true },
  replace: { status: true },
  qgroup: { show: true },
  property: { get: true, list: true },
  'inspect-internal': {
    'dump-super': true,
    'dump-tree': true,
    'inode-resolve': true,
    'logical-resolve': true,
    'subvolid-resolve': true,
    rootid: true,
    'min-dev-size': true,
  },
};
const btrfs: Rule = (args) => {
  const first = args[0]?.value;
  if (args.length === 1 && (first === 'version' || first === '--version' || first === '--help')) return;
  const groupTyped = literalVerb(args[0], 'btrfs');
  if (groupTyped === null || groupTyped.startsWith('-'))
    deny('btrfs: give a command group (filesystem, subvolume, device...)');
  const group = prefixVerb(groupTyped, Object.keys(BTRFS_READ));
  if (!group) deny(`btrfs ${groupTyped} changes file systems`);
  const cmds = BTRFS_READ[group];
  const cmdTyped = literalVerb(args[1], 'btrfs') ?? '';
  const cmd = prefixVerb(cmdTyped, Object.keys(cmds!));
  if (!cmd) deny(`btrfs ${group} ${cmdTyped} changes file systems (only ${Object.keys(cmds!).join(', ')})`);
  const check = cmds![cmd];
  if (check !== true) check!(args.slice(2));
};

const cpupower: Rule = (args) => {
  const p = parseOptions(
    args,
    { short: 'c:dhv', long: ['cpu=', 'debug', 'help', 'version'], stopAtOperand: true },
    'cpupower',
  );
  const verb = literalVerb(args[p.rest], 'cpupower');
  if (verb === 'monitor') {
    // `cpupower monitor COMMAND` runs the command to measure it.
    const m = parseOptions(
      args.slice(p.rest + 1),
      { short: 'lm:i:cv', stopAtOperand: true },
      'cpupower monitor',
    );
    if (m.rest < args.length - p.rest - 1) deny('cpupower monitor with a command runs it');
    return;
  }
  if (
    verb === null
      ? p.options.length > 0
      : ['frequency-info', 'idle-info', 'info', 'monitor', 'help'].includes(verb)
  )
    return;
  deny(
    `cpupower ${verb ?? ''} changes the CPU (only frequency-info, idle-info, info, monitor)`.replace(
      '  ',
      ' ',
    ),
  );
};

const upower = opts({
  short: 'edi:mvhw',
  long: ['enumerate', 'dump', 'show-info=', 'monitor', 'monitor-detail', 'version', 'help', 'wakeups'],
});

// ---------------------------------------------------------------------------------------------
// Storage and device status: the listing side of ipvsadm, multipath, iscsiadm, nvidia-smi, e2fsck

const ipvsadm = opts(
  {
    short: 'LlnSc',
    long: [
      'list',
      'numeric',
      'save',
      'connection',
      'stats',
      'rate',
      'thresholds',
      'persistent-conn',
      'exact',
      'sort',
      'timeout',
      'daemon',
      'help',
      'version',
    ],
  },
  (p) => {
    noOperands(p, 'ipvsadm', 'with arguments changes the virtual server table');
    if (
      !has(
        p,
        '-L',
        '-l',
        '--list',
        '-S',
        '--save',
        '-c',
        '--connection',
        '--timeout',
        '--daemon',
        '--help',
        '--version',
      )
    )
      deny('ipvsadm changes the virtual server table (only ipvsadm -L)');
  },
);

const multipath = opts({ short: 'lv:' }, (p) => {
  noOperands(p, 'multipath', 'with a device creates or changes maps (only multipath -l / -ll)');
  if (!has(p, '-l')) deny('multipath changes maps (only multipath -l / -ll)');
});

const iscsiadm = opts({ short: 'm:P:r:', long: ['mode=', 'print=', 'sid='] }, (p) => {
  noOperands(p, 'iscsiadm', 'takes no operands');
  const mode = p.options.find((o) => o.name === '-m' || o.name === '--mode')?.value?.value;
  if (!mode || !['session', 'node', 'iface', 'fw', 'host'].includes(mode))
    deny('iscsiadm logs in, discovers or changes records (only -m session|node|iface|host listings)');
});

/** nvidia-smi queries; its setters (-pm, -r, -e, -c, -pl, -ac...) and -f (a log file) are refused. */
const NVIDIA_QUERY =
  /^(-L|--list-gpus|-q|--query|-x|--xml-format|-u|--unit|-h|--help|--version|--display=.*|--id=.*|--loop=.*|--loop-ms=.*|--query-[a-z-]+=.*|--format=.*)$/;
const nvidiaSmi: Rule = (args) => {
  const words = args.map((w) => requireLiteral(w, 'nvidia-smi', 'argument'));
  const sub = words[0];
  if (sub === 'topo') {
    if (words.length === 2 && ['-m', '--matrix'].includes(words[1]!)) return;
    deny('nvidia-smi topo only with -m');
  }
  const monitor = sub === 'dmon' || sub === 'pmon';
  const valued = monitor ? ['-i', '-d', '-s', '-c', '-o'] : ['-i', '-d', '-l', '-lms'];
  for (let k = monitor ? 1 : 0; k < words.length; k++) {
    const v = words[k]!;
    if (valued.includes(v)) k++;
    else if (!(monitor ? /^(-h|--help)$/ : NVIDIA_QUERY).test(v))
      deny(
        `nvidia-smi ${v} changes the GPU or writes a file (only queries: -L, -q, --query-gpu=..., topo -m, dmon, pmon)`,
      );
  }
};

/** e2fsck/fsck.ext* with -n opens the file system read-only and answers no to every repair. */
const e2fsckReadOnly = opts({ short: 'nfvtdb:B:', long: [] }, (p, ctx) => {
  if (!has(p, '-n')) deny(`${ctx.name} can repair (change) file systems (only ${ctx.name} -n)`);
  if (p.operands.length !== 1) deny(`${ctx.name} -n checks one device`);
});

// ---------------------------------------------------------------------------------------------
// Readers with one dangerous corner

const pidstat = reader({ '-e': 'pidstat -e runs a program' });
const drill = reader({ '-w': 'drill -w writes the answer to a file' });
/** whois talks to a whois server; another port turns it into a raw line sender (Redis, memcached). */
const whois = opts({ permissive: true, short: 'h:p:', long: ['host=', 'port='] }, (p) => {
  for (const o of p.options) {
    if (o.name === '-p' || o.name === '--port') deny('whois -p sends the query to another port');
    if ((o.name === '-h' || o.name === '--host') && (o.value?.value ?? ':').includes(':'))
      deny('whois -h HOST:PORT sends the query to another port');
  }
});
/** mailq is often sendmail under another name, which takes every sendmail option (-bm sends mail). */
const mailq: Rule = (args) => {
  if (args.length === 0 || (args.length === 1 && args[0]!.value === '-bp')) return;
  deny('mailq only without options (it may be sendmail, whose options send mail or flush the queue)');
};

export const systemRules: Record<string, Rule> = {
  pidstat,
  drill,
  whois,
  mailq,
  ...Object.fromEntries(PLAIN.map((n) => [n, allow])),
  systemctl,
  journalctl: opts(JOURNALCTL_OPTIONS),
  hostnamectl,
  timedatectl,
  localectl,
  loginctl,
  networkctl,
  resolvectl,
  busctl,
  coredumpctl,
  'systemd-analyze': systemdAnalyze,
  machinectl,
  bootctl,
  udevadm,
  'systemd-cgtop': opts({ permissive: true, short: 'n:d:M:' }, (p) => {
    if (!has(p, '-b', '--batch')) deny('systemd-cgtop is interactive (use systemd-cgtop -b -n 1)');
  }),
  dmesg,
  sysctl,
  ip: ipRule,
  ss: ssRule,
  ethtool: ethtoolRule,
  iptables,
  ip6tables: iptables,
  'iptables-legacy': iptables,
  'ip6tables-legacy': iptables,
  'iptables-nft': iptables,
  'ip6tables-nft': iptables,
  ebtables: iptables,
  arptables: iptables,
  'iptables-save': iptablesSave,
  'ip6tables-save': iptablesSave,
  'iptables-legacy-save': iptablesSave,
  'iptables-nft-save': iptablesSave,
  nft: nftRule,
  ufw: ufwRule,
  'firewall-cmd': firewallCmd,
  nmcli: nmcliRule,
  tc: iprouteShowOnly('tc'),
  bridge: iprouteShowOnly('bridge'),
  brctl,
  ifconfig: ifconfigRule,
  iwconfig: ifconfigRule,
  arp: arpRule,
  route: routeRule,
  conntrack,
  ipset,
  tcpdump,
  mtr: opts({ permissive: true, short: 'c:i:s:B:f:m:U:a:P:L:Q:G:' }, (p) => {
    if (
      !has(
        p,
        '-r',
        '--report',
        '-w',
        '--report-wide',
        '-j',
        '--json',
        '-C',
        '--csv',
        '-x',
        '--xml',
        '--raw',
        '-l',
      )
    )
      deny('mtr is interactive (use mtr -r -c 5)');
  }),
  fdisk,
  sfdisk,
  parted,
  blkid: blkidRule,
  lvm: (args, ctx) => {
    parseOptions(args, { permissive: true, deny: LVM_DENY }, 'lvm');
    auditSimple(
      'lvm',
      ['pvs', 'vgs', 'lvs', 'pvdisplay', 'vgdisplay', 'lvdisplay', 'version', 'fullreport', 'help'],
      'changes logical volumes',
    )(args, ctx);
  },
  pvs: lvmReport,
  vgs: lvmReport,
  lvs: lvmReport,
  blockdev,
  mdadm,
  smartctl,
  hdparm,
  zpool,
  zfs,
  tune2fs,
  'qemu-img': qemuImg,
  dmsetup: auditSimple(
    'dmsetup',
    ['ls', 'info', 'table', 'status', 'deps', 'version', 'targets', 'help'],
    'changes device-mapper devices',
  ),
  nvme: auditSimple(
    'nvme',
    [
      'list',
      'list-subsys',
      'smart-log',
      'id-ctrl',
      'id-ns',
      'error-log',
      'version',
      'help',
      'show-regs',
      'fw-log',
      'list-ns',
      'list-ctrl',
    ],
    'can change or erase drives',
  ),
  lshw: (args) => {
    for (const a of args) {
      if (a.value === null ? mayStartWith(a) : /^--?dump$/.test(a.value))
        deny('lshw -dump writes a database file');
    }
  },
  dmidecode: reader({ '--dump-bin': 'dmidecode --dump-bin writes a file' }, 't:s:H:', [
    'type=',
    'string=',
    'handle=',
    'from-dump=',
    'oem-string=',
  ]),
  sensors,
  numactl: opts({ short: 'Hs', long: ['hardware', 'show'] }, (p) => {
    if (!p.options.length || p.operands.length)
      deny('numactl runs commands under a memory policy (only --hardware, --show)');
  }),
  date: dateRule,
  hwclock,
  hostname: hostnameRule,
  domainname,
  dnsdomainname: domainname,
  nisdomainname: domainname,
  ypdomainname: domainname,
  chronyc,
  ntpq,
  crontab,
  at: opts({ short: 'lq:V' }, (p) => {
    if (!has(p, '-l', '-V')) deny('at schedules commands');
  }),
  batch: refuse('batch schedules commands'),
  atrm: refuse('atrm removes scheduled jobs'),
  chage,
  passwd,
  lastlog,
  faillog,
  top: topRule,
  atop: refuse('atop is interactive and can write logs'),
  iotop: opts({ permissive: true, short: 'n:d:p:u:' }, (p) => {
    if (!has(p, '-b', '--batch')) deny('iotop is interactive (use iotop -b -n 1)');
  }),
  iftop: refuse('iftop is interactive'),
  nethogs: refuse('nethogs is interactive'),
  slabtop,
  ionice,
  taskset,
  fuser,
  modprobe,
  auditctl,
  ausearch,
  ldconfig,
  'update-alternatives': alternatives,
  alternatives,
  logrotate,
  visudo,
  tput,
  'named-checkconf': namedCheckconf,
  'unbound-checkconf': unboundCheckconf,
  doveconf,
  exportfs,
  mount: mountRule,
  stty: (args) => {
    for (const a of args) {
      if (!['-a', '--all', '-g', '--save', 'size', 'speed'].includes(a.value ?? ''))
        deny('stty with settings changes the terminal');
    }
  },
  mesg: (args) => {
    if (args.length) deny('mesg y/n changes terminal permissions');
  },
  sar: reader({ '-o': 'sar -o writes a data file' }, 'f:i:s:e:P:I:n:m:q::r::u::', []),
  nstat: refuse('nstat updates its history file'),
  rtacct: refuse('rtacct updates its history file'),
  ifstat: refuse('ifstat updates its history file'),
  // Changing things.
  pkill: refuse('pkill sends signals to processes'),
  killall: refuse('killall sends signals to processes'),
  killall5: refuse('killall5 sends signals to processes'),
  skill: refuse('skill sends signals to processes'),
  snice: refuse('snice changes process priorities'),
  xkill: refuse('xkill kills clients'),
  reboot: refuse('reboot restarts the machine'),
  shutdown: refuse('shutdown stops the machine'),
  halt: refuse('halt stops the machine'),
  poweroff: refuse('poweroff stops the machine'),
  init: refuse('init changes the runlevel'),
  telinit: refuse('telinit changes the runlevel'),
  kexec: refuse('kexec boots another kernel'),
  umount: refuse('umount unmounts file systems'),
  swapon,
  'systemd-resolve': systemdResolve,
  prlimit,
  btrfs,
  cpupower,
  upower,
  debsums: reader({
    '-g': 'debsums -g writes checksum files',
    '--generate': 'debsums --generate writes checksum files',
  }),
  htop: refuseButVersion('htop is interactive and can kill processes (use top -b -n 1)'),
  ncdu: refuseButVersion('ncdu is interactive and can delete files (use du -sh)', '-v'),
  lstopo: refuseButVersion('lstopo can write files (use lscpu or hwloc-ls)'),
  swapoff: refuse('swapoff changes swap'),
  mkswap: refuse('mkswap formats a device'),
  wipefs: refuse('wipefs erases signatures'),
  mkfs: refuse('mkfs formats a device'),
  'mkfs.ext4': refuse('mkfs formats a device'),
  'mkfs.ext3': refuse('mkfs formats a device'),
  'mkfs.ext2': refuse('mkfs formats a device'),
  'mkfs.xfs': refuse('mkfs formats a device'),
  'mkfs.btrfs': refuse('mkfs formats a device'),
  'mkfs.vfat': refuse('mkfs formats a device'),
  mke2fs: refuse('mke2fs formats a device'),
  fsck: refuse('fsck can repair (change) file systems (e2fsck -n checks without changing)'),
  e2fsck: e2fsckReadOnly,
  'fsck.ext2': e2fsckReadOnly,
  'fsck.ext3': e2fsckReadOnly,
  'fsck.ext4': e2fsckReadOnly,
  ipvsadm,
  multipath,
  iscsiadm,
  'nvidia-smi': nvidiaSmi,
  xfs_repair: refuse('xfs_repair changes file systems'),
  debugfs: refuse('debugfs can write file systems'),
  gdisk: refuse('gdisk edits partition tables'),
  sgdisk: refuse('sgdisk edits partition tables'),
  cfdisk: refuse('cfdisk edits partition tables'),
  partprobe: refuse('partprobe makes the kernel reread partition tables'),
  lvremove: refuse('lvremove deletes logical volumes'),
  lvcreate: refuse('lvcreate creates logical volumes'),
  lvextend: refuse('lvextend changes logical volumes'),
  lvresize: refuse('lvresize changes logical volumes'),
  lvreduce: refuse('lvreduce changes logical volumes'),
  vgremove: refuse('vgremove deletes volume groups'),
  vgcreate: refuse('vgcreate creates volume groups'),
  vgextend: refuse('vgextend changes volume groups'),
  pvremove: refuse('pvremove deletes physical volumes'),
  pvcreate: refuse('pvcreate creates physical volumes'),
  pvscan: refuse('pvscan can update the LVM cache'),
  vgscan: refuse('vgscan can create device nodes'),
  lvscan: refuse('lvscan is not needed for reading (use lvs)'),
  insmod: refuse('insmod loads kernel modules'),
  rmmod: refuse('rmmod unloads kernel modules'),
  depmod: refuse('depmod rewrites module indexes'),
  useradd: refuse('useradd creates users'),
  userdel: refuse('userdel deletes users'),
  usermod: refuse('usermod changes users'),
  adduser: refuse('adduser creates users'),
  deluser: refuse('deluser deletes users'),
  groupadd: refuse('groupadd creates groups'),
  groupdel: refuse('groupdel deletes groups'),
  groupmod: refuse('groupmod changes groups'),
  addgroup: refuse('addgroup creates groups'),
  delgroup: refuse('delgroup deletes groups'),
  gpasswd: refuse('gpasswd changes groups'),
  chpasswd: refuse('chpasswd changes passwords'),
  chsh: refuse('chsh changes login shells'),
  chfn: refuse('chfn changes user information'),
  vipw: refuse('vipw edits the password file'),
  vigr: refuse('vigr edits the group file'),
  pwck: refuse('pwck can fix the password file'),
  grpck: refuse('grpck can fix the group file'),
  logger: refuse('logger writes to the system log'),
  wall: refuse('wall writes to every terminal'),
  write: refuse('write writes to another user’s terminal'),
  'update-grub': refuse('update-grub rewrites the boot configuration'),
  'grub-install': refuse('grub-install changes the boot loader'),
  'grub-mkconfig': refuse('grub-mkconfig writes the boot configuration'),
  'update-initramfs': refuse('update-initramfs rewrites the initramfs'),
  dracut: refuse('dracut rewrites the initramfs'),
  'locale-gen': refuse('locale-gen writes locale files'),
  'update-locale': refuse('update-locale changes the locale'),
  'dpkg-reconfigure': refuse('dpkg-reconfigure changes package configuration'),
  setenforce: refuse('setenforce changes SELinux enforcement'),
  semanage: refuse('semanage changes SELinux policy'),
  setsebool: refuse('setsebool changes SELinux booleans'),
  'update-ca-certificates': refuse('update-ca-certificates rewrites the CA store'),
  certbot: refuse('certbot changes certificates and writes logs'),
  'iptables-restore': refuse('iptables-restore replaces firewall rules'),
  'ip6tables-restore': refuse('ip6tables-restore replaces firewall rules'),
  ifup: refuse('ifup changes interfaces'),
  ifdown: refuse('ifdown changes interfaces'),
  dhclient: refuse('dhclient changes interfaces'),
  iw: refuse('iw can change wireless settings'),
  rfkill: opts({ permissive: true }, (p) => {
    const verb = p.operands[0]?.value;
    if (verb !== undefined && verb !== 'list' && verb !== 'event') deny(`rfkill ${verb} changes radios`);
  }),
};
