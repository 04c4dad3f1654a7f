"""Serving benchmark, as users run it: `dockyard serve` vs the peer servers, same model, same run.

A project made the way a user makes one (the peers' model.joblib + requirements.txt, then
`dockyard init`, so dockyard.yaml carries init's defaults) is served:

- `dockyard serve PROJECT --local`            (the runtime in this Python)
- `dockyard serve PROJECT --detach`           (the serving image, built and run by dockyard)
- `dockyard serve PROJECT --local` again with hand-tuned dockyard.yaml settings (batch wait and
  size), to check that the adaptive default is within 10% of the best of them

next to each peer in ../shared/bench/peers (hand-written FastAPI, LitServe, MLServer, Cog,
BentoML). All servers are started one after the other (the time to the first prediction is
measured alone), then loaded with wrk over loopback (single-row requests) at 16 connections and
at 1, round-robin, `--repeats` rounds, so drift on a shared machine hits every server alike.
Same-run ratios are medians of the per-round ratios. Writes docs/benchmarks-serving.{json,md}
and the serving section of docs/benchmarks.md.

    bash /work/shared/bench/peers/setup.sh          # peer venvs + model under $PEERS, wrk
    python bench/serve_bench.py --seconds 3 --repeats 3
    python bench/serve_bench.py --only dockyard-local,fastapi --no-container
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PEERS_SRC = Path(os.environ.get("PEERS_SRC", REPO.parent / "shared" / "bench" / "peers"))
PEERS = Path(os.environ.get("PEERS", "/tmp/peers"))
DOCKYARD = str(Path(sys.executable).with_name("dockyard"))
# dockyard.yaml settings a user might hand-tune, checked against init's defaults (wait 2 ms, size 32).
TUNED = {"default-again": {},  # an A/A check: the same settings twice show the noise floor
         "wait-0ms": {"max_batch_wait_ms": 0}, "wait-1ms": {"max_batch_wait_ms": 1},
         "wait-5ms": {"max_batch_wait_ms": 5}, "batch-1": {"max_batch_size": 1},
         "batch-8": {"max_batch_size": 8}}


@dataclass
class Target:
    name: str
    url: str
    body: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    container: bool = False  # argv runs `dockyard serve --detach`, which returns once ready
    group: str = "peer"  # user-path | tuned | peer


@dataclass(frozen=True)
class Load:
    ok_rps: float
    p50_ms: float
    p99_ms: float
    failed: int
    total: int
    cpu_s: float = 0.0  # CPU the server used during the run (all its processes, or its container)
    ok_per_cpu_s: float = 0.0  # ok answers per server CPU-second: steadier than req/s on a busy host


def session_cpu_seconds(root: int) -> float:
    """user+system CPU of every live process in the server's session or below it (the server and
    whatever it forked, including workers that start sessions of their own)."""
    procs: dict[int, tuple[int, int, int]] = {}  # pid -> (ppid, session, ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on
        procs[int(entry)] = (int(fields[1]), int(fields[3]), int(fields[11]) + int(fields[12]))
    ticks = 0
    for pid, (ppid, session, used) in procs.items():
        mine = session == root
        while not mine and ppid > 1 and ppid in procs:
            mine = ppid == root
            ppid = procs[ppid][0]
        ticks += used if mine or pid == root else 0
    return ticks / os.sysconf("SC_CLK_TCK")


def container_cpu_seconds(container: str) -> float:
    full = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", container], capture_output=True,
                          text=True).stdout.strip()
    for path in (f"/sys/fs/cgroup/cpuacct/docker/{full}/cpuacct.usage",
                 f"/sys/fs/cgroup/system.slice/docker-{full}.scope/cpu.stat"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("usage"):
            return int(text) / 1e9
        return int(re.search(r"usage_usec (\d+)", text).group(1)) / 1e6  # type: ignore[union-attr]
    return 0.0


def project(work: Path, name: str, settings: dict[str, Any]) -> Path:
    """A project as `dockyard init` writes it, with optional hand-tuned serve settings."""
    proj = work / name
    proj.mkdir()
    shutil.copy(PEERS / "model.joblib", proj / "model.joblib")
    (proj / "requirements.txt").write_text("scikit-learn\njoblib\n")
    subprocess.run([DOCKYARD, "init", str(proj), "--name", "serve-bench-digits"], check=True, capture_output=True)
    if settings:
        path = proj / "dockyard.yaml"
        config = yaml.safe_load(path.read_text())
        config["serve"].update(settings)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return proj


def free_port() -> int:
    """A free loopback port: fixed ports collide with other benchmark runs on a shared host."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def targets(row: list[float], work: Path, container: bool, sweep: bool) -> list[Target]:
    plain = json.dumps({"input": row})
    csv = ",".join(map(str, row))
    v2 = json.dumps({"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP64", "data": row}]})
    p = {name: free_port() for name in ("local", "local-stdlib-json", "container", "fastapi", "litserve", "bentoml", "mlserver",
                                        "mlserver-grpc", "mlserver-metrics", "cog", *TUNED)}
    mls = work / "mlserver"
    mls.mkdir(exist_ok=True)
    (mls / "model-settings.json").write_text(json.dumps(
        {"name": "digits", "implementation": "mlserver_sklearn.SKLearnModel",
         "parameters": {"uri": str(PEERS / "model.joblib")}}))
    v = lambda name: str(PEERS / f"v-{name}" / "bin")  # noqa: E731
    out = [Target("dockyard-local", f"http://127.0.0.1:{p['local']}/predict", plain,
                  [DOCKYARD, "serve", str(project(work, "local", {})), "--local", "--port", str(p["local"])],
                  group="user-path")]
    # Users' own environments seldom have orjson (this one has it for the tests): the same path without it.
    blocked = work / "no-orjson"
    blocked.mkdir(exist_ok=True)
    (blocked / "orjson.py").write_text('raise ImportError("blocked by serve_bench")\n')
    out.append(Target("dockyard-local-stdlib-json", f"http://127.0.0.1:{p['local-stdlib-json']}/predict", plain,
                      [DOCKYARD, "serve", str(project(work, "local-stdlib-json", {})), "--local", "--port",
                       str(p["local-stdlib-json"])], {"PYTHONPATH": str(blocked)}, group="user-path"))
    if container:
        out.append(Target("dockyard-container", f"http://127.0.0.1:{p['container']}/predict", plain,
                          [DOCKYARD, "serve", str(project(work, "container", {})), "--detach", "--replace", "-q",
                           "--port", str(p["container"])], container=True, group="user-path"))
    if sweep:
        for name, settings in TUNED.items():
            port = p[name]
            out.append(Target(f"local {name}", f"http://127.0.0.1:{port}/predict", plain,
                              [DOCKYARD, "serve", str(project(work, name, settings)), "--local", "--port", str(port)],
                              group="tuned"))
    out += [
        Target("fastapi", f"http://127.0.0.1:{p['fastapi']}/predict", plain,
               [f"{v('fastapi')}/uvicorn", "fastapi_naive:app", "--port", str(p["fastapi"]), "--log-level", "warning"]),
        Target("litserve", f"http://127.0.0.1:{p['litserve']}/predict", plain,
               [f"{v('litserve')}/python", "litserve_svc.py", str(p["litserve"])]),
        Target("bentoml", f"http://127.0.0.1:{p['bentoml']}/predict", plain,
               [f"{v('bentoml')}/bentoml", "serve", "bentoml_svc:Digits", "--port", str(p["bentoml"])]),
        Target("mlserver", f"http://127.0.0.1:{p['mlserver']}/v2/models/digits/infer", v2,
               [f"{v('mlserver')}/mlserver", "start", str(mls)],
               {"MLSERVER_PARALLEL_WORKERS": "0", "MLSERVER_HTTP_PORT": str(p["mlserver"]),
                "MLSERVER_GRPC_PORT": str(p["mlserver-grpc"]), "MLSERVER_METRICS_PORT": str(p["mlserver-metrics"])}),
        Target("cog", f"http://127.0.0.1:{p['cog']}/predictions", json.dumps({"input": {"input": csv}}),
               [f"{v('cog')}/python", "-m", "cog.server.http", "--host", "127.0.0.1"],
               {"COG_MAX_CONCURRENCY": "16", "PATH": f"{v('cog')}:{os.environ['PATH']}", "PORT": str(p["cog"]),
                "COG_PREDICT_TYPE_STUB": "cog_predict.py:Predictor"}),
    ]
    return out


def _post_ok(url: str, body: str) -> bool:
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Running:
    """A started server: a process group, or a container that `dockyard serve --detach` started."""

    def __init__(self, target: Target, work: Path) -> None:
        self.target, self.proc, self.container = target, None, None
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update({"MODEL": str(PEERS / "model.joblib"), **target.env})
        self.log = work / f"{target.name.replace(' ', '_')}.log"
        t0 = time.perf_counter()
        if target.container:
            done = subprocess.run(target.argv, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
            self.log.write_text(done.stdout + done.stderr)
            # `ready: URL (docs: ..., container NAME)`: serve names the container it started
            found = re.search(r"container ([A-Za-z0-9][\w.-]*)\)", done.stdout + done.stderr)
            if done.returncode != 0 or not found:
                raise RuntimeError(f"{target.name}: dockyard serve failed; see {self.log}")
            self.container = found.group(1)
        else:
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(target.argv, cwd=work, env=env, stdout=log, stderr=log,
                                             start_new_session=True)
        deadline = t0 + 120
        while time.perf_counter() < deadline and (self.proc is None or self.proc.poll() is None):
            if _post_ok(target.url, target.body):
                self.first_prediction_s = time.perf_counter() - t0
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"{target.name} never answered 200; see {self.log}")

    def cpu_seconds(self) -> float:
        if self.container:
            return container_cpu_seconds(self.container)
        return session_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def measure(self, connections: int, seconds: int, script: Path) -> Load:
        before = self.cpu_seconds()
        load = wrk(self.target, connections, seconds, script)
        cpu = self.cpu_seconds() - before
        ok = load.ok_rps * seconds
        return replace(load, cpu_s=round(cpu, 3), ok_per_cpu_s=round(ok / cpu, 1) if cpu > 0 else 0.0)

    def batch_waits(self) -> int | None:
        """How often the runtime held a request for company, from its /metrics."""
        try:
            with urllib.request.urlopen(self.target.url.replace("/predict", "/metrics"), timeout=5) as resp:
                found = re.search(r"dockyard_batch_waits_total\{[^}]*\} (\d+)", resp.read().decode())
        except (urllib.error.URLError, OSError):
            return None
        return int(found.group(1)) if found else None

    def json_backend(self) -> str:
        text = self.log.read_text(errors="replace")
        if self.container:
            text = subprocess.run(["docker", "logs", self.container], capture_output=True, text=True).stderr
        found = re.search(r'"json": "(\w+)"', text)
        return found.group(1) if found else "-"

    def stop(self) -> None:
        if self.container:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True)
        elif self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(target: Target, connections: int, seconds: int, script: Path) -> Load:
    script.write_text('wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\n'
                      f"wrk.body={json.dumps(target.body)}\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          target.url], capture_output=True, text=True, timeout=seconds + 60).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = int(bad_match.group(1)) if bad_match else 0
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    failed = bad + (sum(map(int, errors.groups())) if errors else 0)
    return Load(round((total - bad) / seconds, 1), p50, p99, failed, total)


def median_load(loads: list[Load]) -> dict[str, float]:
    keys = ("ok_rps", "p50_ms", "p99_ms", "failed", "ok_per_cpu_s")
    return {k: statistics.median(getattr(x, k) for x in loads) for k in keys}


def run(names: list[str] | None, seconds: int, repeats: int, container: bool, sweep: bool) -> dict[str, Any]:
    if not (PEERS / "model.joblib").exists() or shutil.which("wrk") is None:
        sys.exit(f"run `PEERS={PEERS} bash {PEERS_SRC}/setup.sh` first (peer venvs, model and wrk)")
    row = json.loads((PEERS / "sample.json").read_text())["row"]
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    for f in PEERS_SRC.glob("*.py"):
        shutil.copy(f, work)
    shutil.copy(PEERS_SRC / "cog.yaml", work)
    chosen = [t for t in targets(row, work, container, sweep) if not names or t.name in names]
    running: dict[str, Running] = {}
    skipped: dict[str, str] = {}
    runs: dict[str, dict[str, list[Load]]] = {}
    try:
        for target in chosen:  # one at a time, so each start is timed alone
            print(f"== starting {target.name}", flush=True)
            try:
                running[target.name] = Running(target, work)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                print(f"   skipped: {exc}", flush=True)
                skipped[target.name] = str(exc)
                continue
            wrk(target, 16, 1, work / "post.lua")  # warm the server's own caches, not counted
        order = [t for t in chosen if t.name in running]
        for r in range(repeats):
            for target in order[r % len(order):] + order[:r % len(order)]:  # rotate who goes first
                c16 = running[target.name].measure(16, seconds, work / "post.lua")
                c1 = running[target.name].measure(1, seconds, work / "post.lua")
                runs.setdefault(target.name, {"c16": [], "c1": []})
                runs[target.name]["c16"].append(c16)
                runs[target.name]["c1"].append(c1)
                print(f"   round {r + 1} {target.name:22} 16 conns {c16.ok_rps:8.0f} ok/s p99 {c16.p99_ms:6.2f} ms"
                      f" {c16.ok_per_cpu_s:6.0f} ok/cpu-s | 1 conn {c1.ok_rps:6.0f} ok/s p50 {c1.p50_ms:5.2f} ms",
                      flush=True)
        backends = {name: r.json_backend() for name, r in running.items()}
        waits = {name: r.batch_waits() for name, r in running.items() if r.target.group != "peer"}
    finally:
        for r in running.values():
            r.stop()
    servers = {}
    for target in order:
        got = runs[target.name]
        servers[target.name] = {"group": target.group, "c16": median_load(got["c16"]), "c1": median_load(got["c1"]),
                                "c16_runs": [asdict(x) for x in got["c16"]], "c1_runs": [asdict(x) for x in got["c1"]],
                                "first_prediction_s": round(running[target.name].first_prediction_s, 3),
                                "json": backends.get(target.name, "-"), "batch_waits": waits.get(target.name)}
    return {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                        "load_avg_at_end": round(os.getloadavg()[0], 1), "docker_cpu_shares": docker_cpu_shares()},
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": seconds, "repeats": repeats,
            "servers": servers, "skipped": skipped}


def docker_cpu_shares() -> int | None:
    """The CPU weight of all containers together (cgroup v1), a fixed property of the host."""
    try:
        return int(Path("/sys/fs/cgroup/cpu/docker/cpu.shares").read_text())
    except (OSError, ValueError):
        return None


def _round_ratio(servers: dict[str, Any], a: str, b: str, conns: str, key: str = "ok_rps") -> float:
    """Median over rounds of a/b, each round's numbers taken minutes apart at most."""
    pairs = zip(servers[a][f"{conns}_runs"], servers[b][f"{conns}_runs"])
    return statistics.median(x[key] / y[key] for x, y in pairs if y[key])


def markdown(report: dict[str, Any]) -> str:
    servers: dict[str, Any] = report["servers"]
    peers = {k: v for k, v in servers.items() if v["group"] == "peer"}
    best = max(peers, key=lambda k: peers[k]["c16"]["ok_rps"]) if peers else None
    best_p50 = min(peers, key=lambda k: peers[k]["c1"]["p50_ms"]) if peers else None
    m = report["machine"]
    lines = [f"Digits LogisticRegression (64 floats in, a class out), single-row requests over loopback, wrk "
             f"1 thread, {report['seconds']} s per run, {report['repeats']} rounds round-robin (medians), "
             f"{m['cpus']} CPUs shared with the load generator and with other work (load average "
             f"{m['load_avg_at_end']} at the end): absolute numbers are noisy, compare within the table. "
             f"{report['date']}, Python {m['python']}.", "",
             "| server | ok req/s, 16 conns | vs best peer | ok per server CPU-s, 16 conns | vs best peer | "
             "p99, 16 conns | ok req/s, 1 conn | p50, 1 conn | start -> first prediction | JSON |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    best_cpu = max(peers, key=lambda k: peers[k]["c16"]["ok_per_cpu_s"]) if peers else None
    shown = [n for n in servers if servers[n]["group"] != "tuned"]
    for name in sorted(shown, key=lambda n: -servers[n]["c16"]["ok_rps"]):
        r = servers[name]
        ratio = f"{_round_ratio(servers, name, best, 'c16'):.2f}x" if best else "-"
        cpu_ok = r["c16"]["ok_per_cpu_s"] > 0
        ratio_cpu = f"{_round_ratio(servers, name, best_cpu, 'c16', 'ok_per_cpu_s'):.2f}x" if best_cpu and cpu_ok else "-"
        per_cpu = f"{r['c16']['ok_per_cpu_s']:.0f}" if cpu_ok else "- (not measured)"
        lines.append(f"| {name} | {r['c16']['ok_rps']:.0f} | {ratio} | {per_cpu} | {ratio_cpu} | "
                     f"{r['c16']['p99_ms']:.2f} ms | {r['c1']['ok_rps']:.0f} | {r['c1']['p50_ms']:.2f} ms | "
                     f"{r['first_prediction_s']:.2f} s | {r['json']} |")
    lines += ["", "`dockyard-local` is `dockyard serve PROJECT --local`, `dockyard-container` is "
              "`dockyard serve PROJECT --detach` (the serving image; its start time includes dockyard's cached "
              "build check and `docker run`). Both use the dockyard.yaml that `dockyard init` wrote "
              "(max_batch_wait_ms 2, max_batch_size 32). JSON: the runtime's JSON backend (orjson when the "
              "environment has it). Ratios are medians of per-round ratios. *ok per server CPU-s* divides the "
              "ok answers by the CPU time the server used in that run (all its processes, or its container's "
              "cgroup; docker-proxy not included): how much a server gets done with the CPU it is given, which "
              "moves far less than req/s when other work on the host takes the cores."]
    if best and "dockyard-local" in servers:
        for name in ("dockyard-local", "dockyard-local-stdlib-json", "dockyard-container"):
            if name not in servers:
                continue
            d, b1 = servers[name], peers[best_p50]
            lines += ["", f"**{name}**: {_round_ratio(servers, name, best, 'c16'):.1f}x the best peer's ({best}) ok "
                      f"req/s at 16 connections (target 5x), "
                      f"{_round_ratio(servers, name, best_cpu, 'c16', 'ok_per_cpu_s'):.1f}x its ok answers per CPU-second "
                      f"({best_cpu}); p99 {d['c16']['p99_ms']:.2f} ms (target <= 10 ms); "
                      f"p50 at 1 connection {d['c1']['p50_ms']:.2f} ms vs {b1['c1']['p50_ms']:.2f} ms for the best "
                      f"peer at 1 connection ({best_p50})."]
    tuned = [n for n in servers if servers[n]["group"] == "tuned"]
    if tuned and "dockyard-local" in servers:
        lines += ["", "Hand-tuned dockyard.yaml settings vs init's default, `--local`, same rounds "
                  "(median of per-round ratios; above 1.10 would mean the default leaves >10% on the table):", "",
                  "| setting | ok req/s, 16 conns | vs default | ok per CPU-s, 16 conns | vs default | "
                  "p50, 1 conn | vs default (ok req/s, 1 conn) | vs default (ok per CPU-s, 1 conn) |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in ["dockyard-local", *tuned]:
            r = servers[name]
            rr = lambda conns, key="ok_rps": _round_ratio(servers, name, "dockyard-local", conns, key)  # noqa: E731
            lines.append(f"| {name.replace('dockyard-local', 'default (wait 2 ms, size 32)')} | "
                         f"{r['c16']['ok_rps']:.0f} | {rr('c16'):.2f} | {r['c16']['ok_per_cpu_s']:.0f} | "
                         f"{rr('c16', 'ok_per_cpu_s'):.2f} | {r['c1']['p50_ms']:.2f} ms | {rr('c1'):.2f} | "
                         f"{rr('c1', 'ok_per_cpu_s'):.2f} |")
    if tuned:
        lines += ["", "The adaptive default waits for more requests only while another request is part-way in, "
                  "and wrk sends each request in one packet, so `wait-0ms`, `wait-1ms`, `wait-5ms` and "
                  "`default-again` run exactly the default's code path: their spread around 1.00 is this host's "
                  "noise, not a tuning effect. `batch-1` shows what batching is worth."]
        held = {n: servers[n].get("batch_waits") for n in ["dockyard-local", *tuned]}
        if any(v is not None for v in held.values()):
            lines += ["", "Requests held for company over the whole run (`dockyard_batch_waits_total`): "
                      + ", ".join(f"{n} {v}" for n, v in held.items() if v is not None) + "."]
    shares = m.get("docker_cpu_shares") or docker_cpu_shares()
    if "dockyard-container" in servers and shares:
        lines += ["", f"The container's numbers suffer from the host more than any process's: with cgroup v1 the "
                  f"whole `/docker` CPU cgroup has cpu.shares {shares}, the weight of a single host process, so "
                  f"while other work keeps the host's run queue long (load average {m['load_avg_at_end']} on "
                  f"{m['cpus']} CPUs) every container together gets about one process's share. Its per-CPU column "
                  "is the fairer comparison; it also runs without orjson (not in the project's requirements)."]
    if report["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in report["skipped"].items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated server names (dockyard-local, fastapi, ...)")
    parser.add_argument("--no-container", action="store_true", help="skip the serving image (no Docker)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the hand-tuned settings")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks-serving")
    parser.add_argument("--from-json", type=Path, help="render the Markdown of an earlier run's JSON again")
    args = parser.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text())
    else:
        report = run(args.only.split(",") if args.only else None, args.seconds, args.repeats,
                     not args.no_container, not args.no_sweep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.from_json:
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    args.out.with_suffix(".md").write_text("# Serving benchmark\n\n" + md)
    sys.path.insert(0, str(Path(__file__).parent))
    from _report import write_section

    write_section("serving", "Serving, as users run it: `dockyard serve` vs peer servers",
                  md + "\nRun: `python bench/serve_bench.py` (peers from `../shared/bench/peers/setup.sh`).")
    print(md)


if __name__ == "__main__":
    main()
