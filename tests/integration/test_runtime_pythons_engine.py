"""The runtime (src/dockyard/runtime, copied into every image) imports on each Python whose base
is on the engine, not only the host's: a 3.11-only regex (possessive `*+`) made every Python 3.10
serving image fail at its bytecode step, and the unit tests, which run on the host's Python, could
not see it. The 3.11 base is always there (the engine fixture needs it); 3.10/3.12/3.13 are checked
when `dockyard base bootstrap` has made them."""

from __future__ import annotations

from pathlib import Path

from dockyard import base
from dockyard.engine import Engine
from dockyard.runtime import contract

RUNTIME = Path(contract.__file__).parent
IMPORT_ALL = (
    "import pkgutil, importlib, sys; sys.path.insert(0, '/x'); "
    "names = [m.name for m in pkgutil.iter_modules(['/x/dockyard_runtime'])]; "
    "[importlib.import_module('dockyard_runtime.' + n) for n in names]; "
    "print(sys.version_info[:2], len(names))"
)


def test_the_runtime_imports_on_every_local_base(engine: Engine) -> None:
    bases = base.local_bases(engine)
    assert "3.11" in bases, bases
    for python, ref in sorted(bases.items()):
        out = engine.docker("run", "--rm", "--network", "none", "--label", f"{contract.LABEL_TEST}=1",
                            "-v", f"{RUNTIME}:/x/dockyard_runtime:ro", ref, "python3", "-c", IMPORT_ALL,
                            check=False)
        assert out.returncode == 0, f"{ref}: {out.stderr[-800:]}"
        major, minor = (int(x) for x in python.split("."))
        assert out.stdout.startswith(f"({major}, {minor}) ") and int(out.stdout.split()[-1]) > 15, out.stdout
