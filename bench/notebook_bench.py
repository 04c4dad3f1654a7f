"""Notebook benchmark: how long `dockyard notebook` takes after a code edit, on examples/digits.

After one warm-up build of each target, each round appends a line to train.py (a code edit) and,
in the same run: rebuilds the `dev` target, rebuilds the `train` target (which copies the code, so
the edit costs it a layer), and runs `dockyard notebook`'s whole path (rebuild, start the
container, wait until JupyterLab answers with the token), then removes the container. It also
records whether the dev image's layers survived the edit. Medians of N rounds go to
docs/benchmarks-notebook.json and a section of docs/benchmarks.md.

    .venv/bin/python bench/notebook_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_section  # noqa: E402

from dockyard import notebook, project  # noqa: E402
from dockyard.engine import Engine  # noqa: E402

LABELS = {"io.dockyard.test": "1"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = Engine.connect()
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-nb-bench-"))
    digits = tmp / "digits"
    shutil.copytree(REPO / "examples" / "digits", digits, ignore=shutil.ignore_patterns(".dockyard", "outputs"))
    if os.getuid() == 0:  # notebook runs as the folder's owner under root, and refuses root
        for root, dirs, files in os.walk(digits):
            for entry in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(entry, 4242, 4242)
    suffix = uuid.uuid4().hex[:8]
    tags = {t: f"dockyard-bench-nb-{suffix}:{t}" for t in ("dev", "train")}
    made: set[str] = set()
    rows: list[dict[str, float | bool]] = []
    try:
        for target, tag in tags.items():  # warm-up: every dependency layer is cached
            made.add(project.build(digits, engine, target=target, tag=tag).image_id)
        for n in range(args.rounds):
            layers = engine.inspect(tags["dev"])["RootFS"]
            with (digits / "train.py").open("a") as fh:
                fh.write(f"# edit {n}\n")
            dev = project.build(digits, engine, target="dev", tag=tags["dev"])
            train = project.build(digits, engine, target="train", tag=tags["train"])
            made |= {dev.image_id, train.image_id}
            started = time.monotonic()
            res = notebook.notebook(digits, engine, port=0, tag=tags["dev"], labels=LABELS)
            to_url = time.monotonic() - started
            engine.remove_container(res.container)
            made.add(res.image)
            rows.append({"dev_rebuild_s": dev.seconds, "train_rebuild_s": train.seconds, "notebook_to_url_s": to_url,
                         "dev_layers_unchanged": engine.inspect(dev.image_id)["RootFS"] == layers})
            print(rows[-1], flush=True)
    finally:
        for ref in [*tags.values(), *made]:
            engine.remove_image(ref, force=True)
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {key: statistics.median(float(r[key]) for r in rows)
               for key in ("dev_rebuild_s", "train_rebuild_s", "notebook_to_url_s")}
    result = {"rounds": args.rounds, "medians": summary, "rows": rows, "load_avg_1m": os.getloadavg()[0],
              "dev_layers_unchanged_every_round": all(r["dev_layers_unchanged"] for r in rows)}
    (REPO / "docs" / "benchmarks-notebook.json").write_text(json.dumps(result, indent=2) + "\n")
    ratio = summary["dev_rebuild_s"] / summary["train_rebuild_s"] if summary["train_rebuild_s"] else float("nan")
    write_section("notebook", "Notebook: dev target after a code edit (`bench/notebook_bench.py`)", f"""
examples/digits, {args.rounds} rounds in one run, each after a one-line edit to train.py; medians.
Host load average (1 min) at the end: {result['load_avg_1m']:.1f} (a shared 2-core machine).

| measurement | median |
|---|---|
| `dev` rebuild | {summary['dev_rebuild_s']:.2f} s |
| `train` rebuild (same edit, same run) | {summary['train_rebuild_s']:.2f} s |
| `dockyard notebook` end to end (rebuild + start + JupyterLab answers) | {summary['notebook_to_url_s']:.2f} s |

dev / train rebuild ratio: {ratio:.2f}. The dev image's layers were unchanged by the edit in
{'every round' if result['dev_layers_unchanged_every_round'] else 'NOT every round'} (the project is
mounted at /app, not copied).
""")


if __name__ == "__main__":
    main()
