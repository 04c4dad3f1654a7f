"""The serving image parses HTTP with llhttp from its own folder, and the user's pins still win
(issue 13: ship httptools with the runtime so it cannot clash with the user's pins)."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard import serving
from dockyard.engine import Engine
from dockyard.runtime import contract

USER_HTTPTOOLS = "0.6.1"  # any version other than contract.PARSER_REQUIREMENT's
USER_H11 = "0.14.0"

PREDICTOR = '''
import h11
import httptools


class Predictor:
    def setup(self):
        pass

    def predict(self, x: float) -> dict:
        return {"httptools": httptools.__version__, "httptools_file": httptools.__file__,
                "h11": h11.__version__}
'''


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "dockyard.yaml").write_text(
        "name: pinned-parser\npython: '3.11'\ndependencies:\n  file: requirements.txt\n  kind: requirements\n"
        "serve:\n  predictor: predict.py:Predictor\n")
    (root / "requirements.txt").write_text(f"httptools=={USER_HTTPTOOLS}\nh11=={USER_H11}\n")
    (root / "predict.py").write_text(PREDICTOR)
    return root


def test_the_serving_image_parses_with_its_own_llhttp_and_user_code_gets_its_pinned_httptools(
        engine: Engine, tmp_path: Path, unique_tag: str) -> None:
    assert USER_HTTPTOOLS not in contract.PARSER_REQUIREMENT
    project = _project(tmp_path / "pinned")
    res = serving.serve(project, engine, port=18431, tag=unique_tag, name="dockyard-test-http-parser",
                        labels={contract.LABEL_TEST: "1"}, ready_timeout=180)
    try:
        events = [json.loads(line) for line in engine.logs(res.container).splitlines() if line.startswith("{")]
        ready = next(e for e in events if e.get("event") == "ready")
        listening = next(e for e in events if e.get("event") == "listening")
        assert ready["http_parser"] == "llhttp", ready
        wanted = contract.PARSER_REQUIREMENT.split("==")[1]
        assert f"httptools {wanted} from {contract.PARSER_DIR}" in listening["http_parser"], listening
        # user code: its own pins, from its own venv, not the runtime's copy
        out = serving.predict(res.url, {"x": 1.0})["output"]
        assert out["httptools"] == USER_HTTPTOOLS and out["h11"] == USER_H11, out
        assert out["httptools_file"].startswith(contract.VENV_DIR + "/"), out
        # and the server (llhttp) still frames requests strictly: a request without Host is refused
        import socket

        with socket.create_connection(("127.0.0.1", 18431), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
    finally:
        engine.remove_container(res.container)
