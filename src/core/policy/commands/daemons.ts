/**
 * Clients of running services (Redis, MySQL, fail2ban, mail and cache servers) limited to the
 * requests that only read: status, statistics, queues and values.
 */
import { has, parseOptions } from '../options.ts';
import { allow, configFile, literalVerb, opts, type Rule } from '../rule.ts';
import { checkReadOnlySql } from '../sql.ts';
import { deny, show, type Word } from '../types.ts';

/**
 * The verb `typed` resolves to when the program accepts unique prefixes of its verbs (btrfs,
 * mysqladmin). Only an unambiguous prefix of an allowed verb that is not also a prefix of a denied
 * one counts; anything else is null.
 */
export function prefixVerb(
  typed: string,
  allowed: readonly string[],
  denied: readonly string[] = [],
): string | null {
  if (allowed.includes(typed)) return typed;
  if (denied.some((d) => d.startsWith(typed))) return null;
  const hits = allowed.filter((a) => a.startsWith(typed));
  return hits.length === 1 ? hits[0]! : null;
}

// ---------------------------------------------------------------------------------------------
// redis-cli: one command from the read-only set, or a statistics mode

const REDIS_READ = new Set(
  (
    'PING ECHO INFO DBSIZE TIME LASTSAVE ROLE GET MGET GETRANGE STRLEN EXISTS TTL PTTL EXPIRETIME ' +
    'PEXPIRETIME TYPE KEYS SCAN RANDOMKEY HGET HMGET HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN HSCAN ' +
    'HRANDFIELD LRANGE LLEN LINDEX LPOS SMEMBERS SCARD SISMEMBER SMISMEMBER SRANDMEMBER SSCAN SINTER ' +
    'SUNION SDIFF SINTERCARD ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ' +
    'ZREVRANGEBYLEX ZCARD ZCOUNT ZLEXCOUNT ZSCORE ZMSCORE ZRANK ZREVRANK ZSCAN ZRANDMEMBER XLEN ' +
    'XRANGE XREVRANGE XPENDING BITCOUNT BITPOS GETBIT GEOPOS GEODIST GEOHASH GEOSEARCH DUMP OBJECT ' +
    'MONITOR SUBSCRIBE PSUBSCRIBE SSUBSCRIBE'
  ).split(' '),
);
/** Container commands: only these subcommands read. */
const REDIS_SUB: Record<string, string[]> = {
  CLIENT: ['LIST', 'INFO', 'GETNAME', 'ID', 'GETREDIR', 'TRACKINGINFO'],
  CONFIG: ['GET'],
  SLOWLOG: ['GET', 'LEN'],
  LATENCY: ['LATEST', 'HISTORY', 'DOCTOR', 'GRAPH', 'HISTOGRAM'],
  MEMORY: ['USAGE', 'STATS', 'DOCTOR', 'MALLOC-STATS'],
  CLUSTER: ['INFO', 'NODES', 'SLOTS', 'SHARDS', 'MYID', 'COUNTKEYSINSLOT', 'GETKEYSINSLOT', 'KEYSLOT'],
  COMMAND: ['COUNT', 'INFO', 'DOCS', 'LIST', 'GETKEYS'],
  XINFO: ['STREAM', 'GROUPS', 'CONSUMERS'],
  PUBSUB: ['CHANNELS', 'NUMSUB', 'NUMPAT', 'SHARDCHANNELS', 'SHARDNUMSUB'],
  ACL: ['WHOAMI', 'LIST', 'USERS', 'CAT', 'GETUSER'],
  MODULE: ['LIST'],
  FUNCTION: ['LIST', 'STATS', 'DUMP'],
  SCRIPT: ['EXISTS'],
};
/** Modes that print statistics without a command. */
const REDIS_MODES = [
  '--stat',
  '--latency',
  '--latency-history',
  '--latency-dist',
  '--bigkeys',
  '--memkeys',
  '--hotkeys',
  '--keystats',
  '--scan',
  '--intrinsic-latency',
  '--help',
  '--version',
  '-v',
];

const redisCli: Rule = (args) => {
  const p = parseOptions(
    args,
    {
      short: 'h:p:s:a:u:n:r:i:d:t:xcevD:34',
      long: [
        'user=',
        'pass=',
        'askpass',
        'raw',
        'no-raw',
        'csv',
        'json',
        'quoted-json',
        'tls',
        'insecure',
        'cacert=',
        'cacertdir=',
        'cert=',
        'key=',
        'sni=',
        'tls-ciphers=',
        'no-auth-warning',
        'verbose',
        'stat',
        'latency',
        'latency-history',
        'latency-dist',
        'bigkeys',
        'memkeys',
        'memkeys-samples=',
        'hotkeys',
        'keystats',
        'scan',
        'pattern=',
        'quoted-pattern=',
        'count=',
        'intrinsic-latency=',
        'help',
        'version',
        'show-pushes=',
        'top=',
      ],
      abbreviations: false,
      stopAtOperand: true,
      deny: {
        '--rdb': 'redis-cli --rdb writes a dump file',
        '--functions-rdb': 'redis-cli --functions-rdb writes a dump file',
        '--pipe': 'redis-cli --pipe sends commands from stdin',
        '--eval': 'redis-cli --eval runs a Lua script',
        '--ldb': 'redis-cli --ldb runs a Lua script',
        '--ldb-sync-mode': 'redis-cli --ldb-sync-mode runs a Lua script',
        '--cluster': 'redis-cli --cluster manages (and changes) the cluster',
        '--lru-test': 'redis-cli --lru-test writes keys',
        '--replica': 'redis-cli --replica acts as a replica',
        '--slave': 'redis-cli --slave acts as a replica',
      },
    },
    'redis-cli',
  );
  const rest = args.slice(p.rest);
  if (!rest.length) {
    if (p.options.some((o) => REDIS_MODES.includes(o.name))) return;
    deny(
      'redis-cli without a command reads commands from stdin (give one command, for example redis-cli info)',
    );
  }
  const cmd = literalVerb(rest[0], 'redis-cli')!.toUpperCase();
  const subs = REDIS_SUB[cmd];
  if (subs) {
    const sub = literalVerb(rest[1], 'redis-cli')?.toUpperCase() ?? '';
    if (subs.includes(sub)) return;
    deny(`redis-cli ${cmd} ${sub} can change the server (only ${cmd} ${subs.join('|')})`.replace('  ', ' '));
  }
  if (!REDIS_READ.has(cmd))
    deny(`redis-cli ${cmd} can change data (only reading commands such as INFO, GET, SCAN)`);
};

// ---------------------------------------------------------------------------------------------
// mysqladmin: it accepts unique prefixes of its commands (`mysqladmin proc stat`)

const MYSQLADMIN_READ = ['status', 'extended-status', 'processlist', 'variables', 'version', 'ping'];
const MYSQLADMIN_WRITE = [
  'create',
  'debug',
  'drop',
  'flush-hosts',
  'flush-logs',
  'flush-status',
  'flush-tables',
  'flush-threads',
  'flush-privileges',
  'flush-binary-log',
  'flush-engine-log',
  'flush-error-log',
  'flush-general-log',
  'flush-relay-log',
  'flush-slow-log',
  'flush-user-resources',
  'flush-table-statistics',
  'flush-index-statistics',
  'flush-client-statistics',
  'flush-user-statistics',
  'flush-all-statistics',
  'flush-all-status',
  'kill',
  'password',
  'old-password',
  'reload',
  'refresh',
  'shutdown',
  'start-slave',
  'stop-slave',
  'start-replica',
  'stop-replica',
  'start-all-slaves',
  'stop-all-slaves',
  'purge',
];

/**
 * Option files and the options that pick groups in them: an option file can set pager,
 * init-command, plugin-dir and default-auth (a shared library to load), so it is code. The
 * client still reads the system's default files, as it does for everyone.
 */
const MYSQL_OPTION_FILES: Record<string, string> = {
  '--defaults-file': 'reads an option file, which can run a pager or load plugins',
  '--defaults-extra-file': 'reads an option file, which can run a pager or load plugins',
  '--defaults-group-suffix': 'reads other groups of the option files, which can run a pager or load plugins',
  '--login-path': 'reads other groups of the option files, which can run a pager or load plugins',
  '--character-sets-dir': 'loads character sets from another directory',
  '--init-command': 'runs SQL of its own',
  '--plugin-dir': 'loads plugins from another directory',
  '--default-auth': 'loads an authentication plugin',
};

const mysqlDeny = (who: string): Record<string, string> =>
  Object.fromEntries(Object.entries(MYSQL_OPTION_FILES).map(([k, why]) => [k, `${who} ${k} ${why}`]));

const mysqladmin = opts(
  {
    short: 'u:p::h:P:S:i:c:rvsfVC?',
    long: [
      'user=',
      'password=?',
      'host=',
      'port=',
      'socket=',
      'sleep=',
      'count=',
      'relative',
      'verbose',
      'silent',
      'force',
      'version',
      'compress',
      'protocol=',
      'connect-timeout=',
      'shutdown-timeout=',
      'no-defaults',
      'print-defaults',
      'ssl',
      'ssl-ca=',
      'ssl-cert=',
      'ssl-key=',
      'ssl-mode=',
      'vertical',
      'wait=?',
      'help',
      'no-beep',
      'character-sets-dir=',
      'default-character-set=',
      'bind-address=',
      'skip-ssl',
    ],
    deny: mysqlDeny('mysqladmin'),
  },
  (p) => {
    if (!p.operands.length && !has(p, '--version', '-V', '--help', '-?', '--print-defaults'))
      deny('mysqladmin without a command');
    for (const w of p.operands) {
      const typed = literalVerb(w, 'mysqladmin')!;
      if (!prefixVerb(typed, MYSQLADMIN_READ, MYSQLADMIN_WRITE))
        deny(`mysqladmin ${typed} changes the server (only ${MYSQLADMIN_READ.join(', ')})`);
    }
  },
);

// ---------------------------------------------------------------------------------------------
// fail2ban-client, exim

const FAIL2BAN_READ = ['status', 'ping', 'version', 'get', 'banned', 'echo'];
const fail2banClient = opts(
  {
    short: 'c:s:p:vqhVdt',
    long: ['loglevel=', 'timeout=', 'version', 'help', 'test', 'dp', 'dump-pretty', 'str2sec='],
    deny: {
      '-x': 'fail2ban-client -x removes the server socket',
      '-b': 'fail2ban-client -b starts the server',
      '-f': 'fail2ban-client -f starts the server',
      '-i': 'fail2ban-client -i is interactive',
      '--async': 'fail2ban-client --async starts the server',
    },
    stopAtOperand: true,
  },
  (p, _ctx, args) => {
    // fail2ban's configuration names the socket and the actions (commands) of every jail.
    for (const o of p.options)
      if (o.name === '-c') configFile(o.value ?? undefined, 'fail2ban-client', '-c', ['/etc/fail2ban']);
    const verb = literalVerb(args[p.rest], 'fail2ban-client');
    if (verb === null) {
      if (p.options.length) return;
      deny('fail2ban-client without a command');
    }
    if (!FAIL2BAN_READ.includes(verb))
      deny(`fail2ban-client ${verb} changes fail2ban (only ${FAIL2BAN_READ.join(', ')})`);
  },
);

/** `exim -bp` (the queue), `-bpc` (its size), `-bV` (version), `-bP [option...]` (configuration). */
const EXIM_READ = ['-bp', '-bpa', '-bpc', '-bpr', '-bpru', '-bpu', '-bV', '-bP'];
const exim: Rule = (args) => {
  const first = args[0]?.value;
  if (!first || !EXIM_READ.includes(first)) deny(`exim only with ${EXIM_READ.join(', ')}`);
  const rest = args.slice(1);
  if (first === '-bP' ? rest.some((w) => w.value === null || w.value.startsWith('-')) : rest.length)
    deny(`exim ${first} ${rest.map(show).join(' ')}: unexpected arguments`);
};

const pgCtlcluster: Rule = (args) => {
  const verb = args[2];
  if (args.length === 3 && verb?.value === 'status') return;
  deny(
    `pg_ctlcluster ${verb ? show(verb) : ''} changes a cluster (only VERSION NAME status)`.replace('  ', ' '),
  );
};

// ---------------------------------------------------------------------------------------------
// SQL clients: a read-only query given on the command line (never stdin, files or client commands)

const MYSQL_CONNECT = [
  'user=',
  'password=?',
  'host=',
  'port=',
  'socket=',
  'database=',
  'protocol=',
  'connect-timeout=',
  'no-defaults',
  'ssl',
  'skip-ssl',
  'ssl-ca=',
  'ssl-cert=',
  'ssl-key=',
  'ssl-mode=',
  'bind-address=',
  'compress',
  'default-character-set=',
];
const mysql = opts(
  {
    short: 'u:p::h:P:S:D:e:NBstrEXHAvVC',
    long: [
      ...MYSQL_CONNECT,
      'execute=',
      'skip-column-names',
      'column-names',
      'batch',
      'silent',
      'table',
      'raw',
      'vertical',
      'xml',
      'html',
      'no-auto-rehash',
      'skip-auto-rehash',
      'verbose',
      'version',
      'help',
      'unbuffered',
      'safe-updates',
      'i-am-a-dummy',
      'select-limit=',
      'max-join-size=',
      'show-warnings',
      'quick',
      'no-beep',
      'binary-as-hex',
      'skip-pager',
      'no-pager',
      'wait',
    ],
    deny: {
      ...mysqlDeny('mysql'),
      '--pager': 'mysql --pager runs a command',
      '--tee': 'mysql --tee writes a file',
      '--load-data-local-dir': 'mysql --load-data-local-dir lets the server read files',
      '--local-infile': 'mysql --local-infile lets the server read files',
      '--system-command': 'mysql --system-command allows shell commands',
    },
  },
  (p, ctx) => {
    if (has(p, '--version', '-V', '--help')) return;
    const sql = p.options.filter((o) => o.name === '-e' || o.name === '--execute');
    if (!sql.length) deny(`${ctx.name} without -e reads SQL from stdin (give one read-only query with -e)`);
    for (const o of sql) {
      if (o.value?.value == null) deny(`${ctx.name} -e: the SQL is computed at run time`);
      checkReadOnlySql(o.value.value, 'mysql');
    }
    if (p.operands.length > 1) deny(`${ctx.name} takes one database name`);
  },
);

/**
 * A psql database argument may be a connection string (`host=x dbname=y`, `postgresql://...`).
 * Its keywords can load code or read other configuration: `sslkey=engine:...` loads an OpenSSL
 * engine, `service=` reads pg_service.conf (which can set those), `passfile`, `options` sets
 * server parameters. Only the keywords that say where to connect and as whom.
 */
const PG_SAFE_KEYS = new Set([
  'host',
  'hostaddr',
  'port',
  'dbname',
  'user',
  'password',
  'connect_timeout',
  'application_name',
  'sslmode',
  'gssencmode',
  'channel_binding',
  'target_session_attrs',
  'client_encoding',
]);

function pgConnection(w: Word, what: string): void {
  const v = w.value;
  if (v === null) deny(`psql: the ${what} ${show(w)} is computed at run time`);
  let keys: string[];
  if (/^postgres(ql)?:\/\//i.test(v)) {
    let query = '';
    try {
      query = new URL(v).search;
    } catch {
      deny(`psql: the connection URI ${v} does not parse`);
    }
    keys = [...new URLSearchParams(query).keys()];
  } else if (v.includes('=')) {
    keys = [...v.matchAll(/([A-Za-z_]+)\s*=/g)].map((m) => m[1]!);
    if (!keys.length) deny(`psql: the connection string ${v} does not parse`);
  } else return; // a database or user name
  for (const k of keys)
    if (!PG_SAFE_KEYS.has(k.toLowerCase()))
      deny(
        `psql: the connection keyword ${k} can load code or other configuration (only host, port, dbname, user and the like)`,
      );
}

/** psql backslash commands that only describe (\l, \d..., \dt+, \z, \conninfo), with plain patterns. */
const PSQL_META = /^\\(l\+?|d[a-zA-Z]*\+?S?|z|dp|conninfo|encoding)(\s+[^\\;|`$]*)?\s*$/;

const psql = opts(
  {
    short: 'c:d:U:h:p:v:F:R:T:tAxXqlwWeEabnSH1VP:',
    long: [
      'command=',
      'dbname=',
      'username=',
      'host=',
      'port=',
      'set=',
      'variable=',
      'field-separator=',
      'record-separator=',
      'table-attr=',
      'tuples-only',
      'no-align',
      'expanded',
      'no-psqlrc',
      'quiet',
      'list',
      'no-password',
      'password',
      'echo-queries',
      'echo-hidden',
      'echo-all',
      'echo-errors',
      'no-readline',
      'single-line',
      'html',
      'single-transaction',
      'version',
      'help=?',
      'csv',
      'field-separator-zero',
      'record-separator-zero',
    ],
    deny: {
      '-f': 'psql -f runs SQL from a file',
      '--file': 'psql --file runs SQL from a file',
      '-o': 'psql -o writes a file',
      '--output': 'psql --output writes a file',
      '-L': 'psql -L writes a log file',
      '--log-file': 'psql --log-file writes a log file',
      '-s': 'psql -s is interactive',
      '--single-step': 'psql --single-step is interactive',
      '--pset': 'psql --pset can set a pager command',
    },
  },
  (p) => {
    if (has(p, '--version', '-V', '--help')) return;
    for (const o of p.options.filter((x) => x.name === '-P'))
      if (
        !/^(format|border|expanded|x|tuples_only|t|footer|null|title|fieldsep|recordsep|columns)(=|$)/.test(
          o.value?.value ?? '',
        )
      )
        deny(`psql -P ${o.value ? show(o.value) : ''}: only display settings (no pager)`);
    const sql = p.options.filter((o) => o.name === '-c' || o.name === '--command');
    if (!sql.length && !has(p, '-l', '--list'))
      deny('psql without -c reads SQL from stdin (give one read-only query or \\d command with -c)');
    for (const o of sql) {
      const v = o.value?.value;
      if (v == null) deny('psql -c: the SQL is computed at run time');
      if (v.trimStart().startsWith('\\')) {
        if (!PSQL_META.test(v.trim()))
          deny(`psql -c ${v}: only describing commands (\\l, \\d..., \\dt, \\du, \\conninfo)`);
      } else checkReadOnlySql(v, 'postgres');
    }
    if (p.operands.length > 2) deny('psql takes a database and a user name');
    for (const o of p.options)
      if ((o.name === '-d' || o.name === '--dbname') && o.value) pgConnection(o.value, 'database');
    for (const w of p.operands) pgConnection(w, 'database');
  },
);

export const daemonRules: Record<string, Rule> = {
  mysql,
  mariadb: mysql,
  psql,
  'redis-cli': redisCli,
  'valkey-cli': redisCli,
  mysqladmin,
  mariadbadmin: mysqladmin,
  'mariadb-admin': mysqladmin,
  'fail2ban-client': fail2banClient,
  exim,
  exim4: exim,
  pg_isready: allow,
  pg_lsclusters: allow,
  pg_ctlcluster: pgCtlcluster,
  varnishstat: allow,
  varnishadm: (args: Word[]) => {
    const v = args.map((w) => w.value);
    if (
      v.length === 1 &&
      ['status', 'ping', 'backend.list', 'vcl.list', 'param.show', 'panic.show'].includes(v[0] ?? '')
    )
      return;
    deny('varnishadm only with status, ping, backend.list, vcl.list, param.show or panic.show');
  },
};
