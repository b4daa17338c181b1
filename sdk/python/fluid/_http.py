"""The transport: JSON over HTTP(S) with urllib, and Server-Sent Events for streams."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from .errors import FluidError


class Transport:
    def __init__(
        self,
        base_url: str,
        token: Optional[str],
        timeout: float = 600.0,
        ca_file: Optional[str] = None,
        user_agent: str = "fluid-sdk-python/0.1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self.context: Optional[ssl.SSLContext] = None
        if self.base_url.startswith("https://"):
            self.context = ssl.create_default_context(cafile=ca_file)

    def _request(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]] = None,
        body: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        accept: str = "application/json",
    ) -> urllib.request.Request:
        url = self.base_url + path
        if query:
            q = {k: _query_value(v) for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        data = None
        h = {"Accept": accept, "User-Agent": self.user_agent}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            data = json.dumps({k: v for k, v in body.items() if v is not None}).encode("utf-8")
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        return urllib.request.Request(url, data=data, method=method, headers=h)

    def call(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]] = None,
        body: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[Any, Dict[str, str]]:
        """One request; the JSON answer and the response headers. Errors raise FluidError."""
        req = self._request(method, path, query, body, headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as res:
                raw = res.read()
                return (json.loads(raw) if raw else None), {k.lower(): v for k, v in res.headers.items()}
        except urllib.error.HTTPError as e:
            raise _error(e) from None
        except urllib.error.URLError as e:
            raise FluidError("UNAVAILABLE", f"Cannot reach {self.base_url}: {e.reason}") from None

    def events(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]] = None,
        body: Optional[Mapping[str, Any]] = None,
    ) -> Iterator[Tuple[str, Any]]:
        """Server-Sent Events: (event name, data) pairs until the server ends the stream."""
        req = self._request(method, path, query, body, accept="text/event-stream")
        try:
            res = urllib.request.urlopen(req, timeout=self.timeout, context=self.context)
        except urllib.error.HTTPError as e:
            raise _error(e) from None
        except urllib.error.URLError as e:
            raise FluidError("UNAVAILABLE", f"Cannot reach {self.base_url}: {e.reason}") from None
        with res:
            yield from parse_sse(res)


def parse_sse(lines: Any) -> Iterator[Tuple[str, Any]]:
    """Parse an SSE byte stream (an iterable of lines); comments and ids are skipped."""
    event = "message"
    data: list = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n") if isinstance(raw, bytes) else raw.rstrip("\r\n")
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, json.loads("\n".join(data))


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _error(e: urllib.error.HTTPError) -> FluidError:
    try:
        body = json.loads(e.read() or b"{}")
    except ValueError:
        body = {}
    if isinstance(body, dict) and "code" in body:
        return FluidError(str(body["code"]), str(body.get("message", "")), e.code, body.get("data"))
    return FluidError("INTERNAL", f"HTTP {e.code} {e.reason}", e.code)
