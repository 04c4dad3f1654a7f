"""Serving benchmark: dockyard's runtime vs the peer servers, same model, same run.

Serves the sklearn digits LogisticRegression (64 floats in, a class out) with dockyard's runtime
and with each peer in ../shared/bench/peers (hand-written FastAPI, LitServe, MLServer, Cog,
BentoML), loads each with wrk over loopback (single-row requests) at 16 connections and at 1,
and writes medians over repeats to docs/benchmarks-serving.{json,md} (+ .png with matplotlib).

    bash /work/shared/bench/peers/setup.sh          # peer venvs + model under /tmp/peers, wrk
    python bench/serve_bench.py --seconds 5 --repeats 3
    python bench/serve_bench.py --only dockyard,fastapi

Absolute numbers depend on the machine (the load generator shares its cores): compare within a run.
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
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS_SRC = Path(os.environ.get("PEERS_SRC", REPO.parent / "shared" / "bench" / "peers"))
PEERS = Path(os.environ.get("PEERS", "/tmp/peers"))


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    body: str
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Load:
    ok_rps: float
    p50_ms: float
    p99_ms: float
    failed: int
    total: int


def targets(row: list[float], work: Path) -> list[Target]:
    py = sys.executable
    model = str(PEERS / "model.joblib")
    plain = json.dumps({"input": row})
    csv = ",".join(map(str, row))
    v2 = json.dumps({"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP64", "data": row}]})
    mls = work / "mlserver"
    mls.mkdir(exist_ok=True)
    (mls / "model-settings.json").write_text(json.dumps(
        {"name": "digits", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": model}}))
    v = lambda name: str(PEERS / f"v-{name}" / "bin")  # noqa: E731
    return [
        Target("dockyard", "http://127.0.0.1:18100/predict", plain,
               [py, "-m", "dockyard.runtime", "--model", model, "--name", "digits", "--port", "18100"],
               {"PYTHONPATH": str(REPO / "src")}),
        Target("fastapi", "http://127.0.0.1:18101/predict", plain,
               [f"{v('fastapi')}/uvicorn", "fastapi_naive:app", "--port", "18101", "--log-level", "warning"], {}),
        Target("litserve", "http://127.0.0.1:18102/predict", plain,
               [f"{v('litserve')}/python", "litserve_svc.py", "18102"], {}),
        Target("bentoml", "http://127.0.0.1:18103/predict", plain,
               [f"{v('bentoml')}/bentoml", "serve", "bentoml_svc:Digits", "--port", "18103"], {}),
        Target("mlserver", "http://127.0.0.1:18104/v2/models/digits/infer", v2,
               [f"{v('mlserver')}/mlserver", "start", str(mls)],
               {"MLSERVER_PARALLEL_WORKERS": "0", "MLSERVER_HTTP_PORT": "18104", "MLSERVER_GRPC_PORT": "18114",
                "MLSERVER_METRICS_PORT": "18124"}),
        Target("cog", "http://127.0.0.1:18105/predictions", json.dumps({"input": {"input": csv}}),
               [f"{v('cog')}/python", "-m", "cog.server.http", "--host", "127.0.0.1"],
               {"COG_MAX_CONCURRENCY": "16", "PATH": f"{v('cog')}:{os.environ['PATH']}", "PORT": "18105",
                "COG_PREDICT_TYPE_STUB": "cog_predict.py:Predictor"}),
    ]


def _post_ok(url: str, body: str) -> bool:
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(target: Target, work: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server; return it and the seconds from process start to its first 200 prediction."""
    log = (work / f"{target.name}.log").open("wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(target.argv, cwd=work, env={**os.environ, "MODEL": str(PEERS / "model.joblib"),
                                                         **target.env},
                            stdout=log, stderr=log, start_new_session=True)
    deadline = t0 + 90
    while time.perf_counter() < deadline and proc.poll() is None:
        if _post_ok(target.url, target.body):
            return proc, time.perf_counter() - t0
        time.sleep(0.01)
    stop(proc)
    raise RuntimeError(f"{target.name} never answered 200; see {work / (target.name + '.log')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def time_to_first_prediction(target: Target, work: Path) -> float:
    """Seconds from process start to the first successful prediction (cold start, model on disk)."""
    proc, seconds = start(target, work)
    stop(proc)
    return seconds


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(target: Target, connections: int, seconds: float, script: Path) -> Load:
    script.write_text('wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\n'
                      f"wrk.body={json.dumps(target.body)}\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script),
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
    return {k: statistics.median(getattr(x, k) for x in loads) for k in ("ok_rps", "p50_ms", "p99_ms", "failed")}


def run(names: list[str] | None, seconds: float, repeats: int, startup_repeats: int) -> dict[str, object]:
    if not (PEERS / "model.joblib").exists() or shutil.which("wrk") is None:
        sys.exit(f"run `bash {PEERS_SRC}/setup.sh` first (peer venvs, model and wrk under {PEERS})")
    row = json.loads((PEERS / "sample.json").read_text())["row"]
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    for f in PEERS_SRC.glob("*.py"):
        shutil.copy(f, work)
    shutil.copy(PEERS_SRC / "cog.yaml", work)
    results: dict[str, object] = {}
    for target in targets(row, work):
        if names and target.name not in names:
            continue
        print(f"== {target.name}", flush=True)
        try:
            proc, first = start(target, work)
        except RuntimeError as exc:
            print(f"   skipped: {exc}", flush=True)
            continue
        try:
            wrk(target, 16, 1, work / "post.lua")  # warm the server's own caches, not counted
            c16 = [wrk(target, 16, seconds, work / "post.lua") for _ in range(repeats)]
            c1 = [wrk(target, 1, seconds, work / "post.lua") for _ in range(repeats)]
        finally:
            stop(proc)
        starts = [first] + [time_to_first_prediction(target, work) for _ in range(startup_repeats - 1)]
        results[target.name] = {"c16": median_load(c16), "c1": median_load(c1),
                                "c16_runs": [asdict(x) for x in c16], "c1_runs": [asdict(x) for x in c1],
                                "first_prediction_s": round(statistics.median(starts), 3)}
        print(f"   16 conns: {results[target.name]['c16']}\n   1 conn:   {results[target.name]['c1']}\n"
              f"   process start -> first prediction: {results[target.name]['first_prediction_s']} s", flush=True)
    return {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "date": time.strftime("%Y-%m-%d"), "seconds": seconds, "repeats": repeats, "servers": results}


def markdown(report: dict[str, object]) -> str:
    servers: dict[str, dict[str, object]] = report["servers"]  # type: ignore[assignment]
    peers = {k: v for k, v in servers.items() if k != "dockyard"}
    best = max(peers, key=lambda k: peers[k]["c16"]["ok_rps"]) if peers else None  # type: ignore[index]
    lines = [f"Digits LogisticRegression, single-row requests over loopback, wrk 1 thread, "
             f"{report['seconds']} s x {report['repeats']} repeats (medians), {report['machine']['cpus']} CPUs "  # type: ignore[index]
             f"shared with the load generator, {report['date']}.", "",
             "| server | ok req/s, 16 conns | p99, 16 conns | ok req/s, 1 conn | p50, 1 conn | "
             "start -> first prediction | vs best peer (16 conns) |", "|---|---|---|---|---|---|---|"]
    for name, r in sorted(servers.items(), key=lambda kv: -kv[1]["c16"]["ok_rps"]):  # type: ignore[index]
        c16, c1 = r["c16"], r["c1"]  # type: ignore[index]
        ratio = f"{c16['ok_rps'] / peers[best]['c16']['ok_rps']:.2f}x" if best else "-"  # type: ignore[index]
        lines.append(f"| {name} | {c16['ok_rps']:.0f} | {c16['p99_ms']:.2f} ms | {c1['ok_rps']:.0f} | "
                     f"{c1['p50_ms']:.2f} ms | {r['first_prediction_s']:.2f} s | {ratio} |")
    if best and "dockyard" in servers:
        d, b = servers["dockyard"], peers[best]
        lines += ["", f"Best peer: **{best}**. dockyard: {d['c16']['ok_rps'] / b['c16']['ok_rps']:.1f}x its ok req/s "  # type: ignore[index]
                  f"at 16 connections (p99 {d['c16']['p99_ms']:.2f} ms vs {b['c16']['p99_ms']:.2f} ms); "  # type: ignore[index]
                  f"p50 at 1 connection {d['c1']['p50_ms']:.2f} ms vs {b['c1']['p50_ms']:.2f} ms."]  # type: ignore[index]
    return "\n".join(lines) + "\n"


def chart(report: dict[str, object], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    servers: dict[str, dict[str, object]] = report["servers"]  # type: ignore[assignment]
    names = sorted(servers, key=lambda k: -servers[k]["c16"]["ok_rps"])  # type: ignore[index]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    colors = ["#1f6feb" if n == "dockyard" else "#8c959f" for n in names]
    a.bar(names, [servers[n]["c16"]["ok_rps"] for n in names], color=colors)  # type: ignore[index]
    a.set_title("ok req/s at 16 connections (higher is better)")
    b.bar(names, [servers[n]["c1"]["p50_ms"] for n in names], color=colors)  # type: ignore[index]
    b.set_title("p50 latency at 1 connection, ms (lower is better)")
    for ax in (a, b):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--startup-repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated server names (dockyard, fastapi, litserve, ...)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks-serving")
    args = parser.parse_args()
    report = run(args.only.split(",") if args.only else None, args.seconds, args.repeats, args.startup_repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = "# Serving benchmark\n\n" + markdown(report)
    if chart(report, args.out.with_suffix(".png")):
        md += f"\n![serving benchmark]({args.out.with_suffix('.png').name})\n"
    args.out.with_suffix(".md").write_text(md)
    sys.path.insert(0, str(Path(__file__).parent))
    from _report import write_section

    write_section("serving", "Serving: dockyard's runtime vs peer servers", md.removeprefix("# Serving benchmark\n\n")
                  + "\nRun: `python bench/serve_bench.py` (peers from `../shared/bench/peers/setup.sh`).")
    print(md)


if __name__ == "__main__":
    main()
