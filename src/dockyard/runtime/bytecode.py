"""Bytecode for serving images, written at build time (the ``bytecode`` stage of the Dockerfile):

    python -m dockyard_runtime.bytecode --out /bytecode --all /opt/dockyard/runtime \\
        --imported /opt/venv -- sklearn.linear_model joblib

Imports each MODULE (what the framework loads at start-up; a module that is not installed at all
is skipped, one that fails to import fails the build), then writes a .pyc for every module that
was imported from an ``--imported`` root and for every module under an ``--all`` root, at its
own path below ``--out``. The files are checked-hash .pyc (PEP 552): Python validates them
against the hash of the source, not its mtime, which a cached COPY layer need not preserve, so
they can never go stale unnoticed, whatever BuildKit reused.

What an import already compiled is not compiled twice: its timestamp .pyc gets a new header.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import py_compile
import sys
from typing import Iterable, Sequence

_CHECKED_HASH = (0b11).to_bytes(4, "little")  # PEP 552 flags: hash-based, check the source


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard_runtime.bytecode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory the .pyc tree is written under")
    parser.add_argument("--all", action="append", default=[], metavar="ROOT", help="compile every module here")
    parser.add_argument("--imported", action="append", default=[], metavar="ROOT",
                        help="keep bytecode of the modules imported from here")
    parser.add_argument("modules", nargs="*", help="modules to import first")
    args = parser.parse_args(argv)
    for name in args.modules:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)
    files = sorted(set(imported_sources(args.imported)) | set(all_sources(args.all)))
    for source in files:
        write_checked_pyc(source, args.out)
    print(f"bytecode: {len(files)} modules -> {args.out}", file=sys.stderr)
    return 0


def imported_sources(roots: Iterable[str]) -> list[str]:
    prefixes = tuple(os.path.realpath(r) + os.sep for r in roots)
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if prefixes and path and path.endswith(".py") and os.path.realpath(path).startswith(prefixes):
            found.append(os.path.realpath(path))
    return found


def all_sources(roots: Iterable[str]) -> list[str]:
    return [os.path.realpath(os.path.join(d, n)) for root in roots for d, _, names in os.walk(root)
            for n in names if n.endswith(".py")]


def write_checked_pyc(source: str, out: str) -> str:
    """The checked-hash .pyc of ``source`` at ``out`` + its usual __pycache__ path; returns that path."""
    cached = importlib.util.cache_from_source(source)
    target = os.path.join(out, cached.lstrip(os.sep))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(source, "rb") as f:
        data = f.read()
    try:
        with open(cached, "rb") as f:
            pyc = f.read()
    except OSError:
        pyc = b""
    # Reuse what the import wrote when it is current (timestamp header: flags 0, mtime, size).
    st = os.stat(source)
    if (len(pyc) > 16 and pyc[:4] == importlib.util.MAGIC_NUMBER and pyc[4:8] == bytes(4)
            and int.from_bytes(pyc[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(pyc[12:16], "little") == st.st_size & 0xFFFFFFFF):
        with open(target, "wb") as f:
            f.write(importlib.util.MAGIC_NUMBER + _CHECKED_HASH + importlib.util.source_hash(data) + pyc[16:])
    else:
        py_compile.compile(source, cfile=target, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    return target


if __name__ == "__main__":
    sys.exit(main())
