"""A minimal HTTP/1.1 server on raw asyncio protocols, for the fake OpenAI-compatible server.

Why not aiohttp.web: the fake server must sustain several times the rate a benchmark asks of it on a shared
2-core machine, and a bare protocol (no request objects, no middleware) costs a fraction of the CPU. It speaks
just enough HTTP/1.1 for OpenAI clients: keep-alive, Content-Length and chunked request bodies,
`Expect: 100-continue`, one request at a time per connection (no pipelined parallelism).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

MAX_BODY = 64 * 1024 * 1024
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class Request:
    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, method: str, path: str, query: str, headers: dict[bytes, bytes], body: bytes) -> None:
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body


class Connection(asyncio.Protocol):
    """One client connection. `handler(request, connection)` must end by calling exactly one of `respond`,
    `reset`, `cut` — possibly later (latency) — or never (a hang)."""

    def __init__(self, handler: Callable[[Request, Connection], None], on_lost: Callable[[Connection], None]):
        self.handler, self.on_lost = handler, on_lost
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered: later bytes wait in the buffer
        self.keep_alive = True
        self.timer: asyncio.TimerHandle | None = None
        self.pending: Any = None  # what the handler attached to the request in progress (for accounting)
        self.sent_continue = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.on_lost(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._parse()

    def _parse(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self._fail(431)
                return
            head = bytes(self.buffer[:end])
            eol = head.find(b"\r\n")
            try:
                method, target, version = head[: eol if eol >= 0 else end].decode("latin-1").split(" ", 2)
            except ValueError:
                self._fail(400)
                return
            headers = _headers(head)
            start = end + 4
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                decoded = _dechunk(self.buffer, start)
                if decoded is None:
                    return self._maybe_continue(headers)
                body, consumed = decoded
            else:
                length = int(headers.get(b"content-length", b"0") or 0)
                if length > MAX_BODY:
                    self._fail(413)
                    return
                if len(self.buffer) - start < length:
                    return self._maybe_continue(headers)
                body, consumed = bytes(self.buffer[start:start + length]), start + length
            del self.buffer[:consumed]
            self.sent_continue = False
            connection = headers.get(b"connection", b"").lower()
            http10 = version == "HTTP/1.0"
            self.keep_alive = connection != b"close" and (not http10 or connection == b"keep-alive")
            path, _, query = target.partition("?")
            self.busy = True
            self.handler(Request(method, path, query, headers, body), self)

    def _maybe_continue(self, headers: dict[bytes, bytes]) -> None:
        expects = headers.get(b"expect", b"").lower() == b"100-continue"
        if expects and not self.sent_continue and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.sent_continue = True

    def _fail(self, status: int) -> None:
        self.keep_alive = False
        self.respond(status, b'{"error":{"message":"bad request","type":"invalid_request_error"}}')

    # --- ways to end a request -----------------------------------------------------------------------------
    def respond(self, status: int, body: bytes, content_type: bytes = b"application/json",
                extra_headers: bytes = b"", declared_length: int | None = None) -> None:
        self.timer = None
        self.pending = None
        transport = self.transport
        if transport is None:
            return
        length = len(body) if declared_length is None else declared_length
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n" % (
            status, _REASONS.get(status, b"Unknown"), content_type, length, extra_headers,
            b"" if self.keep_alive else b"Connection: close\r\n")
        transport.write(head + body)
        if not self.keep_alive or declared_length is not None:
            transport.close()
            return
        self.busy = False
        if self.buffer:
            self._parse()

    def cut(self, status: int, body: bytes) -> None:
        """Declare the full length, send half of the body, close: the client sees a premature end."""
        self.keep_alive = False
        self.respond(status, body[: len(body) // 2], declared_length=len(body))

    def reset(self) -> None:
        """A TCP reset (RST), as when a server process dies or a proxy drops the connection."""
        self.timer = None
        self.pending = None
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


_WANTED = tuple((name, b"\r\n" + name + b":") for name in (
    b"content-length", b"content-type", b"authorization", b"transfer-encoding", b"connection", b"expect"))


def _headers(head: bytes) -> dict[bytes, bytes]:
    """The few headers the server uses (name lower-cased → value), found without splitting every line."""
    lower = head.lower()
    out: dict[bytes, bytes] = {}
    for name, marker in _WANTED:
        at = lower.find(marker)
        if at >= 0:
            at += len(marker)
            stop = head.find(b"\r\n", at)
            out[name] = head[at: stop if stop >= 0 else len(head)].strip()
    return out


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    out = bytearray()
    pos = start
    while True:
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buffer[pos:eol]).split(b";")[0] or b"0", 16)
        pos = eol + 2
        if size == 0:
            end = buffer.find(b"\r\n\r\n", pos - 2)  # skip any trailers up to the blank line
            return (bytes(out), end + 4) if end >= 0 else None
        if len(buffer) < pos + size + 2:
            return None
        out += buffer[pos:pos + size]
        pos += size + 2
