"""The `dockyard` command: parses flags, calls the library, prints results. No logic here.

Exit codes: 0 ok, 1 user error, 2 environment problem, 3 failed build/run, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import DockyardError

app = typer.Typer(no_args_is_help=True, add_completion=True, help="Containerise ML projects: init, build, train, serve, push, deploy.")
base_app = typer.Typer(no_args_is_help=True, help="Base images for air-gapped hosts.")
app.add_typer(base_app, name="base")
# markup=False: text from users, projects, docker and error messages is printed as it is
# ("executor failed running [/bin/sh -c ...]" is not a closing tag). Styling is opt-in, per
# print(markup=True), and then every piece of data in it goes through escape().
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True, markup=False)
out = Console(highlight=False, emoji=False, soft_wrap=True, markup=False)
_state: dict[str, Any] = {"debug": False}

PathArg = Annotated[Path, typer.Argument(help="project folder", show_default=True)]


def _print_version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and docker commands")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version", is_eager=True, callback=_print_version)] = False,
) -> None:
    _state["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


def engine() -> Any:
    from ..engine import Engine

    return Engine.connect()


def progress(quiet: bool) -> Any:
    """Progress lines on stderr; None when quiet (and with --json). On a terminal outside CI,
    builds show BuildKit's live display (--progress auto) instead of plain lines."""
    if quiet:
        return None

    def line(text: str) -> None:
        if text:
            err.print(f"[dim]{escape(text)}[/dim]", markup=True, soft_wrap=True)

    if err.is_terminal and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        from ..engine import TerminalProgress

        size = err.size
        return TerminalProgress(line, _write_stderr, (size.width, size.height))
    return line


def _write_stderr(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.flush()


def emit(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        out.print_json(json.dumps(data, default=str))
    else:
        out.print(text, soft_wrap=True)


@app.command()
def init(
    path: PathArg = Path("."),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing dockyard.yaml")] = False,
    name: Annotated[Optional[str], typer.Option(help="project name (default: folder name)")] = None,
) -> None:
    """Detect the project and write dockyard.yaml."""
    from ..project import init as do_init

    res = do_init(path, force=force, name=name)
    for note in res.notes:
        err.print(f"  {note}")
    out.print(f"wrote {res.path}")


@app.command()
def plan(
    path: PathArg = Path("."),
    as_json: Annotated[bool, typer.Option("--json")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="do not ask the engine which base images exist")] = False,
) -> None:
    """Show every resolved choice with its reason, and the Dockerfile."""
    from ..project import plan as do_plan

    p, text = do_plan(path, engine=None if offline else _try_engine())
    if as_json:
        emit({"choices": [c.__dict__ for c in p.choices], "warnings": list(p.warnings), "dockerfile": text}, True, "")
        return
    for c in p.choices:
        out.print(f"[bold]{escape(c.what)}[/bold]: {escape(c.value)}  [dim]({escape(c.why)})[/dim]", markup=True)
    for w in p.warnings:
        out.print(f"[yellow]warning[/yellow]: {escape(w)}", markup=True)
    out.print()
    out.print(text, markup=False)


def _try_engine() -> Any:
    try:
        return engine()
    except DockyardError:
        return None


@app.command()
def build(
    path: PathArg = Path("."),
    tag: Annotated[Optional[str], typer.Option("--tag", "-t")] = None,
    target: Annotated[Optional[str], typer.Option(help="train, serve or dev (default: serve when there is a serve entry)")] = None,
    secret: Annotated[list[str], typer.Option("--secret", help="id=NAME,src=FILE or id=NAME,env=VAR (BuildKit secret)")] = [],
    model: Annotated[Optional[str], typer.Option("--model", help="bake a model into the serve image: NAME:N, NAME:latest, NAME@ALIAS or a file (relative to the current directory)")] = None,
    allow_unsafe_model: Annotated[bool, typer.Option(help="bake in a model file the pickle gate refuses")] = False,
    eject: Annotated[bool, typer.Option("--eject", help="write the Dockerfile into the project instead of building")] = False,
    force: Annotated[bool, typer.Option("--force", help="with --eject: overwrite an existing Dockerfile")] = False,
    frozen: Annotated[bool, typer.Option("--frozen", help="refuse to build when the lock is stale")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    no_bootstrap_base: Annotated[bool, typer.Option("--no-bootstrap-base", help="when the base cannot be pulled, fail instead of making it with `base bootstrap`")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="take over this project's image and model names when another project folder owns them (docs/names.md)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the image id")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Build the project image with BuildKit."""
    from .. import project
    from ..engine import Secret

    if eject:
        written = project.eject(path, engine=_try_engine(), force=force)
        out.print(f"wrote {written} (dockyard now builds it as-is; delete it to go back to generated builds)")
        return
    if frozen:
        from ..lock import check_frozen

        check_frozen(path)
    if target not in (None, "train", "serve", "dev"):
        raise typer.BadParameter("--target must be train, serve or dev")
    if model is not None and target == "train":
        raise typer.BadParameter("--model bakes weights into the serve image; drop it or use --target serve")
    from ..serving import build_model_image, model_argument

    secrets = [Secret.parse(s) for s in secret]
    if model is not None:
        res, _ = build_model_image(path, engine(), model_argument(model), tag=tag, on_line=progress(quiet or as_json),
                                   secrets=secrets, no_cache=no_cache, verb="build",
                                   bootstrap_base=not no_bootstrap_base, allow_unsafe_model=allow_unsafe_model,
                                   replace=replace)
    else:
        res = project.build(path, engine(), tag=tag, target=target, secrets=secrets,
                            on_line=progress(quiet or as_json), no_cache=no_cache,
                            bootstrap_base=not no_bootstrap_base, replace=replace)
    data = {"tag": res.tag, "image_id": res.image_id, "seconds": round(res.seconds, 2), "target": res.target}
    if quiet:
        out.print(res.image_id)
    else:
        emit(data, as_json, f"built {res.tag} ({res.image_id[:19]}, target {res.target}) in {res.seconds:.1f}s")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    path: PathArg = Path("."),
    cpus: Annotated[Optional[float], typer.Option(help="CPU limit (default from dockyard.yaml)")] = None,
    memory: Annotated[Optional[str], typer.Option(help="memory limit, e.g. 2g")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="e.g. all or device=0")] = None,
    volume: Annotated[list[str], typer.Option("-v", "--volume", help="HOST:/path[:ro]")] = [],
    env: Annotated[list[str], typer.Option("-e", "--env", help="NAME=VALUE")] = [],
    allow_dangerous_mounts: Annotated[bool, typer.Option(help="allow mounting /, /etc, /proc, /sys or the docker socket")] = False,
    privileged: Annotated[bool, typer.Option(help="privileged container (refused without --allow-privileged)")] = False,
    allow_privileged: Annotated[bool, typer.Option(help="accept the risk of --privileged")] = False,
    host_network: Annotated[bool, typer.Option(help="share the host network namespace")] = False,
    host_pid: Annotated[bool, typer.Option(help="share the host PID namespace")] = False,
    host_ipc: Annotated[bool, typer.Option(help="share the host IPC namespace")] = False,
    allow_host_namespaces: Annotated[bool, typer.Option(help="accept the risk of --host-network/--host-pid/--host-ipc")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="take over this project's image and model names when another project folder owns them (docs/names.md)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    output: Annotated[Optional[Path], typer.Option(
        help="copy the files the command writes here (default PROJECT/.dockyard/runs/RUN-ID); never overwrites")] = None,
) -> None:
    """Run a command in the project image: dockyard run [PATH] -- CMD...

    The command gets a writable copy of the project (/app); what it writes there is copied back to
    --output afterwards, and the project folder itself is left as it was."""
    from .. import project

    command = list(ctx.args)
    if not command:
        raise typer.BadParameter("give the command after --, e.g. dockyard run . -- python -c 'print(1)'")
    code = project.run(path, engine(), command, cpus=cpus, memory=memory, gpus=gpus, volumes=volume, env=env,
                       on_line=lambda line: out.print(line, markup=False, highlight=False, soft_wrap=True),
                       output=output, on_files=_say_run_files,
                       on_hint=lambda fix: err.print(f"[yellow]hint[/yellow]: {escape(fix)}", markup=True),
                       build_line=progress(quiet), allow_dangerous_mounts=allow_dangerous_mounts, replace=replace,
                       risky={"privileged": privileged, "allow_privileged": allow_privileged, "host_network": host_network,
                              "host_pid": host_pid, "host_ipc": host_ipc, "allow_host_namespaces": allow_host_namespaces})
    raise typer.Exit(code)


def _say_run_files(saved: Any) -> None:  # a project.RunFiles (project is imported lazily)
    names = ", ".join(saved.files[:8]) + (f" and {len(saved.files) - 8} more" if len(saved.files) > 8 else "")
    if saved.files:
        err.print(f"the command wrote {len(saved.files)} file(s) in its copy of the project: {names}")
        err.print(f"  copied to {saved.destination} (the project folder itself is unchanged)")
    if saved.elsewhere:
        err.print(f"  not copied over your different {', '.join(saved.elsewhere)}: the run's version is in {saved.fallback}")


@base_app.command("bootstrap")
def base_bootstrap(
    python: Annotated[str, typer.Option(help="Python version (a Debian or Ubuntu release must ship it: see compat/bases.json)")] = "3.11",
    mirror: Annotated[Optional[str], typer.Option(help="Debian or Ubuntu mirror URL (default: the release's own archive)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Build a Python base image from Debian or Ubuntu packages (debootstrap + docker import); no registry needed."""
    from ..base import bootstrap, check_python

    check_python(python)
    res = bootstrap(engine(), python, mirror=mirror, on_line=progress(quiet))
    out.print(f"imported {res.ref} ({res.size_bytes / 1e6:.0f} MB, {check_python(python).label}) and its -build variant")


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the engine, BuildKit, CA/proxy settings, disk and GPU runtime."""
    from ..doctor import run_checks

    checks = run_checks()
    if as_json:
        emit([c.__dict__ for c in checks], True, "")
    else:
        for c in checks:
            mark = "[green]ok[/green]" if c.ok else ("[red]FAIL[/red]" if c.required else "[yellow]warn[/yellow]")
            out.print(f"{mark:>20} {escape(c.name)}: {escape(c.detail)}", markup=True)
            if not c.ok and c.fix:
                out.print(f"{'':>9}fix: {c.fix}")
    if any(not c.ok and c.required for c in checks):
        raise typer.Exit(2)


def _register_optional() -> None:
    """Verb groups that live in their own CLI modules."""
    import importlib

    for mod in ("serve", "train", "models", "registry", "scan", "deploy", "lifecycle", "notebook"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Console entry point: DockyardError -> problem + fix lines + exit code, never a traceback."""
    try:
        _register_optional()
        # Non-standalone typer returns (rather than raises) the code of typer.Exit and
        # turns Ctrl-C into Exit(130).
        code = app(args=argv, standalone_mode=False)
    except DockyardError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(exc.problem)}", markup=True, highlight=False, soft_wrap=True)
        if exc.details:
            err.print(exc.details, markup=False, highlight=False, soft_wrap=True)
        if exc.fix:
            err.print(f"[bold]fix:[/bold] {escape(exc.fix)}", markup=True, highlight=False, soft_wrap=True)
        if _state["debug"]:
            traceback.print_exc()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, EOFError):
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        # typer may ship its own copy of click: find ClickException through typer's classes.
        click_exc = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
        if isinstance(exc, click_exc):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(1 if exc.exit_code == 2 else exc.exit_code)  # type: ignore[attr-defined]
        err.print(f"[bold red]internal error:[/bold red] {escape(repr(exc))}\nthis is a bug in dockyard - please report it (re-run with --debug for the traceback)", markup=True)
        if _state["debug"]:
            traceback.print_exc()
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)
