"""Lifecycle and limits: readiness, SIGTERM drain, setup failure, overload, timeouts, config, workers."""

from __future__ import annotations

import ast
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import REPO, Server, free_port, make_digits_model, post_json, request, write_predictor  # noqa: E402

SLEEPY = '''
import time

class Sleepy:
    def setup(self):
        pass

    def predict(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds
'''

BROKEN = '''
class Broken:
    def setup(self):
        raise RuntimeError("weights missing: /nope/model.bin")

    def predict(self, x: float) -> float:
        return x
'''


def _sleepy(tmp: Path, *extra: str) -> Server:
    app = write_predictor(tmp, SLEEPY)
    return Server(["--predictor", "predict:Sleepy", "--app-dir", app, *extra], tmp)


def _in_thread(port: int, body: dict[str, Any], out: list[Any]) -> threading.Thread:
    def call() -> None:
        out.append(request(port, "POST", "/predict", body, timeout=20))

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_sigterm_fails_readiness_at_once_and_finishes_in_flight_requests(tmp_path: Path) -> None:
    with _sleepy(tmp_path, "--grace-period-s", "10") as server:
        server.wait_ready()
        out: list[Any] = []
        thread = _in_thread(server.port, {"seconds": 1.0}, out)
        time.sleep(0.3)
        started = time.monotonic()
        code = None
        server.proc.terminate()
        time.sleep(0.2)
        assert _refused(server.port)  # readiness probes fail from now on
        code = server.proc.wait(10)
        thread.join()
        assert code == 0 and time.monotonic() - started < 5
        assert out[0][0] == 200 and json.loads(out[0][2]) == {"output": 1.0}
        events = [e["event"] for e in server.events()]
        assert events[-2:] == ["draining", "stopped"]


def test_sigterm_exits_within_the_grace_period_when_requests_run_long(tmp_path: Path) -> None:
    with _sleepy(tmp_path, "--grace-period-s", "0.5") as server:
        server.wait_ready()
        out: list[Any] = []
        thread = _in_thread(server.port, {"seconds": 5.0}, out)
        time.sleep(0.3)
        started = time.monotonic()
        assert server.terminate() == 0
        assert time.monotonic() - started < 3
        thread.join()
        assert server.events()[-1]["reason"] == "grace period over"
        assert out[0][0] == 503 and "shut down" in json.loads(out[0][2])["error"]


def test_setup_failure_exits_nonzero_with_the_error_and_never_ready(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, BROKEN)
    with Server(["--predictor", "predict:Broken", "--app-dir", app], tmp_path) as server:
        statuses = set()
        while server.proc.poll() is None:
            try:
                statuses.add(request(server.port, "GET", "/readyz", timeout=1)[0])
            except OSError:
                pass
        assert server.proc.returncode == 1
        assert 200 not in statuses
        failed = [e for e in server.events() if e["event"] == "setup_failed"]
        assert failed and "weights missing: /nope/model.bin" in failed[0]["error"]


def test_missing_predictor_module_names_the_app_dir(tmp_path: Path) -> None:
    with Server(["--predictor", "nosuch:Thing"], tmp_path) as server:
        assert server.proc.wait(20) == 1
        failed = [e for e in server.events() if e["event"] == "setup_failed"][0]
        assert "cannot import 'nosuch'" in failed["error"] and "--app-dir" in failed["fix"]


def test_overload_gets_503_with_retry_after_only_when_the_queue_is_full(tmp_path: Path) -> None:
    with _sleepy(tmp_path, "--max-queue", "1") as server:
        server.wait_ready()
        out: list[Any] = []
        running = _in_thread(server.port, {"seconds": 1.0}, out)  # in the predict thread
        time.sleep(0.3)
        queued = _in_thread(server.port, {"seconds": 0.0}, out)  # takes the one queue slot
        time.sleep(0.3)
        status, headers, data = request(server.port, "POST", "/predict", {"seconds": 0.0})
        assert status == 503 and headers["retry-after"] == "1"
        assert "overloaded" in json.loads(data)["error"]
        running.join()
        queued.join()
        assert [r[0] for r in out] == [200, 200]


def test_slow_request_gets_504_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with _sleepy(tmp_path, "--request-timeout-s", "0.3") as server:
        server.wait_ready()
        status, body = post_json(server.port, "/predict", {"seconds": 1.0})
        assert status == 504 and "--request-timeout-s" in body["error"]
        time.sleep(1.0)
        assert post_json(server.port, "/predict", {"seconds": 0.0}) == (200, {"output": 0.0})


def test_flags_come_from_dockyard_env_vars(tmp_path: Path) -> None:
    make_digits_model(tmp_path / "m.joblib")
    port = free_port()
    env = {"DOCKYARD_MODEL": str(tmp_path / "m.joblib"), "DOCKYARD_PORT": str(port),
           "DOCKYARD_NAME": "digits-env", "DOCKYARD_VERSION": "3"}
    with Server([], tmp_path, env=env, port=port) as server:
        server.wait_ready()
        assert request(port, "GET", "/v2/models/digits-env/versions/3/ready")[0] == 200


def test_bad_env_value_exits_2_naming_the_variable(tmp_path: Path) -> None:
    with Server(["--model", "x.joblib"], tmp_path, env={"DOCKYARD_MAX_QUEUE": "lots"}) as server:
        assert server.proc.wait(20) == 2
        event = server.events()[0]
        assert event["event"] == "bad_config" and "DOCKYARD_MAX_QUEUE" in event["error"]


def test_two_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    row = make_digits_model(tmp_path / "m.joblib")
    port = free_port()
    with Server(["--model", str(tmp_path / "m.joblib"), "--workers", "2", "--port", str(port)],
                tmp_path, port=port) as server:
        deadline = time.monotonic() + 30
        while sum(e["event"] == "ready" for e in server.events()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        ready_pids = {e["pid"] for e in server.events() if e["event"] == "ready"}
        assert len(ready_pids) == 2
        assert all(post_json(port, "/predict", {"input": row}) == (200, {"output": 0}) for _ in range(20))
        assert server.terminate() == 0


def test_missing_model_file_fails_setup_with_a_fix(tmp_path: Path) -> None:
    with Server(["--model", str(tmp_path / "gone.joblib")], tmp_path) as server:
        assert server.proc.wait(20) == 1
        failed = [e for e in server.events() if e["event"] == "setup_failed"][0]
        assert "does not exist" in failed["error"] and "--model" in failed["fix"]


def test_runtime_imports_only_stdlib_at_top_level_and_nothing_from_dockyard() -> None:
    # It is copied into images as `dockyard_runtime`, next to the user's own pinned packages.
    for path in (REPO / "src" / "dockyard" / "runtime").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                top = (node.module or "").split(".")[0]
                assert node.level > 0 or top in sys.stdlib_module_names | {"__future__"}, (path, node.module)
                assert not (node.module or "").startswith("dockyard"), path
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("dockyard", "fastapi", "pydantic", "starlette", "uvicorn"))
        for node in tree.body:  # module level: stdlib only, third-party stays lazy
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names), path


def test_metrics_of_every_worker_add_up_whichever_worker_answers_the_scrape(tmp_path: Path) -> None:
    row = make_digits_model(tmp_path / "m.joblib")
    port = free_port()
    (tmp_path / "tmp").mkdir()
    with Server(["--model", str(tmp_path / "m.joblib"), "--workers", "2", "--port", str(port)],
                tmp_path, port=port, env={"TMPDIR": str(tmp_path / "tmp")}) as server:
        deadline = time.monotonic() + 30
        while sum(e["event"] == "ready" for e in server.events()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # One connection per request: the kernel spreads them over both workers.
        assert all(post_json(port, "/predict", {"input": row}) == (200, {"output": 0}) for _ in range(30))
        time.sleep(1.5)  # workers publish their numbers about once a second
        published = [json.loads(f.read_text()) for f in sorted((tmp_path / "tmp").glob("dockyard-metrics-*/worker-*.json"))]
        per_worker = [sum(n for route, _, n in w["requests"] if route == "/predict") for w in published]
        assert len(per_worker) == 2 and all(per_worker) and sum(per_worker) == 30, per_worker  # both served
        for _ in range(6):  # each scrape is a new connection, answered by either worker
            text = request(port, "GET", "/metrics")[2].decode()
            assert 'dockyard_requests_total{route="/predict",status="200"} 30' in text, text[:600]
            assert 'dockyard_request_duration_seconds_count{route="/predict"} 30' in text
            assert "dockyard_in_flight_requests 0" in text
        assert server.terminate() == 0
    assert not list((tmp_path / "tmp").iterdir())  # the supervisor removed its directory
