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
a fresh llhttp parser reads each head alone, and a head it accepts is vouched for in _vouched
under wire.head_key (the head less its Content-Length value) when that value is plain digits, so
the same head with other digits is not read by llhttp again: llhttp's verdict on it is the same.
Each distinct head is read by llhttp once (docs/http.md says why not one parser per connection).
Framing stays wire.py's (where a head ends, Content-Length bodies, the incremental chunked
decoder with its limits); the differential suite holds it to llhttp's. On top of llhttp a thin
layer applies the rules llhttp leaves alone: exactly one Host on HTTP/1.1, the method set,
versions 1.0/1.1 only, one space between the parts of the request line, target forms,
Transfer-Encoding on HTTP/1.0, Content-Length digits and limits (wire.build_request). Anything
odd (llhttp refused it, a check failed, a header name repeats) goes to wire.parse_head, so the
answer is the pure parser's, status and message alike.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from .contract import PARSER_DIR
from .wire import ParseError, Request, RequestParser, remember, head_key, parse_head, usual_request

# Heads a fresh llhttp parser has read alone and accepted, under head_key (the head less a plain
# Content-Length value): at most _VOUCHED of up to _VOUCHED_CHARS characters each (512 KiB).
_VOUCHED = 512
_VOUCHED_CHARS = 1024
_vouched: dict[str, None] = {}

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
        __slots__ = ()

        def parse_head(self, buf: bytes | bytearray, pos: int, end: int) -> Request:
            raw = buf[pos:end + 4]
            head = raw.decode("latin-1")
            cut = head_key(head)
            key, at, stop = cut
            plain = at < 0 or _plain(head, at, stop)
            if plain and key in _vouched:  # llhttp accepted this head but for its digits
                return _read(head, self.max_body, cut)
            raw = bytes(raw)
            done: list[None] = [None]
            try:
                new_parser(_Callbacks(done.pop)).feed_data(raw)
            except upgrade:
                pass  # a request like any other here (we never upgrade)
            except error as exc:
                return _strict(raw, self.max_body, refused=str(exc) or type(exc).__name__)
            if done:  # llhttp did not read a whole head in it
                return _strict(raw, self.max_body)
            if plain and len(key) <= _VOUCHED_CHARS:
                remember(_vouched, _VOUCHED, key, None)
            return _read(head, self.max_body, cut)

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


def _plain(head: str, at: int, stop: int) -> bool:
    """The Content-Length value head[at:stop] is one space and 1 to 18 ASCII digits: llhttp's
    verdict on a head is the same whichever such digits it holds (it refuses a value only past
    2**64 - 1)."""
    value = head[at + 1:stop]
    return 1 <= len(value) <= 18 and head[at] == " " and value.isdigit() and value.isascii()


def _read(head: str, max_body: int, cut: tuple[str, int, int]) -> Request:
    """The request of a head llhttp has accepted: the usual kind read fast, any other by the pure
    parser."""
    request = usual_request(head, max_body, cut)
    return request if request is not None else _strict(head.encode("latin-1"), max_body)


def _strict(raw: bytes, max_body: int, refused: str = "") -> Request:
    """The pure parser's verdict on a head llhttp or the checks found odd: its ParseError, or its
    request when only the fast path's assumptions failed (a repeated header name, say). A head
    llhttp ``refused`` is never accepted, whatever the pure parser thinks of it."""
    request = parse_head(raw[:-4], max_body)
    if refused:
        raise ParseError(400, f"malformed request head ({refused}); send METHOD /path HTTP/1.1, then "
                              "Name: value lines, each ending in CRLF")
    return request
