"""Model faults over a real socket: a hung predict, sys.exit and KeyboardInterrupt in predict, a dead
predict thread, and abandoned requests that must not fill the queue."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import SRC, Server, post_json, request, write_predictor  # noqa: E402

SLEEPY = '''
import time

class Sleepy:
    def predict(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds
'''

EXITING = '''
import sys

class Exiting:
    def predict(self, x: int) -> int:
        if x == 1:
            sys.exit(3)
        if x == 2:
            raise KeyboardInterrupt
        if x == 3:
            raise ValueError("x must not be 3")
        return x
'''

EXITING_BATCH = '''
import sys

class ExitingBatch:
    batch = True
    example = {"x": 0}

    def predict(self, x: int) -> list[int]:  # hints describe one item; x is a list of them
        if 1 in x:
            sys.exit("bye")
        return x
'''


def _until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _status(port: int, path: str) -> int:
    return request(port, "GET", path, timeout=5)[0]


def _in_thread(port: int, body: dict[str, Any], out: list[Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(request(port, "POST", "/predict", body, timeout=30)))
    thread.start()
    return thread


def test_hung_predict_fails_readiness_then_liveness_and_recovers_when_it_returns(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, SLEEPY)
    args = ["--predictor", "predict:Sleepy", "--app-dir", app, "--request-timeout-s", "0.5",
            "--liveness-grace-s", "1.5"]
    with Server(args, tmp_path) as server:
        server.wait_ready()
        out: list[Any] = []
        hung = _in_thread(server.port, {"seconds": 4.0}, out)
        # Readiness (ours and V2's) flips once the call has run past the request timeout.
        assert _until(lambda: _status(server.port, "/readyz") == 503)
        body = json.loads(request(server.port, "GET", "/readyz")[2])
        assert body["status"] == "stuck" and "request timeout" in body["error"]
        assert _status(server.port, "/v2/health/ready") == 503
        assert _status(server.port, "/v2/models/sleepy/ready") == 503
        # New predictions are refused at once rather than queued behind the hung call.
        status, headers, data = request(server.port, "POST", "/predict", {"seconds": 0.0})
        assert status == 503 and headers["retry-after"] == "1" and "not responding" in json.loads(data)["error"]
        assert _status(server.port, "/healthz") == 200  # still inside the grace period
        assert 'dockyard_model_stuck{model="sleepy"} 1' in request(server.port, "GET", "/metrics")[2].decode()
        # After the grace, liveness fails too, so an orchestrator restarts the server.
        assert _until(lambda: _status(server.port, "/healthz") == 503)
        assert _status(server.port, "/v2/health/live") == 503
        hung.join()
        assert out[0][0] == 504  # the hung request itself got its timeout answer
        # The call returned: everything is green again and predictions flow.
        assert _until(lambda: _status(server.port, "/readyz") == 200)
        assert _status(server.port, "/healthz") == 200
        assert post_json(server.port, "/predict", {"seconds": 0.0}) == (200, {"output": 0.0})
        assert 'dockyard_model_stuck{model="sleepy"} 0' in request(server.port, "GET", "/metrics")[2].decode()
        events = [e["event"] for e in server.events()]
        assert events.index("model_stuck") < events.index("model_unhealthy") < events.index("model_recovered")


def test_sys_exit_keyboard_interrupt_and_errors_in_predict_are_500s_logged_once(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, EXITING)
    with Server(["--predictor", "predict:Exiting", "--app-dir", app], tmp_path) as server:
        server.wait_ready()
        for x in (1, 2, 3):
            status, body = post_json(server.port, "/predict", {"x": x})
            assert status == 500 and "server log" in body["error"], (x, body)
            assert post_json(server.port, "/predict", {"x": 0}) == (200, {"output": 0})  # still serving
        assert _status(server.port, "/readyz") == 200 and _status(server.port, "/healthz") == 200
        failed = [e for e in server.events() if e["event"] == "predict_failed"]
        assert [f["error"] for f in failed] == ["SystemExit: 3", "KeyboardInterrupt", "ValueError: x must not be 3"]
        assert "sys.exit" in failed[0]["fix"]
        # One log line per failure, with the traceback: not once in the runner and again in routes.
        assert sum("Traceback" in line for line in server.log.splitlines()) == 3
        assert server.proc.poll() is None


def test_sys_exit_in_a_batch_predictor_fails_that_batch_only(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, EXITING_BATCH)
    with Server(["--predictor", "predict:ExitingBatch", "--app-dir", app], tmp_path) as server:
        server.wait_ready()
        assert post_json(server.port, "/predict", {"x": 1})[0] == 500
        assert post_json(server.port, "/predict", {"x": 5}) == (200, {"output": 5})
        failed = [e for e in server.events() if e["event"] == "predict_failed"]
        assert len(failed) == 1 and failed[0]["error"] == "SystemExit: bye" and failed[0]["batch_size"] == 1


def _send_and_vanish(port: int, body: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.1)  # let the server queue it before the connection goes


def test_the_queue_counts_only_live_requests(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, SLEEPY)
    with Server(["--predictor", "predict:Sleepy", "--app-dir", app, "--max-queue", "2"], tmp_path) as server:
        server.wait_ready()
        out: list[Any] = []
        running = _in_thread(server.port, {"seconds": 1.5}, out)
        time.sleep(0.3)
        for _ in range(2):  # fill the queue with requests whose clients then leave
            _send_and_vanish(server.port, b'{"seconds": 0.0}')
        metrics = request(server.port, "GET", "/metrics")[2].decode()
        assert 'dockyard_queue_depth{model="sleepy"} 0' in metrics
        # The queue holds only abandoned jobs: a new request is queued and answered, not refused.
        status, body = post_json(server.port, "/predict", {"seconds": 0.0})
        assert (status, body) == (200, {"output": 0.0})
        running.join()
        assert out[0][0] == 200


class _Echo:
    """A minimal model for driving the runner in-process."""

    batchable, outputs = False, ("output",)

    def setup(self) -> None:
        pass

    def example(self) -> dict[str, Any]:
        return {}

    def from_json(self, body: Any) -> Any:
        return body

    def run(self, items: list[Any]) -> list[Any]:
        return items


def test_a_dead_predict_thread_fails_readiness_then_liveness_and_answers_its_jobs() -> None:
    sys.path.insert(0, str(SRC))
    from dockyard.runtime.runner import Runner

    loop = asyncio.new_event_loop()
    try:
        runner = Runner(_Echo(), loop, max_batch_size=1, max_wait_s=0, max_queue=4, on_batch=lambda n: None,
                        hang_after_s=5, liveness_grace_s=0.2)
        ready: list[Any] = []
        runner.start(ready.append)
        loop.run_until_complete(asyncio.sleep(0.2))
        assert ready == [None] and runner.fault() is None
        answers: list[Any] = []
        runner.submit({"a": 1}, lambda result, error: answers.append((result, error)))
        loop.run_until_complete(asyncio.sleep(0.2))
        assert answers == [({"a": 1}, None)]
        runner._inbox.put(None)  # the thread returns while the server still serves: an unexpected end
        runner._thread.join(5)
        fault = runner.fault()
        assert fault is not None and "stopped" in fault.problem
        assert runner.unhealthy() is None  # readiness fails at once, liveness after the grace
        loop.run_until_complete(asyncio.sleep(0.3))
        assert runner.unhealthy() is not None
    finally:
        runner.stop()
        loop.close()


BATCHING = '''
class Batching:
    batch = True
    example = {"x": 0}

    def predict(self, x: int) -> list[dict]:
        return [{"x": v, "batch": len(x)} for v in x]
'''


def test_a_lone_request_never_waits_but_one_waits_for_a_request_part_way_in(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, BATCHING)
    args = ["--predictor", "predict:Batching", "--app-dir", app, "--max-batch-wait-ms", "2000"]
    with Server(args, tmp_path) as server:
        server.wait_ready()
        started = time.monotonic()
        assert post_json(server.port, "/predict", {"x": 1}) == (200, {"output": {"x": 1, "batch": 1}})
        assert time.monotonic() - started < 1.5  # nobody else was arriving: no 2 s hold
        body = b'{"x": 2}'
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:3]))  # part-way in
            time.sleep(0.2)
            out: list[Any] = []
            other = _in_thread(server.port, {"x": 3}, out)  # held for the slow one's company
            time.sleep(0.3)
            slow.sendall(body[3:])
            reply = b""
            while b'"batch"' not in reply:
                reply += slow.recv(4096)
            other.join()
        assert b'"batch":2' in reply and json.loads(out[0][2]) == {"output": {"x": 3, "batch": 2}}
        metrics = request(server.port, "GET", "/metrics")[2].decode()
        assert 'dockyard_batch_waits_total{model="batching"} 1' in metrics
