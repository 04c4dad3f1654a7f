"""llhttp (through httptools) as the runtime's request-head parser, loaded so it cannot clash with
the user's pins.

Where it comes from:
- in an image, the builder installs httptools into ``contract.PARSER_DIR`` (``pip --target``).
  ``load`` imports it from there and then takes it out of ``sys.modules`` and ``sys.path`` again,
  so the user's own ``import httptools`` (another version, or none at all) finds theirs;
- outside an image (``dockyard serve --local``, the runtime running as ``dockyard.runtime``),
  httptools from dockyard's own environment, where it is a dependency;
- otherwise, or when it fails to load: wire.py's strict pure-Python parser.

What it does: ``LlhttpRequestParser`` is wire.RequestParser with the heads parsed by llhttp in C:
one llhttp parser per connection reads its bytes as they arrive, bodies included, and each head
it reads and accepts is vouched for. Framing stays wire.py's (where a head ends, Content-Length
bodies, the incremental chunked decoder with its limits); both frame a stream alike (the
differential suite holds them to it), so the n-th head llhttp read is the n-th head wire.py finds.
Once llhttp refuses something or stops at an upgrade, the heads it read that are not yet taken,
and every later head on the connection, are read alone by a fresh llhttp parser, so a refusal
lands on the request it belongs to. On top of llhttp a thin layer applies the rules llhttp leaves
alone: exactly one Host on HTTP/1.1, the method set, versions 1.0/1.1 only, one space between the
parts of the request line, target forms, Transfer-Encoding on HTTP/1.0, Content-Length digits and
limits (wire.build_request). Anything odd (llhttp refused it, a check failed, a header name
repeats) goes to wire.parse_head, so the answer is the pure parser's, status and message alike.
"""

from __future__ import annotations

import importlib
import itertools
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
        __slots__ = ("_count", "_taken")

        def __init__(self, max_body: int) -> None:
            super().__init__(max_body)
            # One llhttp parser reads the connection's bytes as they arrive (``reader``, called by
            # ``feed``), bodies included: one call into C a packet. No header callbacks (a call
            # from C per field costs more than reading the head in Python); its one callback,
            # on_headers_complete, is the __next__ of a counter, a builtin, so no Python frame
            # runs inside llhttp. parse_head advances the same counter once per head it takes
            # while the stream lasts, so the count less _taken is the heads llhttp has read.
            count = itertools.count().__next__
            self._count = count
            self._taken = 0  # heads parse_head has taken while llhttp read the stream
            self.reader = new_parser(_Callbacks(count)).feed_data

        def reader_failed(self, exc: Exception) -> None:
            # llhttp refused something, or stopped at a head asking for an upgrade (we never
            # upgrade), and reads no further. Some heads it refuses only after their
            # on_headers_complete (a Transfer-Encoding that does not end in chunked), so no head
            # it has read and we have not taken is vouched for: those and all later heads are read
            # alone (parse_head), and a refusal lands on the request it belongs to.
            self.reader = None

        def parse_head(self, buf: bytes | bytearray, pos: int, end: int) -> Request:
            raw = buf[pos:end + 4]
            if self.reader is not None:
                taken = self._taken
                read = self._count() - taken  # heads llhttp has read
                self._taken = taken = taken + 1
                if read >= taken:  # llhttp has read this head and accepted it
                    request = _read(raw, self.max_body)
                    # Having read more heads than we have taken, it read them from bytes after
                    # this request (pipelining), or it frames these bytes differently.
                    if read == taken or len(buf) > end + 4 + max(request.length, 0):
                        return request
            return self._alone(bytes(raw))

        def _alone(self, raw: bytes) -> Request:
            """A head the stream does not vouch for (llhttp stopped before it, or has not read it,
            or has read more heads than the bytes hold), read alone by a fresh llhttp parser, as
            is every later head on the connection."""
            self.reader = None
            done: list[None] = [None]
            try:
                new_parser(_Callbacks(done.pop)).feed_data(raw)
            except upgrade:
                pass  # a request like any other here (we never upgrade)
            except error as exc:
                return _strict(raw, self.max_body, refused=str(exc) or type(exc).__name__)
            if done:  # llhttp did not read a whole head in it
                return _strict(raw, self.max_body)
            return _read(raw, self.max_body)

        def clear(self) -> None:
            super().clear()
            self.reader = None

    return LlhttpRequestParser


class _Callbacks:
    """Holds the callables httptools looks up on its protocol object when a parser is made: only
    on_headers_complete; the others found as None on the class mean the same to httptools (no
    callback) and cost less to look up than a miss."""

    __slots__ = ("on_headers_complete",)
    on_url = on_status = on_header = on_body = on_message_begin = on_message_complete = None
    on_chunk_header = on_chunk_complete = None

    def __init__(self, on_headers_complete: Any) -> None:
        self.on_headers_complete = on_headers_complete


def _read(raw: bytes | bytearray, max_body: int) -> Request:
    """The request of a head llhttp has accepted: the usual kind read fast, any other by the pure
    parser."""
    request = usual_request(raw.decode("latin-1"), max_body)
    return request if request is not None else _strict(bytes(raw), max_body)


def _strict(raw: bytes, max_body: int, refused: str = "") -> Request:
    """The pure parser's verdict on a head llhttp or the checks found odd: its ParseError, or its
    request when only the fast path's assumptions failed (a repeated header name, say). A head
    llhttp ``refused`` is never accepted, whatever the pure parser thinks of it."""
    request = parse_head(raw[:-4], max_body)
    if refused:
        raise ParseError(400, f"malformed request head ({refused}); send METHOD /path HTTP/1.1, then "
                              "Name: value lines, each ending in CRLF")
    return request
