/**
 * HTTP clients (curl, wget): a GET or HEAD request to the URLs on the command line, over http(s),
 * printing what comes back.
 *
 * Both tools are held to an allowlist: every option they know that is not listed here is refused,
 * so an option added in a later release is refused until someone reviews it. An option is listed
 * only when it cannot
 * - send anything but a GET or HEAD (no bodies, uploads, other methods or method overrides),
 * - reach a second host or URL the policy does not see (proxies, DNS-over-HTTPS, DNS servers,
 *   --connect-to/--resolve, Unix sockets, config files, --next, URLs from files or variables),
 * - write or delete a file (only -o/-O to stdout or /dev/null),
 * - load code (crypto engines, PKCS#11 modules) or run a program (ntlm_auth, askpass).
 * Option values are literals without control characters (CR/LF would start another request).
 * Long options must be spelled out: both tools accept unique abbreviations, which the allowlist
 * does not try to resolve.
 */
import { has, parseOptions, type OptionSpec, type ParsedOption } from '../options.ts';
import type { Rule } from '../rule.ts';
import { deny, show, type Word } from '../types.ts';

/** Schemes a read may use; other URL schemes (gopher, dict, telnet, smtp...) can send arbitrary bytes. */
const READ_SCHEME = /^(https?):\/\//i;
/** curl guesses a protocol from these host prefixes when the URL has no scheme. */
const CURL_GUESSED = /^(ftp|dict|ldap|imap|smtp|pop3)\./i;
const NOWHERE = new Set(['-', '/dev/null', '/dev/stdout', '/dev/stderr']);
const SAFE_METHODS = new Set(['GET', 'HEAD']);
/** Headers that turn a GET into something else: method overrides, and body framing. */
const UNSAFE_HEADER = /^\s*(x-(http-)?method(-override)?|content-length|transfer-encoding)\s*:/i;

/** Control characters in a request line or header would let one request smuggle a second one. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f]/;

/** A literal value without control characters (a computed one could carry CR/LF at run time). */
export function plainValue(w: Word | null, who: string, what: string): string {
  if (!w) return '';
  if (w.value === null) deny(`${who}: the ${what} ${show(w)} is computed at run time`);
  if (CONTROL.test(w.value))
    deny(`${who}: the ${what} holds control characters (CR/LF start another request)`);
  return w.value;
}

export function urlOperand(w: Word, who: string): void {
  const v = plainValue(w, who, 'URL');
  if (READ_SCHEME.test(v)) return;
  if (v.startsWith('@')) deny(`${who}: ${show(w)} reads URLs from a file`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v))
    deny(`${who}: only http:// and https:// URLs are allowed (${show(w)})`);
  // Without a scheme curl guesses one from the host name (dict., ftp., smtp....): only a plain
  // host[:port] is unambiguous (no user@, no {,} or [] globs that could produce such a name).
  const host = v.split('/')[0]!;
  if (!/^[a-z0-9.-]+(:\d+)?$/i.test(host) || CURL_GUESSED.test(host))
    deny(`${who}: give ${show(w)} an http:// or https:// scheme`);
}

type Check = (w: Word | null, who: string, opt: string) => void;

const plain: Check = (w, who, opt) => void plainValue(w, who, `value of ${opt}`);

const nowhere: Check = (w, who, opt) => {
  if (!w || w.value === null || !NOWHERE.has(w.value))
    deny(`${who} ${opt} ${w ? show(w) : ''}: writes a file (only - or /dev/null)`);
};

const method =
  (caseless: boolean): Check =>
  (w, who, opt) => {
    const v = plainValue(w, who, 'method');
    if (!SAFE_METHODS.has(caseless ? v.toUpperCase() : v))
      deny(`${who} ${opt} ${v}: only GET and HEAD requests read`);
  };

const header: Check = (w, who) => {
  const v = plainValue(w, who, 'header');
  if (v.startsWith('@')) deny(`${who}: ${v} reads headers from a file or stdin`);
  if (UNSAFE_HEADER.test(v)) deny(`${who}: the header ${v.split(':')[0]} turns the request into a write`);
};

const writeOut: Check = (w, who, opt) => {
  const v = plainValue(w, who, 'format');
  if (v.startsWith('@') || /%output/i.test(v))
    deny(`${who} ${opt} ${v}: only a literal format that prints (no %output, no @file)`);
};

/** A client certificate or key file: PKCS#11 URIs and engine key ids load code. */
const keyFile: Check = (w, who, opt) => {
  const v = plainValue(w, who, `file of ${opt}`);
  if (/^[a-z0-9+.-]+:/i.test(v) && !/^\.?\//.test(v))
    deny(`${who} ${opt} ${v}: a PKCS#11 URI or engine key loads code (give a file path)`);
};

const keyType: Check = (w, who, opt) => {
  const v = plainValue(w, who, opt);
  if (!/^(PEM|DER|P12)$/i.test(v)) deny(`${who} ${opt} ${v}: only PEM, DER or P12 (ENG loads an engine)`);
};

const url: Check = (w, who) => {
  if (w) urlOperand(w, who);
};

/** An option of the allowlist: its aliases (long first), whether it takes a value, and its check. */
interface Allowed {
  names: string[];
  check?: Check;
}

const flag = (...names: string[]): Allowed => ({ names });
const valued = (check: Check, ...names: string[]): Allowed => ({ names, check });

export const CURL_ALLOWED: Allowed[] = [
  flag('--silent', '-s'),
  flag('--show-error', '-S'),
  flag('--fail', '-f'),
  flag('--fail-with-body'),
  flag('--fail-early'),
  flag('--head', '-I'),
  flag('--include', '-i'),
  flag('--show-headers'),
  flag('--location', '-L'),
  flag('--verbose', '-v'),
  flag('--insecure', '-k'),
  flag('--ipv4', '-4'),
  flag('--ipv6', '-6'),
  flag('--no-buffer', '-N'),
  flag('--globoff', '-g'),
  flag('--disable', '-q'),
  flag('--junk-session-cookies', '-j'),
  flag('--compressed'),
  flag('--tr-encoding'),
  flag('--http0.9'),
  flag('--http1.0', '-0'),
  flag('--http1.1'),
  flag('--http2'),
  flag('--http2-prior-knowledge'),
  flag('--http3'),
  flag('--http3-only'),
  flag('--retry-all-errors'),
  flag('--retry-connrefused'),
  flag('--no-progress-meter'),
  flag('--progress-bar', '-#'),
  flag('--path-as-is'),
  flag('--raw'),
  flag('--ignore-content-length'),
  flag('--tcp-nodelay'),
  flag('--tcp-fastopen'),
  flag('--no-keepalive'),
  flag('--no-sessionid'),
  flag('--no-alpn'),
  flag('--no-npn'),
  flag('--basic'),
  flag('--digest'),
  flag('--anyauth'),
  flag('--ntlm'),
  flag('--negotiate'),
  flag('--disallow-username-in-url'),
  flag('--ssl'),
  flag('--ssl-reqd'),
  flag('--ssl-allow-beast'),
  flag('--ssl-no-revoke'),
  flag('--ssl-revoke-best-effort'),
  flag('--cert-status'),
  flag('--false-start'),
  flag('--ca-native'),
  flag('--tlsv1', '-1'),
  flag('--tlsv1.0'),
  flag('--tlsv1.1'),
  flag('--tlsv1.2'),
  flag('--tlsv1.3'),
  flag('--trace-time'),
  flag('--styled-output'),
  flag('--help', '-h'),
  flag('--manual', '-M'),
  flag('--version', '-V'),
  valued(nowhere, '--output', '-o'),
  valued(nowhere, '--dump-header', '-D'),
  valued(method(false), '--request', '-X'),
  valued(header, '--header', '-H'),
  valued(writeOut, '--write-out', '-w'),
  valued(url, '--url'),
  valued(keyFile, '--cert', '-E'),
  valued(keyFile, '--key'),
  valued(keyType, '--cert-type'),
  valued(keyType, '--key-type'),
  valued(plain, '--cacert'),
  valued(plain, '--capath'),
  valued(plain, '--crlfile'),
  valued(plain, '--pinnedpubkey'),
  valued(plain, '--pass'),
  valued(plain, '--ciphers'),
  valued(plain, '--tls13-ciphers'),
  valued(plain, '--curves'),
  valued(plain, '--tls-max'),
  valued(plain, '--user-agent', '-A'),
  valued(plain, '--referer', '-e'),
  valued(plain, '--user', '-u'),
  valued(plain, '--cookie', '-b'),
  valued(plain, '--oauth2-bearer'),
  valued(plain, '--range', '-r'),
  valued(plain, '--time-cond', '-z'),
  valued(plain, '--max-time', '-m'),
  valued(plain, '--connect-timeout'),
  valued(plain, '--retry'),
  valued(plain, '--retry-delay'),
  valued(plain, '--retry-max-time'),
  valued(plain, '--max-redirs'),
  valued(plain, '--max-filesize'),
  valued(plain, '--limit-rate'),
  valued(plain, '--speed-limit', '-Y'),
  valued(plain, '--speed-time', '-y'),
  valued(plain, '--expect100-timeout'),
  valued(plain, '--keepalive-time'),
  valued(plain, '--happy-eyeballs-timeout-ms'),
  valued(plain, '--interface'),
  valued(plain, '--local-port'),
  valued(plain, '--noproxy'),
];

export const WGET_ALLOWED: Allowed[] = [
  flag('--quiet', '-q'),
  flag('--verbose', '-v'),
  flag('--no-verbose'),
  flag('--server-response', '-S'),
  flag('--spider'),
  flag('--debug', '-d'),
  flag('--no-check-certificate'),
  flag('--inet4-only', '-4'),
  flag('--inet6-only', '-6'),
  flag('--content-on-error'),
  flag('--no-proxy'),
  flag('--no-cache'),
  flag('--no-cookies'),
  flag('--https-only'),
  flag('--no-hsts'),
  flag('--no-config'),
  flag('--no-netrc'),
  flag('--ignore-length'),
  flag('--no-dns-cache'),
  flag('--no-http-keep-alive'),
  flag('--auth-no-challenge'),
  flag('--no-iri'),
  flag('--retry-connrefused'),
  flag('--show-progress'),
  flag('--help', '-h'),
  flag('--version', '-V'),
  valued(nowhere, '--output-document', '-O'),
  valued(method(true), '--method'),
  valued(header, '--header'),
  valued((w, who, opt) => {
    if (w?.value !== 'v') deny(`${who} ${opt}${w ? show(w) : ''}: only -nv`);
  }, '-n'),
  valued(keyFile, '--certificate'),
  valued(keyFile, '--private-key'),
  valued(keyType, '--certificate-type'),
  valued(keyType, '--private-key-type'),
  valued(plain, '--ca-certificate'),
  valued(plain, '--ca-directory'),
  valued(plain, '--crl-file'),
  valued(plain, '--pinnedpubkey'),
  valued(plain, '--ciphers'),
  valued(plain, '--secure-protocol'),
  valued(plain, '--user-agent', '-U'),
  valued(plain, '--referer'),
  valued(plain, '--user'),
  valued(plain, '--password'),
  valued(plain, '--http-user'),
  valued(plain, '--http-password'),
  valued(plain, '--timeout', '-T'),
  valued(plain, '--dns-timeout'),
  valued(plain, '--connect-timeout'),
  valued(plain, '--read-timeout'),
  valued(plain, '--tries', '-t'),
  valued(plain, '--wait', '-w'),
  valued(plain, '--waitretry'),
  valued(plain, '--limit-rate'),
  valued(plain, '--max-redirect'),
  valued(plain, '--retry-on-http-error'),
  valued(plain, '--compression'),
  valued(plain, '--bind-address'),
  valued(plain, '--prefer-family'),
  valued(plain, '--progress'),
  valued(plain, '--report-speed'),
  valued(plain, '--local-encoding'),
  valued(plain, '--remote-encoding'),
];

/** Why some refused options are refused, for clearer messages (anything unlisted is refused too). */
const CURL_REASONS: Record<string, string> = {
  '--doh-url': 'sends DNS queries (POST requests) to another URL',
  '--proxy': 'sends the request through another host',
  '-x': 'sends the request through another host',
  '--preproxy': 'sends the request through another host',
  '--socks4': 'sends the request through another host',
  '--socks4a': 'sends the request through another host',
  '--socks5': 'sends the request through another host',
  '--socks5-hostname': 'sends the request through another host',
  '--proxy1.0': 'sends the request through another host',
  '--connect-to': 'connects to another host than the URL names',
  '--resolve': 'connects to another address than the URL names',
  '--dns-servers': 'sends DNS queries to other servers',
  '--unix-socket': 'connects to a local socket the URL does not name',
  '--abstract-unix-socket': 'connects to a local socket the URL does not name',
  '--config': 'reads options (URLs, data, output files) from a file',
  '-K': 'reads options (URLs, data, output files) from a file',
  '--next': 'starts another request with other options',
  '--variable': 'reads files into variables',
  '--data': 'sends data',
  '-d': 'sends data',
  '--data-ascii': 'sends data',
  '--data-binary': 'sends data',
  '--data-raw': 'sends data',
  '--data-urlencode': 'sends data',
  '--json': 'sends data',
  '--form': 'sends data',
  '-F': 'sends data',
  '--form-string': 'sends data',
  '--url-query': 'changes the URL',
  '--upload-file': 'uploads a file',
  '-T': 'uploads a file',
  '--request-target': 'sends another request target than the URL',
  '--remote-name': 'writes the download to a file',
  '-O': 'writes the download to a file',
  '--remote-name-all': 'writes downloads to files',
  '--remote-header-name': 'writes the download to a file',
  '-J': 'writes the download to a file',
  '--output-dir': 'writes files',
  '--create-dirs': 'creates directories',
  '--cookie-jar': 'writes a cookie file',
  '-c': 'writes a cookie file',
  '--trace': 'writes a file',
  '--trace-ascii': 'writes a file',
  '--stderr': 'writes a file',
  '--libcurl': 'writes a file',
  '--etag-save': 'writes a file',
  '--hsts': 'writes a file',
  '--alt-svc': 'writes a file',
  '--ssl-sessions': 'writes a file',
  '--engine': 'loads a crypto engine',
  '--ntlm-wb': 'runs ntlm_auth',
  '--quote': 'sends FTP commands',
  '-Q': 'sends FTP commands',
  '--proto-redir': 'lets redirects reach other protocols',
  '--proto-default': 'changes the protocol of scheme-less URLs',
  '--haproxy-protocol': 'sends a PROXY header before the request',
  '--haproxy-clientip': 'sends a PROXY header before the request',
  '--location-trusted': 'sends the credentials to other hosts',
  '--netrc-file': 'sends credentials from a file',
};

const WGET_REASONS: Record<string, string> = {
  '--execute': 'runs wgetrc commands, which may write files or set a proxy',
  '-e': 'runs wgetrc commands, which may write files or set a proxy',
  '--config': 'reads wgetrc commands, which may write files or set a proxy',
  '--input-file': 'reads URLs from a file',
  '-i': 'reads URLs from a file',
  '--base': 'resolves URLs from a file against another URL',
  '-B': 'resolves URLs from a file against another URL',
  '--output-file': 'writes a log file',
  '-o': 'writes a log file',
  '--append-output': 'writes a log file',
  '-a': 'writes a log file',
  '--post-data': 'sends data',
  '--post-file': 'sends data',
  '--body-data': 'sends data',
  '--body-file': 'sends data',
  '--background': 'keeps running in the background',
  '-b': 'keeps running in the background',
  '--use-askpass': 'runs a program',
  '--hsts-file': 'writes a file',
  '--save-cookies': 'writes a file',
  '--rejected-log': 'writes a file',
  '--warc-file': 'writes a file',
  '--recursive': 'writes files',
  '-r': 'writes files',
  '--mirror': 'writes files',
  '-m': 'writes files',
  '--proxy-user': 'sends the request through a proxy',
  '--proxy-password': 'sends the request through a proxy',
};

function specOf(allowed: Allowed[], reasons: Record<string, string>, who: string): OptionSpec {
  let short = '';
  const long: string[] = [];
  for (const a of allowed)
    for (const n of a.names) {
      if (n.startsWith('--')) long.push(`${n.slice(2)}${a.check ? '=' : ''}`);
      else short += `${n.slice(1)}${a.check ? ':' : ''}`;
    }
  const deny = Object.fromEntries(Object.entries(reasons).map(([k, why]) => [k, `${who} ${k} ${why}`]));
  return { short, long, deny, abbreviations: false };
}

function checks(allowed: Allowed[]): Map<string, Check> {
  const m = new Map<string, Check>();
  for (const a of allowed) if (a.check) for (const n of a.names) m.set(n, a.check);
  return m;
}

const CURL_SPEC = specOf(CURL_ALLOWED, CURL_REASONS, 'curl');
const CURL_CHECKS = checks(CURL_ALLOWED);
const WGET_SPEC = specOf(WGET_ALLOWED, WGET_REASONS, 'wget');
const WGET_CHECKS = checks(WGET_ALLOWED);

const INFO = ['--help', '-h', '--manual', '-M', '--version', '-V'];

/** `--version`, `--manual` or `--help [category]` alone: print and exit. Anything else with them is refused. */
function informational(options: ParsedOption[], args: Word[], who: string): boolean {
  const info = options.find((o) => INFO.includes(o.name));
  if (!info) return false;
  const help = info.name === '--help' || info.name === '-h';
  if (args.length === 1 || (help && args.length === 2 && /^[a-z]+$/.test(args[1]!.value ?? ''))) return true;
  return deny(`${who} ${info.name} takes nothing else`);
}

const curl: Rule = (args) => {
  const p = parseOptions(args, CURL_SPEC, 'curl');
  for (const o of p.options) CURL_CHECKS.get(o.name)?.(o.value, 'curl', o.name);
  if (informational(p.options, args, 'curl')) return;
  if (!p.operands.length && !has(p, '--url')) deny('curl without a URL');
  for (const w of p.operands) urlOperand(w, 'curl');
};

const wget: Rule = (args) => {
  const p = parseOptions(args, WGET_SPEC, 'wget');
  for (const o of p.options) WGET_CHECKS.get(o.name)?.(o.value, 'wget', o.name);
  if (informational(p.options, args, 'wget')) return;
  if (!has(p, '-O', '--output-document', '--spider'))
    deny('wget saves the download to a file (add -O - to print it, or --spider)');
  if (!p.operands.length) deny('wget without a URL');
  for (const w of p.operands) urlOperand(w, 'wget');
};

export const httpRules: Record<string, Rule> = { curl, wget };
