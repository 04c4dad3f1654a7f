"""Strict HTTP/1.1 request framing (RFC 9112): bytes in, requests out, no I/O.

``RequestParser`` is fed the bytes of one connection and hands out whole requests. It keeps its
place between calls: a head is searched for only in bytes it has not looked at, and a chunked body
is decoded as it arrives, so a body sent as many small packets costs time in proportion to its
size, not to the square of it.

It rejects what a proxy in front of us might read differently, since each such case lets a
request hide inside another one ("request smuggling"): obs-fold lines, whitespace before a colon,
a header line without a colon, bare CR, bare LF or NUL/control bytes, duplicate Content-Length or
Host, Content-Length that is not plain digits, Transfer-Encoding together with Content-Length or
on HTTP/1.0, chunk sizes that are not plain hex, chunk-size lines over 1 KiB, chunk extensions
that are not ``;token[=token|"quoted"]``, and trailers that are not header fields. Every rejection
is a ``ParseError`` with the status to answer; after one, the connection must close.

llhttp (through httptools) is the reference this parser is tested against:
tests/unit/runtime/test_http_differential.py checks that everything accepted here is framed the
same way by httptools.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE = 1024
CHUNKS_PER_CALL = 2048  # then ``next`` returns None with ``more`` set, so a loop can serve others

_HEX = frozenset(b"0123456789abcdefABCDEF")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/[0-9]\.[0-9]")
# A chunk extension, after the size: (";" token ["=" (token / quoted-string)])*, no whitespace.
_CHUNK_EXT = re.compile(rb'(?:;[!#$%&\'*+\-.^_`|~0-9A-Za-z]+'
                        rb'(?:=(?:[!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"))?)*')
# Bytes a head may hold at all: HTAB, CR, LF, SP, visible ASCII and obs-text. Not NUL, not DEL.
_HEAD_BYTES = bytes([9, 10, 13, *range(32, 127), *range(128, 256)])
_TEXT_BYTES = bytes([9, *range(32, 127), *range(128, 256)])  # the same less CR and LF
_UNIQUE = frozenset({"content-length", "host"})
# RFC 9110 methods; llhttp (the reference) refuses methods it does not know, and so do we
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"})

_HEAD, _SIZE, _DATA, _CRLF, _TRAILER = range(5)


class ParseError(ValueError):
    """Bytes that are not an acceptable HTTP/1.1 request: answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Request(Mapping[str, str]):
    """One request: its head, and once complete, its body. As a Mapping, its header fields:
    lowercase names, values without surrounding blanks, a repeated name's values joined with ", ".

    The strict parser hands over the fields as a dict. ``usual_request`` hands over the head
    (llhttp has checked its syntax), and the fields are split out of it only when something reads
    one: most requests (POST /predict) never do, and the request is the one object made per head."""

    __slots__ = ("method", "target", "path", "query", "version", "_fields", "keep_alive", "length",
                 "expect_continue", "encoding", "body")

    def __init__(self, method: str, target: str, path: str, query: str, version: str,
                 fields: dict[str, str] | str, keep_alive: bool, length: int, expect_continue: bool,
                 encoding: str | None = None) -> None:
        # one attribute a statement: cheaper than tuple assignments (this runs once a request)
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self._fields = fields  # the dict, or the whole head (request line to its CRLFCRLF) to split
        self.keep_alive = keep_alive
        self.length = length  # body bytes; -1: chunked
        self.expect_continue = expect_continue
        self.encoding = encoding  # Content-Encoding, when sent
        self.body = b""

    @property
    def headers(self) -> dict[str, str]:
        """The header fields as a dict, split out of the head the first time they are read."""
        fields = self._fields
        if type(fields) is str:
            head, fields = fields, {}
            for line in head[head.find("\r\n") + 2:-4].split("\r\n"):
                name, _, value = line.partition(":")
                key, value = name.lower(), value.strip(" \t")
                fields[key] = fields[key] + ", " + value if key in fields else value
            self._fields = fields
        return fields  # type: ignore[return-value]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self.headers.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def __contains__(self, name: object) -> bool:
        return name in self.headers

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.target} {self.version}, {self.headers!r})"

    # Identity, not Mapping's equality of header fields: two requests are two requests.
    __eq__ = object.__eq__
    __hash__ = object.__hash__


def too_large(what: str, limit: int) -> str:
    return f"{what} over the {limit}-byte limit; send less data per request or raise --max-body-bytes"


class RequestParser:
    """Feed bytes with ``feed``; ``next`` returns the next whole request, or None until it has
    arrived. ``head`` is the request whose body is arriving (for Expect: 100-continue).
    Subclasses may parse heads another way (llhttp.py); the framing stays this class's."""

    backend = "python"  # which head parser: named in the runtime's "ready" log line

    __slots__ = ("buf", "pos", "max_body", "head", "more", "_state", "_scan", "_body", "_left", "_wire")

    def __init__(self, max_body: int) -> None:
        self.buf: bytes | bytearray = b""
        self.pos = 0  # where unparsed bytes start in buf
        self.max_body = max_body
        self.head: Request | None = None
        self.more = False  # next() stopped early with bytes left to decode: call it again soon
        self._state = _HEAD
        self._scan = 0  # the head's end was not found before this offset (stale, below pos, once found)
        self._body = bytearray()  # chunked body so far
        self._left = 0  # bytes left in the current chunk
        self._wire = 0  # bytes of chunked framing (sizes, extensions, CRLFs, trailers) so far

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed by a request."""
        return len(self.buf) - self.pos

    @property
    def partial(self) -> bool:
        """A request has started arriving and is not complete."""
        return self.head is not None or len(self.buf) > self.pos

    def feed(self, data: bytes) -> None:
        buf = self.buf
        pos = self.pos
        if pos == len(buf):
            self.buf = data
            self.pos = self._scan = 0
        else:
            if not isinstance(buf, bytearray):
                buf = bytearray(buf)
            if pos:
                del buf[:pos]  # O(1) in CPython: the bytearray moves its start
                self._scan -= pos
                self.pos = 0
            buf += data
            self.buf = buf

    def parse_head(self, buf: bytes | bytearray, pos: int, end: int) -> Request:
        """The head in buf[pos:end] (``end`` is where its final CRLFCRLF starts)."""
        return parse_head(bytes(buf[pos:end]), self.max_body)

    def clear(self) -> None:
        self.buf, self.pos, self.head, self._body = b"", 0, None, bytearray()

    def next(self) -> Request | None:
        """The next complete request, or None while incomplete. Raises ParseError."""
        head = self.head
        buf = self.buf
        if head is None:  # a new request: find and parse its head
            pos = self.pos
            while buf.startswith(b"\r\n", pos):  # RFC 9112 2.2: ignore empty lines before a request
                pos += 2
            self.pos = pos
            scan = self._scan
            end = buf.find(b"\r\n\r\n", pos if pos > scan else scan)
            if end < 0:
                if len(buf) - pos > MAX_HEAD_BYTES:
                    raise ParseError(431, "request headers are over 64 KiB; send smaller headers")
                self._scan = max(pos, len(buf) - 3)
                return None
            if end - pos > MAX_HEAD_BYTES:
                raise ParseError(431, "request headers are over 64 KiB; send smaller headers")
            head = self.parse_head(buf, pos, end)
            length = head.length
            if length >= 0:
                need = end + 4 + length
                if len(buf) >= need:  # the whole request is here: the usual case, in one go
                    if length:
                        head.body = buf[end + 4:need] if type(buf) is bytes else bytes(memoryview(buf)[end + 4:need])
                    self.pos = need  # _scan (below need) is stale from here: find() starts at pos
                    return head
            else:
                self._state, self._wire, self._body = _SIZE, 0, bytearray()
            self.head = head
            self.pos = end + 4
        if head.length >= 0:
            need = self.pos + head.length
            if len(buf) < need:
                return None
            if head.length:
                head.body = buf[self.pos:need] if type(buf) is bytes else bytes(memoryview(buf)[self.pos:need])
            self.pos = need
        elif not self._chunked():
            return None
        else:
            head.body = bytes(self._body)
            self._body = bytearray()
        self.head = None
        self._state = _HEAD
        return head

    # -- chunked bodies ----------------------------------------------------------------------
    def _chunked(self) -> bool:
        """Decode what has arrived of a chunked body; True once the body and trailers are in."""
        buf, pos, end = self.buf, self.pos, len(self.buf)
        state, body, limit, wire = self._state, self._body, self.max_body, self._wire
        find, hexdigits = buf.find, _HEX
        budget = CHUNKS_PER_CALL
        self.more = False
        try:
            while pos < end:
                if state == _SIZE:
                    budget -= 1
                    if not budget:  # tiny chunks: bound the time one call takes
                        self.more = True
                        break
                    eol = find(b"\r\n", pos, pos + MAX_CHUNK_LINE + 2)
                    if eol < 0:
                        if end - pos > MAX_CHUNK_LINE:
                            raise ParseError(400, "malformed chunked body: chunk-size line is over 1 KiB")
                        if find(b"\n", pos) >= 0 or find(b"\r", pos, end - 1) >= 0:
                            raise ParseError(400, "malformed chunked body: bare CR or LF in a chunk-size line")
                        break
                    line = buf[pos:eol]
                    if 0 < len(line) <= 16 and hexdigits.issuperset(line):
                        size = int(line, 16)
                    else:
                        size = _chunk_size(bytes(line))
                    wire += eol + 2 - pos
                    pos = eol + 2
                    if size == 0:
                        state = _TRAILER
                        continue
                    if len(body) + size > limit:
                        raise ParseError(413, too_large("chunked request body is", limit))
                    self._left, state = size, _DATA
                    if end - pos >= size + 2 and size < 4096:  # the whole small chunk is here
                        if buf[pos + size:pos + size + 2] != b"\r\n":
                            raise ParseError(400, "malformed chunked body: chunk data is not followed by CRLF")
                        body += buf[pos:pos + size]
                        pos += size + 2
                        wire += 2
                        state = _SIZE
                elif state == _DATA:
                    take = min(self._left, end - pos)
                    body += memoryview(buf)[pos:pos + take] if take >= 4096 else buf[pos:pos + take]
                    pos += take
                    self._left -= take
                    if self._left:
                        break
                    state = _CRLF
                elif state == _CRLF:
                    if end - pos < 2:
                        if buf[pos] != 13:
                            raise ParseError(400, "malformed chunked body: chunk data is not followed by CRLF")
                        break
                    if not buf.startswith(b"\r\n", pos):
                        raise ParseError(400, "malformed chunked body: chunk data is not followed by CRLF")
                    pos += 2
                    wire += 2
                    state = _SIZE
                else:  # _TRAILER: header fields, then an empty line
                    eol = find(b"\r\n", pos)
                    if eol < 0:
                        if end - pos > MAX_HEAD_BYTES:
                            raise ParseError(431, "trailer section is over 64 KiB; send smaller trailers")
                        if find(b"\n", pos) >= 0 or find(b"\r", pos, end - 1) >= 0:
                            raise ParseError(400, "malformed chunked body: bare CR or LF in the trailer section")
                        break
                    wire += eol + 2 - pos
                    if eol == pos:
                        self.pos = eol + 2
                        return True
                    _check_field(bytes(buf[pos:eol]), "trailer")
                    pos = eol + 2
            if wire > limit + MAX_HEAD_BYTES:
                raise ParseError(413, f"chunked request body is over the {limit}-byte limit with its framing; "
                                      "send fewer, larger chunks")
            self.pos = pos
            return False
        finally:
            self._state, self._wire = state, wire


def _chunk_size(line: bytes) -> int:
    size, semi, ext = line.partition(b";")
    if not size or len(size) > 16 or not _HEX.issuperset(size):
        raise ParseError(400, f"malformed chunked body: chunk size {size[:20]!r} is not a hexadecimal number")
    if semi and not _CHUNK_EXT.fullmatch(semi + ext):
        raise ParseError(400, "malformed chunked body: a chunk extension is not ;name or ;name=value")
    return int(size, 16)


def _check_field(line: bytes, what: str) -> None:
    if line.translate(None, _HEAD_BYTES) or b"\r" in line or b"\n" in line:
        raise ParseError(400, f"a {what} field holds a control character (CR, LF, NUL, ...)")
    name, sep, _ = line.partition(b":")
    if not sep or not _TOKEN.fullmatch(name.decode("latin-1")):
        raise ParseError(400, f"malformed {what} field {line[:40]!r}; write it as Name: value")
    if name.lower() in (b"content-length", b"transfer-encoding"):
        raise ParseError(400, f"{name.decode('latin-1')} is not allowed in a {what} (RFC 9110 6.5.1)")


def parse_head(raw: bytes, max_body: int) -> Request:
    """Parse a request head (without its final CRLFCRLF). Raises ParseError."""
    # One pass for NUL/DEL/control bytes and bare CR or LF: drop every allowed byte; what is left
    # must be exactly the head's CRLF pairs (counting them in the head itself, so that "\r \n",
    # which leaves "\r\n" behind, is caught).
    if len(raw.translate(None, _TEXT_BYTES)) != 2 * raw.count(b"\r\n"):
        raise ParseError(400, "the request head holds a control character (NUL, DEL, ...) or a bare CR or LF; "
                              "end every line with CRLF")
    text = raw.decode("latin-1")
    line, _, fields = text.partition("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[1]:
        raise ParseError(400, "malformed request line; send METHOD /path HTTP/1.1")
    method, target, version = parts
    if method not in METHODS:
        if not _TOKEN.fullmatch(method):
            raise ParseError(400, "malformed request line; send METHOD /path HTTP/1.1")
        raise ParseError(501, f"method {method[:20]!r} is not implemented; use GET or POST")
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        if _VERSION.fullmatch(version):
            raise ParseError(505, f"{version} is not supported; use HTTP/1.1")
        raise ParseError(400, "malformed request line; send METHOD /path HTTP/1.1")
    headers: dict[str, str] = {}
    if fields:
        for field in fields.split("\r\n"):
            name, sep, value = field.partition(":")
            if not sep:
                _bad_field(fields)
            key = name.lower()
            if key in headers:
                if key in _UNIQUE:
                    raise ParseError(400, f"the request has more than one {name} header; send one")
                headers[key] += ", " + value.strip(" \t")
            else:
                headers[key] = value.strip(" \t")
        if "transfer-encoding" in headers and _TE_TAB.search(fields):
            # llhttp refuses a tab after the last coding (a space is fine): frame such a stream as it does
            raise ParseError(400, "the Transfer-Encoding value ends in a tab; send Transfer-Encoding: chunked")
        # Every name a token (no whitespace: no obs-fold, no "Name : value"), every line a colon:
        # checked once for all lines rather than line by line.
        if "" in headers or not _TOKEN.fullmatch("".join(headers)):
            _bad_field(fields)
    return build_request(method, target, version, headers, max_body)


def build_request(method: str, target: str, version: str, headers: dict[str, str], max_body: int) -> Request:
    """The checks on a head whose syntax is valid, shared by both head parsers (this module's and
    llhttp's): Host, framing, target form, Connection, Expect. Raises ParseError."""
    http11 = version == "HTTP/1.1"
    if http11 and "host" not in headers:
        raise ParseError(400, "an HTTP/1.1 request needs a Host header")
    declared = headers.get("content-length")
    if "transfer-encoding" in headers:
        length = _body_length(headers, http11, max_body)
    elif declared is None:
        length = 0
    elif declared.isdigit() and declared.isascii() and len(declared) <= 18:  # the usual Content-Length
        length = int(declared)
        if length > max_body:
            raise ParseError(413, too_large(f"request body is {length} bytes,", max_body))
    else:
        length = _body_length(headers, http11, max_body)
    if target[0] == "/" and target.isascii() and "\t" not in target:
        path, _, query = target.partition("?")
    else:
        path, query = _other_target(method, target)
    connection = headers.get("connection")
    keep_alive = http11 if connection is None else _keep_alive(connection, http11)
    expect = http11 and "expect" in headers and headers["expect"].lower() == "100-continue"
    return Request(method, target, path, query, version, headers, keep_alive, length, expect,
                   headers.get("content-encoding"))


def head_key(head: str) -> tuple[str, int, int]:
    """(the head less its Content-Length value, where the value starts, where it ends): the value
    of the first ``Content-Length:``, else of the first ``content-length:`` (the spellings clients
    send); (head, -1, -1) when the head has neither. What usual_request remembers a head's answer
    under, and llhttp.py a head llhttp has accepted."""
    at = head.find("\r\nContent-Length:")
    if at < 0:
        at = head.find("\r\ncontent-length:")
        if at < 0:
            return head, -1, -1
    at += 17
    stop = head.find("\r\n", at)
    return head[:at] + head[stop:], at, stop


def usual_request(head: str, max_body: int, cut: tuple[str, int, int] | None = None) -> Request | None:
    """The usual request, read from a head (decoded, CRLFCRLF included) that llhttp has accepted,
    without splitting its header fields: build_request's answer, or None when the head is not the
    usual kind (then the caller asks the strict parser, which has the answer and its message).

    Usual: exactly METHOD SP target SP HTTP/1.x with a method of RFC 9110 (llhttp skips extra
    spaces and knows more methods and versions), an origin-form target of visible ASCII, exactly one Host, no
    Transfer-Encoding, Expect or Content-Encoding. A field is found as CRLF + name + colon in the
    lowercased head, since llhttp has refused whitespace before a colon, folded lines and bare CR
    or LF. What llhttp has already refused is not checked again: a repeated Content-Length, and
    one that is not digits (optionally followed by blanks, which int() skips too);
    test_http_differential holds both backends to the same answers on every stream.

    Reading a head costs microseconds under load, and a client sends the same head again and again
    but for its Content-Length (a probe; an SDK posting tensors, whose bodies differ in length): so
    the answer is remembered in _usual_heads under the head with the Content-Length value cut out
    (the usual spellings, ``Content-Length:`` and ``content-length:``), or under the whole head when
    it has neither. The answer depends on the rest of the head alone, and on the value only
    through int(value) and max_body, which are applied on every read. ``cut`` is head_key(head),
    when the caller has it already."""
    key, at, stop = head_key(head) if cut is None else cut
    known = _usual_heads.get(key)
    if known is not None:
        method, target, path, query, version, keep_alive, length = known
        if at >= 0:
            value = _usual_length(head, at, stop, max_body)
            if value is None:
                return None
            length = value
        elif length > max_body:
            return None
        return Request(method, target, path, query, version, head, keep_alive, length, False)
    read = _usual_head(head, max_body)
    if read is None:
        return None
    known, offset = read
    # under the cut head only when the value cut out is the one read (the first, in any spelling)
    if len(key) <= _USUAL_HEAD_CHARS and (at < 0 or offset == at):
        remember(_usual_heads, _USUAL_HEADS, key, known)
    method, target, path, query, version, keep_alive, length = known
    return Request(method, target, path, query, version, head, keep_alive, length, False)


def _usual_head(head: str, max_body: int) -> tuple[tuple[str, str, str, str, str, bool, int], int] | None:
    """usual_request's reading of a head it does not remember: ((method, target, path, query,
    version, keep_alive, length), where the Content-Length value starts or -1), or None."""
    line = head[:head.find("\r\n")]
    parts = _usual_lines.get(line)
    if parts is None:
        parts = _usual_line(line)
        if parts is None:
            return None
    method, target, path, query, version = parts
    http11 = version == "HTTP/1.1"
    low = head.lower()
    if (low.count("\r\nhost:") != 1 or "\r\ntransfer-encoding:" in low or "\r\nexpect:" in low
            or "\r\ncontent-encoding:" in low):
        return None
    at = low.find("\r\ncontent-length:")
    if at < 0:
        length = 0
    else:
        at += 17
        value = _usual_length(low, at, low.find("\r\n", at), max_body)
        if value is None:
            return None
        length = value
    if "\r\nconnection:" not in low:
        keep_alive = http11
    elif "\r\nconnection: keep-alive\r\n" in low and low.count("\r\nconnection:") == 1:  # what clients send
        keep_alive = True
    else:
        connection = low.find("\r\nconnection:") + 13
        if low.find("\r\nconnection:", connection) >= 0:
            return None
        keep_alive = _keep_alive(low[connection:low.find("\r\n", connection)].strip(" \t"), http11)
    return (method, target, path, query, version, keep_alive, length), at


def _usual_length(head: str, at: int, stop: int, max_body: int) -> int | None:
    """The Content-Length value head[at:stop] of a head llhttp accepted, or None for the strict
    parser to decide: when it may be over 18 digits (the strict parser's limit), is not a number
    int() reads (not if llhttp accepted it), or is over max_body."""
    if stop - at > 19:
        return None
    try:
        length = int(head[at:stop])
    except ValueError:
        return None
    return length if length <= max_body else None


def _usual_line(line: str) -> tuple[str, str, str, str, str] | None:
    """(method, target, path, query, version) of a usual request line, remembered in _usual_lines;
    None when the line is not usual. A server sees few distinct lines (POST /predict HTTP/1.1, the
    probes), and parsing one costs a microsecond under load (docs/benchmarks.md): each is parsed
    once. At most _USUAL_LINES of them, up to 256 characters each, are kept."""
    match = _USUAL_LINE.fullmatch(line)
    if match is None:
        return None
    method, target, path, query, minor = match.groups()
    parts = (method, target, path, query or "", "HTTP/1.1" if minor == "1" else "HTTP/1.0")
    if len(line) <= 256:
        remember(_usual_lines, _USUAL_LINES, line, parts)
    return parts


def remember(memory: dict[str, Any], bound: int, key: str, value: Any) -> None:
    """Keep ``value`` under ``key`` in one of the usual-request memories, which hold at most
    ``bound`` entries: a full one is emptied first (cheaper than tracking which entry is oldest;
    a server's few usual lines and heads are back after one reading each)."""
    if len(memory) >= bound:
        memory.clear()
    memory[key] = value


def _bad_field(fields: str) -> None:
    """Name the first malformed header line (the fast check only says there is one)."""
    for field in fields.split("\r\n"):
        name, sep, _ = field.partition(":")
        if not sep:
            raise ParseError(400, f"header line {field[:40]!r} has no colon; write it as Name: value")
        if not _TOKEN.fullmatch(name):
            # covers obs-fold (a line starting with whitespace) and "Name : value"
            raise ParseError(400, f"malformed header name {name[:40]!r}: no whitespace before the colon, "
                                  "no folded lines")
    raise ParseError(400, "malformed header section")


def _body_length(headers: dict[str, str], http11: bool, max_body: int) -> int:
    """Content-Length, or -1 for chunked (RFC 9112 6.3). Raises ParseError."""
    te = headers.get("transfer-encoding")
    if te is not None:
        if "content-length" in headers:
            # Both framings at once is how requests are smuggled past proxies: refuse (RFC 9112 6.3).
            raise ParseError(400, "a request must not carry both Transfer-Encoding and Content-Length; send one")
        if not http11:
            raise ParseError(400, "Transfer-Encoding is not allowed on HTTP/1.0; send Content-Length")
        codings = [c.strip(" \t").lower() for c in te.split(",")]
        if codings[-1] != "chunked" or codings.count("chunked") != 1:
            raise ParseError(400, f"Transfer-Encoding {te!r} does not end in a single chunked; send chunked")
        if len(codings) > 1:
            raise ParseError(501, f"Transfer-Encoding {te!r} is not supported; "
                                  "send Transfer-Encoding: chunked or Content-Length")
        return -1
    raw = headers["content-length"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ParseError(400, f"Content-Length {raw[:20]!r} is not a non-negative integer")
    length = int(raw)
    if length > max_body:
        raise ParseError(413, too_large(f"request body is {length} bytes,", max_body))
    return length


# The usual request line: a method of RFC 9110, one space, an origin-form target of visible ASCII
# (its path, and its query after the first "?"), one space, HTTP/1.1 or HTTP/1.0.
_USUAL_LINE = re.compile(r"(%s) ((/[!->@-~]*)(?:\?([!-~]*))?) HTTP/1\.([01])" % "|".join(sorted(METHODS)))
_USUAL_LINES = 512
_usual_lines: dict[str, tuple[str, str, str, str, str]] = {}
_USUAL_HEADS = 512  # heads (less their Content-Length value) of up to _USUAL_HEAD_CHARS each: 512 KiB
_USUAL_HEAD_CHARS = 1024
_usual_heads: dict[str, tuple[str, str, str, str, str, bool, int]] = {}
_TE_TAB = re.compile(r"(?im)^transfer-encoding:[^\r\n]*\t *(?:\r|\Z)")
_NOT_IN_AUTHORITY = frozenset('"#<>\\^`{|}')


def _other_target(method: str, target: str) -> tuple[str, str]:
    """(path, query) of a target that is not origin-form /path?query."""
    if "\t" in target or not target.isascii():
        raise ParseError(400, "the request target holds a tab or non-ASCII bytes; percent-encode them")
    path, _, query = target.partition("?")
    lower = path[:8].lower()
    if lower.startswith("http://") or lower.startswith("https://"):  # absolute-form (proxies)
        rest = path.split("//", 1)[1]
        slash = rest.find("/")
        authority = rest[:slash] if slash >= 0 else rest
        if not _NOT_IN_AUTHORITY.isdisjoint(authority):  # what llhttp refuses in a host (RFC 3986 3.2)
            raise ParseError(400, f"the host in request target {target[:40]!r} holds a character no host can have; "
                                  "percent-encode it, or send /path with a Host header")
        return (rest[slash:] if slash >= 0 else "/"), query
    if target == "*" and method == "OPTIONS":
        return "*", ""
    raise ParseError(400, f"request target {target[:40]!r} is not /path or http://host/path")


def _keep_alive(connection: str, http11: bool) -> bool:
    """Whether a Connection value (stripped) keeps the connection open: "close" among its tokens
    closes it; HTTP/1.0 stays open only with "keep-alive". One token, the usual case, needs no set."""
    tokens = connection.lower()
    if "," not in tokens:
        return tokens != "close" and (http11 or tokens == "keep-alive")
    listed = {t.strip(" \t") for t in tokens.split(",")}
    return "close" not in listed and (http11 or "keep-alive" in listed)


def frame(stream: bytes, max_body: int = 1 << 20, split: int = 0,
          parser_class: type[RequestParser] | None = None) -> tuple[list[Request], str]:
    """Frame a whole byte stream as a connection would: (requests, outcome) where outcome is
    "complete", "incomplete" (bytes left over), "closed" (a request ended the connection) or
    "error <status>". ``split`` > 0 feeds the stream in pieces of that size (tests);
    ``parser_class``: another head parser (llhttp.py), by default this module's."""
    parser = (parser_class or RequestParser)(max_body)
    requests: list[Request] = []
    pieces = [stream[i:i + split] for i in range(0, len(stream), split)] if split else [stream]
    for piece in pieces:
        parser.feed(piece)
        while True:
            try:
                request = parser.next()
            except ParseError as exc:
                return requests, f"error {exc.status}"
            if request is None:
                break
            requests.append(request)
            if not request.keep_alive:
                return requests, "closed"
    return requests, "incomplete" if parser.partial else "complete"


def decode_chunked(buf: bytes | bytearray, pos: int, limit: int) -> tuple[bytes, int] | None:
    """Decode a chunked body that starts at ``pos`` in one go: (body, offset after it), or None
    while incomplete. ValueError for bad framing, OverflowError past ``limit``."""
    parser = RequestParser(limit)
    parser.head = Request("POST", "/", "/", "", "HTTP/1.1", {}, True, -1, False)
    parser._state = _SIZE
    parser.feed(bytes(buf[pos:]))
    try:
        request = parser.next()
    except ParseError as exc:
        if exc.status == 413:
            raise OverflowError(exc.message) from None
        raise ValueError(exc.message) from None
    return None if request is None else (request.body, pos + parser.pos)
