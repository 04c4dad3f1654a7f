"""Registry, lock and diff verbs: login, push, pull, images, promote, rollback, prune, lock, diff."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from . import PathArg, app, emit, engine, err, out, progress

RegistryOpt = Annotated[str | None, typer.Option(
    "--registry", "-r", help="HOST:PORT/NAMESPACE, port and namespace optional (default: $DOCKYARD_REGISTRY)")]


def _registry(value: str | None) -> str:
    reg = value or os.environ.get("DOCKYARD_REGISTRY")
    if not reg:
        raise UsageError("no registry given", "pass --registry HOST[:PORT][/NAMESPACE] or set DOCKYARD_REGISTRY")
    return reg


def _default_ref(ref: str | None) -> str:
    """``name[:version]``, defaulting the name to the project's in the current folder."""
    if ref:
        return ref
    from ..config import load_config

    return f"{load_config(Path.cwd()).name}:latest"


@app.command()
def login(
    registry: Annotated[str, typer.Argument(help="HOST or HOST:PORT")],
    username: Annotated[str, typer.Option("--username", "-u")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin (the only way)")] = False,
) -> None:
    """Log in to a registry; the password is read from stdin, never from the command line."""
    from ..registry import login as do_login

    if not password_stdin:
        raise UsageError("dockyard login reads the password from stdin only",
                         f"printf '%s' \"$TOKEN\" | dockyard login {registry} -u USER --password-stdin")
    password = sys.stdin.read().rstrip("\r\n")
    out.print(do_login(engine(), registry, username, password))


@app.command()
def push(
    ref: Annotated[str | None, typer.Argument(help="NAME:N, NAME:latest or NAME@ALIAS (default: this project's name, latest)")] = None,
    registry: RegistryOpt = None,
    path: Annotated[Path, typer.Option("--path", help="the model's project, to build a missing serving image")] = Path("."),
    replace: Annotated[bool, typer.Option("--replace", help="take over this project's image and model names when another project folder owns them (docs/names.md)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the digest")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Push a version's serving image (NAME:N, NAME:latest, NAME@ALIAS; built first when missing)
    as REGISTRY/NAME:N; prints the digest."""
    from ..registry import push as do_push
    from ..serving import image_for

    eng = engine()
    say = progress(quiet or as_json)
    image, built = image_for("push", _default_ref(ref), eng, project_dir=path, build=True, on_line=say,
                             registry=registry, replace=replace)
    if built:
        err.print(f"built {image}: the serving image of that version did not exist yet")
    res = do_push(eng, image, _registry(registry), on_line=say)
    if quiet:
        out.print(res.digest)
        return
    emit(res.__dict__, as_json, f"pushed {res.remote}@{res.digest}")


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION (version defaults to latest)")],
    registry: RegistryOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="retag over a local image another project folder owns (docs/names.md)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pull REGISTRY/NAME:VERSION and tag it locally as NAME:VERSION."""
    from ..registry import pull as do_pull

    res = do_pull(engine(), ref, _registry(registry), on_line=progress(quiet or as_json), replace=replace)
    emit(res.__dict__, as_json, f"pulled {res.remote}@{res.digest} as {res.local} ({res.image_id[7:19]})")


@app.command()
def images(
    name: Annotated[str | None, typer.Argument(help="image name (default: every dockyard image locally)")] = None,
    registry: Annotated[str | None, typer.Option("--registry", "-r", help="also list versions in this registry")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Local (and remote) versions with their metrics and aliases."""
    from ..registry import local_versions, remote_versions

    rows = local_versions(engine(), name)
    if registry:
        if not name:
            raise UsageError("listing a registry needs an image name", f"dockyard images NAME --registry {registry}")
        rows += remote_versions(name, registry)
    lines = [f"{'WHERE':<22} {'NAME':<24} {'VERSION':<10} {'DIGEST':<19} {'ALIASES':<20} METRICS"]
    for v in rows:
        metrics = ", ".join(f"{k}={val}" for k, val in sorted(v.metrics.items()))
        lines.append(f"{v.where:<22} {v.name:<24} {v.version:<10} {v.digest[:19]:<19} "
                     f"{','.join(v.aliases) or '-':<20} {metrics or '-'}")
    emit([dict(v.__dict__) for v in rows], as_json, "\n".join(lines) if rows else "no images")


@app.command()
def promote(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to promote")],
    alias: Annotated[str, typer.Option("--as", help="alias tag to move, e.g. production")],
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Point an alias tag at a version, in the registry (no layers move)."""
    from ..registry import promote as do_promote

    res = do_promote(ref, alias, _registry(registry))
    was = f" (was {res.previous_digest[:19]})" if res.previous_digest else ""
    emit(res.__dict__, as_json, f"{res.repository}:{res.alias} -> {res.version} {res.digest[:19]}{was}")


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="image name")],
    alias: Annotated[str, typer.Option("--alias", help="alias to move back, e.g. production")] = "production",
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Point an alias back at the version it had before its last promotion."""
    from ..registry import rollback as do_rollback

    res = do_rollback(name, alias, _registry(registry))
    emit(res.__dict__, as_json,
         f"{res.repository}:{res.alias} -> {res.version} {res.digest[:19]} (was {(res.previous_digest or '')[:19]})")


@app.command()
def prune(
    name: Annotated[str, typer.Argument(help="image name")],
    keep: Annotated[int, typer.Option("--keep", help="how many of the newest versions to keep")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only say what would be removed")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remove old local versions; never an aliased one or one a running container uses."""
    from ..registry import prune as do_prune

    res = do_prune(engine(), name, keep, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    text = [f"{verb} {r}" for r in res.removed] + [f"kept {r} ({why})" for r, why in res.kept]
    emit(res.__dict__, as_json, "\n".join(text) or "nothing to prune")


@app.command()
def lock(
    path: PathArg = Path("."),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Write a hash-pinned requirements.lock and point dependencies.lock at it."""
    from ..lock import lock as do_lock

    res = do_lock(path, engine())
    bases = ", ".join(f"{ref}@{d[:19]}" for ref, d in res.header.bases)
    emit({"path": str(res.path), "packages": list(res.packages), "source": res.source,
          "inputs": dict(res.header.inputs), "bases": dict(res.header.bases)}, as_json,
         f"wrote {res.path} ({len(res.packages)} packages, {res.source}; bases {bases})")


@app.command("diff")
def diff_images(
    a: Annotated[str, typer.Argument(help="NAME:N, NAME:latest, NAME@ALIAS, or an image ref or id")],
    b: Annotated[str, typer.Argument(help="NAME:N, NAME:latest, NAME@ALIAS, or an image ref or id")],
    everything: Annotated[bool, typer.Option("--all", help="also show labels that differ on every build")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare two images: packages, layer sizes, config, labels and metrics."""
    from ..imagediff import diff, render_text

    from ..serving import image_for

    eng = engine()
    d = diff(eng, image_for("diff", a, eng)[0], image_for("diff", b, eng)[0], everything=everything)
    if as_json:
        emit(d.to_dict(), True, "")
    else:
        out.print(render_text(d), markup=False, highlight=False, soft_wrap=True)


__all__ = ["diff_images", "images", "lock", "login", "promote", "prune", "pull", "push", "rollback"]
