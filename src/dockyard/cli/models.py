"""`dockyard models ...`: the local model store (list, show, diff, rm, export, import, fsck, runs, gc)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import app, emit, err, out

models_app = typer.Typer(no_args_is_help=True, help="Model versions in the local store.")
app.add_typer(models_app, name="models")

StoreOpt = Annotated[Path | None, typer.Option("--store", help="model store directory (default $DOCKYARD_HOME/store)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _store(root: Path | None) -> Any:
    from ..store import Store

    return Store(root) if root else Store()


def _metrics(values: Any) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(values.items())) or "-"


@models_app.command("list")
def list_(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every model and its versions (latest metrics shown)."""
    s = _store(store)
    rows = []
    for m in s.list_models():
        latest = s.get(f"{m.name}:{m.latest}")
        rows.append({"name": m.name, "versions": list(m.versions), "latest": latest.ref,
                     "metrics": dict(latest.metrics), "created": latest.to_dict()["created"]})
    if as_json or not rows:
        emit(rows, as_json, f"no models in {s.root}; create one with `dockyard train`")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("MODEL", "VERSIONS", "LATEST", "CREATED", "METRICS (latest)"):
        table.add_column(col, no_wrap=col != "METRICS (latest)")
    for r in rows:
        table.add_row(r["name"], _versions(r["versions"]), r["latest"], str(r["created"])[:19].replace("T", " "),
                      _metrics(r["metrics"]))
    out.print(table)


def _versions(numbers: list[int]) -> str:
    """1,2,3,5 -> "1-3,5 (4)": runs of versions, and how many."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    text = ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)
    return f"{text} ({len(numbers)})"


@models_app.command()
def plot(
    ref: Annotated[str, typer.Argument(help="NAME (per-step curves of the latest version) or NAME:N")],
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="only this metric")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="PNG file to write (default: NAME-metrics.png when matplotlib is installed)")] = None,
    no_png: Annotated[bool, typer.Option("--no-png", help="only the terminal chart")] = False,
    store: StoreOpt = None,
) -> None:
    """Metrics across versions and per-step training curves: a terminal chart, and a PNG."""
    from .. import charts

    found = charts.model_series(_store(store), ref, metric=metric)
    width = max(30, min(100, out.width - 14))
    for chart in (*found.versions, *found.steps):
        out.print(charts.terminal_chart(chart, width=width), markup=False, highlight=False)
        out.print()
    if not found.versions and not found.steps:
        out.print(f"{found.ref} has no metrics; log some with dockyard.log_metric in train.py", markup=False)
        return
    if no_png:
        return
    if png is None and not charts.have_matplotlib():
        err.print("note: pip install matplotlib to also get a PNG")
        return
    written = charts.write_png(found, png or Path(f"{ref.partition(':')[0]}-metrics.png"))
    out.print(f"wrote {written}", markup=False)


@models_app.command()
def show(ref: Annotated[str, typer.Argument(help="NAME, NAME:N or NAME:latest")], store: StoreOpt = None,
         as_json: JsonOpt = False) -> None:
    """A version's record: artifacts with sha256, metrics, params, lineage."""
    s = _store(store)
    v = s.get(ref)
    history = _history(s, v)
    if as_json:
        emit({**v.to_dict(), "ref": v.ref, "metric_history": history}, True, "")
        return
    d = v.to_dict()
    steps = ", ".join(f"{k} ({len(p)} steps)" for k, p in sorted(history.items()) if len(p) > 1)
    lines = [f"{v.ref}  created {d['created']}  run {v.run_id}",
             f"  metrics: {_metrics(v.metrics)}" + (f"   history: {steps}" if steps else ""),
             "  params: " + (", ".join(f"{k}={val}" for k, val in sorted(v.params.items())) or "-"),
             f"  image: {v.image.digest or v.image.id} ({v.image.ref or 'untagged'})",
             f"  git: {v.git.commit or 'no git'}{' (dirty)' if v.git.dirty else ''}   code: {v.code_hash or '-'}",
             f"  data: {v.data_fingerprint or '-'}",
             f"  command: {' '.join(v.command)}   exit {v.exit_status}   {v.duration_s:.1f}s",
             "  resources: " + ", ".join(f"{k}={val}" for k, val in v.resources.to_dict().items() if val is not None),
             f"  artifacts ({len(v.artifacts)}, {v.size} bytes):"]
    lines += [f"    {a.sha256[:12]}  {a.size:>10}  {a.path}" for a in v.artifacts]
    if v.skipped:
        lines.append("  skipped (not regular files): " + ", ".join(v.skipped))
    out.print("\n".join(lines), markup=False)


def _history(s: Any, v: Any) -> dict[str, Any]:
    """Per-step metric values (logged with steps, or imported from MLflow) from the version's metrics.json."""
    from ..store.metrics import read_points

    if v.artifact("metrics.json") is None:
        return {}
    return read_points(s.artifact_path(v.ref, "metrics.json"))


@models_app.command()
def diff(a: Annotated[str, typer.Argument(help="NAME:N (or N)")], b: Annotated[str, typer.Argument(help="NAME:N (or N)")],
         store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """What changed between two versions: params, metrics, artifacts, image, data, code."""
    from ..store import render_diff

    d = _store(store).diff(a, b)
    emit(dataclasses.asdict(d), as_json, render_diff(d).rstrip("\n"))


@models_app.command()
def rm(ref: Annotated[str, typer.Argument(help="NAME:N")], store: StoreOpt = None) -> None:
    """Remove one version (its number is never reused)."""
    removed = _store(store).rm(ref)
    out.print(f"removed {removed.ref}")


@models_app.command()
def export(ref: Annotated[str, typer.Argument(help="NAME:N")],
           output: Annotated[Optional[Path], typer.Option("-o", "--output", help="FILE.tar.gz or a directory (mlflow: the MLmodel directory to create)")] = None,
           fmt: Annotated[str, typer.Option("--format", help="dockyard (.tar.gz of record + artifacts) or mlflow (an MLmodel directory)")] = "dockyard",
           store: StoreOpt = None) -> None:
    """Write a version (record + artifacts) to one .tar.gz, or as an MLflow model directory."""
    if fmt == "mlflow":
        from ..interop.mlflow_export import export_mlflow

        dest = output or Path(f"{ref.replace(':', '-')}-mlflow")
        path = export_mlflow(_store(store), ref, dest)
        out.print(f"exported {ref} as an MLflow model to {path} (mlflow.pyfunc.load_model({str(path)!r}))")
        return
    if fmt != "dockyard":
        raise typer.BadParameter(f"unknown format {fmt!r}; use dockyard or mlflow", param_hint="--format")
    path = _store(store).export(ref, output or Path("."))
    out.print(f"exported {ref} to {path}")


@models_app.command("import")
def import_(archive: Annotated[Path, typer.Argument(help="a .tar.gz from `dockyard models export`")],
            name: Annotated[str | None, typer.Option("--name", help="import under this model name")] = None,
            store: StoreOpt = None) -> None:
    """Import an exported version as the next version of its model."""
    v = _store(store).import_(archive, name=name)
    out.print(f"imported {archive} as {v.ref}")


@models_app.command()
def fsck(repair: Annotated[bool, typer.Option("--repair", help="rebuild the index from the version records")] = False,
         store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Check the store (index, records, every blob's sha256); --repair rebuilds the index."""
    s = _store(store)
    if repair:
        left_out = s.rebuild_index()
        for p in left_out:
            out.print(str(p), markup=False)
        out.print(f"rebuilt {s.index_path}")
    problems = s.verify()
    if as_json:
        emit([dataclasses.asdict(p) for p in problems], True, "")
    else:
        for p in problems:
            out.print(str(p), markup=False)
        errors = sum(p.severity == "error" for p in problems)
        out.print(f"{s.root}: {errors} error(s), {len(problems) - errors} warning(s)")
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(1)


@models_app.command()
def gc(store: StoreOpt = None) -> None:
    """Delete blobs no version uses, and leftovers of crashed writes."""
    res = _store(store).gc()
    out.print(f"removed {res.blobs_removed} blob(s) ({res.bytes_freed} bytes) and {res.temp_removed} temp entries")


@models_app.command()
def runs(name: Annotated[str | None, typer.Argument(help="only runs of this model")] = None,
         store: StoreOpt = None, as_json: JsonOpt = False,
         logs: Annotated[str | None, typer.Option("--logs", help="print the logs of this run id")] = None) -> None:
    """Failed runs (they never become versions) and where their logs are."""
    s = _store(store)
    if logs:
        out.print(s.failed_run(logs).logs_path.read_text(errors="replace"), markup=False, end="")
        return
    failed = s.failed_runs(name)
    if as_json:
        emit([{**f.to_dict(), "logs": str(f.logs_path)} for f in failed], True, "")
        return
    if not failed:
        out.print("no failed runs")
    for f in failed:
        out.print(f"{f.run.run_id}  {f.reason:<32} {f.run.duration_s:>7.1f}s  logs: {f.logs_path}", markup=False)
