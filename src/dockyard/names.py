"""Names are per project: which project folder owns an image tag or a model name.

Two folders may hold projects with the same ``name:`` (/a/digits and /b/digits). Their images
(``digits:1``, ``digits:train``...) and model versions would overwrite or interleave with each
other's, so every image dockyard builds is labelled with its project folder
(contract.LABEL_PROJECT) and every stored version records the folder that trained it
(ModelVersion.project). Before dockyard tags an image or records a version it asks who owns
the name now:

- nobody (no such image, no versions yet, or one made by an older dockyard that recorded no
  folder), this folder, or a folder that no longer claims it (gone, or its dockyard.yaml now
  names something else): go ahead;
- another folder that still holds a project of that name: refused, with the owner and the fix
  (rename one project with ``name:``, or pass ``--replace`` to take the name over).

The model store is one place for all projects, indexed by name, so a model name has one owner
too: the folder that trained its newest version.
"""

from __future__ import annotations

from pathlib import Path

from .config import CONFIG_NAME, load_config
from .engine import Engine
from .errors import DockyardError, StoreError, UsageError
from .runtime import contract
from .store import ModelVersion, Store


def still_claims(owner: str, name: str) -> bool:
    """Whether folder ``owner`` still holds a project called ``name`` (so it still owns it)."""
    folder = Path(owner)
    if not (folder / CONFIG_NAME).is_file():
        return False
    try:
        return load_config(folder).name == name
    except DockyardError:  # a broken dockyard.yaml: keep its claim rather than guess
        return True


def image_owner(engine: Engine, ref: str) -> tuple[str, str] | None:
    """(project folder, project name) recorded on the local image ``ref``, or None when there
    is no such image or it records no folder."""
    if not engine.image_exists(ref):
        return None
    config = engine.inspect(ref).get("Config")
    labels = (config.get("Labels") if isinstance(config, dict) else None) or {}
    owner = str(labels.get(contract.LABEL_PROJECT, ""))
    if not owner:
        return None
    return owner, str(labels.get(contract.LABEL_NAME) or ref.rpartition(":")[0].rsplit("/", 1)[-1])


def _refuse(what: str, owner: str, here: Path) -> UsageError:
    return UsageError(
        f"{what} belongs to the project in {owner}, not to {here}",
        f"give this project its own name (`name:` in {here / CONFIG_NAME}), or pass --replace to take "
        "the name over",
    )


def claim_image(engine: Engine, ref: str, project_dir: Path, *, replace: bool = False) -> None:
    """Refuse to tag ``ref`` for ``project_dir`` when another project folder owns that image."""
    found = image_owner(engine, ref)
    if found is None or replace:
        return
    owner, name = found
    if Path(owner) != project_dir.resolve() and still_claims(owner, name):
        raise _refuse(f"image {ref}", owner, project_dir.resolve())


def _newest(store: Store, name: str) -> ModelVersion | None:
    try:
        return store.get(f"{name}:latest")
    except StoreError:  # no versions yet
        return None


def model_owner(store: Store, name: str) -> str:
    """The folder that trained the newest version of ``name`` ("" when none is recorded)."""
    newest = _newest(store, name)
    return newest.project if newest else ""


def claim_model(store: Store, name: str, project_dir: Path, *, replace: bool = False) -> None:
    """Refuse to record a version of ``name`` from ``project_dir`` when another folder owns it."""
    newest = None if replace else _newest(store, name)
    if newest is None or not newest.project:
        return
    if Path(newest.project) != project_dir.resolve() and still_claims(newest.project, name):
        raise _refuse(f"model name {name} (its newest version {newest.ref} in {store.root})", newest.project,
                      project_dir.resolve())


def claim_version(version: ModelVersion, project_dir: Path, *, replace: bool = False) -> None:
    """Refuse to build ``project_dir``'s code around a version another folder trained: the image
    would pair one project's predictor with another project's weights."""
    owner = version.project
    if replace or not owner or Path(owner) == project_dir.resolve() or not still_claims(owner, version.name):
        return
    raise UsageError(
        f"{version.ref} was trained by the project in {owner}, not by {project_dir.resolve()}",
        f"build it from its own project (--path {owner}), give this project its own name (`name:` in "
        f"{project_dir.resolve() / CONFIG_NAME}), or pass --replace if this folder really serves it",
    )


def claim_pulled(engine: Engine, local: str, pulled: str, *, replace: bool = False) -> None:
    """Refuse to retag a pulled image as ``local`` over a different image a local project folder owns."""
    found = image_owner(engine, local)
    if found is None or replace or engine.image_id(local) == engine.image_id(pulled):
        return
    owner, name = found
    if still_claims(owner, name):
        raise UsageError(
            f"image {local} belongs to the project in {owner}; the pulled image stays as {pulled}",
            "use it by that name, or pass --replace to retag it over the local one",
        )
