"""`dockyard serve` and `dockyard predict`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import PathArg, app, engine, err, out, progress


@app.command()
def serve(
    path: PathArg = Path("."),
    model: Annotated[Optional[str], typer.Option("--model", help="NAME:N, NAME:latest, NAME@ALIAS, a model file or MLflow model dir (relative to the current directory), or runs:/... models:/... (MLFLOW_TRACKING_URI)")] = None,
    port: Annotated[Optional[int], typer.Option(help="host port, 127.0.0.1 unless --public (default: serve.port in dockyard.yaml, 8080)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="replace the dockyard server already on that port, and take over this project's image and model names when another project folder owns them")] = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="leave it running in the background")] = False,
    local: Annotated[bool, typer.Option("--local", help="run the runtime here, outside a container")] = False,
    public: Annotated[bool, typer.Option("--public", help="publish on all interfaces, not just 127.0.0.1")] = False,
    allow_unsafe_model: Annotated[bool, typer.Option(help="serve a model file the scanner flags as dangerous")] = False,
    secret: Annotated[list[str], typer.Option("--secret", help="id=NAME,src=FILE or id=NAME,env=VAR: a file at /run/secrets/NAME")] = [],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Build the serving image and run it; waits for ready and prints the URL."""
    from .. import serving
    from ..engine import Secret

    p = path.resolve()
    model = serving.model_argument(model)
    if local:
        port = port or serving.default_port(p)
        argv = serving.serve_local(p, model=model, port=port, host="0.0.0.0" if public else "127.0.0.1",
                                   allow_unsafe_model=allow_unsafe_model)
        err.print(f"serving locally on http://127.0.0.1:{port} (Ctrl-C stops)")
        os.execv(argv[0], argv)
    eng = engine()
    res = serving.serve(p, eng, model=model, port=port, public=public, replace=replace, allow_unsafe_model=allow_unsafe_model,
                        on_line=progress(quiet), secrets=[Secret.parse(x) for x in secret])
    out.print(f"ready: {res.url}  (docs: {res.url}/docs, container {res.name})")
    if detach:
        err.print(f"running in the background: `dockyard logs {res.name} -f`, `dockyard stop {res.name}`")
        return
    err.print("Ctrl-C stops and removes the container")
    raise typer.Exit(serving.follow(eng, res.container, lambda line: err.print(line, markup=False)))


@app.command()
def predict(
    target: Annotated[str, typer.Argument(help="server URL, or a project folder (served locally for one prediction)")],
    input_json: Annotated[Optional[str], typer.Option("--input", help="JSON object of named inputs")] = None,
    pair: Annotated[list[str], typer.Option("-i", help="name=value (value parsed as JSON when possible); name=@FILE sends a file as a data: URL")] = [],
    file: Annotated[Optional[Path], typer.Option("-f", "--file", help="JSON file of named inputs")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="with a project folder: the model file")] = None,
    allow_unsafe_model: Annotated[bool, typer.Option(help="load a model file the pickle gate refuses")] = False,
) -> None:
    """Send one prediction to a running server (or a project, served locally)."""
    from .. import serving

    inputs = serving.parse_inputs(input_json, pair, file)
    if target.startswith(("http://", "https://")):
        result = serving.predict(target, inputs)
    else:
        result = serving.predict_local(Path(target), inputs, model=serving.model_argument(model),
                                       allow_unsafe_model=allow_unsafe_model)
    sys.stdout.write(json.dumps(result) + "\n")
