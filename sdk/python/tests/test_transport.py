"""The transport's parsing, offline: Server-Sent Events and error bodies."""

from __future__ import annotations

import io
import unittest
import urllib.error

from fluid._http import _error, parse_sse
from fluid.models import Sandbox


class Sse(unittest.TestCase):
    def test_items_comments_and_multiline_data(self) -> None:
        raw = io.BytesIO(
            b": keep-alive\n\n"
            b"event: item\nid: 1\ndata: {\"kind\": \"stdout\", \"data\": \"hi\"}\n\n"
            b"event: item\ndata: [1,\ndata: 2]\n\n"
            b"event: end\ndata: {}\n\n"
        )
        self.assertEqual(
            list(parse_sse(raw)),
            [("item", {"kind": "stdout", "data": "hi"}), ("item", [1, 2]), ("end", {})],
        )

    def test_error_body_becomes_fluid_error(self) -> None:
        body = io.BytesIO(b'{"code": "DENIED", "message": "agents ask", "data": {"member": "x"}}')
        e = _error(urllib.error.HTTPError("http://x", 403, "Forbidden", {}, body))  # type: ignore[arg-type]
        self.assertEqual((e.code, e.status, e.message, e.data), ("DENIED", 403, "agents ask", {"member": "x"}))

    def test_models_read_camel_case_and_nested(self) -> None:
        s = Sandbox.from_dict({"id": "a", "name": "n", "hostId": "h", "hostName": "lab", "sourceName": "web",
                               "baseId": None, "baseFingerprint": None, "state": "running", "domainName": "d",
                               "vcpus": 2, "memoryMiB": 1024, "ip": "10.0.0.2", "egressAllow": ["x"]})
        self.assertEqual((s.memory_mib, s.host_name, s.ip, s.egress_allow), (1024, "lab", "10.0.0.2", ["x"]))
        self.assertEqual(s.to_dict()["memoryMiB"], 1024)


if __name__ == "__main__":
    unittest.main()
