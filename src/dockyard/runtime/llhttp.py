"""llhttp (through httptools) as the runtime's request-head parser, loaded so it cannot clash with
the user's pins.

Where it comes from:
- in an image, the builder installs httptools into ``contract.PARSER_DIR`` (``pip --target``).
  ``load`` imports it from there and then takes it out of ``sys.modules`` and ``sys.path`` again,
  so the user's own ``import httptools`` (another version, or none at all) finds theirs;
- outside an image (``dockyard serve --local``, the runtime running as ``dockyard.runtime``),
  httptools from dockyard's own environment, where it is a dependency;
- otherwise, or when it fails to load: wire.py's strict pure-Python parser.

What it does: ``LlhttpRequestParser`` is wire.RequestParser with the head parsed by llhttp in C.
Framing stays wire.py's (where a head ends, Content-Length bodies, the incremental chunked
decoder with its limits), so both backends cut a byte stream into the same requests. On top of
llhttp a thin layer applies the rules llhttp leaves alone: exactly one Host on HTTP/1.1, the
method set, versions 1.0/1.1 only, one space between the parts of the request line, target forms,
Transfer-Encoding on HTTP/1.0, Content-Length digits and limits (wire.build_request). Anything odd
(llhttp refused it, a check failed, a header name repeats) goes to wire.parse_head, so the answer
is the pure parser's, status and message alike.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from .contract import PARSER_DIR
from .wire import ParseError, Request, RequestParser, parse_head, usual_request

MODES = ("auto", "llhttp", "python")


def load_private(directory: str) -> ModuleType | None:
    """httptools imported from ``directory`` only, then hidden again: None when it is not there.

    The module object stays usable after its names leave ``sys.modules``; a later ``import
    httptools`` (the user's) imports afresh from ``sys.path``, which never holds ``directory``.
    Two copies of the extension can live in one process: CPython keys extension modules by file."""
    if not os.path.isdir(os.path.join(directory, "httptools")):
        return None
    ours = [k for k in sys.modules if k == "httptools" or k.startswith("httptools.")]
    saved = {k: sys.modules.pop(k) for k in ours}
    sys.path.insert(0, directory)
    try:
        module = importlib.import_module("httptools")
        if not os.path.abspath(module.__file__ or "").startswith(os.path.abspath(directory) + os.sep):
            return None
        return module
    except ImportError:
        return None
    finally:
        sys.path.remove(directory)
        for k in [k for k in sys.modules if k == "httptools" or k.startswith("httptools.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def load_environment() -> ModuleType | None:
    try:
        return importlib.import_module("httptools")
    except ImportError:
        return None


def select(mode: str = "auto", directory: str | None = None) -> tuple[type[RequestParser], str]:
    """(parser class, what it is, for the log). ``mode``: auto | llhttp | python.

    auto: llhttp from ``directory`` (default: contract.PARSER_DIR, or ``DOCKYARD_PARSER_DIR``);
    outside an image from dockyard's own environment; else the pure-Python parser.
    llhttp: the same, but ParseError-free failure is a ValueError (the caller reports it)."""
    if mode == "python":
        return RequestParser, "python (strict pure-Python parser, --http-parser python)"
    directory = directory or os.environ.get("DOCKYARD_PARSER_DIR") or PARSER_DIR
    module, where = load_private(directory), directory
    if module is None and (__package__ or "").startswith("dockyard."):  # not in an image: dockyard's env
        module, where = load_environment(), "dockyard's environment"
    if module is None:
        if mode == "llhttp":
            raise ValueError(f"httptools is not importable from {directory}"
                             + (" or dockyard's environment" if (__package__ or "").startswith("dockyard.") else ""))
        return RequestParser, f"python (strict pure-Python parser; no httptools in {directory})"
    try:
        parser_class = make_parser_class(module)
    except AttributeError as exc:  # an httptools too old for this layer
        if mode == "llhttp":
            raise ValueError(f"httptools {getattr(module, '__version__', '?')} lacks {exc}") from None
        return RequestParser, f"python (strict pure-Python parser; httptools in {where} is unusable: {exc})"
    return parser_class, f"llhttp (httptools {getattr(module, '__version__', '?')} from {where})"


def make_parser_class(httptools: ModuleType) -> type[RequestParser]:
    """A RequestParser subclass whose heads are parsed by this httptools module."""
    new_parser = httptools.HttpRequestParser
    upgrade = httptools.HttpParserUpgrade
    error = httptools.HttpParserError

    class LlhttpRequestParser(RequestParser):
        backend = "llhttp"
        __slots__ = ("_done", "_callbacks", "_kept", "_owed")

        def __init__(self, max_body: int) -> None:
            super().__init__(max_body)
            # llhttp validates; the fields are read from the head it accepted (header callbacks
            # from C cost more than reading the head in Python). on_headers_complete is a
            # builtin's bound method: no Python frame; it empties _done, so a head llhttp did not
            # finish is noticed.
            self._done: list[int] = []
            callbacks: Any = _Callbacks()
            callbacks.on_headers_complete = self._done.clear
            self._callbacks = callbacks
            # The llhttp parser of the last keep-alive request, kept for the next head (making
            # one per head costs more than feeding it the body it still expects, _owed's).
            self._kept: Any = None
            self._owed: Request | None = None

        def parse_head(self, buf: bytes | bytearray, pos: int, end: int) -> Request:
            raw = buf[pos:end + 4]
            if type(raw) is not bytes:
                raw = bytes(raw)
            done = self._done
            done.append(1)
            parser = reused = self._kept
            if parser is None:
                parser = new_parser(self._callbacks)
            else:
                self._kept = None
                owed = self._owed
                if owed is not None:  # the body llhttp expects before the next head
                    self._owed = None
                    parser.feed_data(owed.body)
            upgraded = False
            try:
                parser.feed_data(raw)
            except upgrade:
                upgraded = True  # a head asking for an upgrade: a request like any other here (we never upgrade)
            except error as exc:
                done.clear()
                if reused is not None:  # a kept parser may carry state over (llhttp read the last
                    return self.parse_head(buf, pos, end)  # request as the last): ask a fresh one
                return _strict(raw, self.max_body, refused=str(exc) or type(exc).__name__)
            if done:
                done.clear()
                return _strict(raw, self.max_body)
            request = usual_request(raw.decode("latin-1"), self.max_body)
            if request is None:
                return _strict(raw, self.max_body)
            if request.keep_alive and not upgraded:
                self._kept = parser
                if request.length:
                    self._owed = request
            return request

        def clear(self) -> None:
            super().clear()
            self._kept = self._owed = None

    return LlhttpRequestParser


class _Callbacks:
    """Holds the callables httptools looks up on its protocol object. It looks up every one of
    them each time a parser is made (once a head): found as None on the class, that is cheaper
    than a miss, and means the same to httptools (no callback)."""

    __slots__ = ("on_headers_complete",)
    on_url = on_status = on_header = on_body = on_message_begin = on_message_complete = None
    on_chunk_header = on_chunk_complete = None


def _strict(raw: bytes, max_body: int, refused: str = "") -> Request:
    """The pure parser's verdict on a head llhttp or the checks found odd: its ParseError, or its
    request when only the fast path's assumptions failed (a repeated header name, say). A head
    llhttp ``refused`` is never accepted, whatever the pure parser thinks of it."""
    request = parse_head(raw[:-4], max_body)
    if refused:
        raise ParseError(400, f"malformed request head ({refused}); send METHOD /path HTTP/1.1, then "
                              "Name: value lines, each ending in CRLF")
    return request
