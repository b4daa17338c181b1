/**
 * The egress proxy that runs on a libvirt host (python3 standard library, Python 3.9+).
 *
 * Kept as a string constant so it survives bundling (Vite/Electron main) without a loose asset file.
 * It is sent to the host over the process's own stdin (see `proxyCommand`), so nothing is written to
 * the host's disk and a stale copy can never run.
 *
 * Rules for editing the source below: ASCII only, no backticks and no dollar-brace sequences (this
 * is a String.raw template literal). `npm run test:integration` compiles it with python3 and checks
 * it parses with the Python 3.9 grammar.
 */

export const PROXY_SCRIPT_VERSION = 1;

const SOURCE = String.raw`"""fluid-egress: the egress proxy of Fluid sandboxes.

Runs on a libvirt host and listens on the sandboxes' isolated bridge. Sandboxes have no other way out.
Serves HTTP proxy requests: CONNECT host:port (tunnels) and absolute-URI plain HTTP (forwarded with
keep-alive). Destinations on the client's allowlist pass; anything else becomes an "ask" sent to Fluid,
which answers allow or deny (no answer in time: deny). Every decision is reported as an "event".

Control channel: stdin/stdout, newline-delimited JSON. When stdin closes the process exits at once:
no Fluid, no egress.
"""
import argparse
import asyncio
import ipaddress
import json
import os
import re
import socket
import sys
import threading
import time

VERSION = 1
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

HOST_RE = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$")
NUMERIC_LABEL_RE = re.compile(r"^([0-9]+|0x[0-9a-f]*)$")
TOKEN_RE = re.compile(r"^[!#$%&'*+.^_\x60|~0-9A-Za-z-]+$")
HEX_RE = re.compile(r"^[0-9a-fA-F]{1,16}$")
PORT_RE = re.compile(r"^[0-9]{1,5}$")
LENGTH_RE = re.compile(r"^[0-9]{1,18}$")
STATUS_RE = re.compile(r"^[0-9]{3}$")
METADATA = set(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
THIS_NET = ipaddress.ip_network("0.0.0.0/8")
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"}

_out_lock = threading.Lock()


def send(msg):
    data = (json.dumps(msg, separators=(",", ":")) + "\n").encode("ascii")
    with _out_lock:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except (OSError, ValueError):
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


# ---------------------------------------------------------------- HTTP helpers


class BadRequest(Exception):
    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


class UpstreamError(Exception):
    pass


class Blocked(Exception):
    pass


class Meter(object):
    __slots__ = ("n", "last")

    def __init__(self):
        self.n = 0
        self.last = time.monotonic()


REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def plain_response(status, text, why):
    body = ("Fluid egress proxy: " + text + "\n").encode("utf-8")
    head = (
        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        "Connection: close\r\nProxy-Connection: close\r\nX-Fluid-Egress: %s\r\n\r\n"
        % (status, REASONS.get(status, "Error"), len(body), why)
    )
    return head.encode("latin-1") + body


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


# ---------------------------------------------------------------- the proxy


class Pending(object):
    __slots__ = ("id", "key", "future", "timer")

    def __init__(self, aid, key, future):
        self.id = aid
        self.key = key
        self.future = future
        self.timer = None


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
        self.allow = {}
        self.sandboxes = {}
        self.configured = asyncio.Event()
        self.stopping = loop.create_future()
        self.pending = {}
        self.pending_by_id = {}
        self.tasks = set()
        self.seq = 0
        self.prefix = os.urandom(3).hex()
        self.listen_ip = None
        self.listen_port = 0
        self.last_control = time.monotonic()

    def next_id(self, kind):
        self.seq += 1
        return "%s%s-%d" % (kind, self.prefix, self.seq)

    # ------------------------------------------------------------ control channel

    def on_control(self, raw):
        self.last_control = time.monotonic()
        try:
            msg = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            send({"type": "error", "message": "control message is not JSON"})
            return
        if not isinstance(msg, dict):
            send({"type": "error", "message": "control message is not an object"})
            return
        t = msg.get("type")
        if t == "config":
            self.apply_config(msg)
        elif t == "decision":
            p = self.pending_by_id.get(msg.get("id"))
            if p is not None:
                self.resolve(p, "approved" if msg.get("decision") == "allow" else "denied")
        elif t == "ping":
            send({"type": "pong", "id": msg.get("id")})
        elif t == "shutdown":
            if not self.stopping.done():
                self.stopping.set_result(None)
        else:
            send({"type": "error", "message": "unknown control message type %r" % (t,)})

    def apply_config(self, msg):
        allow_in = msg.get("allow") or {}
        sb_in = msg.get("sandboxes") or {}
        if not isinstance(allow_in, dict) or not isinstance(sb_in, dict):
            send({"type": "error", "message": "config: allow and sandboxes must be objects"})
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
        self.allow = allow
        self.sandboxes = sandboxes
        if bad:
            send({"type": "error", "message": "config: ignored invalid entries: " + ", ".join(bad[:20])})
        send({"type": "configured", "seq": msg.get("seq"), "clients": len(sandboxes)})
        for p in list(self.pending.values()):
            client, host, port = p.key
            if client not in self.sandboxes:
                self.resolve(p, "unknown-client")
            elif find_match(self.allow.get(client, ()), host, port) is not None:
                self.resolve(p, "allowlist")
        self.configured.set()

    def resolve(self, p, reason):
        if self.pending.get(p.key) is p:
            del self.pending[p.key]
        self.pending_by_id.pop(p.id, None)
        if p.timer is not None:
            p.timer.cancel()
        if not p.future.done():
            p.future.set_result(reason)

    async def ask(self, client, sandbox, host, port, method):
        key = (client, host, port)
        p = self.pending.get(key)
        if p is None:
            p = Pending(self.next_id("a"), key, self.loop.create_future())
            p.timer = self.loop.call_later(self.args.ask_timeout, self.resolve, p, "timeout")
            self.pending[key] = p
            self.pending_by_id[p.id] = p
            send(
                {
                    "type": "ask",
                    "id": p.id,
                    "client": client,
                    "sandbox": sandbox,
                    "host": host,
                    "port": port,
                    "method": method,
                }
            )
        reason = await asyncio.shield(p.future)
        return reason, p.id

    # ------------------------------------------------------------ policy

    def blocked_reason(self, ip, port):
        """Why the proxy will not connect to ip:port on its own accord, or None."""
        if port == self.listen_port and (ip == self.listen_ip or is_local_address(ip)):
            return "it is the proxy itself"
        if self.args.allow_loopback and ip.is_loopback:
            return None
        if ip in METADATA:
            return "it is a cloud metadata address"
        if ip.is_loopback:
            return "it is a loopback address"
        if ip.is_link_local:
            return "it is a link-local address"
        if ip.is_multicast or ip.is_unspecified or (ip.version == 4 and (ip in THIS_NET or ip.is_reserved)):
            return "it is not a unicast address"
        if is_local_address(ip):
            return "it is an address of the Fluid host itself"
        return None

    async def authorize(self, client, host, port, method, ev):
        """Fills ev (decision, reason, sandbox, askId); returns the matching 'explicit IP' flag or None."""
        sandbox = self.sandboxes.get(client)
        ev["sandbox"] = sandbox
        if sandbox is None:
            ev["reason"] = "unknown-client"
            return None
        entry = find_match(self.allow.get(client, ()), host, port)
        ip = parse_ip(host)
        if ip is not None:
            why = self.blocked_reason(ip, port)
            if why is not None and (entry is None or why == "it is the proxy itself"):
                ev["reason"] = "blocked"
                ev["error"] = why
                return None
        if entry is not None:
            ev["decision"] = "allow"
            ev["reason"] = "allowlist"
            return ip is not None
        reason, aid = await self.ask(client, sandbox, host, port, method)
        ev["askId"] = aid
        ev["reason"] = reason
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
                raise UpstreamError("cannot resolve %s: %s" % (host, e or "timeout"))
            addrs = []
            for info in infos:
                a = parse_ip(info[4][0].split("%")[0])
                if a is not None and a not in addrs:
                    addrs.append(a)
        usable = []
        why = None
        for a in addrs:
            r = self.blocked_reason(a, port)
            if r is not None and explicit_ip and r != "it is the proxy itself":
                r = None
            if r is None:
                usable.append(a)
            else:
                why = "%s resolves to %s and %s" % (host, a, r) if ip is None else "%s: %s" % (a, r)
        if not usable:
            raise Blocked(why or ("%s has no address" % host))
        last = None
        for a in usable:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(str(a), port, limit=BUF), CONNECT_TIMEOUT
                )
            except (OSError, asyncio.TimeoutError) as e:
                last = e
                continue
            sock = w.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            return r, w
        raise UpstreamError("cannot connect to %s: %s" % (fmt_hostport(host, port), last or "timeout"))

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

    async def run(self):
        try:
            while True:
                try:
                    lines = await read_head(self.reader, IDLE_TIMEOUT, HEAD_TIMEOUT)
                except BadRequest as e:
                    self.bad_request_event(e, "", "", 0)
                    await self.reply(plain_response(e.status, e.message, "bad-request"))
                    break
                if lines is None:
                    break
                if not await self.request(lines):
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except Exception as e:  # a bug: report it, keep serving others
            send({"type": "error", "message": "internal error serving %s: %r" % (self.ip, e)})
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
        send(
            {
                "type": "event",
                "id": self.proxy.next_id("r"),
                "client": self.ip,
                "sandbox": self.proxy.sandboxes.get(self.ip),
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
            "sandbox": self.proxy.sandboxes.get(self.ip),
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
            send(ev)

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
            await self.reply(plain_response(e.status, e.message, "bad-request"))
            return False

        host, port = ev["host"], ev["port"]
        explicit = await self.proxy.authorize(self.ip, host, port, method, ev)
        if ev["decision"] != "allow":
            ev["status"] = 403
            await self.reply(plain_response(403, self.denial_text(ev), ev["reason"]))
            return False

        if method == "CONNECT":
            return await self.tunnel(host, port, bool(explicit), ev, up, down)
        return await self.forward(method, host, port, path, version, headers, framing, bool(explicit), ev, up, down)

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

    def denial_text(self, ev):
        dest = fmt_hostport(ev["host"], ev["port"])
        r = ev["reason"]
        if r == "unknown-client":
            return "%s is not a Fluid sandbox; %s is not reachable from here." % (self.ip, dest)
        if r == "denied":
            return "%s is not allowed from this sandbox. An approval request was raised and denied." % dest
        if r == "timeout":
            return (
                "%s is not allowed from this sandbox. An approval request was raised but not answered in time; "
                "retry once it is approved." % dest
            )
        if r == "blocked":
            return "%s is not allowed: %s. Allowlist the IP address explicitly to permit it." % (
                dest,
                ev.get("error", "blocked"),
            )
        return "%s is not allowed from this sandbox. An approval request was raised." % dest

    async def connect_upstream(self, host, port, explicit, ev):
        """Open an upstream connection or answer the client with an error. Returns (reader, writer) or None."""
        try:
            return await self.proxy.open_upstream(host, port, explicit)
        except Blocked as e:
            ev["decision"] = "deny"
            ev["reason"] = "blocked"
            ev["error"] = str(e)
            ev["status"] = 403
            await self.reply(plain_response(403, self.denial_text(ev), "blocked"))
        except UpstreamError as e:
            ev["error"] = str(e)
            ev["status"] = 502
            await self.reply(plain_response(502, str(e), "upstream-error"))
        return None

    async def tunnel(self, host, port, explicit, ev, up, down):
        self.drop_upstream()
        conn = await self.connect_upstream(host, port, explicit, ev)
        if conn is None:
            return False
        ur, uw = conn
        try:
            ev["status"] = 200
            self.writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await self.writer.drain()
            await splice(self.reader, self.writer, ur, uw, up, down)
        except (ConnectionError, OSError) as e:
            ev["error"] = str(e)
        finally:
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
                ev["error"] = "upstream closed the connection"
                ev["status"] = 502
                await self.reply(plain_response(502, "the upstream server closed the connection", "upstream-error"))
                return False
            body_task = None
            if framing[0] == "chunked":
                body_task = asyncio.ensure_future(copy_chunked(self.reader, u.writer, up))
            elif framing[0] == "length":
                body_task = asyncio.ensure_future(copy_exact(self.reader, u.writer, framing[1], up))
            try:
                result = await self.relay_response(method, version, client_keep, bool(upgrade), u, ev, up, down)
            except UpstreamError as e:
                self.drop_upstream()
                discard(body_task)
                if str(e) == "closed-before-response" and reused and attempts > 1:
                    attempts -= 1
                    up.n = 0
                    continue
                ev["error"] = str(e)
                if down.n == 0:
                    ev["status"] = 502
                    await self.reply(plain_response(502, "bad upstream response: %s" % e, "upstream-error"))
                return False
            except BaseException:
                discard(body_task)
                raise
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


def stdin_reader(loop, proxy):
    f = sys.stdin.buffer
    while True:
        try:
            line = f.readline()
        except Exception:
            line = b""
        if not line:
            os._exit(0)  # Fluid is gone: so is egress
        try:
            loop.call_soon_threadsafe(proxy.on_control, line)
        except RuntimeError:  # the loop is closing
            os._exit(0)


async def watchdog(proxy):
    limit = proxy.args.heartbeat_timeout
    while limit > 0:
        await asyncio.sleep(min(1.0, limit / 4.0))
        if time.monotonic() - proxy.last_control > limit:
            send({"type": "error", "message": "no message from Fluid for %gs: exiting" % limit})
            os._exit(3)


async def amain(args):
    loop = asyncio.get_running_loop()
    proxy = Proxy(args, loop)
    threading.Thread(target=stdin_reader, args=(loop, proxy), daemon=True).start()
    configured = asyncio.ensure_future(proxy.configured.wait())
    await asyncio.wait((configured, proxy.stopping), timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if proxy.stopping.done():
        configured.cancel()
        return 0
    if not configured.done():
        configured.cancel()
        send({"type": "error", "message": "no config message within 30s"})
        return 2
    try:
        server = await asyncio.start_server(
            proxy.handle, args.listen, args.port, limit=BUF, reuse_address=True, backlog=256
        )
    except OSError as e:
        send({"type": "error", "message": "cannot listen on %s: %s" % (fmt_hostport(args.listen, args.port), e.strerror or e)})
        return 2
    name = server.sockets[0].getsockname()
    proxy.listen_ip = parse_ip(str(name[0]).split("%")[0])
    proxy.listen_port = int(name[1])
    wd = asyncio.ensure_future(watchdog(proxy))
    send(
        {
            "type": "ready",
            "listen": fmt_hostport(str(proxy.listen_ip), proxy.listen_port),
            "pid": os.getpid(),
            "version": VERSION,
            "python": "%d.%d.%d" % sys.version_info[:3],
        }
    )
    await proxy.stopping
    server.close()
    wd.cancel()
    for p in list(proxy.pending.values()):
        proxy.resolve(p, "denied")
    for t in list(proxy.tasks):
        t.cancel()
    if proxy.tasks:
        await asyncio.wait(list(proxy.tasks), timeout=2)
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
    ap.add_argument("--match-selftest", action="store_true")
    args = ap.parse_args(argv)
    if args.match_selftest:
        return match_selftest()
    try:
        code = asyncio.run(amain(args))
    except KeyboardInterrupt:
        code = 0
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
`;

/** The proxy's Python source (ASCII). */
export function proxyScript(): string {
  return SOURCE;
}
