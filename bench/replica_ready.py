"""How long one serving replica takes to answer /readyz at a Swarm-sized CPU limit, and the CPU it
used by then: the numbers behind the health start periods (a start period shorter than this time,
scaled by the machine's load, marks a good replica unhealthy and rolls an update back).

Each run is `docker run --cpus C --memory M` of the digits serving image (built from a copy of
examples/digits under a unique name, trained with this Python, unless --image is given), polled
every 0.1 s until /readyz answers 200. CPU is the container's cpuacct usage at that moment (cgroup
v1 or v2). The 1-minute load average is recorded with each run: wall time scales with it, the CPU
time does not. Writes docs/benchmarks-replica-ready.json and prints a Markdown table.

    python bench/replica_ready.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dockyard import project  # noqa: E402
from dockyard.engine import TEST_LABEL, Engine  # noqa: E402
from dockyard.runtime.contract import CONTAINER_PORT, READY_PATH  # noqa: E402


def build_digits(engine: Engine, tmp: Path) -> str:
    digits = tmp / "digits"
    shutil.copytree(REPO / "examples" / "digits", digits, ignore=shutil.ignore_patterns(".dockyard", "outputs"))
    name = f"bench-ready-{uuid.uuid4().hex[:8]}"
    cfg = digits / "dockyard.yaml"
    cfg.write_text(cfg.read_text().replace("name: digits", f"name: {name}"))
    subprocess.run([sys.executable, "train.py"], cwd=digits, check=True, capture_output=True)
    return project.build(digits, engine, target="serve", model_file="outputs/model.joblib", tag=f"{name}:1",
                         labels={TEST_LABEL: "1"}).tag


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ms(cid: str) -> float:
    for path in (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage",
                 f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage"):
        if Path(path).is_file():
            return int(Path(path).read_text()) / 1e6
    stat = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
    if stat.is_file():
        return int(stat.read_text().split("usage_usec ")[1].split()[0]) / 1e3
    return float("nan")


def one_run(engine: Engine, image: str, cpus: str, memory: str) -> dict[str, float]:
    port = free_port()
    load = float(Path("/proc/loadavg").read_text().split()[0])
    t0 = time.monotonic()
    cid = engine.docker("run", "--detach", "--label", f"{TEST_LABEL}=1", "--cpus", cpus, "--memory", memory,
                        "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}", image).stdout.strip()
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{READY_PATH}", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - t0 > 300:
                raise SystemExit("no /readyz within 300 s")
            time.sleep(0.1)
        wall = time.monotonic() - t0
        return {"wall_s": round(wall, 2), "cpu_s": round(cpu_ms(cid) / 1e3, 2), "load1": load}
    finally:
        engine.remove_container(cid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", help="a serving image (default: build the digits example)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpus", default="0.5")
    ap.add_argument("--memory", default="256m")
    args = ap.parse_args()
    engine = Engine.connect()
    with tempfile.TemporaryDirectory() as tmp:
        image = args.image or build_digits(engine, Path(tmp))
        try:
            runs = [one_run(engine, image, args.cpus, args.memory) for _ in range(args.runs)]
        finally:
            if not args.image:
                engine.remove_image(image, force=True)
    result = {"image": "digits serving image" if not args.image else args.image, "cpus": args.cpus,
              "memory": args.memory, "runs": runs,
              "median_wall_s": statistics.median(r["wall_s"] for r in runs),
              "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
              "median_load1": statistics.median(r["load1"] for r in runs)}
    (REPO / "docs" / "benchmarks-replica-ready.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| runs | --cpus | median wall to /readyz | median CPU used | median load (1 min) |\n|---|---|---|---|---|\n"
          f"| {len(runs)} | {args.cpus} | {result['median_wall_s']:.1f} s | {result['median_cpu_s']:.2f} s | "
          f"{result['median_load1']:.1f} |")


if __name__ == "__main__":
    main()
