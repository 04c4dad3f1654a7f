"""`dockyard deploy swarm|status|rollback|rm|kubernetes`: flags -> library calls -> text/JSON."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from ..runtime.contract import CONTAINER_PORT, LABEL_NAME
from ..serving import model_argument
from . import PathArg, app, emit, engine, err, out, progress

deploy_app = typer.Typer(no_args_is_help=True, help="Hand a model image to Docker Swarm or Kubernetes.")
app.add_typer(deploy_app, name="deploy")

NameArg = Annotated[str, typer.Argument(help="service name")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")]


def _print_status(st: Any, as_json: bool) -> None:
    if as_json:
        emit(st.to_dict(), True, "")
        return
    out.print(f"{st.name}: {st.running}/{st.replicas} healthy, image {st.image_ref}"
              + (f" (version {st.version})" if st.version else "")
              + f", network {st.network} ({st.endpoint_mode})"
              + (f", last update: {st.update_state}" if st.update_state else ""), markup=False)
    for t in st.current:
        ips = ",".join(t.addresses) or "-"
        out.print(f"  slot {t.slot}  {t.state:<9} {ips:<15} task {t.id[:12]}"
                  + (f"  {t.error}" if t.error else ""), markup=False)
    for line in st.task_errors()[:5]:
        out.print(f"  recent: {line}", markup=False)


@deploy_app.command("swarm")
def swarm_cmd(
    path: PathArg = Path("."),
    image: Annotated[str | None, typer.Option("--image", help="deploy this local image instead of building")] = None,
    model: Annotated[str | None, typer.Option("--model", help="build around a model file or stored version name:N")] = None,
    replicas: Annotated[int, typer.Option("--replicas", "-r", help="healthy replicas to run (>= 1)")] = 2,
    name: Annotated[str | None, typer.Option("--name", help="service name (default: project name)")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU limit per replica (default: dockyard.yaml)")] = None,
    memory: Annotated[str | None, typer.Option(help="memory limit per replica, e.g. 512m (default: dockyard.yaml)")] = None,
    reserve_cpus: Annotated[float | None, typer.Option(help="CPUs reserved per replica (default: a quarter of --cpus)")] = None,
    reserve_memory: Annotated[str | None, typer.Option(help="memory reserved per replica (default: a quarter of --memory)")] = None,
    network: Annotated[str, typer.Option(help="overlay network (created, attachable, when missing)")] = "dockyard",
    drain_s: Annotated[int, typer.Option("--drain-s", help="seconds a stopping replica may finish requests")] = 10,
    init: Annotated[bool, typer.Option("--init", help="make this engine a single-node swarm first if it is not one")] = False,
    allow_unsafe_model: Annotated[bool, typer.Option(help="deploy a model file the scanner flags as dangerous")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="take over this project's image and model names when another project folder owns them (docs/names.md)")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for healthy replicas")] = 300,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or update a Swarm service (dnsrr on an overlay network, health-gated rolling updates)."""
    from ..deploy import ShutdownBudget, swarm

    swarm.check_replicas(replicas)  # before any build
    eng = engine()
    if init and swarm.init_swarm(eng):
        err.print("initialised a single-node swarm (docker swarm init --advertise-addr 127.0.0.1)")
    swarm.require_manager(eng)
    say = progress(quiet or as_json)
    target = swarm.project_image(path, eng, image=image, model=model_argument(model), allow_unsafe_model=allow_unsafe_model, on_line=say,
                                replace=replace)
    st = swarm.deploy(eng, target.ref, name=name or target.name, replicas=replicas, cpus=cpus or target.cpus,
                      memory=memory or target.memory, network=network, budget=ShutdownBudget(drain_s=drain_s),
                      version=target.version, reserve_cpus=reserve_cpus, reserve_memory=reserve_memory,
                      labels={LABEL_NAME: target.name}, timeout_s=timeout, on_line=say)
    if not as_json:
        out.print(f"deployed {st.name}: {st.running}/{st.replicas} replicas healthy on network {st.network}; "
                  f"clients on that network reach it at http://{st.name}:{CONTAINER_PORT}", markup=False)
    else:
        _print_status(st, True)


@deploy_app.command("status")
def status_cmd(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show a service's image, replicas, tasks and last update."""
    from ..deploy import swarm

    _print_status(swarm.status(engine(), name), as_json)


@deploy_app.command("rollback")
def rollback_cmd(name: NameArg, quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Return a service to its previous version and wait until it is healthy."""
    from ..deploy import swarm

    st = swarm.rollback(engine(), name, on_line=progress(quiet or as_json))
    _print_status(st, as_json)


@deploy_app.command("rm")
def rm_cmd(name: NameArg) -> None:
    """Remove a service (replicas drain within the stop grace period)."""
    from ..deploy import swarm

    swarm.rm(engine(), name)
    out.print(f"removed {name}", markup=False)


@deploy_app.command("kubernetes")
def kubernetes_cmd(
    path: PathArg = Path("."),
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the YAML files")] = Path("k8s"),
    image: Annotated[str | None, typer.Option("--image", help="image the cluster pulls (prefer repo@sha256:...)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="the stored version to deploy: NAME:N, NAME:latest or NAME@ALIAS (its image is NAME:N)")] = None,
    version: Annotated[str | None, typer.Option(hidden=True, help="deprecated: use --model NAME:N")] = None,
    replicas: Annotated[int, typer.Option("--replicas", "-r")] = 2,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace")] = None,
    drain_s: Annotated[int, typer.Option("--drain-s", help="seconds a stopping pod may finish requests")] = 10,
    apply: Annotated[bool, typer.Option("--apply", help="kubectl apply the serving set after writing it")] = False,
    kubeconfig: Annotated[Path | None, typer.Option(help="kubeconfig for --apply (default: kubectl's)")] = None,
) -> None:
    """Write Deployment/Service/HPA/PDB (+ training Job, KServe InferenceService) manifests."""
    from ..deploy import kubernetes

    if version is not None:
        err.print("note: --version is deprecated; pass --model NAME:N (the same reference every verb takes)")
    spec = _kubernetes_spec(path, image=image, version=_model_version(model) if model else (version or "1"),
                            replicas=replicas, namespace=namespace, drain_s=drain_s)
    if not spec.image_is_pinned:
        err.print(f"note: {spec.image} is a tag; every node must be able to pull it (a digest pins the bits)")
    for written in kubernetes.write_manifests(spec, out_dir):
        out.print(f"wrote {written}", markup=False)
    if apply:
        out.print(kubernetes.apply(out_dir, kubeconfig), markup=False)


def _model_version(model: str) -> str:
    """--model NAME:N | NAME:latest | NAME@ALIAS -> the version number it names now."""
    from .. import references
    from ..store import Store

    ref = references.parse_for("deploy", model)
    if ref.kind is references.Kind.PATH:
        raise UsageError(f"--model {model!r} is a path; manifests deploy a stored version's image",
                         "build and push it first (dockyard push NAME:N), then pass --model NAME:N")
    return str(references.stored_version(ref, Store()).version)


def _kubernetes_spec(path: Path, *, image: str | None, version: str, replicas: int, namespace: str | None,
                     drain_s: int) -> Any:
    """dockyard.yaml -> DeploySpec (flag mapping only; DeploySpec validates every value)."""
    from ..config import load_config
    from ..deploy import DeploySpec, ShutdownBudget

    project = path.resolve()
    cfg = load_config(project)
    return DeploySpec(
        name=cfg.name, image=image or f"{cfg.name}:{version}", version=version, replicas=replicas,
        cpus=cfg.resources.cpus, memory=cfg.resources.memory, namespace=namespace,
        env=dict(cfg.env), train_command=_train_argv(project, cfg),
        shutdown=ShutdownBudget(drain_s=drain_s),
    )  # fmt: skip


def _train_argv(project_dir: Path, cfg: Any) -> tuple[str, ...]:
    """The training Job's argv: what the train image's CMD runs (parameter defaults filled in,
    train.model_variable kept)."""
    from ..planning import image_train_command

    command = image_train_command(project_dir, cfg.train.command, cfg.train.model_variable)
    return tuple(shlex.split(command)) if command else ()
