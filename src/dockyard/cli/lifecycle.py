"""`dockyard ps`, `dockyard logs NAME [-f]`, `dockyard stop NAME|--all`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import app, emit, engine, err, out

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command()
def ps(
    all_: Annotated[bool, typer.Option("--all", "-a", help="also stopped containers")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Servers, training runs, notebooks and Swarm services dockyard started."""
    from .. import lifecycle

    rows = lifecycle.ps(engine(), all_=all_)
    if as_json or not rows:
        emit([r.to_dict() for r in rows], as_json, "nothing running that dockyard started (start one with `dockyard serve -d`)")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "ROLE", "PROJECT", "VERSION", "URL", "STATE", "HEALTH", "UPTIME", "CPU", "MEMORY"):
        table.add_column(col, no_wrap=col in ("NAME", "URL"))
    for r in rows:
        table.add_row(r.name, r.role, r.project or "-", r.version, r.url, r.state, r.health,
                      lifecycle.human_duration(r.uptime_s),
                      "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}%",
                      "-" if r.memory_bytes is None else f"{r.memory_bytes / (1 << 20):.0f} MiB")
    # Piped output has no terminal width: let rows be as wide as they need, not 80 columns.
    (out if out.is_terminal else Console(highlight=False, width=250)).print(table)


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="a name from `dockyard ps` (container, service or project)")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new output until Ctrl-C")] = False,
    tail: Annotated[Optional[int], typer.Option("--tail", help="only the last N lines")] = None,
) -> None:
    """Show or follow the output of a server, training run, notebook or service."""
    from .. import lifecycle

    code = lifecycle.logs(engine(), name, follow=follow, tail=tail,
                          on_line=lambda line: out.print(line, markup=False, highlight=False, soft_wrap=True))
    raise typer.Exit(0 if code == 0 else 1)


@app.command()
def stop(
    name: Annotated[Optional[str], typer.Argument(help="a name from `dockyard ps` (container, service or project)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="stop everything dockyard started")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop (and remove) what dockyard started: one NAME, or --all."""
    from .. import lifecycle

    stopped = lifecycle.stop(engine(), name, all_=all_)
    if as_json:
        emit([r.to_dict() for r in stopped], True, "")
        return
    for r in stopped:
        out.print(f"stopped {r.name} ({r.role}{', service' if r.kind == 'service' else ''})", markup=False)
    if not stopped:
        err.print("nothing to stop")
