"""dockyard_runtime.bytecode: checked-hash .pyc for what a warm-up imports, in a separate tree."""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> None:
    pkg = root / "venv" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import used\n")
    (pkg / "used.py").write_text("VALUE = 41 + 1\n")
    (pkg / "unused.py").write_text("raise RuntimeError('never imported')\n")
    rt = root / "rt" / "srv"
    rt.mkdir(parents=True)
    (rt / "__init__.py").write_text("")
    (rt / "lazy.py").write_text("X = 1\n")


def _run(root: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    # As in the builder: imports may write their .pyc, which the script then re-heads instead of recompiling.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{root / 'venv'}"
    return subprocess.run([sys.executable, "-m", "dockyard.runtime.bytecode", "--out", str(root / "out"),
                           "--all", str(root / "rt"), "--imported", str(root / "venv"), "--", *modules],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def _out(root: Path, source: Path) -> Path:
    return root / "out" / importlib.util.cache_from_source(str(source.resolve())).lstrip(os.sep)


def test_writes_checked_hash_pyc_for_imported_modules_and_whole_roots_only(tmp_path: Path) -> None:
    _tree(tmp_path)
    proc = _run(tmp_path, "pkg", "not_installed_anywhere")
    assert proc.returncode == 0, proc.stderr
    venv, rt = tmp_path / "venv" / "pkg", tmp_path / "rt" / "srv"
    for source in (venv / "__init__.py", venv / "used.py", rt / "__init__.py", rt / "lazy.py"):
        pyc = _out(tmp_path, source).read_bytes()
        assert pyc[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-based, checked against the source
        assert pyc[8:16] == importlib.util.source_hash(source.read_bytes())
        code = marshal.loads(pyc[16:])
        assert code.co_filename == str(source.resolve()) or code.co_filename == str(source)
    assert not _out(tmp_path, venv / "unused.py").exists()  # never imported, never shipped
    ns: dict[str, object] = {}
    exec(marshal.loads(_out(tmp_path, venv / "used.py").read_bytes()[16:]), ns)
    assert ns["VALUE"] == 42


def test_python_loads_the_pyc_and_refuses_a_stale_one(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert _run(tmp_path, "pkg").returncode == 0
    used = tmp_path / "venv" / "pkg" / "used.py"
    shipped = _out(tmp_path, used)
    cache = Path(importlib.util.cache_from_source(str(used)))
    cache.write_bytes(shipped.read_bytes())  # as the serve image has it, whatever the mtimes
    os.utime(used, (time.time() + 3600, time.time() + 3600))  # a COPY that did not keep mtimes

    def loads_from_pyc() -> bool:
        proc = subprocess.run([sys.executable, "-B", "-v", "-c", "import pkg.used"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(tmp_path / "venv")}, timeout=60, check=True)
        return f"# code object from '{cache}'" in proc.stderr

    assert loads_from_pyc()
    used.write_text("VALUE = 7\n")  # same file, new contents: the hash no longer matches
    assert not loads_from_pyc()


def test_a_module_that_fails_to_import_fails_the_step(tmp_path: Path) -> None:
    _tree(tmp_path)
    proc = _run(tmp_path, "pkg.unused")
    assert proc.returncode != 0 and "never imported" in proc.stderr
