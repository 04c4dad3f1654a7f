"""The project's own web app: an ASGI (FastAPI, Starlette, Litestar, Quart) or WSGI (Flask,
Falcon) app object created at module level. Reads files only.

The app the project itself runs wins: a ``uvicorn``/``gunicorn``/``hypercorn`` command naming
``MODULE:NAME`` in its Procfile, Dockerfile, compose file, Makefile or README (in that order).
Without one, the first conventional file (``api/main.py``, ``app/main.py``, ...) that creates an
app. A real project had both: ``app/main.py`` (a cloud-only variant that needs credentials at
import) and ``app/prediction_service.py``, the app its Makefile and Dockerfile run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Most conventional first: the first file that creates an app wins.
CANDIDATES = ("api/main.py", "app/main.py", "src/main.py", "main.py", "app.py", "api.py", "server.py",
              "wsgi.py", "asgi.py", "api/app.py", "app/app.py")
# Where a project names the command that runs its app, most specific first.
COMMAND_FILES = ("Procfile", "Dockerfile", "docker-compose.yml", "docker-compose.yaml", "compose.yml",
                 "compose.yaml", "Makefile", "README.md", "README.rst", "README")
ASGI = frozenset({"fastapi", "starlette", "litestar", "quart"})
FRAMEWORKS = {"FastAPI": "fastapi", "Starlette": "starlette", "Litestar": "litestar", "Quart": "quart",
              "Flask": "flask", "App": "falcon"}
_ASSIGN = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*(?::\s*[\w.\[\]]+\s*)?=\s*(?:[\w.]+\.)?"
                     r"(?P<cls>FastAPI|Starlette|Litestar|Quart|Flask|App)\(", re.MULTILINE)
# `uvicorn app.service:app --port 8000`, `["gunicorn", "-b", "0.0.0.0:80", "wsgi:app"]`: the first
# MODULE:NAME on a line that runs a server (a host:port starts with a digit or names no module).
_SERVER_LINE = re.compile(r"\b(?:uvicorn|gunicorn|hypercorn|granian)\b(?P<rest>[^\n]*)")
_TARGET = re.compile(r"""(?:^|[\s"'=,\[])(?P<module>[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*):(?P<name>[A-Za-z_]\w*)(?=$|[\s"',\]])""")


@dataclass(frozen=True)
class WebApp:
    entry: str  # "api/main.py:app"
    framework: str  # distribution name, e.g. "fastapi"
    why: str

    @property
    def server(self) -> str:
        """The server dockyard runs it under, from the project's own requirements."""
        return "uvicorn" if self.framework in ASGI else "gunicorn"


def find_web_app(project_dir: Path) -> WebApp | None:
    for source, module, name in _commanded_targets(project_dir):
        for rel in _module_files(project_dir, module):
            found = _app_in(project_dir, rel, name)
            if found is not None:
                framework, cls = found
                return WebApp(f"{rel}:{name}", framework,
                              f"{source} runs {module}:{name}, the {cls} app {rel} creates")
    for rel in CANDIDATES:
        for match in _ASSIGN.finditer(_read(project_dir / rel)):
            found = _app_in(project_dir, rel, match.group("name"))
            if found is not None:
                return WebApp(f"{rel}:{match.group('name')}", found[0],
                              f"{rel} creates a {found[1]} app named {match.group('name')!r}")
    return None


def app_at(project_dir: Path, entry: str) -> WebApp | None:
    """serve.app ``FILE.py:NAME`` when that file creates an app of a known framework."""
    rel, _, name = entry.rpartition(":")
    found = _app_in(project_dir, rel, name) if rel and name else None
    if found is None:
        return None
    return WebApp(entry, found[0], f"{rel} creates a {found[1]} app named {name!r}")


def _read(path: Path) -> str:
    if not path.is_file():
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _app_in(project_dir: Path, rel: str, name: str) -> tuple[str, str] | None:
    """(framework, class) when ``rel`` creates an app of a known framework named ``name``."""
    text = _read(project_dir / rel)
    for match in _ASSIGN.finditer(text):
        if match.group("name") != name:
            continue
        framework = FRAMEWORKS[match.group("cls")]
        if match.group("cls") == "App" and "falcon" not in text:
            continue
        if framework in text.lower():
            return framework, match.group("cls")
    return None


def _commanded_targets(project_dir: Path) -> Iterator[tuple[str, str, str]]:
    """(file, module, name) for each server command in the project's own files, in order."""
    for rel in COMMAND_FILES:
        for line in _SERVER_LINE.finditer(_read(project_dir / rel)):
            target = _TARGET.search(line.group("rest"))
            if target is not None:
                yield rel, target.group("module"), target.group("name")


def _module_files(project_dir: Path, module: str) -> Iterator[str]:
    """The files a dotted module name can be, relative to the project (also under src/)."""
    path = module.replace(".", "/")
    for rel in (f"{path}.py", f"{path}/__init__.py", f"src/{path}.py", f"src/{path}/__init__.py"):
        if (project_dir / rel).is_file():
            yield rel
