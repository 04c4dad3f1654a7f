"""Pure parts of the store: refs, names, records (JSON round trip and damage), fingerprints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.errors import StoreError
from dockyard.store import (
    Artifact,
    ImageInfo,
    ModelVersion,
    Ref,
    RunRecord,
    fingerprint_dir,
    parse_ref,
    validate_name,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("digits", Ref("digits", None)),
    ("digits:2", Ref("digits", 2)),
    ("digits:latest", Ref("digits", None)),
    ("my.model_v2-x:10", Ref("my.model_v2-x", 10)),
])
def test_refs_parse_name_and_optional_version(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


def test_bare_versions_parse_only_where_allowed() -> None:
    assert parse_ref("3", allow_bare_version=True) == Ref(None, 3)
    assert parse_ref("latest", allow_bare_version=True) == Ref(None, None)
    assert parse_ref("3") == Ref("3", None)  # a name made of digits is still a name


@pytest.mark.parametrize(("text", "fix"), [
    ("digits:v2", "digits:2"),
    ("digits:0", "digits:2"),
    ("digits:-1", "digits:2"),
    ("", "digits:2"),
    ("Digits:1", "'digits'"),
])
def test_bad_refs_say_what_to_write_instead(text: str, fix: str) -> None:
    with pytest.raises(StoreError) as err:
        parse_ref(text)
    assert fix in err.value.fix


def test_invalid_names_get_a_valid_suggestion() -> None:
    with pytest.raises(StoreError) as err:
        validate_name("My Model!")
    assert "'my-model'" in err.value.fix
    assert validate_name("ok-name.v1_2") == "ok-name.v1_2"


def test_run_record_normalises_command_params_and_duration() -> None:
    run = RunRecord(name="m", run_id="r", command="python train.py --epochs 3",
                    image=ImageInfo(id="i"), started=T0, ended=T0 + timedelta(seconds=1.5),
                    params={"epochs": 3}, metrics={"acc": 1})
    assert run.command == ("python", "train.py", "--epochs", "3")
    assert run.params == {"epochs": "3"}
    assert run.metrics == {"acc": 1.0}
    assert run.duration_s == 1.5


def test_run_record_rejects_naive_times_and_text_metrics() -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        RunRecord(name="m", run_id="r", command=["x"], image=ImageInfo(id="i"),
                  started=datetime(2024, 1, 1), ended=T0)
    with pytest.raises(StoreError, match="'acc' is 'high'"):
        RunRecord(name="m", run_id="r", command=["x"], image=ImageInfo(id="i"),
                  started=T0, ended=T0, metrics={"acc": "high"})  # type: ignore[dict-item]


def _version() -> ModelVersion:
    return ModelVersion(name="m", version=3, created=T0, run_id="r", command=("x",),
                        image=ImageInfo(id="i"), started=T0, ended=T0, duration_s=0.0,
                        artifacts=(Artifact("model.bin", "0" * 64, 1),), metrics={"acc": 0.5})


def test_version_record_round_trips_through_json() -> None:
    version = _version()
    again = ModelVersion.from_dict(json.loads(json.dumps(version.to_dict())), "x.json")
    assert again == version


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("run_id"), "field 'run_id': missing"),
    (lambda d: d.update(version="3"), "field 'version': expected int, got str"),
    (lambda d: d.update(schema=7), "unsupported record schema"),
    (lambda d: d.update(started="yesterday"), "not an ISO 8601"),
    (lambda d: d["artifacts"][0].update(sha256="xyz"), "not a sha256"),
    (lambda d: d["artifacts"][0].update(path="../../etc/passwd"), "not a plain relative path"),
    (lambda d: d["metrics"].update(acc=True), "must be a number"),
])
def test_damaged_records_name_the_file_and_field(change: object, message: str) -> None:
    doc = _version().to_dict()
    change(doc)  # type: ignore[operator]
    with pytest.raises(StoreError) as err:
        ModelVersion.from_dict(doc, "models/m/3.json")
    assert "models/m/3.json" in err.value.problem
    assert message in err.value.problem


def test_fingerprint_depends_on_content_and_paths_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "sub").mkdir(parents=True)
    (a / "x.csv").write_text("1,2")
    (a / "sub" / "y.csv").write_text("3")
    (b / "sub" / "y.csv").write_text("3")  # same files, created in another order
    (b / "x.csv").write_text("1,2")
    assert fingerprint_dir(a) == fingerprint_dir(b)
    assert fingerprint_dir(a).startswith("sha256:")
    (b / "x.csv").write_text("1,3")
    assert fingerprint_dir(a) != fingerprint_dir(b)
    (b / "x.csv").write_text("1,2")
    (b / "sub" / "y.csv").rename(b / "sub" / "z.csv")
    assert fingerprint_dir(a) != fingerprint_dir(b)


def test_fingerprint_of_a_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as err:
        fingerprint_dir(tmp_path / "nope")
    assert "--data" in err.value.fix
