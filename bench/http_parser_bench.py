"""HTTP parser before/after: the runtime's request handling before the hardening vs now, with each
head parser.

Three variants of the runtime, all the working tree's except for the HTTP layer:
- before: http.py as it was before the hardening (--before, default b7ca543: the hand-rolled
  parser inside http.py, no wire.py), dropped into this tree, so that only the HTTP layer differs;
- python: this tree, --http-parser python (the strict pure-Python parser, wire.py);
- llhttp: this tree, --http-parser llhttp, with httptools loaded from a private folder the way
  images load it from /opt/dockyard/parser (a copy of this environment's httptools).

Measurements, alternating variants in the same run, medians over rounds:

1. protocol: HttpConnection fed bytes directly (no sockets, a fake transport, an app that answers
   at once), so only framing + connection bookkeeping is timed: requests/s per workload.
2. server: the real runtime serving the digits model, loaded with wrk over loopback
   (POST /predict, 16 connections): ok requests/s, p99 and the server's CPU time per request.
3. with --instructions (needs valgrind): user-space instructions per request, counted by
   callgrind, which unlike any clock does not move when other work shares the CPUs: at protocol
   level, and for a real server answering POST /predict with a pass-through predictor (the
   lightest model there is, so the parser's share is as large as it gets).
4. in situ: the same server under the same wrk load, with timers around its own HTTP layer
   (data_received less the app's handle, and respond): what the layer costs where it runs,
   cache-cold between the model's batches.

    python bench/http_parser_bench.py --instructions
    python bench/http_parser_bench.py --before REV --rounds 5 --seconds 3

Writes the "HTTP parser before/after" section of docs/benchmarks.md (and prints it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from _report import write_section  # noqa: E402

BEFORE = "b7ca543"  # main just before the HTTP hardening was merged
VARIANTS = ("before", "python", "llhttp")
FRESH = ("before fresh", "llhttp fresh")  # the same servers under wrk sending a new Content-Length every request
LOAD: tuple[float, float, float] | None = None  # the load average when the run started


def runtime_copy(rev: str | None, into: Path) -> Path:
    """src/dockyard/runtime of the working tree as the top-level package ``dockyard_runtime``
    under ``into``, as it ships in images; with ``rev``, its http.py is the one at ``rev`` (taught
    the constructor argument the server now passes)."""
    dest = into / "dockyard_runtime"
    shutil.copytree(REPO / "src" / "dockyard" / "runtime", dest)
    if rev is not None:
        old = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:src/dockyard/runtime/http.py"],
                             capture_output=True, check=True, text=True).stdout
        old = old.replace("def __init__(self, app: App) -> None:",
                          "def __init__(self, app: App, max_connections: int = 0) -> None:")
        (dest / "http.py").write_text(old)
    return into


def private_parser_dir(work: Path) -> Path:
    """A copy of this environment's httptools in a folder of its own, as images have it."""
    import httptools

    folder = work / "parser"
    if not folder.exists():
        shutil.copytree(Path(httptools.__file__).parent, folder / "httptools")
    return folder


def variant_env(label: str, work: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin"}
    if label != "before":
        env["DOCKYARD_HTTP_PARSER"] = label
        env["DOCKYARD_PARSER_DIR"] = str(private_parser_dir(work))
    return env


# -- 1. protocol level -------------------------------------------------------------------------
class FakeTransport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str) -> Any:
        return None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


class App:
    max_body_bytes = 16 * 1024 * 1024
    draining = False

    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self.handled = 0

    def handle(self, conn: Any, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.handled += 1
        conn.respond(200, b'{"output":0}')

    def record(self, route: str, status: int, seconds: float) -> None:
        pass


def workloads() -> dict[str, tuple[list[bytes], int]]:
    """name -> (packets, requests they hold)."""
    row = json.dumps({"input": [0.1 * i for i in range(64)]}).encode()
    post = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: python-requests/2.32\r\n"
            b"Accept: */*\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(row), row))
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\n\r\n"
    body = row * 16
    chunked = (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1024]), body[i:i + 1024]) for i in range(0, len(body), 1024))
               + b"0\r\n\r\n")
    # a client whose bodies all differ: Content-Length 0..999 bytes over the row (JSON allows
    # trailing blanks), 1000 heads that differ only there (wire._usual_heads remembers them as one)
    lengths = [post.replace(b"Content-Length: %d" % len(row), b"Content-Length: %d" % (len(row) + i)) + b" " * i
               for i in range(1000)]
    # a client that tags every request (a trace or request id): 1000 heads, more than
    # wire._USUAL_HEADS holds, so every head is read afresh
    tagged = [post.replace(b"Accept: */*\r\n", b"Accept: */*\r\nX-Request-Id: %032x\r\n" % (i * 2654435761))
              for i in range(1000)]
    return {
        "POST /predict, 1 request per packet": ([post], 1),
        "GET /healthz, 1 request per packet": ([get], 1),
        "POST /predict, 1 per packet, a new Content-Length every request": (lengths, 1000),
        "POST /predict, 1 per packet, a new X-Request-Id every request": (tagged, 1000),
        "POST /predict, 16 pipelined per packet": ([post * 16], 16),
        "POST /predict, body in 2 packets": ([post[:200], post[200:]], 1),
        f"chunked {len(body) // 1024} KiB body, 1 KiB chunks, 1 packet": ([chunked], 1),
    }


def protocol_rate(http: Any, app: "App", packets: list[bytes], per: int, seconds: float) -> float:
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        app.handled = 0
        conn = http.HttpConnection(app)
        conn.connection_made(FakeTransport())
        done, started = 0, time.perf_counter()
        deadline = started + seconds
        reps = max(1, 200 // len(packets))
        while time.perf_counter() < deadline:
            for _ in range(reps):
                for packet in packets:
                    conn.data_received(packet)
            done += reps * per
        assert app.handled == done, (app.handled, done)
        return done / (time.perf_counter() - started)
    finally:
        loop.close()


# -- 3. instruction counts (callgrind) ------------------------------------------------------
ECHO = "class Echo:\n    def setup(self):\n        pass\n\n    def predict(self, x: float) -> float:\n        return x\n"


def callgrind_total(log: str) -> int:
    return int(re.search(r"Collected : (\d+)", log).group(1))  # type: ignore[union-attr]


def protocol_app(label: str) -> App:
    """An App whose connections parse with this variant's head parser (the tree is on sys.path)."""
    app = App()
    if label != "before":
        llhttp = importlib.import_module("dockyard_runtime.llhttp")
        app.parser_class = llhttp.select(label)[0]  # type: ignore[attr-defined]
    return app


def child_protocol(tree: str, label: str, workload: str, n: int) -> None:
    """Run in a child under callgrind: n rounds of one workload."""
    import asyncio

    sys.path.insert(0, tree)
    http = importlib.import_module("dockyard_runtime.http")
    asyncio.set_event_loop(asyncio.new_event_loop())
    packets, _ = workloads()[workload]
    conn = http.HttpConnection(protocol_app(label))
    conn.connection_made(FakeTransport())
    for _ in range(n):
        for packet in packets:
            conn.data_received(packet)


def protocol_instructions(tree: Path, label: str, workload: str, per: int, work: Path) -> float:
    totals = []
    for n in (1000, 6000):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                              __file__, "--child", str(tree), label, workload, str(n)], capture_output=True, text=True,
                             env={**os.environ, **variant_env(label, work)})
        totals.append(callgrind_total(out.stderr))
    return (totals[1] - totals[0]) / (5000 * per)


def server_instructions(tree: Path, label: str, work: Path, model: Path | None, body: str,
                        warm: int = 100, n: int = 600, idle_s: float = 3.0) -> dict[str, float]:
    """User-space instructions per POST /predict of a server run under callgrind (the digits model,
    or with ``model`` None a pass-through predictor), counted inside the one process: once it is
    ready and has answered ``warm`` requests (one-time costs: first calls, caches), the counters are
    zeroed (``callgrind_control -z``), ``n`` requests go over one keep-alive connection, and the
    counters are dumped. Startup is not in the window, so its run-to-run variation (millions of
    instructions: imports, the wait for readiness) cannot leak into the per-request figure, as it
    did when two processes' totals (100 and 600 requests) were subtracted.

    Returns per_request; gc, the part of it spent in the cyclic garbage collector; idle_per_s,
    what the same process runs per second with no requests at all (the once-a-second sweep,
    metrics file and watchdog: work that follows the clock, not the requests); and clock, that
    rate times the window's length, per request: the share of per_request that is clock-driven."""
    import http.client

    (work / "echo.py").write_text(ECHO)
    serve = ["--model", str(model)] if model else ["--predictor", "echo:Echo", "--app-dir", str(work)]
    port = free_port()
    log = work / f"callgrind-{label}.log"
    out = work / f"callgrind-{label}.out"
    with log.open("w") as sink:
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", sys.executable,
                                 "-m", "dockyard_runtime", *serve, "--port", str(port)],
                                env={"PYTHONPATH": str(tree), **variant_env(label, work)},
                                stdout=sink, stderr=sink, cwd=work)
    try:
        for _ in range(3000):  # the "ready" line, not HTTP polls
            if '"event": "ready"' in log.read_text():
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the server under callgrind exited:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def post(count: int) -> None:
            for _ in range(count):
                conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200, resp.status

        dumps = 0

        def window(action: Callable[[], None]) -> tuple[int, int, float]:
            """(instructions, of which in the GC, seconds) of one zeroed-then-dumped window."""
            nonlocal dumps
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
            started = time.perf_counter()
            action()
            seconds = time.perf_counter() - started
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
            dumps += 1
            dump = Path(f"{out}.{proc.pid}.{dumps}")
            for _ in range(600):
                if dump.exists() and "\ntotals:" in dump.read_text(errors="replace"):
                    break
                time.sleep(0.1)
            text = dump.read_text(errors="replace")
            total = int(re.search(r"^totals: (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
            annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                                       capture_output=True, text=True).stdout
            gc = max([int(m.group(1).replace(",", "")) for m in
                      re.finditer(r"^\s*([\d,]+) .*:gc_collect_main ", annotated, re.M)] or [0])
            return total, gc, seconds

        post(warm)
        total, gc, seconds = window(lambda: post(n))
        idle, _, idle_seconds = window(lambda: time.sleep(idle_s))
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    idle_rate = idle / idle_seconds
    return {"per_request": total / n, "gc": gc / n, "idle_per_s": idle_rate, "clock": idle_rate * seconds / n}


# -- 2. real server -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# wrk's requests for a client whose bodies all differ: the body padded with 0..999 trailing blanks
# (valid JSON), so the Content-Length changes from one request to the next
_FRESH_HEADS = """
local requests, n = {}, 0
init = function(args)
  for i = 0, 999 do requests[i + 1] = wrk.format(nil, nil, nil, wrk.body .. string.rep(" ", i)) end
end
request = function()
  n = n % 1000 + 1
  return requests[n]
end
"""


def wrk(url: str, body: str, seconds: int, work: Path, fresh: bool = False) -> tuple[float, float, int]:
    """(ok req/s, p99 ms, ok requests): POST ``body`` from 16 connections; ``fresh``: a new
    Content-Length every request."""
    script = work / "post.lua"
    script.write_text(f'wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\nwrk.body={json.dumps(body)}\n'
                      + (_FRESH_HEADS if fresh else ""))
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    unit = re.match(r"[\d.]+(\D+)", p99).group(1)  # type: ignore[union-attr]
    ok = total - (int(bad.group(1)) if bad else 0)
    return ok / seconds, float(p99[:-len(unit)]) * scale[unit], ok


@contextlib.contextmanager
def served(pythonpath: Path, label: str, model: Path, work: Path,
           env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A runtime of this variant serving ``model``, ready: (its process, its /predict URL);
    stopped with SIGTERM on the way out."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard_runtime", "--model", str(model), "--port", str(port)],
                            env={"PYTHONPATH": str(pythonpath), **(env or {}), **variant_env(label, work)}, cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield proc, f"http://127.0.0.1:{port}/predict"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def server_rate(pythonpath: Path, label: str, model: Path, body: str, seconds: int,
                work: Path, fresh: bool = False) -> tuple[float, float, float]:
    """(ok req/s, p99 ms, server CPU microseconds per request); ``fresh``: a new Content-Length every
    request."""
    with served(pythonpath, label, model, work) as (proc, url):
        wrk(url, body, 1, work, fresh)  # warm-up, not counted
        cpu = cpu_seconds(proc.pid)
        rate, p99, ok = wrk(url, body, seconds, work, fresh)
        return rate, p99, (cpu_seconds(proc.pid) - cpu) / ok * 1e6


# -- 4. in situ: the HTTP layer's own time per request, under the same load ------------------
# Appended to a copy of http.py: wall time inside data_received (less the app's handle, which is
# the same code in every variant) and inside respond, summed over the run, written at exit. It
# times the code where it runs, cache-cold between the model's batches, which neither the warm
# protocol rows nor the instruction counts see; the timers cost about the same in every variant.
_IN_SITU = """

import atexit as _situ_atexit
import json as _situ_json
import os as _situ_os
from time import perf_counter_ns as _situ_ns

_situ = {"inbound": 0, "respond": 0, "handle": 0, "requests": 0}


def _situ_wrap_handle(app):
    cls = type(app)
    if cls.__dict__.get("_situ_timed"):
        return
    handle = cls.handle

    def timed(self, *args, **kwargs):
        started = _situ_ns()
        try:
            return handle(self, *args, **kwargs)
        finally:
            _situ["handle"] += _situ_ns() - started
    cls.handle, cls._situ_timed = timed, True


_situ_received, _situ_respond = HttpConnection.data_received, HttpConnection.respond


def _situ_data_received(self, data):
    _situ_wrap_handle(self.app)
    started = _situ_ns()
    _situ_received(self, data)
    _situ["inbound"] += _situ_ns() - started


def _situ_timed_respond(self, *args, **kwargs):
    started = _situ_ns()
    _situ_respond(self, *args, **kwargs)
    _situ["respond"] += _situ_ns() - started
    _situ["requests"] += 1


HttpConnection.data_received, HttpConnection.respond = _situ_data_received, _situ_timed_respond
_situ_atexit.register(lambda: open(_situ_os.environ["DOCKYARD_BENCH_SITU"], "w").write(_situ_json.dumps(_situ)))
"""


def in_situ(tree: Path, label: str, model: Path, body: str, seconds: int, work: Path) -> dict[str, float]:
    """Microseconds per request: inbound (data_received less the app's handle: framing, head
    parse, dispatch), respond (the response head, the write, bookkeeping), handle (the app's, for
    scale), from one server of this variant under wrk."""
    copy = work / f"situ-{label}"
    if not copy.exists():
        shutil.copytree(tree, copy)
        http = copy / "dockyard_runtime" / "http.py"
        http.write_text(http.read_text() + _IN_SITU)
    out = work / f"situ-{label}.json"
    out.unlink(missing_ok=True)
    with served(copy, label, model, work, {"DOCKYARD_BENCH_SITU": str(out)}) as (_, url):
        wrk(url, body, seconds, work)
    got = json.loads(out.read_text())  # written at the server's exit
    n = max(1, got["requests"])
    return {"inbound": (got["inbound"] - got["handle"]) / n / 1000, "respond": got["respond"] / n / 1000,
            "handle": got["handle"] / n / 1000}


def digits(work: Path) -> tuple[Path, str]:
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = work / "digits.joblib"
    joblib.dump(LogisticRegression(max_iter=2000).fit(x / 16.0, y), model)
    return model, json.dumps({"input": [float(v) for v in x[0] / 16.0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--no-server", action="store_true", help="protocol level only")
    parser.add_argument("--instructions", action="store_true", help="also count instructions with callgrind")
    parser.add_argument("--instruction-runs", type=int, default=3, help="server runs under callgrind per variant (median)")
    parser.add_argument("--instruction-requests", type=int, default=600,
                        help="requests counted per server run under callgrind (after 100 not counted)")
    parser.add_argument("--in-situ-rounds", type=int, default=4,
                        help="server runs per variant with the HTTP layer's own time measured inside (0: none)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_protocol(args.child[0], args.child[1], args.child[2], int(args.child[3]))
        return
    global LOAD
    LOAD = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="http-bench-"))
    trees = {"before": runtime_copy(args.before, work / "before"), "now": runtime_copy(None, work / "now")}
    tree_of = {"before": trees["before"], "python": trees["now"], "llhttp": trees["now"]}
    os.environ["DOCKYARD_PARSER_DIR"] = str(private_parser_dir(work))
    modules: dict[str, Any] = {}
    apps: dict[str, Any] = {}
    for label in VARIANTS:
        sys.path.insert(0, str(tree_of[label]))
        modules[label] = importlib.import_module("dockyard_runtime.http")
        apps[label] = protocol_app(label)
        sys.path.pop(0)
        for name in [m for m in sys.modules if m.startswith("dockyard_runtime")]:
            del sys.modules[name]
    rows: list[tuple[str, dict[str, float]]] = []
    for name, (packets, per) in workloads().items():
        rates: dict[str, list[float]] = {label: [] for label in VARIANTS}
        for _ in range(args.rounds):
            for label in VARIANTS:
                rates[label].append(protocol_rate(modules[label], apps[label], packets, per, 0.5))
        rows.append((name, {label: statistics.median(r) for label, r in rates.items()}))
        print(name, {k: round(v) for k, v in rows[-1][1].items()}, flush=True)
    model, body = digits(work)
    server: dict[str, tuple[float, float, float]] = {}
    server_rounds: dict[str, list[tuple[float, float, float]]] = {}
    if not args.no_server and shutil.which("wrk"):
        got: dict[str, list[tuple[float, float, float]]] = {label: [] for label in VARIANTS + FRESH}
        for i in range(args.rounds):
            for label in VARIANTS + FRESH if i % 2 == 0 else (VARIANTS + FRESH)[::-1]:  # drift cancels over two
                variant = label.split()[0]  # "llhttp fresh": the llhttp server under the fresh load
                got[label].append(server_rate(tree_of[variant], variant, model, body, args.seconds, work,
                                              fresh=label in FRESH))
                print(f"server {label}: {got[label][-1][0]:.0f} ok req/s, p99 {got[label][-1][1]:.2f} ms, "
                      f"{got[label][-1][2]:.1f} us CPU/request", flush=True)
        server_rounds = got
        for label in VARIANTS + FRESH:
            server[label] = tuple(statistics.median(r[k] for r in got[label]) for k in range(3))  # type: ignore[assignment]
    situ: dict[str, list[dict[str, float]]] = {}
    if not args.no_server and shutil.which("wrk") and args.in_situ_rounds:
        situ = {label: [] for label in VARIANTS}
        for i in range(args.in_situ_rounds):
            for label in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                situ[label].append(in_situ(tree_of[label], label, model, body, args.seconds, work))
                print(f"in situ {label}: " + ", ".join(f"{k} {v:.2f} us" for k, v in situ[label][-1].items()), flush=True)
    counts: list[tuple[str, dict[str, float]]] = []
    server_detail: dict[str, dict[str, dict[str, float]]] = {}
    server_spread: dict[str, dict[str, list[float]]] = {}
    if args.instructions and shutil.which("valgrind"):
        for name, (_, per) in list(workloads().items())[:2]:
            counts.append((f"protocol level, {name}",
                           {label: protocol_instructions(tree_of[label], label, name, per, work) for label in VARIANTS}))
            print(counts[-1], flush=True)
        for what, served, payload in (("digits model", model, body), ("pass-through predictor", None, '{"x": 1.5}')):
            runs: dict[str, list[dict[str, float]]] = {label: [] for label in VARIANTS}
            for _ in range(args.instruction_runs):  # alternating, like the timed rounds
                for label in VARIANTS:
                    runs[label].append(server_instructions(tree_of[label], label, work, served, payload,
                                                           n=args.instruction_requests))
                    print(f"server under callgrind, {what}, {label}: "
                          + ", ".join(f"{k} {v:.0f}" for k, v in runs[label][-1].items()), flush=True)
            name = f"real server, POST /predict, {what}"
            counts.append((name, {label: statistics.median(r["per_request"] for r in runs[label]) for label in VARIANTS}))
            server_detail[name] = {label: {k: statistics.median(r[k] for r in runs[label]) for k in runs[label][0]}
                                   for label in VARIANTS}
            server_spread[name] = {label: [r["per_request"] for r in runs[label]] for label in VARIANTS}
            print(counts[-1], flush=True)
    report(args, rows, server, counts, server_detail, server_spread, server_rounds, situ)
    shutil.rmtree(work, ignore_errors=True)


def ratios(rounds: dict[str, list[tuple[float, float, float]]], label: str, k: int) -> list[float]:
    """``label``'s measurement ``k`` over before's under the same load, round by round."""
    base = rounds["before fresh" if label in FRESH else "before"]
    return [mine[k] / theirs[k] for mine, theirs in zip(rounds[label], base)]


def paired(rounds: dict[str, list[tuple[float, float, float]]] | None, label: str, k: int) -> float:
    """The median of the per-round ratios: robust to the machine's load drifting between rounds,
    which moves every variant of a round together."""
    return statistics.median(ratios(rounds or {}, label, k)) if rounds else float("nan")


def report(args: argparse.Namespace, rows: list[tuple[str, dict[str, float]]],
           server: dict[str, tuple[float, float, float]], counts: list[tuple[str, dict[str, float]]],
           detail: dict[str, dict[str, dict[str, float]]] | None = None,
           spread: dict[str, dict[str, list[float]]] | None = None,
           server_rounds: dict[str, list[tuple[float, float, float]]] | None = None,
           situ: dict[str, list[dict[str, float]]] | None = None) -> None:
    load = f"load average {LOAD[0]:.2f} at the start and {os.getloadavg()[0]:.2f} at the end" if LOAD else ""
    lines = [f"Three runtimes that differ only in the HTTP layer: **before** is the working tree with `http.py` "
             f"from `{args.before}` (main before the hardening: hand-rolled parser, chunked bodies re-parsed per "
             "packet); **python** is this tree with `--http-parser python` (strict incremental `wire.py`, "
             "back-pressure, Date header); **llhttp** is this tree with `--http-parser llhttp` (heads parsed by "
             "httptools loaded from a private folder, as images do: each distinct head read alone by llhttp "
             "once, the same head with other Content-Length digits vouched for without it, plus the thin "
             "check layer). "
             f"Medians of {args.rounds} alternating rounds in one run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"2 CPUs shared with other work ({load}).", ""]
    if counts:
        lines += ["User-space instructions per request (callgrind; a count, so other load on the machine does "
                  "not move it much; kernel work such as the socket calls is not included). Protocol rows: the "
                  "difference between 1000 and 6000 requests fed to one connection. Server rows: one server "
                  f"process per run, warmed with 100 requests, then its counters zeroed, {args.instruction_requests} "
                  "requests over one keep-alive connection counted, and the counters dumped "
                  f"(`callgrind_control`); median of {args.instruction_runs} alternating runs:", "",
                  "| path | before | python | python / before | llhttp | llhttp / before |", "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {c['before']:.0f} | {c['python']:.0f} | {c['python'] / c['before']:.2f} | "
                  f"{c['llhttp']:.0f} | {c['llhttp'] / c['before']:.2f} |" for name, c in counts]
        digits_name, digits_row = next((name, c) for name, c in counts if "digits" in name)
        ratio = digits_row["llhttp"] / digits_row["before"]
        lines += ["", f"Verdict for the shipped default (llhttp) on the digits predict request, one at a time on "
                      f"one keep-alive connection (batches of one, so the model's share is the largest): "
                      f"{100 * (ratio - 1):+.1f}% user-space instructions per request against before; the target "
                      f"of at most +5% is **{'met' if ratio <= 1.05 else 'not met'}**. The pure-Python fallback: "
                      f"{100 * (digits_row['python'] / digits_row['before'] - 1):+.1f}%."]
        bare = next((c for name, c in counts if "pass-through" in name), None)
        if bare is not None:
            lines[-1] += (f" With a predictor that does no work at all, where the HTTP layer's share is the "
                          f"largest it can be: llhttp {100 * (bare['llhttp'] / bare['before'] - 1):+.1f}%, the "
                          f"pure parser {100 * (bare['python'] / bare['before'] - 1):+.1f}% "
                          f"({'within' if bare['llhttp'] / bare['before'] <= 1.05 else 'over'} 5% for llhttp).")
        if server:
            rate, cpu = paired(server_rounds, "llhttp", 0), paired(server_rounds, "llhttp", 2)
            lines[-1] += (f" Under load (wrk, 16 connections, below) requests are batched, each costs the model "
                          f"less, and the HTTP layer's share grows: in this run llhttp did {100 * (rate - 1):+.1f}% "
                          f"ok req/s and {100 * (cpu - 1):+.1f}% server CPU per request against before (medians of "
                          "the per-round ratios: each round runs before, python and llhttp back to back, so a "
                          "ratio compares servers that met the same load on the machine)")
            if server_rounds:
                spans = {label: (min(r[2] for r in server_rounds[label]), max(r[2] for r in server_rounds[label]))
                         for label in ("before", "llhttp")}
                lines[-1] += (f", with rounds from {spans['before'][0]:.0f} to {spans['before'][1]:.0f} us (before) "
                              f"and {spans['llhttp'][0]:.0f} to {spans['llhttp'][1]:.0f} us (llhttp)")
            fresh_rate, fresh_cpu = paired(server_rounds, "llhttp fresh", 0), paired(server_rounds, "llhttp fresh", 2)
            lines[-1] += (f". With a new Content-Length every request: {100 * (fresh_rate - 1):+.1f}% ok req/s and "
                          f"{100 * (fresh_cpu - 1):+.1f}% CPU per request. So the instruction count meets the "
                          "target for a request served alone; the throughput at 16 connections is "
                          + ("within 5% in this run" if min(rate, fresh_rate) >= 0.95 and max(cpu, fresh_cpu) <= 1.05
                             else "within 5% in this run for one repeated head, not for changing lengths"
                             if rate >= 0.95 and cpu <= 1.05 else "not shown to be within 5%") + ".")
        lines.append("")
        proto = counts[0][1]
        lines += [f"Cross-check: at protocol level the llhttp backend adds {proto['llhttp'] - proto['before']:.0f} "
                  f"instructions per POST to before's, the pure parser {proto['python'] - proto['before']:.0f}; "
                  f"in the digits server llhttp adds {digits_row['llhttp'] - digits_row['before']:.0f} and the "
                  f"pure parser {digits_row['python'] - digits_row['before']:.0f} (the difference between the "
                  "two is what the real server's path adds to the parser's cost, plus the noise that is left).", "",
                  "Why earlier server rows moved by several percent: until 2026-11-30 this bench took them as "
                  "the difference between two server processes' totals, 100 and 600 requests each from startup "
                  "to exit, divided by 500. Each total holds a whole startup and shutdown (about 650 million "
                  "instructions for the pass-through server, billions with scikit-learn) that differ between "
                  "processes by millions, and dividing the difference by 500 turned that into thousands to tens "
                  "of thousands per request: the same llhttp pass-through server measured three times that way "
                  "gave 224537, 226798 and 255554 per request, and one earlier run put llhttp below before. "
                  "That, not the parser, was the gap between the earlier server row (+7.2%, about +83k) and the "
                  "protocol row (+24k). Counted inside one process after a warm-up, startup and shutdown are "
                  "outside the window; the runs column below shows the spread that is left.", ""]
        if detail and spread:
            lines += ["Where the server rows' instructions go (medians per request; *GC*: inside the cyclic "
                      "garbage collector; *clock*: what the same process runs per second with no requests at "
                      "all, the once-a-second sweep, metrics file and watchdog, times the window's length; "
                      "*runs*: every run's count, to show the spread):", "",
                      "| row | runtime | per request | GC | clock | idle per second | runs |", "|---|---|---|---|---|---|---|"]
            for name in detail:
                for label in VARIANTS:
                    d = detail[name][label]
                    lines.append(f"| {name.split(', ')[-1]} | {label} | {d['per_request']:.0f} | {d['gc']:.0f} | "
                                 f"{d['clock']:.0f} | {d['idle_per_s']:.0f} | "
                                 + " / ".join(f"{v:.0f}" for v in spread[name][label]) + " |")
            lines.append("")
    lines += ["Protocol level, timed (`HttpConnection.data_received` with a fake transport and an app that "
              "answers at once: framing and connection bookkeeping only):", "",
              "| workload | before req/s | python req/s | python / before | llhttp req/s | llhttp / before |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['before']:.0f} | {r['python']:.0f} | {r['python'] / r['before']:.2f} | "
              f"{r['llhttp']:.0f} | {r['llhttp'] / r['before']:.2f} |" for name, r in rows]
    if server:
        lines += ["", f"Real server, digits model, `wrk -t1 -c16 -d{args.seconds}s` POST /predict over loopback. "
                      "CPU/request is the server process's user+system time over the ok requests; both move "
                      "with whatever else runs on the machine, so read them with the instruction counts above; "
                      "*rounds* lists each round's CPU per request, to show how much they move. wrk sends "
                      "the same request every time, as in every earlier run of this bench; the *fresh* rows are "
                      "the same servers, in the same rounds, under wrk sending a new Content-Length every "
                      "request (the body padded with 0 to 999 blanks), the cost for a client whose bodies all "
                      "differ. The protocol rows above also show a client that tags every request with its own "
                      "header (X-Request-Id), whose heads the runtime cannot remember.", "",
                  "| runtime | ok req/s | p99 | server CPU per request | rounds (us) |", "|---|---|---|---|---|"]
        lines += [f"| {label} | {server[label][0]:.0f} | {server[label][1]:.2f} ms | {server[label][2]:.1f} us | "
                  + " / ".join(f"{r[2]:.1f}" for r in (server_rounds or {}).get(label, [])) + " |"
                  for label in VARIANTS + FRESH if label in server]
        if server_rounds:
            lines += ["", "Per round, against before in the same round under the same load (ok req/s ratio; CPU "
                          "per request ratio; *llhttp fresh* over *before fresh*):", "",
                      "| runtime | req/s ratio, median | rounds | CPU ratio, median | rounds |", "|---|---|---|---|---|"]
            for label in VARIANTS[1:] + FRESH[1:]:
                lines.append(f"| {label} | {paired(server_rounds, label, 0):.3f} | "
                             + " / ".join(f"{r:.2f}" for r in ratios(server_rounds, label, 0))
                             + f" | {paired(server_rounds, label, 2):.3f} | "
                             + " / ".join(f"{r:.2f}" for r in ratios(server_rounds, label, 2)) + " |")
    if situ:
        med = {label: {k: statistics.median(r[k] for r in situ[label]) for k in situ[label][0]} for label in VARIANTS}
        cpu = server["before"][2] if server else float("nan")
        lines += ["", f"In situ: the HTTP layer's own wall time per request inside the same kind of server under "
                      f"the same wrk load ({args.in_situ_rounds} alternating rounds, medians; *inbound*: "
                      "`data_received` less the app's `handle`, i.e. framing, the head parse and dispatch; "
                      "*respond*: the response head, the socket write and bookkeeping; *app handle*: the routes "
                      "and the JSON body, the same code in every variant, for scale). Under load this code runs "
                      "cache-cold between the model's batches, so it costs several times what the warm protocol "
                      "rows above show:", "",
                  "| runtime | inbound | respond | app handle | HTTP layer | over before | share of before's CPU per request |",
                  "|---|---|---|---|---|---|---|"]
        base = med["before"]["inbound"] + med["before"]["respond"]
        for label in VARIANTS:
            layer = med[label]["inbound"] + med[label]["respond"]
            lines.append(f"| {label} | {med[label]['inbound']:.2f} us | {med[label]['respond']:.2f} us | "
                         f"{med[label]['handle']:.2f} us | {layer:.2f} us | {layer - base:+.2f} us | "
                         f"{100 * (layer - base) / cpu:+.1f}% |")
    lines += ["", "Run: `python bench/http_parser_bench.py --instructions` (wrk for the server rows, valgrind "
                  "for the instruction counts)."]
    text = "\n".join(lines)
    print(text)
    write_section("http-parser", "HTTP parser before/after", text)


if __name__ == "__main__":
    main()
