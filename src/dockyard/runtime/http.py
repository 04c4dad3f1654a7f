"""HTTP/1.1 over asyncio.Protocol: Content-Length and chunked bodies, keep-alive, pipelining,
limits, and timeouts for clients that send too slowly or sit idle.

One request per connection is handled at a time; pipelined requests wait in the buffer, so
responses always leave in request order. Routing lives in routes.py; this module only frames.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Protocol as TypingProtocol

MAX_HEAD_BYTES = 64 * 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")
_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
            422: "Unprocessable Content", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout",
            505: "HTTP Version Not Supported"}


class App(TypingProtocol):
    max_body_bytes: int
    connections: set["HttpConnection"]
    draining: bool

    def handle(self, conn: "HttpConnection", method: str, path: str, query: str,
               headers: dict[str, str], body: bytes) -> None: ...

    def record(self, route: str, status: int, seconds: float) -> None: ...


def error_body(message: str) -> bytes:
    from .jsonfast import dumps

    return dumps({"error": message})


class HttpConnection(asyncio.Protocol):
    __slots__ = ("app", "transport", "buf", "busy", "keep_alive", "started", "route", "job", "timer",
                 "_in_process", "_continue_sent", "closed", "_need", "_paused", "waiting_since", "idle_since")

    def __init__(self, app: App) -> None:
        self.app = app
        self.transport: Any = None
        self.buf: bytes | bytearray = b""
        self._need = 0  # bytes the request being received needs in total (0: head not parsed yet)
        self._paused = False
        self.busy = False  # a request is being answered
        self.keep_alive = True
        self.started = 0.0
        self.route = "other"
        self.job: Any = None  # runner job, to cancel when the client goes away
        self.timer: Any = None
        self._in_process = False
        self._continue_sent = False
        self.closed = False
        self.waiting_since = 0.0  # when the request now arriving became incomplete (0: none)
        self.idle_since = time.perf_counter()  # when the connection last finished a response

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.app.connections.discard(self)
        if self.job is not None:
            self.job.done = True  # the runner skips it if it is still queued
            self.job = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if not buf:
            self.buf = data
        else:
            # Large bodies arrive in many chunks: grow in place rather than copy per chunk.
            if not isinstance(buf, bytearray):
                self.buf = buf = bytearray(buf)
            buf += data
        if self.busy:
            # A client pipelining far ahead of us: stop reading instead of buffering without bound.
            if len(self.buf) > self.app.max_body_bytes + MAX_HEAD_BYTES and not self._paused:
                self._paused = True
                self.transport.pause_reading()
        elif len(self.buf) >= self._need:
            self._process()

    # -- framing -------------------------------------------------------------------------------
    def _process(self) -> None:
        self._in_process = True
        try:
            while not self.busy and self.buf and not self.closed:
                if not self._one_request():
                    return
        finally:
            self._in_process = False

    def _one_request(self) -> bool:
        """Parse and dispatch one request from the buffer; False when more bytes are needed."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                self._fail(431, "request headers are over 64 KiB; send smaller headers")
            elif not self.waiting_since:
                self.waiting_since = time.perf_counter()
            return False
        if end > MAX_HEAD_BYTES:
            self._fail(431, "request headers are over 64 KiB; send smaller headers")
            return False
        try:
            lines = buf[:end].decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        except ValueError:
            self._fail(400, "malformed HTTP request line or header")
            return False
        if not version.startswith("HTTP/1."):
            self._fail(505, f"{version} is not supported; use HTTP/1.1")
            return False
        start = end + 4
        limit = self.app.max_body_bytes
        if "transfer-encoding" in headers:
            framed = self._chunked(headers, version, buf, start, limit)
            if framed is None:
                return False
            body, stop = framed
        else:
            try:
                length = int(headers.get("content-length", "0"))
                if length < 0:
                    raise ValueError
            except ValueError:
                self._fail(400, "Content-Length must be a non-negative integer")
                return False
            if length > limit:
                self._fail(413, _too_large(f"request body is {length} bytes,", limit))
                return False
            stop = start + length
            if len(buf) < stop:
                self._need = stop  # skip re-parsing the head until the body is all here
                self._wait(headers)
                return False
            body = bytes(memoryview(buf)[start:stop])  # one copy, typed bytes
        self.buf = buf[stop:]
        self._need = 0
        self._continue_sent = False
        self.waiting_since = 0.0
        conn_header = headers.get("connection", "").lower()
        self.keep_alive = (conn_header != "close") if version == "HTTP/1.1" else (conn_header == "keep-alive")
        self.busy, self.started, self.route = True, time.perf_counter(), "other"
        path, _, query = target.partition("?")
        self.app.handle(self, method, path, query, headers, body)
        return True

    def _wait(self, headers: dict[str, str]) -> None:
        """The head is here, the body is not (yet): start the read clock, honour Expect."""
        if not self.waiting_since:
            self.waiting_since = time.perf_counter()
        if not self._continue_sent and headers.get("expect", "").lower() == "100-continue":
            self._continue_sent = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _chunked(self, headers: dict[str, str], version: str, buf: bytes | bytearray, start: int,
                 limit: int) -> tuple[bytes, int] | None:
        """A Transfer-Encoding body: (body, end offset), or None when answered or incomplete."""
        if headers["transfer-encoding"].strip().lower() != "chunked" or version != "HTTP/1.1":
            self._fail(501, f"Transfer-Encoding {headers['transfer-encoding']!r} on {version} is not supported; "
                            "send HTTP/1.1 with Content-Length or Transfer-Encoding: chunked")
            return None
        if "content-length" in headers:
            # Both framings at once is how requests are smuggled past proxies: refuse (RFC 9112 6.3).
            self._fail(400, "a request must not carry both Transfer-Encoding and Content-Length; send one")
            return None
        try:
            decoded = decode_chunked(buf, start, limit)
        except OverflowError:
            self._fail(413, _too_large("chunked request body is", limit))
            return None
        except ValueError as exc:
            self._fail(400, f"malformed chunked body: {exc}")
            return None
        if decoded is None:
            if len(buf) - start > 2 * limit + MAX_HEAD_BYTES:  # framing overhead of tiny chunks
                self._fail(413, f"chunked request body is over the {limit}-byte limit with its framing; "
                                "send fewer, larger chunks")
                return None
            self._need = len(buf) + 1  # parse again when more bytes arrive
            self._wait(headers)
        return decoded

    def _fail(self, status: int, message: str) -> None:
        """A framing error: answer and close, since the byte stream can no longer be trusted."""
        self.keep_alive = False
        self.busy, self.started, self.route = True, time.perf_counter(), "other"
        self.respond(status, error_body(message))

    # -- responses -----------------------------------------------------------------------------
    def respond(self, status: int, body: bytes, content_type: bytes = b"application/json",
                extra: bytes = b"") -> None:
        if not self.busy:
            return  # already answered (e.g. timed out, then the result came)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.job = None
        self.busy = False
        if self.closed:
            return
        keep = self.keep_alive and not self.app.draining
        head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
            status, _REASONS.get(status, "Unknown").encode(), content_type, len(body), extra,
            b"" if keep else b"connection: close\r\n")
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        self.idle_since = now = time.perf_counter()
        self.app.record(self.route, status, now - self.started)
        if not keep:
            self.transport.close()
            self.closed = True
            return
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        if self.buf and not self._in_process:
            self._process()

    def close_if_idle(self) -> None:
        if not self.busy and not self.closed:
            self.transport.close()
            self.closed = True


def _too_large(what: str, limit: int) -> str:
    return f"{what} over the {limit}-byte limit; send less data per request or raise --max-body-bytes"


def decode_chunked(buf: bytes | bytearray, pos: int, limit: int) -> tuple[bytes, int] | None:
    """Decode an HTTP/1.1 chunked body that starts at ``pos``: (body, offset after it), or None
    while incomplete. ValueError for bad framing, OverflowError once the data passes ``limit``.
    Chunk extensions are ignored and trailer fields dropped (RFC 9112 7.1)."""
    spans: list[tuple[int, int]] = []  # (start, end) of each chunk's data: copied once, when complete
    total = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 1024:
                raise ValueError("chunk-size line is over 1 KiB")
            return None
        size_field = bytes(buf[pos:eol]).split(b";", 1)[0].strip(b" \t")
        if not size_field or len(size_field) > 16 or not _HEX.issuperset(size_field):
            raise ValueError(f"chunk size {size_field[:20]!r} is not a hexadecimal number")
        size = int(size_field, 16)
        pos = eol + 2
        if size == 0:
            break
        total += size
        if total > limit:
            raise OverflowError
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("chunk data is not followed by CRLF")
        spans.append((pos, pos + size))
        pos += size + 2
    while True:  # trailer fields, then the empty line
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > MAX_HEAD_BYTES:
                raise ValueError("trailer section is over 64 KiB")
            return None
        if eol == pos:
            view = memoryview(buf)
            return b"".join(view[a:b] for a, b in spans), eol + 2
        pos = eol + 2


def sweep(connections: set[HttpConnection], read_timeout_s: float, keepalive_timeout_s: float) -> None:
    """Answer 408 to clients that started a request and stalled, close idle keep-alive connections.
    Run about once a second; a timeout of 0 switches its check off."""
    now = time.perf_counter()
    for conn in list(connections):
        if conn.busy or conn.closed:
            continue
        if conn.buf or conn.waiting_since:
            if read_timeout_s and conn.waiting_since and now - conn.waiting_since > read_timeout_s:
                conn._fail(408, f"the request did not arrive within {read_timeout_s:g} s; "
                                "send it whole, or raise --read-timeout-s")
        elif keepalive_timeout_s and now - conn.idle_since > keepalive_timeout_s:
            conn.close_if_idle()
