"""One reference grammar for every verb: which form a text is, which verbs take it, and what a
stored-version reference resolves to (the serving image NAME:N, the newest for NAME:latest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard import references
from dockyard.errors import StoreError, UsageError
from dockyard.references import VERB_FORMS, Kind, parse, parse_for
from dockyard.serving import resolve_model
from dockyard.store import ImageInfo, RunRecord, Store

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _record(store: Store, tmp_path: Path, name: str, run: int) -> None:
    out = tmp_path / f"out-{name}-{run}"
    out.mkdir()
    (out / "model.joblib").write_bytes(f"weights {run}".encode())
    store.record_success(RunRecord(name=name, run_id=f"run-{run}", command="python train.py",
                                   image=ImageInfo(id="sha256:" + "a" * 64, ref=f"{name}:train"),
                                   started=T0, ended=T0 + timedelta(seconds=1), exit_status=0), out)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    (work / "models" / "model.joblib").write_bytes(b"weights")
    monkeypatch.chdir(work)
    return work


# Every form, as a user would type it, with the kind it must parse as.
FORMS = {
    "digits:2": Kind.VERSION,
    "digits:latest": Kind.VERSION,
    "digits": Kind.VERSION,
    "digits@production": Kind.ALIAS,
    "models/model.joblib": Kind.PATH,
    "models": Kind.PATH,
    "python:3.11-slim": Kind.IMAGE,
    "sha256:" + "b" * 64: Kind.IMAGE,
}


@pytest.mark.parametrize(("text", "kind"), sorted(FORMS.items()))
def test_each_form_parses_as_its_kind(cwd: Path, text: str, kind: Kind) -> None:
    assert parse(text).kind is kind


@pytest.mark.parametrize("verb", sorted(VERB_FORMS))
@pytest.mark.parametrize(("text", "kind"), sorted(FORMS.items()))
def test_every_verb_with_every_form_accepts_or_names_what_it_takes(cwd: Path, verb: str, text: str,
                                                                  kind: Kind) -> None:
    if kind in VERB_FORMS[verb]:
        assert parse_for(verb, text).kind is kind
        return
    with pytest.raises(UsageError) as info:
        parse_for(verb, text)
    assert f"dockyard {verb}" in info.value.problem and repr(text) in info.value.problem
    assert "NAME:N" in info.value.fix or "path" in info.value.fix


def test_paths_are_relative_to_the_current_directory_not_the_project(cwd: Path, tmp_path: Path) -> None:
    ref = parse("models/model.joblib")
    assert ref.path == cwd / "models" / "model.joblib"
    project = tmp_path / "project"
    project.mkdir()
    (project / "dockyard.yaml").write_text("name: digits\n")
    staged = resolve_model(project, "models/model.joblib")
    assert (project / staged.context_path / "model.joblib").read_bytes() == b"weights"  # type: ignore[operator]


def test_a_missing_path_is_an_error_naming_where_it_looked(cwd: Path) -> None:
    with pytest.raises(UsageError) as info:
        parse("outputs/model.joblib")
    assert str(cwd / "outputs" / "model.joblib") in info.value.problem
    with pytest.raises(UsageError):
        parse("model.pkl")  # a model suffix is a path even without a slash


def test_latest_is_the_newest_stored_version_and_its_serving_image(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for run in (1, 2, 3):
        _record(store, tmp_path, "digits", run)
    assert references.stored_version(parse("digits:latest"), store).version == 3
    assert references.stored_version(parse("digits"), store).version == 3
    assert references.image_of(parse("digits:latest"), store) == "digits:3"
    assert references.image_of(parse("digits:2"), store) == "digits:2"
    # A name the store does not know is an image reference, as written.
    assert references.image_of(parse("python:3.11-slim"), store) == "python:3.11-slim"
    assert references.image_of(parse("other:latest"), store) == "other:latest"


def test_an_unknown_version_lists_the_existing_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    _record(store, tmp_path, "digits", 1)
    with pytest.raises(StoreError) as info:
        references.stored_version(parse("digits:7"), store)
    assert "digits:1" in info.value.fix


def test_an_alias_without_a_registry_says_how_to_name_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_REGISTRY", raising=False)
    with pytest.raises(UsageError) as info:
        references.stored_version(parse("digits@production"), Store(tmp_path / "store"))
    assert "--registry" in info.value.fix and "DOCKYARD_REGISTRY" in info.value.fix


@pytest.mark.parametrize("bad", ["", "  ", "Digits@Prod", "digits@"])
def test_malformed_references_are_refused(cwd: Path, bad: str) -> None:
    with pytest.raises(UsageError):
        parse(bad)
