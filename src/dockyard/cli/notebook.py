"""`dockyard notebook`: JupyterLab in the project's dev image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import PathArg, app, emit, engine, err, progress


@app.command()
def notebook(
    path: PathArg = Path("."),
    port: Annotated[int, typer.Option(help="host port on 127.0.0.1 (0: any free port)")] = 8888,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="leave it running in the background")] = False,
    data: Annotated[Optional[Path], typer.Option("--data", help="data directory, mounted read-only at /data")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="e.g. all or device=0")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="take over this project's image and model names when another project folder owns them (docs/names.md)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="hide build output")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the URL, token and container as JSON")] = False,
) -> None:
    """Run JupyterLab in the project's own image (dev target); the project is mounted at /app."""
    from .. import notebook as nb
    from ..serving import follow

    eng = engine()
    res = nb.notebook(path, eng, port=port, data=data, gpus=gpus, on_line=progress(quiet or as_json),
                      replace=replace)
    emit({"url": res.url, "token": res.token, "container": res.container, "image": res.image, "port": res.port,
          "user": res.user}, as_json,
         f"JupyterLab: {res.url}\n  (127.0.0.1 only; project mounted at /app as uid:gid {res.user}; "
         f"container {res.container})")
    if detach:
        return
    err.print("Ctrl-C stops and removes the container")
    raise typer.Exit(follow(eng, res.container, lambda line: err.print(line, markup=False)))
