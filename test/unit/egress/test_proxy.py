"""Unit tests of the egress proxy's pure logic (src/core/egress/proxy.py), with python3's unittest.

Run by test/unit/egress/python.test.ts (python3 -m unittest); nothing here opens a socket except the
UDP "which source address would the kernel use" probe behind is_local_address.
"""
import argparse
import asyncio
import errno
import ipaddress
import json
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "src", "core", "egress"))
import proxy as P  # noqa: E402

ip = ipaddress.ip_address


def args(**over):
    a = argparse.Namespace(
        listen="10.239.0.1",
        port=3128,
        ask_timeout=60.0,
        heartbeat_timeout=0.0,
        allow_loopback=False,
        allow_private=False,
        match_selftest=False,
        probe=False,
    )
    for k, v in over.items():
        setattr(a, k, v)
    return a


class Recorder(object):
    """A controller channel that keeps what the proxy sends."""

    def __init__(self):
        self.msgs = []
        self.ok = True

    def __call__(self, data):
        if not self.ok:
            return False
        for line in data.decode("ascii").splitlines():
            self.msgs.append(json.loads(line))
        return True

    def of(self, t):
        return [m for m in self.msgs if m.get("type") == t]


class FakeTransport(object):
    def __init__(self):
        self.aborted = False

    def abort(self):
        self.aborted = True


class FakeWriter(object):
    def __init__(self):
        self.transport = FakeTransport()


def config(allow, sandboxes, seq=1):
    return json.dumps({"type": "config", "seq": seq, "allow": allow, "sandboxes": sandboxes}).encode() + b"\n"


class AddressKinds(unittest.TestCase):
    def test_ipv4(self):
        cases = {
            "169.254.169.254": "metadata",
            "169.254.170.2": "metadata",
            "100.100.100.200": "metadata",
            "127.0.0.1": "loopback",
            "127.255.0.9": "loopback",
            "169.254.1.1": "link-local",
            "0.0.0.0": "not-unicast",
            "0.1.2.3": "not-unicast",
            "224.0.0.1": "not-unicast",
            "240.0.0.1": "not-unicast",
            "255.255.255.255": "not-unicast",
            "10.1.2.3": "private",
            "172.16.0.1": "private",
            "172.31.255.255": "private",
            "192.168.122.12": "private",
            "100.64.0.1": "private",
            "10.239.0.1": "private",
            "172.32.0.1": None,
            "8.8.8.8": None,
            "203.0.113.80": None,
            "192.0.2.2": None,
        }
        for a, kind in cases.items():
            self.assertEqual(P.address_kind(ip(a)), kind, a)

    def test_ipv6_and_embedded_ipv4(self):
        cases = {
            "::1": "loopback",
            "fe80::1": "link-local",
            "fd00:ec2::254": "metadata",
            "fd00::2": "private",
            "fc00::1": "private",
            "fec0::1": "private",
            "ff02::1": "not-unicast",
            "::": "not-unicast",
            "::7f00:1": "loopback",  # IPv4-compatible 127.0.0.1
            "::a9fe:a9fe": "metadata",
            "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::1": "metadata",
            "64:ff9b::a9fe:a9fe": "metadata",  # NAT64 of 169.254.169.254
            "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
            "64:ff9b:1::a00:1": "private",  # local-use NAT64 of 10.0.0.1
            "64:ff9b::808:808": None,  # NAT64 of a public address (DNS64 networks keep working)
            "2606:4700::1111": None,
            "2001:4860:4860::8888": None,
        }
        for a, kind in cases.items():
            self.assertEqual(P.address_kind(ip(a)), kind, a)

    def test_mapped_ipv6_is_unwrapped_when_parsed(self):
        self.assertEqual(P.parse_ip("::ffff:127.0.0.1"), ip("127.0.0.1"))
        self.assertEqual(P.norm_host("[::ffff:a9fe:a9fe]"), "169.254.169.254")

    def test_teredo_embeds_its_client(self):
        # Teredo: server 65.54.227.120, client 169.254.169.254 (obfuscated as 0x5601 0x5601)
        t = ip("2001:0:4136:e378:8000:63bf:5601:5601")
        self.assertIn(ip("169.254.169.254"), P.embedded_v4(t))
        self.assertEqual(P.address_kind(t), "metadata")


class CheckAddress(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.p = P.Proxy(args(), asyncio.get_running_loop())
        self.p.listen_ip = ip("127.0.0.1")
        self.p.listen_port = 3128

    def test_blocked_kinds(self):
        self.assertEqual(self.p.check_address(ip("169.254.169.254"), 80)[0], "metadata")
        self.assertEqual(self.p.check_address(ip("127.0.0.1"), 22)[0], "loopback")
        self.assertEqual(self.p.check_address(ip("10.0.0.5"), 5432)[0], "private")
        self.assertEqual(self.p.check_address(ip("127.0.0.1"), 3128)[0], "self")
        self.assertIsNone(self.p.check_address(ip("8.8.8.8"), 443))

    def test_private_ranges_can_be_opened_for_names(self):
        self.p.args.allow_private = True
        self.assertIsNone(self.p.check_address(ip("10.0.0.5"), 5432))
        self.assertEqual(self.p.check_address(ip("169.254.169.254"), 80)[0], "metadata")

    def test_the_hosts_own_addresses(self):
        # whatever address the kernel uses as its own source towards the outside is "this host"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("192.0.2.1", 9))
            mine = ip(s.getsockname()[0])
        except OSError:
            self.fail("this test needs an IPv4 route on the machine (to learn one of its own addresses)")
        finally:
            s.close()
        kind = self.p.check_address(mine, 22)[0]
        self.assertIn(kind, ("host", "loopback"))
        nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(mine))
        self.assertIsNotNone(self.p.check_address(nat64, 22))


class Messages(unittest.TestCase):
    def test_reason_phrase_is_one_line_of_ascii(self):
        self.assertEqual(P.reason_phrase("a\r\nX-Evil: 1"), "a X-Evil: 1")
        self.assertEqual(P.reason_phrase("caf\u00e9 \u2014 ok"), "caf ok")
        long = P.reason_phrase("x" * 500)
        self.assertEqual(len(long), P.MAX_REASON_PHRASE)
        self.assertTrue(long.endswith("..."))

    def test_pending_names_the_approval_and_the_destination(self):
        ev = {"host": "example.com", "port": 443, "reason": "pending", "approvalId": "1a2b3c"}
        status, phrase, lines = P.refusal(ev, "10.239.1.2")
        self.assertEqual(status, 403)
        self.assertEqual(phrase, "Fluid: approval 1a2b3c pending for example.com:443 - a person must approve")
        self.assertIn("1a2b3c", " ".join(lines))
        self.assertIn("Retry once it is approved", " ".join(lines))

    def test_other_refusals(self):
        def phrase(**ev):
            ev.setdefault("host", "example.com")
            ev.setdefault("port", 443)
            return P.refusal(ev, "10.239.1.2")[1]

        self.assertIn("denied", phrase(reason="denied", approvalId="9z"))
        self.assertIn("(approval 9z)", phrase(reason="denied", approvalId="9z"))
        self.assertIn("no decision for example.com:443 in time", phrase(reason="timeout"))
        self.assertEqual(
            phrase(reason="blocked", host="localhost", port=80, error="localhost resolves to 127.0.0.1, a loopback address"),
            "Fluid: localhost:80 blocked - localhost resolves to 127.0.0.1, a loopback address",
        )
        self.assertIn("10.239.1.2 is not a sandbox this egress proxy serves", phrase(reason="unknown-client"))
        self.assertEqual(phrase(host="::1", port=22, reason="blocked", error="x"), "Fluid: [::1]:22 blocked - x")

    def test_response_head(self):
        raw = P.plain_response(403, "Fluid: approval a1 pending\r\nInjected: yes", ["line one", "line two"], "pending", "a1\r\nX: y")
        head, body = raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 403 Fluid: approval a1 pending Injected: yes")
        self.assertIn("X-Fluid-Egress: pending", lines)
        self.assertIn("X-Fluid-Approval: a1 X: y", lines)
        self.assertFalse(any(l.startswith("Injected") or l.startswith("X: y") for l in lines))
        self.assertIn("Content-Length: %d" % len(body), lines)
        self.assertEqual(body, b"Fluid egress proxy: line one\nline two\n")

    def test_upstream_failures_say_what_failed(self):
        e = P.connect_failure("example.com", 81, ip("203.0.113.9"), ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        self.assertEqual((e.kind, e.status), ("refused", 502))
        self.assertEqual(e.message, "example.com:81 (203.0.113.9) refused the connection")
        e = P.connect_failure("203.0.113.9", 81, ip("203.0.113.9"), asyncio.TimeoutError())
        self.assertEqual((e.kind, e.status), ("timeout", 504))
        self.assertIn("no answer from 203.0.113.9:81", e.message)
        e = P.connect_failure("example.com", 81, ip("203.0.113.9"), OSError(errno.ENETUNREACH, "Network is unreachable"))
        self.assertEqual((e.kind, e.status), ("unreachable", 502))
        e = P.dns_failure("nx.example", socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
        self.assertEqual((e.kind, e.status), ("dns", 502))
        self.assertEqual(e.message, "DNS lookup of nx.example failed: Name or service not known")
        e = P.dns_failure("slow.example", asyncio.TimeoutError())
        self.assertEqual((e.kind, e.status), ("dns-timeout", 504))


class Routing(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.p = P.Proxy(args(), asyncio.get_running_loop())
        self.p.listen_ip = ip("10.239.0.1")
        self.p.listen_port = 3128
        self.main = Recorder()
        self.p.main.write = self.main

    def join(self):
        rec = Recorder()
        ctl = P.Controller(self.p, "socket", rec)
        self.p.controllers.append(ctl)
        return ctl, rec

    def test_each_controller_serves_its_own_sandboxes(self):
        self.p.on_control(self.p.main, config({"10.239.1.2": ["a.example"]}, {"10.239.1.2": "sb-a"}))
        b, rb = self.join()
        self.p.on_control(b, config({"10.239.1.3": ["b.example"]}, {"10.239.1.3": "sb-b"}))
        self.assertEqual(self.main.of("routes")[-1], {"type": "routes", "served": ["10.239.1.2"], "conflicts": []})
        self.assertEqual(rb.of("routes")[-1]["served"], ["10.239.1.3"])
        self.assertEqual(rb.of("configured")[-1], {"type": "configured", "seq": 1, "clients": 1})
        self.assertEqual(self.p.routes["10.239.1.3"], (b, "sb-b"))
        self.assertEqual([e.text() for e in self.p.allow_for["10.239.1.3"]], ["b.example"])

    def test_an_address_claimed_for_another_sandbox_is_a_conflict_reported_to_the_later_one(self):
        self.p.on_control(self.p.main, config({}, {"10.239.1.2": "sb-a"}))
        b, rb = self.join()
        self.p.on_control(b, config({}, {"10.239.1.2": "sb-other"}))
        self.assertEqual(rb.of("routes")[-1]["served"], [])
        self.assertEqual(
            rb.of("routes")[-1]["conflicts"], [{"client": "10.239.1.2", "sandbox": "sb-other", "servedAs": "sb-a"}]
        )
        self.assertEqual(self.p.routes["10.239.1.2"][1], "sb-a")

    def test_the_same_sandbox_from_two_processes_takes_the_newest_allowlist(self):
        self.p.on_control(self.p.main, config({"10.239.1.2": ["a.example", "gone.example"]}, {"10.239.1.2": "sb-a"}))
        b, rb = self.join()
        self.p.on_control(b, config({"10.239.1.2": ["a.example"]}, {"10.239.1.2": "sb-a"}))
        self.assertEqual(rb.of("routes")[-1]["served"], ["10.239.1.2"])
        self.assertEqual([e.text() for e in self.p.allow_for["10.239.1.2"]], ["a.example"])
        self.assertIs(self.p.routes["10.239.1.2"][0], self.p.main, "asks still go to the first")

    async def test_asks_go_to_the_owner_and_move_when_it_leaves(self):
        b, rb = self.join()
        c, rc = self.join()
        self.p.on_control(b, config({}, {"10.239.1.3": "sb-b"}))
        self.p.on_control(c, config({}, {"10.239.1.3": "sb-b"}))
        task = asyncio.ensure_future(self.p.ask("10.239.1.3", self.p.routes["10.239.1.3"], "x.example", 443, "CONNECT"))
        await asyncio.sleep(0)
        ask = rb.of("ask")[-1]
        self.assertEqual((ask["host"], ask["sandbox"]), ("x.example", "sb-b"))
        self.assertEqual(rc.of("ask"), [])
        self.p.controller_gone(b)
        self.assertEqual(rc.of("ask")[-1]["id"], ask["id"], "re-asked of the one that serves it now")
        # a decision from a controller that does not own the ask is ignored
        self.p.on_control(self.p.main, json.dumps({"type": "decision", "id": ask["id"], "decision": "allow"}).encode())
        self.assertFalse(task.done())
        self.p.on_control(
            c, json.dumps({"type": "decision", "id": ask["id"], "decision": "pending", "approval": "ap-1"}).encode()
        )
        self.assertEqual(await task, ("pending", "ap-1", None, ask["id"]))

    async def test_a_pending_ask_for_an_address_nobody_serves_any_more_ends(self):
        self.p.on_control(self.p.main, config({}, {"10.239.1.2": "sb-a"}))
        task = asyncio.ensure_future(self.p.ask("10.239.1.2", self.p.routes["10.239.1.2"], "x.example", 80, "GET"))
        await asyncio.sleep(0)
        self.p.on_control(self.p.main, config({}, {}, seq=2))
        self.assertEqual((await task)[0], "unknown-client")

    def test_revoking_cuts_open_streams_allowed_by_the_allowlist_only(self):
        self.p.on_control(self.p.main, config({"10.239.1.2": ["a.example", "b.example"]}, {"10.239.1.2": "sb-a"}))
        by_list = P.Active("10.239.1.2", "sb-a", "a.example", 443, "allowlist", {}, [FakeWriter(), FakeWriter()])
        kept = P.Active("10.239.1.2", "sb-a", "b.example", 443, "allowlist", {}, [FakeWriter()])
        once = P.Active("10.239.1.2", "sb-a", "c.example", 443, "approved", {}, [FakeWriter()])
        self.p.active.update((by_list, kept, once))
        self.p.on_control(self.p.main, config({"10.239.1.2": ["b.example"]}, {"10.239.1.2": "sb-a"}, seq=2))
        self.assertTrue(all(w.transport.aborted for w in by_list.writers))
        self.assertEqual(by_list.ev["error"], "closed: a.example:443 was taken off the allowlist")
        self.assertFalse(kept.writers[0].transport.aborted)
        self.assertFalse(once.writers[0].transport.aborted, "a one-off approval is not an allowlist entry")
        self.p.on_control(self.p.main, config({}, {}, seq=3))
        self.assertTrue(once.writers[0].transport.aborted, "an unmapped sandbox loses everything")
        self.assertEqual(self.p.active, set())

    def test_events_go_to_the_owner_or_everyone_when_nobody_serves_the_address(self):
        b, rb = self.join()
        self.p.on_control(b, config({}, {"10.239.1.3": "sb-b"}))
        self.p.report_event({"type": "event", "client": "10.239.1.3", "reason": "allowlist"})
        self.assertEqual(len(rb.of("event")), 1)
        self.assertEqual(len(self.main.of("event")), 0)
        self.p.report_event({"type": "event", "client": "10.239.9.9", "reason": "unknown-client"})
        self.assertEqual(len(rb.of("event")), 2)
        self.assertEqual(len(self.main.of("event")), 1)

    def test_the_first_controller_leaving_stops_the_proxy(self):
        b, _ = self.join()
        self.p.controller_gone(b)
        self.assertFalse(self.p.stopping.done())
        self.p.on_control(self.p.main, b'{"type":"shutdown"}\n')
        self.assertTrue(self.p.stopping.done())

    def test_status(self):
        self.p.on_control(self.p.main, config({}, {"10.239.1.2": "sb-a"}))
        self.p.on_control(self.p.main, b'{"type":"status","id":"s1"}\n')
        st = self.main.of("status")[-1]
        self.assertEqual(st["clients"], {"10.239.1.2": "sb-a"})
        self.assertEqual((st["id"], st["running"], st["controllers"], st["version"]), ("s1", True, 1, P.VERSION))


class Authorize(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.p = P.Proxy(args(ask_timeout=5), asyncio.get_running_loop())
        self.p.listen_ip = ip("10.239.0.1")
        self.p.listen_port = 3128
        self.rec = Recorder()
        self.p.main.write = self.rec

    def ev(self):
        return {"decision": "deny", "reason": "bad-request"}

    async def test_unknown_client(self):
        ev = self.ev()
        self.assertIsNone(await self.p.authorize("10.239.1.9", "example.com", 443, "CONNECT", ev))
        self.assertEqual((ev["reason"], ev["sandbox"]), ("unknown-client", None))

    async def test_metadata_and_loopback_ips_are_refused_without_an_ask(self):
        self.p.on_control(self.p.main, config({}, {"10.239.1.2": "sb"}))
        for host, port in (("169.254.169.254", 80), ("127.0.0.1", 22), ("::1", 22), ("64:ff9b::a9fe:a9fe", 80)):
            ev = self.ev()
            self.assertIsNone(await self.p.authorize("10.239.1.2", host, port, "CONNECT", ev))
            self.assertEqual(ev["reason"], "blocked", host)
        self.assertEqual(self.rec.of("ask"), [])

    async def test_an_exact_ip_entry_opens_a_blocked_address_but_never_the_proxy(self):
        self.p.on_control(self.p.main, config({"10.239.1.2": ["169.254.169.254:80", "10.239.0.1:3128"]}, {"10.239.1.2": "sb"}))
        ev = self.ev()
        self.assertTrue(await self.p.authorize("10.239.1.2", "169.254.169.254", 80, "GET", ev))
        self.assertEqual(ev["reason"], "allowlist")
        ev = self.ev()
        self.assertIsNone(await self.p.authorize("10.239.1.2", "10.239.0.1", 3128, "CONNECT", ev))
        self.assertEqual(ev["error"], "it is the proxy itself")

    async def test_a_private_ip_is_asked_for(self):
        self.p.on_control(self.p.main, config({}, {"10.239.1.2": "sb"}))
        ev = self.ev()
        t = asyncio.ensure_future(self.p.authorize("10.239.1.2", "10.0.0.5", 5432, "CONNECT", ev))
        await asyncio.sleep(0)
        ask = self.rec.of("ask")[-1]
        self.assertEqual((ask["host"], ask["port"]), ("10.0.0.5", 5432))
        self.p.on_control(self.p.main, json.dumps({"type": "decision", "id": ask["id"], "decision": "pending", "approval": "ap9"}).encode())
        self.assertIsNone(await t)
        self.assertEqual((ev["reason"], ev["approvalId"]), ("pending", "ap9"))

    async def test_an_allowlisted_name_that_resolves_to_a_blocked_address_is_refused(self):
        answers = {
            "meta.example": ["169.254.169.254"],
            "loop.example": ["127.0.0.1", "::1"],
            "corp.example": ["10.1.2.3"],
            "mixed.example": ["10.1.2.3", "203.0.113.7"],
        }

        async def fake_getaddrinfo(host, port, **kw):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

        self.p.loop.getaddrinfo = fake_getaddrinfo
        for host, want in (
            ("meta.example", "meta.example resolves to 169.254.169.254, a cloud metadata address"),
            ("loop.example", "loop.example resolves to 127.0.0.1, a loopback address"),
            ("corp.example", "corp.example resolves to 10.1.2.3, a private network address"),
        ):
            with self.assertRaises(P.Blocked) as cm:
                await self.p.open_upstream(host, 80, False)
            self.assertEqual(str(cm.exception), want)
        connected = []

        async def fake_open(host, port, limit=None):
            connected.append(host)
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")

        real_open = asyncio.open_connection
        asyncio.open_connection = fake_open
        try:
            with self.assertRaises(P.UpstreamError) as cm:
                await self.p.open_upstream("mixed.example", 80, False)
        finally:
            asyncio.open_connection = real_open
        self.assertEqual(connected, ["203.0.113.7"], "only the public address is tried")
        self.assertEqual(cm.exception.kind, "refused")
        # with private names allowed, the private answer is tried too
        self.p.args.allow_private = True
        with self.assertRaises(P.Blocked):
            await self.p.open_upstream("meta.example", 80, False)

    async def test_dns_failure(self):
        async def fail(host, port, **kw):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        self.p.loop.getaddrinfo = fail
        with self.assertRaises(P.UpstreamError) as cm:
            await self.p.open_upstream("nx.example", 443, False)
        self.assertEqual(cm.exception.kind, "dns")


class Entries(unittest.TestCase):
    def test_parse_and_match(self):
        e = P.parse_entry("*.Example.com:8443")
        self.assertEqual(e.text(), "*.example.com:8443")
        self.assertTrue(e.matches("a.example.com", 8443))
        self.assertFalse(e.matches("example.com", 8443))
        self.assertIsNone(P.parse_entry("*.10.0.0.1"))
        self.assertIsNone(P.parse_entry("127.1"))
        self.assertEqual(P.parse_entry("[::FFFF:7f00:1]:80").text(), "127.0.0.1:80")
        self.assertEqual(P.parse_entry("deb.debian.org").ports, (80, 443))


if __name__ == "__main__":
    unittest.main()
