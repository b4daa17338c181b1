#!/usr/bin/python3
"""The lab's demo web app ("shop"): a tiny HTTP service behind nginx on the lab's web VMs.

    shop.py [--host 127.0.0.1] [--port 8000]

GET / answers a small HTML page naming the machine; GET /health answers {"status": "ok", ...}.
Anything else is a 404. It only reads: no state, no files written. nginx proxies port 80 to it
(scripts/lab/demo/install.sh writes that site).
"""

import argparse
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html><head><title>shop on {host}</title></head>
<body><h1>shop</h1><p>Served by the shop app on {host}.</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "shop/1.0"

    def _send(self, status: int, ctype: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE.format(host=socket.gethostname()))
        elif path == "/health":
            body = json.dumps({"status": "ok", "host": socket.gethostname()}) + "\n"
            self._send(200, "application/json", body)
        else:
            self._send(404, "text/plain; charset=utf-8", "not found\n")

    do_HEAD = do_GET

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The lab's demo web app.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"shop: listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
