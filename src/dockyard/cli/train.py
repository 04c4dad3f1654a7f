"""`dockyard train`: run the project's train command in a container, store the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import PathArg, app, emit, engine, err, progress


@app.command()
def train(
    path: PathArg = Path("."),
    data: Annotated[Path | None, typer.Option("--data", help="data directory, mounted read-only at /data")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE, repeatable; the run sees PARAM_NAME")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU limit (default from dockyard.yaml)")] = None,
    memory: Annotated[str | None, typer.Option(help="memory limit, e.g. 2g (default from dockyard.yaml)")] = None,
    gpus: Annotated[str | None, typer.Option(help="e.g. all or device=0")] = None,
    timeout: Annotated[float | None, typer.Option(help="stop the run after this many seconds")] = None,
    secret: Annotated[list[str] | None, typer.Option("--secret", help="id=NAME,src=FILE or id=NAME,env=VAR: a file at /run/secrets/NAME")] = None,
    reproduce: Annotated[str | None, typer.Option("--reproduce", help="re-run NAME:N with its image and params")] = None,
    store: Annotated[Path | None, typer.Option("--store", help="model store directory (default $DOCKYARD_HOME/store)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="take over this project's image and model names when another project folder owns them (docs/names.md)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="hide build output")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the new version as JSON")] = False,
) -> None:
    """Train in a container; the outputs become model version NAME:N."""
    from ..engine import Secret
    from ..store import Store
    from ..train import parse_params
    from ..train import train as do_train

    params = parse_params(param or [])
    secrets = [Secret.parse(s) for s in secret or []]
    res = do_train(
        path, engine(), data=data, params=params, cpus=cpus, memory=memory, gpus=gpus, timeout=timeout,
        secrets=secrets, store=Store(store) if store else None, reproduce=reproduce, replace=replace,
        on_line=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
        build_line=progress(quiet or as_json),
    )
    v = res.version
    metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items()))
    text = f"trained {v.ref}" + (f" ({metrics})" if metrics else "") + f" in {res.seconds:.1f}s"
    if res.captured:
        text += f"\n  captured from the working directory: {', '.join(res.captured[:8])}"
        text += " ..." if len(res.captured) > 8 else ""
    emit({**v.to_dict(), "ref": v.ref, "captured": list(res.captured)}, as_json, text)
