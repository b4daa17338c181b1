"""fluid-egress: the egress proxy of Fluid sandboxes.

Runs on a libvirt host and listens on the sandboxes' isolated bridge. Sandboxes have no other way out.
Serves HTTP proxy requests: CONNECT host:port (tunnels) and absolute-URI plain HTTP (forwarded with
keep-alive). Destinations on the client's allowlist pass; anything else becomes an "ask" sent to Fluid,
which answers allow, deny or pending (no answer in time: deny). Every decision is reported as an
"event". A refused request gets a status line and body that say why and what happens next.

Control channel: stdin/stdout, newline-delimited JSON. When stdin closes the process exits at once:
no Fluid, no egress.

One proxy serves a bridge. When its address is taken by another Fluid egress proxy (another host
record for the same machine, another Fluid installation, another Fluid process), this process joins
that proxy as one more controller through its control socket (abstract, same user or root only) and
relays its control channel there; the proxy routes each sandbox address to the controller that
claimed it.
"""
import argparse
import asyncio
import errno
import ipaddress
import json
import os
import re
import socket
import struct
import sys
import threading
import time

VERSION = 2
BUF = 256 * 1024
MAX_HEAD = 64 * 1024
MAX_HEADER_LINES = 200
IDLE_TIMEOUT = 300.0
HEAD_TIMEOUT = 30.0
RESOLVE_TIMEOUT = 15.0
CONNECT_TIMEOUT = 15.0
RESPONSE_TIMEOUT = 300.0
MAX_PATH_IN_EVENT = 300
HALF_CLOSE_IDLE = 60.0
MAX_REASON_PHRASE = 200
MAX_CONTROL_BACKLOG = 16 * 1024 * 1024
JOIN_ATTEMPTS = 20
JOIN_RETRY_DELAY = 0.1

HOST_RE = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$")
NUMERIC_LABEL_RE = re.compile(r"^([0-9]+|0x[0-9a-f]*)$")
TOKEN_RE = re.compile(r"^[!#$%&'*+.^_\x60|~0-9A-Za-z-]+$")
HEX_RE = re.compile(r"^[0-9a-fA-F]{1,16}$")
PORT_RE = re.compile(r"^[0-9]{1,5}$")
LENGTH_RE = re.compile(r"^[0-9]{1,18}$")
STATUS_RE = re.compile(r"^[0-9]{3}$")
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"}


def encode(msg):
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode("ascii")


_out_lock = threading.Lock()


def write_stdout(data):
    """Write bytes to stdout; False when Fluid's end is gone."""
    with _out_lock:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return True
        except (OSError, ValueError):
            return False


def send_stdout(msg):
    if not write_stdout(encode(msg)):
        os._exit(0)


# ---------------------------------------------------------------- destinations


def parse_ip(s):
    if not s or "%" in s:
        return None
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def norm_host(h):
    """Canonical host: lower case, no trailing dot, no IPv6 brackets, canonical IPs. None if invalid."""
    if not isinstance(h, str):
        return None
    h = h.strip().lower()
    if h.startswith("["):
        if not h.endswith("]") or ":" not in h:
            return None
        ip = parse_ip(h[1:-1])
        return str(ip) if ip is not None else None
    if h.endswith("."):
        h = h[:-1]
    ip = parse_ip(h)
    if ip is not None:
        return str(ip)
    if not h or len(h) > 253 or not HOST_RE.match(h):
        return None
    if NUMERIC_LABEL_RE.match(h.rsplit(".", 1)[-1]):
        return None  # "127.1", "0x7f.1", "2130706433": numeric forms resolvers turn into IPs
    return h


def parse_port(s):
    if not PORT_RE.match(s):
        return None
    p = int(s)
    return p if 1 <= p <= 65535 else None


def split_hostport(s):
    """"host", "host:port", "[v6]", "[v6]:port" or bare "v6". Returns (host, port or 0) or None."""
    s = s.strip()
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            return None
        host, rest = s[: end + 1], s[end + 1 :]
        if rest == "":
            return host, 0
        if not rest.startswith(":"):
            return None
        port = parse_port(rest[1:])
        return (host, port) if port else None
    if s.count(":") == 1:
        host, p = s.split(":")
        port = parse_port(p)
        return (host, port) if port else None
    return s, 0


class Entry(object):
    __slots__ = ("host", "wildcard", "ports", "is_ip")

    def __init__(self, host, wildcard, ports, is_ip):
        self.host = host
        self.wildcard = wildcard
        self.ports = ports
        self.is_ip = is_ip

    def text(self):
        h = ("[%s]" % self.host) if ":" in self.host else self.host
        h = ("*." + h) if self.wildcard else h
        return h if len(self.ports) != 1 else "%s:%d" % (h, self.ports[0])

    def matches(self, host, port):
        if port not in self.ports:
            return False
        if host == self.host:
            return not self.wildcard
        return self.wildcard and host.endswith("." + self.host)


def parse_entry(text):
    """An allowlist entry: host, host:port, *.domain[:port], IP, [IPv6]:port. None if invalid."""
    if not isinstance(text, str):
        return None
    s = text.strip().lower()
    wildcard = s.startswith("*.")
    if wildcard:
        s = s[2:]
    hp = split_hostport(s)
    if hp is None:
        return None
    host = norm_host(hp[0])
    if host is None:
        return None
    is_ip = parse_ip(host) is not None
    if wildcard and is_ip:
        return None
    ports = (hp[1],) if hp[1] else (80, 443)
    return Entry(host, wildcard, ports, is_ip)


def find_match(entries, host, port):
    for e in entries:
        if e.matches(host, port):
            return e
    return None


def is_local_address(ip):
    """True when ip is one of this host's own addresses (the kernel picks it as its own source)."""
    fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect((str(ip), 9))
        src = parse_ip(s.getsockname()[0].split("%")[0])
        return src == ip
    except OSError:
        return False
    finally:
        s.close()

# ---------------------------------------------------------------- address classes
#
# Where the proxy never connects on its own accord, even for an allowlisted NAME: a name that
# resolves to one of these is refused. Only an allowlist entry naming that exact IP address (which a
# person adds, with a warning) opens one, and nothing ever opens the proxy's own port.

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::254")
)
THIS_NET = ipaddress.ip_network("0.0.0.0/8")
PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10")
)
NAT64_NETS = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))
IPV4_COMPAT = ipaddress.ip_network("::/96")

# strictest first
KIND_TEXT = (
    ("metadata", "a cloud metadata address"),
    ("loopback", "a loopback address"),
    ("link-local", "a link-local address"),
    ("not-unicast", "not a unicast address"),
    ("private", "a private network address"),
)


def embedded_v4(ip):
    """IPv4 addresses an IPv6 address carries (IPv4-compatible, 6to4, Teredo, NAT64)."""
    if ip.version != 6:
        return []
    out = []
    if ip in IPV4_COMPAT and int(ip) > 1:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    for net in NAT64_NETS:
        if ip in net:
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def _kind1(ip):
    if ip in METADATA:
        return "metadata"
    if ip in NAT64_NETS[0]:
        return None  # the well-known NAT64 prefix (DNS64 networks): judged by the IPv4 address it carries
    if ip in NAT64_NETS[1]:
        return "private"  # local-use NAT64 (RFC 8215): a network of its own, and the IPv4 address it carries
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not-unicast"
    if ip.version == 4 and (ip in THIS_NET or ip == ipaddress.IPv4Address("255.255.255.255")):
        return "not-unicast"
    for net in PRIVATE_NETS:
        if ip in net:
            return "private"
    return None


def address_kind(ip):
    """'metadata', 'loopback', 'link-local', 'not-unicast', 'private' or None (an ordinary public
    address). An IPv6 address that embeds an IPv4 one is judged by both; the strictest kind wins."""
    kinds = set([_kind1(ip)] + [_kind1(v4) for v4 in embedded_v4(ip)])
    for kind, _text in KIND_TEXT:
        if kind in kinds:
            return kind
    return None


def kind_text(kind):
    for k, text in KIND_TEXT:
        if k == kind:
            return text
    return kind


# ---------------------------------------------------------------- what a refused client is told
#
# The reason phrase carries the message itself: tools print the status line (apt: "403  Fluid: ...",
# curl -v, pip's "Tunnel connection failed: 403 Fluid: ..."), and for CONNECT the body is often not
# shown at all. The body says the same at more length.

PHRASE_RE = re.compile(r"[^\x21-\x7e]+")


def reason_phrase(text):
    """One line of printable ASCII, at most MAX_REASON_PHRASE characters."""
    s = PHRASE_RE.sub(" ", text).strip()
    if len(s) > MAX_REASON_PHRASE:
        s = s[: MAX_REASON_PHRASE - 3].rstrip() + "..."
    return s or "Fluid"


def refusal(ev, client_ip):
    """(status, reason phrase, body lines) for a request the proxy does not carry out."""
    host = ev.get("host") or ""
    dest = fmt_hostport(host, ev.get("port") or 0) if host else "this destination"
    r = ev.get("reason")
    aid = ev.get("approvalId")
    note = ev.get("note")
    status = ev.get("status") or 403
    if r == "pending" and aid:
        return (
            403,
            "Fluid: approval %s pending for %s - a person must approve" % (aid, dest),
            [
                "%s is not on this sandbox's egress allowlist." % dest,
                "Fluid raised approval request %s for it; a person must approve it in Fluid." % aid,
                "Nothing was sent to %s. Retry once it is approved." % dest,
            ],
        )
    if r == "pending":
        return (
            403,
            "Fluid: %s needs approval - a person must approve" % dest,
            ["%s is not on this sandbox's egress allowlist; a person must approve it in Fluid." % dest],
        )
    if r == "denied":
        lines = ["%s is not on this sandbox's egress allowlist, and the request was denied." % dest]
        if aid:
            lines.append("Approval request %s was denied." % aid)
        if note:
            lines.append("Note: %s" % note)
        return (
            403,
            "Fluid: %s denied%s" % (dest, (" (approval %s)" % aid) if aid else ""),
            lines,
        )
    if r == "timeout":
        return (
            403,
            "Fluid: no decision for %s in time - a person must approve, then retry" % dest,
            [
                "%s is not on this sandbox's egress allowlist." % dest,
                "An approval request was raised%s but not answered in time." % ((" (%s)" % aid) if aid else ""),
                "Retry once a person has approved it in Fluid.",
            ],
        )
    if r == "blocked":
        why = ev.get("error") or "a blocked address"
        return (
            403,
            "Fluid: %s blocked - %s" % (dest, why),
            [
                "%s is blocked: %s." % (dest, why),
                "Fluid never lets a sandbox reach loopback, link-local or cloud metadata addresses,",
                "the Fluid host's own addresses or (by default) private networks through a name,",
                "even an allowlisted one. A person can allow one exact IP address:port in Fluid.",
            ],
        )
    if r == "unknown-client":
        return (
            403,
            "Fluid: %s is not a sandbox this egress proxy serves" % client_ip,
            [
                "The egress proxy on this Fluid host has no sandbox at %s, so %s is not reachable." % (client_ip, dest),
                "This is a problem of Fluid, not of this request: Fluid reports it as an egress",
                "problem of the sandbox (see the sandbox in Fluid, or `fluid doctor`).",
            ],
        )
    msg = ev.get("error") or "request refused"
    return (status, "Fluid: %s" % msg, [msg[:1].upper() + msg[1:] + "."])


def plain_response(status, phrase, lines, why, approval=None):
    body = ("Fluid egress proxy: " + "\n".join(lines) + "\n").encode("utf-8")
    extra = ("X-Fluid-Approval: %s\r\n" % reason_phrase(approval)) if approval else ""
    head = (
        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        "Connection: close\r\nProxy-Connection: close\r\nX-Fluid-Egress: %s\r\n%s\r\n"
        % (status, reason_phrase(phrase), len(body), why, extra)
    )
    return head.encode("latin-1") + body


def simple_response(status, message, why):
    """A refusal that is not about policy (malformed request, upstream failure)."""
    return plain_response(status, "Fluid: " + message, [message[:1].upper() + message[1:] + "."], why)


# ---------------------------------------------------------------- HTTP helpers


class BadRequest(Exception):
    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


class UpstreamError(Exception):
    """The destination could not be reached or answered badly. kind: dns, dns-timeout, refused,
    timeout, unreachable, connect, response."""

    def __init__(self, message, kind="response", status=502):
        Exception.__init__(self, message)
        self.message = message
        self.kind = kind
        self.status = status


class Blocked(Exception):
    pass


class Meter(object):
    __slots__ = ("n", "last")

    def __init__(self):
        self.n = 0
        self.last = time.monotonic()


def connect_failure(host, port, addr, e):
    """UpstreamError for a failed connection attempt to addr (host's address)."""
    dest = fmt_hostport(host, port)
    shown = dest if str(addr) == host else "%s (%s)" % (dest, addr)
    if isinstance(e, asyncio.TimeoutError):
        return UpstreamError("no answer from %s within %gs (connect timed out)" % (shown, CONNECT_TIMEOUT), "timeout", 504)
    if isinstance(e, ConnectionRefusedError):
        return UpstreamError("%s refused the connection" % shown, "refused", 502)
    code = getattr(e, "errno", None)
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return UpstreamError("%s is unreachable from the Fluid host (%s)" % (shown, os.strerror(code)), "unreachable", 502)
    if code == errno.ETIMEDOUT:
        return UpstreamError("no answer from %s (connect timed out)" % shown, "timeout", 504)
    return UpstreamError("cannot connect to %s: %s" % (shown, getattr(e, "strerror", None) or e), "connect", 502)


def dns_failure(host, e):
    if isinstance(e, asyncio.TimeoutError):
        return UpstreamError("DNS lookup of %s timed out after %gs" % (host, RESOLVE_TIMEOUT), "dns-timeout", 504)
    text = getattr(e, "strerror", None) or str(e) or "no answer"
    return UpstreamError("DNS lookup of %s failed: %s" % (host, text), "dns", 502)


async def read_head(reader, first_timeout, rest_timeout):
    """Lines of one HTTP head (request or response), without line ends. None on EOF/idle before a byte."""
    lines = []
    total = 0
    blanks = 0
    while True:
        timeout = first_timeout if not lines else rest_timeout
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        except asyncio.TimeoutError:
            if not lines:
                return None
            raise BadRequest(408, "timed out reading the request head")
        except (ValueError, asyncio.LimitOverrunError):
            raise BadRequest(431, "header line too long")
        if not line:
            if lines:
                raise asyncio.IncompleteReadError(b"", None)
            return None
        total += len(line)
        if total > MAX_HEAD:
            raise BadRequest(431, "header too large")
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        s = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if not s:
            if not lines:
                blanks += 1
                if blanks > 8:
                    raise BadRequest(400, "empty request")
                continue
            return lines
        lines.append(s.decode("latin-1"))
        if len(lines) > MAX_HEADER_LINES:
            raise BadRequest(431, "too many header lines")


def parse_headers(lines):
    out = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise BadRequest(400, "obsolete header line folding is not supported")
        name, sep, value = line.partition(":")
        if not sep or not TOKEN_RE.match(name):
            raise BadRequest(400, "malformed header line")
        out.append((name, value.strip(" \t")))
    return out


def header_values(headers, name):
    return [v for (k, v) in headers if k.lower() == name]


def header_tokens(headers, name):
    toks = set()
    for v in header_values(headers, name):
        for t in v.split(","):
            t = t.strip().lower()
            if t:
                toks.add(t)
    return toks


def body_framing(headers, what, response=False):
    """('chunked', 0), ('length', n), ('none', 0) or, for a response, ('eof', 0). Raises BadRequest
    when the framing is ambiguous (request smuggling) or unsupported."""
    te = header_values(headers, "transfer-encoding")
    cl = header_values(headers, "content-length")
    if te:
        if cl and not response:
            raise BadRequest(400, what + " has both Transfer-Encoding and Content-Length")
        codings = [c.strip().lower() for c in ",".join(te).split(",") if c.strip()]
        if codings and codings[-1] == "chunked" and (response or codings == ["chunked"]):
            return "chunked", 0
        if response:
            return "eof", 0  # RFC 9112 6.3: not chunked last means read until close
        raise BadRequest(501, "Transfer-Encoding other than chunked is not supported")
    if cl:
        vals = set(v.strip() for v in ",".join(cl).split(","))
        if len(vals) != 1:
            raise BadRequest(400, what + " has conflicting Content-Length values")
        v = vals.pop()
        if not LENGTH_RE.match(v):
            raise BadRequest(400, what + " has an invalid Content-Length")
        n = int(v)
        return ("length", n) if n > 0 else ("none", 0)
    return "none", 0


async def write_all(writer, data, meter):
    writer.write(data)
    meter.n += len(data)
    await writer.drain()


async def copy_exact(reader, writer, n, meter):
    while n > 0:
        data = await reader.read(min(BUF, n))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        n -= len(data)
        await write_all(writer, data, meter)


async def copy_until_eof(reader, writer, meter):
    while True:
        data = await reader.read(BUF)
        if not data:
            return
        await write_all(writer, data, meter)


async def copy_chunked(reader, writer, meter):
    """Relay a chunked body verbatim, parsing only enough to find its end."""
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        size_s = line.split(b";", 1)[0].strip().decode("latin-1")
        if not HEX_RE.match(size_s):
            raise UpstreamError("malformed chunk size")
        size = int(size_s, 16)
        await write_all(writer, line, meter)
        if size == 0:
            while True:
                t = await reader.readline()
                if not t.endswith(b"\n"):
                    raise asyncio.IncompleteReadError(t, None)
                await write_all(writer, t, meter)
                if t in (b"\r\n", b"\n"):
                    return
        await copy_exact(reader, writer, size, meter)
        crlf = await reader.readline()
        if crlf not in (b"\r\n", b"\n"):
            raise UpstreamError("malformed chunk end")
        await write_all(writer, crlf, meter)


async def pump(reader, writer, meter):
    try:
        while True:
            data = await reader.read(BUF)
            if not data:
                break
            writer.write(data)
            meter.n += len(data)
            meter.last = time.monotonic()
            await writer.drain()
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def splice(a_reader, a_writer, b_reader, b_writer, up, down):
    """Bytes both ways until both sides are done or one fails. A half-close is passed on; the other
    direction may then go on, but not idle for more than HALF_CLOSE_IDLE seconds (a peer that vanished
    without a trace must not pin the tunnel forever)."""
    t1 = asyncio.ensure_future(pump(a_reader, b_writer, up))
    t2 = asyncio.ensure_future(pump(b_reader, a_writer, down))
    try:
        done, pending = await asyncio.wait((t1, t2), return_when=asyncio.FIRST_COMPLETED)
        if pending and not any(t.cancelled() or t.exception() is not None for t in done):
            other = pending.pop()
            meter = down if other is t2 else up
            while not other.done():
                await asyncio.wait((other,), timeout=min(5.0, HALF_CLOSE_IDLE))
                if time.monotonic() - meter.last > HALF_CLOSE_IDLE:
                    break
    finally:
        for t in (t1, t2):
            if not t.done():
                t.cancel()
    for t in (t1, t2):
        if t.done() and not t.cancelled():
            t.exception()


def discard(task):
    """Cancel a task we no longer care about without leaving its exception unretrieved."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


def close_writer(w):
    if w is None:
        return
    try:
        w.close()
    except (OSError, RuntimeError):
        pass


def fmt_hostport(host, port):
    return ("[%s]:%d" % (host, port)) if ":" in host else ("%s:%d" % (host, port))


# ---------------------------------------------------------------- controllers


def str_or_none(v):
    return v if isinstance(v, str) and v else None


class Controller(object):
    """One Fluid process (one host record of one installation) that feeds this proxy the addresses
    of its sandboxes with their allowlists, and answers the asks for them. The first one started the
    proxy and talks over stdin/stdout; others join through the control socket."""

    def __init__(self, proxy, name, write, closer=None):
        self.proxy = proxy
        self.name = name
        self.write = write
        self.closer = closer
        self.allow = {}
        self.sandboxes = {}
        self.config_at = 0
        self.alive = True
        self.report = None

    def send(self, msg):
        if not self.alive:
            return
        if not self.write(encode(msg)):
            self.proxy.controller_gone(self)

    def close(self):
        if self.closer is not None:
            close_writer(self.closer)


def socket_write(writer):
    def write(data):
        t = writer.transport
        if t is None or t.is_closing() or t.get_write_buffer_size() > MAX_CONTROL_BACKLOG:
            return False
        writer.write(data)
        return True

    return write


def control_address(listen, port):
    """The control socket's name: abstract (no file, gone with the process), one per bridge address."""
    return "\0fluid-egress/" + fmt_hostport(listen, port)


def peer_uid(writer):
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[1]
    except (OSError, AttributeError, struct.error):
        return -1


# ---------------------------------------------------------------- the proxy


class Pending(object):
    __slots__ = ("id", "key", "future", "timer", "ctl", "sandbox", "method")

    def __init__(self, aid, key, future, ctl, sandbox, method):
        self.id = aid
        self.key = key
        self.future = future
        self.timer = None
        self.ctl = ctl
        self.sandbox = sandbox
        self.method = method


class Active(object):
    """An open tunnel or a response in flight, so a revoked destination can be cut off."""

    __slots__ = ("client", "sandbox", "host", "port", "via", "ev", "writers")

    def __init__(self, client, sandbox, host, port, via, ev, writers):
        self.client = client
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self.via = via
        self.ev = ev
        self.writers = writers


class Upstream(object):
    __slots__ = ("reader", "writer", "key", "reusable")

    def __init__(self, reader, writer, key):
        self.reader = reader
        self.writer = writer
        self.key = key
        self.reusable = False


class Proxy(object):
    def __init__(self, args, loop):
        self.loop = loop
        self.args = args
        self.main = Controller(self, "stdin", write_stdout)
        self.controllers = [self.main]
        self.routes = {}
        self.allow_for = {}
        self.configured = asyncio.Event()
        self.stopping = loop.create_future()
        self.pending = {}
        self.pending_by_id = {}
        self.tasks = set()
        self.active = set()
        self.seq = 0
        self.config_clock = 0
        self.prefix = os.urandom(3).hex()
        self.listen_ip = None
        self.listen_port = 0
        self.last_control = time.monotonic()
        self.last_config_raw = None
        self.relay = None

    def next_id(self, kind):
        self.seq += 1
        return "%s%s-%d" % (kind, self.prefix, self.seq)

    def ready_message(self, shared):
        return {
            "type": "ready",
            "listen": fmt_hostport(str(self.listen_ip), self.listen_port),
            "pid": os.getpid(),
            "version": VERSION,
            "python": "%d.%d.%d" % sys.version_info[:3],
            "shared": shared,
        }

    # ------------------------------------------------------------ control channel

    def on_stdin(self, raw):
        self.last_control = time.monotonic()
        if self.relay is not None:
            self.relay.write(raw)
            return
        self.on_control(self.main, raw)

    def on_control(self, ctl, raw):
        try:
            msg = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            ctl.send({"type": "error", "message": "control message is not JSON"})
            return
        if not isinstance(msg, dict):
            ctl.send({"type": "error", "message": "control message is not an object"})
            return
        t = msg.get("type")
        if t == "config":
            if ctl is self.main:
                self.last_config_raw = raw if raw.endswith(b"\n") else raw + b"\n"
            self.apply_config(ctl, msg)
        elif t == "decision":
            p = self.pending_by_id.get(msg.get("id"))
            if p is not None and p.ctl is ctl:
                reason = {"allow": "approved", "pending": "pending"}.get(msg.get("decision"), "denied")
                self.resolve(p, reason, str_or_none(msg.get("approval")), str_or_none(msg.get("note")))
        elif t == "ping":
            ctl.send({"type": "pong", "id": msg.get("id")})
        elif t == "status":
            ctl.send(self.status(msg.get("id")))
        elif t == "shutdown":
            self.controller_gone(ctl)
        elif t == "hello":
            pass
        else:
            ctl.send({"type": "error", "message": "unknown control message type %r" % (t,)})

    def status(self, sid):
        return {
            "type": "status",
            "id": sid,
            "running": True,
            "listen": fmt_hostport(str(self.listen_ip), self.listen_port),
            "pid": os.getpid(),
            "version": VERSION,
            "controllers": len(self.controllers),
            "clients": dict((ip, r[1]) for ip, r in self.routes.items()),
        }

    def apply_config(self, ctl, msg):
        allow_in = msg.get("allow") or {}
        sb_in = msg.get("sandboxes") or {}
        if not isinstance(allow_in, dict) or not isinstance(sb_in, dict):
            ctl.send({"type": "error", "message": "config: allow and sandboxes must be objects"})
            return
        allow = {}
        bad = []
        for ip_s, entries in allow_in.items():
            ip = parse_ip(ip_s)
            if ip is None or not isinstance(entries, list):
                bad.append(str(ip_s))
                continue
            parsed = []
            for e in entries:
                pe = parse_entry(e)
                if pe is None:
                    bad.append("%s: %r" % (ip_s, e))
                else:
                    parsed.append(pe)
            allow[str(ip)] = parsed
        sandboxes = {}
        for ip_s, sid in sb_in.items():
            ip = parse_ip(ip_s)
            if ip is None or not isinstance(sid, str) or not sid:
                bad.append(str(ip_s))
                continue
            sandboxes[str(ip)] = sid
        ctl.allow = allow
        ctl.sandboxes = sandboxes
        self.config_clock += 1
        ctl.config_at = self.config_clock
        if bad:
            ctl.send({"type": "error", "message": "config: ignored invalid entries: " + ", ".join(bad[:20])})
        self.reroute()
        served = len(ctl.report[0]) if ctl.report else 0
        ctl.send({"type": "configured", "seq": msg.get("seq"), "clients": served})
        if ctl is self.main:
            self.configured.set()

    def reroute(self):
        """Recompute who serves each sandbox address, tell controllers what they serve, and apply the
        change to waiting asks and open streams (a revoked destination is cut off at once)."""
        routes = {}
        conflicts = {}
        for ctl in self.controllers:
            for ip, sid in ctl.sandboxes.items():
                cur = routes.get(ip)
                if cur is None:
                    routes[ip] = (ctl, sid)
                elif cur[1] != sid:
                    conflicts.setdefault(ctl, []).append((ip, sid))
        allow_for = {}
        for ip, (_owner, sid) in routes.items():
            newest = None
            for ctl in self.controllers:
                if ctl.sandboxes.get(ip) == sid and (newest is None or ctl.config_at > newest.config_at):
                    newest = ctl
            allow_for[ip] = newest.allow.get(ip, []) if newest is not None else []
        self.routes = routes
        self.allow_for = allow_for
        for ctl in list(self.controllers):
            served = tuple(sorted(ip for ip, sid in ctl.sandboxes.items() if routes[ip][1] == sid))
            conf = tuple(sorted(conflicts.get(ctl, ())))
            if (served, conf) != ctl.report:
                ctl.report = (served, conf)
                ctl.send(
                    {
                        "type": "routes",
                        "served": list(served),
                        "conflicts": [
                            {"client": ip, "sandbox": sid, "servedAs": routes[ip][1]} for ip, sid in conf
                        ],
                    }
                )
        for p in list(self.pending.values()):
            client, host, port = p.key
            route = routes.get(client)
            if route is None or route[1] != p.sandbox:
                self.resolve(p, "unknown-client")
            elif find_match(allow_for.get(client, ()), host, port) is not None:
                self.resolve(p, "allowlist")
            elif route[0] is not p.ctl:
                p.ctl = route[0]
                self.send_ask(p)
        for a in list(self.active):
            route = routes.get(a.client)
            if route is None or route[1] != a.sandbox:
                self.cut(a, "closed: the sandbox is no longer served by this proxy")
            elif a.via == "allowlist" and find_match(allow_for.get(a.client, ()), a.host, a.port) is None:
                self.cut(a, "closed: %s was taken off the allowlist" % fmt_hostport(a.host, a.port))

    def cut(self, a, why):
        self.active.discard(a)
        a.ev["error"] = why
        for w in a.writers:
            try:
                if w.transport is not None:
                    w.transport.abort()
            except (OSError, RuntimeError, AttributeError):
                pass

    def controller_gone(self, ctl):
        if not ctl.alive:
            return
        ctl.alive = False
        if ctl in self.controllers:
            self.controllers.remove(ctl)
        if ctl is self.main:
            # the process that started the proxy is gone: so is this proxy (the others notice their
            # control socket closing, and one of them starts a new one)
            if not self.stopping.done():
                self.stopping.set_result(None)
            return
        ctl.close()
        self.reroute()

    def report_event(self, ev):
        route = self.routes.get(ev["client"])
        if route is not None and route[0].alive:
            route[0].send(ev)
            return
        # nobody serves this address: every controller hears of it (one of them may own the sandbox)
        for ctl in list(self.controllers):
            ctl.send(ev)

    async def handle_controller(self, reader, writer):
        """A Fluid process joins through the control socket: same user or root only."""
        uid = peer_uid(writer)
        here = fmt_hostport(str(self.listen_ip), self.listen_port)
        ctl = None
        try:
            if uid not in (os.getuid(), 0):
                writer.write(
                    encode(
                        {
                            "type": "error",
                            "message": "the egress proxy on %s runs as uid %d and refuses a Fluid running as uid %d; "
                            "connect to this host as the same user" % (here, os.getuid(), uid),
                        }
                    )
                )
                return
            try:
                hello = json.loads((await asyncio.wait_for(reader.readline(), 10)).decode("utf-8"))
            except (ValueError, UnicodeDecodeError, asyncio.TimeoutError):
                return
            if not isinstance(hello, dict) or hello.get("type") != "hello":
                return
            if hello.get("version") != VERSION:
                writer.write(
                    encode(
                        {
                            "type": "error",
                            "message": "the egress proxy on %s (pid %d) speaks protocol version %d and this Fluid speaks %r; "
                            "run the same Fluid version everywhere that uses this host" % (here, os.getpid(), VERSION, hello.get("version")),
                        }
                    )
                )
                return
            if hello.get("probe") is True:
                writer.write(encode(self.status("probe")))
                await writer.drain()
                return
            ctl = Controller(self, "socket", socket_write(writer), writer)
            self.controllers.append(ctl)
            ctl.send(self.ready_message(True))
            while ctl.alive:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    break
                if not line:
                    break
                self.on_control(ctl, line)
        except (ConnectionError, OSError):
            pass
        finally:
            if ctl is not None:
                self.controller_gone(ctl)
            close_writer(writer)

    def resolve(self, p, reason, approval=None, note=None):
        if self.pending.get(p.key) is p:
            del self.pending[p.key]
        self.pending_by_id.pop(p.id, None)
        if p.timer is not None:
            p.timer.cancel()
        if not p.future.done():
            p.future.set_result((reason, approval, note))

    def send_ask(self, p):
        client, host, port = p.key
        p.ctl.send(
            {
                "type": "ask",
                "id": p.id,
                "client": client,
                "sandbox": p.sandbox,
                "host": host,
                "port": port,
                "method": p.method,
            }
        )

    async def ask(self, client, route, host, port, method):
        key = (client, host, port)
        p = self.pending.get(key)
        if p is None:
            p = Pending(self.next_id("a"), key, self.loop.create_future(), route[0], route[1], method)
            p.timer = self.loop.call_later(self.args.ask_timeout, self.resolve, p, "timeout")
            self.pending[key] = p
            self.pending_by_id[p.id] = p
            self.send_ask(p)
        reason, approval, note = await asyncio.shield(p.future)
        return reason, approval, note, p.id

    # ------------------------------------------------------------ policy

    def check_address(self, ip, port):
        """(kind, why) when the proxy will not connect to ip:port unless that exact address is
        allowlisted (kind "self": never), or None."""
        if port == self.listen_port and (ip == self.listen_ip or is_local_address(ip)):
            return "self", "it is the proxy itself"
        if self.args.allow_loopback and ip.is_loopback:
            return None
        kind = address_kind(ip)
        if kind is not None and kind != "private":
            return kind, "it is " + kind_text(kind)
        for a in [ip] + embedded_v4(ip):
            if is_local_address(a):
                return "host", "it is an address of the Fluid host itself"
        if kind == "private" and not self.args.allow_private:
            return kind, "it is " + kind_text(kind)
        return None

    async def authorize(self, client, host, port, method, ev):
        """Fills ev (decision, reason, sandbox, askId, approvalId); returns the "explicit IP" flag,
        or None when the request is refused."""
        route = self.routes.get(client)
        ev["sandbox"] = route[1] if route is not None else None
        if route is None:
            ev["reason"] = "unknown-client"
            return None
        entry = find_match(self.allow_for.get(client, ()), host, port)
        ip = parse_ip(host)
        if ip is not None:
            chk = self.check_address(ip, port)
            # a private address may be asked for (a person then sees the exact address); the others
            # open only for an exact allowlist entry, and the proxy itself never
            if chk is not None and (chk[0] == "self" or (entry is None and chk[0] != "private")):
                ev["reason"] = "blocked"
                ev["error"] = chk[1]
                return None
        if entry is not None:
            ev["decision"] = "allow"
            ev["reason"] = "allowlist"
            return ip is not None
        reason, approval, note, aid = await self.ask(client, route, host, port, method)
        ev["askId"] = aid
        ev["reason"] = reason
        if approval:
            ev["approvalId"] = approval
        if note:
            ev["note"] = note
        if reason in ("approved", "allowlist"):
            ev["decision"] = "allow"
            return ip is not None
        return None

    async def open_upstream(self, host, port, explicit_ip):
        ip = parse_ip(host)
        if ip is not None:
            addrs = [ip]
        else:
            try:
                infos = await asyncio.wait_for(
                    self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
                    RESOLVE_TIMEOUT,
                )
            except (OSError, asyncio.TimeoutError) as e:
                raise dns_failure(host, e)
            addrs = []
            for info in infos:
                a = parse_ip(info[4][0].split("%")[0])
                if a is not None and a not in addrs:
                    addrs.append(a)
        usable = []
        why = None
        for a in addrs:
            chk = self.check_address(a, port)
            if chk is not None and explicit_ip and chk[0] != "self":
                chk = None
            if chk is None:
                usable.append(a)
            elif why is None:
                if ip is None:
                    why = "%s resolves to %s, %s" % (host, a, chk[1][len("it is "):])
                else:
                    why = chk[1]
        if not usable:
            raise Blocked(why or ("%s has no address" % host))
        failure = None
        for a in usable:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(str(a), port, limit=BUF), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as e:
                failure = connect_failure(host, port, a, e)
                continue
            sock = w.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            return r, w
        raise failure

    # ------------------------------------------------------------ clients

    async def handle(self, reader, writer):
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await Client(self, reader, writer).run()
        finally:
            self.tasks.discard(task)


class Client(object):
    def __init__(self, proxy, reader, writer):
        self.proxy = proxy
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("", 0)
        ip = parse_ip(str(peer[0]).split("%")[0])
        self.ip = str(ip) if ip is not None else str(peer[0])
        self.up = None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def sandbox(self):
        route = self.proxy.routes.get(self.ip)
        return route[1] if route is not None else None

    async def run(self):
        try:
            while True:
                try:
                    lines = await read_head(self.reader, IDLE_TIMEOUT, HEAD_TIMEOUT)
                except BadRequest as e:
                    self.bad_request_event(e, "", "", 0)
                    await self.reply(simple_response(e.status, e.message, "bad-request"))
                    break
                if lines is None:
                    break
                if not await self.request(lines):
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except Exception as e:  # a bug: report it, keep serving others
            self.proxy.main.send({"type": "error", "message": "internal error serving %s: %r" % (self.ip, e)})
        finally:
            self.drop_upstream()
            close_writer(self.writer)

    async def reply(self, data):
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    def drop_upstream(self):
        if self.up is not None:
            close_writer(self.up.writer)
            self.up = None

    def bad_request_event(self, e, method, host, port):
        self.proxy.report_event(
            {
                "type": "event",
                "id": self.proxy.next_id("r"),
                "client": self.ip,
                "sandbox": self.sandbox(),
                "host": host,
                "port": port,
                "method": method,
                "decision": "deny",
                "reason": "bad-request",
                "status": e.status,
                "error": e.message,
                "bytesUp": 0,
                "bytesDown": 0,
                "durationMs": 0,
            }
        )

    async def request(self, lines):
        """Serve one request. Returns True when the client connection may carry another request."""
        started = time.monotonic()
        up = Meter()
        down = Meter()
        ev = {
            "type": "event",
            "id": self.proxy.next_id("r"),
            "client": self.ip,
            "sandbox": self.sandbox(),
            "host": "",
            "port": 0,
            "method": "",
            "decision": "deny",
            "reason": "bad-request",
        }
        try:
            return await self.serve(lines, ev, up, down)
        finally:
            ev["bytesUp"] = up.n
            ev["bytesDown"] = down.n
            ev["durationMs"] = int((time.monotonic() - started) * 1000)
            self.proxy.report_event(ev)

    async def serve(self, lines, ev, up, down):
        try:
            parts = lines[0].split(" ")
            if len(parts) != 3 or not TOKEN_RE.match(parts[0]):
                raise BadRequest(400, "malformed request line")
            method, target, version = parts
            ev["method"] = method[:32]
            if version not in ("HTTP/1.0", "HTTP/1.1"):
                raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are supported")
            headers = parse_headers(lines[1:])
            if method == "CONNECT":
                hp = split_hostport(target)
                if hp is None or not hp[1]:
                    raise BadRequest(400, "CONNECT needs host:port")
                host = norm_host(hp[0])
                if host is None:
                    raise BadRequest(400, "invalid host in CONNECT")
                ev["host"], ev["port"] = host, hp[1]
                path = None
            else:
                host, port, path = self.parse_absolute(target)
                ev["host"], ev["port"] = host, port
                ev["path"] = path[:MAX_PATH_IN_EVENT]
                framing = body_framing(headers, "the request")
        except BadRequest as e:
            ev["status"] = e.status
            ev["error"] = e.message
            await self.reply(simple_response(e.status, e.message, "bad-request"))
            return False

        host, port = ev["host"], ev["port"]
        explicit = await self.proxy.authorize(self.ip, host, port, method, ev)
        if ev["decision"] != "allow":
            await self.refuse(ev)
            return False

        if method == "CONNECT":
            return await self.tunnel(host, port, bool(explicit), ev, up, down)
        return await self.forward(method, host, port, path, version, headers, framing, bool(explicit), ev, up, down)

    async def refuse(self, ev):
        status, phrase, lines = refusal(ev, self.ip)
        ev["status"] = status
        await self.reply(plain_response(status, phrase, lines, ev["reason"], ev.get("approvalId")))

    def parse_absolute(self, target):
        low = target[:8].lower()
        if target.startswith("/"):
            raise BadRequest(400, "this is an HTTP proxy: send absolute URIs (http://host/path) or CONNECT")
        if low.startswith("https://"):
            raise BadRequest(400, "use CONNECT for https:// destinations")
        if not low.startswith("http://"):
            raise BadRequest(400, "only http:// URIs and CONNECT are supported")
        rest = target[7:]
        cut = len(rest)
        for ch in "/?#":
            i = rest.find(ch)
            if 0 <= i < cut:
                cut = i
        authority, path = rest[:cut], rest[cut:]
        if "#" in path:
            path = path.split("#", 1)[0]
        if not path.startswith("/"):
            path = "/" + path
        if "@" in authority:
            raise BadRequest(400, "user information in the URI is not supported")
        hp = split_hostport(authority)
        if hp is None or (hp[0].count(":") > 1 and not hp[0].startswith("[")):
            raise BadRequest(400, "invalid host in the URI")
        host = norm_host(hp[0])
        if host is None:
            raise BadRequest(400, "invalid host in the URI")
        return host, hp[1] or 80, path

    async def connect_upstream(self, host, port, explicit, ev):
        """Open an upstream connection or answer the client with an error. Returns (reader, writer) or None."""
        try:
            return await self.proxy.open_upstream(host, port, explicit)
        except Blocked as e:
            ev["decision"] = "deny"
            ev["reason"] = "blocked"
            ev["error"] = str(e)
            await self.refuse(ev)
        except UpstreamError as e:
            ev["error"] = e.message
            ev["failure"] = e.kind
            ev["status"] = e.status
            await self.reply(simple_response(e.status, e.message, "upstream-error"))
        return None

    def track(self, host, port, ev, writers):
        a = Active(self.ip, ev.get("sandbox"), host, port, "allowlist" if ev["reason"] == "allowlist" else "approved", ev, writers)
        self.proxy.active.add(a)
        return a

    async def tunnel(self, host, port, explicit, ev, up, down):
        self.drop_upstream()
        conn = await self.connect_upstream(host, port, explicit, ev)
        if conn is None:
            return False
        ur, uw = conn
        a = self.track(host, port, ev, [self.writer, uw])
        try:
            ev["status"] = 200
            self.writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await self.writer.drain()
            await splice(self.reader, self.writer, ur, uw, up, down)
        except (ConnectionError, OSError) as e:
            ev.setdefault("error", str(e))
        finally:
            self.proxy.active.discard(a)
            close_writer(uw)
        return False

    async def forward(self, method, host, port, path, version, headers, framing, explicit, ev, up, down):
        conn_tokens = header_tokens(headers, "connection") | header_tokens(headers, "proxy-connection")
        if version == "HTTP/1.1":
            client_keep = "close" not in conn_tokens
        else:
            client_keep = "keep-alive" in conn_tokens
        upgrade = header_values(headers, "upgrade") if "upgrade" in conn_tokens else []
        drop = HOP_BY_HOP | conn_tokens
        authority = fmt_hostport(host, port) if port != 80 else (("[%s]" % host) if ":" in host else host)
        out = ["%s %s %s" % (method, path, version), "Host: " + authority]
        for k, v in headers:
            lk = k.lower()
            if lk in drop or lk == "host":
                continue
            out.append("%s: %s" % (k, v))
        if upgrade:
            out.append("Connection: Upgrade")
            out.append("Upgrade: " + upgrade[0])
        elif not client_keep:
            out.append("Connection: close")
        head = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        dest = fmt_hostport(host, port)

        key = (host, port)
        attempts = 2 if framing[0] == "none" and method in ("GET", "HEAD", "OPTIONS") else 1
        while True:
            reused = False
            if self.up is not None and self.up.key == key and self.up.reusable and not self.up.reader.at_eof():
                reused = True
            else:
                self.drop_upstream()
                conn = await self.connect_upstream(host, port, explicit, ev)
                if conn is None:
                    return False
                self.up = Upstream(conn[0], conn[1], key)
            u = self.up
            u.reusable = False
            try:
                await write_all(u.writer, head, up)
            except (ConnectionError, OSError):
                self.drop_upstream()
                if reused and attempts > 1:
                    attempts -= 1
                    up.n = 0
                    continue
                ev["error"] = "%s closed the connection" % dest
                ev["status"] = 502
                await self.reply(simple_response(502, "%s closed the connection before the request was sent" % dest, "upstream-error"))
                return False
            body_task = None
            if framing[0] == "chunked":
                body_task = asyncio.ensure_future(copy_chunked(self.reader, u.writer, up))
            elif framing[0] == "length":
                body_task = asyncio.ensure_future(copy_exact(self.reader, u.writer, framing[1], up))
            a = self.track(host, port, ev, [self.writer, u.writer])
            try:
                result = await self.relay_response(method, version, client_keep, bool(upgrade), u, ev, up, down)
            except UpstreamError as e:
                self.drop_upstream()
                discard(body_task)
                if e.message == "closed-before-response" and reused and attempts > 1:
                    attempts -= 1
                    up.n = 0
                    continue
                if e.message == "closed-before-response":
                    msg = "%s closed the connection without answering" % dest
                else:
                    msg = "bad response from %s: %s" % (dest, e.message)
                ev["error"] = msg
                if down.n == 0:
                    ev["status"] = 502
                    await self.reply(simple_response(502, msg, "upstream-error"))
                return False
            except BaseException:
                discard(body_task)
                raise
            finally:
                self.proxy.active.discard(a)
            break
        if body_task is not None:
            if not body_task.done() or body_task.cancelled() or body_task.exception() is not None:
                # the upstream answered before taking the whole body: the client stream is out of step
                discard(body_task)
                result = False
                self.drop_upstream()
        return result

    async def relay_response(self, method, version, client_keep, upgrading, u, ev, up, down):
        while True:
            try:
                lines = await read_head(u.reader, RESPONSE_TIMEOUT, HEAD_TIMEOUT)
            except BadRequest as e:
                raise UpstreamError(e.message)
            except asyncio.IncompleteReadError:
                raise UpstreamError("upstream closed the connection in the response head")
            if lines is None:
                raise UpstreamError("closed-before-response")
            status_line = lines[0]
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not STATUS_RE.match(parts[1]):
                raise UpstreamError("malformed status line")
            status = int(parts[1])
            rversion = parts[0]
            try:
                rheaders = parse_headers(lines[1:])
            except BadRequest as e:
                raise UpstreamError(e.message)
            if 100 <= status < 200 and status != 101:
                if version == "HTTP/1.1":
                    await write_all(self.writer, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), down)
                continue
            break
        ev["status"] = status
        if status == 101:
            if not upgrading:
                raise UpstreamError("unexpected 101 Switching Protocols")
            await write_all(self.writer, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), down)
            u.reusable = False
            await splice(self.reader, self.writer, u.reader, u.writer, up, down)
            self.drop_upstream()
            return False

        rtokens = header_tokens(rheaders, "connection")
        if method == "HEAD" or status in (204, 304):
            framing = ("none", 0)
        else:
            try:
                framing = body_framing(rheaders, "the response", response=True)
            except BadRequest as e:
                raise UpstreamError(e.message)
            if framing[0] == "none" and not header_values(rheaders, "content-length"):
                framing = ("eof", 0)
        upstream_keep = (
            framing[0] != "eof"
            and "close" not in rtokens
            and (rversion == "HTTP/1.1" or "keep-alive" in rtokens)
        )
        keep = client_keep and framing[0] != "eof"
        out = [status_line]
        drop = {"connection", "keep-alive", "proxy-connection"} | rtokens
        drop.discard("transfer-encoding")
        drop.discard("content-length")
        for k, v in rheaders:
            if k.lower() not in drop:
                out.append("%s: %s" % (k, v))
        if not keep:
            out.append("Connection: close")
        elif version == "HTTP/1.0":
            out.append("Connection: keep-alive")
        await write_all(self.writer, ("\r\n".join(out) + "\r\n\r\n").encode("latin-1"), down)
        try:
            if framing[0] == "chunked":
                await copy_chunked(u.reader, self.writer, down)
            elif framing[0] == "length":
                await copy_exact(u.reader, self.writer, framing[1], down)
            elif framing[0] == "eof":
                await copy_until_eof(u.reader, self.writer, down)
        except asyncio.IncompleteReadError:
            ev["error"] = "upstream closed the connection mid-body"
            self.drop_upstream()
            return False
        u.reusable = upstream_keep
        if not upstream_keep:
            self.drop_upstream()
        return keep


# ---------------------------------------------------------------- main


MAX_CONTROL_LINE = 16 * 1024 * 1024


def stdin_reader(loop, on_line):
    f = sys.stdin.buffer
    while True:
        try:
            line = f.readline()
        except Exception:
            line = b""
        if not line:
            os._exit(0)  # Fluid is gone: so is egress (this process's part of it)
        try:
            loop.call_soon_threadsafe(on_line, line)
        except RuntimeError:  # the loop is closing
            os._exit(0)


async def watchdog(proxy):
    limit = proxy.args.heartbeat_timeout
    while limit > 0:
        await asyncio.sleep(min(1.0, limit / 4.0))
        if time.monotonic() - proxy.last_control > limit:
            send_stdout({"type": "error", "message": "no message from Fluid for %gs: exiting" % limit})
            os._exit(3)


async def join(proxy, args, bind_error):
    """The bridge address is taken. If a Fluid egress proxy holds it, become one more of its
    controllers and relay this process's control channel to it; else say the port is taken."""
    here = fmt_hostport(args.listen, args.port)
    conn = None
    for _ in range(JOIN_ATTEMPTS):
        try:
            conn = await asyncio.open_unix_connection(path=control_address(args.listen, args.port), limit=MAX_CONTROL_LINE)
            break
        except OSError:
            await asyncio.sleep(JOIN_RETRY_DELAY)
    if conn is None:
        send_stdout(
            {
                "type": "error",
                "message": "cannot listen on %s: %s, and no Fluid egress proxy answers there "
                "(another program holds the port)" % (here, bind_error.strerror or bind_error),
            }
        )
        return 2
    reader, writer = conn
    writer.write(encode({"type": "hello", "version": VERSION, "pid": os.getpid()}))
    if proxy.last_config_raw is not None:
        writer.write(proxy.last_config_raw)
    proxy.relay = writer
    ready = False
    while True:
        try:
            line = await reader.readline()
        except (ValueError, asyncio.LimitOverrunError, OSError):
            line = b""
        if not line:
            break
        if not ready and b'"ready"' in line:
            ready = True
        if not write_stdout(line):
            os._exit(0)
    if ready:
        send_stdout({"type": "error", "message": "the shared egress proxy on %s stopped" % here})
        return 4
    return 5


async def amain(args):
    loop = asyncio.get_running_loop()
    proxy = Proxy(args, loop)
    threading.Thread(target=stdin_reader, args=(loop, proxy.on_stdin), daemon=True).start()
    configured = asyncio.ensure_future(proxy.configured.wait())
    await asyncio.wait((configured, proxy.stopping), timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if proxy.stopping.done():
        configured.cancel()
        return 0
    if not configured.done():
        configured.cancel()
        send_stdout({"type": "error", "message": "no config message within 30s"})
        return 2
    wd = asyncio.ensure_future(watchdog(proxy))
    try:
        server = await asyncio.start_server(
            proxy.handle, args.listen, args.port, limit=BUF, reuse_address=True, backlog=256
        )
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return await join(proxy, args, e)
        send_stdout(
            {"type": "error", "message": "cannot listen on %s: %s" % (fmt_hostport(args.listen, args.port), e.strerror or e)}
        )
        return 2
    name = server.sockets[0].getsockname()
    proxy.listen_ip = parse_ip(str(name[0]).split("%")[0])
    proxy.listen_port = int(name[1])
    try:
        control = await asyncio.start_unix_server(
            proxy.handle_controller, path=control_address(args.listen, proxy.listen_port), limit=MAX_CONTROL_LINE
        )
    except OSError as e:
        server.close()
        send_stdout(
            {
                "type": "error",
                "message": "cannot listen on %s: its control socket is taken (%s); another egress proxy is "
                "shutting down, try again" % (fmt_hostport(args.listen, proxy.listen_port), e.strerror or e),
            }
        )
        return 2
    send_stdout(proxy.ready_message(False))
    await proxy.stopping
    server.close()
    control.close()
    wd.cancel()
    for p in list(proxy.pending.values()):
        proxy.resolve(p, "denied")
    for t in list(proxy.tasks):
        t.cancel()
    if proxy.tasks:
        await asyncio.wait(list(proxy.tasks), timeout=2)
    return 0


async def probe(args):
    """Print the status of the proxy serving this bridge address (one JSON line) and exit."""
    here = fmt_hostport(args.listen, args.port)
    try:
        reader, writer = await asyncio.open_unix_connection(path=control_address(args.listen, args.port), limit=MAX_CONTROL_LINE)
    except OSError:
        in_use = False
        try:
            s = socket.create_connection((args.listen, args.port), timeout=2)
            s.close()
            in_use = True
        except OSError:
            pass
        send_stdout({"type": "status", "id": "probe", "running": False, "listen": here, "portInUse": in_use})
        return 0
    writer.write(encode({"type": "hello", "version": VERSION, "pid": os.getpid(), "probe": True}))
    while True:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
        except (asyncio.TimeoutError, ValueError, OSError):
            line = b""
        if not line:
            send_stdout({"type": "error", "message": "the egress proxy on %s did not answer" % here})
            return 1
        try:
            msg = json.loads(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(msg, dict) and msg.get("type") in ("status", "error"):
            send_stdout(msg)
            close_writer(writer)
            return 0


def match_selftest():
    """Reads {"entries": [...], "host": ..., "port": n} lines; writes how each was understood."""
    for raw in sys.stdin:
        if not raw.strip():
            continue
        q = json.loads(raw)
        entries = [parse_entry(e) for e in q.get("entries", [])]
        host = norm_host(q.get("host"))
        port = q.get("port", 0)
        m = find_match([e for e in entries if e is not None], host, port) if host else None
        sys.stdout.write(
            json.dumps(
                {
                    "entries": [e.text() if e is not None else None for e in entries],
                    "host": host,
                    "allowed": m is not None,
                }
            )
            + "\n"
        )
    sys.stdout.flush()
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="fluid-egress")
    ap.add_argument("--listen", default="10.239.0.1")
    ap.add_argument("--port", type=int, default=3128)
    ap.add_argument("--ask-timeout", type=float, default=60.0)
    ap.add_argument("--heartbeat-timeout", type=float, default=0.0)
    ap.add_argument("--allow-loopback", action="store_true")
    ap.add_argument("--allow-private", action="store_true")
    ap.add_argument("--match-selftest", action="store_true")
    ap.add_argument("--probe", action="store_true")
    args = ap.parse_args(argv)
    if args.match_selftest:
        return match_selftest()
    try:
        code = asyncio.run(probe(args) if args.probe else amain(args))
    except KeyboardInterrupt:
        code = 0
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
