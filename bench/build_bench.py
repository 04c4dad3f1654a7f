"""Foundation benchmark: dockyard's build of examples/digits against the naive Dockerfile.

The naive Dockerfile is the one the seed article shows (`COPY . .`, then `pip install -r
requirements.txt`) on the SAME base image. Each round, in the same run and alternating:
cold build (no cache, empty package caches), rebuild after a one-line edit to train.py,
final image size; plus whether every dependency layer digest survived the edit. Medians
of N rounds go to docs/benchmarks-build.{json,md}. dockyard is measured three ways: its `train`
target (the like-for-like image: it runs train.py, as the naive one does), its `serve` target, and
`serve` with `bytecode: false`; for both serving images the container start -> first prediction
time is measured too.

    .venv/bin/python bench/build_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("DOCKYARD_DOCKER", "/usr/bin/docker")
BASE = "dockyard/python:3.11-slim"
NAIVE = f"""FROM {BASE}
WORKDIR /app
COPY . .
RUN --mount=type=secret,id=ca,target=/run/secrets/ca python3 -m venv /opt/venv \\
    && PIP_CERT=/run/secrets/ca /opt/venv/bin/pip install -r requirements.txt
CMD ["/opt/venv/bin/python", "train.py"]
"""


def sh(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def prune_build_cache() -> None:
    sh(DOCKER, "builder", "prune", "--all", "--force")


def size(ref: str) -> int:
    return int(sh(DOCKER, "image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())


def layers(ref: str) -> list[str]:
    return json.loads(sh(DOCKER, "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def naive_round(workdir: Path, ca: str) -> dict[str, float]:
    proj = workdir / "naive"
    shutil.copytree(REPO / "examples" / "digits", proj, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__", "dockyard.yaml"))
    (proj / "Dockerfile").write_text(NAIVE)
    build = lambda: sh(DOCKER, "build", "-q", "--secret", f"id=ca,src={ca}", "-t", "bench-naive:1", str(proj),  # noqa: E731
                       env={"DOCKER_BUILDKIT": "1"})
    prune_build_cache()
    cold = timed(build)
    (proj / "train.py").write_text((proj / "train.py").read_text() + "\n# edit\n")
    rebuild = timed(build)
    return {"cold_s": cold, "rebuild_s": rebuild, "size_bytes": size("bench-naive:1")}


def dockyard_round(workdir: Path, kind: str) -> dict[str, float]:
    """kind: train, serve, or serve-nobytecode (serve with `bytecode: false` in dockyard.yaml)."""
    proj = workdir / "ours"
    shutil.copytree(REPO / "examples" / "digits", proj, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__"))
    subprocess.run([sys.executable, "train.py"], cwd=proj, check=True, capture_output=True)
    target = kind.split("-")[0]
    if kind == "serve-nobytecode":
        config = proj / "dockyard.yaml"
        config.write_text(config.read_text() + "  bytecode: false\n")
    dockyard = [sys.executable, "-m", "dockyard"]
    ref = f"bench-dockyard:{kind}"
    build = lambda: sh(*dockyard, "build", str(proj), "-q", "-t", ref, "--target", target, "--model", "outputs/model.joblib")  # noqa: E731
    prune_build_cache()
    cold = timed(build)
    before = layers(ref)
    (proj / "train.py").write_text((proj / "train.py").read_text() + "\n# edit\n")
    rebuild = timed(build)
    after = layers(ref)
    reused = before[:-1] == after[:-1] and len(before) == len(after)
    res = {"cold_s": cold, "rebuild_s": rebuild, "size_bytes": size(ref), "deps_layers_reused": float(reused)}
    if target == "serve":
        res["start_to_first_prediction_s"] = start_to_first_prediction(ref, proj)
    return res


def start_to_first_prediction(ref: str, proj: Path) -> float:
    """`docker run` of the serving image until the first 200 from /predict (the container's whole cold start)."""
    body = (proj / "sample.json").read_bytes()
    name = "bench-dockyard-start"
    subprocess.run([DOCKER, "rm", "-f", name], capture_output=True)
    start = time.perf_counter()
    sh(DOCKER, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
       "--security-opt", "no-new-privileges", "-p", "127.0.0.1:18555:8080", ref)
    try:
        while time.perf_counter() - start < 60:
            try:
                req = urllib.request.Request("http://127.0.0.1:18555/predict", data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("server never answered")
    finally:
        subprocess.run([DOCKER, "rm", "-f", name], capture_output=True)


def _all(res: dict[str, float]) -> str:
    return "all" if res["deps_layers_reused"] == 1 else "NO"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    kinds = ("naive", "train", "serve", "serve-nobytecode")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for i in range(args.rounds):
        for kind in kinds if i % 2 == 0 else kinds[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                res = naive_round(Path(tmp), ca) if kind == "naive" else dockyard_round(Path(tmp), kind)
            results[kind].append(res)
            print(kind, {k: round(v, 2) for k, v in res.items()}, flush=True)
    med = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in results.items()}
    ours = kinds[1:]
    ratio = {t: {m: med[t][m] / med["naive"][m] for m in ("cold_s", "rebuild_s", "size_bytes")} for t in ours}
    out = {"rounds": args.rounds, "median": med, "ratio_dockyard_over_naive": ratio, "raw": results}
    (REPO / "docs" / "benchmarks-build.json").write_text(json.dumps(out, indent=2))
    n = med["naive"]

    def row(label: str, naive: str, cell: Callable[[dict[str, float]], str], metric: str | None) -> str:
        cells = [f"{cell(med[t])} | {ratio[t][metric]:.2f}" if metric else f"{cell(med[t])} | " for t in ours]
        return f"| {label} | {naive} | " + " | ".join(cells) + " |"

    start = lambda r: f"{r['start_to_first_prediction_s']:.2f} s" if "start_to_first_prediction_s" in r else "-"  # noqa: E731
    md = [
        f"Median of {args.rounds} alternating rounds, same base image (`{BASE}`), build cache pruned before each cold build.",
        "The naive image runs `python train.py`, so dockyard's like-for-like image is its `train` target. The `serve`",
        "target adds the serving runtime, the model and bytecode for what the framework imports (faster cold starts);",
        "`serve: {bytecode: false}` in dockyard.yaml leaves that bytecode out.",
        "",
        "| | naive (`COPY . .` + pip) | dockyard train | / naive | dockyard serve | / naive "
        "| serve, `bytecode: false` | / naive |",
        "|---|---|---|---|---|---|---|---|",
        row("cold build", f"{n['cold_s']:.1f} s", lambda r: f"{r['cold_s']:.1f} s", "cold_s"),
        row("rebuild after a one-line edit to train.py", f"{n['rebuild_s']:.1f} s", lambda r: f"{r['rebuild_s']:.2f} s",
            "rebuild_s"),
        row("final image size", f"{n['size_bytes'] / 1e6:.0f} MB", lambda r: f"{r['size_bytes'] / 1e6:.0f} MB", "size_bytes"),
        row("dependency layers reused after the edit", "-", _all, None),
        row("container start -> first prediction", "-", start, None),
    ]
    md += [
        "",
        "Targets (issue 2): cold build <= 0.5x naive, image <= 0.7x naive, rebuild after a code edit < 2 s with every",
        "dependency layer reused. Run: `python bench/build_bench.py --rounds 5` (prunes the BuildKit cache: run it alone).",
    ]
    (REPO / "docs" / "benchmarks-build.md").write_text("\n".join(md) + "\n")
    sys.path.insert(0, str(Path(__file__).parent))
    from _report import write_section

    write_section("build", "Builds: dockyard vs the naive Dockerfile (examples/digits)", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
