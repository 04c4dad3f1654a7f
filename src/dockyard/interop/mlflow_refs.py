"""MLflow model references -> a local MLmodel directory.

    runs:/<run_id>/<path>         a run's artifact (mlflow 2.x), or the model the run logged under
                                  that name (mlflow >= 3 logged models)
    models:/<name>/<version>      a registered model version ("latest" = the highest)
    models:/<name>@<alias>        the version an alias points at
    models:/<model_id>            an mlflow >= 3 logged model (m-...)

Resolved against the tracking store in MLFLOW_TRACKING_URI (file store or sqlite), else the
project's mlflow.db or mlruns/. Every failure names the tracking URI and the lookup that failed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..runtime.mlflow_model import is_mlmodel_dir
from .mlflow_tracking import FileStore, SqliteStore, TrackingError, default_uri, open_store

PREFIXES = ("runs:/", "models:/")


def is_mlflow_ref(text: str) -> bool:
    return text.startswith(PREFIXES)


def resolve(ref: str, project_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``runs:/...`` or ``models:/...`` -> the MLmodel directory it names, on this host."""
    uri = default_uri(dict(os.environ if environ is None else environ), project_dir)
    store = open_store(uri, cwd=project_dir)
    if ref.startswith("runs:/"):
        run_id, _, artifact = ref[len("runs:/"):].partition("/")
        return _run_model(store, ref, run_id, artifact.strip("/"))
    rest = ref[len("models:/"):].strip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        version = store.alias(name, alias)
        if version is None:
            raise _fail(store, ref, f"registered model {name!r} has no alias {alias!r}",
                        f"set it with MlflowClient().set_registered_model_alias({name!r}, {alias!r}, VERSION)")
        return _version_model(store, ref, name, version)
    if "/" in rest:
        name, _, version = rest.partition("/")
        if version == "latest":
            versions = store.versions(name)
            if not versions:
                raise _fail(store, ref, f"no registered model named {name!r}", "register it first "
                            "(log_model(..., registered_model_name=NAME))")
            version = str(versions[-1])
        return _version_model(store, ref, name, version)
    model = next((m for m in store.logged_models() if m.model_id == rest), None)
    if model is None:
        raise _fail(store, ref, f"no logged model with id {rest!r}",
                    "use models:/NAME/VERSION for a registered model, or check the model id")
    return _existing(store, ref, model.artifact_location)


def _run_model(store: FileStore | SqliteStore, ref: str, run_id: str, artifact: str) -> Path:
    run = store.run(run_id)
    if run is None:
        raise _fail(store, ref, f"no run with id {run_id!r}", "check the run id (mlflow ui, or `mlflow runs list`)")
    base = store.local_path(run.artifact_uri)
    if base is not None and is_mlmodel_dir(base / artifact):
        return base / artifact
    top, _, sub = artifact.partition("/")
    for model in store.logged_models():  # mlflow >= 3: log_model(name=...) makes a logged model
        if model.run_id == run_id and model.name == top:
            path = store.local_path(model.artifact_location)
            if path is not None and is_mlmodel_dir(path / sub):
                return path / sub
    raise _fail(store, ref, f"run {run_id} has no MLflow model at {artifact!r}",
                "use the artifact path (or name=) the model was logged with, e.g. runs:/RUN_ID/model")


def _version_model(store: FileStore | SqliteStore, ref: str, name: str, version: str) -> Path:
    meta = store.model_version(name, version)
    if meta is None:
        known = store.versions(name)
        hint = f"versions: {', '.join(map(str, known))}" if known else f"no registered model named {name!r}"
        raise _fail(store, ref, f"registered model {name!r} has no version {version!r} ({hint})",
                    "pick an existing version, or models:/NAME@ALIAS")
    source = str(meta.get("source") or "")
    if source.startswith(PREFIXES) and source != ref:
        try:
            return resolve_in(store, source)
        except TrackingError:
            pass  # fall back to the storage location mlflow copied the model to
    return _existing(store, ref, str(meta.get("storage_location") or source))


def resolve_in(store: FileStore | SqliteStore, ref: str) -> Path:
    if ref.startswith("runs:/"):
        run_id, _, artifact = ref[len("runs:/"):].partition("/")
        return _run_model(store, ref, run_id, artifact.strip("/"))
    model_id = ref[len("models:/"):].strip("/")
    model = next((m for m in store.logged_models() if m.model_id == model_id), None)
    if model is None:
        raise _fail(store, ref, f"no logged model with id {model_id!r}", "check the model id")
    return _existing(store, ref, model.artifact_location)


def _existing(store: FileStore | SqliteStore, ref: str, location: str) -> Path:
    path = store.local_path(location)
    if path is None or not is_mlmodel_dir(path):
        raise _fail(store, ref, f"its files ({location}) are not on this machine, or hold no MLmodel",
                    "copy the artifacts next to the tracking store, or download them with "
                    "`mlflow artifacts download` and pass --model DIR")
    return path


def _fail(store: FileStore | SqliteStore, ref: str, what: str, fix: str) -> TrackingError:
    return TrackingError(f"cannot resolve {ref} in the tracking store {store.uri}: {what}", fix)
