"""Differential tests: our request framing (runtime/wire.py) against llhttp (httptools) and h11.

Two rules, over the issue's cases, the published request-smuggling classes and Hypothesis variants:
- every request we accept, httptools frames the same way: same method, target and body, in the
  same place in the stream (what we accept is a subset of what llhttp accepts, framed alike);
- we never accept a request that both httptools and h11 reject.
Our parser is also fed each stream one byte at a time and must frame it exactly as when fed whole.

Every test runs with both of the runtime's head parsers (``backend``): the strict pure-Python one
(wire.py) and llhttp through httptools with the thin check layer (llhttp.py). Both must also cut
every stream into the very same requests (method, target, headers, keep-alive, body) and refuse
the same ones with the same status and message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("httptools")
pytest.importorskip("h11")
from hypothesis import HealthCheck, assume, given, settings, strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from http_refs import Message, h11_frame, llhttp  # noqa: E402

from dockyard.runtime import llhttp as llhttp_backend, wire  # noqa: E402
from dockyard.runtime.wire import ParseError, Request, RequestParser, frame  # noqa: E402

LLHTTP_PARSER, _ = llhttp_backend.select("llhttp")
BACKENDS = {"python": RequestParser, "llhttp": LLHTTP_PARSER}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> type[RequestParser]:
    return BACKENDS[request.param]

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /predict HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


# (name, stream): each is followed by SMUGGLED, which must never come out as a request of its own
# unless httptools frames it the same way.
ISSUE_CASES = [
    ("obs-fold", _post(b"X-A: a\r\n b\r\nContent-Length: 5\r\n", b"hello")),
    ("obs-fold hides TE", _post(b"X-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n")),
    ("space before colon", _post(b"Content-Length : 5\r\n", b"hello")),
    ("tab before colon", _post(b"Content-Length\t: 5\r\n", b"hello")),
    ("conflicting Content-Length", _post(b"Content-Length: 5\r\nContent-Length: 41\r\n", b"hello")),
    ("duplicate equal Content-Length", _post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello")),
    ("Content-Length list", _post(b"Content-Length: 5, 5\r\n", b"hello")),
    ("Content-Length +5", _post(b"Content-Length: +5\r\n", b"hello")),
    ("Content-Length of 19 digits", _post(b"Content-Length: 0000000000000000005\r\n", b"hello")),
    ("Content-Length 0_5", _post(b"Content-Length: 0_5\r\n", b"hello")),
    ("Content-Length -0", _post(b"Content-Length: -0\r\n", b"")),
    ("Content-Length 0x5", _post(b"Content-Length: 0x5\r\n", b"hello")),
    ("Content-Length superscript", _post(b"Content-Length: \xb2\r\n", b"hi")),
    ("Content-Length overflow", _post(b"Content-Length: 99999999999999999999999\r\n", b"")),
    ("bare LF hides a header", _post(b"X-A: a\nContent-Length: 5\r\n", b"hello")),
    ("bare LF ends the head", b"POST / HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello"),
    ("bare CR in a value", _post(b"X-A: a\rContent-Length: 5\r\n", b"hello")),
    # found by the two-backend comparison: "\r \n" passed a check that removed allowed bytes first
    ("CR SP LF hides a header", _post(b"X-A: a\r \nContent-Length: 5\r\n", b"hello")),
    ("NUL in a value", _post(b"X-A: a\x00b\r\nContent-Length: 5\r\n", b"hello")),
    ("header line without colon", _post(b"Content-Length 5\r\n", b"hello")),
    ("chunk extension with LF", _post(b"Transfer-Encoding: chunked\r\n", b"5;a=\nb\r\nhello\r\n0\r\n\r\n")),
    ("last chunk without its CRLF", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\n")),
    ("chunk-size line over 1 KiB", _post(b"Transfer-Encoding: chunked\r\n",
                                         b"5;a=" + b"b" * 1100 + b"\r\nhello\r\n0\r\n\r\n")),
    ("chunk size with 1 KiB of zeros", _post(b"Transfer-Encoding: chunked\r\n", b"0" * 1100 + b"5\r\nhello\r\n0\r\n\r\n")),
]

SMUGGLING_CLASSES = [
    # CL.TE / TE.CL: both framings; a front end reading one and us the other would split differently
    ("CL.TE", _post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nG")),
    ("TE.CL", _post(b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n")),
    ("TE obfuscated: xchunked", _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n")),
    ("TE obfuscated: chunked, identity", _post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n")),
    ("TE obfuscated: two headers", _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", b"0\r\n\r\n")),
    ("TE obfuscated: chunked twice", _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                                           b"0\r\n\r\n")),
    ("TE obfuscated: tab", _post(b"Transfer-Encoding:\tchunked\r\n", b"0\r\n\r\n")),
    ("TE obfuscated: vertical tab", _post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n")),
    ("TE obfuscated: space before colon", _post(b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n",
                                                b"0\r\n\r\n")),
    ("TE on HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
                       b"0\r\n\r\n"),
    # CL.0 / TE.0: a body on a request whose handler ignores bodies must still be consumed
    ("CL.0", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED)),
    ("TE.0", b"OPTIONS / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
             % (len(SMUGGLED), SMUGGLED)),
    # chunk extensions and sizes
    ("chunk ext: bare LF after ;", _post(b"Transfer-Encoding: chunked\r\n", b"2;\nxx\r\n0\r\n\r\n")),
    ("chunk ext: quoted CRLF", _post(b"Transfer-Encoding: chunked\r\n", b'2;a="\r\n"\r\nxx\r\n0\r\n\r\n')),
    ("chunk ext: quoted", _post(b"Transfer-Encoding: chunked\r\n", b'2;a="b c"\r\nxx\r\n0\r\n\r\n')),
    ("chunk ext: token", _post(b"Transfer-Encoding: chunked\r\n", b"2;a=b;c\r\nxx\r\n0\r\n\r\n")),
    ("chunk size: leading space", _post(b"Transfer-Encoding: chunked\r\n", b" 2\r\nxx\r\n0\r\n\r\n")),
    ("chunk size: trailing space", _post(b"Transfer-Encoding: chunked\r\n", b"2 \r\nxx\r\n0\r\n\r\n")),
    ("chunk size: 0x", _post(b"Transfer-Encoding: chunked\r\n", b"0x2\r\nxx\r\n0\r\n\r\n")),
    ("chunk size: +", _post(b"Transfer-Encoding: chunked\r\n", b"+2\r\nxx\r\n0\r\n\r\n")),
    ("chunk size: -", _post(b"Transfer-Encoding: chunked\r\n", b"-2\r\nxx\r\n0\r\n\r\n")),
    ("chunk size: bare LF", _post(b"Transfer-Encoding: chunked\r\n", b"2\nxx\r\n0\r\n\r\n")),
    ("chunk size: overflow", _post(b"Transfer-Encoding: chunked\r\n", b"1" * 17 + b"\r\nxx\r\n0\r\n\r\n")),
    ("chunk data: bare LF after", _post(b"Transfer-Encoding: chunked\r\n", b"2\r\nxx\n0\r\n\r\n")),
    ("chunk data: longer than its size", _post(b"Transfer-Encoding: chunked\r\n", b"2\r\nxxx\r\n0\r\n\r\n")),
    ("chunk data: shorter than its size", _post(b"Transfer-Encoding: chunked\r\n", b"3\r\nxx\r\n0\r\n\r\n")),
    # trailers
    ("trailer: Content-Length", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\nContent-Length: 5\r\n\r\n")),
    ("trailer: ordinary", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX-T: 1\r\nX-U: 2\r\n\r\n")),
    ("trailer: bare LF", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX-T: 1\nX-U: 2\r\n\r\n")),
    ("trailer: no colon", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX-T 1\r\n\r\n")),
    ("trailer: obs-fold", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX-T: 1\r\n 2\r\n\r\n")),
    ("trailer: a request line", _post(b"Transfer-Encoding: chunked\r\n", b"0\r\n" + SMUGGLED)),
    # request lines and hosts
    ("leading CRLF", b"\r\n" + SMUGGLED),
    ("double space", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("trailing space", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n"),
    ("tab in target", b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("lowercase version", b"GET / http/1.1\r\nHost: x\r\n\r\n"),
    ("version 1.10", b"GET / HTTP/1.10\r\nHost: x\r\n\r\n"),
    ("method not a token", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("absolute-form", b"GET http://x/healthz?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    # found by the Hypothesis variants below: a quote in an absolute-form host, accepted by the pure parser
    # (which then framed the next request), refused by llhttp
    ("absolute-form host with a quote", b'GET http://"x/p?q HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'
                                        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    # also found by them: llhttp refuses a tab after Transfer-Encoding's last coding (a space it allows)
    ("TE: chunked then a tab", _post(b"Transfer-Encoding: chunked\t\r\n", b"0\r\n\r\n" + SMUGGLED)),
    ("TE: chunked then a space and a tab", _post(b"Transfer-Encoding: chunked \t\r\nX-A: 1\r\n", b"0\r\n\r\n")),
    ("TE: chunked then a space", _post(b"Transfer-Encoding: chunked \r\n", b"0\r\n\r\n" + SMUGGLED)),
    ("absolute-form host with a brace", b"GET http://x{/p HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("no Host", b"GET / HTTP/1.1\r\n\r\n"),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
    ("HTTP/1.0 no Host", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    ("pipelined keep-alive", SMUGGLED * 3),
    ("Connection: close list", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x, close\r\n\r\n"),
    ("empty header name", _post(b": x\r\nContent-Length: 5\r\n", b"hello")),
    ("DEL in a value", _post(b"X-A: a\x7fb\r\nContent-Length: 5\r\n", b"hello")),
    ("obs-text in a value", _post(b"X-A: caf\xe9\r\nContent-Length: 5\r\n", b"hello")),
]

CORPUS = ISSUE_CASES + SMUGGLING_CLASSES
MUST_REJECT = {name for name, _ in ISSUE_CASES} - {"duplicate equal Content-Length"} | {
    "CL.TE", "TE.CL", "TE obfuscated: xchunked", "TE obfuscated: chunked, identity", "TE obfuscated: two headers",
    "TE obfuscated: vertical tab", "TE obfuscated: space before colon", "chunk ext: bare LF after ;",
    "chunk ext: quoted CRLF", "chunk size: 0x", "chunk size: +", "chunk size: -", "chunk size: bare LF",
    "chunk size: overflow", "chunk data: bare LF after", "chunk data: longer than its size", "trailer: bare LF",
    "trailer: no colon", "trailer: obs-fold", "trailer: a request line", "no Host", "two Hosts"}


def full_frame(stream: bytes, parser_class: type[RequestParser]) -> tuple[list[tuple[object, ...]], str]:
    """Everything a backend makes of a stream: each request's fields, and the outcome with the
    error's message."""
    parser, out = parser_class(1 << 20), []
    parser.feed(stream)
    while True:
        try:
            r = parser.next()
        except ParseError as exc:
            return out, f"error {exc.status}: {exc.message}"
        if r is None:
            return out, "incomplete" if parser.partial else "complete"
        out.append(_fields(r))
        if not r.keep_alive:
            return out, "closed"


def _fields(r: Request) -> tuple[object, ...]:
    return (r.method, r.target, r.path, r.query, r.version, r.headers, r.keep_alive, r.length,
            r.expect_continue, r.body)


def check_against_references(stream: bytes, backend: type[RequestParser] = RequestParser) -> tuple[list[Message], str]:
    # both backends make the very same requests and errors of every stream
    assert full_frame(stream, RequestParser) == full_frame(stream, LLHTTP_PARSER), stream
    ours, outcome = frame(stream, parser_class=backend)
    mine = [(r.method, r.target, r.body) for r in ours]
    # incremental decoding frames exactly as decoding the whole stream at once
    for split in (1, 7):
        again, outcome_again = frame(stream, split=split, parser_class=backend)
        assert ([(r.method, r.target, r.body) for r in again], outcome_again) == (mine, outcome), split
    theirs, their_outcome = llhttp(stream)
    if their_outcome == "upgrade":  # llhttp stops reading HTTP there; we do not (we never upgrade)
        mine = mine[:len(theirs)]
    assert theirs[:len(mine)] == mine, f"httptools frames {stream!r} as {theirs}, we as {mine} ({outcome})"
    h11_messages, h11_outcome = h11_frame(stream)
    # h11 also stops after an HTTP/1.0 request (it has no 1.0 keep-alive): only errors count
    rejected_at = [len(m) for m, out in ((theirs, their_outcome), (h11_messages, h11_outcome)) if out == "error"]
    both_reject_from = max(rejected_at) if len(rejected_at) == 2 else len(mine)
    assert len(mine) <= both_reject_from, (
        f"we accept {mine[both_reject_from:]} that httptools and h11 both reject")
    return mine, outcome


@pytest.mark.parametrize(("name", "stream"), CORPUS, ids=[name for name, _ in CORPUS])
def test_corpus_is_framed_like_llhttp(name: str, stream: bytes, backend: type[RequestParser]) -> None:
    mine, outcome = check_against_references(stream + SMUGGLED, backend)
    if name in MUST_REJECT:
        assert outcome.startswith("error"), f"{name}: accepted as {mine}"
        assert all(target != "/smuggled" for _, target, _ in mine)


def test_our_parser_accepts_ordinary_requests(backend: type[RequestParser]) -> None:
    ok = [
        _post(b"Content-Length: 5\r\n", b"hello"),
        _post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        _post(b"transfer-encoding: Chunked\r\n", b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: a b\r\nAccept:*/*\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",
    ]
    for stream in ok:
        mine, outcome = check_against_references(stream, backend)
        assert len(mine) == 1 and outcome in ("complete", "closed"), (stream, outcome)


def test_the_check_fails_when_we_accept_what_llhttp_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite must be able to fail: a parser that reads 'Content-Length : 5' is caught."""
    import dockyard.runtime.wire as wire
    import re

    monkeypatch.setattr(wire, "_TOKEN", re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z ]+"))
    with pytest.raises(AssertionError):
        check_against_references(_post(b"Content-Length : 5\r\n", b"hello") + SMUGGLED)


def test_the_check_fails_when_the_llhttp_layer_forgets_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """llhttp accepts a request without Host; the thin layer must refuse it. Loosened, the suite fails."""
    real = llhttp_backend.usual_request

    def no_host_check(head: str, max_body: int, cut: object = None) -> Request | None:
        return real(head.replace("\r\n", "\r\nHost: x\r\n", 1), max_body)

    monkeypatch.setattr(llhttp_backend, "usual_request", no_host_check)
    loose = llhttp_backend.make_parser_class(__import__("httptools"))
    no_host = dict(CORPUS)["no Host"]
    with pytest.raises(AssertionError):
        test_corpus_is_framed_like_llhttp("no Host", no_host, loose)


def test_the_llhttp_backend_parses_heads_with_llhttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ordinary heads never reach the pure parser in the llhttp backend; odd ones (a repeated
    header name) do, so that their answer is the pure parser's."""
    calls: list[bytes] = []
    real = llhttp_backend.parse_head

    def spy(raw: bytes, max_body: int) -> Request:
        calls.append(raw)
        return real(raw, max_body)

    monkeypatch.setattr(llhttp_backend, "parse_head", spy)
    ordinary = _post(b"Content-Type: application/json\r\nContent-Length: 5\r\n", b"hello")
    requests_, outcome = frame(ordinary * 2, parser_class=LLHTTP_PARSER)
    assert [r.body for r in requests_] == [b"hello", b"hello"] and outcome == "complete"
    assert calls == []
    # a repeated name is joined as the pure parser joins it, when a header is first read
    repeated = _post(b"Accept: a\r\naccept: b\r\nContent-Length: 5\r\n", b"hello")
    requests_, _ = frame(repeated, parser_class=LLHTTP_PARSER)
    assert calls == [] and requests_[0].headers["accept"] == "a, b"
    assert dict(requests_[0].headers) == full_frame(repeated, RequestParser)[0][0][5]
    # the unusual ones get the pure parser's answer: a second Host, a Transfer-Encoding, an Expect
    for unusual in (b"Host: y\r\nContent-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n",
                    b"Expect: 100-continue\r\nContent-Length: 5\r\n"):
        stream = _post(unusual, b"5\r\nhello\r\n0\r\n\r\n" if b"chunked" in unusual else b"hello")
        calls.clear()
        assert full_frame(stream, LLHTTP_PARSER) == full_frame(stream, RequestParser)
        assert len(calls) == 1, unusual


def test_llhttp_reads_each_distinct_head_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh llhttp parser reads each head alone, however the bytes are split, until it has
    accepted that head: then the same head with other Content-Length digits is vouched for without
    llhttp. Heads that differ elsewhere, whose value is not plain digits, or that llhttp refuses
    are read by llhttp every time; the memory is bounded."""
    httptools = __import__("httptools")
    made: list[object] = []
    real_parser = httptools.HttpRequestParser

    class Counting(real_parser):  # type: ignore[misc, valid-type]
        def __init__(self, callbacks: object) -> None:
            made.append(self)
            super().__init__(callbacks)

    monkeypatch.setattr(httptools, "HttpRequestParser", Counting)
    monkeypatch.setattr(llhttp_backend, "_vouched", {})
    counted = llhttp_backend.make_parser_class(httptools)
    stream = (_post(b"Content-Length: 5\r\n", b"hello") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              + _post(b"Content-Length: 3\r\n", b"abc") + _post(b"Connection: close\r\nContent-Length: 2\r\n", b"ok"))
    expected = [("POST", b"hello"), ("GET", b""), ("POST", b"abc"), ("POST", b"ok")]
    requests_, outcome = frame(stream, parser_class=counted)
    assert [(r.method, r.body) for r in requests_] == expected and outcome == "closed"
    assert len(made) == 3  # three distinct heads: the second POST differs from the first only in its digits
    assert set(llhttp_backend._vouched) == {
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length:\r\n\r\n"}
    for split in (0, 1, 7):
        made.clear()
        requests_, outcome = frame(stream, split=split, parser_class=counted)
        assert [(r.method, r.body) for r in requests_] == expected and outcome == "closed"
        assert made == [], split  # all vouched for
    assert full_frame(stream, counted) == full_frame(stream, RequestParser)

    # read by llhttp every time: a value that is not one space and plain digits (another
    # spelling of the same number, or too many digits to be sure llhttp holds them), a head llhttp
    # refuses, and a head that differs in any other byte
    for odd in (_post(b"Content-Length:5\r\n", b"hello"), _post(b"Content-Length:  5\r\n", b"hello"),
                _post(b"Content-Length: 5 \r\n", b"hello"), _post(b"Content-Length: 0000000000000000005\r\n", b"hello"),
                _post(b"Content-Length: \xb2\r\n", b"he"), _post(b"Transfer-Encoding: gzip\r\n", b"")):
        made.clear()
        first = full_frame(odd * 2, counted)
        assert first == full_frame(odd * 2, RequestParser), odd
        assert len(made) == (2 if first[0] else 1), odd  # a refused head ends the stream
    made.clear()
    frame(_post(b"Content-Length: 5\r\nX-Request-Id: 1\r\n", b"hello")
          + _post(b"Content-Length: 5\r\nX-Request-Id: 2\r\n", b"hello"), parser_class=counted)
    assert len(made) == 2

    # bounded: a full memory is emptied, and a head over 1 KiB is never kept
    monkeypatch.setattr(llhttp_backend, "_VOUCHED", 4)
    for n in range(10):
        frame(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % n, parser_class=counted)
        assert 1 <= len(llhttp_backend._vouched) <= 4
    frame(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"a" * 1100), parser_class=counted)
    assert all(len(key) <= 1024 for key in llhttp_backend._vouched)


def test_a_head_llhttp_refuses_after_reading_it_is_never_vouched_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """llhttp refuses some heads only after it has called on_headers_complete for them (a request
    whose Transfer-Encoding does not end in chunked): that head must not count as read. With a
    check layer loosened to take such heads as usual, the refusal still lands on it, whether the
    head arrives in the packet of the request before it or byte by byte."""
    real = llhttp_backend.usual_request

    def loose(head: str, max_body: int, cut: object = None) -> Request | None:
        return real(head.replace("Transfer-Encoding: gzip\r\n", ""), max_body)

    monkeypatch.setattr(llhttp_backend, "usual_request", loose)
    loosened = llhttp_backend.make_parser_class(__import__("httptools"))
    stream = _post(b"Content-Length: 5\r\n", b"hello") + _post(b"Transfer-Encoding: gzip\r\n", b"")
    for split in (0, 1, 7):
        parser = loosened(1 << 20)
        got: list[bytes] = []
        with pytest.raises(ParseError) as refused:
            for at in range(0, len(stream), split or len(stream)):
                parser.feed(stream[at:at + (split or len(stream))])
                while (request := parser.next()) is not None:
                    got.append(request.body)
        assert got == [b"hello"] and refused.value.status == 400, split
        assert "Transfer-Encoding" in refused.value.message, split


# -- Hypothesis variants -----------------------------------------------------------------------
TOKENS = st.sampled_from([b"X-A", b"Content-Length", b"Transfer-Encoding", b"Host", b"Connection",
                          b"content-length", b"TRANSFER-ENCODING", b"Expect"])
VALUES = st.sampled_from([b"5", b"0", b"chunked", b"close", b"keep-alive", b"x", b"+5", b"05", b"5 ",
                          b"chunked, gzip", b"gzip, chunked", b"100-continue", b"a b", b""])
DANGER = st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b";", b"+", b"-", b"0", b"\r\n\r\n",
                          b"\r\n ", b"=", b'"', b"\x7f", b"\x0b", b"\xff"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"OPTIONS"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    target = draw(st.sampled_from([b"/p?q=1", b"/p", b"http://x/p?q", b"HTTPS://x", b"*", b"/a%20b", b'/a"b',
                                   b"/a<b>", b"/a{b}|c", b"/a\\b", b"/a^b`", b"/a#f", b"/\xff", b"//x", b"x/p"]))
    lines = [method + b" " + target + b" " + version, b"Host: x"]
    lines += [name + draw(st.sampled_from([b": ", b":", b":\t", b" : "])) + value
              for name, value in draw(st.lists(st.tuples(TOKENS, VALUES), max_size=4))]
    body = draw(st.binary(max_size=12))
    if draw(st.booleans()):
        lines.append(b"Transfer-Encoding: chunked")
        sizes = draw(st.lists(st.integers(1, 5), max_size=3))
        chunks, at = b"", 0
        for size in sizes:
            ext = draw(st.sampled_from([b"", b";a", b";a=b", b';a="c"']))
            chunks += b"%x%s\r\n%s\r\n" % (size, ext, body[at:at + size].ljust(size, b"z"))
            at += size
        trailer = draw(st.sampled_from([b"", b"X-T: 1\r\n"]))
        payload = chunks + b"0\r\n" + trailer + b"\r\n"
    else:
        lines.append(b"Content-Length: %d" % len(body))
        payload = body
    stream = b"\r\n".join(lines) + b"\r\n\r\n" + payload
    for _ in range(draw(st.integers(0, 2))):  # mutate: insert or delete a byte somewhere
        at = draw(st.integers(0, len(stream)))
        if draw(st.booleans()):
            stream = stream[:at] + draw(DANGER) + stream[at:]
        else:
            stream = stream[:at] + stream[at + 1:]
    return stream + SMUGGLED


@settings(max_examples=int(os.environ.get("DOCKYARD_HYPOTHESIS_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.parametrize("backend_name", list(BACKENDS))
@given(requests())
def test_generated_variants_are_framed_like_llhttp(backend_name: str, stream: bytes) -> None:
    check_against_references(stream, BACKENDS[backend_name])


@settings(max_examples=int(os.environ.get("DOCKYARD_HYPOTHESIS_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.sampled_from([b" 0", b" 3", b" 12", b" 99", b"0", b"5 ", b"+5", b"x"]))
def test_a_remembered_head_answers_as_a_fresh_read(stream: bytes, other: bytes) -> None:
    """wire._usual_heads remembers a head's answer, and llhttp._vouched that llhttp accepted it,
    under the head less its Content-Length value: a stream whose first head was remembered and
    vouched for from a twin (the same head with another value) is framed exactly as when nothing
    was remembered, requests and errors alike."""
    head_end = stream.find(b"\r\n\r\n")
    at = stream.find(b"\r\nContent-Length:", 0, head_end)
    if at < 0:
        at = stream.find(b"\r\ncontent-length:", 0, head_end)
    assume(at >= 0)
    stop = stream.find(b"\r\n", at + 17)
    twin = stream[:at + 17] + other + stream[stop:]
    saved = wire._usual_heads, llhttp_backend._vouched
    try:
        wire._usual_heads, llhttp_backend._vouched = {}, {}
        fresh = full_frame(stream, LLHTTP_PARSER)
        wire._usual_heads, llhttp_backend._vouched = {}, {}
        full_frame(twin, LLHTTP_PARSER)
        assert full_frame(stream, LLHTTP_PARSER) == fresh == full_frame(stream, RequestParser), (stream, twin)
    finally:
        wire._usual_heads, llhttp_backend._vouched = saved


def test_http_parser_setting_is_checked_and_the_python_choice_needs_no_httptools() -> None:
    from dockyard.runtime.config import ConfigProblem, parse_args

    assert parse_args(["--model", "m.joblib"], env={}).http_parser == "auto"
    assert parse_args(["--model", "m.joblib"], env={"DOCKYARD_HTTP_PARSER": "python"}).http_parser == "python"
    with pytest.raises(ConfigProblem) as caught:
        parse_args(["--model", "m.joblib", "--http-parser", "h2o"], env={})
    assert "h2o" in caught.value.problem and "llhttp" in caught.value.fix
    assert llhttp_backend.select("python")[0] is RequestParser
    # auto without a private folder, outside dockyard.runtime's environment rule: never an error
    parser_class, what = llhttp_backend.select("auto", directory="/nonexistent")
    assert parser_class.backend in ("llhttp", "python") and what.startswith(parser_class.backend)


def test_usual_request_lines_are_parsed_once_and_remembered_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server sees few distinct request lines: each usual one is parsed once, then read from
    _usual_lines; an unusual one is not kept, nor one over 256 characters, and the memory is
    bounded by _USUAL_LINES. A remembered line gives the same request as a fresh parse."""
    monkeypatch.setattr(wire, "_usual_lines", {})
    monkeypatch.setattr(wire, "_USUAL_LINES", 4)
    monkeypatch.setattr(wire, "_usual_heads", {})
    head = "POST /predict?v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    first = wire.usual_request(head, 1 << 20)
    assert list(wire._usual_lines) == ["POST /predict?v=1 HTTP/1.1"]
    matched: list[str] = []
    real = wire._USUAL_LINE

    class Spy:
        def fullmatch(self, line: str) -> object:
            matched.append(line)
            return real.fullmatch(line)

    monkeypatch.setattr(wire, "_USUAL_LINE", Spy())
    again = wire.usual_request(head.replace("Content-Length: 2", "Content-Length: 3"), 1 << 20)
    assert matched == [] and first is not None and again is not None
    assert ((first.method, first.target, first.path, first.query, first.version, first.length)
            == (again.method, again.target, again.path, again.query, again.version, 2)
            == ("POST", "/predict?v=1", "/predict", "v=1", "HTTP/1.1", 2))
    assert again.length == 3 and dict(again) == dict(first) | {"content-length": "3"}
    assert first != wire.usual_request(head, 1 << 20) and first == first  # a request is itself, not its fields

    assert wire.usual_request("POST  /predict HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 20) is None  # two spaces
    assert wire.usual_request("PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 20) is None  # not RFC 9110
    long_target = "/" + "a" * 300
    assert wire.usual_request(f"GET {long_target} HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 20) is not None
    assert list(wire._usual_lines) == ["POST /predict?v=1 HTTP/1.1"]  # neither the odd nor the long one kept
    for n in range(10):
        assert wire.usual_request(f"GET /p{n} HTTP/1.0\r\nHost: x\r\n\r\n", 1 << 20) is not None
        assert len(wire._usual_lines) <= 4
    assert "GET /p9 HTTP/1.0" in wire._usual_lines


def test_usual_heads_are_read_once_and_remembered_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client sends the same head again and again but for its Content-Length: a usual head is
    read once, and is remembered in _usual_heads with its Content-Length value cut out; a head that
    differs only there is answered from memory, equal to a fresh read in every field. The value and
    the body limit are applied on every read. A Content-Length in another spelling is remembered
    with the whole head; a head whose first Content-Length is not the one cut out is not kept;
    unusual and long heads are not kept; memory is bounded by _USUAL_HEADS."""
    monkeypatch.setattr(wire, "_usual_heads", {})
    monkeypatch.setattr(wire, "_USUAL_HEADS", 3)
    head = "POST /predict?v=1 HTTP/1.0\r\nHost: x\r\nContent-Length: 20\r\nConnection: keep-alive\r\n\r\n"
    first = wire.usual_request(head, 1 << 20)
    assert first is not None and list(wire._usual_heads) == [head.replace(": 20\r\n", ":\r\n")]
    lowered: list[str] = []

    class Spy(str):
        def lower(self) -> str:
            lowered.append(self)
            return str.lower(self)

    fields = ("method", "target", "path", "query", "version", "keep_alive", "length", "expect_continue", "encoding")
    for value, length in (("20", 20), ("7", 7), ("0", 0), ("020 ", 20)):
        again = wire.usual_request(Spy(head.replace(": 20\r\n", f": {value}\r\n")), 1 << 20)
        assert lowered == [] and again is not None and again is not first  # remembered: not read again
        assert ([getattr(again, f) for f in fields]
                == ["POST", "/predict?v=1", "/predict", "v=1", "HTTP/1.0", True, length, False, None])
    third = wire.usual_request(head.replace(": 20\r\n", ": 3\r\n"), 1 << 20)
    assert dict(third) == {"host": "x", "connection": "keep-alive", "content-length": "3"}
    assert dict(first) == {"host": "x", "connection": "keep-alive", "content-length": "20"}
    assert wire.usual_request(head, 19) is None  # over this server's limit: the strict parser answers 413
    assert wire.usual_request(head, 20) is not None and len(wire._usual_heads) == 1
    shouted = "POST / HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 5\r\n\r\n"
    assert wire.usual_request(shouted, 1 << 20).length == 5 and shouted in wire._usual_heads  # type: ignore[union-attr]
    assert wire.usual_request(shouted, 4) is None  # the limit applies to a whole remembered head too
    two = "POST / HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 5\r\nContent-Length: 6\r\n\r\n"  # llhttp refuses it
    assert wire.usual_request(two, 1 << 20).length == 5  # type: ignore[union-attr]
    assert len(wire._usual_heads) == 2  # the first Content-Length is not the one that would be cut out
    odd = "POST /predict HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
    assert wire.usual_request(odd, 1 << 20) is None and odd not in wire._usual_heads
    long = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + "a" * wire._USUAL_HEAD_CHARS + "\r\n\r\n"
    assert wire.usual_request(long, 1 << 20) is not None and long not in wire._usual_heads
    for n in range(10):
        assert wire.usual_request(f"GET /p{n} HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 20) is not None
        assert len(wire._usual_heads) <= 3
    assert "GET /p9 HTTP/1.1\r\nHost: x\r\n\r\n" in wire._usual_heads


@pytest.mark.parametrize(("value", "http11", "keeps"), [
    ("keep-alive", True, True), ("keep-alive", False, True), ("close", True, False), ("close", False, False),
    ("Close", True, False), ("upgrade", True, True), ("upgrade", False, False),
    ("x, close", True, False), ("keep-alive, close", False, False), ("te, Keep-Alive", False, True),
    ("te,  x", True, True), ("te, x", False, False),
])
def test_connection_keeps_alive_as_rfc_9112_says(value: str, http11: bool, keeps: bool) -> None:
    """One rule for a Connection value, a single token or a list, in both parsers (RFC 9112 9.3)."""
    assert wire._keep_alive(value, http11) is keeps
