/**
 * Read-only SQL for `mysql -e` and `psql -c`: one SHOW, DESCRIBE, EXPLAIN (never ANALYZE) or SELECT
 * statement, with no comments, no second statement, nothing that writes (INTO, FOR UPDATE, locks,
 * data-modifying CTEs) and no function call outside a list of functions known to only compute or
 * report. What a view or a row-security policy runs when it is read is the database owner's code,
 * not the command's, and is out of this check's reach.
 */
import { deny } from './types.ts';

export type SqlDialect = 'mysql' | 'postgres';

interface Token {
  kind: 'word' | 'string' | 'ident' | 'punct' | 'number';
  text: string;
}

const COMMON_FUNCTIONS = [
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'coalesce',
  'nullif',
  'greatest',
  'least',
  'lower',
  'upper',
  'length',
  'char_length',
  'octet_length',
  'substring',
  'substr',
  'trim',
  'ltrim',
  'rtrim',
  'replace',
  'concat',
  'concat_ws',
  'left',
  'right',
  'round',
  'floor',
  'ceil',
  'ceiling',
  'abs',
  'mod',
  'now',
  'version',
  'date',
  'extract',
  'cast',
  'position',
  'md5',
  'row_number',
  'rank',
  'dense_rank',
  'lag',
  'lead',
  'first_value',
  'last_value',
  'stddev',
  'variance',
  'current_date',
  'current_time',
  'current_timestamp',
  'current_user',
  'session_user',
  'reverse',
  'lpad',
  'rpad',
  'sign',
  'power',
];
const FUNCTIONS: Record<SqlDialect, Set<string>> = {
  postgres: new Set([
    ...COMMON_FUNCTIONS,
    'current_database',
    'current_schema',
    'current_setting',
    'date_trunc',
    'date_part',
    'to_char',
    'to_date',
    'to_timestamp',
    'age',
    'format',
    'string_agg',
    'array_agg',
    'json_agg',
    'jsonb_agg',
    'array_length',
    'unnest',
    'generate_series',
    'to_json',
    'to_jsonb',
    'row_to_json',
    'json_build_object',
    'jsonb_build_object',
    'jsonb_pretty',
    'split_part',
    'regexp_replace',
    'strpos',
    'clock_timestamp',
    'statement_timestamp',
    'transaction_timestamp',
    'justify_interval',
    'pg_size_pretty',
    'pg_database_size',
    'pg_relation_size',
    'pg_total_relation_size',
    'pg_table_size',
    'pg_indexes_size',
    'pg_postmaster_start_time',
    'pg_conf_load_time',
    'pg_is_in_recovery',
    'pg_last_wal_receive_lsn',
    'pg_last_wal_replay_lsn',
    'pg_current_wal_lsn',
    'pg_wal_lsn_diff',
    'pg_last_xact_replay_timestamp',
    'pg_blocking_pids',
    'pg_backend_pid',
    'pg_get_viewdef',
    'pg_get_indexdef',
    'pg_get_constraintdef',
    'pg_get_functiondef',
    'pg_get_userbyid',
    'pg_table_is_visible',
    'format_type',
    'obj_description',
    'col_description',
    'has_table_privilege',
    'has_database_privilege',
    'has_schema_privilege',
    'pg_has_role',
    'inet_server_addr',
    'inet_client_addr',
    'pg_encoding_to_char',
    'quote_ident',
    'array_to_string',
  ]),
  mysql: new Set([
    ...COMMON_FUNCTIONS,
    'database',
    'schema',
    'user',
    'system_user',
    'sysdate',
    'curdate',
    'curtime',
    'utc_timestamp',
    'from_unixtime',
    'unix_timestamp',
    'timestampdiff',
    'datediff',
    'date_format',
    'date_sub',
    'date_add',
    'if',
    'ifnull',
    'group_concat',
    'json_extract',
    'json_unquote',
    'inet_ntoa',
    'inet_aton',
    'connection_id',
    'format',
    'format_bytes',
    'format_time',
    'sec_to_time',
    'time_to_sec',
    'hex',
    'unhex',
    'locate',
    'instr',
    'char',
    'ascii',
    'convert',
  ]),
};

/** Words that may stand before `(` without being a function call. */
const KEYWORDS_BEFORE_PAREN = new Set([
  'in',
  'exists',
  'any',
  'all',
  'some',
  'over',
  'filter',
  'on',
  'using',
  'and',
  'or',
  'not',
  'when',
  'then',
  'else',
  'as',
  'from',
  'join',
  'where',
  'select',
  'values',
  'by',
  'having',
  'is',
  'between',
  'like',
  'ilike',
  'case',
  'distinct',
  'lateral',
  'array',
  'row',
  'within',
  'group',
  'union',
  'intersect',
  'except',
  'interval',
  'explain',
  'limit',
  'offset',
  'format',
]);

/** Words that make a statement write, lock, or run something, wherever they appear. */
const WRITE_WORDS = new Set([
  'into',
  'insert',
  'update',
  'delete',
  'merge',
  'upsert',
  'create',
  'drop',
  'alter',
  'truncate',
  'grant',
  'revoke',
  'copy',
  'call',
  'do',
  'set',
  'reset',
  'load',
  'handler',
  'prepare',
  'execute',
  'deallocate',
  'listen',
  'notify',
  'unlisten',
  'vacuum',
  'analyze',
  'analyse',
  'cluster',
  'reindex',
  'refresh',
  'comment',
  'security',
  'kill',
  'shutdown',
  'outfile',
  'dumpfile',
  'lock',
  'unlock',
  'with',
  'for',
  'begin',
  'commit',
  'rollback',
  'savepoint',
  'release',
  'import',
  'install',
  'uninstall',
  'flush',
  'purge',
  'checkpoint',
  'discard',
  'rename',
  'optimize',
  'repair',
]);

function tokenize(sql: string, dialect: SqlDialect): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (sql.startsWith('--', i) || sql.startsWith('/*', i) || (c === '#' && dialect === 'mysql'))
      deny('SQL comments are not allowed in a read-only query');
    if (c === "'" || (c === '"' && dialect === 'mysql')) {
      let j = i + 1;
      for (;;) {
        if (j >= n) deny('the SQL has an unterminated string');
        if (sql[j] === '\\')
          deny(
            'backslashes in SQL strings are escapes in some modes (E-strings, MySQL): leave them out of a read-only query',
          );
        if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      out.push({ kind: 'string', text: sql.slice(i, j + 1) });
      i = j + 1;
      continue;
    }
    if (c === '"' || c === '`') {
      const j = sql.indexOf(c, i + 1);
      if (j < 0) deny('the SQL has an unterminated quoted name');
      out.push({ kind: 'ident', text: sql.slice(i + 1, j).toLowerCase() });
      i = j + 1;
      continue;
    }
    if (c === '$') deny('$ (dollar quoting or parameters) is not allowed in a read-only query');
    const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i));
    if (word) {
      out.push({ kind: 'word', text: word[0].toLowerCase() });
      i += word[0].length;
      continue;
    }
    const num = /^[0-9][0-9.eE]*/.exec(sql.slice(i));
    if (num) {
      out.push({ kind: 'number', text: num[0] });
      i += num[0].length;
      continue;
    }
    if (c === '\\') {
      if (dialect === 'mysql' && /^\\G\s*$/.test(sql.slice(i))) break;
      deny('client commands (\\...) are not allowed inside the SQL');
    }
    out.push({ kind: 'punct', text: c });
    i++;
  }
  return out;
}

/** Throws (through `deny`) unless `sql` is one statement that only reads. */
export function checkReadOnlySql(sql: string, dialect: SqlDialect): void {
  if (dialect === 'mysql' && /[\r\n]/.test(sql))
    deny('mysql treats each line of the SQL as a possible client command: keep the query on one line');
  let toks = tokenize(sql, dialect);
  if (toks.at(-1)?.text === ';') toks = toks.slice(0, -1);
  if (!toks.length) deny('the SQL is empty');
  if (toks.some((t) => t.text === ';')) deny('only one SQL statement at a time');

  const first = toks[0]!;
  if (first.kind !== 'word') deny('the SQL must start with SHOW, DESCRIBE, EXPLAIN or SELECT');
  if (first.text === 'show') {
    // SHOW only reports, but `SHOW ... ; other` was ruled out above; names after it are free.
    if (toks.some((t) => t.kind === 'punct' && t.text === '(')) deny('SHOW takes no expressions');
    return;
  }
  let body = toks;
  if (first.text === 'explain' || first.text === 'describe' || first.text === 'desc') {
    body = toks.slice(1);
    // EXPLAIN/DESCRIBE of a table lists its columns; of a query, the query must read.
    if (!body.some((t) => t.kind === 'word' && (t.text === 'select' || t.text === 'table'))) {
      if (body.some((t) => t.kind === 'word' && WRITE_WORDS.has(t.text)))
        deny(`${first.text.toUpperCase()} of a statement that writes`);
      return checkWords(body, dialect);
    }
    while (body.length && body[0]!.kind !== 'word') body = body.slice(1);
    while (body.length && !['select', 'table', 'values'].includes(body[0]!.text)) {
      if (body[0]!.text === 'analyze' || body[0]!.text === 'analyse')
        deny('EXPLAIN ANALYZE runs the statement');
      body = body.slice(1);
    }
  }
  if (!body.length || !['select', 'table', 'values'].includes(body[0]!.text))
    deny(
      `${first.text.toUpperCase()} is not a read-only statement (only SHOW, DESCRIBE, EXPLAIN and SELECT)`,
    );
  checkWords(toks, dialect);
}

function checkWords(toks: Token[], dialect: SqlDialect): void {
  const fns = FUNCTIONS[dialect];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind === 'punct' && t.text === ':' && toks[k + 1]?.text === '=' && dialect === 'mysql')
      deny('SQL assignments (:=) are not allowed in a read-only query');
    if (t.kind !== 'word' && t.kind !== 'ident') continue;
    if (t.kind === 'word' && WRITE_WORDS.has(t.text))
      deny(`${t.text.toUpperCase()} makes the SQL write, lock or run something`);
    if (toks[k + 1]?.text !== '(') continue;
    const qualified = toks[k - 1]?.text === '.';
    const schema = qualified ? toks[k - 2]?.text : undefined;
    if (!qualified && t.kind === 'word' && KEYWORDS_BEFORE_PAREN.has(t.text)) continue;
    const schemaOk = !qualified || (dialect === 'postgres' ? schema === 'pg_catalog' : schema === 'sys');
    if (!schemaOk || !fns.has(t.text))
      deny(
        `the SQL calls ${qualified ? `${schema}.` : ''}${t.text}(), which is not on the read-only function list`,
      );
  }
}
