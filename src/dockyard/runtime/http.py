"""HTTP/1.1 over asyncio.Protocol: keep-alive, pipelining, limits, back-pressure, timeouts.

Framing lives in wire.py (strict RFC 9112, incremental); routing in routes.py. This module runs
connections:

- one request per connection is answered at a time; pipelined requests wait in the parser, so
  responses leave in request order. At most MAX_PIPELINED are answered per loop callback, so one
  pipelining client cannot starve the others.
- back-pressure both ways: when the transport's write buffer passes WRITE_HIGH (a client that
  pipelines and never reads), reading stops until it drains; when a busy connection has buffered
  more than a whole request may be, reading stops too. Memory per connection stays bounded.
- after an error response the connection half-closes and reads and discards for up to LINGER_S,
  so the client sees the 4xx instead of a reset (a lingering close).
- beyond ``max_connections`` a new connection gets a 503 and is closed.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from typing import Any, Protocol as TypingProtocol

from .wire import MAX_HEAD_BYTES, ParseError, Request, RequestParser, decode_chunked, too_large

__all__ = ["App", "HttpConnection", "decode_chunked", "error_body", "sweep", "too_large"]

WRITE_HIGH = 256 * 1024  # transport write buffer: stop reading above this ...
WRITE_LOW = 64 * 1024  # ... and read again below this
MAX_PIPELINED = 32  # requests answered per loop callback before other connections get a turn
LINGER_S = 2.0  # after an error response, read and discard this long at most
LINGER_BYTES = 64 * 1024 * 1024  # ... and this much at most

_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
            422: "Unprocessable Content", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout",
            505: "HTTP Version Not Supported"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STATUS_LINES = {status: b"HTTP/1.1 %d %s\r\n" % (status, reason.encode()) for status, reason in _REASONS.items()}
_date_cache: list[Any] = [0.0, b""]  # (perf_counter() when the line goes stale, the Date line)


class App(TypingProtocol):
    max_body_bytes: int
    connections: set["HttpConnection"]
    draining: bool

    def handle(self, conn: "HttpConnection", method: str, path: str, query: str,
               headers: Mapping[str, str], body: bytes) -> None: ...

    def record(self, route: str, status: int, seconds: float) -> None: ...


def error_body(message: str) -> bytes:
    from .jsonfast import dumps

    return dumps({"error": message})


def _date_line(now: float) -> bytes:
    """The Date header line (RFC 9110 5.6.7), ``date: ...\r\n``, of the wall clock's second, kept
    in _date_cache until time.perf_counter() (``now`` is its reading) passes that second's end.
    respond reads the cache with the one clock reading it takes anyway, and calls this about once
    a second; a step of the wall clock shows within a second."""
    wall = time.time()
    second = int(wall)
    t = time.gmtime(second)
    _date_cache[1] = b"date: %s, %02d %s %d %02d:%02d:%02d GMT\r\n" % (
        _DAYS[t.tm_wday].encode(), t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)
    _date_cache[0] = now + (second + 1 - wall)
    return _date_cache[1]  # type: ignore[no-any-return]


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


class HttpConnection(asyncio.Protocol):
    __slots__ = ("app", "max_connections", "transport", "parser", "busy", "keep_alive", "http10", "head_only",
                 "started", "route", "job", "timer", "closed", "waiting_since", "idle_since", "lingering",
                 "_in_process", "_scheduled", "_continue_sent", "_read_paused", "_write_paused",
                 "write_paused_since", "_linger", "_linger_until", "_discarded", "_timer_handle")

    def __init__(self, app: App, max_connections: int = 0) -> None:
        self.app = app
        self.max_connections = max_connections
        self.transport: Any = None
        self.parser = getattr(app, "parser_class", RequestParser)(app.max_body_bytes)
        self.busy = False  # a request is being answered
        self.keep_alive = True
        self.http10 = False
        self.head_only = False  # answering HEAD: headers only
        self.started = 0.0
        self.route = "other"
        self.job: Any = None  # runner job, to cancel when the client goes away
        self.timer: Any = None
        self.closed = False  # no more responses go out (closed, or lingering before the close)
        self.lingering = False
        self.waiting_since = 0.0  # when the request now arriving became incomplete (0: none)
        self.idle_since = time.perf_counter()  # when the connection last finished a response
        self.write_paused_since = 0.0
        self._in_process = False
        self._scheduled = False
        self._continue_sent = False
        self._read_paused = False
        self._write_paused = False
        self._linger = False  # the next close lingers (an error left unread bytes behind)
        self._linger_until = 0.0
        self._discarded = 0
        self._timer_handle: Any = None

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)
        self.app.connections.add(self)
        if self.max_connections and len(self.app.connections) > self.max_connections:
            self._begin()
            self.keep_alive, self._linger = False, True
            self.respond(503, error_body(f"the server has {self.max_connections} connections open "
                                         "(--max-connections); retry after the Retry-After seconds"),
                         extra=b"retry-after: 1\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.app.connections.discard(self)
        self.parser.clear()
        if self.job is not None:
            self.job.done = True  # the runner skips it if it is still queued
            self.job = None
        for handle in (self.timer, self._timer_handle):
            if handle is not None:
                handle.cancel()
        self.timer = self._timer_handle = None

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        parser = self.parser
        parser.feed(data)
        if self.busy or self._write_paused or self._scheduled or self.closed:
            # A client pipelining ahead of us: hold at most one whole request, then stop reading.
            if parser.buffered > self.app.max_body_bytes + MAX_HEAD_BYTES:
                self._pause_reading()
            return
        self._process()

    def eof_received(self) -> bool | None:
        return None  # close; a lingering close ends here, when the client has read and closed

    def pause_writing(self) -> None:
        """The transport's write buffer passed WRITE_HIGH: the client is not reading."""
        self._write_paused = True
        self.write_paused_since = time.perf_counter()
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self.write_paused_since = 0.0
        if not self.busy and not self.closed:
            self._process()
        self._maybe_resume_reading()

    # -- requests ------------------------------------------------------------------------------
    def _process(self) -> None:
        self._scheduled = False
        if self._in_process or self.busy or self.closed or self._write_paused:
            return
        self._in_process = True
        parser = self.parser
        try:
            for _ in range(MAX_PIPELINED):
                try:
                    request = parser.next()
                except ParseError as exc:
                    self._fail(exc.status, exc.message)
                    return
                if request is None:
                    if parser.more:  # a body of tiny chunks: decode the rest on a later turn
                        self._pause_reading()
                        self._scheduled = True
                        asyncio.get_event_loop().call_soon(self._process)
                        return
                    self._incomplete()
                    return
                self._dispatch(request)
                if self.busy or self.closed or self._write_paused:
                    return
                if parser.pos == len(parser.buf):  # all answered: the usual case
                    if self._read_paused:
                        self._maybe_resume_reading()
                    return
            if not self.busy and not self.closed and parser.buffered:
                self._scheduled = True  # more pipelined requests: let other connections run first
                asyncio.get_event_loop().call_soon(self._process)
        finally:
            self._in_process = False

    def _incomplete(self) -> None:
        parser = self.parser
        if not parser.partial:
            self.waiting_since = 0.0
        elif not self.waiting_since:
            self.waiting_since = time.perf_counter()
        head = parser.head
        if head is not None and head.expect_continue and not self._continue_sent:
            self._continue_sent = True
            routable = getattr(self.app, "routable", None)
            if routable is None or routable(head.method, head.path):
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._maybe_resume_reading()

    def _begin(self) -> None:
        self.busy, self.started, self.route, self.head_only = True, time.perf_counter(), "other", False

    def _dispatch(self, request: Request) -> None:
        self.waiting_since = 0.0
        self._continue_sent = False
        self.keep_alive = request.keep_alive
        self.http10 = request.version == "HTTP/1.0"
        self.busy = True  # _begin's work, inline: this runs per request
        self.started = time.perf_counter()
        self.route = "other"
        method = request.method
        self.head_only = method == "HEAD"
        encoding = request.encoding
        if encoding is not None and encoding.lower() != "identity":
            self.respond(415, error_body(f"Content-Encoding {encoding!r} is not supported; "
                                         "send the body uncompressed"), extra=b"accept-encoding: identity\r\n")
            return
        self.app.handle(self, "GET" if self.head_only else method, request.path, request.query,
                        request, request.body)  # the request as the Mapping of its header fields

    def _fail(self, status: int, message: str) -> None:
        """A framing error: answer and close, since the byte stream can no longer be trusted."""
        self.keep_alive, self._linger = False, True
        self.parser.clear()
        self._begin()
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
        if keep:
            connection = b"connection: keep-alive\r\n" if self.http10 else b""
        else:
            connection = b"connection: close\r\n"
        now = time.perf_counter()
        date = _date_cache[1] if now < _date_cache[0] else _date_line(now)
        head = b"%s%scontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
            _STATUS_LINES.get(status) or _status_line(status), date, content_type, len(body), extra, connection)
        if self.head_only:
            self.transport.write(head)
        elif len(body) < 65536:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            self.transport.write(body)
        self.idle_since = now
        self.app.record(self.route, status, now - self.started)
        if not keep:
            self._close()
            return
        if not self._in_process and not self._scheduled:
            parser = self.parser
            if parser.pos != len(parser.buf) or parser.head is not None:  # pipelined (not the usual case)
                self._process()
        if self._read_paused:
            self._maybe_resume_reading()

    def _close(self) -> None:
        self.closed = True
        if not self._linger or self.transport.is_closing():
            self.transport.close()
            return
        # Lingering close (RFC 9112 9.6): send our FIN after the response, then read and discard
        # what the client is still sending, so its kernel does not answer our close with a reset
        # that destroys the response before the client reads it.
        self.lingering = True
        self.parser.clear()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._write_paused = False
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        self._timer_handle = asyncio.get_event_loop().call_later(LINGER_S, self.transport.close)

    def close_if_idle(self) -> None:
        if self.lingering:
            self.transport.close()
        elif not self.busy and not self.closed:
            self.transport.close()
            self.closed = True

    def abort(self) -> None:
        self.closed = True
        self.transport.abort()

    # -- back-pressure -------------------------------------------------------------------------
    def _pause_reading(self) -> None:
        if not self._read_paused and not self.transport.is_closing():
            self._read_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if (self._read_paused and not self._write_paused and not self.closed and not self.parser.more
                and self.parser.buffered <= self.app.max_body_bytes + MAX_HEAD_BYTES):
            self._read_paused = False
            self.transport.resume_reading()


def sweep(connections: set[HttpConnection], read_timeout_s: float, keepalive_timeout_s: float) -> None:
    """Answer 408 to clients that started a request and stalled, close idle keep-alive connections,
    and drop clients that stopped reading our responses. Run about once a second; a timeout of 0
    switches its check off."""
    now = time.perf_counter()
    for conn in list(connections):
        if conn.closed:
            continue
        if conn.write_paused_since:
            if read_timeout_s and now - conn.write_paused_since > read_timeout_s:
                conn.abort()  # it has not read for that long: it cannot be sent a 408 either
            continue
        if conn.busy:
            continue
        if conn.parser.partial or conn.waiting_since:
            if read_timeout_s and conn.waiting_since and now - conn.waiting_since > read_timeout_s:
                conn._fail(408, f"the request did not arrive within {read_timeout_s:g} s; "
                                "send it whole, or raise --read-timeout-s")
        elif keepalive_timeout_s and now - conn.idle_since > keepalive_timeout_s:
            conn.close_if_idle()
