"""Start the serving runtime as a real subprocess on a free loopback port and talk HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
SRC = REPO / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_digits_model(path: Path) -> list[float]:
    """Train the digits LogisticRegression, save it with joblib, return one sample row."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=2000).fit(x / 16.0, y), path)
    return [float(v) for v in x[0] / 16.0]


class Server:
    """``python -m dockyard.runtime ARGS`` with stderr captured to a file."""

    def __init__(self, args: list[str], tmp: Path, env: dict[str, str] | None = None,
                 python: str = sys.executable, module: str = "dockyard.runtime",
                 pythonpath: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = tmp / f"server-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        full_env["PYTHONPATH"] = pythonpath or str(SRC)
        full_env.update(env or {})
        argv = [python, "-m", module, *args]
        if "--port" not in args and "DOCKYARD_PORT" not in full_env:
            argv += ["--port", str(self.port)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, stderr=self._log, stdout=self._log, env=full_env, cwd=tmp)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.splitlines() if line.startswith("{")]

    def wait_ready(self, timeout: float = 30.0) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log}")
            try:
                if request(self.port, "GET", "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.log}")

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def request(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post_json(port: int, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
    status, _, data = request(port, "POST", path, body, **kw)
    return status, json.loads(data)


def write_predictor(directory: Path, source: str, module: str = "predict") -> str:
    (directory / f"{module}.py").write_text(source)
    return str(directory)
