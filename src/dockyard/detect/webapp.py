"""The project's own web app: an ASGI (FastAPI, Starlette, Litestar, Quart) or WSGI (Flask,
Falcon) app object created at module level in a conventional file. Reads files only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Most conventional first: the first file that creates an app wins.
CANDIDATES = ("api/main.py", "app/main.py", "src/main.py", "main.py", "app.py", "api.py", "server.py",
              "wsgi.py", "asgi.py", "api/app.py", "app/app.py")
ASGI = frozenset({"fastapi", "starlette", "litestar", "quart"})
FRAMEWORKS = {"FastAPI": "fastapi", "Starlette": "starlette", "Litestar": "litestar", "Quart": "quart",
              "Flask": "flask", "App": "falcon"}
_ASSIGN = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*(?::\s*[\w.\[\]]+\s*)?=\s*(?:[\w.]+\.)?"
                     r"(?P<cls>FastAPI|Starlette|Litestar|Quart|Flask|App)\(", re.MULTILINE)


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
    for rel in CANDIDATES:
        path = project_dir / rel
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in _ASSIGN.finditer(text):
            framework = FRAMEWORKS[match.group("cls")]
            if match.group("cls") == "App" and "falcon" not in text:
                continue
            if framework not in text.lower():
                continue
            entry = f"{rel}:{match.group('name')}"
            return WebApp(entry, framework, f"{rel} creates a {match.group('cls')} app named {match.group('name')!r}")
    return None
